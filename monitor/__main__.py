"""`python -m monitor` runs the `repmon` command."""

from monitor.cli import main

main()

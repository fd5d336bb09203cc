"""Build repmon. Where a C compiler is at hand, the modules an import runs for every mention
(parsing, brand matching, scoring) are compiled with mypyc; elsewhere they run as Python.

Everything else about the package is in pyproject.toml. `monitor/compiled.py` decides at
run time whether the compiled modules are used (not when their sources have changed since).
"""

import hashlib
import json
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from setuptools import Extension, setup

# Keep in step with docs/performance.md. Only modules whose classes are never pickled while
# frozen: mypyc sets a frozen dataclass's fields through __setattr__ when unpickling, which
# refuses them.
COMPILED = (
    "monitor/vader.py",
    "monitor/quickcheck.py",
    "monitor/scoring.py",
    "monitor/matching.py",
    "monitor/text.py",
    "monitor/collectors/importers.py",
)
SOURCES_RECORD = Path("monitor/compiled-sources.json")  # read by monitor/compiled.py
# The setuptools commands that build extensions (pip's wheel, editable and legacy installs).
BUILDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install"}


def remove_earlier_builds() -> None:
    """Delete what an earlier editable install compiled beside the sources, so that a module
    that fails to build now, or is no longer compiled, cannot leave its old code running."""
    for suffix in EXTENSION_SUFFIXES:
        for built in Path("monitor").rglob("*" + suffix):
            built.unlink()


def compiled_extensions() -> list[Extension]:
    if not BUILDS & set(sys.argv[1:]):
        return []  # pip runs this file for the metadata too; mypyc takes a while
    remove_earlier_builds()
    if os.environ.get("REPMON_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("repmon: mypyc is not installed; the modules run as Python", file=sys.stderr)
        return []
    try:
        extensions = mypycify(
            # The build's environment has none of the runtime dependencies or their stubs.
            ["--ignore-missing-imports", "--no-warn-unused-ignores", *COMPILED],
            group_name="monitor._compiled",
        )
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error
        print(f"repmon: modules not compiled, Python is used ({exc!r})", file=sys.stderr)
        return []
    record = {}
    for path in map(Path, COMPILED):
        name = ".".join(path.with_suffix("").parts)
        record[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    SOURCES_RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    for extension in extensions:
        extension.optional = True  # no C compiler: install anyway, as Python
    return extensions


setup(ext_modules=compiled_extensions())

"""Benchmarks a user can run: `repmon bench` (see docs/performance.md)."""

"""Collectors, one module per source, found through one registry.

Importing this package registers every bundled collector.
"""

from monitor.collectors.base import (
    REGISTRY,
    CollectContext,
    Collector,
    CollectorError,
    parse_duration,
    register,
)

__all__ = [
    "REGISTRY",
    "CollectContext",
    "Collector",
    "CollectorError",
    "parse_duration",
    "register",
]

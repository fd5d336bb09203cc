"""Collectors, one module per source, found through one registry.

Importing this package registers every bundled collector.
"""

# Importing a collector module registers it: one line per bundled source.
from monitor.collectors import (
    hackernews,
    mastodon,
    news,
    reddit,
    reviews,
)
from monitor.collectors.base import (
    REGISTRY,
    CollectContext,
    Collector,
    CollectorError,
    register,
)
from monitor.models import parse_duration

__all__ = [
    "REGISTRY",
    "CollectContext",
    "Collector",
    "CollectorError",
    "hackernews",
    "mastodon",
    "news",
    "parse_duration",
    "reddit",
    "register",
    "reviews",
]

"""What every collector is: a class that yields Mentions from one kind of source.

A collector never writes to the store. It reads its options (the `[sources.NAME]` table of
monitor.toml), its secrets, and the cursor its last successful run left, yields mentions,
and updates `ctx.cursor` to describe what it has now seen. The pipeline stores the mentions
and the new cursor in one transaction, so a cursor never runs ahead of its data.

Adding a source is one new module with one class decorated by `@register`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from monitor.collectors.http import HttpClient
from monitor.config import BrandConfig, ConfigError
from monitor.models import Mention, parse_duration, safe_http_url


class CollectorError(Exception):
    """A source failed as a whole; the message says what, which input, and what to do."""


@dataclass
class CollectContext:
    """Everything a collector may use during one run."""

    source: str
    brand: BrandConfig
    options: Mapping[str, Any]
    secrets: Mapping[str, Any]
    cursor: dict[str, Any]
    http: HttpClient
    now: datetime
    config_path: Path | None = None
    # Problems with one input (a feed, a subreddit) that did not stop the others.
    problems: list[str] = field(default_factory=list)
    progress: Callable[[str], None] | None = None

    def warn(self, problem: str) -> None:
        """Record a problem with one input and carry on with the rest."""
        self.problems.append(problem)

    # -- typed option readers that fail with the config key named ------------------------

    def where(self, key: str) -> str:
        """Return "monitor.toml: [sources.NAME] key", the start of a config error message."""
        return f"{self.config_path or 'monitor.toml'}: [sources.{self.source}] {key}"

    def check_keys(self, known: Iterable[str]) -> None:
        """Raise ConfigError for an option key the collector does not know (usually a typo)."""
        allowed = {"enabled", *known}
        unknown = sorted(set(self.options) - allowed)
        if unknown:
            raise ConfigError(
                f"{self.config_path or 'monitor.toml'}: unknown key [sources.{self.source}] "
                f"'{unknown[0]}'. Known keys: {', '.join(sorted(allowed))}."
            )

    def option_url(self, key: str, default: str) -> str:
        """Return an http(s) address option without a trailing slash."""
        url = safe_http_url(self.option_str(key, default).strip()).rstrip("/")
        if not url:
            raise ConfigError(f'{self.where(key)} must be an http(s) address, e.g. "{default}".')
        return url

    def option_bool(self, key: str, default: bool) -> bool:
        """Return a true/false option."""
        value = self.options.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.where(key)} must be true or false.")
        return value

    def option_int(
        self, key: str, default: int, *, minimum: int = 0, maximum: int | None = None, why: str = ""
    ) -> int:
        """Return a whole-number option within [minimum, maximum]; `why` explains a maximum."""
        value = self.options.get(key, default)
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if not is_int or value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            reason = f" ({why})" if why else ""
            raise ConfigError(
                f"{self.where(key)} = {value!r}: must be a whole number {bounds}{reason}."
            )
        return int(value)

    def option_str(self, key: str, default: str) -> str:
        """Return a text option."""
        value = self.options.get(key, default)
        if not isinstance(value, str):
            raise ConfigError(f'{self.where(key)} must be a string, e.g. {key} = "...".')
        return value

    def option_strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        """Return a list-of-strings option."""
        value = self.options.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(f'{self.where(key)} must be a list of strings, e.g. ["a", "b"].')
        return tuple(v.strip() for v in value)

    def option_duration(self, key: str, default: str) -> timedelta:
        """Return a duration option written like "15m", "6h" or "3d"."""
        raw = self.options.get(key, default)
        try:
            return parse_duration(raw)
        except ValueError:
            raise ConfigError(
                f'{self.where(key)} = {raw!r} is not a duration like "6h" or "3d".'
            ) from None


class Collector(Protocol):
    """A source of mentions."""

    name: ClassVar[str]
    description: ClassVar[str]
    # True for sources whose every item is about the brand by construction (reviews of the
    # brand's own app, which seldom name the company): the pipeline then skips brand matching.
    always_about_brand: ClassVar[bool]

    def collect(self, ctx: CollectContext) -> Iterator[Mention]:
        """Yield the mentions newer than `ctx.cursor` and update the cursor."""
        ...


C = TypeVar("C", bound=type[Collector])

# Source name -> collector class. The one place a name maps to code.
REGISTRY: dict[str, type[Collector]] = {}


def register(cls: C) -> C:
    """Add a collector class to the registry under its `name`."""
    if cls.name in REGISTRY:
        raise ValueError(f"two collectors are named {cls.name!r}")
    REGISTRY[cls.name] = cls
    return cls

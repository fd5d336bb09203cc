"""The records that flow through the monitor: plain dataclasses, no I/O."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

Label = Literal["negative", "neutral", "positive"]
LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")

SOURCES_DEMO = ("reddit", "news", "reviews")


def utc(value: datetime) -> datetime:
    """Return `value` as a timezone-aware UTC datetime (naive values are taken as UTC)."""
    zone = value.tzinfo
    if zone is UTC:
        return value  # most times already are: nothing to convert
    if zone is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


_NON_WORD = re.compile(r"[^\w\s]")
# The same for ASCII, as one table: punctuation becomes a space, capitals small letters.
# NFKC leaves ASCII as it is, and ASCII's casefold is lower.
_ASCII_FOLD = str.maketrans(
    {
        c: (" " if not (c.isalnum() or c == "_" or c.isspace()) else c.lower())
        for c in map(chr, range(128))
    }
)


def normalise_text(text: str) -> str:
    """Return `text` folded for duplicate detection: NFKC, casefold, no punctuation, one space."""
    if text.isascii():  # most texts: the same answer, several times faster
        return " ".join(text.translate(_ASCII_FOLD).split())
    folded = unicodedata.normalize("NFKC", text).casefold()
    # str.split() and re's \s agree on what white space is: runs of it become one space.
    return " ".join(_NON_WORD.sub(" ", folded).split())


def content_hash(title: str, text: str) -> str:
    """Return a short stable hash of a mention's normalised title and text."""
    if len(title) + len(text) <= REMEMBERED_TEXT_CHARS:
        return _remembered_hash(title, text)
    return _hash(title, text)


def _hash(title: str, text: str) -> str:
    key = normalise_text(f"{title} {text}")
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


# Reposts and cross-posts repeat recent texts, mostly short ones: what is worked out from a
# text (its hash here, whether it names the brand in an import) is remembered for texts up to
# this long only, so that what is remembered stays a few megabytes in a long-lived process.
REMEMBERED_TEXT_CHARS = 2000
_remembered_hash = lru_cache(maxsize=1 << 14)(_hash)


def forget_hashes() -> None:
    """Forget the hashes remembered so far (benchmarks start each pass afresh)."""
    _remembered_hash.cache_clear()


@dataclass(slots=True)
class Mention:
    """One post, comment, article or review that names the brand.

    Source-specific numbers live in the typed engagement fields; anything else a
    source knows goes into `extra` (JSON-serialisable values only).
    """

    source: str
    external_id: str
    text: str
    published_at: datetime
    title: str = ""
    url: str = ""
    # Set only when the URL identifies the story itself (a news article, tracking stripped):
    # another arrival with the same canonical URL is kept as a sighting, not a new mention.
    canonical_url: str = ""
    author: str = ""
    score: int | None = None
    comments: int | None = None
    rating: float | None = None
    followers: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    collected_at: datetime = field(default_factory=utcnow)
    # Filled by scoring.
    compound: float | None = None
    label: Label | None = None
    topics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.published_at = utc(self.published_at)
        self.collected_at = utc(self.collected_at)

    @property
    def full_text(self) -> str:
        """Return title and body joined, the text that is matched and scored."""
        return f"{self.title}. {self.text}" if self.title and self.text else self.title or self.text

    @property
    def content_hash(self) -> str:
        """Return the hash used to spot the same story arriving twice."""
        return content_hash(self.title, self.text)

    @property
    def engagement(self) -> int:
        """Return one comparable engagement figure: votes plus comments (0 when unknown)."""
        return (self.score or 0) + (self.comments or 0)


EventKind = Literal["disclosure", "response", "legal", "other"]


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to the brand, drawn on every timeline."""

    at: datetime
    label: str
    kind: str = "other"

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", utc(self.at))


@dataclass(slots=True)
class CollectionRun:
    """One run of one source: what it added, what it updated, and why it failed if it did.

    "partial" means some inputs of the source failed (see `error`) while others landed;
    "interrupted", that the process stopped (killed, crashed) before recording a finish.
    """

    source: str
    started_at: datetime
    finished_at: datetime | None = None
    status: Literal["running", "ok", "partial", "failed", "interrupted"] = "running"
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0  # stories already stored from elsewhere, kept as sightings
    skipped: int = 0  # collected but not about the brand (no match, or only an exclusion)
    error: str = ""
    id: int | None = None


@dataclass(frozen=True, slots=True)
class MentionQuery:
    """Which mentions a chart, table or export is about. Empty fields mean "no filter".

    `since` is inclusive and `until` exclusive, both UTC.
    """

    since: datetime | None = None
    until: datetime | None = None
    sources: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    search: str = ""

    def describe(self) -> str:
        """Return a one-line, human description of the filter for captions and manifests."""
        fmt = "%Y-%m-%d %H:%M UTC"
        window = (
            f"{self.since.strftime(fmt) if self.since else 'start'} to "
            f"{self.until.strftime(fmt) if self.until else 'now'}"
        )
        parts = [window, "sources: " + (", ".join(self.sources) if self.sources else "all")]
        if self.labels:
            parts.append("labels: " + ", ".join(self.labels))
        if self.topics:
            parts.append("topics: " + ", ".join(self.topics))
        if self.search:
            parts.append(f"text contains {self.search!r}")
        return "; ".join(parts)


_UNSAFE_IN_URL = re.compile("[\x00\n\r\t <>\"']")
_WEB_SCHEMES = ("http://", "https://")


def safe_http_url(url: object) -> str:
    """Return `url` if it is a plain http(s) link, else "" (never javascript: or data:)."""
    if not isinstance(url, str):
        return ""
    candidate = url.strip()
    if _UNSAFE_IN_URL.search(candidate) or not candidate.lower().startswith(_WEB_SCHEMES):
        return ""
    return candidate


def latest_run_per_source(runs: Iterable[CollectionRun]) -> dict[str, CollectionRun]:
    """Return each source's most recent run from `runs` (in any order)."""
    latest: dict[str, CollectionRun] = {}
    for run in runs:
        known = latest.get(run.source)
        if known is None or run.started_at > known.started_at:
            latest[run.source] = run
    return latest


@dataclass(slots=True)
class Alert:
    """A rule that fired: what, when, how far past its threshold, and the mentions behind it.

    `evidence` holds up to a few mentions as plain dicts (source, published_at as ISO 8601,
    title, text, url, engagement, label, compound), so an alert can be stored, sent and
    exported as it was when it fired.
    """

    rule: str
    brand: str
    fired_at: datetime
    severity: str
    value: float
    threshold: float
    message: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    kind: str = ""
    acknowledged_at: datetime | None = None
    ack_note: str = ""
    id: int | None = None

    def __post_init__(self) -> None:
        self.fired_at = utc(self.fired_at)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> timedelta:
    """Return the timedelta of "90s", "15m", "6h", "3d" or "2w"; raise ValueError otherwise."""
    if not isinstance(value, str) or len(value) < 2 or value[-1] not in _UNITS:
        raise ValueError(f"not a duration: {value!r}")
    try:
        amount = float(value[:-1])
    except ValueError:
        raise ValueError(f"not a duration: {value!r}") from None
    if amount < 0:
        raise ValueError(f"negative duration: {value!r}")
    return timedelta(seconds=amount * _UNITS[value[-1]])

"""A deterministic synthetic corpus for the benchmark: N mentions over 90 days, 5 sources.

The shape follows a breach: a quiet baseline, a disclosure two thirds of the way in, then a
surge in volume and negativity that decays. Texts are assembled from breach vocabulary, so
VADER and the lexicon do the same work as on real posts, and each is distinct unless it is
deliberately a repeat: a story cross-posted to another source (kept as a sighting), or, in
the duplicate-heavy variant, reposts of earlier texts.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

BRAND = "Northwind Bank"
SOURCES = ("reddit", "news", "appstore", "hackernews", "mastodon")
# Share of mentions each source contributes (reddit and news carry most of a crisis).
SOURCE_WEIGHTS = (0.40, 0.25, 0.10, 0.10, 0.15)
DAYS = 90
DISCLOSURE_DAY = 60
END = datetime(2026, 9, 1, tzinfo=UTC)

_OPENERS = (
    "Just read that", "Can't believe", "Apparently", "Heads up:", "Breaking:", "So",
    "Honestly,", "Update:", "FYI", "Wow,", "Not surprised", "My bank", "Again?",
)  # fmt: skip
_NEGATIVE = (
    "leaked my card details", "exposed millions of accounts", "hid the breach for weeks",
    "still has not emailed customers", "froze my account after the hack",
    "has terrible security", "lost our social security numbers", "is a disaster",
    "support hung up on me", "charged me twice after the breach", "lied about the data leak",
    "identity theft is on the rise", "fraud alerts everywhere", "class action lawsuit filed",
)  # fmt: skip
_NEUTRAL = (
    "posted an update on the incident", "published a FAQ", "changed its app login",
    "opened branches on Saturday", "announced quarterly results", "updated its privacy page",
    "offered credit monitoring", "reset passwords for some users",
)  # fmt: skip
_POSITIVE = (
    "support was great today", "fixed my card in minutes", "has the best mobile app",
    "staff were really helpful", "handled my refund quickly", "savings rate is excellent",
)  # fmt: skip
_TAILS = (
    "", "", "What a mess.", "Unbelievable.", "Thanks!", "Not happy.", "Still waiting.",
    "Anyone else?", "Switching banks.", "Good to know.", "Love it.", "Ugh.",
)  # fmt: skip
_WORDS = (
    "today", "again", "this week", "for real", "in my city", "on the news", "at work",
    "last night", "this morning", "for months", "for years", "online",
)  # fmt: skip


@dataclass(frozen=True)
class CorpusSpec:
    """What to generate: `mentions` rows, `cross_posted` of them repeating a story from
    another source, `reposts` of them repeating an earlier text in the same source."""

    mentions: int
    cross_posted: float = 0.05
    reposts: float = 0.0
    off_topic: float = 0.03  # rows that do not name the brand: matching drops them
    seed: int = 2026


def _volume_weights() -> list[float]:
    """Relative mentions per hour over the 90 days: baseline, surge at disclosure, decay."""
    weights = []
    for hour in range(DAYS * 24):
        day = hour / 24
        diurnal = 0.5 + 0.5 * abs(((hour % 24) - 3) / 12 - 1)  # quiet at night (UTC)
        # After the disclosure: ten times the baseline, decaying by 7% a day.
        surge = 9.0 * 0.93 ** (day - DISCLOSURE_DAY) if day >= DISCLOSURE_DAY else 0.0
        weights.append((1.0 + surge) * diurnal)
    return weights


def _negative_odds(day: float) -> float:
    return 0.2 if day < DISCLOSURE_DAY else 0.2 + 0.5 * 0.95 ** (day - DISCLOSURE_DAY)


def _sentence(rng: random.Random, day: float, serial: int, names_brand: bool) -> str:
    roll = rng.random()
    negative = _negative_odds(day)
    pool = _NEGATIVE if roll < negative else _NEUTRAL if roll < negative + 0.45 else _POSITIVE
    subject = rng.choice((BRAND, "Northwind", "@NorthwindBank", "#NorthwindBank", BRAND.upper()))
    if not names_brand:
        subject = rng.choice(("My credit union", "Another bank", "Some retailer"))
    parts = [
        rng.choice(_OPENERS),
        subject,
        rng.choice(pool),
        rng.choice(_WORDS),
        rng.choice(_TAILS),
        # A serial makes every generated text distinct, as real posts are.
        f"(#{serial})",
    ]
    if rng.random() < 0.3:
        parts.insert(4, f"and {rng.choice(pool)}")
    return " ".join(p for p in parts if p)


def rows(spec: CorpusSpec) -> Iterator[tuple[str, dict[str, object]]]:
    """Yield (source, import row) for every mention of `spec`, in publication order."""
    rng = random.Random(spec.seed)
    weights = _volume_weights()
    hours = sorted(rng.choices(range(len(weights)), weights=weights, k=spec.mentions))
    start = END - timedelta(days=DAYS)
    recent: list[str] = []
    for serial, hour in enumerate(hours):
        source = rng.choices(SOURCES, weights=SOURCE_WEIGHTS)[0]
        published = start + timedelta(hours=hour, seconds=rng.randrange(3600))
        day = hour / 24
        roll = rng.random()
        if recent and roll < spec.reposts:
            text = rng.choice(recent)
        elif recent and roll < spec.reposts + spec.cross_posted:
            # The same story from another source: the dedup keeps it as a sighting.
            text = recent[-1]
            source = rng.choice([s for s in SOURCES if s != source])
        else:
            text = _sentence(rng, day, serial, rng.random() >= spec.off_topic)
        if len(recent) < 5000:
            recent.append(text)
        else:
            recent[rng.randrange(len(recent))] = text
        score = int(rng.paretovariate(1.3)) - 1 if source in ("reddit", "hackernews") else None
        yield (
            source,
            {
                "external_id": f"{source}-{serial}",
                "text": text,
                "author": f"user{rng.randrange(50_000)}",
                "url": f"https://example.org/{source}/{serial}",
                "published_at": published.isoformat(),
                "score": score,
                "comments": rng.randrange(40) if score is not None else None,
                "rating": float(rng.randint(1, 5)) if source == "appstore" else None,
            },
        )


def write(spec: CorpusSpec, folder: Path) -> dict[str, Path]:
    """Write `spec` as one JSONL import file per source in `folder`; return source -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {s: folder / f"{s}.jsonl" for s in SOURCES}
    handles = {s: p.open("w", encoding="utf-8") for s, p in paths.items()}
    try:
        for source, row in rows(spec):
            handles[source].write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        for handle in handles.values():
            handle.close()
    return paths


def texts(paths: dict[str, Path]) -> Iterator[str]:
    """Yield the text of every row of the files `write` made, as the scorer sees it."""
    for path in paths.values():
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                yield str(json.loads(line)["text"])

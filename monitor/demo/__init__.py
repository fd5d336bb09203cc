"""The bundled demo scenario: a fictional bank's data breach, deterministic and seeded.

Sixty days of Reddit posts and comments, news items and app reviews about "Northwind Bank",
with the breach disclosed on day 30. Volume follows a daily and weekly rhythm, jumps at the
disclosure and at each later event, then decays to a level still above the baseline (a slow,
partial recovery). Texts are assembled from the text bank in `corpus/` and scored by the real
scorer when ingested: nothing about sentiment is pre-baked here, only the intended stance
that picks which sentences a post is written from.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from monitor.config import BrandConfig
from monitor.models import Event, Mention
from monitor.store import Store, UpsertResult

BRAND = BrandConfig(
    name="Northwind Bank",
    aliases=("Northwind", "@NorthwindBank", "northwindbank.com", "Northwind Mobile"),
    exclude=("Northwind Traders",),
)
SEED = 20240514
START = datetime(2024, 4, 14, tzinfo=UTC)
DAYS = 60
DISCLOSURE = datetime(2024, 5, 14, 16, 0, tzinfo=UTC)
EVENTS = (
    Event(DISCLOSURE, "Breach disclosed", "disclosure"),
    Event(datetime(2024, 5, 16, 13, 0, tzinfo=UTC), "Notification e-mails sent", "response"),
    Event(datetime(2024, 5, 18, 15, 0, tzinfo=UTC), "CEO apology", "response"),
    Event(datetime(2024, 5, 21, 14, 0, tzinfo=UTC), "Free credit monitoring offered", "response"),
    Event(datetime(2024, 5, 24, 17, 0, tzinfo=UTC), "Class action filed", "legal"),
)
CORPUS = Path(__file__).parent / "corpus"
SOURCES = ("reddit", "news", "reviews")
STANCES = ("negative", "neutral", "positive")

# Mentions a day on an ordinary day before the breach.
BASE_PER_DAY = {"reddit": 16.0, "news": 2.5, "reviews": 6.0}
# The disclosure spike: peak multiple of the baseline and its decay time in days.
SPIKE = {"reddit": (14.0, 3.0), "news": (22.0, 1.5), "reviews": (7.0, 4.0)}
# Long after the spike, volume settles at this multiple of the baseline (partial recovery).
AFTERMATH_LEVEL = 1.7
# Each later event adds a smaller spike: multiple of the baseline, decay in days.
EVENT_PULSE = (3.0, 1.0)
# Share of activity per UTC hour (US audience: quiet 07-12 UTC, busiest in the US afternoon).
HOURLY = np.array(
    [5, 4, 3, 2.2, 1.6, 1.2, 1, 1, 1.2, 1.6, 2.2, 3, 4, 5, 6, 6.5, 6.8, 7, 7, 6.8, 6.5, 6.2, 6, 5.5]
)
HOURLY = HOURLY / HOURLY.sum()
WEEKDAY = np.array([1.08, 1.1, 1.1, 1.06, 1.0, 0.8, 0.86])  # Monday first

SUBREDDITS = ("personalfinance", "banking", "Scams", "technology", "news", "cybersecurity")
CITIES = (
    "Portland",
    "Columbus",
    "Sacramento",
    "Tucson",
    "Madison",
    "Richmond",
    "Omaha",
    "Raleigh",
    "Spokane",
    "Albany",
    "Boise",
    "Savannah",
    "Duluth",
    "Fresno",
    "Reno",
    "Tulsa",
)
BREACH_SCOPE = "2.3 million"
# Set in the store's meta table when a build finishes; an interrupted build leaves it unset.
COMPLETE_KEY = "demo_complete_seed"
# Things people type around what they mean. Each scores exactly 0 (tests/test_demo.py checks),
# so they vary the texts without tilting any label.
OPENERS = (
    "Same here.",
    "This.",
    "Just checked.",
    "Update:",
    "FWIW,",
    "Long-time customer here.",
    "For context, I've banked with them for years.",
    "Posting from a throwaway.",
    "Not the first time I've seen this.",
    "Throwaway for obvious reasons.",
    "So,",
    "Adding my experience:",
    "Context: I use the app daily.",
    "My two cents:",
    "Two things.",
    "Been with them since college.",
    "Reposting from another thread:",
    "Heads up,",
)
CLOSERS = (
    "Anyone else?",
    "Just saying.",
    "Edit: typo.",
    "Will update.",
    "Thoughts?",
    "We'll see.",
    "Posting so others know.",
    "That's all.",
    "More when I hear back.",
    "Edit: formatting.",
    "Make of that what you will.",
    "Details in the comments.",
    "Still waiting on a reply.",
    "Anyone from the bank reading this?",
    "Screenshots if anyone needs them.",
)


@cache
def load_corpus() -> dict[str, dict[str, Any]]:
    """Return the demo text bank, one parsed TOML file per source."""
    corpus = {}
    for source in SOURCES:
        with (CORPUS / f"{source}.toml").open("rb") as handle:
            corpus[source] = tomllib.load(handle)
    return corpus


@dataclass(frozen=True, slots=True)
class Mood:
    """What people talk about and how they feel, at one moment of the scenario."""

    themes: dict[str, float]
    stances: dict[str, float]


def _decay(t: datetime, since: datetime, days: float) -> float:
    """Return exp(-elapsed/days) after `since`, 0 before it."""
    elapsed = (t - since) / timedelta(days=1)
    return math.exp(-elapsed / days) if elapsed >= 0 else 0.0


def volume_multiplier(source: str, t: datetime) -> float:
    """Return the expected volume at `t` as a multiple of the source's ordinary level."""
    if t < DISCLOSURE:
        return 1.0
    peak, decay = SPIKE[source]
    since_disclosure = (t - DISCLOSURE) / timedelta(days=1)
    # Settle from 1x to AFTERMATH_LEVEL over the first two weeks.
    level = 1.0 + (AFTERMATH_LEVEL - 1.0) * min(1.0, since_disclosure / 14)
    pulses = sum(EVENT_PULSE[0] * _decay(t, e.at, EVENT_PULSE[1]) for e in EVENTS[1:])
    return level + peak * _decay(t, DISCLOSURE, decay) + pulses


def mood_at(t: datetime) -> Mood:
    """Return the topic and stance mix at `t`."""
    if t < DISCLOSURE:
        return Mood(
            themes={"everyday": 0.8, "customer_service": 0.1, "outage": 0.06, "refunds": 0.04},
            stances={"negative": 0.1, "neutral": 0.4, "positive": 0.5},
        )
    crisis = _decay(t, DISCLOSURE, 9.0)
    notification, apology, monitoring, lawsuit = (_decay(t, e.at, 4.0) for e in EVENTS[1:])
    themes = {
        "breach": 1.0 + 3.0 * crisis,
        "credentials": 0.5 + 1.0 * crisis,
        "cards": 0.6 + 1.2 * crisis,
        "identity_theft": 0.4 + 0.8 * crisis,
        "notification": 0.2 + 2.5 * notification,
        "customer_service": 0.7 + 0.6 * crisis,
        "refunds": 0.3 + 2.0 * monitoring,
        "apology": 2.5 * apology + 0.1,
        "lawsuit": 0.1 + 2.0 * lawsuit,
        "everyday": 0.8 + 1.2 * (1 - crisis),
        "outage": 0.2,
    }
    # Anger peaks at disclosure; the apology and the credit-monitoring offer soften it a little.
    negative = 0.36 + 0.42 * crisis + 0.08 * lawsuit - 0.06 * apology - 0.06 * monitoring
    positive = 0.16 + 0.1 * (1 - crisis) + 0.06 * monitoring
    return Mood(
        themes=themes,
        stances={
            "negative": negative,
            "neutral": max(0.05, 1 - negative - positive),
            "positive": positive,
        },
    )


class _Writer:
    """Fills text-bank templates with seeded choices."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.corpus = load_corpus()

    def pick(self, options: list[str]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def weighted(self, weights: dict[str, float]) -> str:
        keys = list(weights)
        p = np.array([max(weights[k], 0.0) for k in keys])
        return keys[int(self.rng.choice(len(keys), p=p / p.sum()))]

    def fill(self, template: str) -> str:
        return template.format(
            brand=BRAND.name,
            short="Northwind",
            app="Northwind Mobile",
            amount=f"${int(self.rng.integers(40, 4800)):,}",
            city=self.pick(list(CITIES)),
            days=int(self.rng.integers(2, 15)),
            count=BREACH_SCOPE,
        )

    def voice(self, text: str) -> str:
        """Return `text`, sometimes with a neutral opener or closer, as people write."""
        if self.rng.random() < 0.45:
            text = f"{self.pick(list(OPENERS))} {text}"
        if self.rng.random() < 0.35:
            text = f"{text} {self.pick(list(CLOSERS))}"
        return text

    def section(self, table: dict[str, Any], theme: str, stance: str) -> dict[str, Any]:
        """Return the text-bank section for theme/stance, falling back to the neutral one."""
        by_theme: dict[str, dict[str, Any]] = table.get(theme) or table["everyday"]
        return by_theme.get(stance) or by_theme.get("neutral") or by_theme["negative"]


def _heavy_tail(rng: np.random.Generator, scale: float) -> int:
    """Return a Pareto-distributed count: most posts get little, a few go viral."""
    return int(scale * (rng.pareto(1.3) + 0.05))


def generate(seed: int = SEED) -> Iterator[Mention]:
    """Yield the scenario's mentions in time order, identical for the same seed."""
    rng = np.random.default_rng(seed)
    writer = _Writer(rng)
    counter = dict.fromkeys(SOURCES, 0)
    for hour in range(DAYS * 24):
        t = START + timedelta(hours=hour)
        rhythm = HOURLY[t.hour] * 24 * WEEKDAY[t.weekday()]
        mood = mood_at(t)
        for source in SOURCES:
            expected = BASE_PER_DAY[source] / 24 * rhythm * volume_multiplier(source, t)
            for _ in range(int(rng.poisson(expected))):
                counter[source] += 1
                published = t + timedelta(seconds=int(rng.integers(3600)))
                theme = writer.weighted(mood.themes)
                stance = writer.weighted(mood.stances)
                yield _MAKERS[source](writer, counter[source], published, theme, stance)


def _reddit(writer: _Writer, n: int, published: datetime, theme: str, stance: str) -> Mention:
    rng = writer.rng
    bank = writer.corpus["reddit"]
    subreddit = writer.pick(list(SUBREDDITS))
    # Crisis threads in busy subreddits draw far more votes than everyday chatter.
    reach = 40.0 if theme != "everyday" and stance == "negative" else 12.0
    if rng.random() < 0.4:
        section = writer.section(bank["posts"], theme, stance)
        title = writer.fill(writer.pick(section["titles"]))
        body = writer.voice(writer.fill(writer.pick(section["bodies"])))
        post_id = f"nw{n:05d}"
        return Mention(
            source="reddit",
            external_id=f"t3_{post_id}",
            title=title,
            text=body,
            url=f"https://www.example.com/demo/r/{subreddit}/comments/{post_id}/",
            author=_username(rng),
            published_at=published,
            collected_at=published + timedelta(minutes=15),
            score=_heavy_tail(rng, reach),
            comments=_heavy_tail(rng, reach / 4),
            extra={"subreddit": subreddit, "kind": "submission", "demo": True},
        )
    section = writer.section(bank["comments"], theme, stance)
    text = writer.fill(writer.pick(section["texts"]))
    if rng.random() < 0.5:  # many comments run on for a second thought
        text = f"{text} {writer.fill(writer.pick(section['texts']))}"
    text = writer.voice(text)
    comment_id = f"c{n:06d}"
    return Mention(
        source="reddit",
        external_id=f"t1_{comment_id}",
        text=text,
        url=f"https://www.example.com/demo/r/{subreddit}/comments/thread/_/{comment_id}/",
        author=_username(rng),
        published_at=published,
        collected_at=published + timedelta(minutes=15),
        score=_heavy_tail(rng, reach / 3),
        extra={"subreddit": subreddit, "kind": "comment", "demo": True},
    )


def _news(writer: _Writer, n: int, published: datetime, theme: str, stance: str) -> Mention:
    bank = writer.corpus["news"]
    section = writer.section(bank["articles"], theme, stance)
    publisher = writer.pick(bank["publishers"])
    slug = "-".join(publisher.lower().split())
    return Mention(
        source="news",
        external_id=f"news-{n:05d}",
        title=writer.fill(writer.pick(section["headlines"])),
        text=writer.fill(writer.pick(section["summaries"])),
        url=f"https://www.example.com/demo/news/{slug}/{published:%Y/%m/%d}/{n}",
        author=publisher,
        published_at=published,
        collected_at=published + timedelta(minutes=30),
        extra={"publisher": publisher, "demo": True},
    )


def _reviews(writer: _Writer, n: int, published: datetime, theme: str, stance: str) -> Mention:
    rng = writer.rng
    section = writer.section(writer.corpus["reviews"]["reviews"], theme, stance)
    stars = {"negative": (1, 1, 1, 2, 2, 3), "neutral": (2, 3, 3, 3, 4), "positive": (4, 5, 5, 5)}
    rating = float(writer.pick([str(s) for s in stars[stance]]))
    return Mention(
        source="reviews",
        external_id=f"review-{n:05d}",
        title=writer.fill(writer.pick(section["titles"])),
        text=writer.voice(writer.fill(writer.pick(section["bodies"]))),
        url=f"https://www.example.com/demo/apps/northwind-mobile/reviews/{n}",
        author=_username(rng),
        published_at=published,
        collected_at=published + timedelta(hours=2),
        rating=rating,
        extra={"app_version": f"7.{int(published.timetuple().tm_yday) // 14}.0", "demo": True},
    )


_MAKERS: dict[str, Callable[[_Writer, int, datetime, str, str], Mention]] = {
    "reddit": _reddit,
    "news": _news,
    "reviews": _reviews,
}

_NAME_PARTS = (
    ("quiet", "rusty", "salty", "lunar", "brisk", "mellow", "tidal", "amber", "dusty", "frosty"),
    ("otter", "ledger", "falcon", "maple", "harbor", "pixel", "badger", "comet", "kettle", "moss"),
)


def _username(rng: np.random.Generator) -> str:
    first = _NAME_PARTS[0][int(rng.integers(10))]
    second = _NAME_PARTS[1][int(rng.integers(10))]
    return f"{first}_{second}{int(rng.integers(10, 9999))}"


def build(
    store: Store, *, seed: int = SEED, progress: Callable[[int], None] | None = None
) -> UpsertResult:
    """Generate the scenario, score it with the real scorer, store it with its events and
    the alerts the default rules would have fired.

    `progress` is called with the number of mentions stored so far. Building twice
    stores nothing new.
    """
    from monitor.pipeline import ingest

    store.replace_events(EVENTS)
    total = UpsertResult()
    batch: list[Mention] = []
    for mention in generate(seed):
        batch.append(mention)
        if len(batch) == 500:
            total += ingest(store, batch)
            batch = []
            if progress:
                progress(total.new + total.updated + total.unchanged)
    total += ingest(store, batch)
    # The alert history a team would have now: the default rules replayed over the scenario.
    from monitor.alerts import engine
    from monitor.config import demo_settings

    history = engine.replay(store, demo_settings(store.url), START, START + timedelta(days=DAYS))
    store.replace_alerts(BRAND.name, history)
    store.set_meta(COMPLETE_KEY, str(seed))
    if progress:
        progress(total.new + total.updated + total.unchanged)
    return total


def is_built(store: Store, seed: int = SEED) -> bool:
    """Return True once a build of `seed` has run to the end (not merely started)."""
    return store.get_meta(COMPLETE_KEY) == str(seed)

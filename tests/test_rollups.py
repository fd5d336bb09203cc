"""Hourly rollups: kept exact through inserts, updates and sightings, on both databases,
and the answers drawn from them equal those grouped from every stored mention."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.models import MentionQuery
from monitor.store import SCHEMA_VERSION, Store, meta, rollup_hours, rollup_topics
from tests.conftest import make_mention

START = datetime(2026, 3, 1, tzinfo=UTC)
TEXTS = (
    "Northwind Bank leaked my card details, terrible",
    "Northwind Bank support was great today",
    "Northwind Bank posted an update on the breach and offered credit monitoring",
    "Northwind Bank phishing texts everywhere, scam alert",
    "Northwind Bank app is down again, not working",
)


def _mentions(seed: int, count: int, *, version: int = 0) -> list:
    rng = random.Random(seed)
    return [
        make_mention(
            source=rng.choice(("reddit", "news", "appstore")),
            external_id=f"id{rng.randrange(count)}",  # repeats: updates within one upsert
            text=f"{rng.choice(TEXTS)} v{version}" if rng.random() < 0.5 else rng.choice(TEXTS),
            published_at=START + timedelta(minutes=rng.randrange(60 * 24 * 5)),
            rating=float(rng.randint(1, 5)) if rng.random() < 0.3 else None,
            score=rng.randrange(100),
        )
        for _ in range(count)
    ]


def _grouped(store: Store, query: MentionQuery, *, by_hour: bool) -> pd.DataFrame:
    """The same counts grouped from the mentions table (a query the rollups cannot answer:
    a search for the empty-looking but always-true space)."""
    # "Northwind" is in every text, so the search changes no answer but forces the fallback.
    raw = MentionQuery(
        since=query.since, until=query.until, sources=query.sources, labels=query.labels,
        search="Northwind",
    )  # fmt: skip
    return store.hourly_counts(raw) if by_hour else store.daily_counts(raw)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = list(a.columns[:3])
    a = a.sort_values(key).reset_index(drop=True)
    b = b.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-9)


def test_rollups_follow_inserts_updates_and_sightings(any_store: Store) -> None:
    any_store.upsert_mentions(_mentions(1, 400))
    any_store.upsert_mentions(_mentions(2, 400, version=1))  # many ids again, texts changed
    # A cross-posted story: a sighting, not a second mention; it must not be counted twice.
    story = "Northwind Bank confirms customer card data was exposed in the breach"
    before = any_store.count_mentions(), any_store.count_sightings()
    any_store.upsert_mentions([make_mention(source="news", external_id="s1", text=story)])
    any_store.upsert_mentions([make_mention(source="reddit", external_id="s2", text=story)])
    assert (any_store.count_mentions(), any_store.count_sightings()) == (
        before[0] + 1,
        before[1] + 1,
    )
    assert any_store.rollup_problems() == []
    everything = MentionQuery(since=START, until=START + timedelta(days=30))
    assert any_store.count_mentions(everything) == any_store.count_mentions(
        MentionQuery(since=START, until=START + timedelta(days=30), search="Northwind")
    )
    for by_hour in (False, True):
        _same(
            any_store.hourly_counts(everything) if by_hour else any_store.daily_counts(everything),
            _grouped(any_store, everything, by_hour=by_hour),
        )


def test_queries_the_rollups_cannot_answer_exactly_read_the_mentions(store: Store) -> None:
    store.upsert_mentions(_mentions(3, 300))
    # Not whole hours: only the mentions table knows which side of 10:30 each one falls.
    odd = MentionQuery(
        since=START + timedelta(hours=10, minutes=30), until=START + timedelta(days=2)
    )
    expected = store.mentions_frame(odd, limit=None)
    assert store.count_mentions(odd) == len(expected)
    assert int(store.daily_counts(odd)["mentions"].sum()) == len(expected)
    topics = ["breach", "phishing", "outage"]
    counted = store.topic_counts(MentionQuery(since=START, until=START + timedelta(days=9)), topics)
    frame = store.mentions_frame(MentionQuery(since=START), limit=None)
    for topic in topics:
        assert counted[topic] == int(frame["topics"].str.contains(topic).sum())


def test_an_older_database_gets_its_rollups_counted_when_opened(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url)
    store.upsert_mentions(_mentions(4, 200))
    expected = store.daily_counts(MentionQuery())
    # Make it look like a database written by schema version 1: no rollups at all.
    with store.engine.begin() as conn:
        conn.execute(sa.delete(rollup_hours))
        conn.execute(sa.delete(rollup_topics))
        conn.execute(sa.update(meta).where(meta.c.key == "schema_version").values(value="1"))
    store.close()
    reopened = Store(url)
    assert reopened.schema_version() == SCHEMA_VERSION
    assert reopened.rollup_problems() == []
    _same(reopened.daily_counts(MentionQuery()), expected)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(1, 60), st.integers(0, 3)),
        min_size=1,
        max_size=4,
    )
)
def test_any_sequence_of_upserts_leaves_the_rollups_exact(tmp_path_factory, batches) -> None:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('rollups') / 'db.sqlite'}")
    for seed, count, version in batches:
        store.upsert_mentions(_mentions(seed, count, version=version))
    assert store.rollup_problems() == []
    store.close()

"""The Overview's numbers gathered without Streamlit (SQLite and PostgreSQL): what negative
mentions are about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from monitor import overview
from monitor.analysis import Window
from monitor.store import Store
from tests.conftest import make_mention

WINDOW = Window(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 8, tzinfo=UTC))
BASELINE = Window(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 29, tzinfo=UTC))
SERIAL = count()


def add(store: Store, day: datetime, label: str, topics: tuple[str, ...], source: str) -> None:
    compound = {"negative": -0.6, "neutral": 0.0, "positive": 0.6}[label]
    store.upsert_mentions(
        [
            make_mention(
                # Each text its own: the same text from another source would be a sighting.
                text=f"Northwind Bank post number {next(SERIAL)} about the incident",
                source=source,
                published_at=day + timedelta(hours=10),
                compound=compound,
                label=label,
                topics=topics,
            )
        ]
    )


@pytest.fixture
def filled(any_store: Store) -> Store:
    store = any_store
    now, before = WINDOW.start + timedelta(days=2), BASELINE.start + timedelta(days=3)
    for _ in range(3):
        add(store, now, "negative", ("breach", "credentials"), "reddit")
    add(store, now, "negative", ("breach",), "news")
    add(store, now, "negative", (), "reddit")
    add(store, now, "positive", ("credentials", "compensation"), "reddit")  # not negative
    add(store, WINDOW.end, "negative", ("outage",), "reddit")  # the day after the window
    for _ in range(4):
        add(store, before, "negative", ("outage",), "reddit")
    add(store, before, "negative", ("breach",), "reddit")
    return store


def test_topics_are_shares_of_the_windows_negative_mentions_against_the_baseline(
    filled: Store,
) -> None:
    topics = {t.topic: t for t in overview.build(filled, WINDOW, BASELINE).topics}
    # Five negative mentions in the window: four about the breach, three about credentials.
    assert list(topics) == ["breach", "credentials"]
    assert topics["breach"].mentions == 4
    assert topics["breach"].share == pytest.approx(4 / 5)
    assert topics["breach"].baseline_share == pytest.approx(1 / 5)
    assert topics["credentials"].share == pytest.approx(3 / 5)
    assert topics["credentials"].baseline_share == pytest.approx(0.0)


def test_topics_follow_the_source_filter_and_need_no_baseline(filled: Store) -> None:
    topics = overview.build(filled, WINDOW, None, ("news",)).topics
    assert [(t.topic, t.mentions, t.share) for t in topics] == [("breach", 1, 1.0)]
    assert topics[0].baseline_share is None and topics[0].change is None


def test_a_window_without_negative_mentions_has_no_topics(filled: Store) -> None:
    quiet = Window(datetime(2024, 7, 1, tzinfo=UTC), datetime(2024, 7, 8, tzinfo=UTC))
    assert overview.build(filled, quiet, BASELINE).topics == ()

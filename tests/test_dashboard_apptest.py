"""Streamlit AppTest smoke tests: every dashboard page runs on the demo scenario, headless.

The app runs in demo mode (no monitor.toml, no $MONITOR_CONFIG) on a demo database built
once for the module. Shown numbers are checked against figures computed here straight from
the store's rows, not through monitor.analysis, so a wrong window, filter or formula fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from monitor import demo
from monitor.dashboard.components import markdown_text
from monitor.models import MentionQuery
from monitor.scoring import topic_labels
from monitor.store import Store
from tests.conftest import ROOT

KPI_LABELS = ("Mentions per day", "Mean sentiment", "Share negative", "Net sentiment")
POST_DISCLOSURE = (date(2024, 5, 14), date(2024, 5, 20))
EXPLORER = "monitor/dashboard/explorer.py"
SEARCH_WORDS = ("password", "refund", "card", "support", "breach")


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def db(demo_env: str) -> Iterator[Store]:
    """Return a store of our own on the demo database, for independent expectations."""
    store = Store(demo_env)
    yield store
    store.close()


def run_app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# -- independent expectations -----------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    mentions: int
    per_day: float
    mean: float
    share_negative: float
    net: float


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def window_query(first: date, last: date, **extra: object) -> MentionQuery:
    """Return the query for whole UTC days first..last, both included."""
    return MentionQuery(since=midnight(first), until=midnight(last) + timedelta(days=1), **extra)  # type: ignore[arg-type]


def expected_kpis(db: Store, first: date, last: date) -> Expected:
    """Return the four KPIs of days first..last from the stored mentions themselves."""
    rows = db.mentions_frame(window_query(first, last), limit=None)
    assert len(rows) > 0
    negative = int((rows["label"] == "negative").sum())
    positive = int((rows["label"] == "positive").sum())
    return Expected(
        mentions=len(rows),
        per_day=len(rows) / ((last - first).days + 1),
        mean=float(rows["compound"].mean()),
        share_negative=negative / len(rows),
        net=(positive - negative) / (positive + negative) * 100,
    )


def default_window(db: Store) -> tuple[date, date]:
    """Return the default window: the last 7 UTC days that have data."""
    bounds = db.time_bounds()
    assert bounds is not None
    last = bounds[1].date()
    return max(bounds[0].date(), last - timedelta(days=6)), last


def baseline(db: Store) -> Expected:
    """Return the KPIs of the 28 whole UTC days before the disclosure day."""
    disclosure_day = demo.DISCLOSURE.date()
    return expected_kpis(
        db, disclosure_day - timedelta(days=28), disclosure_day - timedelta(days=1)
    )


_NUMBER = re.compile(r"^([+-]?[\d,]*\.?\d+)(%?)")


def shown(text: str | None) -> tuple[float, float]:
    """Return a displayed number (percentages as fractions) and half its last digit's unit."""
    assert text is not None, "no number shown"
    found = _NUMBER.match(text.strip())
    assert found, f"{text!r} is not a number"
    digits, percent = found.group(1).replace(",", ""), found.group(2)
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    value, half_unit = float(digits), 0.5 * 10**-decimals
    if percent:
        value, half_unit = value / 100, half_unit / 100
    return value, half_unit


def assert_shows(text: str | None, expected: float) -> None:
    value, half_unit = shown(text)
    assert abs(value - expected) <= half_unit + 1e-9, f"shows {text!r}, expected {expected!r}"


def metrics(at: AppTest) -> dict[str, tuple[str, str | None]]:
    return {m.label: (m.value, m.delta) for m in at.metric}


def assert_kpis(at: AppTest, now: Expected, before: Expected) -> None:
    """Check the four cards' values and deltas against `now` and the baseline `before`."""
    cards = metrics(at)
    assert tuple(cards) == KPI_LABELS
    for label, (value, delta) in cards.items():
        assert value != "n/a", label
        assert delta, f"{label} has no delta against the baseline"
    assert_shows(cards["Mentions per day"][0], now.per_day)
    assert cards["Mentions per day"][1].endswith(" vs baseline")  # type: ignore[union-attr]
    assert_shows(cards["Mentions per day"][1], now.per_day / before.per_day - 1)
    assert_shows(cards["Mean sentiment"][0], now.mean)
    assert_shows(cards["Mean sentiment"][1], now.mean - before.mean)
    assert_shows(cards["Share negative"][0], now.share_negative)
    assert cards["Share negative"][1].endswith(" pts")  # type: ignore[union-attr]
    assert_shows(cards["Share negative"][1], (now.share_negative - before.share_negative) * 100)
    assert_shows(cards["Net sentiment"][0], now.net)
    assert_shows(cards["Net sentiment"][1], now.net - before.net)


def match_count(at: AppTest) -> int:
    """Return the number in the explorer's "N mentions match: ..." caption."""
    counts = [
        int(found.group(1).replace(",", ""))
        for caption in at.caption
        if (found := re.match(r"([\d,]+) mentions match: ", caption.value))
    ]
    assert len(counts) == 1, [c.value for c in at.caption]
    return counts[0]


# -- overview ---------------------------------------------------------------------------------


def test_overview_shows_demo_kpis_charts_and_worst_mentions(db: Store) -> None:
    at = run_app()

    first, last = default_window(db)
    assert at.date_input(key="sidebar_window").value == (first, last)
    assert_kpis(at, expected_kpis(db, first, last), baseline(db))

    assert any("Demo data" in info.value for info in at.info)
    charts = at.get("plotly_chart")
    # The timeline, the star ratings of the demo's app reviews, the by-source bars, and the
    # topics of negative mentions.
    assert [chart.key for chart in charts] == [
        "overview_timeline",
        "overview_ratings",
        "overview_sources",
        "overview_topics",
    ]
    assert "Breach disclosed" in charts[0].proto.spec

    subheaders = [s.value for s in at.subheader]
    assert "What is hurting us" in subheaders
    worst = [d.value for d in at.dataframe if "label" in d.value.columns]
    assert len(worst) == 1
    table = worst[0]
    negatives = db.count_mentions(window_query(first, last, labels=("negative",)))
    assert len(table) == min(10, negatives) > 0
    assert set(table["label"]) == {"negative"}
    assert table["engagement"].is_monotonic_decreasing


def test_post_disclosure_window_raises_share_negative(db: Store) -> None:
    at = run_app()
    default_share, _ = shown(metrics(at)["Share negative"][0])

    at.date_input(key="sidebar_window").set_value(POST_DISCLOSURE).run()
    assert not at.exception, [e.value for e in at.exception]

    before = baseline(db)
    after = expected_kpis(db, *POST_DISCLOSURE)
    assert_kpis(at, after, before)
    share, _ = shown(metrics(at)["Share negative"][0])
    assert share > default_share
    assert share >= 2 * before.share_negative, (share, before.share_negative)
    assert any("2024-05-14 to 2024-05-20" in c.value for c in at.caption)


def topic_shares(db: Store, first: date, last: date) -> tuple[int, dict[str, float]]:
    """Return the negative mentions of days first..last, and each topic's share of them,
    counted from the stored rows' topic lists."""
    rows = db.mentions_frame(window_query(first, last, labels=("negative",)), limit=None)
    names = topic_labels()
    carried = [set(filter(None, topics.split(", "))) for topics in rows["topics"]]
    counts = {t: sum(t in found for found in carried) for t in names}
    return len(rows), {names[t]: n / len(rows) for t, n in counts.items() if n}


def test_overview_shows_what_negative_mentions_are_about_against_the_baseline(db: Store) -> None:
    at = run_app()
    first, last = default_window(db)
    negatives, now = topic_shares(db, first, last)
    disclosure_day = demo.DISCLOSURE.date()
    base_negatives, before = topic_shares(
        db, disclosure_day - timedelta(days=28), disclosure_day - timedelta(days=1)
    )

    assert "What they are angry about" in [s.value for s in at.subheader]
    assert any(
        f"Share of the window's {negatives:,} negative mentions carrying each topic, against "
        f"the baseline's {base_negatives:,}" in c.value
        for c in at.caption
    ), [c.value for c in at.caption]
    (chart,) = [c for c in at.get("plotly_chart") if c.key == "overview_topics"]
    bars = {bar["name"]: bar for bar in json.loads(chart.proto.spec)["data"]}
    assert list(bars) == ["baseline", "this window"]
    shown_now = dict(zip(bars["this window"]["y"], bars["this window"]["x"], strict=True))
    shown_before = dict(zip(bars["baseline"]["y"], bars["baseline"]["x"], strict=True))
    # Every topic the window's negative mentions carry, the most mentions first.
    assert set(shown_now) == set(now)
    assert list(shown_now) == sorted(now, key=lambda name: -now[name])
    for name, share in now.items():
        assert shown_now[name] == pytest.approx(share * 100)
        assert shown_before[name] == pytest.approx(before.get(name, 0.0) * 100)

    risen = max(now, key=lambda name: now[name] - before.get(name, 0.0))
    assert any(
        m.value.startswith(f"Biggest rise: **{markdown_text(risen)}**") for m in at.markdown
    ), [m.value for m in at.markdown]


def test_overview_opens_the_negative_mentions_of_a_topic_on_the_mentions_page(db: Store) -> None:
    at = run_app()
    first, last = default_window(db)
    at.selectbox(key="overview_topic_pick").set_value("credentials").run()
    (button,) = [b for b in at.button if b.label == "Open them on the Mentions page"]
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]

    assert at.title[0].value == "Mentions"
    assert at.multiselect(key="explorer_labels").value == ["negative"]
    assert at.multiselect(key="explorer_topics").value == ["credentials"]
    expected = db.count_mentions(
        window_query(first, last, labels=("negative",), topics=("credentials",))
    )
    assert match_count(at) == expected > 0
    (shown,) = [d.value for d in at.dataframe if "label" in d.value.columns]
    assert set(shown["label"]) == {"negative"}
    assert shown["engagement"].is_monotonic_decreasing  # most engaged first


# -- mentions explorer ------------------------------------------------------------------------


def test_explorer_filters_count_and_pages(db: Store) -> None:
    at = run_app()
    at.switch_page(EXPLORER).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Mentions"]

    first, last = default_window(db)
    assert match_count(at) == db.count_mentions(window_query(first, last))

    at.multiselect(key="explorer_labels").set_value(["negative"]).run()
    assert not at.exception
    negatives = match_count(at)
    assert negatives == db.count_mentions(window_query(first, last, labels=("negative",)))
    assert negatives > 50  # so the page size is what limits the table
    table = at.dataframe[0].value
    assert len(table) == 50
    assert set(table["label"]) == {"negative"}
    assert at.get("download_button")[0].proto.label == f"Download CSV ({negatives:,} rows)"

    # A word some, not all, of these mentions contain (the demo's texts may be reworded).
    word = next(
        (
            w
            for w in SEARCH_WORDS
            if 0 < db.count_mentions(window_query(first, last, labels=("negative",), search=w)) < 50
        ),
        None,
    )
    assert word is not None, f"none of {SEARCH_WORDS} narrows the negative mentions"
    at.text_input(key="explorer_search").set_value(word).run()
    assert not at.exception
    searched = match_count(at)
    assert searched == db.count_mentions(
        window_query(first, last, labels=("negative",), search=word)
    )
    assert 0 < searched < negatives
    table = at.dataframe[0].value
    assert len(table) == searched
    assert set(table["label"]) == {"negative"}
    said = (table["title"] + " " + table["text"]).str.lower()
    assert said.str.contains(word).all()


# -- configuration errors ---------------------------------------------------------------------


def test_config_typo_is_reported_not_raised(demo_env: str, tmp_path: Path) -> None:
    (tmp_path / "monitor.toml").write_text('[brand]\nnmae = "x"\n', encoding="utf-8")
    at = run_app()

    errors = [e.value for e in at.error]
    assert any("monitor.toml" in text and "'nmae'" in text for text in errors), errors
    assert not at.metric  # the app stopped instead of drawing a page
    assert not any("Demo data" in info.value for info in at.info)


def test_baseline_is_whole_when_the_window_ends_before_the_disclosure(db: Store) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["sidebar_window"] = (date(2024, 4, 20), date(2024, 4, 26))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert_kpis(at, expected_kpis(db, date(2024, 4, 20), date(2024, 4, 26)), baseline(db))

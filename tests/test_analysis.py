"""The headline numbers, from hand-made daily counts whose answers are known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from monitor.analysis import (
    Window,
    baseline_window,
    biggest_rise,
    by_source,
    daily_series,
    kpis,
    narrative_topics,
    net_sentiment,
)

D = datetime(2024, 5, 1, tzinfo=UTC)


def daily(rows: list[tuple[str, str, str, int, float]]) -> pd.DataFrame:
    """Return daily counts from (day, source, label, mentions, compound_sum) tuples."""
    frame = pd.DataFrame(rows, columns=["day", "source", "label", "mentions", "compound_sum"])
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


COUNTS = daily(
    [
        ("2024-05-01", "reddit", "negative", 6, -3.0),
        ("2024-05-01", "reddit", "positive", 2, 1.0),
        ("2024-05-01", "news", "neutral", 2, 0.0),
        ("2024-05-03", "reddit", "negative", 4, -2.0),
        ("2024-05-10", "news", "positive", 100, 50.0),  # outside every window below
    ]
)


def test_kpis_of_a_window() -> None:
    result = kpis(COUNTS, Window(D, D + timedelta(days=4)))
    assert result.mentions == 14
    assert result.mentions_per_day == pytest.approx(14 / 4)
    assert result.mean_compound == pytest.approx(-4.0 / 14)
    assert result.share_negative == pytest.approx(10 / 14)
    assert result.net_sentiment == pytest.approx((2 - 10) / (2 + 10) * 100)


def test_kpis_of_an_empty_window_say_so() -> None:
    result = kpis(COUNTS, Window(D - timedelta(days=9), D - timedelta(days=2)))
    assert result.mentions == 0
    assert result.mentions_per_day == 0
    assert (
        result.mean_compound is None
        and result.share_negative is None
        and result.net_sentiment is None
    )


def test_net_sentiment_bounds() -> None:
    assert net_sentiment(5, 0) == 100
    assert net_sentiment(0, 5) == -100
    assert net_sentiment(3, 3) == 0
    assert net_sentiment(0, 0) is None


def test_baseline_is_whole_days_before_the_disclosure_day() -> None:
    disclosure = datetime(2024, 5, 14, 16, 0, tzinfo=UTC)
    baseline = baseline_window(disclosure)
    assert baseline.start == datetime(2024, 4, 16, tzinfo=UTC)
    assert baseline.end == datetime(2024, 5, 14, tzinfo=UTC)
    assert baseline.days == 28
    # A busy disclosure day must not lift the baseline.
    counts = daily(
        [
            ("2024-05-13", "reddit", "positive", 1, 0.5),
            ("2024-05-14", "reddit", "negative", 99, -50),
        ]
    )
    assert kpis(counts, baseline).share_negative == 0


def test_daily_series_fills_quiet_days_and_rolls_net_sentiment() -> None:
    series = daily_series(COUNTS, Window(D, D + timedelta(days=4)))
    assert list(series.index.strftime("%d")) == ["01", "02", "03", "04"]
    assert series.loc["2024-05-02", "mentions"] == 0
    assert series.loc["2024-05-01", "negative"] == 6
    assert series.loc["2024-05-01", "mean_compound"] == pytest.approx(-2.0 / 10)
    assert pd.isna(series.loc["2024-05-02", "mean_compound"])
    assert series.loc["2024-05-01", "net_sentiment"] == pytest.approx(-50)
    # Rolling: day 3 sees days 1-3: 2 positive, 10 negative.
    assert series.loc["2024-05-03", "rolling_net_sentiment"] == pytest.approx(-800 / 12)


def test_by_source() -> None:
    table = by_source(COUNTS, Window(D, D + timedelta(days=4))).set_index("source")
    assert table.loc["reddit", "mentions"] == 12
    assert table.loc["reddit", "share_negative"] == pytest.approx(10 / 12)
    assert table.loc["news", "neutral"] == 2
    assert list(table.index) == ["reddit", "news"]  # busiest first


NAMES = {
    "breach": "Breach / hack",
    "cards": "Payment cards",
    "legal": "Lawsuit",
    "outage": "Outage",
}


def test_kpis_count_the_negative_mentions_behind_the_share() -> None:
    assert kpis(COUNTS, Window(D, D + timedelta(days=4))).negative == 10
    assert kpis(COUNTS, Window(D + timedelta(days=20), D + timedelta(days=21))).negative == 0


def test_narrative_topics_share_of_negative_mentions_now_and_in_the_baseline() -> None:
    topics = narrative_topics(
        {"breach": 30, "cards": 12, "legal": 12, "outage": 0},
        40,
        {"breach": 5, "cards": 10, "legal": 2},
        50,
        NAMES,
    )
    # Most mentions first; a tie goes to the bigger rise. A topic no mention carries is left out.
    assert [t.topic for t in topics] == ["breach", "legal", "cards"]
    breach, legal, cards = topics
    assert (breach.name, breach.mentions) == ("Breach / hack", 30)
    assert breach.share == pytest.approx(30 / 40)
    assert breach.baseline_share == pytest.approx(5 / 50)
    assert breach.change == pytest.approx(30 / 40 - 5 / 50)
    assert legal.change == pytest.approx(12 / 40 - 2 / 50)
    assert cards.change == pytest.approx(12 / 40 - 10 / 50)
    assert [t.topic for t in narrative_topics({"breach": 3, "cards": 1}, 4, {}, 0, NAMES, 1)] == [
        "breach"
    ]


def test_narrative_topics_without_a_baseline_have_no_change() -> None:
    (only,) = narrative_topics({"cards": 3}, 4, {}, 0, NAMES)
    assert only.share == pytest.approx(0.75)
    assert only.baseline_share is None and only.change is None
    assert biggest_rise([only]) is None


def test_biggest_rise_is_the_topic_whose_share_rose_most() -> None:
    topics = narrative_topics(
        {"breach": 30, "cards": 12, "outage": 4},
        40,
        {"breach": 20, "cards": 2, "outage": 40},
        50,
        NAMES,
    )
    rise = biggest_rise(topics)
    assert rise is not None
    assert rise.topic == "breach"  # 75% from 40%: +35 points, against cards' +26
    fallen = narrative_topics({"outage": 1}, 40, {"outage": 40}, 50, NAMES)
    assert biggest_rise(fallen) is None

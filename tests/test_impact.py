"""The before/after event study: ratios of hourly sums, bootstrap intervals, permutation tests,
recovery and topic shares on hand-built data with known answers, then on the demo scenario
and through `repmon report event-study`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from monitor import analysis, demo, impact
from monitor.cli import main
from monitor.models import Event, MentionQuery
from monitor.store import Store

FEW = 400  # resamples for synthetic data: plenty to tell a real effect from none
EVENT_AT = datetime(2024, 3, 29, 15, 40, tzinfo=UTC)  # floored to 15:00 for "after"
EVENT = Event(EVENT_AT, "Breach disclosed", "disclosure")
BASELINE_START = datetime(2024, 3, 1, tzinfo=UTC)  # 28 whole days before 2024-03-29


# -- helpers ----------------------------------------------------------------------------------


def hourly_rows(
    start: datetime,
    hours: int,
    *,
    rate: float,
    negative: float,
    positive: float,
    seed: int,
    source: str = "reddit",
    rating_rate: float = 0.0,
) -> list[dict[str, Any]]:
    """Return Poisson hourly counts as `Store.hourly_counts` rows, labels drawn at the shares."""
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(hours):
        hour = start + timedelta(hours=h)
        total = int(rng.poisson(rate))
        neg = int(rng.binomial(total, negative))
        pos = int(rng.binomial(total - neg, positive / (1 - negative)))
        ratings = int(rng.poisson(rating_rate))
        stars = float(rng.integers(1, 6, size=ratings).sum()) if ratings else 0.0
        for label, count, compound in (
            ("negative", neg, -0.6),
            ("positive", pos, 0.5),
            ("neutral", total - neg - pos, 0.0),
        ):
            if count:
                rows.append(row(hour, label, count, compound * count, source))
        if ratings:  # the reviews of the hour, counted as neutral mentions with stars
            rows.append(row(hour, "neutral", ratings, 0.0, "reviews", stars, ratings))
    return rows


def row(
    hour: datetime,
    label: str,
    mentions: int,
    compound_sum: float = 0.0,
    source: str = "reddit",
    rating_sum: float = 0.0,
    ratings: int = 0,
) -> dict[str, Any]:
    return {
        "hour": pd.Timestamp(hour),
        "source": source,
        "label": label,
        "mentions": mentions,
        "compound_sum": compound_sum,
        "rating_sum": rating_sum,
        "ratings": ratings,
    }


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = ["hour", "source", "label", "mentions", "compound_sum", "rating_sum", "ratings"]
    return pd.DataFrame(rows, columns=columns)


def matrix(rows: list[dict[str, Any]], start: datetime, hours: int) -> np.ndarray:
    window = impact.StudyWindow("w", hours // 24, start, start + timedelta(hours=hours))
    return impact.hour_matrix(impact.hourly_sums(frame(rows)), window)


def study(
    rows: list[dict[str, Any]],
    bounds: tuple[datetime, datetime],
    daily: pd.DataFrame | None = None,
    **options: Any,
) -> impact.EventStudy:
    return impact.analyse(
        EVENT,
        hourly=frame(rows),
        daily=daily if daily is not None else pd.DataFrame(),
        topics={},
        bounds=bounds,
        topic_names={},
        options=impact.StudyOptions(n_resamples=FEW, **options),
    )


def daily_rows(first: date, nets: list[tuple[int, int]]) -> pd.DataFrame:
    """Return `Store.daily_counts` rows: (positive, negative) mentions per consecutive day."""
    rows = []
    for i, (pos, neg) in enumerate(nets):
        day = pd.Timestamp(first + timedelta(days=i))
        for label, count in (("positive", pos), ("negative", neg)):
            rows.append(
                {
                    "day": day,
                    "source": "reddit",
                    "label": label,
                    "mentions": count,
                    "compound_sum": 0.0,
                    "rating_sum": 0.0,
                    "ratings": 0,
                }
            )
    return pd.DataFrame(rows)


# -- windows and ratios -----------------------------------------------------------------------


def test_windows_are_the_overview_baseline_and_hours_after_the_event() -> None:
    span = (BASELINE_START - timedelta(days=3), EVENT_AT + timedelta(days=40))
    before, afters = impact.plan_windows(EVENT, span)
    assert (before.start, before.end) == (BASELINE_START, datetime(2024, 3, 29, tzinfo=UTC))
    assert before == impact.plan_windows(EVENT, span)[0]
    baseline = analysis.baseline_window(EVENT_AT)
    assert (before.start, before.end) == (baseline.start, baseline.end)
    assert before.hours == 28 * 24 and before.complete and before.note == ""
    first = datetime(2024, 3, 29, 15, tzinfo=UTC)
    assert [(w.label, w.start, w.end) for w in afters] == [
        ("after 1 day", first, first + timedelta(days=1)),
        ("after 7 days", first, first + timedelta(days=7)),
        ("after 28 days", first, first + timedelta(days=28)),
    ]
    assert all(w.complete for w in afters)


def test_windows_past_the_data_are_cut_and_say_so() -> None:
    data_end = datetime(2024, 4, 10, 15, tzinfo=UTC)  # 12 days after the event's hour
    span = (datetime(2024, 3, 20, 6, tzinfo=UTC), data_end)
    before, afters = impact.plan_windows(EVENT, span)
    assert before.start == span[0] and before.hours == 9 * 24 - 6
    assert before.note == "only 8.8 days of data before the event"
    one, seven, month = afters
    assert one.complete and seven.complete and one.note == ""
    assert month.end == data_end and month.hours == 12 * 24 and not month.complete
    assert month.title == "after 28 days (only 12 days of data so far)"

    _, nothing = impact.plan_windows(EVENT, (span[0], datetime(2024, 3, 29, 15, tzinfo=UTC)))
    assert all(w.hours == 0 and w.note == "no data after the event yet" for w in nothing)
    empty_before, _ = impact.plan_windows(EVENT, None)
    assert empty_before.hours == 0 and empty_before.note == "no data before the event"


def test_metrics_are_ratios_of_hourly_sums_with_quiet_hours_counted() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        row(start, "negative", 3, -1.5),
        row(start, "positive", 1, 0.5, rating_sum=4.0, ratings=1),
        row(start + timedelta(hours=5), "neutral", 4, 0.2, "news"),
        row(start + timedelta(hours=5), "positive", 2, 1.0, rating_sum=9.0, ratings=2),
        row(start + timedelta(hours=30), "negative", 1, -0.5),  # outside the 24 hours
    ]
    found = matrix(rows, start, 24)
    assert found.shape == (24, len(impact.COLUMNS))
    assert found[0].tolist() == [4, 3, 1, -1.0, 4.0, 1]
    assert found[5].tolist() == [6, 0, 2, 1.2, 9.0, 2]
    assert found[1:5].sum() == 0 and found[6:].sum() == 0

    values = impact.metric_values(found.sum(axis=0), 24)
    mentions, negative, positive, compound, rating_sum, ratings = 10, 3, 3, 0.2, 13.0, 3
    assert values.tolist() == pytest.approx(
        [
            24 * mentions / 24,
            negative / mentions,
            compound / mentions,
            (positive - negative) / (positive + negative) * 100,
            rating_sum / ratings,
        ]
    )
    assert impact.metric_values(found.sum(axis=0), 48)[0] == pytest.approx(5.0)  # per day


def test_study_numbers_equal_sums_by_hand_overall_and_per_source() -> None:
    before_start = BASELINE_START
    after_start = datetime(2024, 3, 29, 15, tzinfo=UTC)
    rows = hourly_rows(
        before_start, 28 * 24, rate=1.0, negative=0.2, positive=0.5, seed=1, rating_rate=0.3
    )
    rows += hourly_rows(
        after_start, 7 * 24, rate=3.0, negative=0.5, positive=0.2, seed=2, rating_rate=0.5
    )
    result = study(rows, (before_start, after_start + timedelta(days=7)), after_days=(7,))
    assert result.sources == ("reddit", "reviews")
    raw = frame(rows)
    after_rows = raw[raw["hour"] >= pd.Timestamp(after_start)]
    overall = result.window(7).overall
    assert overall.hours_before == 672 and overall.hours_after == 168
    assert overall.mentions_after == after_rows["mentions"].sum()
    share = overall.metric("share_negative")
    expected = (
        after_rows.loc[after_rows["label"] == "negative", "mentions"].sum()
        / after_rows["mentions"].sum()
    )
    assert share.after == round(expected, 4)
    assert overall.metric("mentions_per_day").after == round(after_rows["mentions"].sum() / 7, 2)
    rating = overall.metric("mean_rating")
    assert rating.after == round(after_rows["rating_sum"].sum() / after_rows["ratings"].sum(), 3)

    reviews = next(c for c in result.window(7).by_source if c.source == "reviews")
    only = after_rows[after_rows["source"] == "reviews"]
    assert reviews.mentions_after == only["mentions"].sum()
    assert reviews.metric("mentions_per_day").after == round(only["mentions"].sum() / 7, 2)
    reddit = next(c for c in result.window(7).by_source if c.source == "reddit")
    assert reddit.metric("mean_rating").before is None
    assert reddit.metric("mean_rating").reason == "no star ratings before the event"


# -- intervals and tests ----------------------------------------------------------------------


def test_interval_holds_the_true_difference_and_p_is_small_for_a_real_effect() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    hours = 28 * 24
    before = matrix(
        hourly_rows(start, hours, rate=1.0, negative=0.2, positive=0.5, seed=3), start, hours
    )
    after = matrix(
        hourly_rows(start, hours, rate=3.0, negative=0.5, positive=0.2, seed=4), start, hours
    )
    found = impact.compare(before, after, n_resamples=FEW)
    # Net sentiment goes from (0.5 - 0.2) / 0.7 x 100 to the same negated.
    truth = {"mentions_per_day": 48.0, "share_negative": 0.3, "net_sentiment": -2 * 0.3 / 0.7 * 100}
    for key, difference in truth.items():
        change = found.metric(key)
        assert change.ci_low is not None and change.ci_high is not None
        assert change.ci_low < difference < change.ci_high, (key, change)
        assert change.clear
        assert change.p_value is not None and change.p_value <= 0.01, change
    assert re.fullmatch(
        r"Negative share rose from 2\d% to 5\d% \(95% CI \+\d\d to \+\d\d points\)",
        found.metric("share_negative").sentence,
    )
    assert found.metric("net_sentiment").sentence.startswith("Net sentiment fell from +")


def test_no_change_gives_a_large_p_and_an_interval_around_zero() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    hours = 14 * 24
    before = matrix(
        hourly_rows(start, hours, rate=2.0, negative=0.3, positive=0.4, seed=5, rating_rate=0.4),
        start,
        hours,
    )
    after = before[np.random.default_rng(6).permutation(hours)]  # the same hours, reordered
    found = impact.compare(before, after, n_resamples=FEW)
    for change in found.metrics:
        assert change.difference == 0.0, change
        assert change.p_value is not None and change.p_value > 0.9, change
        assert change.ci_low is not None and change.ci_high is not None
        assert change.ci_low < 0 < change.ci_high and not change.clear
        assert ": no clear change, " in change.sentence, change.sentence


def test_results_are_reproducible_and_the_seed_is_what_fixes_them() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    before = matrix(hourly_rows(start, 200, rate=1, negative=0.2, positive=0.4, seed=7), start, 200)
    after = matrix(hourly_rows(start, 200, rate=2, negative=0.4, positive=0.3, seed=8), start, 200)
    first = impact.compare(before, after, n_resamples=FEW)
    assert impact.compare(before, after, n_resamples=FEW) == first
    other = impact.compare(before, after, n_resamples=FEW, seed=impact.SEED + 1)
    assert other.metric("share_negative").ci_low != first.metric("share_negative").ci_low


# -- degenerate windows -----------------------------------------------------------------------


def test_empty_and_degenerate_windows_give_none_with_the_reason() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    busy = matrix(hourly_rows(start, 48, rate=2, negative=0.3, positive=0.4, seed=9), start, 48)
    quiet = np.zeros((24, len(impact.COLUMNS)))

    silent = impact.compare(busy, quiet, n_resamples=FEW)
    per_day = silent.metric("mentions_per_day")
    assert per_day.after == 0.0 and per_day.ci_high is not None and per_day.ci_high < 0
    share = silent.metric("share_negative")
    assert share.after is None and share.difference is None and share.ci_low is None
    assert share.p_value is None and share.reason == "no mentions after the event"
    assert share.sentence == "Negative share: not available (no mentions after the event)"
    assert silent.metric("mean_rating").reason == "no star ratings before the event"

    nothing = impact.compare(busy, quiet[:0], n_resamples=FEW)
    assert all(
        m.after is None and m.reason == "no data after the event yet" for m in nothing.metrics
    )

    one_hour = impact.compare(busy, busy[:1] + 1, n_resamples=FEW)
    change = one_hour.metric("mentions_per_day")
    assert change.after is not None and change.ci_low is None and change.p_value is None
    assert change.reason == "too few hours to resample"
    assert "(no confidence interval: too few hours to resample)" in change.sentence


def test_event_after_the_data_has_no_after_window() -> None:
    rows = hourly_rows(BASELINE_START, 24 * 20, rate=1, negative=0.2, positive=0.5, seed=10)
    result = study(rows, (BASELINE_START, BASELINE_START + timedelta(days=20)))
    for window in result.windows:
        assert window.window.hours == 0 and window.window.note == "no data after the event yet"
        assert all(m.reason == "no data after the event yet" for m in window.overall.metrics)
    assert result.recovery.status == "unavailable"
    json.dumps(result.to_dict(), allow_nan=False)


# -- sentences --------------------------------------------------------------------------------


def test_sentences_say_direction_interval_and_no_clear_change() -> None:
    share = impact.METRIC_BY_KEY["share_negative"]
    assert (
        impact.sentence(share, 0.1204, 0.4101, 0.2362, 0.3312, "")
        == "Negative share rose from 12% to 41% (95% CI +24 to +33 points)"
    )
    volume = impact.METRIC_BY_KEY["mentions_per_day"]
    assert (
        impact.sentence(volume, 24.2, 175.3, 128.1, 170.6, "")
        == "Mentions per day rose from 24 to 175 (95% CI +128 to +171)"
    )
    assert (
        impact.sentence(volume, 2.5, 1.25, -2.0, -0.5, "")
        == "Mentions per day fell from 2.5 to 1.2 (95% CI -2.0 to -0.5)"
    )
    rating = impact.METRIC_BY_KEY["mean_rating"]
    assert (
        impact.sentence(rating, 3.9, 3.8, -0.3, 0.12, "")
        == "Mean star rating: no clear change, 3.9 before and 3.8 after (95% CI -0.3 to +0.1)"
    )
    assert (
        impact.sentence(rating, None, 3.8, None, None, "no star ratings before the event")
        == "Mean star rating: not available (no star ratings before the event)"
    )
    cells = impact.metric_cells(
        {
            "metric": "share_negative",
            "before": 0.1204,
            "after": 0.4101,
            "difference": 0.2897,
            "ci_low": 0.2362,
            "ci_high": 0.3312,
            "p_value": 0.0005,
        }
    )
    assert cells == {
        "metric": "Negative share",
        "before": "12.0%",
        "after": "41.0%",
        "difference": "+29.0 points",
        "CI": "+23.6 to +33.1",
        "p": "< 0.001",
    }


# -- recovery ---------------------------------------------------------------------------------


def calm(days: int) -> list[tuple[int, int]]:
    """Return (positive, negative) days alternating net +60 and +62: 7-day nets of about +61."""
    return [(80, 20) if i % 2 else (81, 19) for i in range(days)]


def recovery_for(after: list[tuple[int, int]], *, days_of_data: int | None = None) -> Any:
    """Return the recovery with a calm baseline and the days `after` from the event day on."""
    first = BASELINE_START.date() - timedelta(days=6)
    daily = daily_rows(first, calm(6 + 28) + after)
    shown = len(after) if days_of_data is None else days_of_data
    end_day = EVENT_AT.date() + timedelta(days=shown)
    data_end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC)
    return impact.recovery(daily, EVENT, analysis.baseline_window(EVENT_AT), data_end)


def test_recovery_day_is_when_the_rolling_net_stays_back_in_range() -> None:
    found = recovery_for([(10, 90)] * 5 + calm(15))
    assert found.status == "recovered"
    # The last bad day (event day + 4) leaves the 7-day window on event day + 11.
    assert found.day == EVENT_AT.date() + timedelta(days=11)
    assert found.days_after_event == 11
    assert found.normal_low is not None and found.normal_high is not None
    assert 59 < found.normal_low <= found.normal_high < 63
    assert found.statement.startswith("Net sentiment (7-day) was back in its normal range")
    assert "11 days after the event" in found.statement
    assert found.series[0][0] == BASELINE_START.date()
    assert found.series[-1][0] == found.last_day == EVENT_AT.date() + timedelta(days=19)


def test_recovery_not_yet_never_left_and_unavailable() -> None:
    worse = recovery_for([(10, 90)] * 10)
    assert worse.status == "not_yet" and worse.day is None
    assert worse.last_value is not None and worse.last_value < 0
    assert "has not yet returned" in worse.statement

    steady = recovery_for(calm(10))
    assert steady.status == "never_left" and "never left" in steady.statement

    early = recovery_for([(10, 90)], days_of_data=0)
    assert early.status == "unavailable" and early.series == ()


# -- topics -----------------------------------------------------------------------------------


def test_topic_shares_sorted_by_the_rise_with_readable_names() -> None:
    names = {"breach": "Breach / hack", "outage": "Outage", "legal": "Lawsuit / regulator"}
    shares = impact.topic_shares(
        {"breach": 5, "outage": 20, "legal": 1}, 100, {"breach": 90, "outage": 10}, 200, names
    )
    assert [s.topic for s in shares] == ["breach", "legal", "outage"]
    breach = shares[0]
    assert (breach.name, breach.before, breach.after, breach.change) == (
        "Breach / hack",
        0.05,
        0.45,
        0.4,
    )
    assert shares[2].change == pytest.approx(-0.15)
    empty = impact.topic_shares({}, 0, {"breach": 1}, 10, names)
    assert all(s.before is None and s.change is None for s in empty)


def test_events_disclosure_first_and_found_by_label() -> None:
    later = Event(EVENT_AT + timedelta(days=2), "CEO apology", "response")
    earlier = Event(EVENT_AT - timedelta(days=2), "Rumours", "other")
    assert impact.ordered_events([later, EVENT, earlier]) == [EVENT, earlier, later]
    assert impact.find_event([later, EVENT], "ceo APOLOGY ") == later
    with pytest.raises(LookupError, match="'Breach disclosed', 'CEO apology'"):
        impact.find_event([later, EVENT], "lawsuit")


# -- the demo scenario ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_store(demo_url: str) -> Iterator[Store]:
    db = Store(demo_url)
    yield db
    db.close()


DEMO_RESAMPLES = 500  # the demo's effects are large: 500 resamples settle them as well


@pytest.fixture(scope="module")
def disclosure(demo_store: Store) -> impact.EventStudy:
    options = impact.StudyOptions(n_resamples=DEMO_RESAMPLES)
    return impact.run_event_study(demo_store, demo.EVENTS[0], options)


def test_demo_disclosure_raised_negative_share_volume_and_breach_talk(
    disclosure: impact.EventStudy,
) -> None:
    week = disclosure.window(7)
    share = week.overall.metric("share_negative")
    assert share.after is not None and share.before is not None and share.after > share.before
    assert share.ci_low is not None and share.ci_low > 0 and share.clear
    assert share.p_value is not None and share.p_value < 0.01
    assert share.sentence.startswith("Negative share rose from ")
    volume = week.overall.metric("mentions_per_day")
    assert volume.ci_low is not None and volume.ci_low > 0
    assert volume.sentence.startswith("Mentions per day rose from ")
    breach = next(t for t in week.topics if t.topic == "breach")
    assert breach.change is not None and breach.change > 0.2
    assert week.topics[0].topic == "breach" and breach.name == "Breach / hack"
    assert [w.window.days for w in disclosure.windows] == [1, 7, 28]
    assert all(w.window.complete for w in disclosure.windows)
    assert disclosure.recovery.status in {"recovered", "not_yet"}
    assert disclosure.sources == ("news", "reddit", "reviews")


def test_demo_before_equals_the_overview_baseline(
    demo_store: Store, disclosure: impact.EventStudy
) -> None:
    baseline = analysis.baseline_window(demo.DISCLOSURE)
    kpis = analysis.kpis(demo_store.daily_counts(), baseline)
    overall = disclosure.window(7).overall
    assert overall.mentions_before == kpis.mentions
    for key, expected in (
        ("mentions_per_day", kpis.mentions_per_day),
        ("share_negative", kpis.share_negative),
        ("mean_compound", kpis.mean_compound),
        ("net_sentiment", kpis.net_sentiment),
    ):
        spec = impact.METRIC_BY_KEY[key]
        assert overall.metric(key).before == pytest.approx(expected, abs=10**-spec.digits), key
    counted = demo_store.count_mentions(
        MentionQuery(since=demo.DISCLOSURE, until=demo.DISCLOSURE + timedelta(days=7))
    )
    assert overall.mentions_after == counted


def test_cli_json_equals_the_study_computed_directly(
    demo_url: str, disclosure: impact.EventStudy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    args = ["--database", demo_url, "report", "event-study", "--event", "Breach disclosed"]
    result = CliRunner().invoke(main, [*args, "--json", "--resamples", str(DEMO_RESAMPLES)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"studies": [disclosure.to_dict()]}
    json.dumps(disclosure.to_dict(), allow_nan=False)  # plain JSON: no NaN anywhere

    table = CliRunner().invoke(main, [*args, "--after", "7", "--resamples", "200"])
    assert table.exit_code == 0, table.output
    assert "After 7 days: 2024-05-14 16:00 to 2024-05-21 16:00 UTC" in table.output
    assert "Negative share rose from " in table.output
    assert "After 1 day" not in table.output


def test_cli_options_every_event_and_no_event(
    demo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    options = ["--baseline-days", "14", "--after", "2", "--resamples", "100", "--json"]
    result = CliRunner().invoke(main, ["--database", demo_url, "report", "event-study", *options])
    assert result.exit_code == 0, result.output
    studies = json.loads(result.output)["studies"]
    assert [s["event"]["label"] for s in studies] == [e.label for e in demo.EVENTS]
    assert all(s["before"]["hours"] == 14 * 24 for s in studies)
    assert all([w["window"]["days"] for w in s["windows"]] == [2] for s in studies)

    unknown = CliRunner().invoke(
        main, ["--database", demo_url, "report", "event-study", "--event", "nope"]
    )
    assert unknown.exit_code == 2 and "CEO apology" in unknown.output

    config = tmp_path / "monitor.toml"
    config.write_text('[brand]\nname = "Acme"\n', encoding="utf-8")
    empty = CliRunner().invoke(
        main, ["--config", str(config), "--database", demo_url, "report", "event-study"]
    )
    assert empty.exit_code == 1
    assert "No event is configured" in empty.output and "Traceback" not in empty.output

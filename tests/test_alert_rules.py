"""Alert rules are pure: mentions in, a finding or nothing out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest

from monitor.alerts.rules import (
    DEFAULT_RULES,
    Rule,
    RuleError,
    describe_rule,
    evaluate,
    parse_rules,
    quiet_until,
)

NOW = datetime(2024, 5, 14, 18, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=60)  # the monitor's data starts here unless a test says otherwise


def hits(
    count: int,
    *,
    at: datetime,
    spread: timedelta = timedelta(minutes=50),
    label: str = "neutral",
    engagement: int = 1,
    source: str = "reddit",
    topics: str = "",
) -> list[dict[str, object]]:
    """Return `count` mentions spread evenly over `spread` before `at`."""
    step = spread / max(count, 1)
    return [
        {
            "published_at": pd.Timestamp(at - step * i),
            "source": source,
            "label": label,
            "compound": -0.6 if label == "negative" else 0.6 if label == "positive" else 0.0,
            "engagement": engagement,
            "topics": topics,
            "title": "",
            "text": f"mention {i}",
            "url": f"https://www.reddit.com/r/x/comments/{i}/",
        }
        for i in range(count)
    ]


def frame(*groups: list[dict[str, object]]) -> pd.DataFrame:
    rows = [row for group in groups for row in group]
    return pd.DataFrame(rows).sort_values("published_at", ignore_index=True)


def negative_share(**overrides: object) -> Rule:
    values: dict[str, object] = {"window": timedelta(hours=6), "threshold": 0.4, "min_mentions": 20}
    values.update(overrides)
    return Rule("Negative surge", "negative_share", **values)  # type: ignore[arg-type]


# -- negative share ------------------------------------------------------------------------------


def test_negative_share_fires_above_its_threshold_with_evidence() -> None:
    data = frame(
        hits(15, at=NOW, label="negative", engagement=40), hits(10, at=NOW, label="positive")
    )
    finding = evaluate(negative_share(), data, NOW, data_start=LONG_AGO)
    assert finding is not None
    assert finding.value == pytest.approx(15 / 25)
    assert finding.threshold == 0.4
    assert "60% of 25 mentions in the last 6 hours" in finding.message
    assert len(finding.evidence) == 5 and {e["label"] for e in finding.evidence} == {"negative"}


def test_negative_share_stays_quiet_below_threshold_or_volume() -> None:
    calm = frame(hits(5, at=NOW, label="negative"), hits(20, at=NOW, label="positive"))
    assert evaluate(negative_share(), calm, NOW, data_start=LONG_AGO) is None
    three_posts = frame(hits(3, at=NOW, label="negative"))
    assert evaluate(negative_share(), three_posts, NOW, data_start=LONG_AGO) is None


def test_rules_ignore_what_is_outside_the_window_or_after_now() -> None:
    old = hits(30, at=NOW - timedelta(hours=7), label="negative")
    future = hits(30, at=NOW + timedelta(hours=1), label="negative")
    assert evaluate(negative_share(), frame(old, future), NOW, data_start=LONG_AGO) is None


def test_no_judgement_before_enough_history() -> None:
    data = frame(hits(30, at=NOW, label="negative"))
    rule = negative_share(min_history=timedelta(days=1))
    assert evaluate(rule, data, NOW, data_start=NOW - timedelta(hours=2)) is None
    assert evaluate(rule, data, NOW, data_start=NOW - timedelta(days=2)) is not None


def test_rules_can_be_narrowed_to_sources_and_topics() -> None:
    data = frame(
        hits(25, at=NOW, label="negative", source="news", topics="breach"),
        hits(25, at=NOW, label="positive", source="reddit", topics="breach, customer_service"),
    )
    assert evaluate(negative_share(sources=("news",)), data, NOW, data_start=LONG_AGO) is not None
    assert evaluate(negative_share(sources=("reddit",)), data, NOW, data_start=LONG_AGO) is None
    assert (
        evaluate(negative_share(topics=("customer_service",)), data, NOW, data_start=LONG_AGO)
        is None
    )
    assert evaluate(negative_share(topics=("breach",)), data, NOW, data_start=LONG_AGO) is not None


# -- volume spike ---------------------------------------------------------------------------------


def spike_rule(**overrides: object) -> Rule:
    values: dict[str, object] = {
        "window": timedelta(hours=1),
        "baseline": timedelta(days=7),
        "z": 3.0,
        "ratio": 2.0,
        "min_mentions": 10,
    }
    values.update(overrides)
    return Rule("Volume spike", "volume_spike", **values)  # type: ignore[arg-type]


def steady(per_hour: int, hours: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for h in range(1, hours + 1):
        rows += hits(per_hour, at=NOW - timedelta(hours=h), spread=timedelta(minutes=50))
    return rows


def test_volume_spike_scores_the_window_against_the_baseline_hours() -> None:
    data = frame(steady(4, 24 * 7), hits(30, at=NOW))
    finding = evaluate(spike_rule(), data, NOW, data_start=LONG_AGO)
    assert finding is not None
    # Median 4, MAD 0 -> the Poisson floor sqrt(4) = 2: z = (30 - 4) / 2.
    assert finding.value == pytest.approx(13.0)
    assert "30 mentions in the last hour, against a typical 4" in finding.message


def test_ordinary_busy_hour_is_not_a_spike() -> None:
    data = frame(steady(4, 24 * 7), hits(7, at=NOW))
    assert evaluate(spike_rule(), data, NOW, data_start=LONG_AGO) is None


def test_spike_needs_the_ratio_as_well_as_the_z() -> None:
    data = frame(steady(100, 24 * 7), hits(135, at=NOW))  # z (35/10 = 3.5) but only 1.35x
    assert evaluate(spike_rule(), data, NOW, data_start=LONG_AGO) is None
    assert evaluate(spike_rule(ratio=1.2), data, NOW, data_start=LONG_AGO) is not None


# -- viral negative -------------------------------------------------------------------------------


def viral_rule(**overrides: object) -> Rule:
    values: dict[str, object] = {"window": timedelta(hours=24), "min_engagement": 500}
    values.update(overrides)
    return Rule("Viral negative post", "viral_negative", **values)  # type: ignore[arg-type]


def test_one_negative_post_past_the_bar_fires() -> None:
    data = frame(
        hits(1, at=NOW, label="negative", engagement=1200),
        hits(5, at=NOW, label="positive", engagement=5000),
    )
    finding = evaluate(viral_rule(), data, NOW, data_start=LONG_AGO)
    assert finding is not None and finding.value == 1200
    assert finding.evidence[0]["engagement"] == 1200


def test_positive_viral_posts_do_not_fire() -> None:
    data = frame(
        hits(3, at=NOW, label="positive", engagement=5000),
        hits(3, at=NOW, label="negative", engagement=20),
    )
    assert evaluate(viral_rule(), data, NOW, data_start=LONG_AGO) is None


def test_fast_growth_fires_before_the_absolute_bar() -> None:
    young = hits(1, at=NOW - timedelta(hours=2), label="negative", engagement=300)
    assert evaluate(viral_rule(), frame(young), NOW, data_start=LONG_AGO) is None
    assert (
        evaluate(viral_rule(min_growth_per_hour=100), frame(young), NOW, data_start=LONG_AGO)
        is not None
    )


# -- sentiment drop -------------------------------------------------------------------------------


def drop_rule(**overrides: object) -> Rule:
    values: dict[str, object] = {
        "window": timedelta(hours=24),
        "baseline": timedelta(days=14),
        "drop": 25,
        "min_mentions": 20,
    }
    values.update(overrides)
    return Rule("Sentiment drop", "sentiment_drop", **values)  # type: ignore[arg-type]


def test_sentiment_drop_compares_net_sentiment_with_the_baseline() -> None:
    before_at = NOW - timedelta(days=3)
    data = frame(
        hits(30, at=before_at, spread=timedelta(days=5), label="positive"),
        hits(10, at=before_at, spread=timedelta(days=5), label="negative"),
        hits(10, at=NOW, spread=timedelta(hours=20), label="positive"),
        hits(20, at=NOW, spread=timedelta(hours=20), label="negative"),
    )
    finding = evaluate(drop_rule(), data, NOW, data_start=LONG_AGO)
    assert finding is not None
    # Before: (30 - 10) / 40 = +50; now: (10 - 20) / 30 = -33: a drop of 83 points.
    assert finding.value == pytest.approx(50 + 100 / 3)
    assert evaluate(drop_rule(drop=90), data, NOW, data_start=LONG_AGO) is None


# -- configuration ---------------------------------------------------------------------------------


def test_rules_from_the_config() -> None:
    raw = [
        {
            "name": "Negative surge",
            "type": "negative_share",
            "window": "6h",
            "threshold": 0.4,
            "min_mentions": 20,
            "cooldown": "6h",
            "severity": "high",
            "sources": ["reddit"],
        },
        {
            "name": "Volume spike",
            "type": "volume_spike",
            "window": "1h",
            "baseline": "7d",
            "z": 3.0,
        },
    ]
    surge, spike = parse_rules(raw, Path("monitor.toml"))
    assert (surge.window, surge.threshold, surge.severity, surge.sources) == (
        timedelta(hours=6),
        0.4,
        "high",
        ("reddit",),
    )
    assert (spike.baseline, spike.z) == (timedelta(days=7), 3.0)
    assert parse_rules(None, Path("monitor.toml")) == DEFAULT_RULES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([{"type": "negative_share"}], "name is missing"),
        ([{"name": "X", "type": "sentiment"}], "type = 'sentiment'"),
        (
            [{"name": "X", "type": "negative_share", "window": "soon"}],
            "window = 'soon' is not a duration",
        ),
        (
            [{"name": "X", "type": "negative_share", "threshold": 40}],
            "threshold is a share between 0 and 1",
        ),
        ([{"name": "X", "type": "negative_share", "treshold": 0.4}], "unknown key 'treshold'"),
        ([{"name": "X", "type": "negative_share", "severity": "urgent"}], "severity = 'urgent'"),
        (
            [{"name": "X", "type": "negative_share"}, {"name": "X", "type": "volume_spike"}],
            "two [[alerts.rules]] are named 'X'",
        ),
        (
            [{"name": "X", "type": "negative_share", "cooldown": "12h", "max_cooldown": "6h"}],
            "max_cooldown (6 hours) is shorter than cooldown (12 hours)",
        ),
        (
            [{"name": "X", "type": "negative_share", "max_cooldown": "a day"}],
            "max_cooldown = 'a day' is not a duration",
        ),
    ],
)
def test_bad_rules_are_named_with_their_key(raw: object, expected: str) -> None:
    with pytest.raises(RuleError) as problem:
        parse_rules(raw, Path("monitor.toml"))
    assert expected in str(problem.value)
    assert "monitor.toml" in str(problem.value)


# -- quiet periods --------------------------------------------------------------------------------

H = timedelta(hours=1)
GROWING = negative_share(cooldown=6 * H, max_cooldown=24 * H)


def test_a_rule_that_never_fired_may_fire() -> None:
    assert quiet_until(GROWING, []) is None


def test_a_fixed_cooldown_never_grows() -> None:
    fixed = negative_share(cooldown=6 * H)
    fired = [NOW + 6 * H * i for i in range(5)]
    assert quiet_until(fixed, fired) == fired[-1] + 6 * H


def test_the_quiet_period_doubles_while_the_rule_keeps_firing_up_to_its_maximum() -> None:
    # Each alert as soon as the quiet period before it allowed: 6h, 12h, 24h, 24h.
    fired = [NOW]
    for _ in range(5):
        fired.append(quiet_until(GROWING, fired))  # type: ignore[arg-type]
    assert [later - earlier for earlier, later in pairwise(fired)] == [
        6 * H,
        12 * H,
        24 * H,
        24 * H,
        24 * H,
    ]
    # The engine reads only the latest alerts the answer depends on, and gets the same.
    latest = fired[-GROWING.remembered_alerts :]
    assert GROWING.remembered_alerts == 3
    assert quiet_until(GROWING, latest) == quiet_until(GROWING, fired) == fired[-1] + 24 * H


def test_a_zero_cooldown_stays_zero() -> None:
    eager = negative_share(cooldown=timedelta(0), max_cooldown=24 * H)
    assert eager.remembered_alerts == 1
    assert quiet_until(eager, [NOW, NOW + H]) == NOW + H


def test_after_a_calm_the_quiet_period_starts_again_from_the_cooldown() -> None:
    # Three alerts in a row, then none for more than max_cooldown + cooldown.
    fired = [NOW, NOW + 6 * H, NOW + 18 * H, NOW + 18 * H + 31 * H]
    assert quiet_until(GROWING, fired) == fired[-1] + 6 * H
    # Within max_cooldown + cooldown of the one before, it counts as the same crisis.
    fired[-1] = NOW + 18 * H + 30 * H
    assert quiet_until(GROWING, fired) == fired[-1] + 24 * H


def test_the_listing_says_how_the_quiet_period_grows() -> None:
    assert describe_rule(GROWING).endswith(
        "; cooldown 6 hours, doubling to 24 hours while it keeps firing"
    )
    assert describe_rule(negative_share(cooldown=6 * H)).endswith("; cooldown 6 hours")
    (parsed,) = parse_rules(
        [{"name": "X", "type": "negative_share", "cooldown": "6h", "max_cooldown": "2d"}],
        Path("monitor.toml"),
    )
    assert (parsed.cooldown, parsed.max_cooldown) == (6 * H, 48 * H)

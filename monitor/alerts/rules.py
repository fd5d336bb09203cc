"""Alert rules: pure functions from mentions to findings. No I/O, no clock.

A rule sees a frame of mentions sorted by time (columns: published_at (UTC), source, label,
compound, engagement, topics ("a, b"), title, text, url) and the moment `now` it is evaluated
at, and looks only at mentions published at or before `now`. It returns a Finding or None.

Types:
- negative_share: the share of negative mentions in the last `window` reaches `threshold`.
- volume_spike: the count in the last `window` against the same-length windows of the
  `baseline` before it: robust z-score (median and MAD) at least `z`, and at least `ratio`
  times the median.
- viral_negative: one negative mention whose engagement reaches `min_engagement`, or whose
  engagement per hour since it was posted reaches `min_growth_per_hour`.
- sentiment_drop: net sentiment in the last `window` is at least `drop` points below the
  `baseline` before it.

Every rule guards against judging too early (`min_history`: how long the frame must reach
back) and too little (`min_mentions` in the window), and can be narrowed to some sources and
topics. When a rule may fire again (`quiet_until`, from when it fired before) is pure too;
storing and reading that history belongs to the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitor.models import parse_duration

RULE_TYPES = ("negative_share", "volume_spike", "viral_negative", "sentiment_drop")
SEVERITIES = ("low", "medium", "high", "critical")
DEFAULT_COOLDOWN = timedelta(hours=6)
EVIDENCE = 5
# 1.4826 x MAD estimates the standard deviation of normally distributed data.
MAD_TO_SD = 1.4826


class RuleError(ValueError):
    """A rule in the config is wrong; the message names the rule and the key."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One configured alert rule."""

    name: str
    type: str
    severity: str = "medium"
    window: timedelta = timedelta(hours=6)
    baseline: timedelta = timedelta(days=7)
    threshold: float = 0.4
    z: float = 3.0
    ratio: float = 2.0
    drop: float = 25.0
    min_engagement: int = 500
    min_growth_per_hour: float | None = None
    min_mentions: int = 10
    min_history: timedelta | None = None
    cooldown: timedelta = DEFAULT_COOLDOWN
    # While the rule keeps firing, each quiet period doubles up to this (None: it never grows).
    max_cooldown: timedelta | None = None
    sources: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()

    @property
    def uses_baseline(self) -> bool:
        """Return True for rules that compare the window with the time before it."""
        return self.type in ("volume_spike", "sentiment_drop")

    @property
    def lookback(self) -> timedelta:
        """Return how far before `now` the rule reads."""
        return self.window + (self.baseline if self.uses_baseline else timedelta(0))

    @property
    def remembered_alerts(self) -> int:
        """Return how many of its latest alerts the rule's quiet period depends on."""
        longest = self.max_cooldown or self.cooldown
        doublings = 0
        # A zero cooldown never grows (and would never reach `longest`).
        while self.cooldown > timedelta(0) and self.cooldown * 2**doublings < longest:
            doublings += 1
        return doublings + 1

    @property
    def required_history(self) -> timedelta:
        """Return how far back the data must reach before the rule may judge."""
        if self.min_history is not None:
            return self.min_history
        return self.lookback


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule found at `at`: its value against its threshold, in words, with evidence."""

    rule: Rule
    at: datetime
    value: float
    threshold: float
    message: str
    evidence: list[dict[str, Any]] = field(default_factory=list)


def quiet_until(rule: Rule, fired: Sequence[datetime]) -> datetime | None:
    """Return when `rule` may fire again, given when it last fired (oldest first; at least
    its `remembered_alerts` latest), or None when it never has.

    After an alert the rule is quiet for its `cooldown`. With a `max_cooldown`, an alert that
    follows the one before within `max_cooldown` plus `cooldown` (the condition never really
    cleared) doubles the quiet period, up to `max_cooldown`: a crisis that lasts weeks is
    re-announced daily, not every few hours, while a new one after a calm starts afresh.
    """
    if not fired:
        return None
    quiet = rule.cooldown
    if rule.max_cooldown is not None:
        for earlier, later in pairwise(fired):
            if later - earlier <= rule.max_cooldown + rule.cooldown:
                quiet = min(quiet * 2, rule.max_cooldown)
            else:
                quiet = rule.cooldown
    return fired[-1] + max(quiet, rule.cooldown)


# -- the rules ----------------------------------------------------------------------------------


def evaluate(
    rule: Rule, frame: pd.DataFrame, now: datetime, *, data_start: datetime | None = None
) -> Finding | None:
    """Return what `rule` finds at `now` in `frame`, or None.

    `data_start` is when the monitor's data begins (default: the earliest mention in
    `frame`); a rule judges only once data reaches back `rule.required_history`.
    """
    start = data_start if data_start is not None else _earliest(frame)
    if start is None or now - start < rule.required_history:
        return None
    scoped = _scope(rule, frame)
    return _EVALUATORS[rule.type](rule, scoped, now)


def _negative_share(rule: Rule, frame: pd.DataFrame, now: datetime) -> Finding | None:
    window = _between(frame, now - rule.window, now)
    if len(window) < rule.min_mentions:
        return None
    negative = window["label"].to_numpy() == "negative"
    share = float(negative.sum()) / len(window)
    if share < rule.threshold:
        return None
    return Finding(
        rule,
        now,
        share,
        rule.threshold,
        f"{share:.0%} of {len(window)} mentions in the last {_span(rule.window)} are negative "
        f"(threshold {rule.threshold:.0%}).",
        _evidence(window[negative]),
    )


def _volume_spike(rule: Rule, frame: pd.DataFrame, now: datetime) -> Finding | None:
    window = _between(frame, now - rule.window, now)
    count = len(window)
    if count < rule.min_mentions:
        return None
    bins = max(1, int(rule.baseline / rule.window))
    edges = [now - rule.window * (bins - i) - rule.window for i in range(bins + 1)]
    history = _between(frame, edges[0], edges[-1])
    # Seconds from one origin: timestamps may be stored in ns or us, never mix the units.
    origin = pd.Timestamp(edges[0])
    offsets = (history["published_at"] - origin).dt.total_seconds().to_numpy()
    counts = np.histogram(
        offsets, bins=[(pd.Timestamp(e) - origin).total_seconds() for e in edges]
    )[0]
    median = float(np.median(counts))
    mad = float(np.median(np.abs(counts - median)))
    # A quiet baseline has MAD 0; fall back to Poisson noise (sqrt of the median, at least 1).
    scale = max(MAD_TO_SD * mad, float(np.sqrt(max(median, 1.0))))
    z = (count - median) / scale
    ratio = count / max(median, 1.0)
    if z < rule.z or ratio < rule.ratio:
        return None
    return Finding(
        rule,
        now,
        z,
        rule.z,
        f"{count} mentions in the last {_span(rule.window)}, against a typical {median:.0f} "
        f"over the previous {_span(rule.baseline)} (robust z {z:.1f}, {ratio:.1f}x; "
        f"threshold z {rule.z:.1f}).",
        _evidence(window),
    )


def _viral_negative(rule: Rule, frame: pd.DataFrame, now: datetime) -> Finding | None:
    window = _between(frame, now - rule.window, now)
    if window.empty:
        return None
    # Count with arrays; build a frame only for what fires (this runs at every replay step).
    negative = window["label"].to_numpy() == "negative"
    engagement = window["engagement"].to_numpy(dtype=float)
    viral = negative & (engagement >= rule.min_engagement)
    if rule.min_growth_per_hour is not None:
        age = (pd.Timestamp(now) - window["published_at"]).dt.total_seconds().to_numpy() / 3600
        viral |= negative & (engagement / age.clip(min=1.0) >= rule.min_growth_per_hour)
    if not viral.any():
        return None
    top = window[viral].sort_values("engagement", ascending=False)
    peak = float(top["engagement"].iloc[0])
    return Finding(
        rule,
        now,
        peak,
        float(rule.min_engagement),
        f"A negative {top['source'].iloc[0]} post has {peak:,.0f} engagement "
        f"(threshold {rule.min_engagement:,}); {int(viral.sum())} such post(s) in the last "
        f"{_span(rule.window)}.",
        _evidence(top),
    )


def _sentiment_drop(rule: Rule, frame: pd.DataFrame, now: datetime) -> Finding | None:
    window = _between(frame, now - rule.window, now)
    before = _between(frame, now - rule.window - rule.baseline, now - rule.window)
    if len(window) < rule.min_mentions or len(before) < rule.min_mentions:
        return None
    net_now, net_before = _net(window), _net(before)
    if net_now is None or net_before is None:
        return None
    drop = net_before - net_now
    if drop < rule.drop:
        return None
    return Finding(
        rule,
        now,
        drop,
        rule.drop,
        f"Net sentiment {net_now:+.0f} in the last {_span(rule.window)}, {drop:.0f} points "
        f"below the previous {_span(rule.baseline)} ({net_before:+.0f}; threshold "
        f"{rule.drop:.0f} points).",
        _evidence(window[window["label"] == "negative"]),
    )


_EVALUATORS: dict[str, Callable[[Rule, pd.DataFrame, datetime], Finding | None]] = {
    "negative_share": _negative_share,
    "volume_spike": _volume_spike,
    "viral_negative": _viral_negative,
    "sentiment_drop": _sentiment_drop,
}


# -- helpers ------------------------------------------------------------------------------------


def _earliest(frame: pd.DataFrame) -> datetime | None:
    if frame.empty:
        return None
    return pd.Timestamp(frame["published_at"].iloc[0]).to_pydatetime()


def _scope(rule: Rule, frame: pd.DataFrame) -> pd.DataFrame:
    if rule.sources:
        frame = frame[frame["source"].isin(rule.sources)]
    if rule.topics:
        wanted = set(rule.topics)
        frame = frame[frame["topics"].map(lambda t: bool(wanted & set(t.split(", "))))]
    return frame


def _between(frame: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """Return the rows published in (start, end]; `frame` is sorted by published_at."""
    times = frame["published_at"]
    lo = times.searchsorted(pd.Timestamp(start), side="right")
    hi = times.searchsorted(pd.Timestamp(end), side="right")
    return frame.iloc[lo:hi]


def _net(frame: pd.DataFrame) -> float | None:
    labels = frame["label"].to_numpy()
    positive = int((labels == "positive").sum())
    negative = int((labels == "negative").sum())
    return (positive - negative) / (positive + negative) * 100 if positive + negative else None


def _evidence(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the most-engaged mentions of `frame` as plain dicts."""
    top = frame.sort_values(["engagement", "published_at"], ascending=[False, False]).head(EVIDENCE)
    return [
        {
            # A frame without text (the engine's) cites by id; the engine adds the text.
            **({"id": int(row["id"])} if "id" in row else {}),
            "source": str(row["source"]),
            "published_at": row["published_at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "title": str(row.get("title", "")),
            "text": str(row.get("text", ""))[:500],
            "url": str(row.get("url", "")),
            "engagement": int(row["engagement"]),
            "label": str(row["label"]),
            "compound": float(row["compound"]),
        }
        for row in top.to_dict("records")
    ]


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours % 24 == 0 and hours >= 24:
        days = int(hours // 24)
        return f"{days} days" if days != 1 else "24 hours"
    return f"{hours:g} hours" if hours != 1 else "hour"


# -- reading rules from the config --------------------------------------------------------------

RULE_KEYS = {
    "name",
    "type",
    "severity",
    "window",
    "baseline",
    "threshold",
    "z",
    "ratio",
    "drop",
    "min_engagement",
    "min_growth_per_hour",
    "min_mentions",
    "min_history",
    "cooldown",
    "max_cooldown",
    "sources",
    "topics",
}

# Shipped when the config names no rules. Reasoning in docs/alerts.md.
DEFAULT_RULES = (
    # Reasoning for each default: docs/alerts.md.
    Rule(
        "Negative surge",
        "negative_share",
        severity="high",
        window=timedelta(hours=6),
        threshold=0.45,
        min_mentions=20,
        min_history=timedelta(days=1),
        cooldown=timedelta(hours=6),
        max_cooldown=timedelta(hours=24),
    ),
    Rule(
        "Volume spike",
        "volume_spike",
        severity="medium",
        window=timedelta(hours=1),
        baseline=timedelta(days=7),
        z=4.0,
        ratio=3.0,
        min_mentions=10,
        cooldown=timedelta(hours=6),
        max_cooldown=timedelta(hours=24),
    ),
    Rule(
        "Viral negative post",
        "viral_negative",
        severity="high",
        window=timedelta(hours=24),
        min_engagement=1000,
        min_history=timedelta(0),
        cooldown=timedelta(hours=24),
    ),
    Rule(
        "Sentiment drop",
        "sentiment_drop",
        severity="medium",
        window=timedelta(hours=24),
        baseline=timedelta(days=14),
        drop=30,
        min_mentions=40,
        cooldown=timedelta(hours=24),
    ),
)


def parse_rules(raw: object, path: Path) -> tuple[Rule, ...]:
    """Return the rules of an `[[alerts.rules]]` list; raise RuleError naming rule and key."""
    if raw is None:
        return DEFAULT_RULES
    if not isinstance(raw, list):
        raise RuleError(
            f"{path}: 'alerts.rules' must be a list of tables, written [[alerts.rules]]."
        )
    rules = [_parse_rule(item, i, path) for i, item in enumerate(raw)]
    names = [r.name for r in rules]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise RuleError(
            f"{path}: two [[alerts.rules]] are named {duplicate!r}; names key the cooldown."
        )
    return tuple(rules)


def _parse_rule(raw: object, index: int, path: Path) -> Rule:
    where = f"{path}: [[alerts.rules]] #{index + 1}"
    if not isinstance(raw, Mapping):
        raise RuleError(f"{where} must be a table.")
    name = raw.get("name")
    if isinstance(name, str) and name.strip():
        where = f"{path}: [[alerts.rules]] {name.strip()!r}"
    else:
        raise RuleError(f'{where}: name is missing; add name = "...".')
    unknown = sorted(set(raw) - RULE_KEYS)
    if unknown:
        raise RuleError(
            f"{where}: unknown key '{unknown[0]}'. Known keys: {', '.join(sorted(RULE_KEYS))}."
        )
    kind = raw.get("type")
    if kind not in RULE_TYPES:
        raise RuleError(f"{where}: type = {kind!r}; use one of {', '.join(RULE_TYPES)}.")
    values: dict[str, Any] = {"name": name.strip(), "type": kind}
    for key in ("window", "baseline", "min_history", "cooldown", "max_cooldown"):
        if key in raw:
            try:
                values[key] = parse_duration(raw[key])
            except ValueError:
                raise RuleError(
                    f'{where}: {key} = {raw[key]!r} is not a duration like "6h" or "7d".'
                ) from None
    for key in ("threshold", "z", "ratio", "drop", "min_growth_per_hour"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise RuleError(f"{where}: {key} must be a number >= 0.")
            values[key] = float(value)
    for key in ("min_engagement", "min_mentions"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise RuleError(f"{where}: {key} must be a whole number >= 0.")
            values[key] = value
    if "severity" in raw:
        if raw["severity"] not in SEVERITIES:
            raise RuleError(
                f"{where}: severity = {raw['severity']!r}; use one of {', '.join(SEVERITIES)}."
            )
        values["severity"] = raw["severity"]
    for key in ("sources", "topics"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise RuleError(f'{where}: {key} must be a list of strings, e.g. ["reddit"].')
            values[key] = tuple(value)
    if kind == "negative_share" and "threshold" in values and values["threshold"] > 1:
        raise RuleError(f"{where}: threshold is a share between 0 and 1 (0.4 means 40%).")
    if values.get("window", timedelta(hours=1)) <= timedelta(0):
        raise RuleError(f"{where}: window must be longer than 0.")
    cooldown = values.get("cooldown", DEFAULT_COOLDOWN)
    if "max_cooldown" in values and values["max_cooldown"] < cooldown:
        raise RuleError(
            f"{where}: max_cooldown ({_span(values['max_cooldown'])}) is shorter than "
            f"cooldown ({_span(cooldown)}); the quiet period only grows from cooldown."
        )
    return Rule(**values)


def describe_rule(rule: Rule) -> str:
    """Return a rule in one line, for listings."""
    window, baseline = _span(rule.window), _span(rule.baseline)
    condition = {
        "negative_share": f"negative share >= {rule.threshold:.0%} over {window}",
        "volume_spike": f"z >= {rule.z:g} and >= {rule.ratio:g}x over {window} vs {baseline}",
        "viral_negative": f"a negative post with engagement >= {rule.min_engagement:,}",
        "sentiment_drop": f"net sentiment down >= {rule.drop:g} points over {window} vs {baseline}",
    }[rule.type]
    scope = (f"; sources {', '.join(rule.sources)}" if rule.sources else "") + (
        f"; topics {', '.join(rule.topics)}" if rule.topics else ""
    )
    quiet = f"cooldown {_span(rule.cooldown)}"
    if rule.max_cooldown is not None and rule.max_cooldown > rule.cooldown:
        quiet += f", doubling to {_span(rule.max_cooldown)} while it keeps firing"
    return f"{rule.name} [{rule.severity}]: {condition}{scope}; {quiet}"

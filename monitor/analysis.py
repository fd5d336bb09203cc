"""Numbers for the crisis team, computed from daily aggregates. Pure: data in, data out.

Definitions (also in README, "How each number is computed"):
- mentions per day = mentions in the window / the window's length in days
- mean compound = the average VADER+lexicon compound score, -1..+1
- share negative = negative mentions / all mentions
- net sentiment = (positive - negative) / (positive + negative) x 100, -100..+100
- a topic's share = negative mentions carrying the topic / all negative mentions (a mention
  may carry several topics or none, so shares do not add up to 100%)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from monitor.models import LABELS

BASELINE_DAYS = 28
ROLLING_DAYS = 7


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open UTC time range [start, end); KPIs and charts use whole days."""

    start: datetime
    end: datetime

    @property
    def days(self) -> float:
        """Return the window's length in days."""
        return (self.end - self.start) / timedelta(days=1)

    @property
    def last_day(self) -> datetime:
        """Return the start of the window's last day (its end is exclusive)."""
        return start_of_day(self.end - timedelta(microseconds=1))

    def describe(self) -> str:
        """Return the window as people read it."""
        return f"{self.start:%Y-%m-%d} to {self.last_day:%Y-%m-%d} (UTC)"


@dataclass(frozen=True, slots=True)
class Kpis:
    """The four headline numbers for one window."""

    mentions: int
    mentions_per_day: float
    mean_compound: float | None
    share_negative: float | None
    net_sentiment: float | None
    negative: int  # negative mentions, the count behind share_negative


def start_of_day(value: datetime) -> datetime:
    """Return midnight UTC of `value`'s day."""
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def baseline_window(anchor: datetime, days: int = BASELINE_DAYS) -> Window:
    """Return the `days` whole UTC days before the day of `anchor` (the disclosure).

    Charts and KPIs count whole days, so the disclosure day itself belongs to "after":
    none of its mentions can lift the baseline.
    """
    first_after = start_of_day(anchor)
    return Window(first_after - timedelta(days=days), first_after)


def kpis(daily: pd.DataFrame, window: Window) -> Kpis:
    """Return the KPIs of `window` from daily counts (columns day, label, mentions, compound_sum).

    Daily rows are whole UTC days, so a window is counted by the days it covers.
    """
    rows = _days_within(daily, window)
    total = int(rows["mentions"].sum())
    by_label = rows.groupby("label")["mentions"].sum()
    negative = int(by_label.get("negative", 0))
    positive = int(by_label.get("positive", 0))
    return Kpis(
        mentions=total,
        mentions_per_day=total / window.days if window.days > 0 else 0.0,
        mean_compound=float(rows["compound_sum"].sum()) / total if total else None,
        share_negative=negative / total if total else None,
        net_sentiment=net_sentiment(positive, negative),
        negative=negative,
    )


def net_sentiment(positive: float, negative: float) -> float | None:
    """Return (positive - negative) / (positive + negative) x 100, or None with neither."""
    polar = positive + negative
    return (positive - negative) / polar * 100 if polar else None


@dataclass(frozen=True, slots=True)
class NarrativeTopic:
    """One topic among a window's negative mentions, against the baseline's."""

    topic: str
    name: str
    mentions: int  # negative mentions in the window carrying the topic
    share: float | None  # of the window's negative mentions
    baseline_share: float | None  # of the baseline's negative mentions
    change: float | None  # share - baseline_share, as a fraction (x 100 for points)


def narrative_topics(
    counts: Mapping[str, int],
    negatives: int,
    baseline_counts: Mapping[str, int],
    baseline_negatives: int,
    names: Mapping[str, str],
    top: int | None = None,
) -> tuple[NarrativeTopic, ...]:
    """Return what negative mentions are about: the topics they carry, most mentions first
    (the first `top` of them, or all), each with its share now and in the baseline.

    `counts` and `negatives` are the window's topic counts and negative mentions;
    `baseline_counts` and `baseline_negatives` the baseline's (0 when there is none).
    """
    rows = []
    for topic, name in names.items():
        mentions = int(counts.get(topic, 0))
        if not mentions:
            continue
        share = mentions / negatives if negatives else None
        before = (
            int(baseline_counts.get(topic, 0)) / baseline_negatives if baseline_negatives else None
        )
        change = None if share is None or before is None else share - before
        rows.append(NarrativeTopic(topic, name, mentions, share, before, change))
    rows.sort(key=lambda t: (-t.mentions, -(t.change or 0.0), t.name))
    return tuple(rows if top is None else rows[:top])


def biggest_rise(topics: Sequence[NarrativeTopic]) -> NarrativeTopic | None:
    """Return the topic whose share of negative mentions rose most against the baseline
    (None when none rose, or there is no baseline)."""
    risen = [t for t in topics if t.change is not None and t.change > 0]
    return max(risen, key=lambda t: (t.change, t.mentions), default=None)


def daily_series(daily: pd.DataFrame, window: Window | None = None) -> pd.DataFrame:
    """Return one row per day: counts per label, total, mean compound and net sentiment.

    Days without mentions are present with zero counts, so charts show the gaps; the
    rolling net sentiment covers the last ROLLING_DAYS days including the day itself. With
    star ratings in the input, mean_rating and its rolling mean are added (NaN on days
    without a rating).
    """
    rows = daily if window is None else _days_within(daily, window)
    if window is not None:
        days = pd.date_range(
            _day(window.start), _day(window.end - timedelta(microseconds=1)), freq="D"
        )
    elif not rows.empty:
        days = pd.date_range(rows["day"].min(), rows["day"].max(), freq="D")
    else:
        days = pd.DatetimeIndex([])
    counts = (
        rows.pivot_table(index="day", columns="label", values="mentions", aggfunc="sum")
        .reindex(index=days, columns=list(LABELS))
        .fillna(0)
        .astype(int)
    )
    counts.index.name = "day"
    compound = rows.groupby("day")["compound_sum"].sum().reindex(days).fillna(0.0)
    counts["mentions"] = counts[list(LABELS)].sum(axis=1)
    counts["mean_compound"] = (compound / counts["mentions"].where(counts["mentions"] > 0)).astype(
        float
    )
    counts["net_sentiment"] = [
        net_sentiment(p, n) for p, n in zip(counts["positive"], counts["negative"], strict=True)
    ]
    if "ratings" in rows:
        ratings = rows.groupby("day")[["rating_sum", "ratings"]].sum().reindex(days).fillna(0)
        counts["ratings"] = ratings["ratings"].astype(int)
        counts["mean_rating"] = ratings["rating_sum"] / ratings["ratings"].where(
            ratings["ratings"] > 0
        )
        rolled_ratings = ratings.rolling(ROLLING_DAYS, min_periods=1).sum()
        counts["rolling_mean_rating"] = rolled_ratings["rating_sum"] / rolled_ratings[
            "ratings"
        ].where(rolled_ratings["ratings"] > 0)
    rolled = counts[["positive", "negative"]].rolling(ROLLING_DAYS, min_periods=1).sum()
    counts["rolling_net_sentiment"] = [
        net_sentiment(p, n) for p, n in zip(rolled["positive"], rolled["negative"], strict=True)
    ]
    return counts


def by_source(daily: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Return per-source mentions, label shares, mean compound and net sentiment for `window`."""
    rows = _days_within(daily, window)
    if rows.empty:
        return pd.DataFrame(
            columns=[
                "source",
                "mentions",
                *LABELS,
                "share_negative",
                "mean_compound",
                "net_sentiment",
            ]
        )
    counts = (
        rows.pivot_table(index="source", columns="label", values="mentions", aggfunc="sum")
        .reindex(columns=list(LABELS))
        .fillna(0)
        .astype(int)
    )
    counts["mentions"] = counts[list(LABELS)].sum(axis=1)
    counts["share_negative"] = counts["negative"] / counts["mentions"]
    counts["mean_compound"] = rows.groupby("source")["compound_sum"].sum() / counts["mentions"]
    counts["net_sentiment"] = [
        net_sentiment(p, n) for p, n in zip(counts["positive"], counts["negative"], strict=True)
    ]
    return counts.reset_index().sort_values("mentions", ascending=False, ignore_index=True)


def _day(value: datetime) -> pd.Timestamp:
    return pd.Timestamp(value.date())


def _days_within(daily: pd.DataFrame, window: Window) -> pd.DataFrame:
    if daily.empty:
        return daily
    start, end = _day(window.start), _day(window.end - timedelta(microseconds=1))
    return daily[(daily["day"] >= start) & (daily["day"] <= end)]

"""Before/after event study: did an event change how people talk about the brand, and by how much?

Pure analysis, except `run_event_study`, which reads the three aggregates it needs from the
store (hourly counts, daily counts, topic counts) and hands them to `analyse`. The method, in
short (docs/impact.md has the long version):

Windows
    Before = the Overview's baseline: the `baseline_days` (28) whole UTC days before the
    event's day (`analysis.baseline_window`). After N days = [the event's time floored to the
    hour, + N days), N in (1, 7, 28) by default. The hours of the event day before the event
    belong to neither window. A window that runs past the end of the data is cut there (or,
    for the baseline, where the data begins) and says so.
Unit of resampling: the UTC hour
    Mentions arrive in bursts (a viral thread, a news cycle), so single mentions are not
    independent; hours are much closer to it. Each window becomes a matrix of per-hour sums
    (mentions, negative, positive, compound_sum, rating_sum, ratings), hours without mentions
    included as zeros, built from `Store.hourly_counts` (never from single mentions).
Metrics, each a ratio of sums over the window's hours
    mentions per day = 24 x mentions / hours; share negative = negative / mentions; mean
    compound = compound_sum / mentions; net sentiment = (positive - negative) / (positive +
    negative) x 100; mean star rating = rating_sum / ratings. They equal the Overview's KPIs
    for the same days.
Difference, confidence interval, test
    difference = after - before. The 95% interval is `scipy.stats.bootstrap` over hour indices
    (two independent samples, percentile method, 2,000 resamples, fixed seed); the p-value is
    `scipy.stats.permutation_test` (independent, two-sided) of the same statistic with the same
    seed, so the numbers are reproducible and the dashboard equals the CLI. A metric with no
    denominator in a window (no mentions, no ratings) is None with the reason; so is an interval
    or p-value when a window has fewer than two hours or the resamples hit empty denominators.
    Overall and per source.
Time to recovery
    The baseline's normal range is the 2.5th-97.5th percentile of the 7-day rolling net
    sentiment on the baseline's days. The recovery day is the first day on or after the event
    day from which the rolling value stays inside that range through the last full day of
    data: "not yet" if the last day is outside, "never left" if no day after the event was.
Topics
    The share of mentions tagged with each topic, before and after, sorted by the rise.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats  # type: ignore[import-untyped]

from monitor.analysis import (
    BASELINE_DAYS,
    ROLLING_DAYS,
    Window,
    baseline_window,
    daily_series,
    start_of_day,
)
from monitor.models import Event, MentionQuery

if TYPE_CHECKING:
    from monitor.store import Store

AFTER_DAYS = (1, 7, 28)
N_RESAMPLES = 2000
CONFIDENCE_LEVEL = 0.95
SEED = 1729  # fixed: the same data always gives the same intervals, on the page and in the CLI
NORMAL_RANGE = (2.5, 97.5)  # percentiles of the baseline's rolling net sentiment
HOUR = timedelta(hours=1)
# Per-hour sums every metric is a ratio of, in this column order.
COLUMNS = ("mentions", "negative", "positive", "compound_sum", "rating_sum", "ratings")
# Resampled index arrays are gathered in batches of at most this many cells.
_BATCH_CELLS = 2_000_000


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """How one metric is named, rounded and written."""

    key: str
    name: str
    digits: int  # rounding of values, differences and intervals in results and JSON
    kind: str  # count | share | score | net | rating
    needs: str  # what a window must contain for the metric to exist


METRICS = (
    MetricSpec("mentions_per_day", "Mentions per day", 2, "count", "data"),
    MetricSpec("share_negative", "Negative share", 4, "share", "mentions"),
    MetricSpec("mean_compound", "Mean sentiment", 4, "score", "mentions"),
    MetricSpec("net_sentiment", "Net sentiment", 2, "net", "positive or negative mentions"),
    MetricSpec("mean_rating", "Mean star rating", 3, "rating", "star ratings"),
)
METRIC_BY_KEY = {spec.key: spec for spec in METRICS}


@dataclass(frozen=True, slots=True)
class StudyOptions:
    """What to compare: the windows, the sources, and the resampling."""

    baseline_days: int = BASELINE_DAYS
    after_days: tuple[int, ...] = AFTER_DAYS
    sources: tuple[str, ...] = ()  # empty: all sources
    n_resamples: int = N_RESAMPLES
    confidence_level: float = CONFIDENCE_LEVEL
    seed: int = SEED

    def __post_init__(self) -> None:
        if self.baseline_days < 1:
            raise ValueError("baseline_days must be at least 1")
        if not self.after_days or min(self.after_days) < 1:
            raise ValueError("after_days must be one or more whole numbers of days >= 1")
        if self.n_resamples < 1:
            raise ValueError("n_resamples must be at least 1")
        if not 0 < self.confidence_level < 1:
            raise ValueError("confidence_level must be between 0 and 1")
        object.__setattr__(self, "after_days", tuple(sorted(set(self.after_days))))

    def to_dict(self) -> dict[str, Any]:
        """Return the options as plain JSON."""
        return {
            "baseline_days": self.baseline_days,
            "after_days": list(self.after_days),
            "sources": list(self.sources),
            "unit": "UTC hour",
            "interval": "bootstrap, percentile, two independent samples of hours",
            "test": "permutation test, independent samples of hours, two-sided",
            "n_resamples": self.n_resamples,
            "confidence_level": self.confidence_level,
            "seed": self.seed,
        }


# -- windows ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StudyWindow:
    """One side of the comparison: a half-open UTC range of whole hours, cut to the data."""

    label: str  # "before" or "after 7 days"
    days: int  # the length asked for
    start: datetime
    end: datetime  # exclusive; earlier than start + days when the data ran out
    note: str = ""  # why the window is shorter than asked, if it is

    @property
    def hours(self) -> int:
        """Return how many hours the window covers."""
        return max(0, int((self.end - self.start) / HOUR))

    @property
    def complete(self) -> bool:
        """Return True when the window is as long as asked."""
        return self.hours == self.days * 24

    @property
    def title(self) -> str:
        """Return the label with its note, as people read it: "after 28 days (only 12 ...)"."""
        return f"{self.label} ({self.note})" if self.note else self.label

    def describe(self) -> str:
        """Return the window's span."""
        if self.hours == 0:
            return "no data"
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"

    def to_dict(self) -> dict[str, Any]:
        """Return the window as plain JSON."""
        return {
            "label": self.label,
            "title": self.title,
            "days": self.days,
            "start": iso(self.start),
            "end": iso(self.end),
            "hours": self.hours,
            "complete": self.complete,
            "note": self.note,
        }


def floor_hour(value: datetime) -> datetime:
    """Return the start of `value`'s UTC hour."""
    return value.replace(minute=0, second=0, microsecond=0)


def data_span(bounds: tuple[datetime, datetime] | None) -> tuple[datetime, datetime] | None:
    """Return the whole hours the data covers, [first mention's hour, last mention's hour + 1h)."""
    if bounds is None:
        return None
    return floor_hour(bounds[0]), floor_hour(bounds[1]) + HOUR


def _days_text(hours: int) -> str:
    days = hours / 24
    text = f"{days:.0f}" if hours % 24 == 0 else f"{days:.1f}"
    return f"{text} day" + ("" if text == "1" else "s")


def plan_windows(
    event: Event,
    span: tuple[datetime, datetime] | None,
    baseline_days: int = BASELINE_DAYS,
    after_days: Sequence[int] = AFTER_DAYS,
) -> tuple[StudyWindow, tuple[StudyWindow, ...]]:
    """Return the baseline window and one window per after-length, cut to the data's `span`."""
    nominal = baseline_window(event.at, baseline_days)
    start, end = nominal.start, nominal.end
    note = ""
    if span is None or span[0] >= end:
        start, note = end, "no data before the event"
    elif span[0] > start:
        start = span[0]
        note = f"only {_days_text(int((end - start) / HOUR))} of data before the event"
    before = StudyWindow("before", baseline_days, start, end, note)

    afters = []
    first = floor_hour(event.at)
    for days in sorted(set(after_days)):
        label = f"after {days} day" + ("" if days == 1 else "s")
        end = first + timedelta(days=days)
        note = ""
        if span is None or span[1] <= first:
            end, note = first, "no data after the event yet"
        elif span[1] < end:
            end = span[1]
            note = f"only {_days_text(int((end - first) / HOUR))} of data so far"
        afters.append(StudyWindow(label, days, first, end, note))
    return before, tuple(afters)


# -- hour matrices ----------------------------------------------------------------------------


def hourly_sums(hourly: pd.DataFrame) -> pd.DataFrame:
    """Return `Store.hourly_counts` rows as per-(hour, source) sums in COLUMNS.

    The index is (hour, source); negative and positive count those labels' mentions.
    """
    if hourly.empty:
        index = pd.MultiIndex.from_arrays(
            [pd.DatetimeIndex([], tz="UTC"), pd.Index([], dtype=object)], names=["hour", "source"]
        )
        return pd.DataFrame(columns=list(COLUMNS), index=index, dtype=float)
    mentions = hourly["mentions"].astype(float)
    frame = pd.DataFrame(
        {
            "hour": pd.to_datetime(hourly["hour"], utc=True).dt.as_unit("ns"),
            "source": hourly["source"].astype(str),
            "mentions": mentions,
            "negative": mentions.where(hourly["label"] == "negative", 0.0),
            "positive": mentions.where(hourly["label"] == "positive", 0.0),
            "compound_sum": hourly["compound_sum"].astype(float),
            "rating_sum": hourly["rating_sum"].astype(float).fillna(0.0),
            "ratings": hourly["ratings"].astype(float),
        }
    )
    return frame.groupby(["hour", "source"])[list(COLUMNS)].sum()


def daily_from_hourly(hourly: pd.DataFrame) -> pd.DataFrame:
    """Return `Store.hourly_counts` rows summed per UTC day, as `Store.daily_counts` has them."""
    columns = ["day", "source", "label", "mentions", "compound_sum", "rating_sum", "ratings"]
    if hourly.empty:
        return pd.DataFrame(columns=columns)
    days = pd.to_datetime(hourly["hour"], utc=True).dt.tz_localize(None).dt.normalize()
    summed = hourly.assign(day=days).groupby(["day", "source", "label"], as_index=False)
    return summed[["mentions", "compound_sum", "rating_sum", "ratings"]].sum()[columns]


def hour_matrix(sums: pd.DataFrame, window: StudyWindow, source: str | None = None) -> np.ndarray:
    """Return one row per hour of `window` (zeros where nothing was said), columns COLUMNS.

    `sums` comes from `hourly_sums`; `source` None means every source in it.
    """
    hours = pd.date_range(window.start, periods=window.hours, freq="h", unit="ns")
    if sums.empty or window.hours == 0:
        return np.zeros((window.hours, len(COLUMNS)))
    if source is None:
        rows = sums.groupby(level="hour").sum()
    else:
        picked = sums[sums.index.get_level_values("source") == source]
        rows = picked.droplevel("source")
    return rows.reindex(hours, fill_value=0.0).to_numpy(dtype=float)


def metric_values(sums: np.ndarray, hours: int) -> np.ndarray:
    """Return the metrics (last axis, METRICS order) of per-window sums (last axis, COLUMNS).

    An empty denominator gives NaN.
    """
    mentions, negative, positive, compound, rating_sum, ratings = np.moveaxis(sums, -1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack(
            [
                24.0 * mentions / hours if hours else np.full_like(mentions, np.nan),
                negative / mentions,
                compound / mentions,
                (positive - negative) / (positive + negative) * 100.0,
                rating_sum / ratings,
            ],
            axis=-1,
        )


def _difference(
    matrix: np.ndarray, *, metrics_first: bool
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Return the statistic after - before of hour-index samples into `matrix`, vectorised.

    `scipy.stats.bootstrap` stacks resamples on the last axis of a multi-valued statistic,
    `permutation_test` on the first; `metrics_first` picks the bootstrap's layout.
    """

    columns = [np.ascontiguousarray(column) for column in matrix.T]

    def sums(sample: np.ndarray) -> np.ndarray:
        # One contiguous column at a time: several times faster than gathering whole rows.
        rows = sample.astype(np.intp)
        return np.stack([column[rows].sum(axis=-1) for column in columns], axis=-1)

    def statistic(before: np.ndarray, after: np.ndarray, axis: int = -1) -> np.ndarray:
        del axis  # scipy always moves the sample axis last
        b = metric_values(sums(before), before.shape[-1])
        a = metric_values(sums(after), after.shape[-1])
        change = a - b
        return np.moveaxis(change, -1, 0) if metrics_first else change

    return statistic


# -- comparison -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricChange:
    """One metric before and after, the change, its interval and p-value, in one sentence.

    Values are rounded to the metric's digits; the sentence is written from them.
    """

    metric: str
    name: str
    before: float | None
    after: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    confidence_level: float
    sentence: str
    reason: str = ""  # why a value, the interval or the p-value is missing

    @property
    def clear(self) -> bool:
        """Return True when the interval leaves out zero: a change, not noise."""
        return (
            self.ci_low is not None
            and self.ci_high is not None
            and not (self.ci_low <= 0 <= self.ci_high)
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the change as plain JSON."""
        return {
            "metric": self.metric,
            "name": self.name,
            "before": self.before,
            "after": self.after,
            "difference": self.difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "clear_change": self.clear,
            "sentence": self.sentence,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every metric of one group of sources, before against after."""

    source: str  # "" for all the study's sources together
    hours_before: int
    hours_after: int
    mentions_before: int
    mentions_after: int
    metrics: tuple[MetricChange, ...]

    def metric(self, key: str) -> MetricChange:
        """Return the change of metric `key`."""
        return next(m for m in self.metrics if m.metric == key)

    def to_dict(self) -> dict[str, Any]:
        """Return the comparison as plain JSON."""
        return {
            "source": self.source or "all",
            "hours_before": self.hours_before,
            "hours_after": self.hours_after,
            "mentions_before": self.mentions_before,
            "mentions_after": self.mentions_after,
            "metrics": [m.to_dict() for m in self.metrics],
        }


def _round(value: float | None, digits: int) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    rounded = round(float(value), digits)
    return 0.0 if rounded == 0 else rounded  # no "-0.0"


def compare(
    before: np.ndarray,
    after: np.ndarray,
    *,
    source: str = "",
    n_resamples: int = N_RESAMPLES,
    confidence_level: float = CONFIDENCE_LEVEL,
    seed: int = SEED,
) -> Comparison:
    """Return every metric of two hour matrices (rows: hours, columns: COLUMNS) compared.

    The interval is a percentile bootstrap of after - before over the hours of each window,
    resampled independently; the p-value is a two-sided permutation test of the same
    statistic. Both use a generator seeded with `seed`, so the result is reproducible.
    """
    n_before, n_after = len(before), len(after)
    point_before = metric_values(before.sum(axis=0), n_before)
    point_after = metric_values(after.sum(axis=0), n_after)
    low = high = p_values = np.full(len(METRICS), np.nan)
    resample_reason = ""
    if min(n_before, n_after) < 2:
        resample_reason = "too few hours to resample"
    else:
        low, high, p_values = _resample(before, after, n_resamples, confidence_level, seed)
    changes = []
    for i, spec in enumerate(METRICS):
        b, a = _round(point_before[i], spec.digits), _round(point_after[i], spec.digits)
        reason = ""
        if n_before == 0:
            reason = "no data before the event"
        elif n_after == 0:
            reason = "no data after the event yet"
        elif b is None:
            reason = f"no {spec.needs} before the event"
        elif a is None:
            reason = f"no {spec.needs} after the event"
        difference = None if a is None or b is None else _round(a - b, spec.digits)
        ci_low, ci_high, p = (
            _round(low[i], spec.digits),
            _round(high[i], spec.digits),
            _round(p_values[i], 4),
        )
        if reason or resample_reason:
            ci_low = ci_high = p = None
            reason = reason or resample_reason
        elif ci_low is None or ci_high is None:
            ci_low = ci_high = None
            reason = f"too few {spec.needs} to resample"
        elif p is None:
            reason = f"no p-value: some reshuffled windows held no {spec.needs}"
        changes.append(
            MetricChange(
                metric=spec.key,
                name=spec.name,
                before=b,
                after=a,
                difference=difference,
                ci_low=ci_low,
                ci_high=ci_high,
                p_value=p,
                confidence_level=confidence_level,
                sentence=sentence(spec, b, a, ci_low, ci_high, reason, confidence_level),
                reason=reason,
            )
        )
    return Comparison(
        source=source,
        hours_before=n_before,
        hours_after=n_after,
        mentions_before=int(before[:, 0].sum()),
        mentions_after=int(after[:, 0].sum()),
        metrics=tuple(changes),
    )


def _resample(
    before: np.ndarray, after: np.ndarray, n_resamples: int, confidence_level: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the interval's ends and the p-values of every metric (NaN where undefined)."""
    matrix = np.vstack([before, after])
    samples = (np.arange(len(before)), np.arange(len(before), len(matrix)))
    batch = max(1, _BATCH_CELLS // len(matrix))
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        interval = stats.bootstrap(
            samples,
            _difference(matrix, metrics_first=True),
            n_resamples=n_resamples,
            batch=batch,
            vectorized=True,
            paired=False,
            confidence_level=confidence_level,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        test = stats.permutation_test(
            samples,
            _difference(matrix, metrics_first=False),
            permutation_type="independent",
            vectorized=True,
            n_resamples=n_resamples,
            batch=batch,
            alternative="two-sided",
            rng=np.random.default_rng(seed),
        )
    # A resample with an empty denominator makes the interval or the test meaningless.
    boot_ok = np.isfinite(interval.bootstrap_distribution).all(axis=-1)
    null_ok = np.isfinite(np.atleast_2d(test.null_distribution)).all(axis=0)
    nan = np.full(len(METRICS), np.nan)
    low = np.where(boot_ok, interval.confidence_interval.low, nan)
    high = np.where(boot_ok, interval.confidence_interval.high, nan)
    p_values = np.where(null_ok & np.isfinite(test.statistic), test.pvalue, nan)
    return low, high, p_values


# -- sentences and cells ----------------------------------------------------------------------


def _decimals(spec: MetricSpec, values: Iterable[float | None], precise: bool) -> int:
    base = {"count": 0, "share": 0, "score": 2, "net": 0, "rating": 1}[spec.kind]
    if spec.kind == "count" and all(abs(v) < 10 for v in values if v is not None):
        base = 1
    return base + (1 if precise else 0)


def format_level(spec: MetricSpec, value: float | None, decimals: int) -> str:
    """Return a metric's value as shown: "41%", "+0.21", "175", "3.9"."""
    if value is None:
        return "n/a"
    if spec.kind == "share":
        return f"{value * 100:.{decimals}f}%"
    if spec.kind in ("score", "net"):
        return _signed(value, decimals)
    return f"{value:,.{decimals}f}"


def _signed(value: float, decimals: int) -> str:
    """Return `value` with its sign, and a zero (however it rounded) without one."""
    text = f"{value:+,.{decimals}f}"
    return f"{0:.{decimals}f}" if float(text.replace(",", "")) == 0 else text


def format_change(spec: MetricSpec, value: float | None, decimals: int) -> str:
    """Return a difference as shown, signed; a share's in percentage points ("+29")."""
    if value is None:
        return "n/a"
    return _signed(value * (100.0 if spec.kind == "share" else 1.0), decimals)


def _points(spec: MetricSpec) -> str:
    return " points" if spec.kind in ("share", "net") else ""


def format_p(value: float | None) -> str:
    """Return a p-value as shown: "< 0.001" or "0.034"."""
    if value is None:
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def sentence(
    spec: MetricSpec,
    before: float | None,
    after: float | None,
    low: float | None,
    high: float | None,
    reason: str,
    confidence_level: float = CONFIDENCE_LEVEL,
) -> str:
    """Return the change in plain language.

    "Negative share rose from 12% to 41% (95% CI +24 to +33 points)"; "no clear change" when
    the interval includes zero.
    """
    if before is None or after is None:
        return f"{spec.name}: not available ({reason})"
    decimals = _decimals(spec, (before, after, low, high), precise=False)
    was, now = format_level(spec, before, decimals), format_level(spec, after, decimals)
    if low is None or high is None:
        verb = "rose" if after > before else "fell" if after < before else "stayed at"
        told = f"{verb} from {was} to {now}" if verb != "stayed at" else f"stayed at {now}"
        return f"{spec.name} {told} (no confidence interval: {reason})"
    ci = (
        f"{confidence_level:.0%} CI {format_change(spec, low, decimals)} to "
        f"{format_change(spec, high, decimals)}{_points(spec)}"
    )
    if low <= 0 <= high:
        return f"{spec.name}: no clear change, {was} before and {now} after ({ci})"
    verb = "rose" if low > 0 else "fell"
    return f"{spec.name} {verb} from {was} to {now} ({ci})"


def metric_cells(entry: Mapping[str, Any]) -> dict[str, str]:
    """Return one metric of a `to_dict()` result as table cells: before, after, change, CI, p.

    The dashboard's tables and the CLI's print these same strings.
    """
    spec = METRIC_BY_KEY[entry["metric"]]
    values = (entry["before"], entry["after"], entry["ci_low"], entry["ci_high"])
    decimals = _decimals(spec, values, precise=True)
    ci = "n/a"
    if entry["ci_low"] is not None and entry["ci_high"] is not None:
        ci = (
            f"{format_change(spec, entry['ci_low'], decimals)} to "
            f"{format_change(spec, entry['ci_high'], decimals)}"
        )
    return {
        "metric": spec.name,
        "before": format_level(spec, entry["before"], decimals),
        "after": format_level(spec, entry["after"], decimals),
        "difference": format_change(spec, entry["difference"], decimals)
        + (_points(spec) if entry["difference"] is not None else ""),
        "CI": ci,
        "p": format_p(entry["p_value"]),
    }


# -- recovery ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recovery:
    """When the 7-day net sentiment came back into the baseline's normal range, if it has."""

    status: str  # recovered | not_yet | never_left | unavailable
    statement: str
    normal_low: float | None = None
    normal_high: float | None = None
    day: date | None = None  # the first day of the stay inside the range
    days_after_event: int | None = None
    last_day: date | None = None  # the last full day of data
    last_value: float | None = None
    series: tuple[tuple[date, float | None], ...] = ()  # baseline start .. last full day

    def to_dict(self) -> dict[str, Any]:
        """Return the recovery as plain JSON."""
        return {
            "status": self.status,
            "statement": self.statement,
            "normal_low": self.normal_low,
            "normal_high": self.normal_high,
            "day": self.day.isoformat() if self.day else None,
            "days_after_event": self.days_after_event,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "last_value": self.last_value,
            "series": [
                {"day": day.isoformat(), "net_sentiment_7d": value} for day, value in self.series
            ],
        }


def recovery(
    daily: pd.DataFrame,
    event: Event,
    baseline: Window,
    data_end: datetime | None,
) -> Recovery:
    """Return when the 7-day rolling net sentiment settled back into the baseline's range.

    `daily` holds daily counts (`Store.daily_counts` rows, or `daily_from_hourly`) from
    ROLLING_DAYS - 1 days before the baseline through the last full day of data (the day
    before `data_end`'s, unless that is midnight).
    """
    event_day = start_of_day(event.at)
    last_end = start_of_day(data_end) if data_end is not None else None
    if last_end is None or last_end <= event_day or daily.empty:
        return Recovery("unavailable", "Recovery: no full day of data after the event yet.")
    span = Window(baseline.start - timedelta(days=ROLLING_DAYS - 1), last_end)
    rolling = daily_series(daily, span)["rolling_net_sentiment"].astype(float).round(2)
    days = [timestamp.date() for timestamp in rolling.index]
    values = [None if np.isnan(v) else float(v) for v in rolling]
    in_baseline = [
        v
        for d, v in zip(days, values, strict=True)
        if baseline.start.date() <= d < baseline.end.date() and v is not None
    ]
    series = tuple((d, v) for d, v in zip(days, values, strict=True) if d >= baseline.start.date())
    if len(in_baseline) < ROLLING_DAYS:
        return Recovery(
            "unavailable",
            "Recovery: the baseline has too few days with positive or negative mentions "
            f"(fewer than {ROLLING_DAYS}) to say what is normal.",
            series=series,
        )
    low, high = (round(float(v), 2) for v in np.percentile(in_baseline, NORMAL_RANGE))
    after = [(d, v) for d, v in series if d >= event_day.date()]
    last_day, last_value = after[-1]
    outside = [d for d, v in after if v is not None and not low <= v <= high]
    normal = (
        f"its normal range ({low:+.0f} to {high:+.0f}, the baseline's 2.5th-97.5th percentiles)"
    )
    found = Recovery(
        "unavailable",
        "",
        normal_low=low,
        normal_high=high,
        last_day=last_day,
        last_value=last_value,
        series=series,
    )
    if not outside:
        told = f"Net sentiment (7-day) never left {normal} after the event, through {last_day}."
        return replace(found, status="never_left", statement=told)
    if outside[-1] == last_day:
        shown = "n/a" if last_value is None else f"{last_value:+.0f}"
        told = (
            f"Net sentiment (7-day) has not yet returned to {normal}: it was {shown} on "
            f"{last_day}, the last full day of data."
        )
        return replace(found, status="not_yet", statement=told)
    day = outside[-1] + timedelta(days=1)
    waited = (day - event_day.date()).days
    told = (
        f"Net sentiment (7-day) was back in {normal} from {day}, {_days_text(waited * 24)} "
        f"after the event, and has stayed there through {last_day}."
    )
    return replace(found, status="recovered", statement=told, day=day, days_after_event=waited)


# -- topics -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicShare:
    """How much of the talk was about one topic, before and after."""

    topic: str
    name: str
    mentions_before: int
    mentions_after: int
    before: float | None  # share of the window's mentions
    after: float | None
    change: float | None  # after - before, as a fraction (x 100 for points)

    def to_dict(self) -> dict[str, Any]:
        """Return the topic's shares as plain JSON."""
        return {
            "topic": self.topic,
            "name": self.name,
            "mentions_before": self.mentions_before,
            "mentions_after": self.mentions_after,
            "before": self.before,
            "after": self.after,
            "change": self.change,
        }


def topic_shares(
    before: Mapping[str, int],
    before_total: int,
    after: Mapping[str, int],
    after_total: int,
    names: Mapping[str, str],
) -> tuple[TopicShare, ...]:
    """Return each topic's share of mentions before and after, the biggest rise first."""
    shares = []
    for topic, name in names.items():
        was, now = int(before.get(topic, 0)), int(after.get(topic, 0))
        share_before = _round(was / before_total, 4) if before_total else None
        share_after = _round(now / after_total, 4) if after_total else None
        change = (
            None
            if share_before is None or share_after is None
            else _round(share_after - share_before, 4)
        )
        shares.append(TopicShare(topic, name, was, now, share_before, share_after, change))
    return tuple(
        sorted(shares, key=lambda s: (s.change is None, -(s.change or 0.0), -s.mentions_after))
    )


# -- the study --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowStudy:
    """Before against one after-window: overall, per source, and by topic."""

    window: StudyWindow
    overall: Comparison
    by_source: tuple[Comparison, ...]
    topics: tuple[TopicShare, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the window's results as plain JSON."""
        return {
            "window": self.window.to_dict(),
            "overall": self.overall.to_dict(),
            "by_source": [c.to_dict() for c in self.by_source],
            "topics": [t.to_dict() for t in self.topics],
        }


@dataclass(frozen=True, slots=True)
class EventStudy:
    """Everything the Impact page and `repmon report event-study` show for one event."""

    event: Event
    options: StudyOptions
    sources: tuple[str, ...]  # the sources with mentions in the study's span
    data_end: datetime | None
    before: StudyWindow
    windows: tuple[WindowStudy, ...]
    recovery: Recovery

    def window(self, days: int) -> WindowStudy:
        """Return the after-window `days` long."""
        return next(w for w in self.windows if w.window.days == days)

    def to_dict(self) -> dict[str, Any]:
        """Return the study as plain JSON: ISO 8601 UTC times, rounded numbers, no NaN."""
        return {
            "event": {"label": self.event.label, "kind": self.event.kind, "at": iso(self.event.at)},
            "options": self.options.to_dict(),
            "sources": list(self.sources),
            "data_end": iso(self.data_end) if self.data_end else None,
            "before": self.before.to_dict(),
            "windows": [w.to_dict() for w in self.windows],
            "recovery": self.recovery.to_dict(),
        }


def iso(value: datetime) -> str:
    """Return a UTC time as ISO 8601 with a Z."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


TopicCounts = Mapping[tuple[datetime, datetime], Mapping[str, int]]


def analyse(
    event: Event,
    *,
    hourly: pd.DataFrame,
    daily: pd.DataFrame,
    topics: TopicCounts,
    bounds: tuple[datetime, datetime] | None,
    topic_names: Mapping[str, str],
    options: StudyOptions | None = None,
) -> EventStudy:
    """Return the event study from the store's aggregates (pure: no I/O).

    `hourly` is `Store.hourly_counts` covering at least the before and after windows,
    `daily` the daily counts for the recovery (see `recovery`), `topics` maps each window's
    (start, end) to its topic counts, and `bounds` are the first and last publication times
    of all stored mentions (any source), which cut the windows.
    """
    options = options or StudyOptions()
    span = data_span(bounds)
    before, afters = plan_windows(event, span, options.baseline_days, options.after_days)
    sums = hourly_sums(hourly)
    hours = sums.index.get_level_values("hour")
    end = max((w.end for w in afters), default=before.end)
    studied = (hours >= pd.Timestamp(before.start)) & (hours < pd.Timestamp(end))
    sources = tuple(sorted(set(sums.index.get_level_values("source")[studied])))

    def compared(window: StudyWindow, source: str = "") -> Comparison:
        return compare(
            hour_matrix(sums, before, source or None),
            hour_matrix(sums, window, source or None),
            source=source,
            n_resamples=options.n_resamples,
            confidence_level=options.confidence_level,
            seed=options.seed,
        )

    windows = []
    for window in afters:
        overall = compared(window)
        by_source = tuple(compared(window, source) for source in sources)
        shares = topic_shares(
            topics.get((before.start, before.end), {}),
            overall.mentions_before,
            topics.get((window.start, window.end), {}),
            overall.mentions_after,
            topic_names,
        )
        windows.append(WindowStudy(window, overall, by_source, shares))
    nominal = baseline_window(event.at, options.baseline_days)
    return EventStudy(
        event=event,
        options=options,
        sources=sources,
        data_end=span[1] if span else None,
        before=before,
        windows=tuple(windows),
        recovery=recovery(daily, event, nominal, span[1] if span else None),
    )


def run_event_study(store: Store, event: Event, options: StudyOptions | None = None) -> EventStudy:
    """Read what the study needs from `store` and return it: the page's and the CLI's one call."""
    from monitor.scoring import topic_labels

    options = options or StudyOptions()
    bounds = store.time_bounds()
    span = data_span(bounds)
    before, afters = plan_windows(event, span, options.baseline_days, options.after_days)
    # One scan from the first day the recovery's rolling line needs to the end of the data:
    # it holds the before and after windows, and the daily series is summed from it.
    nominal = baseline_window(event.at, options.baseline_days)
    sources = options.sources
    since = nominal.start - timedelta(days=ROLLING_DAYS - 1)
    hourly = store.hourly_counts(MentionQuery(since=since, sources=sources))
    names = topic_labels()
    topics = {
        (w.start, w.end): store.topic_counts(
            MentionQuery(since=w.start, until=w.end, sources=sources), list(names)
        )
        for w in (before, *afters)
        if w.hours
    }
    return analyse(
        event,
        hourly=hourly,
        daily=daily_from_hourly(hourly),
        topics=topics,
        bounds=bounds,
        topic_names=names,
        options=options,
    )


# -- events and reports -----------------------------------------------------------------------


def ordered_events(events: Iterable[Event]) -> list[Event]:
    """Return the events to study: the first disclosure first, then the rest in time order."""
    in_order = sorted(events, key=lambda e: e.at)
    first = next((e for e in in_order if e.kind == "disclosure"), None)
    return ([first] if first else []) + [e for e in in_order if e is not first]


def find_event(events: Iterable[Event], label: str) -> Event:
    """Return the event labelled `label` (case-insensitive); LookupError naming the others."""
    known = ordered_events(events)
    for event in known:
        if event.label.casefold() == label.strip().casefold():
            return event
    names = ", ".join(repr(e.label) for e in known) or "none"
    raise LookupError(f"no event is labelled {label!r}; the events are: {names}")


def report_dict(studies: Iterable[EventStudy]) -> dict[str, Any]:
    """Return the JSON of `repmon report event-study --json`."""
    return {"studies": [study.to_dict() for study in studies]}


def format_report(report: Mapping[str, Any]) -> str:
    """Return a `report_dict` as text for a terminal: the same numbers as the Impact page."""
    lines: list[str] = []
    for study in report["studies"]:
        event, before = study["event"], study["before"]
        level = study["options"]["confidence_level"]
        sources = ", ".join(study["sources"]) or "none"
        lines += [
            f"{event['label']} ({event['kind']}, {event['at'][:16].replace('T', ' ')} UTC)",
            f"Before: {_span(before)}, {_days_text(before['hours'])}"
            + (f" ({before['note']})" if before["note"] else "")
            + f"; sources: {sources}",
            "",
        ]
        for result in study["windows"]:
            window = result["window"]
            lines.append(f"  {window['title'].capitalize()}: {_span(window)}")
            for entry in result["overall"]["metrics"]:
                lines.append(f"    - {entry['sentence']}")
            lines.append("")
            lines += _table(result["overall"], "    ", level)
            for group in result["by_source"]:
                lines.append("")
                lines.append(
                    f"    {group['source']}: {group['mentions_before']:,} mentions before, "
                    f"{group['mentions_after']:,} after"
                )
                lines += _table(group, "      ", level)
            risers = [t for t in result["topics"] if t["change"] is not None][:5]
            if risers:
                lines.append("")
                lines.append("    Topics (share of mentions, before -> after):")
                for topic in risers:
                    lines.append(
                        f"      {topic['name']:<26} {topic['before'] * 100:5.1f}% -> "
                        f"{topic['after'] * 100:5.1f}%  ({topic['change'] * 100:+.1f} points)"
                    )
            lines.append("")
        lines.append(f"  {study['recovery']['statement']}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _span(window: Mapping[str, Any]) -> str:
    if not window["hours"]:
        return "no data"
    return f"{window['start'][:16].replace('T', ' ')} to {window['end'][:16].replace('T', ' ')} UTC"


def _table(group: Mapping[str, Any], indent: str, level: float) -> list[str]:
    rows = [metric_cells(entry) for entry in group["metrics"]]
    header = {"metric": "metric", "before": "before", "after": "after"}
    header |= {"difference": "difference", "CI": f"{level:.0%} CI", "p": "p"}
    widths = {k: max(len(r[k]) for r in [header, *rows]) for k in header}
    out = []
    for row in [header, *rows]:
        cells = [row["metric"].ljust(widths["metric"])]
        cells += [row[k].rjust(widths[k]) for k in ("before", "after", "difference", "CI", "p")]
        out.append(indent + "  ".join(cells).rstrip())
    return out

"""What the Overview page shows, gathered in one place without Streamlit.

The page calls `build` through a cache keyed on the data version; the benchmark calls it
directly, so the figures in docs/performance.md are the page's own queries. Every number
comes from per-day aggregates (the store's hourly rollups and topic rollups) plus one indexed
top-N query: the cost does not grow with the number of stored mentions.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from monitor import analysis
from monitor.analysis import Kpis, NarrativeTopic, Window, start_of_day
from monitor.models import MentionQuery
from monitor.scoring import topic_labels
from monitor.store import Store

WORST = 10  # how many of the most-engaged negative mentions the page lists


@dataclass(frozen=True)
class Overview:
    """The Overview's numbers for one window and set of sources."""

    span: Window  # what the timeline covers: the baseline (if any) and the window
    daily: pd.DataFrame  # Store.daily_counts over the span
    now: Kpis
    before: Kpis | None
    series: pd.DataFrame  # analysis.daily_series over the span
    by_source: pd.DataFrame  # analysis.by_source over the window
    worst: pd.DataFrame  # the most-engaged negative mentions in the window
    topics: tuple[NarrativeTopic, ...]  # what the window's negative mentions are about


def timeline_span(window: Window, baseline: Window | None) -> Window:
    """Return the span the Overview reads and draws: the baseline (if any) and the window.

    Both whole, whichever comes first: the baseline's KPIs need all of its days even when
    the chosen window ends before the disclosure.
    """
    start, end = window.start, window.end
    if baseline is not None:
        start, end = min(start, baseline.start), max(end, baseline.end)
    return Window(start_of_day(start), end)


def build(
    store: Store, window: Window, baseline: Window | None, sources: tuple[str, ...] = ()
) -> Overview:
    """Return the Overview of `window` (against `baseline`) for `sources` (() for all)."""
    span = timeline_span(window, baseline)
    daily = store.daily_counts(MentionQuery(since=span.start, until=span.end, sources=sources))
    worst = store.mentions_frame(
        MentionQuery(since=window.start, until=window.end, sources=sources, labels=("negative",)),
        order_by="engagement",
        descending=True,
        limit=WORST,
    )
    now = analysis.kpis(daily, window)
    before = analysis.kpis(daily, baseline) if baseline is not None else None
    return Overview(
        span=span,
        daily=daily,
        now=now,
        before=before,
        series=analysis.daily_series(daily, span),
        by_source=analysis.by_source(daily, window),
        worst=worst,
        topics=_negative_topics(store, window, now, baseline, before, sources),
    )


def _negative_topics(
    store: Store,
    window: Window,
    now: Kpis,
    baseline: Window | None,
    before: Kpis | None,
    sources: tuple[str, ...],
) -> tuple[NarrativeTopic, ...]:
    """Return the topics of the window's negative mentions, against the baseline's."""
    names = topic_labels()

    def counts(span: Window | None, kpis: Kpis | None) -> dict[str, int]:
        if span is None or kpis is None or not kpis.negative:
            return {}
        negative = MentionQuery(
            since=span.start, until=span.end, sources=sources, labels=("negative",)
        )
        return store.topic_counts(negative, list(names))

    return analysis.narrative_topics(
        counts(window, now),
        now.negative,
        counts(baseline, before),
        before.negative if before is not None else 0,
        names,
    )

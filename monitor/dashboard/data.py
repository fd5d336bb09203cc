"""Every query the dashboard makes, cached. Pages call these and nothing else.

Caches are keyed on the store's data version, so a collection run or import that changes
mentions invalidates them on the next rerun, while unchanged data is served from memory.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from monitor import config as config_module
from monitor import impact, overview, reports
from monitor.analysis import BASELINE_DAYS, Window
from monitor.config import Settings
from monitor.models import Alert, CollectionRun, Event, MentionQuery
from monitor.store import Store

if TYPE_CHECKING:
    from monitor.alerts.engine import RuleState

# Query objects are frozen dataclasses; their repr is a complete, stable cache key.
_QUERY_HASH: dict[str | type[Any], Callable[[Any], Any]] = {MentionQuery: repr}


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    """Return the effective settings (config file, secrets, environment), read once per process."""
    return config_module.load_settings()


@st.cache_resource(show_spinner=False)
def store(database_url: str) -> Store:
    """Return the shared store for `database_url`."""
    return Store(database_url)


def ensure_demo(current: Settings) -> None:
    """Build the demo scenario on first start, with a progress bar (demo mode only).

    A build cut short (the page reloaded mid-way) is finished on the next run: building is
    idempotent, and only a completed build leaves its marker.
    """
    if not current.is_demo:
        return
    from monitor import demo

    db = store(current.database_url)
    if demo.is_built(db):
        return

    bar = st.progress(0.0, text="First start: building the demo scenario…")

    def advance(done: int) -> None:
        bar.progress(
            min(done / 3100, 1.0),
            text=f"First start: building the demo scenario… {done:,} mentions",
        )

    demo.build(db, progress=advance)
    bar.empty()


def data_version(database_url: str) -> int:
    """Return the store's data version (deliberately not cached: it is the cache key)."""
    return store(database_url).data_version()


@st.cache_data(show_spinner=False, hash_funcs=_QUERY_HASH, max_entries=64)
def daily_counts(database_url: str, version: int, query: MentionQuery) -> pd.DataFrame:
    """Return per-day, per-source, per-label counts and sums for `query`."""
    del version  # part of the cache key only
    return store(database_url).daily_counts(query)


@st.cache_data(show_spinner=False, max_entries=32)
def overview_numbers(
    database_url: str,
    version: int,
    window: Window,
    baseline: Window | None,
    sources: tuple[str, ...],
) -> overview.Overview:
    """Return what the Overview shows for this window, baseline and sources."""
    del version  # part of the cache key only
    return overview.build(store(database_url), window, baseline, sources)


@st.cache_data(show_spinner=False, hash_funcs=_QUERY_HASH, max_entries=64)
def mentions_page(
    database_url: str,
    version: int,
    query: MentionQuery,
    order_by: str = "published_at",
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> pd.DataFrame:
    """Return one page of mentions."""
    del version
    return store(database_url).mentions_frame(
        query, order_by=order_by, descending=descending, limit=limit, offset=offset
    )


@st.cache_data(show_spinner=False, hash_funcs=_QUERY_HASH, max_entries=64)
def count(database_url: str, version: int, query: MentionQuery) -> int:
    """Return how many mentions match `query`."""
    del version
    return store(database_url).count_mentions(query)


@st.cache_data(show_spinner=False, max_entries=8)
def sources(database_url: str, version: int) -> list[str]:
    """Return the sources with stored mentions."""
    del version
    return store(database_url).sources()


@st.cache_data(show_spinner=False, max_entries=8)
def time_bounds(database_url: str, version: int) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """Return the first and last publication times stored."""
    del version
    bounds = store(database_url).time_bounds()
    return (pd.Timestamp(bounds[0]), pd.Timestamp(bounds[1])) if bounds else None


def recent_runs(database_url: str, limit: int = 50) -> list[CollectionRun]:
    """Return the latest collection runs (not cached: runs change without data changing)."""
    return store(database_url).recent_runs(limit)


def alerts(
    database_url: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    unacknowledged: bool = False,
    limit: int | None = 200,
) -> list[Alert]:
    """Return stored alerts, newest first (not cached: acknowledging changes them)."""
    return store(database_url).alerts(
        since=since, until=until, unacknowledged=unacknowledged, limit=limit
    )


def rule_states(database_url: str, current: Settings) -> list[RuleState]:
    """Return each rule's last alert and quiet period now (not cached: time moves them)."""
    from monitor.alerts.engine import rule_states

    return rule_states(store(database_url), current)


def acknowledge(database_url: str, alert_id: int, note: str) -> bool:
    """Acknowledge an alert with a note."""
    return store(database_url).acknowledge_alert(alert_id, note)


@st.cache_data(show_spinner="Replaying the alert rules over stored history…", max_entries=16)
def replay(
    database_url: str,
    version: int,
    _settings: Settings,
    rules_key: str,
    since: datetime,
    until: datetime,
) -> list[Alert]:
    """Return when the rules would have fired between `since` and `until` (cached)."""
    del version, rules_key  # cache key only; the rules are in _settings
    from monitor.alerts import engine

    return engine.replay(store(database_url), _settings, since, until)


@st.cache_data(show_spinner="Resampling hours for the confidence intervals…", max_entries=32)
def event_study(
    database_url: str,
    version: int,
    at: str,
    label: str,
    kind: str,
    sources: tuple[str, ...],
    baseline_days: int = BASELINE_DAYS,
    after_days: tuple[int, ...] = impact.AFTER_DAYS,
) -> dict[str, Any]:
    """Return the event study of one event as `to_dict()` JSON, cached on the data version."""
    del version  # part of the cache key only
    event = Event(datetime.fromisoformat(at), label, kind)
    options = impact.StudyOptions(
        baseline_days=baseline_days, after_days=after_days, sources=sources
    )
    return impact.run_event_study(store(database_url), event, options).to_dict()


def briefing_html(
    database_url: str, current: Settings, window: Window, sources: tuple[str, ...]
) -> str:
    """Return the leadership briefing for the dashboard's window (built when downloaded)."""
    from monitor import briefing

    built = briefing.build_briefing(store(database_url), current, window=window, sources=sources)
    return briefing.render_html(built)


@st.cache_resource(show_spinner=False)
def pdf_engine_problem() -> str | None:
    """Return why the briefing cannot be printed to PDF here (what to install), or None."""
    import importlib.util

    from monitor import briefing

    if importlib.util.find_spec("playwright") is None:
        return "Printing the briefing needs Playwright: pip install playwright"
    try:
        briefing.find_chromium()
    except briefing.BriefingError as problem:
        return str(problem)
    return None


def briefing_pdf(
    database_url: str, current: Settings, window: Window, sources: tuple[str, ...]
) -> bytes:
    """Return the briefing printed to PDF by Chromium (built when downloaded)."""
    import tempfile
    from pathlib import Path

    from monitor import briefing

    html = briefing_html(database_url, current, window, sources)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "briefing.pdf"
        briefing.render_pdf(html, path)
        return path.read_bytes()


def events(current: Settings) -> tuple[Event, ...]:
    """Return the events to mark on charts (from the config, the source of truth)."""
    return current.events


def mentions_table(database_url: str, query: MentionQuery) -> reports.ExportTable:
    """Return the mentions export of `query`; its rows stream from the store when written."""
    return reports.mentions_table(store(database_url), query)


def export_download(
    current: Settings,
    table: reports.ExportTable,
    fmt: str,
    *,
    bom: bool = False,
    redact_authors: bool = False,
    stem: str = "export",
) -> bytes:
    """Return a download of `table` as "csv", "zip" (CSV + manifest) or "xlsx" (with About).

    Not cached: built only when the button is pressed, stamped with that time, and with a new
    redaction key each time. A CSV is byte for byte what `repmon export` writes.
    """
    return reports.export_bytes(
        table,
        fmt,
        reports.Provenance.from_settings(current),
        reports.ExportOptions(bom=bom, redact_authors=redact_authors),
        stem=stem,
    )

"""The shared sidebar: which days and which sources every page is about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import streamlit as st

from monitor import overview
from monitor.analysis import Window, baseline_window
from monitor.config import Settings
from monitor.dashboard import data
from monitor.dashboard.components import markdown_text
from monitor.models import MentionQuery


@dataclass(frozen=True, slots=True)
class View:
    """What the sidebar selected, handed to every page."""

    settings: Settings
    database_url: str
    version: int
    window: Window
    sources: tuple[str, ...]
    all_sources: tuple[str, ...]
    data_end: datetime | None

    @property
    def baseline(self) -> Window | None:
        """Return the pre-disclosure baseline, or None when no disclosure is configured."""
        disclosure = self.settings.disclosure
        return baseline_window(disclosure.at) if disclosure else None

    def query(self, window: Window | None = None, **extra: object) -> MentionQuery:
        """Return a query for `window` (default: the selected one) and the selected sources."""
        chosen = window or self.window
        return MentionQuery(since=chosen.start, until=chosen.end, sources=self.sources, **extra)  # type: ignore[arg-type]

    def describe_sources(self) -> str:
        """Return the selected sources as a caption fragment (Markdown: names escaped)."""
        if not self.sources or set(self.sources) == set(self.all_sources):
            return "all sources (" + ", ".join(map(markdown_text, self.all_sources)) + ")"
        return ", ".join(map(markdown_text, self.sources))


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def sidebar(settings: Settings) -> View:
    """Draw the shared filters and return what they select."""
    url = settings.database_url
    version = data.data_version(url)
    bounds = data.time_bounds(url, version)
    all_sources = tuple(data.sources(url, version))
    st.sidebar.markdown(f"**{markdown_text(settings.brand.name)}**")
    if bounds is None:
        today = datetime.now(UTC).date()
        first_day, last_day, data_end = today, today, None
    else:
        first_day, last_day = bounds[0].date(), bounds[1].date()
        data_end = bounds[1].to_pydatetime()
    default_start = max(first_day, last_day - timedelta(days=settings.default_window_days - 1))
    st.session_state.setdefault("sidebar_window", (default_start, last_day))
    picked = st.sidebar.date_input(
        "Window (UTC days)",
        min_value=first_day,
        max_value=last_day,
        key="sidebar_window",
        help="KPIs, the source breakdown and the table cover these whole days (UTC). "
        "The timeline also shows the baseline before them.",
    )
    days = list(picked) if isinstance(picked, tuple | list) else [picked]
    start_day = days[0] if days else default_start
    end_day = days[-1] if len(days) > 1 else start_day
    window = Window(_day_start(start_day), _day_start(end_day) + timedelta(days=1))
    st.session_state.setdefault("sidebar_sources", list(all_sources))
    chosen = st.sidebar.multiselect(
        "Sources",
        options=list(all_sources),
        key="sidebar_sources",
        help="Leave empty for all sources.",
    )
    sources = tuple(chosen) if chosen and set(chosen) != set(all_sources) else ()
    if data_end is not None:
        st.sidebar.caption(f"Data up to {data_end:%Y-%m-%d %H:%M} UTC. All times are UTC.")
    return View(
        settings=settings,
        database_url=url,
        version=version,
        window=window,
        sources=sources,
        all_sources=all_sources,
        data_end=data_end,
    )


def current_view() -> View:
    """Return the view the entry point put in the session for this rerun."""
    view = st.session_state.get("view")
    if not isinstance(view, View):
        st.error("Open the dashboard through app.py (`streamlit run app.py`).")
        st.stop()
    return view


def timeline_window(view: View) -> Window:
    """Return the span the Overview reads and draws: the baseline (if any) and the window."""
    return overview.timeline_span(view.window, view.baseline)

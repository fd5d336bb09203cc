"""Overview: how much, how negative, compared with before the disclosure, and what hurts most."""

from __future__ import annotations

import streamlit as st

from monitor import analysis
from monitor.dashboard import components, data
from monitor.dashboard.filters import current_view, timeline_window

view = current_view()
settings = view.settings
url, version = view.database_url, view.version

st.title(f"{settings.brand.name}: reputation overview")
window_alerts = data.alerts(url, since=view.window.start, until=view.window.end, limit=None)
waiting = [a for a in window_alerts if a.acknowledged_at is None]
if waiting:
    latest = waiting[0]
    st.warning(
        f"{len(waiting)} alert(s) in this window not yet acknowledged. Latest: "
        f"[{latest.severity}] {latest.rule}, {latest.fired_at:%Y-%m-%d %H:%M} UTC.",
        icon=":material/notifications_active:",
    )
    st.page_link(
        "monitor/dashboard/alerts.py", label="Open the Alerts page", icon=":material/arrow_forward:"
    )
baseline = view.baseline
where = f"{view.window.describe()}; {view.describe_sources()}"
if baseline is not None and settings.disclosure is not None:
    st.caption(
        f"Window: {where}. Compared with the baseline {baseline.describe()}, the 28 days "
        f"before the disclosure ({settings.disclosure.label}, {settings.disclosure.at:%Y-%m-%d})."
    )
else:
    st.caption(f"Window: {where}. No disclosure event is configured, so there is no baseline.")

span = timeline_window(view)
daily = data.daily_counts(url, version, view.query(span))
now = analysis.kpis(daily, view.window)
before = analysis.kpis(daily, baseline) if baseline is not None else None
components.kpi_cards(now, before, baseline.describe() if baseline else "none configured")

st.subheader("Daily mentions and net sentiment")
st.caption(
    f"{span.describe()}; {view.describe_sources()}. Bars: mentions per UTC day by label. "
    "Line: net sentiment over the last 7 days. Shaded: the selected window. Vertical lines: "
    "events. Triangles: alerts that fired."
)
series = analysis.daily_series(daily, span)
st.plotly_chart(
    components.timeline_figure(series, data.events(settings), view.window), key="overview_timeline"
)

if "ratings" in series and series["ratings"].sum() > 0:
    st.subheader("Star rating of reviews")
    st.caption(
        f"{span.describe()}; sources with star ratings among {view.describe_sources()}. Dots: the "
        "mean rating of each UTC day's reviews; line: the mean over the last 7 days."
    )
    st.plotly_chart(components.rating_figure(series, data.events(settings)), key="overview_ratings")

left, right = st.columns(2)
with left:
    st.subheader("By source")
    st.caption(f"{view.window.describe()}.")
    breakdown = analysis.by_source(daily, view.window)
    if breakdown.empty:
        st.info("No mentions in this window.")
    else:
        st.plotly_chart(components.source_figure(breakdown), key="overview_sources")
with right:
    st.subheader("Per source")
    st.caption("Share negative, mean sentiment and net sentiment in the window.")
    if not breakdown.empty:
        components.source_table(breakdown)

st.subheader("What is hurting us")
st.caption(
    f"The most-engaged negative mentions, {view.window.describe()}; {view.describe_sources()}. "
    "Engagement = votes + comments where the source reports them."
)
worst = data.mentions_page(
    url, version, view.query(labels=("negative",)), order_by="engagement", descending=True, limit=10
)
if worst.empty:
    st.info("No negative mentions in this window.")
else:
    components.mentions_table(worst, key="overview_worst")

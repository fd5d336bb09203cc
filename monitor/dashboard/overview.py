"""Overview: how much, how negative, compared with before the disclosure, what people are
angry about, and what hurts most."""

from __future__ import annotations

import streamlit as st

from monitor import analysis, reports
from monitor.dashboard import components, data
from monitor.dashboard.filters import current_view

view = current_view()
settings = view.settings
url, version = view.database_url, view.version

st.title(f"{components.markdown_text(settings.brand.name)}: reputation overview")
window_alerts = data.alerts(url, since=view.window.start, until=view.window.end, limit=None)
waiting = [a for a in window_alerts if a.acknowledged_at is None]
if waiting:
    latest = waiting[0]
    st.warning(
        f"{len(waiting)} alert(s) in this window not yet acknowledged. Latest: "
        f"[{components.markdown_text(latest.severity)}] {components.markdown_text(latest.rule)}, "
        f"{latest.fired_at:%Y-%m-%d %H:%M} UTC.",
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
        f"before the disclosure ({components.markdown_text(settings.disclosure.label)}, "
        f"{settings.disclosure.at:%Y-%m-%d})."
    )
else:
    st.caption(f"Window: {where}. No disclosure event is configured, so there is no baseline.")

numbers = data.overview_numbers(url, version, view.window, baseline, view.sources)
span, daily = numbers.span, numbers.daily
components.kpi_cards(
    numbers.now, numbers.before, baseline.describe() if baseline else "none configured"
)

brief_html, brief_pdf, brief_note = st.columns([1, 1, 3])
brief_html.download_button(
    "Briefing (HTML)",
    data=lambda: data.briefing_html(url, settings, view.window, view.sources),
    file_name=f"briefing-{view.window.last_day:%Y-%m-%d}.html",
    mime="text/html",
    on_click="ignore",
    key="overview_brief_html",
    icon=":material/description:",
)
pdf_problem = data.pdf_engine_problem()
if pdf_problem is None:
    brief_pdf.download_button(
        "Briefing (PDF)",
        data=lambda: data.briefing_pdf(url, settings, view.window, view.sources),
        file_name=f"briefing-{view.window.last_day:%Y-%m-%d}.pdf",
        mime="application/pdf",
        on_click="ignore",
        key="overview_brief_pdf",
        icon=":material/picture_as_pdf:",
    )
else:
    brief_pdf.button(
        "Briefing (PDF)", disabled=True, help=pdf_problem, key="overview_brief_pdf_off"
    )
brief_note.caption(
    "The one-page leadership briefing for this window and these sources: the numbers above "
    "with their confidence intervals, the timeline, what people are angry about, the posts "
    "hurting most, and the window's alerts."
)

st.subheader("Daily mentions and net sentiment")
st.caption(
    f"{span.describe()}; {view.describe_sources()}. Bars: mentions per UTC day by label. "
    "Line: net sentiment over the last 7 days. Shaded: the selected window. Vertical lines: "
    "events. Triangles: alerts that fired."
)
series = numbers.series
st.plotly_chart(
    components.timeline_figure(series, data.events(settings), view.window), key="overview_timeline"
)

daily_export = reports.daily_table(daily, span, view.query(span))
export = st.columns([2, 2, 4], vertical_alignment="bottom")
export_format = export[0].selectbox(
    "Download the daily series as",
    reports.DOWNLOAD_FORMATS,
    format_func=lambda f: reports.DOWNLOAD_LABELS[f],
    key="overview_export_format",
    help="CSV alone; CSV zipped with its provenance manifest; or Excel, with the provenance "
    "on an About sheet. The same file as `repmon export daily`.",
)
bom = export[1].checkbox(
    "UTF-8 BOM (Excel)",
    key="overview_export_bom",
    disabled=export_format == "xlsx",
    help="Start the CSV with a byte-order mark, so Excel shows accents and emoji correctly.",
)
daily_stem = f"daily_{span.start:%Y%m%d}-{span.last_day:%Y%m%d}"
export[2].download_button(
    f"Download {reports.DOWNLOAD_LABELS[export_format]} "
    f"({len(daily_export.frame()):,} rows: all sources, then each)",
    data=lambda: data.export_download(
        settings,
        daily_export,
        export_format,
        bom=bom and export_format != "xlsx",
        stem=daily_stem,
    ),
    file_name=reports.download_name(daily_stem, export_format),
    mime=reports.MIME_TYPES[export_format],
    on_click="ignore",
    key="overview_export_download",
    icon=":material/download:",
    help="Per UTC day of the chart's span: mentions by label, share negative, mean and net "
    "sentiment, the 7-day net sentiment, and star ratings; overall, then per source.",
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
    breakdown = numbers.by_source
    if breakdown.empty:
        st.info("No mentions in this window.")
    else:
        st.plotly_chart(components.source_figure(breakdown), key="overview_sources")
with right:
    st.subheader("Per source")
    st.caption("Share negative, mean sentiment and net sentiment in the window.")
    if not breakdown.empty:
        components.source_table(breakdown)

st.subheader("What they are angry about")
topics, negatives = numbers.topics, numbers.now.negative
if not negatives:
    st.info("No negative mentions in this window.")
elif not topics:
    st.info(f"None of the window's {negatives:,} negative mentions carries a known topic.")
else:
    # The baseline's negative mentions, when there is a baseline with some to compare with.
    base_negatives = numbers.before.negative if numbers.before is not None else 0
    sides = [("this window", [t.share for t in topics])]
    against = ""
    if baseline is not None and base_negatives:
        against = f", against the baseline's {base_negatives:,} ({baseline.describe()})"
        sides.insert(0, ("baseline", [t.baseline_share for t in topics]))
    st.caption(
        f"{where}. Share of the window's {negatives:,} negative mentions carrying each topic"
        f"{against}, the most mentions first; a mention may carry several topics or none, so "
        "shares do not add up to 100%."
    )
    rise = analysis.biggest_rise(topics)
    if rise is not None and rise.share is not None and rise.baseline_share is not None:
        st.markdown(
            f"Biggest rise: **{components.markdown_text(rise.name)}**, in "
            f"{rise.baseline_share:.0%} of the baseline's negative mentions and "
            f"{rise.share:.0%} of this window's ({(rise.share - rise.baseline_share) * 100:+.0f} "
            "points)."
        )
    st.plotly_chart(
        components.topic_share_figure(
            [t.name for t in topics], sides, "share of negative mentions"
        ),
        key="overview_topics",
    )
    read = st.columns([3, 2], vertical_alignment="bottom")
    topic_names = {t.topic: t.name for t in topics}
    about: str = read[0].selectbox(
        "Read the negative mentions about",
        list(topic_names),
        format_func=lambda topic: topic_names[topic],
        key="overview_topic_pick",
    )
    if read[1].button("Open them on the Mentions page", icon=":material/arrow_forward:"):
        # The Mentions page's filters, set before it draws them; window and sources are the
        # sidebar's, which every page shares.
        st.session_state.update(
            explorer_labels=["negative"],
            explorer_topics=[about],
            explorer_search="",
            explorer_sort="most engaged",
            explorer_page=1,
        )
        st.switch_page("monitor/dashboard/explorer.py")

st.subheader("What is hurting us")
st.caption(
    f"The most-engaged negative mentions, {view.window.describe()}; {view.describe_sources()}. "
    "Engagement = votes + comments where the source reports them."
)
worst = numbers.worst
if worst.empty:
    st.info("No negative mentions in this window.")
else:
    components.mentions_table(worst, key="overview_worst")

"""Impact: what an event did to the conversation, before against after, with its uncertainty.

Everything shown comes from `impact.run_event_study(...).to_dict()`, the same dictionary
`repmon report event-study --json` prints, so the page and the command always agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from monitor import impact, reports
from monitor.dashboard import data
from monitor.dashboard.components import (
    BEFORE_COLOUR,
    EVENT_COLOUR,
    markdown_text,
    topic_share_figure,
    vertical_marker,
)
from monitor.dashboard.filters import current_view
from monitor.models import Event

AFTER_COLOUR = "#1565c0"
BAND_COLOUR = "#a5d6a7"
DEFAULT_DAYS = 7


def _when(value: str) -> str:
    return value[:16].replace("T", " ")


def _span(window: Mapping[str, Any]) -> str:
    if not window["hours"]:
        return "no data"
    return f"{_when(window['start'])} to {_when(window['end'])} UTC"


def _days(count: int) -> str:
    return f"{count} day" + ("" if count == 1 else "s")


def metric_table(metrics: Sequence[Mapping[str, Any]], level: float) -> pd.DataFrame:
    """Return metrics as the rows people read: before, after, difference, CI, p, and why n/a."""
    rows = [impact.metric_cells(entry) | {"note": entry["reason"]} for entry in metrics]
    return pd.DataFrame(rows).rename(columns={"CI": f"{level:.0%} CI"})


def comparison_figure(metrics: Sequence[Mapping[str, Any]], level: float) -> go.Figure:
    """Return one small panel per metric: before and after bars, the change's CI on after."""
    shown = [m for m in metrics if m["before"] is not None and m["after"] is not None]
    figure = make_subplots(
        rows=1, cols=max(len(shown), 1), subplot_titles=[m["name"] for m in shown]
    )
    for column, entry in enumerate(shown, start=1):
        scale = 100.0 if entry["metric"] == "share_negative" else 1.0
        before, after = entry["before"] * scale, entry["after"] * scale
        error: dict[str, Any] = {"visible": False}
        if entry["ci_low"] is not None and entry["ci_high"] is not None:
            # The interval of after - before, drawn from the baseline level.
            error = {
                "type": "data",
                "symmetric": False,
                "array": [max(0.0, before + entry["ci_high"] * scale - after)],
                "arrayminus": [max(0.0, after - (before + entry["ci_low"] * scale))],
                "color": EVENT_COLOUR,
                "thickness": 1.5,
            }
        for side, value, colour, bars in (
            ("before", before, BEFORE_COLOUR, {"visible": False}),
            ("after", after, AFTER_COLOUR, error),
        ):
            figure.add_bar(
                x=[side],
                y=[value],
                marker_color=colour,
                error_y=bars,
                showlegend=False,
                hovertemplate="%{x}: %{y:.3~f}<extra></extra>",
                row=1,
                col=column,
            )
        if entry["metric"] == "share_negative":
            figure.update_yaxes(ticksuffix="%", row=1, col=column)
    figure.update_layout(
        height=300, margin={"l": 10, "r": 10, "t": 40, "b": 10}, bargap=0.35, barmode="overlay"
    )
    figure.update_annotations(font_size=12)
    return figure


def recovery_figure(recovery: Mapping[str, Any], event: Event) -> go.Figure:
    """Return the 7-day net sentiment with the baseline's normal band and the event marked."""
    series = pd.DataFrame(recovery["series"])
    figure = go.Figure()
    if recovery["normal_low"] is not None and recovery["normal_high"] is not None:
        figure.add_hrect(
            y0=recovery["normal_low"],
            y1=recovery["normal_high"],
            fillcolor=BAND_COLOUR,
            opacity=0.35,
            line_width=0,
            layer="below",
        )
    if not series.empty:
        figure.add_scatter(
            x=series["day"],
            y=series["net_sentiment_7d"],
            mode="lines+markers",
            name="net sentiment (7-day)",
            line={"color": AFTER_COLOUR, "width": 2.5},
            marker={"size": 4},
            hovertemplate="%{x}: net %{y:+.0f}<extra></extra>",
        )
    marks = [(event.at.strftime("%Y-%m-%d %H:%M"), event.label, "solid")]
    if recovery["day"]:
        marks.append((recovery["day"], "back in range", "dot"))
    for x, text, dash in marks:
        vertical_marker(figure, x, text, dash=dash)
    figure.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis={"title": "net sentiment", "range": [-100, 100], "zeroline": True},
        showlegend=False,
    )
    return figure


view = current_view()
settings = view.settings
st.title(f"{markdown_text(settings.brand.name)}: impact of events")
events = impact.ordered_events(data.events(settings))
if not events:
    st.info(
        "No event is configured, so there is nothing to compare before and after. Add an "
        '`[[events]]` table with `at`, `label` and `kind = "disclosure"` to `monitor.toml` '
        "(see the README, Configuration) and restart the app."
    )
    st.stop()

left, right = st.columns([3, 2])
chosen = left.selectbox(
    "Event",
    options=list(range(len(events))),
    format_func=lambda i: (
        f"{events[i].label} ({events[i].kind}, {events[i].at:%Y-%m-%d %H:%M} UTC)"
    ),
    key="impact_event",
    help="The first disclosure is the default: the anchor of the Overview's baseline.",
)
days = right.radio(
    "Window after the event",
    options=list(impact.AFTER_DAYS),
    index=impact.AFTER_DAYS.index(DEFAULT_DAYS),
    format_func=_days,
    horizontal=True,
    key="impact_window",
    help="After N days = from the event's hour to N days later, cut where the data ends.",
)
event = events[chosen if chosen is not None else 0]
study = data.event_study(
    view.database_url, view.version, event.at.isoformat(), event.label, event.kind, view.sources
)
result = next(w for w in study["windows"] if w["window"]["days"] == days)
window, before = result["window"], study["before"]
options = study["options"]
level = options["confidence_level"]
sources = view.describe_sources()
where = f"Before: {_span(before)}; after: {_span(window)}; {sources}"

st.caption(
    f"{markdown_text(event.label)}, {event.at:%Y-%m-%d %H:%M} UTC. Before: {_span(before)}, the "
    f"{_days(options['baseline_days'])} before the event's UTC day (for the disclosure, the "
    f"Overview's baseline). After: {_span(window)}, {window['title']}. {sources.capitalize()}. "
    f"The sidebar's date window does not apply here. Intervals: bootstrap over UTC hours, "
    f"{options['n_resamples']:,} resamples; p: permutation test."
)
for note in (before["note"], window["note"]):
    if note:
        st.warning(f"This comparison has {note}.", icon=":material/hourglass_empty:")

st.subheader(f"What changed: {window['title']}")
st.markdown("\n".join(f"- {m['sentence']}" for m in result["overall"]["metrics"]))

st.subheader("Before and after")
st.caption(
    f"{where}. Bars: the value before and after; error bars: the {level:.0%} confidence "
    "interval of the change, drawn from the baseline level. Star ratings come from the "
    "sources that have them."
)
st.plotly_chart(comparison_figure(result["overall"]["metrics"], level), key="impact_comparison")
st.dataframe(
    metric_table(result["overall"]["metrics"], level),
    hide_index=True,
    column_config={"note": st.column_config.TextColumn(width="large")},
    key="impact_metrics",
)

st.subheader("Time to recovery")
recovery = study["recovery"]
st.markdown(recovery["statement"])
if recovery["series"]:
    series = recovery["series"]
    st.caption(
        f"{series[0]['day']} to {series[-1]['day']} (UTC days); {sources}. Line: net sentiment "
        "of the 7 days ending each day. Band: the baseline's normal range, the 2.5th to 97.5th "
        "percentile of its daily values. Vertical lines: the event and, once it is back in "
        "range for good, the recovery day."
    )
    st.plotly_chart(recovery_figure(recovery, event), key="impact_recovery")

st.subheader("What people talk about")
topics = [t for t in result["topics"] if t["mentions_before"] or t["mentions_after"]]
st.caption(
    f"{where}. Share of each window's mentions tagged with the topic, the biggest rise first; "
    "a mention can carry several topics, so shares do not add up to 100%."
)
if topics:
    st.plotly_chart(
        topic_share_figure(
            [t["name"] for t in topics],
            [("before", [t["before"] for t in topics]), ("after", [t["after"] for t in topics])],
            "share of mentions",
        ),
        key="impact_topics",
    )
else:
    st.info("No mention in these windows carries a topic.")

st.subheader("By source")
st.caption(
    f"{where}. Each source against its own baseline; the same method as above. A metric is "
    "n/a when a window has none of what it counts (the note says which)."
)
rows = [
    metric_table(group["metrics"], level).assign(source=group["source"])
    for group in result["by_source"]
]
if rows:
    by_source = pd.concat(rows, ignore_index=True)
    st.dataframe(
        by_source[["source", *by_source.columns.drop("source")]],
        hide_index=True,
        height=38 + 35 * len(by_source),  # every row, no scrolling
        column_config={"note": st.column_config.TextColumn(width="large")},
        key="impact_by_source",
    )
else:
    st.info("No mentions in these windows.")

study_export = reports.event_study_table([study], sources=view.sources)
export = st.columns([2, 2, 4], vertical_alignment="bottom")
export_format = export[0].selectbox(
    "Download the event study as",
    reports.DOWNLOAD_FORMATS,
    format_func=lambda f: reports.DOWNLOAD_LABELS[f],
    key="impact_export_format",
    help="One row per window, scope (all sources, then each) and metric, with topic and "
    "recovery rows: the same file as `repmon export event-study --event LABEL`.",
)
bom = export[1].checkbox(
    "UTF-8 BOM (Excel)",
    key="impact_export_bom",
    disabled=export_format == "xlsx",
    help="Start the CSV with a byte-order mark, so Excel shows accents and emoji correctly.",
)
study_stem = f"event-study-{event.at:%Y%m%d}"
export[2].download_button(
    f"Download {reports.DOWNLOAD_LABELS[export_format]} "
    f"({len(study_export.frame()):,} rows, every window)",
    data=lambda: data.export_download(
        settings,
        study_export,
        export_format,
        bom=bom and export_format != "xlsx",
        stem=study_stem,
    ),
    file_name=reports.download_name(study_stem, export_format),
    mime=reports.MIME_TYPES[export_format],
    on_click="ignore",
    key="impact_export_download",
    icon=":material/download:",
)
st.download_button(
    "Download these numbers (JSON)",
    data=json.dumps(study, indent=2),
    file_name=f"event-study-{event.at:%Y%m%d}.json",
    mime="application/json",
    key="impact_download",
    help="The same JSON as `repmon report event-study --json --event LABEL`.",
)

"""Charts, cards and tables the pages are built from.

Every text that came from the outside world (titles, posts, authors) goes through
st.dataframe, which renders it as text; links are shown only when they are http(s). Names
that reach Markdown (sources, event labels, alert rules, the brand) go through
`markdown_text`, and those that reach a chart through `_plain`: both show them as written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from monitor.analysis import Kpis, Window
from monitor.models import LABELS, Alert, Event, safe_http_url

LABEL_COLOURS = {"negative": "#c62828", "neutral": "#9e9e9e", "positive": "#2e7d32"}
EVENT_COLOUR = "#37474f"
BEFORE_COLOUR = "#90a4ae"  # a baseline, or the days before an event


def _fmt(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else format(value, pattern)


def _delta(now: float | None, before: float | None, pattern: str, scale: float = 1.0) -> str | None:
    if now is None or before is None:
        return None
    return format((now - before) * scale, pattern)


def kpi_cards(now: Kpis, baseline: Kpis | None, baseline_caption: str) -> None:
    """Draw the four headline numbers with their change against the baseline."""
    b = baseline
    volume_delta = None
    if b is not None and b.mentions_per_day:
        volume_delta = f"{(now.mentions_per_day / b.mentions_per_day - 1):+.0%} vs baseline"
    negative_delta = _delta(now.share_negative, b.share_negative if b else None, "+.0f", 100)
    cards = st.columns(4)
    cards[0].metric(
        "Mentions per day",
        _fmt(now.mentions_per_day, ",.1f"),
        volume_delta,
        delta_color="off",
        border=True,
        help=f"Mentions in the window / days in the window ({now.mentions:,} mentions). "
        f"Baseline: {baseline_caption}.",
    )
    cards[1].metric(
        "Mean sentiment",
        _fmt(now.mean_compound, "+.2f"),
        _delta(now.mean_compound, b.mean_compound if b else None, "+.2f"),
        border=True,
        help="Average compound score, -1 (very negative) to +1 (very positive): "
        "VADER with the breach-domain lexicon.",
    )
    cards[2].metric(
        "Share negative",
        _fmt(now.share_negative, ".0%"),
        f"{negative_delta} pts" if negative_delta else None,
        delta_color="inverse",
        border=True,
        help="Negative mentions / all mentions. A mention is negative when its compound "
        "score is -0.05 or lower, or it is a 1-2 star review.",
    )
    cards[3].metric(
        "Net sentiment",
        _fmt(now.net_sentiment, "+.0f"),
        _delta(now.net_sentiment, b.net_sentiment if b else None, "+.0f"),
        border=True,
        help="(positive - negative) / (positive + negative) x 100, from -100 to +100.",
    )


SEVERITY_COLOURS = {"critical": "#4a0000", "high": "#b71c1c", "medium": "#ef6c00", "low": "#f9a825"}


def timeline_figure(
    series: pd.DataFrame,
    events: Sequence[Event],
    window: Window,
    *,
    alerts: Sequence[Alert] = (),
) -> go.Figure:
    """Return daily volume stacked by label, the 7-day net sentiment line, event lines, and a
    marker for each alert (fired, or that would have fired in a replay)."""
    figure = go.Figure()
    for label in LABELS:
        figure.add_bar(
            x=series.index,
            y=series[label],
            name=label,
            marker_color=LABEL_COLOURS[label],
            hovertemplate="%{x|%Y-%m-%d}: %{y} " + label + "<extra></extra>",
        )
    figure.add_scatter(
        x=series.index,
        y=series["rolling_net_sentiment"],
        name="net sentiment (7-day)",
        yaxis="y2",
        mode="lines",
        line={"color": "#1565c0", "width": 2.5},
        hovertemplate="%{x|%Y-%m-%d}: net %{y:+.0f}<extra></extra>",
    )
    if alerts:
        figure.add_scatter(
            x=[a.fired_at for a in alerts],
            y=[95 - 6 * (i % 3) for i, _ in enumerate(alerts)],
            yaxis="y2",
            mode="markers",
            name="alert",
            marker={
                "symbol": "triangle-down",
                "size": 11,
                "color": [SEVERITY_COLOURS.get(a.severity, "#616161") for a in alerts],
            },
            text=[_plain(f"[{a.severity}] {a.rule}") for a in alerts],
            hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>%{text}<extra></extra>",
        )
    figure.add_vrect(
        x0=window.start,
        x1=window.end,
        fillcolor="#fff59d",
        opacity=0.25,
        line_width=0,
        layer="below",
    )
    for i, event in enumerate(events):
        dash = "solid" if event.kind == "disclosure" else "dash"
        vertical_marker(figure, event.at, event.label, dash=dash, label_y=1.0 - 0.08 * (i % 4))
    figure.update_layout(
        barmode="stack",
        height=420,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": -0.12},
        yaxis={"title": "mentions per day"},
        yaxis2={
            "title": "net sentiment",
            "overlaying": "y",
            "side": "right",
            "range": [-100, 100],
            "tickvals": [-100, -50, 0, 50, 100],
            "showgrid": False,
            "zeroline": True,
        },
        hovermode="x unified",
    )
    return figure


def rating_figure(series: pd.DataFrame, events: Sequence[Event]) -> go.Figure:
    """Return the daily mean star rating (dots) and its 7-day mean (line), 1 to 5 stars."""
    figure = go.Figure()
    figure.add_scatter(
        x=series.index,
        y=series["mean_rating"],
        mode="markers",
        name="daily mean",
        marker={"color": "#ffa000", "size": 6},
        customdata=series["ratings"],
        hovertemplate="%{x|%Y-%m-%d}: %{y:.2f} ★ (%{customdata} ratings)<extra></extra>",
    )
    figure.add_scatter(
        x=series.index,
        y=series["rolling_mean_rating"],
        mode="lines",
        name="7-day mean",
        line={"color": "#e65100", "width": 2.5},
        hovertemplate="%{x|%Y-%m-%d}: %{y:.2f} ★ over 7 days<extra></extra>",
    )
    for event in events:
        vertical_marker(
            figure, event.at, None, dash="solid" if event.kind == "disclosure" else "dot"
        )
    figure.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        yaxis={"title": "stars", "range": [0.8, 5.2], "tickvals": [1, 2, 3, 4, 5]},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def vertical_marker(
    figure: go.Figure,
    at: datetime | str,
    label: str | None,
    *,
    dash: str = "dash",
    label_y: float = 1.0,
) -> None:
    """Draw a full-height line at `at` with an optional label (events, recovery days)."""
    x = at.strftime("%Y-%m-%d %H:%M") if isinstance(at, datetime) else at
    line = {"color": EVENT_COLOUR, "dash": dash, "width": 1.5 if label else 1}
    figure.add_shape(type="line", x0=x, x1=x, yref="paper", y0=0, y1=1, line=line)
    if label:
        figure.add_annotation(
            x=x,
            yref="paper",
            y=label_y,
            text=_plain(label),
            showarrow=False,
            xanchor="left",
            font={"size": 11, "color": EVENT_COLOUR},
            bgcolor="rgba(255,255,255,0.8)",
        )


def _plain(text: str) -> str:
    """Return text safe for a plotly annotation, which would otherwise read HTML-like tags."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Every ASCII punctuation character. Written as a character reference it is only text to
# CommonMark: no syntax, and no autolink ("http&#58;//..." is not a URL).
_MARKDOWN_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")


def markdown_text(text: str) -> str:
    """Return `text` for st.markdown, st.caption, st.title or an alert box, shown as written.

    Streamlit renders those as Markdown: a source named "![x](http://tracker/)" would load an
    image, "[x](javascript:...)" would become a link, "*x*" would turn italic, ":red[x]"
    coloured. Punctuation as character references, and lines joined, leave only text.
    """
    flat = " ".join(text.splitlines())
    return _MARKDOWN_PUNCTUATION.sub(lambda found: f"&#{ord(found.group())};", flat)


def topic_share_figure(
    names: Sequence[str], sides: Sequence[tuple[str, Sequence[float | None]]], axis_title: str
) -> go.Figure:
    """Return horizontal bars of each topic's share (fractions) on each side, such as the
    baseline and the window, the first topic on top: the last side in red, an earlier one
    in grey."""
    figure = go.Figure()
    colours = [BEFORE_COLOUR] * (len(sides) - 1) + [LABEL_COLOURS["negative"]]
    for (side, shares), colour in zip(sides, colours, strict=True):
        figure.add_bar(
            y=list(names),
            x=[(share or 0.0) * 100 for share in shares],
            name=side,
            orientation="h",
            marker_color=colour,
            hovertemplate="%{y}: %{x:.1f}% (" + _plain(side) + ")<extra></extra>",
        )
    figure.update_layout(
        barmode="group",
        height=80 + 19 * len(sides) * max(len(names), 1),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"title": axis_title, "ticksuffix": "%"},
        yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": -0.15},
    )
    return figure


def source_figure(by_source: pd.DataFrame) -> go.Figure:
    """Return one horizontal bar per source, split by label."""
    figure = go.Figure()
    names = [_plain(name) for name in by_source["source"]]
    for label in LABELS:
        figure.add_bar(
            y=names,
            x=by_source[label],
            name=label,
            orientation="h",
            marker_color=LABEL_COLOURS[label],
            hovertemplate="%{y}: %{x} " + label + "<extra></extra>",
        )
    figure.update_layout(
        barmode="stack",
        height=60 + 45 * max(len(by_source), 1),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "y": -0.3},
        xaxis={"title": "mentions"},
        yaxis={"autorange": "reversed"},
    )
    return figure


def source_table(by_source: pd.DataFrame) -> None:
    """Draw the per-source numbers beside the chart."""
    st.dataframe(
        by_source[["source", "mentions", "share_negative", "mean_compound", "net_sentiment"]],
        hide_index=True,
        column_config={
            "share_negative": st.column_config.NumberColumn("share negative", format="percent"),
            "mean_compound": st.column_config.NumberColumn("mean sentiment", format="%+.2f"),
            "net_sentiment": st.column_config.NumberColumn("net sentiment", format="%+.0f"),
        },
    )


def mentions_table(frame: pd.DataFrame, *, key: str, height: int | str = "auto") -> None:
    """Draw mentions as a table: text rendered as text, only http(s) links clickable."""
    shown = frame.copy()
    shown["url"] = shown["url"].map(safe_http_url)
    shown["what was said"] = [
        _snippet(title, text) for title, text in zip(shown["title"], shown["text"], strict=True)
    ]
    st.dataframe(
        shown,
        key=key,
        hide_index=True,
        height=height,  # type: ignore[arg-type]
        column_order=[
            "published_at",
            "source",
            "label",
            "compound",
            "engagement",
            "what was said",
            "author",
            "topics",
            "rating",
            "url",
        ],
        column_config={
            "published_at": st.column_config.DatetimeColumn(
                "published (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "compound": st.column_config.NumberColumn("sentiment", format="%+.2f"),
            "what was said": st.column_config.TextColumn(width="large"),
            "rating": st.column_config.NumberColumn("stars", format="%.0f ★"),
            "url": st.column_config.LinkColumn("link", display_text="open"),
        },
    )


def _snippet(title: str, text: str, limit: int = 280) -> str:
    joined = f"{title} — {text}" if title and text else title or text
    joined = " ".join(joined.split())
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"

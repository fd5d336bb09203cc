"""The leadership briefing: one page for the crisis lead, as self-contained HTML and as a PDF.

`build_briefing` gathers every number once from the store; `render_html` writes the page;
`render_pdf` prints that page with a real browser engine (Playwright driving the system
Chromium); `briefing_message` is the short notification that carries the PDF. docs/briefing.md
has the long version.

Where the numbers come from (so the page equals the dashboard and the CLI, to the digit)
    KPI cards: `analysis.kpis` of the window and of the baseline, formatted as the Overview's
    cards. Their 95% intervals: `impact.compare` of the window's hours against the baseline's
    hours (the event study's own bootstrap, seed and resamples), so each interval belongs to
    the very difference on its card. "Since the disclosure": the sentences of
    `impact.run_event_study` (default options: `repmon report event-study --json`) for the
    disclosure's after-window that best matches the briefing's window. Narratives: topic
    counts among the window's negative mentions. "What is hurting us": the Overview's table,
    first rows. Alerts: the alerts fired in the window, as the Overview lists them.
The page loads nothing
    Inline CSS, an SVG chart drawn here, no script, no font, no image: it opens offline, and a
    Content-Security-Policy forbids every load should anything slip in. Text from the outside
    world (titles, posts, authors, alert messages) is HTML-escaped; links are http(s) only.
"""

from __future__ import annotations

import html
import math
import os
import re
import shutil
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from monitor import analysis, impact
from monitor.analysis import Kpis, NarrativeTopic, Window, narrative_topics, start_of_day
from monitor.models import LABELS, Alert, Event, MentionQuery, safe_http_url, utc, utcnow

if TYPE_CHECKING:
    from monitor.alerts.channels import Message
    from monitor.config import Settings
    from monitor.store import Store

TOP_TOPICS = 5
TOP_MENTIONS = 5
MAX_ALERTS = 5
MAX_EVENTS = 8
SNIPPET_CHARS = 220
# With no mention for this long before the briefing, collection has probably stopped.
STALE_AFTER = timedelta(hours=36)

CHROMIUM_ENV = "REPMON_CHROMIUM"
DEFAULT_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
)
PAPERS = {"A4": (210.0, 297.0), "Letter": (215.9, 279.4)}  # width, height in mm
MARGIN_MM = 10.0
MIN_SCALE = 0.6  # below this, text on paper is too small to read: rather a second page
PX_PER_MM = 96 / 25.4

LABEL_COLOURS = {"negative": "#c62828", "neutral": "#9e9e9e", "positive": "#2e7d32"}
NET_COLOUR = "#1565c0"
EVENT_COLOUR = "#37474f"
WINDOW_FILL = "#fff59d"
BASELINE_FILL = "#e3e8eb"
SEVERITY_COLOURS = {"critical": "#4a0000", "high": "#b71c1c", "medium": "#ef6c00", "low": "#f9a825"}
INSTALL_CHROMIUM = "apt-get install chromium"
INSTALL_PLAYWRIGHT = "pip install playwright"


class BriefingError(RuntimeError):
    """Why the PDF could not be written, worded with what to install or fix."""


# -- what the page holds ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HurtingMention:
    """One of the window's most-engaged negative mentions, as the Overview's table has it."""

    published_at: datetime
    source: str
    author: str
    engagement: int
    compound: float
    rating: float | None
    said: str  # title and text on one line, shortened: untrusted, escaped when drawn
    url: str  # http(s) only, else ""


@dataclass(frozen=True, eq=False)
class Briefing:
    """Everything the one page shows, gathered once by `build_briefing`."""

    brand: str
    window: Window
    window_label: str  # "the last 7 days of data" or "the selected window"
    baseline: Window | None  # the 28 whole UTC days before the disclosure's day
    disclosure: Event | None
    sources: tuple[str, ...]  # the filter asked for; empty means every source
    by_source: tuple[tuple[str, int], ...]  # sources with mentions in the window, and how many
    now: Kpis
    before: Kpis | None
    change: impact.Comparison | None  # window against baseline, with 95% intervals
    change_note: str  # why there are no intervals on the cards, if there are none
    study: dict[str, Any] | None  # the disclosure's event study, `to_dict()` (all windows)
    study_days: int | None  # the after-window shown: the one matching the window
    study_note: str  # why the study is not shown, if it is not
    topics: tuple[NarrativeTopic, ...]
    negative_mentions: int
    hurting: tuple[HurtingMention, ...]
    alerts: tuple[Alert, ...]  # fired in the window, newest first
    timeline: Window  # the chart's span: the baseline through the window
    series: pd.DataFrame  # analysis.daily_series over `timeline`
    events: tuple[Event, ...]
    data_end: datetime | None  # the newest stored mention
    generated_at: datetime
    scorer_version: str
    options: impact.StudyOptions
    dashboard_url: str = ""
    is_demo: bool = False

    @property
    def study_window(self) -> dict[str, Any] | None:
        """Return the shown after-window of the study (`to_dict()` form), if any."""
        if self.study is None or self.study_days is None:
            return None
        windows: list[dict[str, Any]] = self.study["windows"]
        return next(w for w in windows if w["window"]["days"] == self.study_days)

    @property
    def stale(self) -> bool:
        """Return True when the newest mention is much older than the briefing (not for demos)."""
        if self.is_demo or self.data_end is None:
            return False
        return self.generated_at - self.data_end > STALE_AFTER


# -- the window ---------------------------------------------------------------------------------

_WINDOW = re.compile(r"^\s*(\d+)\s*([dw]?)\s*$", re.IGNORECASE)


def parse_window_days(text: str) -> int:
    """Return the whole days of a window written "7d", "2w" or "7"; ValueError otherwise.

    Windows are whole UTC days, as on the dashboard, so hours and minutes are refused.
    """
    found = _WINDOW.match(text)
    if not found or int(found.group(1)) < 1:
        raise ValueError(
            f"not a window: {text!r}; write whole days or weeks, e.g. 7d, 14d or 2w (UTC days)"
        )
    return int(found.group(1)) * (7 if found.group(2).lower() == "w" else 1)


def latest_window(
    bounds: tuple[datetime, datetime] | None, days: int, *, today: date | None = None
) -> Window:
    """Return the dashboard's default window: the last `days` UTC days that have data.

    It ends with the day of the newest mention and starts no earlier than the first one's
    day; with no data it is the `days` days ending `today` (default: today, UTC).
    """
    if days < 1:
        raise ValueError("a window is at least one day")
    if bounds is None:
        last = today or utcnow().date()
        first = last - timedelta(days=days - 1)
    else:
        first_day, last = bounds[0].date(), bounds[1].date()
        first = max(first_day, last - timedelta(days=days - 1))
    return Window(_midnight(first), _midnight(last) + timedelta(days=1))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _whole_days(window: Window) -> Window:
    """Return the whole UTC days `window` touches (KPIs and charts count whole days)."""
    start = start_of_day(utc(window.start))
    end = start_of_day(utc(window.end) - timedelta(microseconds=1)) + timedelta(days=1)
    return Window(start, max(end, start + timedelta(days=1)))


def _overlaps(a: Window, b: Window) -> bool:
    return a.start < b.end and b.start < a.end


# -- gathering ----------------------------------------------------------------------------------


def build_briefing(
    store: Store,
    settings: Settings,
    *,
    window: Window | None = None,
    days: int | None = None,
    now: datetime | None = None,
    sources: Sequence[str] = (),
) -> Briefing:
    """Return the briefing of `window`, or of the last `days` UTC days of data (`--window 7d`);
    with neither, of the dashboard's default window (`[dashboard] default_window_days`).

    Every number is read here, once: the page, the PDF and the message only format them.
    A window is taken as the whole UTC days it touches. `now` is when the briefing is made
    (default: the current time); `sources` limits it to those sources, as the dashboard's
    sidebar does (default: all).
    """
    from monitor.scoring import default_scorer, topic_labels

    if window is not None and days is not None:
        raise ValueError("give a window or a number of days, not both")
    generated = utc(now) if now is not None else utcnow()
    picked = tuple(sources)
    bounds = store.time_bounds()
    if window is None:
        length = days or settings.default_window_days
        chosen = latest_window(bounds, length, today=generated.date())
    else:
        chosen = _whole_days(window)
    length = round(chosen.days)
    if chosen == latest_window(bounds, length, today=generated.date()):
        label = "the last day of data" if length == 1 else f"the last {length} days of data"
    else:
        label = "the selected window"
    disclosure = settings.disclosure
    baseline = analysis.baseline_window(disclosure.at) if disclosure else None

    # The chart spans the baseline through the window, as the Overview's timeline does; the
    # counts also cover the whole baseline when the window ends before it.
    timeline = Window(
        start_of_day(min(chosen.start, baseline.start) if baseline else chosen.start), chosen.end
    )
    scan = Window(timeline.start, max(chosen.end, baseline.end) if baseline else chosen.end)
    daily = store.daily_counts(MentionQuery(since=scan.start, until=scan.end, sources=picked))
    now_kpis = analysis.kpis(daily, chosen)
    before_kpis = analysis.kpis(daily, baseline) if baseline else None
    series = analysis.daily_series(daily, timeline)
    breakdown = analysis.by_source(daily, chosen)
    by_source = tuple(
        (str(s), int(n)) for s, n in zip(breakdown["source"], breakdown["mentions"], strict=True)
    )

    options = impact.StudyOptions(sources=picked)
    change, change_note = None, ""
    if baseline is None:
        change_note = "No disclosure event is configured, so there is no baseline."
    elif _overlaps(chosen, baseline):
        change_note = "The window overlaps the baseline, so the change has no interval."
    else:
        change = window_change(store, baseline, chosen, options)

    study, study_days, study_note = None, None, ""
    if disclosure is None:
        study_note = "No disclosure event is configured, so there is no before/after study."
    else:
        _, afters = impact.plan_windows(
            disclosure, impact.data_span(bounds), options.baseline_days, options.after_days
        )
        match = matching_after_window(afters, chosen)
        if match is None:
            lengths = ", ".join(str(w.days) for w in afters)
            study_note = (
                f"The disclosure's after-windows (its first {lengths} days) do not overlap this "
                "window: the Impact page and repmon report event-study show them."
            )
        else:
            study = impact.run_event_study(store, disclosure, options).to_dict()
            study_days = match.days

    names = topic_labels()
    negative = MentionQuery(
        since=chosen.start, until=chosen.end, sources=picked, labels=("negative",)
    )
    negatives = store.count_mentions(negative)
    counts = store.topic_counts(negative, list(names)) if negatives else {}
    base_counts: Mapping[str, int] = {}
    base_negatives = 0
    if baseline is not None:
        earlier = MentionQuery(
            since=baseline.start, until=baseline.end, sources=picked, labels=("negative",)
        )
        base_negatives = store.count_mentions(earlier)
        base_counts = store.topic_counts(earlier, list(names)) if base_negatives else {}
    topics = narrative_topics(counts, negatives, base_counts, base_negatives, names, TOP_TOPICS)

    worst = store.mentions_frame(
        negative, order_by="engagement", descending=True, limit=TOP_MENTIONS
    )
    alerts = tuple(store.alerts(since=chosen.start, until=chosen.end, limit=None))
    return Briefing(
        brand=settings.brand.name,
        window=chosen,
        window_label=label,
        baseline=baseline,
        disclosure=disclosure,
        sources=picked,
        by_source=by_source,
        now=now_kpis,
        before=before_kpis,
        change=change,
        change_note=change_note,
        study=study,
        study_days=study_days,
        study_note=study_note,
        topics=topics,
        negative_mentions=negatives,
        hurting=tuple(_hurting(worst)),
        alerts=alerts,
        timeline=timeline,
        series=series,
        events=tuple(sorted(settings.events, key=lambda e: e.at)),
        data_end=bounds[1] if bounds else None,
        generated_at=generated,
        scorer_version=default_scorer().version,
        options=options,
        dashboard_url=safe_http_url(settings.dashboard_url),
        is_demo=settings.is_demo,
    )


def window_change(
    store: Store, baseline: Window, window: Window, options: impact.StudyOptions
) -> impact.Comparison:
    """Return the window against the baseline with the event study's hour bootstrap.

    Both windows are taken whole, hours without mentions as zeros, as the KPI cards count
    them, so the compared values are the cards' values.
    """
    start, end = min(baseline.start, window.start), max(baseline.end, window.end)
    hourly = store.hourly_counts(MentionQuery(since=start, until=end, sources=options.sources))
    sums = impact.hourly_sums(hourly)
    before = impact.StudyWindow("baseline", round(baseline.days), baseline.start, baseline.end)
    after = impact.StudyWindow("window", round(window.days), window.start, window.end)
    return impact.compare(
        impact.hour_matrix(sums, before),
        impact.hour_matrix(sums, after),
        n_resamples=options.n_resamples,
        confidence_level=options.confidence_level,
        seed=options.seed,
    )


def matching_after_window(
    afters: Iterable[impact.StudyWindow], window: Window
) -> impact.StudyWindow | None:
    """Return the after-window most like `window` (overlap / union), or None if none overlaps.

    A briefing of the week after the disclosure matches "after 7 days"; this week's, a month
    on, matches "after 28 days" if that still reaches into it, else nothing.
    """
    best: tuple[float, int, impact.StudyWindow] | None = None
    for after in afters:
        if after.hours == 0:
            continue
        shared = min(after.end, window.end) - max(after.start, window.start)
        if shared <= timedelta(0):
            continue
        union = max(after.end, window.end) - min(after.start, window.start)
        score = (shared / union, after.days, after)
        if best is None or score[:2] > best[:2]:
            best = score
    return best[2] if best else None


def _hurting(frame: pd.DataFrame) -> Iterable[HurtingMention]:
    rows: list[dict[str, Any]] = frame.to_dict(orient="records")  # type: ignore[assignment]
    for row in rows:
        rating, engagement = row["rating"], row["engagement"]
        yield HurtingMention(
            published_at=pd.Timestamp(row["published_at"]).to_pydatetime(),
            source=plain_line(row["source"]),
            author=plain_line(row["author"]),
            engagement=0 if pd.isna(engagement) else int(engagement),
            compound=float(row["compound"]),
            rating=None if pd.isna(rating) else float(rating),
            said=snippet(row["title"], row["text"]),
            url=safe_http_url(row["url"]),
        )


def plain_line(text: object) -> str:
    """Return `text` on one line: control and invisible format characters gone, spaces folded."""
    chars = (
        " " if unicodedata.category(ch) in ("Cc", "Cf") and ch != "\u200d" else ch
        for ch in str(text or "")
    )
    return " ".join("".join(chars).split())


def snippet(title: object, text: object, limit: int = SNIPPET_CHARS) -> str:
    """Return title and text on one line, at most `limit` characters (the Overview's join)."""
    head, body = plain_line(title), plain_line(text)
    joined = f"{head} — {body}" if head and body and not body.startswith(head) else body or head
    if len(joined) <= limit:
        return joined
    cut = joined[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut[limit // 2 :] else cut) + "…"


# -- the cards: the Overview's formats ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Card:
    """One headline number as shown: the Overview card's value and delta, plus its interval."""

    key: str  # the metric's key in the event study
    name: str
    value: str
    delta: str | None
    tone: str  # good | bad | off: how the delta is coloured, as on the Overview
    baseline: str | None  # the baseline's value, formatted as the value
    interval: str  # "95% CI +20.1 to +27.9 pts", or why there is none
    clear: bool | None  # the interval leaves out zero


def _fmt(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else format(value, pattern)


def _delta(now: float | None, before: float | None, pattern: str, scale: float = 1.0) -> str | None:
    if now is None or before is None:
        return None
    return format((now - before) * scale, pattern)


def _tone(delta: str | None, *, inverse: bool = False) -> str:
    if not delta:
        return "off"
    up = not delta.startswith("-")
    return "good" if up != inverse else "bad"


def cards(briefing: Briefing) -> tuple[Card, ...]:
    """Return the four headline cards, formatted exactly as the Overview formats them."""
    now, b = briefing.now, briefing.before
    volume = None
    if b is not None and b.mentions_per_day:
        volume = f"{(now.mentions_per_day / b.mentions_per_day - 1):+.0%} vs baseline"
    negative = _delta(now.share_negative, b.share_negative if b else None, "+.0f", 100)
    mean = _delta(now.mean_compound, b.mean_compound if b else None, "+.2f")
    net = _delta(now.net_sentiment, b.net_sentiment if b else None, "+.0f")
    rows = (
        ("mentions_per_day", "Mentions per day", ",.1f", now.mentions_per_day, volume, "off"),
        ("mean_compound", "Mean sentiment", "+.2f", now.mean_compound, mean, _tone(mean)),
        (
            "share_negative",
            "Share negative",
            ".0%",
            now.share_negative,
            f"{negative} pts" if negative else None,
            _tone(negative, inverse=True),
        ),
        ("net_sentiment", "Net sentiment", "+.0f", now.net_sentiment, net, _tone(net)),
    )
    made = []
    for key, name, pattern, value, delta, tone in rows:
        before = None if b is None else _fmt(getattr(b, key), pattern)
        interval, clear = _interval(briefing, key)
        made.append(Card(key, name, _fmt(value, pattern), delta, tone, before, interval, clear))
    return tuple(made)


def _interval(briefing: Briefing, key: str) -> tuple[str, bool | None]:
    """Return the interval of a card's change as shown ("" without a baseline) and whether
    it is clear of zero."""
    if briefing.change is None:
        return "", None
    change = briefing.change.metric(key)
    level = f"{change.confidence_level:.0%} CI"
    if change.ci_low is None or change.ci_high is None:
        return f"no {level}: {change.reason}", None
    cells = impact.metric_cells(change.to_dict())
    if key == "mentions_per_day":
        text = f"{cells['difference']} a day, {level} {cells['CI']}"
    else:
        unit = " pts" if key in ("share_negative", "net_sentiment") else ""
        text = f"{level} {cells['CI']}{unit}"
    return (text if change.clear else f"{text}: no clear change"), change.clear


# -- the page -----------------------------------------------------------------------------------


def _e(text: object) -> str:
    """Return text safe inside HTML, attribute values included."""
    return html.escape(str(text), quote=True)


def _when(value: datetime) -> str:
    return utc(value).strftime("%Y-%m-%d %H:%M")


CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src 'none'; "
    "base-uri 'none'; form-action 'none'"
)

STYLE = """
@page { margin: 10mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "Helvetica Neue", Helvetica, Arial, "Liberation Sans", "DejaVu Sans",
  sans-serif; font-size: 8.4pt; line-height: 1.28; color: #212121; margin: 0 auto;
  max-width: 190mm; }
@media screen { body { padding: 8mm 4mm; } }
h1 { font-size: 14pt; margin: 0; }
h2 { font-size: 9.6pt; margin: 7px 0 3px; color: #263238; border-bottom: 1px solid #cfd8dc;
  padding-bottom: 1px; }
p { margin: 2px 0; }
a { color: #0d47a1; }
.meta { color: #546e7a; font-size: 7.6pt; margin-top: 1px; }
.banner { border: 1px solid #ef6c00; background: #fff3e0; padding: 3px 6px; margin-top: 5px;
  border-radius: 3px; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 6px; margin-top: 7px; }
.card { border: 1px solid #cfd8dc; border-radius: 4px; padding: 4px 7px 5px;
  break-inside: avoid; }
.card .label { font-size: 7.2pt; color: #546e7a; text-transform: uppercase;
  letter-spacing: .03em; }
.card .value { font-size: 17pt; font-weight: 600; line-height: 1.15; }
.delta { font-weight: 600; }
.good { color: #2e7d32; } .bad { color: #c62828; } .off { color: #546e7a; }
.small { font-size: 7.2pt; color: #455a64; }
.chart svg { display: block; width: 100%; height: auto; }
.legend { font-size: 7.2pt; color: #455a64; margin-top: 1px; }
.num-badge { display: inline-block; min-width: 11px; padding: 0 2px; border-radius: 6px;
  background: #37474f; color: #fff; font-size: 6.6pt; text-align: center; line-height: 11px; }
.cols { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
ul { margin: 2px 0; padding-left: 14px; }
li { margin: 1px 0; }
table { width: 100%; border-collapse: collapse; font-size: 7.8pt; }
th { text-align: left; font-weight: 600; color: #455a64; border-bottom: 1px solid #b0bec5;
  padding: 1px 4px; }
td { padding: 2px 4px; border-bottom: 1px solid #eceff1; vertical-align: top; }
.num { text-align: right; white-space: nowrap; }
.nowrap { white-space: nowrap; }
.said { display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical;
  overflow: hidden; overflow-wrap: anywhere; }
.who { color: #607d8b; }
.sev { font-weight: 600; text-transform: uppercase; font-size: 7pt; }
.methods { font-size: 6.6pt; line-height: 1.25; color: #546e7a; margin-top: 7px;
  border-top: 1px solid #cfd8dc; padding-top: 3px; }
.methods p { margin: 1px 0; }
tr, li, .card, .chart { break-inside: avoid; }
"""


def render_html(briefing: Briefing) -> str:
    """Return the briefing as one self-contained HTML page (one page when printed).

    Inline CSS and an inline SVG chart; no script, no stylesheet, font or image to load.
    """
    b = briefing
    title = f"{b.brand}: leadership briefing, {b.window.describe()}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head><body>",
        _header(b),
        _cards_html(b),
        _timeline_html(b),
        '<div class="cols">',
        f"<div>{_study_html(b)}</div>",
        f"<div>{_topics_html(b)}</div>",
        "</div>",
        _hurting_html(b),
        _alerts_html(b),
        _methods_html(b),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _header(b: Briefing) -> str:
    days = round(b.window.days)
    window = f"{b.window.describe()}, {b.window_label} ({days} day{'s' if days != 1 else ''})"
    lines = [f"<h1>{_e(b.brand)}: leadership briefing</h1>"]
    meta = [f"<b>Window:</b> {_e(window)}"]
    if b.baseline is not None and b.disclosure is not None:
        meta.append(
            f"<b>Baseline:</b> {_e(b.baseline.describe())}, the 28 days before the disclosure "
            f"({_e(b.disclosure.label)}, {_e(_when(b.disclosure.at))} UTC)"
        )
    else:
        meta.append("<b>Baseline:</b> none (no disclosure event is configured)")
    sources = ", ".join(b.sources) if b.sources else "all sources"
    end = f"{_when(b.data_end)} UTC" if b.data_end else "no data yet"
    meta.append(
        f"<b>Sources:</b> {_e(sources)} · <b>Data up to</b> {_e(end)} · "
        f"<b>Generated</b> {_e(_when(b.generated_at))} UTC"
    )
    if b.is_demo:
        meta[-1] += " · <b>Demo scenario:</b> a fictional bank and a made-up breach"
    lines.append(f'<div class="meta">{"<br>".join(meta)}</div>')
    if b.stale and b.data_end is not None:
        hours = (b.generated_at - b.data_end) / timedelta(hours=1)
        lines.append(
            f'<div class="banner"><b>Collection may have stopped:</b> the newest mention is '
            f"{hours / 24:.1f} days older than this briefing. Check <code>repmon sources</code>."
            "</div>"
        )
    if b.now.mentions == 0:
        lines.append('<div class="banner">No mentions in this window.</div>')
    return "\n".join(lines)


def _cards_html(b: Briefing) -> str:
    out = ['<div class="cards">']
    for card in cards(b):
        delta = (
            f'<span class="delta {card.tone}">{_e(card.delta)}</span>'
            if card.delta
            else '<span class="off">no baseline</span>'
        )
        baseline = f" · baseline {_e(card.baseline)}" if card.baseline is not None else ""
        out.append(
            f'<div class="card" data-metric="{_e(card.key)}">'
            f'<div class="label">{_e(card.name)}</div>'
            f'<div class="value">{_e(card.value)}</div>'
            f"<div>{delta}<span class='small'>{baseline}</span></div>"
            f'<div class="small">{_e(card.interval)}</div>'
            "</div>"
        )
    out.append("</div>")
    if b.change_note:
        out.append(f'<p class="small">{_e(b.change_note)}</p>')
    return "\n".join(out)


def _timeline_html(b: Briefing) -> str:
    shown = [e for e in b.events if b.timeline.start <= e.at < b.timeline.end]
    legend = [
        f'<span class="nowrap"><span class="num-badge">{i}</span> {_e(_when(e.at))} '
        f"{_e(e.label)}</span>"
        for i, e in enumerate(shown[:MAX_EVENTS], start=1)
    ]
    if len(shown) > MAX_EVENTS:
        legend.append(f"and {len(shown) - MAX_EVENTS} more")
    caption = (
        f"{_e(b.timeline.describe())}. Shaded: the baseline (grey) and the window (yellow). "
        "Lines: events (solid: the disclosure). Triangles: the window's alerts."
    )
    return "\n".join(
        [
            "<h2>Daily mentions and net sentiment</h2>",
            f'<div class="chart">{timeline_svg(b)}</div>',
            f'<div class="legend">{caption}'
            + (f" Events: {' · '.join(legend)}" if legend else "")
            + "</div>",
        ]
    )


def _study_html(b: Briefing) -> str:
    result = b.study_window
    if result is None or b.study is None or b.disclosure is None:
        return f"<h2>Since the disclosure</h2><p class='small'>{_e(b.study_note)}</p>"
    window = result["window"]
    span = f"{window['start'][:16].replace('T', ' ')} to {window['end'][:16].replace('T', ' ')}"
    heading = f"Since the disclosure: the first {window['days']} day{'s' * (window['days'] != 1)}"
    items = [
        f"<li>{_e(entry['sentence'])}</li>"
        for entry in result["overall"]["metrics"]
        if not (entry["metric"] == "mean_rating" and entry["before"] is None)
    ]
    risers = [t for t in result["topics"] if t["change"] is not None and t["change"] > 0][:1]
    for topic in risers:
        items.append(
            f"<li>Biggest rise in a topic: {_e(topic['name'])}, {topic['before'] * 100:.0f}% "
            f"to {topic['after'] * 100:.0f}% of mentions ({topic['change'] * 100:+.0f} "
            "points)</li>"
        )
    items.append(f"<li>{_e(b.study['recovery']['statement'])}</li>")
    note = f" ({_e(window['note'])})" if window["note"] else ""
    return (
        f"<h2>{_e(heading)}</h2>"
        f'<p class="small">{_e(b.disclosure.label)}: {_e(span)} UTC{note}, against the 28 days '
        "before. The Impact page's and <code>repmon report event-study</code>'s numbers.</p>"
        f"<ul>{''.join(items)}</ul>"
    )


def _topics_html(b: Briefing) -> str:
    head = "<h2>Top negative narratives</h2>"
    if not b.topics:
        return head + "<p class='small'>No negative mentions with a known topic in this window.</p>"
    rows = []
    for topic in b.topics:
        share = "n/a" if topic.share is None else f"{topic.share:.0%}"
        before = "n/a" if topic.baseline_share is None else f"{topic.baseline_share:.0%}"
        change = "n/a" if topic.change is None else f"{topic.change * 100:+.0f}"
        rows.append(
            f"<tr><td>{_e(topic.name)}</td><td class='num'>{topic.mentions:,}</td>"
            f"<td class='num'>{share}</td><td class='num'>{before}</td>"
            f"<td class='num'>{change}</td></tr>"
        )
    return (
        head
        + f"<p class='small'>Topics of the window's {b.negative_mentions:,} negative mentions; "
        "a mention may have several topics or none.</p>"
        "<table><thead><tr><th>topic</th><th class='num'>mentions</th>"
        "<th class='num'>share</th><th class='num'>baseline</th><th class='num'>pts</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _hurting_html(b: Briefing) -> str:
    head = f"<h2>What is hurting us: the {TOP_MENTIONS} most-engaged negative mentions</h2>"
    if not b.hurting:
        return head + "<p class='small'>No negative mentions in this window.</p>"
    rows = []
    for m in b.hurting:
        stars = "" if m.rating is None else f" · {m.rating:.0f}★"
        who = f' <span class="who">— {_e(m.author)}</span>' if m.author else ""
        link = (
            f'<a href="{_e(m.url)}" rel="noopener noreferrer nofollow" target="_blank">open</a>'
            if m.url
            else ""
        )
        rows.append(
            f"<tr><td class='nowrap'>{_e(_when(m.published_at))}</td>"
            f"<td class='nowrap'>{_e(m.source)}{stars}</td>"
            f"<td class='num'>{m.engagement:,}</td><td class='num'>{m.compound:+.2f}</td>"
            f"<td><div class='said'>{_e(m.said)}{who}</div></td><td>{link}</td></tr>"
        )
    return (
        head + "<table><thead><tr><th>published (UTC)</th><th>source</th>"
        "<th class='num'>engagement</th><th class='num'>sentiment</th><th>what was said</th>"
        f"<th>link</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _alerts_html(b: Briefing) -> str:
    waiting = sum(a.acknowledged_at is None for a in b.alerts)
    count = len(b.alerts)
    head = f"<h2>Alerts in this window: {count:,}"
    head += f" ({waiting:,} not yet acknowledged)</h2>" if count else "</h2>"
    if not count:
        return head + "<p class='small'>No alert fired in this window.</p>"
    rows = []
    for alert in b.alerts[:MAX_ALERTS]:
        colour = SEVERITY_COLOURS.get(alert.severity, "#616161")
        state = "" if alert.acknowledged_at is None else " (acknowledged)"
        rows.append(
            f"<tr><td class='nowrap'>{_e(_when(alert.fired_at))}</td>"
            f"<td class='sev' style='color:{colour}'>{_e(plain_line(alert.severity))}</td>"
            f"<td class='nowrap'>{_e(plain_line(alert.rule))}</td>"
            f"<td>{_e(plain_line(alert.message))}{_e(state)}</td></tr>"
        )
    more = (
        f"<p class='small'>And {count - MAX_ALERTS:,} earlier on the Alerts page.</p>"
        if count > MAX_ALERTS
        else ""
    )
    return (
        head + "<table><thead><tr><th>fired (UTC)</th><th>severity</th><th>rule</th>"
        f"<th>what</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"
    )


def _methods_html(b: Briefing) -> str:
    options = b.options
    sources = f"{b.now.mentions:,} mentions: " + ", ".join(f"{s} {n:,}" for s, n in b.by_source)
    if not b.by_source:
        sources = "no mentions"
    baseline = (
        f"the 28 whole UTC days before the disclosure's day ({b.baseline.describe()}); the "
        "disclosure's day counts as after"
        if b.baseline is not None
        else "none: no disclosure event is configured"
    )
    dashboard = (
        f' Dashboard: <a href="{_e(b.dashboard_url)}" rel="noopener noreferrer">'
        f"{_e(b.dashboard_url)}</a>."
        if b.dashboard_url
        else ""
    )
    paragraphs = [
        "<b>Methods.</b> All times UTC; numbers count whole UTC days. Mentions per day = "
        "mentions / days in the window. Mean sentiment = mean compound score (-1..+1). "
        "Negative: compound -0.05 or lower, or a 1-2 star review; positive: +0.05 or higher. "
        "Share negative = negative / all mentions. Net sentiment = (positive - negative) / "
        "(positive + negative) x 100. Engagement = votes + comments. Card deltas: window "
        "minus baseline (mentions per day: the ratio).",
        f"<b>Baseline:</b> {_e(baseline)}. <b>Intervals:</b> {options.confidence_level:.0%} "
        "percentile bootstrap of the difference over UTC hours (mentions come in bursts), "
        f"{options.n_resamples:,} resamples, seed {options.seed}; a change is clear when its "
        "interval leaves out zero. Cards: this window against the baseline. Since the "
        "disclosure: the event study's after-window (from the disclosure's hour) that best "
        "overlaps this window. Method: docs/impact.md.",
        f"<b>Scorer:</b> {_e(b.scorer_version)} (VADER with the breach lexicon). "
        f"<b>Sources in the window:</b> {_e(sources)}. <b>Window:</b> "
        f"{_e(b.window.describe())}. <b>Generated:</b> {_e(_when(b.generated_at))} UTC by "
        f"repmon.{dashboard}",
    ]
    return '<div class="methods">' + "".join(f"<p>{p}</p>" for p in paragraphs) + "</div>"


# -- the chart: an inline SVG -------------------------------------------------------------------

SVG_WIDTH, SVG_HEIGHT = 720.0, 206.0
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 44.0, 36.0, 27.0, 36.0


def _nice_ceiling(value: float) -> float:
    """Return 1, 2, 2.5 or 5 x 10^k at or above `value` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def timeline_svg(briefing: Briefing) -> str:
    """Return the timeline as an SVG element: stacked daily bars by label, the 7-day net
    sentiment line, the baseline and window shaded, events as lines, alerts as triangles."""
    b = briefing
    series = b.series
    width, height = SVG_WIDTH, SVG_HEIGHT
    left, right = PLOT_LEFT, width - PLOT_RIGHT
    top, bottom = PLOT_TOP, height - PLOT_BOTTOM
    days = len(series)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(width)} {_n(height)}" '
        f'role="img" aria-label="Daily mentions by label and 7-day net sentiment, '
        f'{_e(b.timeline.describe())}" font-size="9" fill="#37474f">'
    ]
    if days == 0 or int(series["mentions"].sum()) == 0:
        out.append(
            f'<text x="{_n(width / 2)}" y="{_n(height / 2)}" text-anchor="middle">'
            "No mentions in this period.</text></svg>"
        )
        return "".join(out)
    first = pd.Timestamp(series.index[0]).to_pydatetime().replace(tzinfo=UTC)
    slot = (right - left) / days

    def x_at(moment: datetime) -> float:
        return left + (utc(moment) - first) / timedelta(days=1) * slot

    def clamp_x(value: float) -> float:
        return min(max(value, left), right)

    peak = _nice_ceiling(float(series["mentions"].max()))

    def y_count(value: float) -> float:
        return bottom - value / peak * (bottom - top)

    def y_net(value: float) -> float:
        return bottom - (value + 100) / 200 * (bottom - top)

    # Shading: the baseline and the window, under everything.
    shades = [(b.baseline, BASELINE_FILL, "1", "baseline")] if b.baseline else []
    shades.append((b.window, WINDOW_FILL, "0.55", ""))
    for span, colour, opacity, name in shades:
        if span is None:
            continue
        x0, x1 = clamp_x(x_at(span.start)), clamp_x(x_at(span.end))
        if x1 <= x0:
            continue
        out.append(
            f'<rect x="{_n(x0)}" y="{_n(top)}" width="{_n(x1 - x0)}" height="{_n(bottom - top)}" '
            f'fill="{colour}" fill-opacity="{opacity}"/>'
        )
        if name and x1 - x0 > 40:
            out.append(
                f'<text x="{_n(x0 + 4)}" y="{_n(top + 10)}" font-size="8" fill="#607d8b">'
                f"{name}</text>"
            )
    # Grid and the left axis (mentions per day).
    for i in range(5):
        value = peak * i / 4
        y = y_count(value)
        out.append(
            f'<line x1="{_n(left)}" x2="{_n(right)}" y1="{_n(y)}" y2="{_n(y)}" '
            'stroke="#cfd8dc" stroke-width="0.6"/>'
        )
        out.append(
            f'<text x="{_n(left - 4)}" y="{_n(y + 3)}" text-anchor="end">{value:,.0f}</text>'
        )
    out.append(
        f'<text transform="translate(10 {_n((top + bottom) / 2)}) rotate(-90)" '
        'text-anchor="middle" font-size="8">mentions per day</text>'
    )
    # Right axis (net sentiment, -100..+100).
    for value in (-100, -50, 0, 50, 100):
        out.append(
            f'<text x="{_n(right + 4)}" y="{_n(y_net(value) + 3)}" fill="{NET_COLOUR}">'
            f"{value:+d}</text>"
            if value
            else f'<text x="{_n(right + 4)}" y="{_n(y_net(0) + 3)}" fill="{NET_COLOUR}">0</text>'
        )
    out.append(
        f'<line x1="{_n(left)}" x2="{_n(right)}" y1="{_n(y_net(0))}" y2="{_n(y_net(0))}" '
        f'stroke="{NET_COLOUR}" stroke-width="0.5" stroke-dasharray="2 3"/>'
    )
    # Stacked bars, negative at the bottom as on the dashboard.
    bar = max(slot * 0.78, 0.8)
    for i, day in enumerate(series.index):
        base = 0.0
        x = left + i * slot + (slot - bar) / 2
        for label in LABELS:
            count = int(series[label].iloc[i])
            if not count:
                continue
            y0, y1 = y_count(base), y_count(base + count)
            out.append(
                f'<rect x="{_n(x)}" y="{_n(y1)}" width="{_n(bar)}" height="{_n(y0 - y1)}" '
                f'fill="{LABEL_COLOURS[label]}"><title>{pd.Timestamp(day):%Y-%m-%d}: {count:,} '
                f"{label}</title></rect>"
            )
            base += count
    # Net sentiment (7-day), broken where undefined; each point at its day's centre.
    runs: list[list[str]] = [[]]
    for i, value in enumerate(series["rolling_net_sentiment"]):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            runs.append([])
            continue
        runs[-1].append(f"{_n(left + (i + 0.5) * slot)},{_n(y_net(float(value)))}")
    for run in runs:
        if len(run) > 1:
            out.append(
                f'<polyline points="{" ".join(run)}" fill="none" stroke="{NET_COLOUR}" '
                'stroke-width="2" stroke-linejoin="round"/>'
            )
    # Events: a line each, numbered as in the legend under the chart.
    shown = [e for e in b.events if b.timeline.start <= e.at < b.timeline.end][:MAX_EVENTS]
    last_x = {0: -math.inf, 1: -math.inf}  # the last badge in each of two rows
    for number, event in enumerate(shown, start=1):
        x = x_at(event.at)
        dash = "" if event.kind == "disclosure" else ' stroke-dasharray="3 2"'
        row = 0 if x - last_x[0] >= 12 or x - last_x[1] < 12 else 1
        last_x[row] = x
        y = top - 7 - 12 * row
        out.append(
            f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{_n(y)}" y2="{_n(bottom)}" '
            f'stroke="{EVENT_COLOUR}" stroke-width="1"{dash}/>'
        )
        out.append(
            f'<circle cx="{_n(x)}" cy="{_n(y)}" r="5.5" fill="{EVENT_COLOUR}"/>'
            f'<text x="{_n(x)}" y="{_n(y + 3)}" text-anchor="middle" font-size="7.5" '
            f'fill="#ffffff">{number}<title>{_e(_when(event.at))} UTC: {_e(event.label)}</title>'
            "</text>"
        )
    # Alerts fired in the window: a triangle each along the top of the plot.
    for alert in b.alerts:
        x = x_at(alert.fired_at)
        if not left <= x <= right:
            continue
        colour = SEVERITY_COLOURS.get(alert.severity, "#616161")
        out.append(
            f'<path d="M{_n(x - 3.5)},{_n(top + 1)} L{_n(x + 3.5)},{_n(top + 1)} '
            f'L{_n(x)},{_n(top + 7)} Z" fill="{colour}"><title>{_e(_when(alert.fired_at))} '
            f"UTC: {_e(plain_line(alert.rule))}</title></path>"
        )
    # Date ticks: about eight, on whole days.
    step = max(1, math.ceil(days / 8))
    if days > 14:
        step = max(7, 7 * round(step / 7))
    for i in range(0, days, step):
        day = pd.Timestamp(series.index[i])
        x = left + (i + 0.5) * slot
        out.append(
            f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{_n(bottom)}" y2="{_n(bottom + 3)}" '
            'stroke="#90a4ae"/>'
            f'<text x="{_n(x)}" y="{_n(bottom + 12)}" text-anchor="middle">'
            f"{day:%b} {day.day}</text>"
        )
    out.append(
        f'<line x1="{_n(left)}" x2="{_n(right)}" y1="{_n(bottom)}" y2="{_n(bottom)}" '
        'stroke="#90a4ae"/>'
    )
    # Legend along the bottom.
    x = left
    y = height - 6
    for label in LABELS:
        out.append(
            f'<rect x="{_n(x)}" y="{_n(y - 7)}" width="8" height="8" '
            f'fill="{LABEL_COLOURS[label]}"/>'
            f'<text x="{_n(x + 11)}" y="{_n(y)}">{label}</text>'
        )
        x += 62
    out.append(
        f'<line x1="{_n(x)}" x2="{_n(x + 14)}" y1="{_n(y - 3)}" y2="{_n(y - 3)}" '
        f'stroke="{NET_COLOUR}" stroke-width="2"/>'
        f'<text x="{_n(x + 18)}" y="{_n(y)}">net sentiment, 7 days (right axis)</text>'
    )
    out.append("</svg>")
    return "".join(out)


# -- the PDF ------------------------------------------------------------------------------------


def find_chromium(chromium: str | Path | None = None) -> Path:
    """Return the Chromium to print with: `chromium`, else $REPMON_CHROMIUM, else
    /usr/bin/chromium, else one on the PATH; BriefingError saying how to install one."""
    named = chromium or os.environ.get(CHROMIUM_ENV)
    if named:
        path = Path(named)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise BriefingError(
            f"Cannot write the PDF: there is no Chromium at {path}. Install it "
            f"({INSTALL_CHROMIUM}) or give the right path; the HTML briefing needs nothing."
        )
    if DEFAULT_CHROMIUM.is_file():
        return DEFAULT_CHROMIUM
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise BriefingError(
        f"Cannot write the PDF: Chromium is not installed ({INSTALL_CHROMIUM}, or set "
        f"${CHROMIUM_ENV} to a Chromium or Chrome binary). The HTML briefing needs nothing."
    )


def _sync_playwright() -> Callable[[], Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BriefingError(
            f"Cannot write the PDF: Playwright is not installed ({INSTALL_PLAYWRIGHT}). It "
            "drives the system Chromium; no `playwright install` download is needed."
        ) from None
    return sync_playwright


def render_pdf(
    html: str,
    path: str | Path,
    *,
    chromium: str | Path | None = None,
    paper: str = "A4",
    timeout: float = 60.0,
) -> Path:
    """Print `html` to a PDF at `path` with Chromium (through Playwright); return the path.

    One page: a page that would run longer is scaled down to fit (not below MIN_SCALE).
    The browser loads nothing: every request the page might make is refused. The file
    appears whole or not at all. BriefingError names what to install when Chromium or
    Playwright is missing, and the browser's reason when printing fails.
    """
    if paper not in PAPERS:
        raise ValueError(f"paper must be one of {', '.join(PAPERS)}, not {paper!r}")
    executable = find_chromium(chromium)
    sync_playwright = _sync_playwright()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written under a name of its own, then renamed: a reader never sees half a file. The
    # browser creates it, so it gets the usual permissions (the umask), unlike mkstemp's 0600.
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        # Playwright's sync API refuses to run under a running asyncio loop (as in some
        # servers); a thread of its own never has one.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(
                _print_pdf, sync_playwright, html, temporary, executable, paper, timeout
            ).result()
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def _print_pdf(
    sync_playwright: Callable[[], Any],
    html_text: str,
    path: Path,
    executable: Path,
    paper: str,
    timeout: float,
) -> None:
    width_mm, height_mm = PAPERS[paper]
    width = (width_mm - 2 * MARGIN_MM) * PX_PER_MM
    height = (height_mm - 2 * MARGIN_MM) * PX_PER_MM
    margin = f"{MARGIN_MM:g}mm"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(executable),
                headless=True,
                args=list(CHROMIUM_ARGS),
                timeout=timeout * 1000,
            )
            try:
                page = browser.new_page(
                    viewport={"width": math.floor(width), "height": math.floor(height)},
                    java_script_enabled=False,
                )
                page.route("**/*", lambda route: route.abort())
                page.emulate_media(media="print")
                page.set_content(html_text, wait_until="load", timeout=timeout * 1000)
                tall = float(page.evaluate("document.documentElement.scrollHeight"))
                scale = 1.0 if tall <= height else max(MIN_SCALE, height / tall * 0.99)
                page.pdf(
                    path=str(path),
                    format=paper,
                    print_background=True,
                    margin={"top": margin, "bottom": margin, "left": margin, "right": margin},
                    scale=scale,
                )
            finally:
                browser.close()
    except BriefingError:
        raise
    except Exception as exc:  # Playwright's errors: a browser that will not start or print
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BriefingError(
            f"Chromium at {executable} could not print the briefing: {reason}"
        ) from exc


# -- delivery -----------------------------------------------------------------------------------

_MARKUP_START = re.compile(r"([\\`*_\[\]<>])")


def _own(text: str) -> str:
    """Return text the monitor wrote with Markdown's markup starts escaped."""
    return _MARKUP_START.sub(r"\\\1", text)


def summary_lines(briefing: Briefing) -> list[str]:
    """Return the headline numbers as short lines: the cards, the alerts, the disclosure."""
    lines = []
    for card in cards(briefing):
        line = f"{card.name}: {card.value}"
        if card.delta is not None:
            line += f" ({card.delta}" + ("" if "baseline" in card.delta else " vs baseline")
            line += f" {card.baseline})" if card.baseline else ")"
        lines.append(line)
    waiting = sum(a.acknowledged_at is None for a in briefing.alerts)
    lines.append(
        f"Alerts in the window: {len(briefing.alerts):,}"
        + (f" ({waiting:,} not yet acknowledged)" if briefing.alerts else "")
    )
    study = briefing.study_window
    if study is not None:
        share = next(m for m in study["overall"]["metrics"] if m["metric"] == "share_negative")
        lines.append(f"Since the disclosure (first {study['window']['days']} days): ")
        lines[-1] += share["sentence"]
    return lines


def briefing_message(briefing: Briefing, *, attached: bool = True) -> Message:
    """Return the notification that carries the briefing: a title and the headline numbers.

    No mention text goes into it (untrusted text stays in the escaped page). Send it with
    `channels.send(message, urls, attach=[pdf_path])`.
    """
    from monitor.alerts.channels import Message

    b = briefing
    brand = plain_line(b.brand)
    share = "n/a" if b.now.share_negative is None else f"{b.now.share_negative:.0%}"
    title = f"{brand} briefing, {b.window.describe()}: {share} negative"
    card = next(c for c in cards(b) if c.key == "share_negative")
    if card.delta:
        title += f" ({card.delta} vs baseline)"
    intro = (
        f"Leadership briefing for {brand}, {b.window.describe()} ({b.window_label}), "
        f"generated {_when(b.generated_at)} UTC."
    )
    lines = summary_lines(b)
    tail = ["The one-page briefing is attached." if attached else ""]
    if b.stale and b.data_end is not None:
        tail.insert(0, f"Warning: the newest mention is from {_when(b.data_end)} UTC.")
    if b.dashboard_url:
        tail.append(f"Dashboard: {b.dashboard_url}")
    text = [intro, "", *(f"- {line}" for line in lines), "", *(t for t in tail if t)]
    markdown = [
        _own(intro),
        "",
        *(f"- {_own(line)}" for line in lines),
        "",
        *(_own(t) if not t.startswith("Dashboard: ") else t for t in tail if t),
    ]
    return Message(title=title, body_text="\n".join(text), body_markdown="\n".join(markdown))


def suggested_filename(briefing: Briefing, suffix: str = "pdf") -> str:
    """Return a file name for the briefing: "northwind-bank-briefing-2024-06-12.pdf"."""
    slug = re.sub(r"[^a-z0-9]+", "-", plain_line(briefing.brand).lower()).strip("-") or "brand"
    return f"{slug}-briefing-{briefing.window.last_day:%Y-%m-%d}.{suffix.lstrip('.')}"

"""Exports that leave the tool: the rows the dashboard shows, safe to open, with provenance.

Four kinds of export, each made by one table function (store data in, a table out):

- `mentions_table`: the filtered mentions, streamed from the store in chunks;
- `daily_table`: the daily series, overall and per source (`analysis.daily_series`);
- `event_study_table`: the event study, one row per (event, window, scope, metric), plus
  topic and recovery rows (`impact.run_event_study(...).to_dict()`);
- `alerts_table`: the alert history, evidence flattened to its count and top mention.

and two writers, `write_csv` and `write_xlsx`, which neutralise every cell a spreadsheet
would evaluate (OWASP, "CSV Injection"), optionally pseudonymise author handles, and return
the export's manifest: what was exported, from where, by which scorer and config, when, how
many rows, and the SHA-256 of the data. `export_to_path` (the CLI) writes the manifest beside
a CSV as FILE.manifest.json, or as the "About" sheet of an XLSX; `export_bytes` (the
dashboard) returns the same bytes for a download. docs/exports.md describes every column.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import hmac
import io
import json
import math
import os
import re
import secrets
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

import numpy as np
import pandas as pd

from monitor.analysis import ROLLING_DAYS, Window, daily_series, start_of_day
from monitor.config import redact_secrets
from monitor.models import LABELS, Alert, MentionQuery, utcnow
from monitor.store import MENTION_COLUMNS, Store, redact_url

if TYPE_CHECKING:
    from monitor.config import Settings

# A spreadsheet evaluates a cell that starts with one of these (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

EXPORT_KINDS = ("mentions", "daily", "event-study", "alerts")
FORMATS = ("csv", "xlsx")
# What the dashboard offers: the two formats, and a CSV zipped with its manifest.
DOWNLOAD_FORMATS = ("csv", "zip", "xlsx")
DOWNLOAD_LABELS = {"csv": "CSV", "zip": "CSV + manifest", "xlsx": "Excel"}
MIME_TYPES = {
    "csv": "text/csv",
    "zip": "application/zip",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
ABOUT_SHEET = "About"
# Excel's limits: rows per sheet (one is the header) and characters per cell.
EXCEL_MAX_ROWS = 1_048_575
EXCEL_MAX_CELL = 32_767
TRUNCATED = "…[truncated]"
# XML 1.0 cannot hold these control characters, so an XLSX cell cannot either.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"
# Floats are written with at most this many significant digits, so that a value read back
# from an XLSX (stored with 16 digits) is the same number as in the CSV.
FLOAT_DIGITS = 15


class ExportError(ValueError):
    """An export that cannot be written as asked (an unknown format, too many rows for Excel)."""


# -- cells --------------------------------------------------------------------------------------


def neutralise_cell(value: object) -> object:
    """Return `value` made inert for spreadsheets: text that could start a formula gets a leading '.

    Numbers are left alone: a negative compound score is data, not a formula.
    """
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def export_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return mentions as exported: UTC ISO 8601 timestamps and every text cell neutralised."""
    out = frame.copy()
    if "published_at" in out:
        out["published_at"] = out["published_at"].map(
            lambda ts: ts.strftime(TIMESTAMP) if pd.notna(ts) else ""
        )
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise_cell)
    return out


def iso(value: datetime | None) -> str | None:
    """Return a time as ISO 8601 UTC with a Z (naive times are taken as UTC), or None."""
    if value is None:
        return None
    return (value.astimezone(UTC) if value.tzinfo else value).strftime(TIMESTAMP)


def _number(value: float) -> int | float | None:
    """Return a float as written: None if not finite, an int if whole, else 15 digits at most."""
    if not math.isfinite(value):
        return None
    rounded = float(f"{value:.{FLOAT_DIGITS}g}")
    if rounded.is_integer() and abs(rounded) < 1e15:
        return int(rounded)
    return rounded


def _plain(value: object) -> object:
    """Return one cell as a plain Python value: None, str, bool, int or float."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _number(float(value))
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _column(series: pd.Series) -> list[object]:
    """Return a column's cells as plain values (timestamps as UTC ISO 8601)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series):
        stamps = pd.to_datetime(series, utc=True)
        text = stamps.dt.strftime(TIMESTAMP)
        return [None if pd.isna(v) else str(v) for v in text.astype(object)]
    if pd.api.types.is_float_dtype(series):
        return [None if pd.isna(v) else _number(float(v)) for v in series.astype(object)]
    if pd.api.types.is_integer_dtype(series):
        return [None if v is pd.NA else int(v) for v in series.astype(object)]
    return [v if type(v) is str else _plain(v) for v in series.astype(object)]


def _xlsx_text(text: str) -> str:
    """Return text an XLSX cell can hold and give back unchanged.

    XML turns a carriage return into a line feed when the file is read, so line breaks are
    written as Excel writes them (LF); control characters XML cannot hold become U+FFFD; text
    longer than Excel's cell limit is cut, saying so.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _XML_ILLEGAL.sub("\ufffd", text)
    if len(text) > EXCEL_MAX_CELL:
        text = text[: EXCEL_MAX_CELL - len(TRUNCATED)] + TRUNCATED
    return text


# -- author redaction ---------------------------------------------------------------------------

# "@name", "@name@instance.social" (Mastodon) and "u/name" or "/u/name" (Reddit) in free text.
_TEXT_HANDLE = re.compile(
    r"(?<![\w@/.])(?P<prefix>@|/?u/)"
    r"(?P<name>[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?(?:@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)?)"
)
# A handle as a path segment of a link: /@name (Mastodon), /u/name and /user/name (Reddit).
_URL_HANDLE = re.compile(r"(?<=/)(?P<prefix>@|u/|user/)(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]*)")


def _handle_key(handle: str) -> str:
    """Return the identity of a handle: "@Ann", "ann" and "u/ann" are the same person."""
    name = handle.strip().casefold()
    for prefix in ("/u/", "u/", "@"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return name


class AuthorRedactor:
    """Replace author handles with pseudonyms that hold within one export and nowhere else.

    A handle becomes "author-" and ten hex digits of HMAC-SHA256 under a key drawn at random
    for each export and never written anywhere: the same person is the same pseudonym
    throughout one file (who posted forty times is still visible), but pseudonyms cannot be
    reversed by hashing guessed handles, nor linked across two exports. The brand's own
    handles (its @aliases and one-word names) are kept: they are not personal data.
    """

    def __init__(self, keep: Iterable[str] = (), *, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)
        self._keep = {_handle_key(h) for h in keep if h.strip()}
        self._known: dict[str, str] = {}

    def pseudonym(self, handle: str) -> str:
        """Return the pseudonym of `handle` in this export."""
        name = _handle_key(handle)
        found = self._known.get(name)
        if found is None:
            digest = hmac.new(self._key, name.encode("utf-8"), hashlib.sha256).hexdigest()
            found = self._known[name] = f"author-{digest[:10]}"
        return found

    def _replace(self, match: re.Match[str]) -> str:
        if _handle_key(match["name"]) in self._keep:
            return match.group(0)
        return match["prefix"] + self.pseudonym(match["name"])

    def author(self, value: str) -> str:
        """Return an author field with the handle replaced (empty stays empty)."""
        if not value.strip() or _handle_key(value) in self._keep:
            return value
        return self.pseudonym(value)

    def text(self, value: str) -> str:
        """Return free text with every @handle, u/handle and profile link's handle replaced."""
        return _URL_HANDLE.sub(self._replace, _TEXT_HANDLE.sub(self._replace, value))

    def url(self, value: str) -> str:
        """Return a link with a handle in its path replaced (such a link no longer opens)."""
        return _URL_HANDLE.sub(self._replace, value)


def brand_handles(settings: Settings) -> tuple[str, ...]:
    """Return the handles redaction keeps: the brand's @aliases and its one-word names."""
    return tuple(t for t in settings.brand.terms if t.startswith("@") or " " not in t.strip())


# -- provenance ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """How the file is written: UTF-8 with a byte-order mark for Excel, and author redaction."""

    bom: bool = False
    redact_authors: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the options as written in the manifest."""
        return {
            "bom": self.bom,
            "redact_authors": self.redact_authors,
            "authors": (
                "pseudonymised: author-<HMAC-SHA256 under a random per-export key, not kept>"
                if self.redact_authors
                else "as stored"
            ),
        }


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where an export comes from: the brand, the config's hash, the database, the scorer."""

    brand: str
    config_sha256: str
    database: str
    scorer: str
    keep_handles: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Provenance:
        """Return the provenance of exports made with `settings` (no secret ever leaves)."""
        from monitor.scoring import default_scorer

        return cls(
            brand=settings.brand.name,
            config_sha256=config_sha256(settings),
            database=redact_secrets(redact_url(settings.database_url), settings.secrets),
            scorer=default_scorer().version,
            keep_handles=brand_handles(settings),
        )


def effective_config(settings: Settings) -> dict[str, Any]:
    """Return the settings that shape the data, as plain JSON, without any secret.

    The secrets table is left out entirely, the database URL has its password masked, and
    any secret value that still appears anywhere is replaced by ***.
    """
    config = {
        "brand": {
            "name": settings.brand.name,
            "aliases": list(settings.brand.aliases),
            "exclude": list(settings.brand.exclude),
        },
        "events": [{"at": iso(e.at), "label": e.label, "kind": e.kind} for e in settings.events],
        "database": redact_url(settings.database_url),
        "demo": settings.is_demo,
        "dashboard": {
            "url": settings.dashboard_url,
            "default_window_days": settings.default_window_days,
        },
        "sources": {name: dict(table) for name, table in sorted(settings.sources.items())},
        "imports": {name: dict(table) for name, table in sorted(settings.imports.items())},
        "collect": {"user_agent": settings.user_agent, "timeout": settings.http_timeout},
        "alerts": {
            "rules": [asdict(rule) for rule in settings.alert_rules],
            "check_after_collect": settings.check_alerts_after_collect,
        },
    }
    text = redact_secrets(json.dumps(config, sort_keys=True, default=str), settings.secrets)
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def config_sha256(settings: Settings) -> str:
    """Return the SHA-256 of the effective config (`effective_config`, canonical JSON)."""
    canonical = json.dumps(
        effective_config(settings), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def generator() -> str:
    """Return the program and version that wrote an export."""
    try:
        return f"repmon {package_version('repmon')}"
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "repmon"


# -- tables -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportTable:
    """The rows of one export, what they cover, and which columns hold authors, text, links.

    `chunks` returns the rows as DataFrames with `columns`, a chunk at a time, each time it
    is called: mentions stream from the store, never all in memory at once.
    """

    kind: str
    columns: tuple[str, ...]
    chunks: Callable[[], Iterable[pd.DataFrame]]
    query: MentionQuery = field(default_factory=MentionQuery)
    sources: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    author_columns: tuple[str, ...] = ()
    text_columns: tuple[str, ...] = ()
    url_columns: tuple[str, ...] = ()

    def frame(self) -> pd.DataFrame:
        """Return every row in one DataFrame (for tables small enough: all but mentions)."""
        parts = [chunk for chunk in self.chunks() if not chunk.empty]
        if not parts:
            return pd.DataFrame(columns=list(self.columns))
        return pd.concat(parts, ignore_index=True)[list(self.columns)]


def _sources(query: MentionQuery, store: Store | None) -> tuple[str, ...]:
    if query.sources:
        return tuple(sorted(query.sources))
    return tuple(store.sources()) if store is not None else ()


def mentions_table(store: Store, query: MentionQuery, *, chunk: int = 5000) -> ExportTable:
    """Return the mentions matching `query`, in time order, streamed `chunk` rows at a time."""
    return ExportTable(
        kind="mentions",
        columns=MENTION_COLUMNS,
        chunks=lambda: store.iter_mentions(query, chunk=chunk),
        query=query,
        sources=_sources(query, store),
        author_columns=("author",),
        text_columns=("title", "text"),
        url_columns=("url",),
    )


DAILY_COLUMNS = (
    "day",
    "source",
    "mentions",
    *LABELS,
    "share_negative",
    "mean_compound",
    "net_sentiment",
    "rolling_net_sentiment",
    "ratings",
    "mean_rating",
    "rolling_mean_rating",
)
ALL_SOURCES = "all"


def daily_window(
    bounds: tuple[datetime, datetime] | None, since: datetime | None, until: datetime | None
) -> Window | None:
    """Return whole UTC days from `since` (else the first day of data) to `until` (exclusive;
    else the end of the last day of data); None when there is no data and no bound."""
    if since is None and bounds is not None:
        since = bounds[0]
    if until is None and bounds is not None:
        until = start_of_day(bounds[1]) + timedelta(days=1)
    if since is None or until is None:
        return None
    start = start_of_day(since)
    end = until if until == start_of_day(until) else start_of_day(until) + timedelta(days=1)
    return Window(start, max(end, start + timedelta(days=1)))


def daily_frame(daily: pd.DataFrame, window: Window | None) -> pd.DataFrame:
    """Return the daily series of `Store.daily_counts` rows: overall ("all"), then per source.

    Every number is `analysis.daily_series` of the same rows and window (per source: of that
    source's rows), plus share_negative = negative / mentions. Pure.
    """
    if window is None:
        return pd.DataFrame(columns=list(DAILY_COLUMNS))
    scopes = [(ALL_SOURCES, daily)]
    if not daily.empty:
        scopes += [(s, daily[daily["source"] == s]) for s in sorted(daily["source"].unique())]
    parts = []
    for scope, rows in scopes:
        series = daily_series(rows, window)
        series["share_negative"] = series["negative"] / series["mentions"].where(
            series["mentions"] > 0
        )
        for column in ("ratings", "mean_rating", "rolling_mean_rating"):
            if column not in series:
                series[column] = 0 if column == "ratings" else np.nan
        series = series.reset_index()
        series["day"] = series["day"].dt.strftime("%Y-%m-%d")
        series["source"] = scope
        parts.append(series[list(DAILY_COLUMNS)])
    return pd.concat(parts, ignore_index=True)


def daily_table(daily: pd.DataFrame, window: Window | None, query: MentionQuery) -> ExportTable:
    """Return the daily series export of `daily` (`Store.daily_counts(query)`) over `window`."""
    frame = daily_frame(daily, window)
    covered = tuple(sorted(set(daily["source"]))) if not daily.empty else ()
    if window is not None:
        query = replace(query, since=window.start, until=window.end)
    return ExportTable(
        kind="daily",
        columns=DAILY_COLUMNS,
        chunks=lambda: [frame],
        query=query,
        sources=tuple(sorted(query.sources or covered)),
        details={"days": int((frame["source"] == ALL_SOURCES).sum()), "rolling_days": ROLLING_DAYS},
    )


EVENT_STUDY_COLUMNS = (
    "row_type",
    "event",
    "event_kind",
    "event_at",
    "window",
    "window_days",
    "before_start",
    "before_end",
    "after_start",
    "after_end",
    "scope",
    "metric",
    "name",
    "before",
    "after",
    "difference",
    "ci_low",
    "ci_high",
    "p_value",
    "confidence_level",
    "clear_change",
    "mentions_before",
    "mentions_after",
    "hours_before",
    "hours_after",
    "sentence",
    "note",
)


def event_study_frame(studies: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Return event studies (`EventStudy.to_dict()`) as rows. Pure.

    One "metric" row per (event, after-window, scope, metric), scope "all" or a source; one
    "topic" row per (event, after-window, topic) with shares before and after (difference =
    change); one "recovery" row per event with the recovery statement. Numbers are exactly
    those of the dictionary.
    """
    rows: list[dict[str, Any]] = []
    for study in studies:
        event, before = study["event"], study["before"]
        level = study["options"]["confidence_level"]
        common = {"event": event["label"], "event_kind": event["kind"], "event_at": event["at"]}
        for result in study["windows"]:
            window = result["window"]
            where = common | {
                "window": window["label"],
                "window_days": window["days"],
                "before_start": before["start"],
                "before_end": before["end"],
                "after_start": window["start"],
                "after_end": window["end"],
            }
            notes = (before["note"], window["note"])
            for group in (result["overall"], *result["by_source"]):
                for entry in group["metrics"]:
                    rows.append(
                        where
                        | {
                            "row_type": "metric",
                            "scope": group["source"],
                            "metric": entry["metric"],
                            "name": entry["name"],
                            "before": entry["before"],
                            "after": entry["after"],
                            "difference": entry["difference"],
                            "ci_low": entry["ci_low"],
                            "ci_high": entry["ci_high"],
                            "p_value": entry["p_value"],
                            "confidence_level": level,
                            "clear_change": entry["clear_change"],
                            "mentions_before": group["mentions_before"],
                            "mentions_after": group["mentions_after"],
                            "hours_before": group["hours_before"],
                            "hours_after": group["hours_after"],
                            "sentence": entry["sentence"],
                            "note": "; ".join(n for n in (*notes, entry["reason"]) if n),
                        }
                    )
            for topic in result["topics"]:
                rows.append(
                    where
                    | {
                        "row_type": "topic",
                        "scope": ALL_SOURCES,
                        "metric": topic["topic"],
                        "name": topic["name"],
                        "before": topic["before"],
                        "after": topic["after"],
                        "difference": topic["change"],
                        "mentions_before": topic["mentions_before"],
                        "mentions_after": topic["mentions_after"],
                        "note": "share of the window's mentions with this topic",
                    }
                )
        recovery = study["recovery"]
        rows.append(
            common
            | {
                "row_type": "recovery",
                "before_start": before["start"],
                "before_end": before["end"],
                "scope": ALL_SOURCES,
                "metric": "rolling_net_sentiment",
                "name": recovery["status"],
                "ci_low": recovery["normal_low"],
                "ci_high": recovery["normal_high"],
                "after": recovery["last_value"],
                "sentence": recovery["statement"],
                "note": "ci_low and ci_high: the baseline's normal range; after: the last day's "
                "7-day net sentiment",
            }
        )
    frame = pd.DataFrame(rows, columns=list(EVENT_STUDY_COLUMNS))
    return frame.astype(object).where(frame.notna(), None)


def event_study_table(
    studies: Sequence[Mapping[str, Any]], *, sources: tuple[str, ...] = ()
) -> ExportTable:
    """Return the event-study export of `studies` (`EventStudy.to_dict()` each).

    `sources` are the sources the study was limited to (empty: all).
    """
    frame = event_study_frame(studies)
    spans = [(s["before"]["start"], w["window"]["end"]) for s in studies for w in s["windows"]]
    since = min((datetime.fromisoformat(a.replace("Z", "+00:00")) for a, _ in spans), default=None)
    until = max((datetime.fromisoformat(b.replace("Z", "+00:00")) for _, b in spans), default=None)
    covered = sorted({src for s in studies for src in s["sources"]})
    return ExportTable(
        kind="event-study",
        columns=EVENT_STUDY_COLUMNS,
        chunks=lambda: [frame],
        query=MentionQuery(since=since, until=until, sources=sources),
        sources=tuple(sorted(sources)) if sources else tuple(covered),
        details={
            "events": [s["event"] for s in studies],
            "options": studies[0]["options"] if studies else {},
        },
    )


ALERT_COLUMNS = (
    "id",
    "fired_at",
    "rule",
    "type",
    "severity",
    "value",
    "threshold",
    "message",
    "acknowledged_at",
    "ack_note",
    "evidence_count",
    "top_source",
    "top_published_at",
    "top_engagement",
    "top_text",
    "top_url",
)
SNIPPET = 280


def alerts_frame(alerts: Iterable[Alert]) -> pd.DataFrame:
    """Return alerts as rows, oldest first; evidence as its count and its top mention. Pure."""
    rows = []
    for alert in sorted(alerts, key=lambda a: (a.fired_at, a.id or 0)):
        evidence = [item for item in alert.evidence if isinstance(item, Mapping)]
        top: Mapping[str, Any] = evidence[0] if evidence else {}
        said = " ".join(f"{top.get('title', '')} {top.get('text', '')}".split())
        rows.append(
            {
                "id": alert.id,
                "fired_at": iso(alert.fired_at),
                "rule": alert.rule,
                "type": alert.kind,
                "severity": alert.severity,
                "value": alert.value,
                "threshold": alert.threshold,
                "message": alert.message,
                "acknowledged_at": iso(alert.acknowledged_at),
                "ack_note": alert.ack_note,
                "evidence_count": len(evidence),
                "top_source": top.get("source"),
                "top_published_at": top.get("published_at"),
                "top_engagement": top.get("engagement"),
                "top_text": said[:SNIPPET] if evidence else None,
                "top_url": top.get("url"),
            }
        )
    frame = pd.DataFrame(rows, columns=list(ALERT_COLUMNS))
    return frame.astype(object).where(frame.notna(), None)


def alerts_table(
    alerts: Iterable[Alert],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    sources: tuple[str, ...] = (),
    open_only: bool = False,
) -> ExportTable:
    """Return the alert-history export of `alerts` (fired between `since` and `until`)."""
    frame = alerts_frame(alerts)
    return ExportTable(
        kind="alerts",
        columns=ALERT_COLUMNS,
        chunks=lambda: [frame],
        query=MentionQuery(since=since, until=until),
        sources=sources,
        details={"open_only": open_only, "order": "oldest first"},
        text_columns=("message", "top_text"),
        url_columns=("top_url",),
    )


# -- writing ------------------------------------------------------------------------------------


def _rows(
    table: ExportTable, redactor: AuthorRedactor | None, *, xlsx: bool
) -> Iterator[list[tuple[object, ...]]]:
    """Yield the table's rows as written, a chunk at a time: plain values, text made safe."""
    for chunk in table.chunks():
        if chunk.empty:
            continue
        columns = []
        for name in table.columns:
            values = _column(chunk[name])
            if redactor is not None:
                fix: Callable[[str], str] | None = (
                    redactor.author
                    if name in table.author_columns
                    else redactor.text
                    if name in table.text_columns
                    else redactor.url
                    if name in table.url_columns
                    else None
                )
                if fix is not None:
                    values = [fix(v) if isinstance(v, str) else v for v in values]
            values = [
                "'" + v if type(v) is str and v.startswith(FORMULA_TRIGGERS) else v for v in values
            ]
            if xlsx:
                values = [(_xlsx_text(v) or None) if isinstance(v, str) else v for v in values]
            columns.append(values)
        yield list(zip(*columns, strict=True))


class _CsvEncoder:
    """Serialise rows the way every CSV export is written, as UTF-8 bytes.

    RFC 4180 with CRLF line ends; the header quoted only where needed; in data rows every
    text cell quoted (so a spreadsheet that splits on ";" or tabs cannot start a new cell
    inside it) and numbers bare; an empty cell is "".
    """

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._header = csv.writer(self._buffer, lineterminator="\r\n")
        self._rows = csv.writer(self._buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")

    def _take(self) -> bytes:
        data = self._buffer.getvalue().encode("utf-8")
        self._buffer.seek(0)
        self._buffer.truncate()
        return data

    def header(self, columns: Sequence[object]) -> bytes:
        self._header.writerow(columns)
        return self._take()

    def rows(self, rows: Iterable[Sequence[object]]) -> bytes:
        self._rows.writerows(rows)
        return self._take()


def _manifest(
    table: ExportTable,
    provenance: Provenance,
    options: ExportOptions,
    *,
    fmt: str,
    rows: int,
    sha256: str,
    generated_at: datetime | None,
) -> dict[str, Any]:
    query = table.query
    checksum_of = (
        "the bytes of the CSV file this manifest sits beside"
        if fmt == "csv"
        else f"the '{table.kind}' sheet's cells written as CSV (UTF-8, no BOM): the bytes of "
        "the same export as a CSV; see docs/exports.md"
    )
    manifest: dict[str, Any] = {
        "export": table.kind,
        "format": fmt,
        "brand": provenance.brand,
        "query": query.describe(),
        "filters": {
            "since": iso(query.since),
            "until": iso(query.until),
            "sources": list(query.sources),
            "labels": list(query.labels),
            "topics": list(query.topics),
            "search": query.search,
        },
        "window": {"since": iso(query.since), "until": iso(query.until)},
        "sources": list(table.sources),
        "scorer": provenance.scorer,
        "config_sha256": provenance.config_sha256,
        "database": provenance.database,
        "generated_at": iso(generated_at or utcnow()),
        "generator": generator(),
        "rows": rows,
        "columns": list(table.columns),
        "sha256": sha256,
        "checksum_of": checksum_of,
        "encoding": "utf-8-sig" if options.bom and fmt == "csv" else "utf-8",
        "options": options.to_dict(),
    }
    if table.details:
        manifest["details"] = dict(table.details)
    return manifest


def _redactor(provenance: Provenance, options: ExportOptions) -> AuthorRedactor | None:
    return AuthorRedactor(provenance.keep_handles) if options.redact_authors else None


def write_csv(
    table: ExportTable,
    sink: IO[bytes] | _TextSink,
    provenance: Provenance,
    options: ExportOptions = ExportOptions(),
    *,
    generated_at: datetime | None = None,
    redactor: AuthorRedactor | None = None,
) -> dict[str, Any]:
    """Write `table` as CSV to the binary `sink`, a chunk at a time; return its manifest.

    The manifest's sha256 is that of every byte written, the BOM included.
    """
    redactor = redactor or _redactor(provenance, options)
    digest = hashlib.sha256()

    def emit(data: bytes) -> None:
        digest.update(data)
        sink.write(data)

    encoder = _CsvEncoder()
    if options.bom:
        emit(codecs.BOM_UTF8)
    emit(encoder.header(table.columns))
    rows = 0
    for block in _rows(table, redactor, xlsx=False):
        emit(encoder.rows(block))
        rows += len(block)
    return _manifest(
        table,
        provenance,
        options,
        fmt="csv",
        rows=rows,
        sha256=digest.hexdigest(),
        generated_at=generated_at,
    )


def _about_value(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def write_xlsx(
    table: ExportTable,
    sink: IO[bytes] | _TextSink,
    provenance: Provenance,
    options: ExportOptions = ExportOptions(),
    *,
    generated_at: datetime | None = None,
    redactor: AuthorRedactor | None = None,
) -> dict[str, Any]:
    """Write `table` as an XLSX workbook to `sink`: a data sheet, then "About"; return the manifest.

    Every text cell is written as a string (never a formula), after the same neutralisation
    as the CSV. The manifest (the About sheet's rows) has as sha256 that of the data sheet's
    cells serialised as the CSV export would write them (`xlsx_data_sha256` recomputes it).
    Rows beyond Excel's limit raise ExportError: export such a selection as CSV.
    """
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]
    from openpyxl.styles import Font  # type: ignore[import-untyped]

    redactor = redactor or _redactor(provenance, options)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(table.kind)
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)

    def cell(value: object, *, header: bool = False) -> Any:
        written = WriteOnlyCell(sheet, value=value)
        if isinstance(value, str):
            written.data_type = "s"  # text, even if it looks like a formula
        if header:
            written.font = bold
        return written

    digest = hashlib.sha256()
    encoder = _CsvEncoder()
    digest.update(encoder.header(table.columns))
    sheet.append([cell(name, header=True) for name in table.columns])
    rows = 0
    try:
        for block in _rows(table, redactor, xlsx=True):
            rows += len(block)
            if rows > EXCEL_MAX_ROWS:
                raise ExportError(
                    f"{table.kind}: more than {EXCEL_MAX_ROWS:,} rows, Excel's limit; "
                    "export them as CSV, or narrow the filters."
                )
            for row in block:
                sheet.append([cell(value) for value in row])
            digest.update(encoder.rows(block))
    except BaseException:
        # End the sheet's stream and remove the temporary file it was writing to.
        with contextlib.suppress(Exception):
            sheet.close()
            sheet._writer.cleanup()
        raise
    manifest = _manifest(
        table,
        provenance,
        options,
        fmt="xlsx",
        rows=rows,
        sha256=digest.hexdigest(),
        generated_at=generated_at,
    )
    about = book.create_sheet(ABOUT_SHEET)
    about.column_dimensions["A"].width = 16
    about.column_dimensions["B"].width = 100
    for key, value in manifest.items():
        shown = _about_value(value)
        if isinstance(shown, str):
            shown = _xlsx_text(str(neutralise_cell(shown)))
        about.append([WriteOnlyCell(about, value=key), cell(shown)])
    book.save(sink)
    return manifest


def xlsx_data_sha256(source: str | Path | IO[bytes]) -> str:
    """Return the SHA-256 of an exported XLSX's data sheet, as its manifest defines it.

    Reads the first sheet's cells and serialises them as the CSV export does (`_CsvEncoder`):
    the result equals the About sheet's sha256 when the data is as exported.
    """
    from openpyxl import load_workbook

    book = load_workbook(source, read_only=True)
    try:
        sheet = book.worksheets[0]
        digest = hashlib.sha256()
        encoder = _CsvEncoder()
        rows = sheet.iter_rows(values_only=True)
        header = [v if v is not None else "" for v in next(rows, ())]
        digest.update(encoder.header(header))
        width = len(header)
        for row in rows:
            # Empty cells at the end of a row are not stored: pad to the header's width.
            cells = [_plain(v) for v in row][:width]
            digest.update(encoder.rows([(*cells, *([None] * (width - len(cells))))]))
        return digest.hexdigest()
    finally:
        book.close()


# -- files and downloads ------------------------------------------------------------------------


def format_of(path: Path) -> str:
    """Return "csv" or "xlsx" from a file name; ExportError for anything else."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ExportError(f"{path.name!r} must end in .csv or .xlsx")
    return suffix


def manifest_path(path: Path) -> Path:
    """Return where the manifest of the CSV `path` goes: FILE.csv -> FILE.manifest.json."""
    return path.with_name(f"{path.stem}.manifest.json")


def manifest_json(manifest: Mapping[str, Any]) -> bytes:
    """Return a manifest as the bytes of its JSON file."""
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What `export_to_path` wrote."""

    path: Path
    manifest_path: Path | None  # None for XLSX: the manifest is its About sheet
    manifest: dict[str, Any]

    @property
    def rows(self) -> int:
        """Return the number of data rows written."""
        return int(self.manifest["rows"])


def _replace_atomically(path: Path, write: Callable[[BinaryIO], Any]) -> Any:
    """Write `path` through a temporary file beside it: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temporary.open("wb") as handle:
            result = write(handle)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return result


def export_to_path(
    table: ExportTable,
    path: Path,
    provenance: Provenance,
    options: ExportOptions = ExportOptions(),
    *,
    generated_at: datetime | None = None,
) -> ExportResult:
    """Write `table` to `path` (.csv with FILE.manifest.json beside it, or .xlsx)."""
    fmt = format_of(path)
    if fmt == "csv":
        manifest = _replace_atomically(
            path,
            lambda handle: write_csv(table, handle, provenance, options, generated_at=generated_at),
        )
        sidecar = manifest_path(path)
        _replace_atomically(sidecar, lambda handle: handle.write(manifest_json(manifest)))
        return ExportResult(path, sidecar, manifest)
    manifest = _replace_atomically(
        path,
        lambda handle: write_xlsx(table, handle, provenance, options, generated_at=generated_at),
    )
    return ExportResult(path, None, manifest)


def download_name(stem: str, fmt: str) -> str:
    """Return the file name of a dashboard download in `fmt` (csv, zip or xlsx)."""
    return f"{stem}.{fmt}"


def export_bytes(
    table: ExportTable,
    fmt: str,
    provenance: Provenance,
    options: ExportOptions = ExportOptions(),
    *,
    stem: str = "export",
    generated_at: datetime | None = None,
) -> bytes:
    """Return a download: "csv" (the CSV alone), "zip" (STEM.csv and STEM.manifest.json) or
    "xlsx". The CSV is byte for byte what `export_to_path` writes for the same table."""
    buffer = io.BytesIO()
    if fmt == "xlsx":
        write_xlsx(table, buffer, provenance, options, generated_at=generated_at)
        return buffer.getvalue()
    if fmt not in ("csv", "zip"):
        raise ExportError(f"unknown download format {fmt!r}; use one of {DOWNLOAD_FORMATS}")
    manifest = write_csv(table, buffer, provenance, options, generated_at=generated_at)
    if fmt == "csv":
        return buffer.getvalue()
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{stem}.csv", buffer.getvalue())
        archive.writestr(f"{stem}.manifest.json", manifest_json(manifest))
    return packed.getvalue()


# -- the mention CSV, as before -----------------------------------------------------------------

_NO_PROVENANCE = Provenance(brand="", config_sha256="", database="", scorer="")


class _TextSink:
    """A binary sink over a text handle: each piece written is whole UTF-8 text."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle

    def write(self, data: bytes) -> int:
        return self._handle.write(data.decode("utf-8"))


def write_mentions_csv(chunks: Iterable[pd.DataFrame], handle: IO[str]) -> int:
    """Write mention chunks as one CSV to the text `handle`; return the number of rows written."""
    table = ExportTable(kind="mentions", columns=MENTION_COLUMNS, chunks=lambda: chunks)
    manifest = write_csv(table, _TextSink(handle), _NO_PROVENANCE)
    return int(manifest["rows"])


def mentions_csv(
    store: Store, query: MentionQuery, options: ExportOptions = ExportOptions()
) -> bytes:
    """Return the CSV of every mention matching `query` (the dashboard's plain download)."""
    buffer = io.BytesIO()
    write_csv(mentions_table(store, query), buffer, _NO_PROVENANCE, options)
    return buffer.getvalue()


def export_mentions(store: Store, query: MentionQuery, path: Path) -> int:
    """Write every mention matching `query` to the CSV file `path` (no manifest); return the
    row count. `export_to_path(mentions_table(...), ...)` writes it with its manifest."""
    return int(
        _replace_atomically(
            path,
            lambda handle: write_csv(mentions_table(store, query), handle, _NO_PROVENANCE),
        )["rows"]
    )

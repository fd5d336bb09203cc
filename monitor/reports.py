"""Exports that leave the tool: the same rows the dashboard shows, safe to open in Excel."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import pandas as pd

from monitor.models import MentionQuery
from monitor.store import MENTION_COLUMNS, Store

# A spreadsheet evaluates a cell that starts with one of these (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


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
            lambda ts: ts.strftime("%Y-%m-%dT%H:%M:%SZ") if pd.notna(ts) else ""
        )
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise_cell)
    return out


def write_mentions_csv(chunks: Iterable[pd.DataFrame], handle: IO[str]) -> int:
    """Write mention chunks as one CSV to `handle`; return the number of rows written."""
    writer = csv.writer(handle, lineterminator="\r\n")
    writer.writerow(MENTION_COLUMNS)
    rows = 0
    for chunk in chunks:
        safe = export_frame(chunk).astype(object).where(chunk.notna(), "")
        writer.writerows(safe.itertuples(index=False, name=None))
        rows += len(safe)
    return rows


def mentions_csv(store: Store, query: MentionQuery) -> bytes:
    """Return the CSV of every mention matching `query` (the dashboard download)."""
    buffer = io.StringIO()
    write_mentions_csv(store.iter_mentions(query), buffer)
    return buffer.getvalue().encode("utf-8")


def export_mentions(store: Store, query: MentionQuery, path: Path) -> int:
    """Write every mention matching `query` to the CSV file `path`; return the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        return write_mentions_csv(store.iter_mentions(query), handle)

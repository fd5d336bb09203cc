"""Exports: the rows the dashboard shows, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from monitor.models import MentionQuery
from monitor.reports import export_mentions, mentions_csv, neutralise_cell
from monitor.store import MENTION_COLUMNS, Store
from tests.conftest import make_mention

HOSTILE = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tindent", "\rreturn"]


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_triggers_are_neutralised(text: str) -> None:
    assert neutralise_cell(text) == "'" + text


def test_ordinary_text_and_numbers_are_left_alone() -> None:
    assert neutralise_cell("Northwind breach, day 3") == "Northwind breach, day 3"
    assert neutralise_cell(-0.53) == -0.53
    assert neutralise_cell("") == ""


def read_csv(data: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data, newline="")))


def test_exported_csv_reads_back_inert_and_complete(store: Store, tmp_path: Path) -> None:
    store.upsert_mentions(
        [make_mention(external_id=str(i), text=t, author=t) for i, t in enumerate(HOSTILE)]
        + [
            make_mention(
                external_id="plain", text='Plain text, with a comma and "quotes"', score=None
            )
        ]
    )
    path = tmp_path / "out" / "mentions.csv"
    assert export_mentions(store, MentionQuery(), path) == len(HOSTILE) + 1
    rows = read_csv(path.read_bytes().decode("utf-8"))
    assert list(rows[0]) == list(MENTION_COLUMNS)
    by_id = {r["external_id"]: r for r in rows}
    for i, text in enumerate(HOSTILE):
        assert by_id[str(i)]["text"] == "'" + text
        assert by_id[str(i)]["author"] == "'" + text
    plain = by_id["plain"]
    assert plain["text"] == 'Plain text, with a comma and "quotes"'
    assert plain["score"] == ""  # unknown stays empty, not "nan"
    assert plain["published_at"].endswith("Z")
    assert float(plain["compound"]) == pytest.approx(
        store.mentions_frame().set_index("external_id").loc["plain", "compound"]
    )


def test_cli_file_and_dashboard_download_are_the_same_rows(store: Store, tmp_path: Path) -> None:
    store.upsert_mentions([make_mention(external_id=str(i)) for i in range(7)])
    query = MentionQuery(labels=("positive",))
    path = tmp_path / "m.csv"
    export_mentions(store, query, path)
    assert path.read_bytes() == mentions_csv(store, query)

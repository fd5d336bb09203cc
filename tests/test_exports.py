"""Exports with provenance: every kind in CSV and XLSX, read back, checked against the analysis.

The demo scenario is built once for the module into a SQLite file, with a monitor.toml that
points at it and a .streamlit/secrets.toml holding a recognisable fake secret, so the CLI runs
exactly as a user's would. Files are read back with the csv module and openpyxl, never
through the code that wrote them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from click.testing import CliRunner
from openpyxl import load_workbook
from streamlit.testing.v1 import AppTest

from monitor import analysis, demo, impact, reports
from monitor.cli import main
from monitor.config import Settings, load_settings
from monitor.models import Alert, MentionQuery
from monitor.scoring import default_scorer
from monitor.store import Store, redact_url
from tests.conftest import ROOT, make_mention

SECRET = "FAKE-SECRET-do-not-leak-9b1e4c"
KINDS = ("mentions", "daily", "event-study", "alerts")
FORMATS = ("csv", "xlsx")
COLUMNS = {
    "mentions": reports.MENTION_COLUMNS,
    "daily": reports.DAILY_COLUMNS,
    "event-study": reports.EVENT_STUDY_COLUMNS,
    "alerts": reports.ALERT_COLUMNS,
}
# Extra arguments per kind: the event study of the disclosure only, with fewer resamples.
ARGS = {
    "mentions": ["--since", "2024-05-10", "--until", "2024-05-20"],
    "daily": ["--since", "2024-05-01", "--until", "2024-05-20"],
    "event-study": ["--event", "Breach disclosed", "--resamples", "200"],
    "alerts": [],
}
MANIFEST_KEYS = {
    "export",
    "brand",
    "query",
    "filters",
    "window",
    "sources",
    "scorer",
    "config_sha256",
    "generated_at",
    "rows",
    "sha256",
    "database",
}
HOSTILE = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tindent", "\rreturn"]
PROVENANCE = reports.Provenance(
    brand="=Evil Corp", config_sha256="0" * 64, database="sqlite:///x.db", scorer="test"
)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a folder with monitor.toml (the demo's brand and events, on a built demo
    database) and a .streamlit/secrets.toml holding SECRET."""
    folder = tmp_path_factory.mktemp("exports")
    url = f"sqlite:///{folder / 'demo.db'}"
    db = Store(url)
    try:
        demo.build(db)
    finally:
        db.close()
    events = "".join(
        f'\n[[events]]\nat = "{e.at:%Y-%m-%dT%H:%M:%SZ}"\nlabel = "{e.label}"\nkind = "{e.kind}"\n'
        for e in demo.EVENTS
    )
    aliases = ", ".join(json.dumps(a) for a in demo.BRAND.aliases)
    (folder / "monitor.toml").write_text(
        f'[brand]\nname = "{demo.BRAND.name}"\naliases = [{aliases}]\n{events}\n'
        f'[storage]\nurl = "{url}"\n',
        encoding="utf-8",
    )
    (folder / ".streamlit").mkdir()
    (folder / ".streamlit" / "secrets.toml").write_text(
        f'[reddit]\nclient_id = "client-id-4d2f"\nclient_secret = "{SECRET}"\n',
        encoding="utf-8",
    )
    return folder


@pytest.fixture(autouse=True)
def in_workdir(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> Iterator[None]:
    """Run every test in the work folder, with no configuration from the environment."""
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.chdir(workdir)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def settings(workdir: Path) -> Settings:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        patch.delenv("MONITOR_CONFIG", raising=False)
        patch.delenv("MONITOR_DATABASE_URL", raising=False)
        loaded = load_settings()
    assert loaded.secrets["reddit"]["client_secret"] == SECRET  # the secret is in play
    return loaded


@pytest.fixture(scope="module")
def demo_store(settings: Settings) -> Iterator[Store]:
    db = Store(settings.database_url)
    yield db
    db.close()


def run(*args: str) -> Any:
    """Run `repmon ARGS` in the work folder and return click's result."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def exported(workdir: Path) -> dict[tuple[str, str], tuple[Path, str]]:
    """Run `repmon export KIND --out out/KIND.FMT` for every kind and format once; return
    each file and what the command printed."""
    files = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        patch.delenv("MONITOR_CONFIG", raising=False)
        patch.delenv("MONITOR_DATABASE_URL", raising=False)
        for kind in KINDS:
            for fmt in FORMATS:
                out = workdir / "out" / f"{kind}.{fmt}"
                result = run("export", kind, "--out", str(out), *ARGS[kind])
                assert result.exit_code == 0, result.output
                files[(kind, fmt)] = (out, result.output)
    return files


# -- reading back -----------------------------------------------------------------------------


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))


def read_manifest(path: Path) -> dict[str, Any]:
    sidecar = path.with_name(f"{path.stem}.manifest.json")
    loaded: dict[str, Any] = json.loads(sidecar.read_text(encoding="utf-8"))
    return loaded


def read_xlsx(path: Path) -> tuple[list[list[Any]], dict[str, Any], Any]:
    """Return the data sheet's rows, the About sheet as a dict, and the workbook."""
    book = load_workbook(path)
    assert book.sheetnames[1] == "About"
    data = [[cell.value for cell in row] for row in book.worksheets[0].iter_rows()]
    about = {row[0].value: row[1].value for row in book["About"].iter_rows()}
    return data, about, book


def about_value(value: Any) -> Any:
    """Return an About cell as the manifest holds it (nested values are JSON text)."""
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


def number(cell: Any) -> float | None:
    """Return a CSV or XLSX cell as a number, None when empty."""
    if cell in ("", None):
        return None
    return float(cell)


def close(cell: Any, expected: Any) -> bool:
    """Return whether a cell holds `expected` (to 1e-12); an empty cell for NaN or None."""
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return cell in ("", None)
    return bool(number(cell) == pytest.approx(float(expected), rel=1e-12, abs=1e-15))


# -- every kind, both formats -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_csv_reads_back_with_its_manifest(
    kind: str, exported: dict[tuple[str, str], tuple[Path, str]], settings: Settings
) -> None:
    path, output = exported[(kind, "csv")]
    rows = read_csv(path)
    manifest = read_manifest(path)
    assert rows[0] == list(COLUMNS[kind])
    assert len(rows) - 1 == manifest["rows"] > 0
    assert all(len(row) == len(COLUMNS[kind]) for row in rows)
    assert set(manifest) >= MANIFEST_KEYS
    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["export"] == kind and manifest["format"] == "csv"
    assert manifest["brand"] == "Northwind Bank"
    assert manifest["scorer"] == default_scorer().version
    assert "breach-1" in manifest["scorer"]  # the lexicon version
    assert manifest["config_sha256"] == reports.config_sha256(settings)
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["config_sha256"])
    assert manifest["database"] == redact_url(settings.database_url)
    assert manifest["columns"] == list(COLUMNS[kind])
    generated = datetime.fromisoformat(manifest["generated_at"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - generated).total_seconds()) < 600
    assert manifest["sha256"] in output and str(path.with_suffix("")) in output


@pytest.mark.parametrize("kind", KINDS)
def test_xlsx_reads_back_with_its_about_sheet(
    kind: str, exported: dict[tuple[str, str], tuple[Path, str]]
) -> None:
    path, _ = exported[(kind, "xlsx")]
    data, about, book = read_xlsx(path)
    assert data[0] == list(COLUMNS[kind])
    assert set(about) >= MANIFEST_KEYS
    assert about["export"] == kind and about["format"] == "xlsx"
    assert about["rows"] == len(data) - 1 > 0
    # The About sheet holds the same manifest as the CSV's sidecar, bar format and time.
    csv_manifest = read_manifest(exported[(kind, "csv")][0])
    assert set(about) == set(csv_manifest)
    for key, value in csv_manifest.items():
        if key not in ("format", "generated_at", "checksum_of"):
            assert about_value(about[key]) == value, key
    # The checksum is the data sheet serialised as the CSV export: the CSV file's own hash.
    assert about["sha256"] == csv_manifest["sha256"]
    assert about["sha256"] == reports.xlsx_data_sha256(path)
    # Text is text and numbers are numbers; nothing is a formula.
    types = {cell.data_type for row in book.worksheets[0].iter_rows() for cell in row}
    assert "f" not in types and "s" in types
    csv_rows = read_csv(exported[(kind, "csv")][0])
    for written, read in zip(csv_rows[1:], data[1:], strict=True):
        for text, cell in zip(written, read, strict=True):
            if isinstance(cell, int | float) and not isinstance(cell, bool):
                assert float(text) == cell
            elif isinstance(cell, bool):
                assert text == str(cell)
            else:
                assert text == (cell or "")


def test_the_checksum_changes_with_a_single_byte(
    exported: dict[tuple[str, str], tuple[Path, str]], tmp_path: Path
) -> None:
    path, _ = exported[("mentions", "csv")]
    tampered = tmp_path / "tampered.csv"
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    tampered.write_bytes(bytes(data))
    assert hashlib.sha256(tampered.read_bytes()).hexdigest() != read_manifest(path)["sha256"]


def test_no_secret_in_any_output(
    exported: dict[tuple[str, str], tuple[Path, str]], settings: Settings
) -> None:
    for (_, fmt), (path, output) in exported.items():
        assert SECRET not in output
        if fmt == "csv":
            assert SECRET.encode() not in path.read_bytes()
            assert SECRET not in path.with_name(f"{path.stem}.manifest.json").read_text()
        else:
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    assert SECRET.encode() not in archive.read(member), member
    assert SECRET not in json.dumps(reports.effective_config(settings))


def test_database_password_and_secrets_never_reach_the_manifest(settings: Settings) -> None:
    with_password = replace(
        settings, database_url=f"postgresql://repmon:{SECRET}@db.example.com/monitor"
    )
    provenance = reports.Provenance.from_settings(with_password)
    assert SECRET not in repr(provenance)
    assert provenance.database == "postgresql://repmon:***@db.example.com/monitor"
    # The config hash ignores secrets, and changes with what shapes the data.
    assert reports.config_sha256(replace(settings, secrets={})) == reports.config_sha256(settings)
    renamed = replace(settings, brand=replace(settings.brand, name="Southwind Bank"))
    assert reports.config_sha256(renamed) != reports.config_sha256(settings)


# -- the numbers --------------------------------------------------------------------------------


def test_daily_export_numbers_equal_the_daily_series(
    exported: dict[tuple[str, str], tuple[Path, str]], demo_store: Store
) -> None:
    window = analysis.Window(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 21, tzinfo=UTC))
    query = MentionQuery(since=window.start, until=window.end)
    daily = demo_store.daily_counts(query)
    rows = read_csv(exported[("daily", "csv")][0])
    header, body = rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert header == list(reports.DAILY_COLUMNS)
    for scope in ("all", "reddit", "news", "reviews"):
        expected = analysis.daily_series(
            daily if scope == "all" else daily[daily["source"] == scope], window
        )
        shown = [r for r in body if r["source"] == scope]
        assert [r["day"] for r in shown] == [f"{d:%Y-%m-%d}" for d in expected.index]
        assert len(shown) == 20  # 1 to 20 May, whole UTC days
        for row, (_, want) in zip(shown, expected.iterrows(), strict=True):
            for column in ("mentions", "negative", "neutral", "positive"):
                assert int(row[column]) == want[column]
            for column in ("mean_compound", "net_sentiment", "rolling_net_sentiment"):
                assert close(row[column], want[column]), (scope, row["day"], column)
            for column in ("ratings", "mean_rating", "rolling_mean_rating"):
                assert close(row[column], want[column]), (scope, row["day"], column)
            share = want["negative"] / want["mentions"] if want["mentions"] else None
            assert close(row["share_negative"], share)
    reviews = [r for r in body if r["source"] == "reviews"]
    assert any(r["mean_rating"] for r in reviews)  # the star ratings came through


def test_event_study_export_equals_the_study(
    exported: dict[tuple[str, str], tuple[Path, str]], demo_store: Store, settings: Settings
) -> None:
    event = impact.find_event(settings.events, "Breach disclosed")
    study = impact.run_event_study(demo_store, event, impact.StudyOptions(n_resamples=200))
    expected = study.to_dict()
    rows = read_csv(exported[("event-study", "csv")][0])
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    metrics = [r for r in body if r["row_type"] == "metric"]
    topics = [r for r in body if r["row_type"] == "topic"]
    groups = sum(1 + len(w["by_source"]) for w in expected["windows"])
    assert len(metrics) == groups * len(impact.METRICS)
    assert len(topics) == sum(len(w["topics"]) for w in expected["windows"])
    assert [r["sentence"] for r in body if r["row_type"] == "recovery"] == [
        expected["recovery"]["statement"]
    ]
    shown = {(r["window_days"], r["scope"], r["metric"]): r for r in metrics}
    for result in expected["windows"]:
        days = str(result["window"]["days"])
        for group in (result["overall"], *result["by_source"]):
            for entry in group["metrics"]:
                row = shown[(days, group["source"], entry["metric"])]
                for key in ("before", "after", "difference", "ci_low", "ci_high", "p_value"):
                    assert number(row[key]) == entry[key], (days, group["source"], key)
                assert row["clear_change"] == str(entry["clear_change"])
                assert int(row["mentions_after"]) == group["mentions_after"]
                assert row["event_at"] == "2024-05-14T16:00:00Z"
        by_topic = {r["metric"]: r for r in topics if r["window_days"] == days}
        for topic in result["topics"]:
            row = by_topic[topic["topic"]]
            assert number(row["before"]) == topic["before"]
            assert number(row["after"]) == topic["after"]
            assert number(row["difference"]) == topic["change"]


def test_alerts_export_flattens_the_evidence(
    exported: dict[tuple[str, str], tuple[Path, str]], demo_store: Store
) -> None:
    stored = sorted(demo_store.alerts(limit=None), key=lambda a: (a.fired_at, a.id or 0))
    rows = read_csv(exported[("alerts", "csv")][0])
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [int(r["id"]) for r in body] == [a.id for a in stored]
    for row, alert in zip(body, stored, strict=True):
        assert row["fired_at"] == alert.fired_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert int(row["evidence_count"]) == len(alert.evidence)
        assert row["top_url"] == alert.evidence[0]["url"]
        assert number(row["value"]) == pytest.approx(alert.value)


def test_mentions_export_is_the_filtered_rows(
    exported: dict[tuple[str, str], tuple[Path, str]], demo_store: Store
) -> None:
    query = MentionQuery(
        since=datetime(2024, 5, 10, tzinfo=UTC), until=datetime(2024, 5, 21, tzinfo=UTC)
    )
    rows = read_csv(exported[("mentions", "csv")][0])
    assert len(rows) - 1 == demo_store.count_mentions(query)
    manifest = read_manifest(exported[("mentions", "csv")][0])
    assert manifest["window"] == {"since": "2024-05-10T00:00:00Z", "until": "2024-05-21T00:00:00Z"}
    assert manifest["filters"]["since"] == "2024-05-10T00:00:00Z"
    assert manifest["query"] == query.describe()
    assert manifest["sources"] == ["news", "reddit", "reviews"]


# -- safe to open -----------------------------------------------------------------------------


@pytest.fixture
def hostile_store(store: Store) -> Store:
    """Return a store whose mentions and alerts start with everything a spreadsheet runs."""
    store.upsert_mentions(
        [
            make_mention(
                external_id=f"h{i}",
                title=text,
                text=text,
                author=text,
                compound=-0.53,
                label="negative",
            )
            for i, text in enumerate(HOSTILE)
        ]
    )
    for text in HOSTILE:
        store.add_alert(
            Alert(
                rule=text,
                brand="b",
                fired_at=datetime(2024, 5, 1, tzinfo=UTC),
                severity="high",
                value=-0.5,
                threshold=-0.4,
                message=text,
                evidence=[{"source": "reddit", "title": "", "text": text, "url": text}],
            )
        )
    return store


def inert(value: str, *, xlsx: bool) -> str:
    """Return how a hostile value must read back: with a leading apostrophe (and in XLSX, the
    carriage return as the line feed XML keeps)."""
    safe = "'" + value
    return safe.replace("\r", "\n") if xlsx else safe


@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_cells_export_as_inert_text(hostile_store: Store, tmp_path: Path, fmt: str) -> None:
    mentions = reports.mentions_table(hostile_store, MentionQuery())
    alerts = reports.alerts_table(hostile_store.alerts(limit=None))
    for table, fields in ((mentions, ("title", "text", "author")), (alerts, ("rule", "message"))):
        path = tmp_path / f"{table.kind}.{fmt}"
        reports.export_to_path(table, path, PROVENANCE)
        if fmt == "csv":
            rows = read_csv(path)
            body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
            assert read_manifest(path)["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            book = load_workbook(path)
            sheet = book.worksheets[0]
            header = [c.value for c in sheet[1]]
            body = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)]
            for row in body:
                for name in fields:
                    assert row[name].data_type == "s", (name, row[name].value)
            body = [{k: c.value for k, c in row.items()} for row in body]
            about = {r[0].value: r[1] for r in book["About"].iter_rows()}
            assert about["brand"].value == "'=Evil Corp" and about["brand"].data_type == "s"
            assert about["sha256"].value == reports.xlsx_data_sha256(path)
        assert len(body) == len(HOSTILE)
        shown = {tuple(row[name] for name in fields) for row in body}
        expected = {tuple([inert(t, xlsx=fmt == "xlsx")] * len(fields)) for t in HOSTILE}
        assert shown == expected
        if table.kind == "mentions":  # a negative number is data, not a formula
            assert {number(row["compound"]) for row in body} == {-0.53}
        else:
            assert {row["top_url"] for row in body} == {
                inert(t, xlsx=fmt == "xlsx") for t in HOSTILE
            }


def test_csv_quotes_every_text_cell(hostile_store: Store) -> None:
    """A spreadsheet that splits on ";" cannot start a cell inside quoted text."""
    text = "fine;=1+1"
    hostile_store.upsert_mentions([make_mention(external_id="semi", text=text)])
    data = reports.mentions_csv(hostile_store, MentionQuery(search="fine"))
    assert f'"{text}"'.encode() in data
    assert data.startswith(b"published_at,source,label,compound,")


def test_bom_option(workdir: Path) -> None:
    plain, marked = workdir / "plain.csv", workdir / "marked.csv"
    assert run("export", "alerts", "--out", str(plain)).exit_code == 0
    result = run("export", "alerts", "--out", str(marked), "--bom")
    assert result.exit_code == 0, result.output
    data = marked.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfid,fired_at,")
    assert data[3:] == plain.read_bytes()
    manifest = read_manifest(marked)
    assert manifest["encoding"] == "utf-8-sig" and manifest["options"]["bom"] is True
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert read_manifest(plain)["encoding"] == "utf-8"


# -- author redaction ---------------------------------------------------------------------------


def test_redactor_pseudonyms_hold_within_one_export_only() -> None:
    first = reports.AuthorRedactor(["@NorthwindBank"], key=b"k" * 32)
    again = reports.AuthorRedactor(["@NorthwindBank"], key=b"k" * 32)
    other = reports.AuthorRedactor(["@NorthwindBank"])
    alice = first.author("alice")
    assert re.fullmatch(r"author-[0-9a-f]{10}", alice)
    assert first.author("@Alice") == first.author("u/alice") == alice == again.author("alice")
    assert other.author("alice") != alice  # a new random key for each export
    assert first.author("bob") != alice
    assert first.author("") == ""
    assert first.author("NorthwindBank") == "NorthwindBank"  # the brand's own handle stays
    text = "thanks @alice and u/bob, cc @NorthwindBank; mail carol@example.com"
    assert first.text(text) == (
        f"thanks @{alice} and u/{first.pseudonym('bob')}, cc @NorthwindBank; mail carol@example.com"
    )
    assert (
        first.text("see @dan@mastodon.social.") == f"see @{first.pseudonym('dan@mastodon.social')}."
    )
    assert first.url("https://mastodon.social/@alice/1") == f"https://mastodon.social/@{alice}/1"
    assert first.url("https://www.reddit.com/user/bob/") == (
        f"https://www.reddit.com/user/{first.pseudonym('bob')}/"
    )


def test_redacted_export_names_no_author(store: Store, tmp_path: Path) -> None:
    store.upsert_mentions(
        [
            make_mention(
                external_id="1",
                author="alice_w",
                text="@bob_k told me, thanks @NorthwindBank",
                url="https://mastodon.social/@alice_w/1",
            ),
            make_mention(external_id="2", author="bob_k", text="agree with u/alice_w"),
            make_mention(external_id="3", author="alice_w", text="again"),
        ]
    )
    provenance = replace(PROVENANCE, keep_handles=("@NorthwindBank",))
    options = reports.ExportOptions(redact_authors=True)
    paths = []
    for name in ("a.csv", "b.csv"):
        paths.append(tmp_path / name)
        reports.export_to_path(
            reports.mentions_table(store, MentionQuery()), paths[-1], provenance, options
        )
    content = paths[0].read_text(encoding="utf-8")
    assert "alice_w" not in content and "bob_k" not in content
    assert "@NorthwindBank" in content
    rows = {r["external_id"]: r for r in csv.DictReader(io.StringIO(content, newline=""))}
    assert rows["1"]["author"] == rows["3"]["author"] != rows["2"]["author"]
    assert rows["2"]["text"] == f"agree with u/{rows['1']['author']}"
    # Redacted, then neutralised: the text still starts with @.
    assert rows["1"]["text"] == f"'@{rows['2']['author']} told me, thanks @NorthwindBank"
    assert rows["1"]["url"] == f"https://mastodon.social/@{rows['1']['author']}/1"
    manifest = read_manifest(paths[0])
    assert manifest["options"]["redact_authors"] is True
    second = {r["external_id"]: r for r in csv.DictReader(paths[1].open(newline=""))}
    assert second["1"]["author"] != rows["1"]["author"]  # not linkable across exports


def test_cli_redacts_authors(workdir: Path, demo_store: Store) -> None:
    out = workdir / "redacted.xlsx"
    result = run("export", "mentions", "--out", str(out), "--source", "reddit", "--redact-authors")
    assert result.exit_code == 0, result.output
    data, about, _ = read_xlsx(out)
    column = data[0].index("author")
    authors = {row[column] for row in data[1:]}
    assert all(re.fullmatch(r"author-[0-9a-f]{10}", a) for a in authors)
    stored = set(demo_store.mentions_frame(MentionQuery(sources=("reddit",)), limit=None)["author"])
    assert len(authors) == len(stored)  # one pseudonym per person
    assert about_value(about["options"])["redact_authors"] is True


# -- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_bad_out_extension_is_a_usage_error(kind: str, workdir: Path) -> None:
    out = workdir / f"{kind}-report.txt"
    result = CliRunner().invoke(main, ["export", kind, "--out", str(out)])
    assert result.exit_code == 2
    assert "--out" in result.output and "must end in .csv or .xlsx" in result.output
    assert not out.exists()


def test_bom_with_xlsx_is_a_usage_error(workdir: Path) -> None:
    result = CliRunner().invoke(main, ["export", "daily", "--out", "x.xlsx", "--bom"])
    assert result.exit_code == 2 and "--bom is for a CSV" in result.output
    assert not (workdir / "x.xlsx").exists()


def test_unknown_event_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["export", "event-study", "--out", "e.csv", "--event", "x"])
    assert result.exit_code == 2 and "Breach disclosed" in result.output


def test_too_many_rows_for_excel_fails_cleanly(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "EXCEL_MAX_ROWS", 10)
    out = workdir / "big.xlsx"
    result = CliRunner().invoke(main, ["export", "mentions", "--out", str(out)])
    assert result.exit_code == 1 and "Excel" in result.output and ".csv" in result.output
    assert not out.exists()
    # The writer itself refuses too, and leaves no half-written file behind.
    with pytest.raises(reports.ExportError, match="Excel"):
        reports.export_to_path(
            reports.alerts_table(Store(f"sqlite:///{workdir / 'demo.db'}").alerts(limit=None)),
            out,
            PROVENANCE,
        )
    assert not out.exists() and not list(workdir.glob(".big.xlsx.*"))


def test_daily_widens_times_to_whole_days(workdir: Path) -> None:
    out = workdir / "days.csv"
    result = run(
        "export",
        "daily",
        "--out",
        str(out),
        "--since",
        "2024-05-14T16:00:00Z",
        "--until",
        "2024-05-16T01:00:00Z",
    )
    assert result.exit_code == 0, result.output
    days = [r[0] for r in read_csv(out)[1:] if r[1] == "all"]
    assert days == ["2024-05-14", "2024-05-15", "2024-05-16"]
    assert read_manifest(out)["window"] == {
        "since": "2024-05-14T00:00:00Z",
        "until": "2024-05-17T00:00:00Z",
    }


# -- the dashboard ------------------------------------------------------------------------------


def test_dashboard_download_is_byte_identical_to_the_cli(workdir: Path, settings: Settings) -> None:
    from monitor.dashboard import data

    query = MentionQuery(
        since=datetime(2024, 5, 14, tzinfo=UTC),
        until=datetime(2024, 5, 21, tzinfo=UTC),
        labels=("negative",),
    )
    out = workdir / "same.csv"
    args = ["--since", "2024-05-14", "--until", "2024-05-20", "--label", "negative"]
    assert run("export", "mentions", "--out", str(out), *args).exit_code == 0
    table = data.mentions_table(settings.database_url, query)
    downloaded = data.export_download(settings, table, "csv")
    assert downloaded == out.read_bytes()
    assert downloaded == reports.mentions_csv(Store(settings.database_url), query)
    packed = data.export_download(settings, table, "zip", stem="same")
    with zipfile.ZipFile(io.BytesIO(packed)) as archive:
        assert sorted(archive.namelist()) == ["same.csv", "same.manifest.json"]
        assert archive.read("same.csv") == out.read_bytes()
        manifest = json.loads(archive.read("same.manifest.json"))
    cli_manifest = read_manifest(out)
    differs = {k for k in cli_manifest if cli_manifest[k] != manifest[k]}
    assert differs <= {"generated_at"}
    assert set(manifest) == set(cli_manifest)


def test_every_page_offers_its_download(workdir: Path) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    pages = {
        "monitor/dashboard/overview.py": "overview_export_format",
        "monitor/dashboard/explorer.py": "explorer_export_format",
        "monitor/dashboard/impact.py": "impact_export_format",
        "monitor/dashboard/alerts.py": "alerts_export_format",
    }
    for page, key in pages.items():
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        labels = [b.proto.label for b in at.get("download_button")]
        assert any(label.startswith("Download CSV (") for label in labels), (page, labels)
        at.selectbox(key=key).set_value("xlsx").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        labels = [b.proto.label for b in at.get("download_button")]
        assert any(label.startswith("Download Excel (") for label in labels), (page, labels)

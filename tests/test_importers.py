"""Historical imports: real backfills from ../shared, vendor tables, and rows that are broken."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from monitor.cli import main
from monitor.collectors.importers import ImportFileError, parse_mapping, parse_time
from monitor.config import BrandConfig, Settings, demo_settings
from monitor.models import MentionQuery
from monitor.pipeline import import_file
from monitor.store import Store, mentions
from tests.conftest import shared_path

HOME_DEPOT = Settings(brand=BrandConfig("Home Depot", ("$HD", "@HomeDepot")))
CAPITAL_ONE = Settings(brand=BrandConfig("Capital One", ("CapitalOne", "$COF")))


def hd_file() -> Path:
    return shared_path("real", "homedepot-breach-2014-tweets", "HD_raw_tweets_2014-2015.jsonl")


def test_home_depot_tweets_import_once_each(store: Store) -> None:
    report = import_file(store, HOME_DEPOT, hd_file(), fmt="twitter-jsonl")
    assert report.rows == 1004
    assert report.new == 1003  # one id appears twice in the file
    assert report.failed == 0
    assert store.count_mentions() == 1003
    again = import_file(store, HOME_DEPOT, hd_file(), fmt="twitter-jsonl")
    assert (again.new, again.updated) == (0, 0)
    assert store.count_mentions() == 1003


def test_home_depot_fields_are_the_tweets_own(store: Store) -> None:
    import_file(store, HOME_DEPOT, hd_file(), fmt="twitter-jsonl")
    first_report = store.mentions_frame(
        MentionQuery(search="credit card breach"), descending=False
    ).iloc[0]
    assert first_report["text"] == "$HD credit card breach"
    assert f"{first_report['published_at']:%Y-%m-%d %H:%M %Z}" == "2014-09-02 17:33 UTC"
    assert first_report["label"] == "negative"
    assert first_report["source"] == "twitter"
    assert first_report["url"].startswith("https://twitter.com/")
    with hd_file().open(encoding="utf-8") as handle:
        tweet = json.loads(handle.readline())
    row = (
        store.mentions_frame(MentionQuery(), limit=None)
        .set_index("external_id")
        .loc[tweet["id_str"]]
    )
    assert row["author"] == tweet["user"]["screen_name"]
    assert row["followers"] == tweet["user"]["followers_count"]
    assert row["published_at"] == datetime.strptime(tweet["created_at"], "%a %b %d %H:%M:%S %z %Y")


def test_reddit_2019_pushshift_keeps_real_timestamps(store: Store) -> None:
    path = shared_path("real", "reddit-technology-science-2019", "submission_2019.csv")
    report = import_file(store, CAPITAL_ONE, path, fmt="reddit-pushshift", match=True)
    assert report.rows == 14384
    assert report.failed == 0
    assert report.new == store.count_mentions() > 0
    assert report.skipped == report.rows - report.new
    with path.open(encoding="utf-8", newline="") as handle:
        by_id = {row["id"]: row for row in csv.DictReader(handle)}
    frame = store.mentions_frame(MentionQuery(), limit=None)
    assert frame["published_at"].min() >= datetime(2019, 1, 1, tzinfo=UTC)
    for row in frame.itertuples():
        original = by_id[row.external_id.removeprefix("t3_")]
        assert row.published_at == datetime.fromtimestamp(int(original["timestamp"]), UTC)
        assert "Capital One" in row.title or "capital one" in row.title.lower()
    # The Capital One breach was disclosed on 2019-07-29: no title named it before the 30th.
    assert (frame["published_at"] >= datetime(2019, 7, 30, tzinfo=UTC)).all()


def test_a_vendor_csv_with_a_column_map(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "trustpilot.csv"
    path.write_text(
        "Review ID,Review Content,Review Title,Review Stars,Review Created (UTC),Reviewer\n"
        "r1,Card declined after the breach,Awful,1,2024-05-20 10:00:00,Ann\n"
        "r2,Support fixed it fast,Great,5,2024-05-21T09:30:00Z,Bo\n",
        encoding="utf-8",
    )
    mapping = parse_mapping(
        [
            "Review ID=external_id",
            "Review Content=text",
            "Review Title=title",
            "Review Stars=rating",
            "Review Created (UTC)=published_at",
            "Reviewer=author",
        ]
    )
    report = import_file(store, HOME_DEPOT, path, fmt="csv", source="trustpilot", mapping=mapping)
    assert (report.new, report.failed) == (2, 0)
    rows = store.mentions_frame(descending=False).set_index("external_id")
    assert rows.loc["r1", "rating"] == 1.0
    assert rows.loc["r1", "label"] == "negative"
    assert rows.loc["r2", "published_at"] == datetime(2024, 5, 21, 9, 30, tzinfo=UTC)
    assert rows.loc["r1", "source"] == "trustpilot"


def test_an_xlsx_export(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    pd.DataFrame(
        {
            "id": ["x1"],
            "body": ["Northwind lost my data"],
            "when": ["2024-05-15 08:00"],
            "stars": [2],
        }
    ).to_excel(path, index=False)
    report = import_file(
        store,
        HOME_DEPOT,
        path,
        fmt="xlsx",
        mapping={"id": "external_id", "body": "text", "when": "published_at", "stars": "rating"},
    )
    assert (report.new, report.failed) == (1, 0)


def test_bad_rows_are_reported_by_line_and_the_rest_land(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    lines = [
        json.dumps(
            {"external_id": "ok1", "text": "fine row", "published_at": "2024-05-01T00:00:00Z"}
        ),
        "{not json",
        json.dumps({"external_id": "nodate", "text": "no date here"}),
        json.dumps({"external_id": "notext", "published_at": "2024-05-01"}),
        json.dumps(["a", "list"]),
        json.dumps({"external_id": "baddate", "text": "x", "published_at": "next tuesday-ish"}),
        json.dumps({"external_id": "ok2", "text": "another fine row", "published_at": 1714521600}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_file(store, HOME_DEPOT, path, fmt="jsonl")
    assert (report.rows, report.new, report.failed) == (7, 2, 5)
    assert [p.split(":")[0] for p in report.problems] == [
        "line 2",
        "line 3",
        "line 4",
        "line 5",
        "line 6",
    ]
    assert "not JSON" in report.problems[0]
    assert "no text" in report.problems[2]
    run = store.recent_runs(1)[0]
    assert (run.source, run.status, run.new) == ("import:import", "partial", 2)
    assert "line 2" in run.error


def test_half_a_character_in_a_json_escape_loses_nothing(any_store: Store, tmp_path: Path) -> None:
    # Truncated tweets end mid-emoji: "\\ud83d" without its pair is valid JSON that no
    # database, and no UTF-8 hash, can take.
    path = tmp_path / "cut.jsonl"
    path.write_text(
        '{"external_id": "1", "text": "card stolen \\ud83d", "published_at": "2024-05-01",'
        ' "mood": "\\udc4e"}\n'
        '{"external_id": "2", "text": "fine \\ud83d\\ude00", "published_at": "2024-05-01"}\n',
        encoding="utf-8",
    )
    report = import_file(any_store, HOME_DEPOT, path, fmt="jsonl")
    assert (report.new, report.failed) == (2, 0)
    stored = any_store.mentions_frame().set_index("external_id")
    assert stored.loc["1", "text"] == "card stolen \ufffd"
    assert stored.loc["2", "text"] == "fine \U0001f600"  # a whole pair is one emoji, kept
    with any_store.engine.connect() as conn:  # the unmapped column went to extra
        extra = conn.execute(
            sa.select(mentions.c.extra).where(mentions.c.external_id == "1")
        ).scalar_one()
    assert extra["mood"] == "\ufffd"
    again = import_file(any_store, HOME_DEPOT, path, fmt="jsonl")
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)


def test_a_windows_1252_file_loses_nothing(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "legacy.csv"
    path.write_bytes(
        "external_id,text,published_at\n1,Caf\xe9 card \x93skimmed\x94,2024-05-01\n".encode(
            "latin-1"
        )
    )
    import_file(store, HOME_DEPOT, path, fmt="csv")
    assert store.mentions_frame().iloc[0]["text"] == "Café card “skimmed”"


def test_unreadable_file_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="does not exist"):
        import_file(store, HOME_DEPOT, tmp_path / "missing.csv", fmt="csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ImportFileError, match="no header row"):
        import_file(store, HOME_DEPOT, empty, fmt="csv")
    assert store.recent_runs(1)[0].status == "failed"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Wed Sep 03 17:33:10 +0000 2014", datetime(2014, 9, 3, 17, 33, 10, tzinfo=UTC)),
        ("2014-09-03T19:33:10+02:00", datetime(2014, 9, 3, 17, 33, 10, tzinfo=UTC)),
        ("2014-09-03 17:33:10", datetime(2014, 9, 3, 17, 33, 10, tzinfo=UTC)),
        (1409765590, datetime(2014, 9, 3, 17, 33, 10, tzinfo=UTC)),
        ("1409765590000", datetime(2014, 9, 3, 17, 33, 10, tzinfo=UTC)),
        ("Wed, 03 Sep 2014 17:33:10 GMT", datetime(2014, 9, 3, 17, 33, 10, tzinfo=UTC)),
    ],
)
def test_dates_in_the_formats_exports_use(value: object, expected: datetime) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize("value", ["", None, "soon", "42"])
def test_impossible_dates_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        parse_time(value)


def test_map_must_name_known_fields() -> None:
    with pytest.raises(ValueError, match="unknown field 'body'"):
        parse_mapping(["text_col=body"])


def test_cli_import_with_progress_and_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    result = CliRunner().invoke(
        main, ["--database", url, "import", str(hd_file()), "--format", "twitter-jsonl"]
    )
    assert result.exit_code == 0, result.output
    assert "1,004 rows" in result.output and "1,003 new" in result.output
    again = CliRunner().invoke(
        main, ["--database", url, "import", str(hd_file()), "--format", "twitter-jsonl"]
    )
    assert "0 new, 0 updated, 1,003 unchanged" in again.output


def test_a_source_name_too_long_for_the_store_is_refused_before_anything_is_read(
    tmp_path: Path, store: Store
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "Northwind Bank", "published_at": "2024-05-01"}\n', "utf-8")
    with pytest.raises(ImportFileError, match="1 to 64 characters"):
        import_file(store, demo_settings(), path, fmt="jsonl", source="s" * 65)
    assert store.count_mentions() == 0


def test_a_database_failure_mid_import_is_recorded_on_the_run_and_loses_nothing_stored(
    tmp_path: Path, store: Store
) -> None:
    import sqlalchemy as sa

    path = tmp_path / "rows.jsonl"
    path.write_text(
        "".join(
            f'{{"external_id": "{i}", "text": "Northwind Bank post {i}", '
            f'"published_at": "2024-05-01T10:00:00Z"}}\n'
            for i in range(10)
        ),
        "utf-8",
    )
    with store.engine.begin() as conn:  # the database refuses every write of mentions
        conn.execute(sa.text("DROP TABLE rollup_hours"))
    with pytest.raises(ImportFileError, match="stopped after 10 rows"):
        import_file(store, demo_settings(), path, fmt="jsonl", source="forum")
    run = store.recent_runs(1)[0]
    assert run.source == "import:forum" and run.status == "failed"
    assert "rollup_hours" in run.error
    with store.engine.connect() as conn:  # the failed batch's transaction left nothing behind
        assert conn.execute(sa.text("SELECT count(*) FROM mentions")).scalar_one() == 0

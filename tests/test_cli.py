"""The repmon command: every command documented, each doing what the README says."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from monitor import demo
from monitor.cli import main
from monitor.store import Store


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def walk(command: click.Command, path: str = "repmon"):  # type: ignore[no-untyped-def]
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk(sub, f"{path} {name}")


def test_every_command_has_help_text() -> None:
    for path, command in walk(main):
        assert command.help, f"{path} has no help text"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts[0]} has no help text"


def test_score_prints_one_json_object_per_line() -> None:
    result = CliRunner().invoke(
        main, ["score", "-"], input="$HD credit card breach\n\nNorthwind support was great\n"
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [r["text"] for r in lines] == ["$HD credit card breach", "Northwind support was great"]
    assert [r["label"] for r in lines] == ["negative", "positive"]
    assert set(lines[0]) == {"text", "compound", "label", "topics"}
    assert "payment_cards" in lines[0]["topics"]


def test_score_reads_a_file(tmp_path: Path) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("ransomware hit the bank\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["score", str(source), "--format", "table"])
    assert result.exit_code == 0
    assert "negative" in result.output and "ransomware hit the bank" in result.output


def test_demo_then_export_mentions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    runner = CliRunner()
    built = runner.invoke(main, ["--database", url, "demo"])
    assert built.exit_code == 0, built.output
    again = runner.invoke(main, ["--database", url, "demo"])
    assert ": 0 new, 0 updated" in again.output
    out = tmp_path / "mentions.csv"
    exported = runner.invoke(main, ["--database", url, "export", "mentions", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert len(rows) >= 2000
    assert {r["source"] for r in rows} == {"reddit", "news", "reviews"}
    disclosure = demo.DISCLOSURE.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert any(r["published_at"] < disclosure for r in rows)
    assert any(r["published_at"] > disclosure for r in rows)
    assert len(rows) == Store(url).count_mentions()


def test_export_filters_match_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    runner = CliRunner()
    runner.invoke(main, ["--database", url, "demo"])
    out = tmp_path / "neg.csv"
    args = [
        "--database",
        url,
        "export",
        "mentions",
        "--out",
        str(out),
        "--since",
        "2024-05-14",
        "--until",
        "2024-05-20",
        "--source",
        "news",
        "--label",
        "negative",
    ]
    assert runner.invoke(main, args).exit_code == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert rows
    assert {r["source"] for r in rows} == {"news"} and {r["label"] for r in rows} == {"negative"}
    assert min(r["published_at"] for r in rows) >= "2024-05-14"
    assert max(r["published_at"] for r in rows) < "2024-05-21"  # --until date is inclusive


def test_bad_date_is_a_usage_error_naming_the_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["export", "mentions", "--out", str(tmp_path / "x.csv"), "--since", "last tuesday"]
    )
    assert result.exit_code == 2
    assert "--since" in result.output and "YYYY-MM-DD" in result.output


def test_bad_config_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "monitor.toml").write_text('[brand]\nnmae = "x"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "status"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "monitor.toml: unknown key [brand] 'nmae'" in result.stderr


def test_status_names_the_brand_and_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = CliRunner().invoke(main, ["--database", url, "status"])
    assert result.exit_code == 0, result.output
    assert (
        "Northwind Bank" in result.output
        and "x.db" in result.output
        and "mentions:  0" in result.output
    )

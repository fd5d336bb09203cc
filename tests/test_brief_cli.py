"""`repmon brief`: the briefing written to a file and sent through the notification channels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from tests.conftest import CHROMIUM, require
from tests.replay import ReplayServer


@pytest.fixture
def demo_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo_url: str) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    monkeypatch.delenv("MONITOR_NOTIFY_URLS", raising=False)
    return demo_url


def test_brief_writes_a_self_contained_html_page(demo_cli: str, tmp_path: Path) -> None:
    out = tmp_path / "out" / "brief.html"
    result = CliRunner().invoke(
        main, ["--database", demo_cli, "brief", "--out", str(out), "--window", "7d"]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "Northwind Bank" in html and "Share negative" in html.replace(
        "SHARE NEGATIVE", "Share negative"
    )
    assert "<script" not in html.lower() and "<link" not in html.lower()


def test_brief_prints_a_pdf_with_chromium(demo_cli: str, tmp_path: Path) -> None:
    require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    out = tmp_path / "brief.pdf"
    result = CliRunner().invoke(main, ["--database", demo_cli, "brief", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF")


def test_brief_refuses_other_formats(demo_cli: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--database", demo_cli, "brief", "--out", str(tmp_path / "b.docx")]
    )
    assert result.exit_code == 2 and ".html or .pdf" in result.output


def test_brief_send_delivers_the_briefing_with_its_attachment(
    demo_cli: str, tmp_path: Path, replay_server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay_server.add("/hook", body=b"{}", headers={"Content-Type": "application/json"})
    port = replay_server.base.rsplit(":", 1)[1]
    monkeypatch.setenv("MONITOR_NOTIFY_URLS", f"json://127.0.0.1:{port}/hook")
    out = tmp_path / "brief.html"
    result = CliRunner().invoke(
        main, ["--database", demo_cli, "brief", "--out", str(out), "--send"]
    )
    assert result.exit_code == 0, result.output
    assert "Sent to 1 channel(s)." in result.output
    (post,) = replay_server.requests_to("/hook")
    payload = json.loads(post.body)
    assert "Northwind Bank" in payload["title"]
    assert payload["attachments"] and payload["attachments"][0]["filename"] == "brief.html"


def test_brief_send_without_a_channel_says_where_to_add_one(demo_cli: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--database", demo_cli, "brief", "--out", str(tmp_path / "b.html"), "--send"]
    )
    assert result.exit_code == 1
    assert "[alerts] notify" in result.output and "MONITOR_NOTIFY_URLS" in result.output

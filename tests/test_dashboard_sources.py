"""The Sources page: recent runs with their problems, and "Collect now" doing a real collect."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from monitor.store import Store
from tests.conftest import ROOT
from tests.replay import ReplayServer

PAGE = "monitor/dashboard/sources.py"
pytestmark = pytest.mark.usefixtures("fresh_streamlit")
FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
    b"<item><title>Northwind Bank confirms breach</title><link>https://wire.example/1</link>"
    b"<pubDate>Tue, 14 May 2024 16:00:00 GMT</pubDate></item></channel></rss>"
)


def open_sources() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_demo_mode_explains_there_are_no_live_sources(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    monkeypatch.setenv("MONITOR_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    at = open_sources()
    assert any("no live sources" in info.value for info in at.info)
    assert at.button(key="sources_collect").disabled


def test_collect_now_runs_the_sources_and_shows_the_outcome(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, replay_server: ReplayServer
) -> None:
    replay_server.add("/good.xml", body=FEED, headers={"Content-Type": "application/rss+xml"})
    replay_server.add(
        "/broken.xml",
        body=b"<html><body>Sign in</body></html>",
        headers={"Content-Type": "text/html"},
    )
    (tmp_path / "monitor.toml").write_text(
        f"""
[brand]
name = "Northwind Bank"
[[events]]
at = "2024-05-14T16:00:00Z"
label = "Breach disclosed"
kind = "disclosure"
[storage]
url = "sqlite:///monitor.db"
[sources.news]
feeds = ["{replay_server.url("/good.xml")}", "{replay_server.url("/broken.xml")}"]
""",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    at = open_sources()
    assert not at.button(key="sources_collect").disabled
    at.button(key="sources_collect").click().run()
    assert not at.exception, [e.value for e in at.exception]
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    assert store.count_mentions() == 1
    run = store.recent_runs(1)[0]
    assert (run.source, run.status, run.new) == ("news", "partial", 1)
    assert "broken.xml" in run.error
    (runs_table,) = [df.value for df in at.dataframe if "problems" in df.value.columns]
    assert runs_table.iloc[0]["source"] == "news"
    assert "broken.xml" in runs_table.iloc[0]["problems"]
    store.close()

"""`repmon collect` end to end: several sources from one monitor.toml, all replayed locally.

Reddit answers with PRAW's recorded search, the App Store with its recorded review pages,
news with two feeds carrying ETags, and Hacker News is down (HTTP 500): its failure is
recorded with the reason while every other source's mentions land. A second run stores
nothing new, sends a conditional request for every feed, and updates grown engagement.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.models import MentionQuery
from monitor.store import Store
from tests.conftest import shared_path
from tests.replay import ReplayServer
from tests.test_collector_reddit import (
    CLIENT_ID,
    SECRET,
    listing,
    recorded,
    search_children,
    serve_token,
)

SEARCH = "TestSubreddit.test_search.json"
APP = "1510826067"


def rss(items: list[tuple[str, str, str]]) -> bytes:
    entries = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{date}</pubDate><description>{title}, says the report.</description></item>"
        for title, link, date in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Dev Wire</title><link>https://wire.example/</link>{entries}</channel></rss>"
    ).encode()


@pytest.fixture
def world(
    replay_server: ReplayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ReplayServer:
    cassettes = shared_path("reddit-api", "praw-cassettes")
    reviews = shared_path("reviews", "apple-app-store-rss")
    serve_token(replay_server, recorded(cassettes, SEARCH, 0))
    replay_server.add("/r/all/search/", **listing(search_children(cassettes)))
    replay_server.add(
        "/feeds/dev.xml",
        body=rss(
            [
                (
                    "PRAW maintainers rotate leaked tokens",
                    "https://wire.example/a?utm_source=rss",
                    "Tue, 14 May 2024 16:00:00 GMT",
                )
            ]
        ),
        headers={"Content-Type": "application/rss+xml"},
        etag='"dev-1"',
    )
    replay_server.add(
        "/feeds/sec.xml",
        body=rss(
            [
                (
                    "PRAW data exposure: what we know",
                    "https://sec.example/b",
                    "Tue, 14 May 2024 18:00:00 GMT",
                )
            ]
        ),
        headers={"Content-Type": "application/rss+xml"},
        last_modified="Tue, 14 May 2024 18:00:00 GMT",
    )
    for page, name in ((1, f"{APP}_gb_1.json"), (2, f"{APP}_gb_2.json")):
        replay_server.add(
            f"/gb/rss/customerreviews/page={page}/id={APP}/sortby=mostrecent/json",
            body=(reviews / name).read_bytes(),
            headers={"Content-Type": "application/json"},
        )
    replay_server.add("/api/v1/search_by_date", status=500, body=b"upstream down")

    base = replay_server.base
    (tmp_path / "monitor.toml").write_text(
        f"""
[brand]
name = "PRAW"

[storage]
url = "sqlite:///monitor.db"

[sources.reddit]
oauth_url = "{base}"
reddit_url = "{base}"
include_comments = false
# The recordings span 2013-2016: look back over all of them so engagement is refreshed.
lookback = "4000d"
attempts = 2
backoff = "0s"

[sources.news]
feeds = ["{base}/feeds/dev.xml", "{base}/feeds/sec.xml"]

[sources.reviews]
base_url = "{base}"
apps = [{{ id = "{APP}", countries = ["gb"], name = "Trip planner" }}]

[sources.hackernews]
base_url = "{base}"
""",
        encoding="utf-8",
    )
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        f'[reddit]\nclient_id = "{CLIENT_ID}"\nclient_secret = "{SECRET}"\n', encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    for name in [n for n in __import__("os").environ if n.lower().startswith("praw")]:
        monkeypatch.delenv(name)
    return replay_server


def test_collect_stores_every_working_source_and_reports_the_broken_one(
    world: ReplayServer, tmp_path: Path
) -> None:
    first = CliRunner().invoke(main, ["collect"])
    assert first.exit_code == 1, first.output  # one source failed
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    runs = {run.source: run for run in store.recent_runs()}
    assert {name: runs[name].status for name in runs} == {
        "reddit": "ok",
        "news": "ok",
        "reviews": "ok",
        "hackernews": "failed",
    }
    assert (
        "HTTP 500" in runs["hackernews"].error
        and "/api/v1/search_by_date" in runs["hackernews"].error
    )
    assert "hackernews" in first.output and "HTTP 500" in first.output
    counts = {
        s: store.count_mentions(MentionQuery(sources=(s,))) for s in ("reddit", "news", "reviews")
    }
    assert counts["reddit"] == runs["reddit"].new == 4
    assert counts["news"] == runs["news"].new == 2
    assert counts["reviews"] == runs["reviews"].new == 4  # the recorded page holds 4 reviews
    news = store.mentions_frame(MentionQuery(sources=("news",)))
    assert set(news["url"]) == {"https://wire.example/a", "https://sec.example/b"}  # tracking gone
    assert SECRET not in first.output

    # Second run: nothing new, a conditional request for every feed, engagement updated in place.
    children = search_children(shared_path("reddit-api", "praw-cassettes"))
    grown = json.loads(json.dumps(children))
    next(c for c in grown if c["data"]["id"] == "3gpbiu")["data"]["score"] += 500
    world.add("/r/all/search/", **listing(grown))
    second = CliRunner().invoke(
        main, ["collect", "--source", "reddit", "--source", "news", "--source", "reviews"]
    )
    assert second.exit_code == 0, second.output
    runs = {run.source: run for run in store.recent_runs(3)}
    assert sum(run.new for run in runs.values()) == 0
    assert (runs["reddit"].updated, runs["reddit"].unchanged) == (1, 3)
    grown_post = store.mentions_frame(MentionQuery(sources=("reddit",)), limit=None).set_index(
        "external_id"
    )
    assert grown_post.loc["t3_3gpbiu", "score"] == 500
    assert store.count_mentions() == 10
    assert world.requests_to("/feeds/dev.xml")[-1].headers.get("if-none-match") == '"dev-1"'
    assert (
        world.requests_to("/feeds/sec.xml")[-1].headers.get("if-modified-since")
        == "Tue, 14 May 2024 18:00:00 GMT"
    )
    store.close()


def test_watch_survives_a_failing_source(world: ReplayServer, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["watch", "--every", "0s", "--times", "2"])
    assert result.exit_code == 0, result.output
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    runs = store.recent_runs()
    assert len(runs) == 8  # four sources, twice
    assert [r.status for r in runs if r.source == "hackernews"] == ["failed", "failed"]
    assert store.count_mentions() == 10
    store.close()


def test_sources_lists_every_collector_and_its_last_run(world: ReplayServer) -> None:
    CliRunner().invoke(main, ["collect", "--source", "news"])
    result = CliRunner().invoke(main, ["sources"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert set(lines) == {"hackernews", "mastodon", "news", "reddit", "reviews"}
    assert "enabled" in lines["news"] and ": ok" in lines["news"]
    assert "never run" in lines["reddit"]
    assert "enabled" not in lines["mastodon"]


def test_collect_without_sources_says_how_to_add_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "monitor.toml").write_text('[brand]\nname = "X"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["collect"])
    assert result.exit_code == 1
    assert "No source is configured" in result.output and "[sources.NAME]" in result.output


def test_an_unknown_source_name_is_named(world: ReplayServer) -> None:
    result = CliRunner().invoke(main, ["collect", "--source", "twitterx"])
    assert result.exit_code == 1
    assert "no collector is called 'twitterx'" in result.output

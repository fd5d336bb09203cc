"""Mastodon collector, end to end against loopback "instances".

No recordings of Mastodon's API are stored, so the statuses below are synthetic, in the
documented Status shape (https://docs.joinmastodon.org/entities/Status/): id, uri, url,
created_at, content (HTML), spoiler_text, language, reblog, account{acct, ...},
replies_count, reblogs_count, favourites_count, tags ... All content is fictional.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.collectors.http import HttpClient
from monitor.collectors.mastodon import default_tags  # registers the collector
from monitor.config import BrandConfig, Settings
from monitor.models import CollectionRun
from monitor.pipeline import collect
from monitor.store import Store, mentions
from tests.replay import ReplayServer, Route

NOW = datetime(2024, 5, 20, 12, tzinfo=UTC)
# The bare "NorthwindBank" alias is what lets "#NorthwindBank" in a post match the brand.
BRAND = BrandConfig(
    name="Northwind Bank",
    aliases=("@NorthwindBank", "NorthwindBank", "northwindbank.com"),
    exclude=("Northwind Traders",),
)
TAGS = ["#NorthwindBank", "northwindbreach"]
JSON = {"Content-Type": "application/json; charset=utf-8"}


def tag_path(tag: str) -> str:
    return f"/api/v1/timelines/tag/{tag}"


def status(sid: str, when: str, content: str, acct: str = "alice", **fields: Any) -> dict[str, Any]:
    server = acct.split("@", 1)[1] if "@" in acct else "social.example"
    user = acct.split("@", 1)[0]
    return {
        "id": sid,
        "created_at": when,
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "public",
        "language": "en",
        "uri": f"https://{server}/users/{user}/statuses/{sid}",
        "url": f"https://{server}/@{user}/{sid}",
        "replies_count": 1,
        "reblogs_count": 2,
        "favourites_count": 3,
        "edited_at": None,
        "content": content,
        "reblog": None,
        "account": {
            "id": "10" + sid[-3:],
            "username": user,
            "acct": acct,
            "display_name": user.title(),
            "url": f"https://{server}/@{user}",
            "followers_count": 150,
            "statuses_count": 40,
        },
        "media_attachments": [],
        "mentions": [],
        "tags": [{"name": "northwindbank", "url": "https://social.example/tags/northwindbank"}],
        "emojis": [],
        "card": None,
        "poll": None,
        **fields,
    }


HASHTAG = (
    '<a href="https://social.example/tags/NorthwindBank" class="mention hashtag" rel="tag">'
    "#<span>NorthwindBank</span></a>"
)
FIRST = status(
    "112400000000000101",
    "2024-05-14T16:20:00.000Z",
    f"<p>Just got the breach email from {HASHTAG}. Changing every password tonight.</p>"
    '<p><span class="h-card"><a href="https://social.example/@bob" class="u-url mention">'
    '@<span>bob</span></a></span> read this: <a href="https://news.example/northwind" '
    'rel="nofollow noopener" target="_blank"><span class="invisible">https://</span>'
    '<span class="">news.example/northwind</span><span class="invisible"></span></a><br>'
    '<a href="javascript:alert(1)">click</a><script>alert(2)</script></p>',
    acct="carol@other.example",
    language="en",
)
SECOND = status(
    "112400000000000205",
    "2024-05-15T07:05:30+02:00",
    f"<p>Thread on what {HASHTAG} knew &amp; when.</p>",
    spoiler_text="Data breach, long thread",
    language="de",
    replies_count=7,
    reblogs_count=20,
    favourites_count=41,
)
THIRD = status(
    "112400000000000310",
    "2024-05-16T09:00:00.000Z",
    "<p>Northwind Bank support finally called me back.</p>",
    url="javascript:alert(3)",
    language=None,
)
BOOST = status(
    "112400000000000400",
    "2024-05-16T10:00:00.000Z",
    "",
    acct="dave",
    reblog=SECOND,
)
UNRELATED = status(
    "112400000000000500",
    "2024-05-16T11:00:00.000Z",
    "<p>Northwind Traders has great coffee.</p>",
    acct="erin",
)


def body(*statuses: dict[str, Any]) -> bytes:
    return json.dumps(list(statuses)).encode()


@pytest.fixture
def other_server() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


def run_mastodon(store: Store, **options: Any) -> CollectionRun:
    settings = Settings(brand=BRAND, sources={"mastodon": options})
    with HttpClient(attempts=2, backoff=0, timeout=2) as http:
        (run,) = collect(store, settings, only=["mastodon"], http=http, now=NOW)
    return run


def stored(store: Store) -> dict[str, dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(mentions).where(mentions.c.source == "mastodon"))
        return {row.external_id: dict(row._mapping) for row in rows}


def test_first_run_stores_posts_and_second_run_asks_only_for_newer_ones(
    store: Store, replay_server: ReplayServer, other_server: ReplayServer
) -> None:
    one, two = replay_server, other_server
    one.add(tag_path("northwindbank"), body=body(UNRELATED, BOOST, SECOND, FIRST), headers=JSON)
    one.add(tag_path("northwindbreach"), body=body(THIRD, SECOND), headers=JSON)
    # The same post as the second instance knows it: its own id, the same uri.
    two.add(tag_path("northwindbank"), body=body({**FIRST, "id": "9000001"}), headers=JSON)
    two.add(tag_path("northwindbreach"), body=body(), headers=JSON)

    run = run_mastodon(store, instances=[one.base, two.base + "/"], tags=TAGS, limit=20)

    assert (run.status, run.error) == ("ok", "")
    assert (run.new, run.skipped) == (3, 1)  # UNRELATED names only the excluded look-alike
    rows = stored(store)
    assert set(rows) == {FIRST["uri"], SECOND["uri"], THIRD["uri"]}
    first = rows[FIRST["uri"]]
    assert first["text"] == (
        "Just got the breach email from #NorthwindBank. Changing every password tonight.\n\n"
        "@bob read this: https://news.example/northwind\nclick"
    )
    assert first["title"] == ""
    assert first["url"] == "https://other.example/@carol/112400000000000101"
    assert first["author"] == "carol@other.example"
    assert first["published_at"] == datetime(2024, 5, 14, 16, 20, tzinfo=UTC)
    assert (first["score"], first["comments"], first["followers"]) == (5, 1, 150)
    assert first["canonical_url"] == ""
    assert first["extra"] == {
        "instance": one.base,
        "tag": "northwindbank",
        "language": "en",
        "reblogs": 2,
        "favourites": 3,
    }
    second = rows[SECOND["uri"]]
    assert second["title"] == "Data breach, long thread"
    assert second["text"] == "Thread on what #NorthwindBank knew & when."
    assert second["published_at"] == datetime(2024, 5, 15, 5, 5, 30, tzinfo=UTC)
    assert (second["score"], second["comments"]) == (61, 7)
    assert second["author"] == f"alice@{one.base.removeprefix('http://')}"  # a local account
    third = rows[THIRD["uri"]]
    assert third["url"] == THIRD["uri"]  # the javascript: url is refused
    assert third["extra"]["language"] is None and third["extra"]["tag"] == "northwindbreach"
    for row in rows.values():
        assert "<" not in row["text"] + row["title"] and "alert" not in row["text"]
        assert row["url"].startswith("https://")
    cursor = store.get_cursor("mastodon")["since_id"]
    assert cursor == {
        f"{one.base} #northwindbank": UNRELATED["id"],
        f"{one.base} #northwindbreach": THIRD["id"],
        f"{two.base} #northwindbank": "9000001",
    }
    assert all(r.query["limit"] == ["20"] and "since_id" not in r.query for r in one.requests)

    # Second run: each timeline is asked only for what is newer than its cursor.
    one.add(tag_path("northwindbank"), body=body(), headers=JSON)
    one.add(tag_path("northwindbreach"), body=body(), headers=JSON)
    two.add(tag_path("northwindbank"), body=body(), headers=JSON)
    again = run_mastodon(store, instances=[one.base, two.base], tags=TAGS, limit=20)

    assert (again.status, again.new, again.updated) == ("ok", 0, 0)
    since = {(r.path, r.query.get("since_id", [""])[0]) for r in one.requests[2:]}
    assert since == {
        (tag_path("northwindbank"), UNRELATED["id"]),
        (tag_path("northwindbreach"), THIRD["id"]),
    }
    assert two.requests[-2].query["since_id"] == ["9000001"]
    assert "since_id" not in two.requests[-1].query  # that timeline was empty: no cursor yet


def test_full_pages_are_followed_with_max_id_down_to_the_cursor(
    store: Store, replay_server: ReplayServer
) -> None:
    first_page = body(THIRD, SECOND)
    replay_server.add(
        tag_path("northwindbank"),
        body=first_page,
        headers=JSON,
        then=[Route(body=body(FIRST), headers=JSON)],
    )

    run = run_mastodon(store, instances=[replay_server.base], tags=["northwindbank"], limit=2)

    assert (run.status, run.new) == ("ok", 3)
    first, second = replay_server.requests
    assert "max_id" not in first.query
    assert second.query["max_id"] == [SECOND["id"]] and second.query["limit"] == ["2"]
    assert store.get_cursor("mastodon")["since_id"] == {
        f"{replay_server.base} #northwindbank": THIRD["id"]
    }


BROKEN = {
    "500": ({"status": 500, "body": b"oops"}, "HTTP 500"),
    "html": ({"body": b"<!DOCTYPE html><title>Just a moment...</title>"}, "an HTML page"),
    "garbage": ({"body": b"\xff\xfe not json"}, "not JSON"),
    "auth": (
        {"status": 401, "body": b'{"error":"This API requires an authenticated user"}'},
        "HTTP 401",
    ),
    "timeout": ({"body": b"[]", "delay": 2.3}, "timed out"),
}


def test_each_broken_timeline_is_reported_with_its_url_while_the_others_land(
    store: Store, replay_server: ReplayServer
) -> None:
    # Several "instances" on one loopback server, told apart by a path prefix.
    good = replay_server.base + "/good"
    replay_server.add("/good" + tag_path("northwindbank"), body=body(SECOND, FIRST), headers=JSON)
    for name, (route, _) in BROKEN.items():
        replay_server.add(f"/{name}" + tag_path("northwindbank"), **route)
    instances = [replay_server.base + f"/{name}" for name in BROKEN]

    run = run_mastodon(store, instances=[*instances, good], tags=["northwindbank"])

    assert run.status == "partial"
    assert run.new == 2
    problems = run.error.splitlines()
    assert len(problems) == len(BROKEN)
    for problem, instance, (_, reason) in zip(problems, instances, BROKEN.values(), strict=True):
        assert f"{instance}/api/v1/timelines/tag/northwindbank" in problem
        assert reason in problem
    assert good not in run.error
    assert list(store.get_cursor("mastodon")["since_id"]) == [f"{good} #northwindbank"]


def test_every_timeline_failing_fails_the_source(store: Store, replay_server: ReplayServer) -> None:
    run = run_mastodon(store, instances=[replay_server.base], tags=TAGS)  # nothing routed

    assert run.status == "failed"
    assert run.error.count("HTTP 404") == 2
    assert store.get_cursor("mastodon") == {}


def test_default_tags_come_from_the_brand_terms(store: Store, replay_server: ReplayServer) -> None:
    assert default_tags(("Northwind Bank", "@NorthwindBank", "$NWB", "northwindbank.com")) == [
        "northwindbank",
        "nwb",
    ]
    brand = BrandConfig(name="Nordvind Bänk", aliases=("#NordvindBank",))
    replay_server.add(tag_path("nordvindb%C3%A4nk"), body=body(), headers=JSON)
    replay_server.add(tag_path("nordvindbank"), body=body(), headers=JSON)
    settings = Settings(brand=brand, sources={"mastodon": {"instances": [replay_server.base]}})
    with HttpClient(attempts=2, backoff=0, timeout=2) as http:
        (run,) = collect(store, settings, only=["mastodon"], http=http, now=NOW)

    assert (run.status, run.error) == ("ok", "")
    assert [r.path for r in replay_server.requests] == [
        tag_path("nordvindb%C3%A4nk"),
        tag_path("nordvindbank"),
    ]
    assert all(r.query == {"limit": ["40"]} for r in replay_server.requests)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit": 41}, "[sources.mastodon] limit = 41"),
        ({"instances": ["mastodon.social"]}, "[sources.mastodon] instances: 'mastodon.social'"),
        ({"instances": []}, "[sources.mastodon] instances must list at least one"),
        ({"tags": ["breach-news"]}, "[sources.mastodon] tags: 'breach-news' is not a hashtag"),
        ({"max_pages": 0}, "[sources.mastodon] max_pages = 0: must be a whole number from 1 to 10"),
        ({"tag": ["x"]}, "unknown key [sources.mastodon] 'tag'"),
    ],
)
def test_bad_options_fail_with_the_key_named(
    store: Store, options: dict[str, Any], message: str
) -> None:
    with HttpClient(attempts=2, backoff=0, timeout=2) as http:
        settings = Settings(brand=BRAND, sources={"mastodon": options})
        (run,) = collect(store, settings, only=["mastodon"], http=http, now=NOW)
    assert run.status == "failed"
    assert message in run.error
    assert http.requests == 0

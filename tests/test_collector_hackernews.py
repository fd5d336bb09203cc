"""Hacker News collector, end to end against a loopback Algolia search.

No recordings of the HN search API are stored, so the responses below are synthetic, in the
documented shape of https://hn.algolia.com/api (hits with objectID, created_at(_i), title,
url, author, points, story_text, comment_text, num_comments, story_id, story_title,
story_url, parent_id, _tags; nbHits, nbPages, page, hitsPerPage). All content is fictional.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from monitor.collectors.hackernews import search_terms  # registers it
from monitor.collectors.http import HttpClient
from monitor.config import BrandConfig, Settings
from monitor.models import CollectionRun
from monitor.pipeline import collect
from monitor.store import Store, mentions
from tests.replay import ReplayServer

NOW = datetime(2024, 5, 20, 12, tzinfo=UTC)
BRAND = BrandConfig(
    name="Northwind Bank", aliases=("@NorthwindBank", "$NWBK"), exclude=("Northwind Traders",)
)
FIRST_SINCE = int((NOW - timedelta(days=30)).timestamp())  # the default backfill
PATH = "/api/v1/search_by_date"


def at(day: int, hour: int) -> int:
    return int(datetime(2024, 5, day, hour, tzinfo=UTC).timestamp())


def story(object_id: int, created: int, title: str, **fields: Any) -> dict[str, Any]:
    return {
        "objectID": str(object_id),
        "created_at": datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "created_at_i": created,
        "title": title,
        "url": "https://example.com/northwind-bank-breach",
        "author": "fictional_reader",
        "points": 12,
        "story_text": None,
        "comment_text": None,
        "num_comments": 3,
        "story_id": object_id,
        "story_title": None,
        "story_url": None,
        "parent_id": None,
        "_tags": ["story", "author_fictional_reader", f"story_{object_id}"],
        **fields,
    }


def comment(
    object_id: int, created: int, text: str, story_id: int, **fields: Any
) -> dict[str, Any]:
    return {
        "objectID": str(object_id),
        "created_at": datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "created_at_i": created,
        "title": None,
        "url": None,
        "author": "another_reader",
        "points": None,
        "story_text": None,
        "comment_text": text,
        "num_comments": None,
        "story_id": story_id,
        "story_title": "Northwind Bank discloses a data breach",
        "story_url": "https://example.com/northwind-bank-breach",
        "parent_id": story_id,
        "_tags": ["comment", "author_another_reader", f"story_{story_id}"],
        **fields,
    }


def page(hits: list[dict[str, Any]], number: int = 0, pages: int = 1) -> bytes:
    return json.dumps(
        {
            "hits": hits,
            "nbHits": len(hits) + 100 * (pages - 1),
            "page": number,
            "nbPages": pages,
            "hitsPerPage": 100,
            "exhaustiveNbHits": True,
            "query": "",
            "params": "",
            "processingTimeMS": 1,
        }
    ).encode()


def route(term: str, since: int, number: int = 0) -> str:
    """Return the exact path and query the collector sends for one page of one term."""
    params = {
        "query": f'"{term}"',
        "tags": "(story,comment)",
        "numericFilters": f"created_at_i>{since}",
        "hitsPerPage": "100",
        "page": str(number),
    }
    return f"{PATH}?{httpx.QueryParams(params)}"


def serve(
    server: ReplayServer, term: str, since: int, body: bytes, number: int = 0, **kw: Any
) -> None:
    server.add(
        route(term, since, number), body=body, headers={"Content-Type": "application/json"}, **kw
    )


def run_hn(store: Store, server: ReplayServer, **options: Any) -> CollectionRun:
    settings = Settings(brand=BRAND, sources={"hackernews": {"base_url": server.base, **options}})
    with HttpClient(attempts=2, backoff=0, timeout=2) as http:
        (run,) = collect(store, settings, only=["hackernews"], http=http, now=NOW)
    return run


def stored(store: Store) -> dict[str, dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(mentions).where(mentions.c.source == "hackernews"))
        return {row.external_id: dict(row._mapping) for row in rows}


BREACH = story(
    40000001,
    at(14, 17),
    "Northwind Bank discloses a data breach affecting card holders",
    points=120,
    num_comments=45,
)
ASK = story(
    40000002,
    at(15, 9),
    "Ask HN: Anyone else locked out of Northwind Bank?",
    url=None,
    story_text="<p>Since the breach notice my login fails.<p>Support says &quot;wait&quot; &amp; "
    '<a href="https://example.com/status" rel="nofollow">their status page</a> is green.',
    _tags=["story", "ask_hn", "author_fictional_reader", "story_40000002"],
)
COMMENT = comment(
    40000003,
    at(16, 8),
    "I moved my savings off Northwind Bank today.<p>Two-factor was SMS only &#x2F; no app."
    "<script>alert(1)</script>",
    story_id=40000001,
)
OFF_TOPIC = comment(40000004, at(16, 9), "Unrelated: the login page looks fine to me.", 40000001)
TRADERS = story(
    40000005, at(17, 10), "Northwind Traders opens a new warehouse", url="javascript:alert(1)"
)
HANDLE = comment(40000006, at(18, 7), "@NorthwindBank please answer your support mail", 40000001)


def test_first_run_stores_stories_and_comments_and_second_run_refreshes_points(
    store: Store, replay_server: ReplayServer
) -> None:
    # Newest first, as search_by_date answers; the name spans two pages.
    serve(replay_server, "Northwind Bank", FIRST_SINCE, page([OFF_TOPIC, COMMENT], 0, 2))
    serve(replay_server, "Northwind Bank", FIRST_SINCE, page([ASK, BREACH], 1, 2), number=1)
    serve(replay_server, "NorthwindBank", FIRST_SINCE, page([HANDLE, TRADERS, COMMENT]))
    serve(replay_server, "NWBK", FIRST_SINCE, page([]))

    run = run_hn(store, replay_server)

    assert (run.status, run.error) == ("ok", "")
    # OFF_TOPIC and TRADERS do not name the brand (only an exclusion): the pipeline skips them.
    assert (run.new, run.skipped) == (4, 2)
    rows = stored(store)
    assert set(rows) == {"40000001", "40000002", "40000003", "40000006"}
    breach = rows["40000001"]
    assert breach["title"] == "Northwind Bank discloses a data breach affecting card holders"
    assert breach["text"] == ""
    assert (breach["score"], breach["comments"]) == (120, 45)
    assert breach["author"] == "fictional_reader"
    assert breach["url"] == "https://news.ycombinator.com/item?id=40000001"
    assert breach["canonical_url"] == ""
    assert breach["published_at"] == datetime(2024, 5, 14, 17, tzinfo=UTC)
    assert breach["extra"] == {
        "kind": "story",
        "story_id": 40000001,
        "story_url": "https://example.com/northwind-bank-breach",
    }
    ask = rows["40000002"]
    assert ask["text"] == (
        'Since the breach notice my login fails.\n\nSupport says "wait" & their status page is green.'
    )
    assert ask["extra"]["story_url"] == ""
    reply = rows["40000003"]
    assert reply["title"] == ""
    assert (
        reply["text"]
        == "I moved my savings off Northwind Bank today.\n\nTwo-factor was SMS only / no app."
    )
    assert (reply["score"], reply["comments"]) == (None, None)
    assert reply["extra"] == {
        "kind": "comment",
        "story_id": 40000001,
        "story_url": "https://example.com/northwind-bank-breach",
        "story_title": "Northwind Bank discloses a data breach",
        "parent_id": 40000001,
    }
    assert reply["url"] == "https://news.ycombinator.com/item?id=40000003"
    for row in rows.values():
        assert "<" not in row["text"] and "alert" not in row["text"]
        assert "javascript:" not in row["url"] + json.dumps(row["extra"])
    newest = at(18, 7) - 86400  # newest hit minus the default lookback of 1d
    assert store.get_cursor("hackernews")["since"] == {
        "Northwind Bank": at(16, 9) - 86400,
        "NorthwindBank": newest,
        "NWBK": FIRST_SINCE,
    }

    # Second run: only the lookback window again; the story gained points and comments.
    grown = {**BREACH, "points": 250, "num_comments": 90}
    serve(replay_server, "Northwind Bank", at(16, 9) - 86400, page([OFF_TOPIC, COMMENT]))
    serve(replay_server, "NorthwindBank", newest, page([HANDLE, grown]))
    serve(replay_server, "NWBK", FIRST_SINCE, page([]))

    again = run_hn(store, replay_server)

    assert (again.status, again.new, again.updated, again.unchanged) == ("ok", 0, 1, 2)
    assert (stored(store)["40000001"]["score"], stored(store)["40000001"]["comments"]) == (250, 90)
    queries = [r.query["query"][0] for r in replay_server.requests]
    assert queries.count('"Northwind Bank"') == 3 and '"@NorthwindBank"' not in queries


def test_paging_stops_at_max_pages(store: Store, replay_server: ReplayServer) -> None:
    serve(replay_server, "Northwind Bank", FIRST_SINCE, page([COMMENT], 0, 5))
    serve(replay_server, "Northwind Bank", FIRST_SINCE, page([BREACH], 1, 5), number=1)
    for term in ("NorthwindBank", "NWBK"):
        serve(replay_server, term, FIRST_SINCE, page([]))

    run = run_hn(store, replay_server, max_pages=2)

    assert (run.status, run.new) == ("ok", 2)
    assert not any(r.query.get("page") == ["2"] for r in replay_server.requests)


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (503, b"Service Unavailable", "HTTP 503"),
        (200, b"<html><body>Rate limited</body></html>", "HTML page"),
        (200, b"\x00\x01garbage", "not JSON"),
        (200, b'{"message": "no hits here"}', "without a 'hits' list"),
    ],
)
def test_one_broken_query_is_reported_with_its_url_while_the_others_land(
    store: Store, replay_server: ReplayServer, status: int, body: bytes, reason: str
) -> None:
    serve(replay_server, "Northwind Bank", FIRST_SINCE, page([COMMENT, BREACH]))
    replay_server.add(route("NorthwindBank", FIRST_SINCE), status=status, body=body)
    serve(replay_server, "NWBK", FIRST_SINCE, page([]))

    run = run_hn(store, replay_server)

    assert run.status == "partial"
    assert run.new == 2
    assert replay_server.url(PATH) + "?query=%22NorthwindBank%22" in run.error
    assert reason in run.error and "'NorthwindBank'" in run.error
    assert "NorthwindBank" not in store.get_cursor("hackernews")["since"]


def test_every_query_failing_fails_the_source(store: Store, replay_server: ReplayServer) -> None:
    run = run_hn(store, replay_server)  # nothing routed: every query is a 404

    assert run.status == "failed"
    assert run.error.count("HTTP 404") == 3
    assert store.get_cursor("hackernews") == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_pages": 11}, "[sources.hackernews] max_pages = 11"),
        ({"lookback": "soon"}, "[sources.hackernews] lookback = 'soon' is not a duration"),
        ({"base_url": "javascript:alert(1)"}, "[sources.hackernews] base_url must be"),
        ({"query": "x"}, "unknown key [sources.hackernews] 'query'"),
    ],
)
def test_bad_options_fail_with_the_key_named(
    store: Store, options: dict[str, Any], message: str
) -> None:
    settings = Settings(brand=BRAND, sources={"hackernews": options})
    with HttpClient(attempts=2, backoff=0, timeout=2) as http:
        (run,) = collect(store, settings, only=["hackernews"], http=http, now=NOW)
    assert run.status == "failed"
    assert message in run.error
    assert http.requests == 0


def test_search_terms_drop_sigils_and_repeats() -> None:
    assert search_terms(("Northwind Bank", "@NorthwindBank", "$NWBK", "northwind bank")) == [
        "Northwind Bank",
        "NorthwindBank",
        "NWBK",
    ]

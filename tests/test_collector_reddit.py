"""Reddit collector, end to end: the real PRAW code talks to a loopback server replaying real
responses recorded by PRAW's own integration tests (../shared/data/reddit-api, see its README).

The recordings are replayed as they are, except where a test says it builds a variant
("edited"): a listing sorted newest first the way sort=new answers (the recorded search was
sort=relevance), split into pages, or with a score changed to show engagement growing.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import time
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import praw.config
import prawcore.sessions
import pytest
import sqlalchemy as sa

import monitor.collectors.reddit  # registers the collector
from monitor.collectors import CollectContext, CollectorError
from monitor.collectors.http import HttpClient
from monitor.config import BrandConfig, Settings
from monitor.models import CollectionRun
from monitor.pipeline import collect
from monitor.store import Store, mentions
from tests.conftest import shared_path
from tests.replay import ReplayServer, Route

CLIENT_ID = "repmon-test-app"
SECRET = "fake-secret-Zq8Rv3wT"  # recognisable: it must never appear in an error
PRAW_BRAND = BrandConfig(name="PRAW")
NOW = datetime(2016, 3, 18, tzinfo=UTC)

SEARCH = "TestSubreddit.test_search.json"
THREAD_SMALL = "TestSubmission.test_comments.json"  # r/redditdev 2gmzqe, 2 comments
THREAD_BIG = "TestMore.test_comments.json"  # r/funny 3hahrw, 476 comments + "more" stubs
ASKREDDIT_COMMENTS = "TestSubredditListings.test_comments.json"
EMPTY_LISTING = "TestComment.test_invalid.json"


# -- replaying the cassettes ----------------------------------------------------------------------


@pytest.fixture
def cassettes() -> Path:
    return shared_path("reddit-api", "praw-cassettes")


@cache
def _interactions(path: Path) -> list[dict[str, Any]]:
    interactions: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))[
        "interactions"
    ]
    return interactions


def recorded(cassettes: Path, name: str, index: int) -> dict[str, Any]:
    """Return the recorded response `index` of cassette `name` as ReplayServer.add() keywords."""
    response = _interactions(cassettes / name)[index]["response"]
    keep = ("content-type", "www-authenticate", "retry-after")
    headers = {
        key: values[0]
        for key, values in response["headers"].items()
        if key.lower() in keep or key.lower().startswith("x-ratelimit")
    }
    return {
        "status": response["status"]["code"],
        "body": response["body"]["string"].encode("utf-8"),
        "headers": headers,
    }


def recorded_json(cassettes: Path, name: str, index: int) -> Any:
    return json.loads(recorded(cassettes, name, index)["body"])


def listing(children: list[dict[str, Any]], after: str | None = None) -> dict[str, Any]:
    """Return the keywords to serve a Reddit Listing of `children` (edited from recordings)."""
    body = {"kind": "Listing", "data": {"children": children, "after": after, "before": None}}
    return {"body": json.dumps(body).encode(), "headers": {"Content-Type": "application/json"}}


def search_children(cassettes: Path) -> list[dict[str, Any]]:
    """The recorded search results, newest first, as sort=new returns them (edited order)."""
    children = recorded_json(cassettes, SEARCH, 1)["data"]["children"]
    return sorted(children, key=lambda c: c["data"]["created_utc"], reverse=True)


def thread_children(cassettes: Path) -> list[dict[str, Any]]:
    """The two recorded threads' submissions, newest first, as a search would list them."""
    big = recorded_json(cassettes, THREAD_BIG, 2)[0]["data"]["children"]
    small = recorded_json(cassettes, THREAD_SMALL, 1)[0]["data"]["children"]
    return big + small


def tree_comments(cassettes: Path, name: str, index: int) -> list[dict[str, Any]]:
    """Every t1 in a recorded comment page, depth first (the "more" stubs left out)."""
    found: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        for child in node["data"]["children"]:
            if child["kind"] == "t1":
                found.append(child["data"])
                if child["data"]["replies"]:
                    walk(child["data"]["replies"])

    walk(recorded_json(cassettes, name, index)[1])
    return found


def serve_token(server: ReplayServer, route: dict[str, Any]) -> None:
    """Serve Reddit's token endpoint. prawcore asks it for "Connection: close"; the answer
    says so too (as RFC 9112 has it), or the client may reuse a socket being closed."""
    route = copy.deepcopy(route)
    route["headers"]["Connection"] = "close"
    server.add("/api/v1/access_token", **route)


@pytest.fixture
def reddit(replay_server: ReplayServer, cassettes: Path) -> ReplayServer:
    """The replay server with Reddit's token endpoint answering as recorded."""
    serve_token(replay_server, recorded(cassettes, SEARCH, 0))
    return replay_server


@pytest.fixture(autouse=True)
def no_praw_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep this machine's praw_* variables and praw.ini files out of the tests."""
    for name in list(os.environ):
        if name.lower().startswith("praw"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("APPDATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(praw.config.Config, "CONFIG", None)  # re-read praw.ini from here


def make_settings(
    server: ReplayServer,
    brand: BrandConfig = PRAW_BRAND,
    secrets: dict[str, Any] | None = None,
    **options: Any,
) -> Settings:
    table = {
        "oauth_url": server.base,
        "reddit_url": server.base,
        "attempts": 3,
        "backoff": "0s",
        "timeout": 5,
        **options,
    }
    if secrets is None:
        secrets = {"client_id": CLIENT_ID, "client_secret": SECRET}
    return Settings(brand=brand, sources={"reddit": table}, secrets={"reddit": secrets})


def run_reddit(
    store: Store,
    server: ReplayServer,
    brand: BrandConfig = PRAW_BRAND,
    secrets: dict[str, Any] | None = None,
    now: datetime = NOW,
    **options: Any,
) -> CollectionRun:
    settings = make_settings(server, brand, secrets, **options)
    (run,) = collect(store, settings, only=["reddit"], now=now)
    return run


def stored(store: Store) -> dict[str, dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(mentions).where(mentions.c.source == "reddit"))
        return {row.external_id: dict(row._mapping) for row in rows}


def gets(server: ReplayServer, path: str) -> list[dict[str, list[str]]]:
    return [r.query for r in server.requests_to(path)]


def names(texts: list[dict[str, Any]], pattern: str, flags: int = re.IGNORECASE) -> set[str]:
    return {t["name"] for t in texts if re.search(pattern, t["body"], flags)}


# -- posts ------------------------------------------------------------------------------------------


def test_matched_posts_are_stored_with_their_fields(
    store: Store, reddit: ReplayServer, cassettes: Path
) -> None:
    reddit.add("/r/all/search/", **listing(search_children(cassettes)))

    run = run_reddit(store, reddit, include_comments=False)

    assert (run.status, run.error) == ("ok", "")
    # "PRAW" in capitals is the brand (an acronym matches case-sensitively): "Praw, opening a
    # user page" and the Japanese post are found by the search but skipped.
    assert (run.new, run.skipped) == (4, 2)
    rows = stored(store)
    assert set(rows) == {"t3_3gpbiu", "t3_3x4kt2", "t3_3b4erh", "t3_3qc02b"}
    post = rows["t3_3gpbiu"]
    raw = next(c["data"] for c in search_children(cassettes) if c["data"]["id"] == "3gpbiu")
    permalink = "/r/redditdev/comments/3gpbiu/prawoauth2util_problem_using_get_banned_raise/"
    assert post["url"] == "https://www.reddit.com" + permalink  # "?ref=search_posts" dropped
    assert post["canonical_url"] == ""
    assert post["title"] == raw["title"] and post["text"] == raw["selftext"]
    assert post["author"] == "dClauzel"
    assert post["published_at"] == datetime.fromtimestamp(1439370514, UTC)
    assert post["published_at"].tzinfo is not None
    assert (post["score"], post["comments"]) == (0, 21)
    assert post["extra"] == {
        "kind": "submission",
        "subreddit": "redditdev",
        "permalink": permalink,
        "upvote_ratio": None,  # 2016 search results did not carry it
        "over_18": False,
    }
    assert rows["t3_3b4erh"]["extra"]["subreddit"] == "learnpython"

    (token,) = reddit.requests_to("/api/v1/access_token")
    assert token.method == "POST"
    basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert token.headers["authorization"] == f"Basic {basic}"
    assert parse_qs(token.body.decode()) == {"grant_type": ["client_credentials"]}
    (search,) = reddit.requests_to("/r/all/search/")
    assert search.headers["authorization"] == "bearer <ACCESS_TOKEN>"
    assert search.headers["user-agent"].startswith("python:repmon:")
    assert search.query["q"] == ['"PRAW"']
    assert search.query["sort"] == ["new"]
    assert search.query["restrict_sr"] == ["False"]


def test_search_query_ors_name_and_aliases_and_leaves_exclusions_to_the_matcher(
    store: Store, reddit: ReplayServer, cassettes: Path
) -> None:
    reddit.add("/r/all/search/", **recorded(cassettes, EMPTY_LISTING, 1))
    brand = BrandConfig(
        name="Northwind Bank", aliases=("Northwind", "@NorthwindBank"), exclude=("Traders",)
    )

    run = run_reddit(store, reddit, brand=brand, include_comments=False)

    assert run.status == "ok"
    assert gets(reddit, "/r/all/search/")[0]["q"] == ['"Northwind Bank" OR "Northwind"']


def test_later_runs_page_only_down_to_the_cursor_minus_lookback_and_update_in_place(
    store: Store, reddit: ReplayServer, cassettes: Path
) -> None:
    children = search_children(cassettes)  # 2016-03-17, 2015-12-16, 2015-10-26, 2015-08...
    first_page, second_page = children[:3], children[3:]

    def serve(page_one: list[dict[str, Any]]) -> None:
        reddit.requests.clear()
        route = Route(**listing(page_one, after=page_one[-1]["data"]["name"]))
        route.then = [Route(**listing(second_page))]
        reddit.routes["/r/all/search/"] = route

    serve(first_page)
    first = run_reddit(store, reddit, include_comments=False, lookback="100d")
    assert (first.status, first.new) == ("ok", 4)
    pages = gets(reddit, "/r/all/search/")
    assert len(pages) == 2 and pages[1]["after"] == ["t3_3qc02b"]  # paged on "after"
    newest = store.get_cursor("reddit")["newest_utc"]
    assert newest == {"search:all": 1458221634.0}

    # Next run: 100 days before the newest post seen is 2015-12-08, inside the first page,
    # so the second page is never asked for; the one matched post in the window comes again.
    serve(first_page)
    second = run_reddit(store, reddit, include_comments=False, lookback="100d")
    assert (second.status, second.new, second.updated, second.unchanged) == ("ok", 0, 0, 1)
    assert second.skipped == 1  # the Japanese post, again
    assert len(gets(reddit, "/r/all/search/")) == 1

    # Its score grows (edited): the row is updated in place, never duplicated.
    grown = copy.deepcopy(first_page)
    post = next(c["data"] for c in grown if c["data"]["name"] == "t3_3x4kt2")
    post["score"], post["num_comments"] = 40, 9
    serve(grown)
    third = run_reddit(store, reddit, include_comments=False, lookback="100d")
    assert (third.new, third.updated, third.unchanged) == (0, 1, 0)
    rows = stored(store)
    assert len(rows) == 4
    assert (rows["t3_3x4kt2"]["score"], rows["t3_3x4kt2"]["comments"]) == (40, 9)
    assert rows["t3_3x4kt2"]["engagement"] == 49
    assert rows["t3_3x4kt2"]["published_at"] == datetime.fromtimestamp(1450299786, UTC)
    with store.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(mentions)).scalar_one()
    assert count == 4


# -- comments -------------------------------------------------------------------------------------


def test_comments_of_matched_threads_that_name_the_brand_are_kept(
    store: Store, reddit: ReplayServer, cassettes: Path
) -> None:
    reddit.add("/r/all/search/", **listing(thread_children(cassettes)))
    reddit.add("/comments/3hahrw/", **recorded(cassettes, THREAD_BIG, 2))
    reddit.add("/comments/2gmzqe/", **recorded(cassettes, THREAD_SMALL, 1))
    brand = BrandConfig(name="PRAW", aliases=("Ba Dum Tsss", "rimshot", "proxy settings"))

    run = run_reddit(store, reddit, brand=brand)

    assert (run.status, run.error) == ("ok", "")
    small = tree_comments(cassettes, THREAD_SMALL, 1)
    big = tree_comments(cassettes, THREAD_BIG, 2)
    assert (len(small), len(big)) == (2, 476)
    expected = names(small + big, r"(?<!\w)(ba dum tsss|rimshot|proxy settings)(?!\w)")
    expected |= names(small + big, r"(?<!\w)PRAW(?!\w)", 0)
    assert "t1_cklfmye" in expected and "t1_cklhv0f" not in expected
    assert len(expected) > 5
    rows = stored(store)
    assert set(rows) == {"t3_3hahrw", "t3_2gmzqe"} | expected
    assert run.new == len(rows)
    assert run.skipped == len(small) + len(big) - len(expected)

    comment = rows["t1_cklfmye"]
    permalink = "/r/redditdev/comments/2gmzqe/praw_https_enabled_praw_testing_needed/cklfmye/"
    assert comment["url"] == "https://www.reddit.com" + permalink
    assert comment["title"] == ""
    assert comment["text"] == small[0]["body"]
    assert comment["author"] == "paneer_burrito"
    assert comment["published_at"] == datetime.fromtimestamp(1411005112, UTC)
    assert comment["score"] == 1 and comment["comments"] is None
    assert comment["extra"] == {
        "kind": "comment",
        "subreddit": "redditdev",
        "permalink": permalink,
        "link_id": "t3_2gmzqe",
        "parent_id": "t3_2gmzqe",
        "thread_title": "[PRAW] HTTPS enabled PRAW testing needed",
    }
    thread = rows["t3_3hahrw"]
    assert (thread["score"], thread["comments"]) == (11703, 543)
    assert thread["extra"]["upvote_ratio"] == 0.97
    assert thread["extra"]["link_url"] == "http://i.imgur.com/eoF76hj.gifv"
    assert thread["text"] == ""

    # One request per thread: "load more comments" stubs are not followed.
    assert len(reddit.requests_to("/comments/3hahrw/")) == 1
    assert len(reddit.requests_to("/comments/2gmzqe/")) == 1
    assert reddit.requests_to("/api/morechildren/") == []


def test_max_threads_bounds_the_threads_whose_comments_are_read(
    store: Store, reddit: ReplayServer, cassettes: Path
) -> None:
    reddit.add("/r/all/search/", **listing(thread_children(cassettes)))
    reddit.add("/comments/3hahrw/", **recorded(cassettes, THREAD_BIG, 2))
    brand = BrandConfig(name="PRAW", aliases=("Ba Dum Tsss",))

    run = run_reddit(store, reddit, brand=brand, max_threads=1)

    assert run.status == "ok"
    assert len(reddit.requests_to("/comments/3hahrw/")) == 1  # the newest matched thread
    assert reddit.requests_to("/comments/2gmzqe/") == []


def test_comments_of_configured_subreddits_that_name_the_brand_are_kept(
    store: Store, reddit: ReplayServer, cassettes: Path
) -> None:
    reddit.add("/r/AskReddit/search/", **recorded(cassettes, EMPTY_LISTING, 1))
    reddit.add("/r/AskReddit/comments/", **recorded(cassettes, ASKREDDIT_COMMENTS, 1))
    brand = BrandConfig(name="shower")

    run = run_reddit(store, reddit, brand=brand, subreddits=["r/AskReddit"], search_sitewide=False)

    assert (run.status, run.error) == ("ok", "")
    listed = [
        c["data"] for c in recorded_json(cassettes, ASKREDDIT_COMMENTS, 1)["data"]["children"]
    ]
    expected = names(listed, r"(?<!\w)shower(?!\w)")
    assert expected
    rows = stored(store)
    assert set(rows) == expected
    assert run.skipped == len(listed) - len(expected)
    (search,) = reddit.requests_to("/r/AskReddit/search/")
    assert search.query["restrict_sr"] == ["True"] and search.query["sort"] == ["new"]
    assert reddit.requests_to("/r/all/search/") == []

    some = rows[sorted(expected)[0]]
    raw = next(c for c in listed if c["name"] == some["external_id"])
    link = raw["link_id"].removeprefix("t3_")
    assert some["url"] == f"https://www.reddit.com/r/AskReddit/comments/{link}/_/{raw['id']}/"
    assert some["extra"]["thread_title"] == raw["link_title"]
    assert some["extra"]["kind"] == "comment"
    newest = max(c["created_utc"] for c in listed)
    assert store.get_cursor("reddit")["newest_utc"] == {"comments:r/askreddit": newest}


# -- credentials ---------------------------------------------------------------------------------


def test_credentials_reddit_refuses_fail_the_run_naming_the_secrets_to_fix(
    store: Store, replay_server: ReplayServer, cassettes: Path
) -> None:
    unauthorized = recorded(cassettes, "TestAuthImplicit.test_implicit__with_invalid_token.json", 0)
    del unauthorized["headers"]["www-authenticate"]  # the token endpoint answers without it
    serve_token(replay_server, unauthorized)

    run = run_reddit(store, replay_server)

    assert run.status == "failed"
    assert "HTTP 401" in run.error
    assert "[reddit] client_id and client_secret" in run.error
    assert ".streamlit/secrets.toml" in run.error and "prefs/apps" in run.error
    assert SECRET not in run.error and "***" not in run.error  # never there to be redacted
    assert len(replay_server.requests_to("/api/v1/access_token")) == 1
    assert replay_server.requests_to("/r/all/search/") == []
    assert store.get_cursor("reddit") == {}


def test_collector_error_itself_carries_no_secret(
    replay_server: ReplayServer, cassettes: Path
) -> None:
    # The pipeline redacts secrets, which would hide a leak: check the collector's own words.
    serve_token(
        replay_server,
        recorded(cassettes, "TestAuthImplicit.test_implicit__with_invalid_token.json", 0),
    )
    settings = make_settings(replay_server)
    with HttpClient() as http:
        ctx = CollectContext(
            source="reddit",
            brand=settings.brand,
            options=settings.sources["reddit"],
            secrets=settings.secrets,
            cursor={},
            http=http,
            now=NOW,
        )
        with pytest.raises(CollectorError) as failure:
            list(monitor.collectors.reddit.RedditCollector().collect(ctx))
    assert "client_secret" in str(failure.value)
    assert SECRET not in str(failure.value) and CLIENT_ID not in str(failure.value)


def test_a_token_reddit_rejects_on_the_api_fails_naming_the_secrets(
    store: Store, reddit: ReplayServer, cassettes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # prawcore answers a 401 by fetching a new token and trying twice more, sleeping a random
    # 0-6 s in between: fine in a scheduled job, too slow for a test.
    monkeypatch.setattr(prawcore.sessions.FiniteRetryStrategy, "_sleep_seconds", lambda _: None)
    reddit.add(
        "/r/all/search/",
        **recorded(cassettes, "TestAuthImplicit.test_implicit__with_invalid_token.json", 0),
    )

    run = run_reddit(store, reddit)

    assert run.status == "failed"
    assert "client_id and client_secret" in run.error and SECRET not in run.error
    assert len(reddit.requests_to("/r/all/search/")) == 3  # prawcore's own 401 retries
    assert len(reddit.requests_to("/api/v1/access_token")) == 3  # a new token each time


def test_login_reddit_refuses_names_username_and_password(
    store: Store, replay_server: ReplayServer
) -> None:
    # How Reddit answers a wrong password: HTTP 200 with an error (made up from the docs).
    invalid_grant = {"body": b'{"error": "invalid_grant"}'}
    serve_token(replay_server, {**invalid_grant, "headers": {"Content-Type": "application/json"}})
    secrets = {
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "username": "monitor-bot",
        "password": "hunter2-Pw9",
    }

    run = run_reddit(store, replay_server, secrets=secrets)

    assert run.status == "failed"
    assert "invalid_grant" in run.error and "username and password" in run.error
    (token,) = replay_server.requests_to("/api/v1/access_token")
    form = parse_qs(token.body.decode())
    assert form["grant_type"] == ["password"] and form["username"] == ["monitor-bot"]


def test_missing_credentials_say_where_to_put_them(
    store: Store, replay_server: ReplayServer
) -> None:
    run = run_reddit(store, replay_server, secrets={})

    assert run.status == "failed"
    assert "[reddit] client_id and client_secret" in run.error
    assert ".streamlit/secrets.toml" in run.error and "praw_client_id" in run.error
    assert replay_server.requests == []


def test_praw_environment_variables_are_used_when_secrets_have_none(
    store: Store, reddit: ReplayServer, cassettes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("praw_client_id", "env-id")
    monkeypatch.setenv("praw_client_secret", "env-secret")
    reddit.add("/r/all/search/", **recorded(cassettes, EMPTY_LISTING, 1))

    run = run_reddit(store, reddit, secrets={}, include_comments=False)

    assert run.status == "ok"
    (token,) = reddit.requests_to("/api/v1/access_token")
    assert (
        token.headers["authorization"] == "Basic " + base64.b64encode(b"env-id:env-secret").decode()
    )


# -- one input failing ---------------------------------------------------------------------------


def test_a_subreddit_reddit_refuses_is_a_warning_and_the_others_still_land(
    store: Store, reddit: ReplayServer, cassettes: Path
) -> None:
    children = search_children(cassettes)
    reddit.add("/r/all/search/", **listing(children))
    reddit.add(
        "/r/ferguson/search/", **recorded(cassettes, "TestSubredditQuarantine.test_opt_in.json", 1)
    )
    reddit.add(
        "/r/secretclub/search/",
        **recorded(cassettes, "TestInbox.test_message__unauthorized.json", 1),
    )
    reddit.add(
        "/r/gone/search/", **recorded(cassettes, "TestSubreddit.test_traffic__not_public.json", 1)
    )
    redditdev = [c for c in children if c["data"]["subreddit"] == "redditdev"]
    reddit.add("/r/redditdev/search/", **listing(redditdev))
    reddit.add("/r/redditdev/comments/", **recorded(cassettes, EMPTY_LISTING, 1))

    run = run_reddit(
        store, reddit, subreddits=["ferguson", "secretclub", "gone", "redditdev"], max_threads=0
    )

    assert run.status == "partial"
    problems = run.error.splitlines()
    assert len(problems) == 3
    assert problems[0].startswith("r/ferguson: access denied (HTTP 403)")
    assert "quarantined" in problems[0] and "[sources.reddit] subreddits" in problems[0]
    assert problems[1].startswith("r/secretclub: access denied (HTTP 403)")
    assert problems[2].startswith("r/gone: not found (HTTP 404)")
    assert run.new == 4  # the site-wide and r/redditdev posts, each stored once
    assert set(stored(store)) == {"t3_3gpbiu", "t3_3x4kt2", "t3_3b4erh", "t3_3qc02b"}
    # A subreddit that refused its search is not asked for its comments.
    assert reddit.requests_to("/r/ferguson/comments/") == []
    assert len(reddit.requests_to("/r/ferguson/search/")) == 1  # a 403 is not retried
    assert len(reddit.requests_to("/r/redditdev/comments/")) == 1
    cursor = store.get_cursor("reddit")["newest_utc"]
    assert set(cursor) == {"search:all", "search:r/redditdev"}


def test_when_every_input_is_refused_the_run_fails(
    store: Store, reddit: ReplayServer, cassettes: Path
) -> None:
    reddit.add(
        "/r/ferguson/search/", **recorded(cassettes, "TestSubredditQuarantine.test_opt_in.json", 1)
    )

    run = run_reddit(store, reddit, subreddits=["ferguson"], search_sitewide=False)

    assert run.status == "failed"
    assert "no Reddit input could be read" in run.error and "r/ferguson" in run.error


# -- Reddit unwell -------------------------------------------------------------------------------


def test_server_errors_are_retried_then_the_run_fails_with_the_status(
    store: Store, reddit: ReplayServer, cassettes: Path
) -> None:
    reddit.add(
        "/r/all/search/", **recorded(cassettes, "TestModNotes.test_delete_note__all_notes.json", 2)
    )

    started = time.monotonic()
    run = run_reddit(store, reddit, attempts=3)

    assert run.status == "failed"
    assert "site-wide search" in run.error
    assert "HTTP 500 Internal Server Error (gave up after 3 attempts)" in run.error
    assert len(reddit.requests_to("/r/all/search/")) == 3  # prawcore adds no retries of its own
    assert time.monotonic() - started < 3
    assert store.get_cursor("reddit") == {}


@pytest.mark.parametrize(
    ("cassette", "index"),
    [
        ("TestReddit.test_bad_request_without_json_text_html_response.json", 1),
        ("TestReddit.test_bad_request_without_json_text_plain_response.json", 1),
        ("TestModNotes.test_delete_note__all_notes.json", 18),  # {"message", "error"}
        ("TestModNotes.test_delete_note__all_notes.json", 4),  # {"fields", "reason", ...}
    ],
)
def test_a_bad_request_fails_the_run_at_once(
    store: Store, reddit: ReplayServer, cassettes: Path, cassette: str, index: int
) -> None:
    reddit.add("/r/all/search/", **recorded(cassettes, cassette, index))

    run = run_reddit(store, reddit)

    assert run.status == "failed"
    assert "site-wide search" in run.error and "HTTP 400" in run.error
    assert "<html>" not in run.error
    assert len(reddit.requests_to("/r/all/search/")) == 1  # a 400 will not pass on retry


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limits_and_outages_that_pass_are_retried(
    store: Store, reddit: ReplayServer, cassettes: Path, status: int
) -> None:
    route = reddit.add(
        "/r/all/search/",
        status=status,
        body=b'{"message": "Too Many Requests", "error": 429}',
        headers={"Content-Type": "application/json", "Retry-After": "0"},
    )
    route.then = [Route(**listing(search_children(cassettes)))]

    run = run_reddit(store, reddit, include_comments=False)

    assert (run.status, run.new) == ("ok", 4)
    assert len(reddit.requests_to("/r/all/search/")) == 2


def test_reddit_rate_limit_headers_pace_the_requests(
    store: Store, reddit: ReplayServer, cassettes: Path
) -> None:
    exhausted = {"x-ratelimit-remaining": "0", "x-ratelimit-used": "600", "x-ratelimit-reset": "1"}
    empty = recorded(cassettes, EMPTY_LISTING, 1)
    reddit.add("/r/all/search/", body=empty["body"], headers={**empty["headers"], **exhausted})
    reddit.add("/r/redditdev/search/", **empty)

    started = time.monotonic()
    run = run_reddit(store, reddit, subreddits=["redditdev"], include_comments=False)

    assert run.status == "ok"
    assert time.monotonic() - started >= 0.9  # waited for the window to reset


def test_a_request_that_times_out_is_retried_then_fails(
    store: Store, reddit: ReplayServer, cassettes: Path
) -> None:
    reddit.add("/r/all/search/", delay=0.3, **recorded(cassettes, EMPTY_LISTING, 1))

    run = run_reddit(store, reddit, timeout=0.1, attempts=2)

    assert run.status == "failed"
    assert "timed out (gave up after 2 attempts)" in run.error
    assert len(reddit.requests_to("/r/all/search/")) == 2
    time.sleep(0.3)  # let the late answers fail against closed sockets inside this test


# -- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"subreddits": "sysadmin"}, "[sources.reddit] subreddits"),
        ({"subreddits": ["not a name!"]}, "[sources.reddit] subreddits"),
        ({"subreddit": ["sysadmin"]}, "unknown key [sources.reddit] 'subreddit'"),
        ({"lookback": "3 days"}, "[sources.reddit] lookback"),
        ({"limit": 0}, "[sources.reddit] limit"),
        ({"timeout": "20"}, "[sources.reddit] timeout"),
        ({"oauth_url": "ftp://example.org"}, "[sources.reddit] oauth_url"),
        ({"reddit_url": "http://reddit.example.org"}, "[sources.reddit] reddit_url must use https"),
        ({"user_agent": "bot"}, "[sources.reddit] user_agent"),
        ({"search_sitewide": False}, "[sources.reddit] search_sitewide is false"),
    ],
)
def test_bad_options_fail_the_run_naming_the_key(
    store: Store, replay_server: ReplayServer, options: dict[str, Any], named: str
) -> None:
    run = run_reddit(store, replay_server, **options)

    assert run.status == "failed"
    assert named in run.error
    assert replay_server.requests == []


def test_a_brand_with_nothing_to_search_for_fails_the_run(
    store: Store, replay_server: ReplayServer
) -> None:
    run = run_reddit(store, replay_server, brand=BrandConfig(name="$NWB"))

    assert run.status == "failed"
    assert "[brand]" in run.error and "handles and cashtags" in run.error
    assert replay_server.requests == []


def test_configured_user_agent_is_sent(store: Store, reddit: ReplayServer, cassettes: Path) -> None:
    reddit.add("/r/all/search/", **recorded(cassettes, EMPTY_LISTING, 1))

    run = run_reddit(store, reddit, user_agent="python:acme-monitor:2.1 (by /u/acme_comms)")

    assert run.status == "ok"
    (search,) = reddit.requests_to("/r/all/search/")
    assert search.headers["user-agent"].startswith("python:acme-monitor:2.1 (by /u/acme_comms)")

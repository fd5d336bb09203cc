"""App Store reviews collector, end to end over real feed captures served from loopback.

The captures in ../shared/data/reviews/apple-app-store-rss are real responses of Apple's
customer-review JSON feed (see its README); a few variants are derived from them in code here
(marked "edited"), the way the source repo's own test files were.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.collectors.http import HttpClient
from monitor.collectors.reviews import AppStoreReviewsCollector, parse_rating  # registers it
from monitor.config import BrandConfig, Settings
from monitor.models import CollectionRun
from monitor.pipeline import collect
from monitor.store import Store, mentions
from tests.conftest import shared_path
from tests.replay import ReplayServer

NOW = datetime(2024, 5, 20, 9, 30, tzinfo=UTC)
# A brand named nowhere in the captured reviews: reviews of its own apps are kept all the same.
BRAND = BrandConfig(name="Northwind Bank", aliases=("Northwind",))
TRAVEL, XCODE = "1510826067", "497799835"


@pytest.fixture
def captures() -> Path:
    return shared_path("reviews", "apple-app-store-rss")


def feed_path(app: str, country: str, page: int) -> str:
    return f"/{country}/rss/customerreviews/page={page}/id={app}/sortby=mostrecent/json"


def serve(server: ReplayServer, app: str, country: str, page: int, body: bytes) -> None:
    server.add(
        feed_path(app, country, page), body=body, headers={"Content-Type": "text/javascript"}
    )


def run_reviews(
    store: Store, server: ReplayServer, apps: list[dict[str, Any]], **options: Any
) -> CollectionRun:
    settings = Settings(
        brand=BRAND, sources={"reviews": {"apps": apps, "base_url": server.base, **options}}
    )
    with HttpClient(attempts=2, backoff=0, timeout=2) as http:
        (run,) = collect(store, settings, only=["reviews"], http=http, now=NOW)
    return run


def stored(store: Store) -> dict[str, dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(mentions).where(mentions.c.source == "reviews"))
        return {row.external_id: dict(row._mapping) for row in rows}


def edited(captures: Path, name: str, change: Any) -> bytes:
    """Return a capture with `change(feed)` applied (a test-made variant of real data)."""
    data = json.loads((captures / name).read_text(encoding="utf-8"))
    change(data["feed"])
    return json.dumps(data).encode()


def test_first_run_stores_every_review_with_its_fields_and_second_run_nothing_new(
    store: Store, replay_server: ReplayServer, captures: Path
) -> None:
    read = lambda name: (captures / name).read_bytes()  # noqa: E731
    serve(replay_server, TRAVEL, "gb", 1, read("1510826067_gb_1.json"))
    serve(replay_server, TRAVEL, "gb", 2, read("1510826067_gb_2.json"))  # no `entry`: last page
    serve(replay_server, XCODE, "fr", 1, read("497799835_fr_1.json"))
    serve(replay_server, XCODE, "fr", 2, read("empty_page.json"))
    serve(replay_server, XCODE, "cn", 1, read("497799835_cn_5.json"))
    serve(replay_server, XCODE, "cn", 2, read("497799835_cn_10.json"))
    serve(replay_server, XCODE, "cn", 3, read("555731861_us_11.json"))  # "page depth" text
    apps = [
        {"id": TRAVEL, "countries": ["gb"], "name": "Visited Places"},
        {"id": XCODE, "countries": ["fr", "CN"], "name": "Xcode"},
    ]

    run = run_reviews(store, replay_server, apps, pages=5)

    assert (run.status, run.error) == ("ok", "")
    assert (run.new, run.skipped) == (4 + 50 + 100, 0)
    assert not replay_server.requests_to(feed_path(XCODE, "cn", 4))  # stopped at the text body
    rows = stored(store)
    assert len(rows) == 154
    first = rows[f"{TRAVEL}:6504352127"]
    assert first["title"] == "Amazing photos integration"
    assert first["text"].startswith("Such a great app for checking off which sites you've visited.")
    assert first["text"].endswith("👏")
    assert first["rating"] == 5.0
    assert first["author"] == "immeallme"
    assert first["url"] == "https://itunes.apple.com/gb/reviews/id21079568"
    assert first["canonical_url"] == ""
    assert first["published_at"] == NOW
    assert first["extra"] == {
        "app_id": TRAVEL,
        "app_name": "Visited Places",
        "country": "gb",
        "version": "1.1.0",
        "vote_sum": 0,
        "vote_count": 0,
        "date_estimated": True,
    }
    chinese = rows[f"{XCODE}:6455612413"]  # first review of page 10 in the China store
    assert chinese["extra"]["country"] == "cn" and chinese["extra"]["app_name"] == "Xcode"
    ratings = [r["rating"] for r in rows.values() if r["extra"]["country"] == "cn"]
    assert ratings.count(1.0) == 30 + 29  # the README's counts for pages 5 and 10
    # A 1-2 star review is negative whatever its words say.
    assert all(r["label"] == "negative" for r in rows.values() if r["rating"] <= 2)
    assert all(r["canonical_url"] == "" for r in rows.values())
    assert {r["extra"]["app_id"] for r in rows.values()} == {TRAVEL, XCODE}
    assert store.get_cursor("reviews")["newest"] == {
        f"{TRAVEL}:gb": "6504352127",
        f"{XCODE}:fr": "6918761820",
        f"{XCODE}:cn": "6668621742",
    }

    requests_before = len(replay_server.requests)
    again = run_reviews(store, replay_server, apps, pages=5)

    assert (again.status, again.new, again.updated) == ("ok", 0, 0)
    assert again.unchanged == 4 + 50 + 50  # page 1 of each input, re-read, changed nothing
    # Page 1 already reaches the newest review seen: no deeper page is asked for.
    assert len(replay_server.requests) - requests_before == 3
    assert stored(store)[f"{TRAVEL}:6504352127"]["published_at"] == NOW


def test_changed_votes_are_updated_in_place(
    store: Store, replay_server: ReplayServer, captures: Path
) -> None:
    serve(replay_server, TRAVEL, "gb", 1, (captures / "1510826067_gb_1.json").read_bytes())
    serve(replay_server, TRAVEL, "gb", 2, (captures / "1510826067_gb_2.json").read_bytes())
    apps = [{"id": TRAVEL, "countries": ["gb"]}]
    assert run_reviews(store, replay_server, apps).new == 4

    def vote(feed: dict[str, Any]) -> None:  # edited: the second review gains helpful votes
        feed["entry"][1]["im:voteSum"]["label"] = "3"
        feed["entry"][1]["im:voteCount"]["label"] = "4"

    serve(replay_server, TRAVEL, "gb", 1, edited(captures, "1510826067_gb_1.json", vote))
    again = run_reviews(store, replay_server, apps)

    assert (again.new, again.updated, again.unchanged) == (0, 1, 3)
    extra = stored(store)[f"{TRAVEL}:6108405527"]["extra"]
    assert (extra["vote_sum"], extra["vote_count"]) == (3, 4)
    assert extra["app_name"] == "Northwind Bank"  # no name configured: the brand's


def test_invalid_ratings_empty_uris_single_objects_and_unsafe_links(
    store: Store, replay_server: ReplayServer, captures: Path
) -> None:
    def single_object(feed: dict[str, Any]) -> None:  # edited: one review as an object
        feed["entry"] = feed["entry"][0]

    def javascript_author(feed: dict[str, Any]) -> None:  # edited: a hostile author link
        feed["entry"][0]["author"]["uri"]["label"] = "javascript:alert(document.cookie)"
        feed["entry"][0]["id"]["label"] = "7000000001"

    def dated(feed: dict[str, Any]) -> None:  # edited: newer feeds date each entry
        feed["entry"][0]["updated"] = {"label": "2024-05-14T09:00:00-07:00"}
        feed["entry"][0]["id"]["label"] = "7000000002"

    variants = {
        "1": (captures / "invalid_rating.json").read_bytes(),  # rating ""
        "2": (captures / "invalid_links.json").read_bytes(),  # rating "0", no self links
        "3": (captures / "invalid_entry_author_uri.json").read_bytes(),  # author uri ""
        "4": (captures / "invalid_feed_author_uri.json").read_bytes(),  # rating "1"
        "5": edited(captures, "invalid_rating.json", single_object),
        "6": edited(captures, "1510826067_gb_1.json", javascript_author),
        "7": edited(captures, "1510826067_gb_1.json", dated),
    }
    for app, body in variants.items():
        serve(replay_server, app, "gb", 1, body)
        serve(replay_server, app, "gb", 2, (captures / "100000000_gb_1.json").read_bytes())
    apps = [{"id": app, "countries": ["gb"], "name": "Northwind Mobile"} for app in variants]

    run = run_reviews(store, replay_server, apps)

    assert (run.status, run.error) == ("ok", "")
    rows = stored(store)
    assert rows["1:6091772301"]["rating"] is None
    assert rows["1:6091772301"]["extra"]["rating_invalid"] is True
    assert rows["2:6091772301"]["rating"] is None
    assert rows["2:6091772301"]["extra"]["rating_invalid"] is True
    assert rows["4:6091772301"]["rating"] == 1.0
    assert rows["4:6091772301"]["label"] == "negative"
    assert "rating_invalid" not in rows["4:6091772301"]["extra"]
    assert rows["3:6108405527"]["url"] == "https://itunes.apple.com/gb/reviews/id1181261973"
    assert rows["3:6091772301"]["url"] == "https://apps.apple.com/gb/app/id3"
    assert rows["3:6091772301"]["author"] == "Kel@Kai boon"
    assert rows["5:6091772301"]["title"] == "Informative, ads-free and very neat"
    assert rows["6:7000000001"]["url"] == "https://apps.apple.com/gb/app/id6"
    assert rows["7:7000000002"]["published_at"] == datetime(2024, 5, 14, 16, tzinfo=UTC)
    assert "date_estimated" not in rows["7:7000000002"]["extra"]
    assert all(r["url"].startswith("https://") for r in rows.values())
    assert not any("javascript:" in r["url"] or "<" in r["text"] for r in rows.values())


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b"Internal Server Error", "HTTP 500"),
        (200, b"<!DOCTYPE html><html><body>Apple - Page not found</body></html>", "HTML page"),
        (200, b'{"feed": "nope"}', "without a 'feed' object"),
    ],
)
def test_one_broken_app_is_reported_with_its_url_while_the_other_lands(
    store: Store,
    replay_server: ReplayServer,
    captures: Path,
    status: int,
    body: bytes,
    reason: str,
) -> None:
    serve(replay_server, TRAVEL, "gb", 1, (captures / "1510826067_gb_1.json").read_bytes())
    serve(replay_server, TRAVEL, "gb", 2, (captures / "1510826067_gb_2.json").read_bytes())
    replay_server.add(feed_path("555731861", "us", 1), status=status, body=body)
    apps = [{"id": "555731861", "countries": ["us"]}, {"id": TRAVEL, "countries": ["gb"]}]

    run = run_reviews(store, replay_server, apps)

    assert run.status == "partial"
    assert run.new == 4
    assert replay_server.url(feed_path("555731861", "us", 1)) in run.error
    assert reason in run.error
    assert "555731861" in run.error and TRAVEL not in run.error
    cursor = store.get_cursor("reviews")["newest"]
    assert cursor == {f"{TRAVEL}:gb": "6504352127"}  # the broken input keeps no cursor


def test_all_inputs_failing_fails_the_source(store: Store, replay_server: ReplayServer) -> None:
    replay_server.add(feed_path("1", "us", 1), status=500)
    run = run_reviews(store, replay_server, [{"id": "1", "countries": ["us", "gb"]}])

    assert run.status == "failed"
    assert replay_server.url(feed_path("1", "us", 1)) in run.error
    assert replay_server.url(feed_path("1", "gb", 1)) in run.error  # 404: not routed
    assert store.get_cursor("reviews") == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"apps": []}, "[sources.reviews] apps must list at least one app"),
        ({"apps": [{"id": "id123"}]}, "[sources.reviews] apps[0].id must be the App Store app id"),
        ({"apps": [{"id": "1", "countries": ["usa"]}]}, "apps[0].countries: 'usa'"),
        ({"apps": [{"id": "1", "country": ["us"]}]}, "apps[0] has an unknown key 'country'"),
        ({"apps": [{"id": "1"}], "pages": 11}, "[sources.reviews] pages = 11"),
        (
            {"apps": [{"id": "1"}], "pages": 0},
            "[sources.reviews] pages = 0: must be a whole number",
        ),
        ({"apps": [{"id": "1"}], "base_url": "ftp://x"}, "[sources.reviews] base_url"),
        ({"apps": [{"id": "1"}], "page": 2}, "unknown key [sources.reviews] 'page'"),
    ],
)
def test_bad_options_fail_with_the_key_named(
    store: Store, options: dict[str, Any], message: str
) -> None:
    settings = Settings(brand=BRAND, sources={"reviews": options})
    with HttpClient(attempts=2, backoff=0, timeout=2) as http:
        (run,) = collect(store, settings, only=["reviews"], http=http, now=NOW)
    assert run.status == "failed"
    assert message in run.error


def test_new_reviews_on_top_are_read_until_the_page_that_reaches_the_cursor(
    store: Store, replay_server: ReplayServer, captures: Path
) -> None:
    page5 = json.loads((captures / "497799835_cn_5.json").read_text(encoding="utf-8"))
    older = copy.deepcopy(page5)
    older["feed"]["entry"] = older["feed"]["entry"][10:]  # edited: before 10 newer reviews
    serve(replay_server, XCODE, "cn", 1, json.dumps(older).encode())
    serve(replay_server, XCODE, "cn", 2, (captures / "497799835_cn_10.json").read_bytes())
    apps = [{"id": XCODE, "countries": ["cn"]}]
    assert run_reviews(store, replay_server, apps, pages=2).new == 40 + 50
    assert store.get_cursor("reviews")["newest"][f"{XCODE}:cn"] == "6659533862"

    # Ten reviews arrive on top: page 1 is now the whole capture and reaches the cursor.
    serve(replay_server, XCODE, "cn", 1, json.dumps(page5).encode())
    again = run_reviews(store, replay_server, apps, pages=2)

    assert (again.new, again.unchanged) == (10, 40)
    assert len(replay_server.requests_to(feed_path(XCODE, "cn", 2))) == 1  # first run only
    assert store.get_cursor("reviews")["newest"][f"{XCODE}:cn"] == "6668621742"


def test_ratings_outside_one_to_five_are_invalid() -> None:
    assert [parse_rating(r) for r in ("1", "5", "4.0", "", "0", "6", "x", "nan")] == [
        1.0, 5.0, 4.0, None, None, None, None, None,
    ]  # fmt: skip
    # Reviews of the brand's own app are kept without naming the brand (pipeline honours it).
    assert AppStoreReviewsCollector.always_about_brand is True

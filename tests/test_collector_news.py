"""News collector, end to end: feeds served from loopback -> pipeline -> store.

The Google News feed below is synthetic: its shape follows
../shared/data/feeds/google-news-rss/README.md (one line, " - Outlet" after each headline,
Google redirect links, escaped-HTML descriptions, a <source> per item), with a fictional brand
and fictional outlets. No real Google News capture is used (the feed's terms do not allow it).
The Bing feed is written in the shape of Bing News search RSS (apiclick.aspx links, News:Source).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

import monitor.collectors.news  # registers the collector
from monitor.collectors.base import CollectContext
from monitor.collectors.http import HttpClient, Response
from monitor.collectors.news import (
    Feed,
    FeedProblem,
    configured_feeds,
    entry_to_mention,
    parse_feed,
)
from monitor.config import BrandConfig, Settings
from monitor.models import CollectionRun, Mention, safe_http_url
from monitor.pipeline import collect
from monitor.store import Store, mentions
from tests.conftest import shared_path
from tests.replay import ReplayServer, Route

NOW = datetime(2026, 7, 15, 12, tzinfo=UTC)
BRAND = BrandConfig(
    name="Harborline Credit Union", aliases=("Harborline",), exclude=("Harborline Ferries",)
)
RSS = {"Content-Type": "application/rss+xml; charset=UTF-8"}
ATOM_TYPE = {"Content-Type": "application/atom+xml"}
GOOGLE_PATH, BING_PATH, ATOM_PATH = "/rss/search", "/news/search", "/cipher-alley/atom.xml"
LAST_MODIFIED = "Tue, 14 Jul 2026 10:00:00 GMT"


def google_id(payload: bytes) -> str:
    """Return a Google News article id: base64url of 08 13 22, a length, the payload, d2 01 00."""
    assert len(payload) < 128
    raw = b"\x08\x13\x22" + bytes([len(payload)]) + payload + b"\xd2\x01\x00"
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


LEDGER_ARTICLE = "https://lakeshoreledger.example/2026/07/14/harborline-breach"
LEDGER_ID = google_id(f"{LEDGER_ARTICLE}?utm_source=google_news&utm_medium=rss".encode())
OPAQUE_ID = google_id(b"AU_yqLPsyntheticOpaqueToken-0001")
KEYSTONE_ID = google_id(b"https://keystonepress.example/credit-unions-passwords")
FERRIES_ID = google_id(b"https://coastaltimes.example/ferries-summer")


def google_item(
    article_id: str, headline: str, outlet: str, outlet_url: str, date: str, description: str
) -> str:
    link = f"https://news.google.com/rss/articles/{article_id}?oc=5"
    return (
        f"<item><title>{headline} - {outlet}</title><link>{link}</link>"
        f'<guid isPermaLink="false">{article_id}</guid><pubDate>{date}</pubDate>'
        f"<description>{description}</description>"
        f'<source url="{outlet_url}">{outlet}</source></item>'
    )


def single(article_id: str, headline: str, outlet: str) -> str:
    """Google's description of a lone article, HTML escaped into the XML."""
    href = f"https://news.google.com/rss/articles/{article_id}?oc=5"
    return (
        f'&lt;a href="{href}" target="_blank"&gt;{headline}&lt;/a&gt;&amp;nbsp;&amp;nbsp;'
        f'&lt;font color="#6f6f6f"&gt;{outlet}&lt;/font&gt;'
    )


FRAUD = "Harborline members report card fraud after \u201cdata incident\u201d \u2013 what we know"
CLUSTER = (
    f'&lt;ol&gt;&lt;li&gt;&lt;a href="https://news.google.com/rss/articles/{OPAQUE_ID}?oc=5" '
    f'target="_blank"&gt;{FRAUD}&lt;/a&gt;&amp;nbsp;&amp;nbsp;&lt;font color="#6f6f6f"&gt;'
    "Meridian Newswire&lt;/font&gt;&lt;/li&gt;&lt;li&gt;&lt;a "
    'href="https://news.google.com/rss/articles/CBMiQ2x1c3Rlcg?oc=5" target="_blank"&gt;'
    "Regulators ask Harborline for a breach timeline&lt;/a&gt;&amp;nbsp;&amp;nbsp;"
    '&lt;font color="#6f6f6f"&gt;Keystone Press |&lt;/font&gt;&lt;/li&gt;&lt;/ol&gt;'
)
BREACH = "Harborline Credit Union confirms breach of 1.2 million member records"
GOOGLE_RSS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
    "<generator>NFE/5.0</generator>"
    '<title>"Harborline Credit Union" OR "Harborline" -"Harborline Ferries" - Google News'
    "</title><link>https://news.google.com/search?q=Harborline&amp;hl=en-US&amp;gl=US&amp;"
    "ceid=US:en</link><language>en-US</language><webMaster>news-webmaster@google.com"
    "</webMaster><copyright>This XML feed is made available solely for the purpose of rendering "
    "Google News results within a personal feed reader for personal, non-commercial use. Any "
    "other use of the feed is expressly prohibited.</copyright>"
    "<lastBuildDate>Wed, 15 Jul 2026 11:58:00 GMT</lastBuildDate>"
    "<description>Google News</description>"
    + google_item(
        LEDGER_ID,
        BREACH,
        "Lakeshore Ledger",
        "https://lakeshoreledger.example",
        "Tue, 14 Jul 2026 03:33:16 GMT",
        single(LEDGER_ID, BREACH, "Lakeshore Ledger"),
    )
    + google_item(
        OPAQUE_ID,
        FRAUD,
        "Meridian Newswire",
        "https://meridiannewswire.example",
        "Tue, 14 Jul 2026 08:05:00 GMT",
        CLUSTER,
    )
    + google_item(
        KEYSTONE_ID,
        "Credit unions tighten password rules after a spate of attacks",
        "Keystone Press |",
        "https://keystonepress.example",
        "Mon, 13 Jul 2026 22:10:00 GMT",
        single(KEYSTONE_ID, "Credit unions tighten password rules", "Keystone Press |"),
    )
    + google_item(
        FERRIES_ID,
        "Harborline Ferries adds late sailings for the summer",
        "Coastal Times",
        "https://coastaltimes.example",
        "Mon, 13 Jul 2026 17:45:00 GMT",
        single(FERRIES_ID, "Harborline Ferries adds late sailings", "Coastal Times"),
    )
    + "</channel></rss>"
).encode("utf-8")


def bing_link(article: str) -> str:
    quoted = article.replace(":", "%3a").replace("/", "%2f").replace("?", "%3f")
    quoted = quoted.replace("=", "%3d").replace("&", "%26").replace("#", "%23")
    return (
        "http://www.bing.com/news/apiclick.aspx?ref=FexRss&amp;aid=&amp;tid=0F3C9A&amp;"
        f"url={quoted}&amp;c=1290471829&amp;mkt=en-us"
    )


WHAT_TO_DO = "https://www.tidewaterbj.example/news/harborline-what-to-do"
BING_RSS = f"""<?xml version="1.0" encoding="utf-8" ?>
<rss version="2.0" xmlns:News="https://www.bing.com/news/search?q=Harborline&amp;format=rss">
<channel><title>Harborline - Bing News</title>
<link>https://www.bing.com/news/search?q=Harborline&amp;format=rss</link>
<description>Search results</description>
<item><title>Harborline Credit Union breach: what members should do now</title>
<link>{bing_link(WHAT_TO_DO + "?utm_source=bing&ocid=BingNewsSearch&id=42")}</link>
<description>Members of Harborline Credit Union should reset passwords &amp;amp; watch
their statements, experts say.</description>
<pubDate>Tue, 14 Jul 2026 09:15:00 GMT</pubDate>
<News:Source>Tidewater Business Journal</News:Source>
<News:Image>http://www.bing.com/th?id=OVFT.abc&amp;pid=News</News:Image></item>
<item><title>{BREACH}</title>
<link>{bing_link(LEDGER_ARTICLE + "?cmpid=bing_news#top")}</link>
<description>The Harborline Credit Union said on Monday that an intruder copied member
records.</description>
<pubDate>Tue, 14 Jul 2026 03:40:00 GMT</pubDate>
<News:Source>Lakeshore Ledger</News:Source></item>
</channel></rss>""".encode()

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Cipher Alley</title><id>tag:cipheralley.example,2026:feed</id>
  <updated>2026-07-14T09:30:00Z</updated>
  <link rel="self" href="https://cipheralley.example/atom.xml"/>
  <entry>
    <title type="html">&lt;em&gt;Harborline&lt;/em&gt; breach: attackers used a
      &amp;quot;forgotten&amp;quot; test server</title>
    <link rel="alternate" type="text/html"
      href="https://cipheralley.example/posts/harborline-test-server?utm_campaign=feed&amp;fbclid=IwAR0x&amp;page=2#comments"/>
    <id>tag:cipheralley.example,2026:posts/481</id>
    <published>2026-07-14T11:02:00+02:00</published>
    <updated>2026-07-14T11:30:00+02:00</updated>
    <author><name>R. Okafor</name></author>
    <summary type="html">&lt;p&gt;The &lt;a href="https://harborline.example"&gt;Harborline
      Credit Union&lt;/a&gt; intrusion began&amp;nbsp;on a staging host.&lt;/p&gt;&lt;p&gt;It
      ran for &lt;b&gt;nine&lt;/b&gt; days.&lt;/p&gt;</summary>
  </entry>
  <entry>
    <title>Harborline's breach notice, annotated</title>
    <link rel="alternate" href="/posts/harborline-notice-annotated"/>
    <id>tag:cipheralley.example,2026:posts/482</id>
    <updated>sometime last week</updated>
    <summary>We read the Harborline notice line by line.</summary>
  </entry>
  <entry>
    <title>Harborline breach: the timeline, as we know it</title>
    <link rel="alternate" href="https://cipheralley.example/posts/harborline-timeline"/>
    <id>tag:cipheralley.example,2026:posts/483</id>
    <published>2026-08-01T00:00:00Z</published>
    <summary>A running timeline of the Harborline intrusion.</summary>
  </entry>
</feed>"""


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_server() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


@pytest.fixture
def replay_server(shared_server: ReplayServer) -> ReplayServer:
    """One loopback server for the module (each shutdown costs half a second), fresh per test."""
    shared_server.routes.clear()
    shared_server.requests.clear()
    return shared_server


def serve_feeds(server: ReplayServer) -> dict[str, Any]:
    """Serve the three feeds (each with validators) and return the [sources.news] options."""
    server.add(GOOGLE_PATH, body=GOOGLE_RSS, headers=RSS, etag='"g-1"')
    server.add(BING_PATH, body=BING_RSS, headers=RSS, last_modified=LAST_MODIFIED)
    server.add(ATOM_PATH, body=ATOM, headers=ATOM_TYPE, etag='"a-7"', last_modified=LAST_MODIFIED)
    return {
        "google_news": True,
        "bing_news": True,
        "google_news_url": server.url(GOOGLE_PATH),
        "bing_news_url": server.url(BING_PATH),
        "feeds": [server.url(ATOM_PATH)],
    }


def run_news(
    store: Store,
    options: dict[str, Any],
    *,
    brand: BrandConfig = BRAND,
    **client: Any,
) -> CollectionRun:
    settings = Settings(brand=brand, sources={"news": options})
    with HttpClient(**{"attempts": 2, "backoff": 0, "timeout": 2, **client}) as http:
        (run,) = collect(store, settings, only=["news"], http=http, now=NOW)
    return run


def stored(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(mentions).where(mentions.c.source == "news"))
        return [dict(row._mapping) for row in rows]


def by_url(store: Store) -> dict[str, dict[str, Any]]:
    return {row["canonical_url"]: row for row in stored(store)}


TAG = re.compile(r"<\s*/?\s*[A-Za-z!?]")
DANGER = re.compile(r"javascript:|vbscript:|data:|on[a-z]+\s*=|<script|alert\(", re.I)


def assert_clean(row: dict[str, Any] | Mention) -> None:
    """No markup, event handler or script link in anything stored for a mention."""
    values = (
        row
        if isinstance(row, dict)
        else {f.name: getattr(row, f.name) for f in dataclasses.fields(Mention)}
    )
    texts = [values[k] for k in ("title", "text", "author", "external_id")]
    texts.append(json.dumps(values["extra"], ensure_ascii=False))
    for text in texts:
        assert not TAG.search(text), text
        assert not DANGER.search(text), text
    for link in (values["url"], values["canonical_url"]):
        assert link == "" or safe_http_url(link) == link, link
        assert not DANGER.search(link), link


# -- first and second collect -----------------------------------------------------------------


def test_first_collect_stores_matching_items_with_publisher_link_text_and_utc_dates(
    store: Store, replay_server: ReplayServer
) -> None:
    run = run_news(store, serve_feeds(replay_server))

    assert (run.status, run.error) == ("ok", "")
    # Google 4 items (2 about the brand), Bing 2 (one repeats Google's), the Atom feed 3.
    assert (run.new, run.duplicates, run.skipped) == (6, 1, 2)
    rows = by_url(store)

    ledger = rows[LEDGER_ARTICLE]  # the article URL inside Google's id, tracking removed
    assert ledger["title"] == BREACH  # " - Lakeshore Ledger" moved into the publisher
    assert ledger["url"] == LEDGER_ARTICLE
    assert ledger["author"] == "Lakeshore Ledger"
    assert ledger["extra"] == {
        "publisher": "Lakeshore Ledger",
        "feed": replay_server.url(GOOGLE_PATH)
        + "?q=%22Harborline%20Credit%20Union%22%20OR%20%22Harborline%22%20-%22Harborline%20"
        "Ferries%22&hl=en-US&gl=US&ceid=US:en",
        "publisher_url": "https://lakeshoreledger.example/",
    }
    assert ledger["text"] == ""  # Google's description only repeated headline and outlet
    assert ledger["published_at"] == datetime(2026, 7, 14, 3, 33, 16, tzinfo=UTC)
    assert ledger["external_id"] == f"google:{LEDGER_ID}"

    # An opaque Google id: the Google link (query removed) is the canonical one.
    fraud = rows[f"https://news.google.com/rss/articles/{OPAQUE_ID}"]
    assert fraud["title"] == FRAUD
    assert fraud["extra"]["publisher"] == "Meridian Newswire"
    assert "Regulators ask Harborline for a breach timeline Keystone Press |" in fraud["text"]
    assert "<" not in fraud["text"] and "&nbsp;" not in fraud["text"]

    bing = rows[f"{WHAT_TO_DO}?id=42"]  # Bing's redirect unwrapped; utm_source and ocid gone
    assert bing["title"] == "Harborline Credit Union breach: what members should do now"
    assert bing["text"] == (
        "Members of Harborline Credit Union should reset passwords & watch their statements, "
        "experts say."
    )
    assert bing["extra"]["publisher"] == "Tidewater Business Journal"
    assert bing["external_id"].startswith("bing:")

    atom = rows["https://cipheralley.example/posts/harborline-test-server?page=2"]
    assert atom["title"] == 'Harborline breach: attackers used a "forgotten" test server'
    assert atom["text"] == (
        "The Harborline Credit Union intrusion began on a staging host. It ran for nine days."
    )
    assert atom["author"] == "R. Okafor"
    assert atom["extra"]["publisher"] == "Cipher Alley"
    assert atom["extra"]["feed"] == replay_server.url(ATOM_PATH)
    assert atom["published_at"] == datetime(2026, 7, 14, 9, 2, tzinfo=UTC)  # +02:00 -> UTC
    # A relative link is resolved against the feed's own URL.
    assert replay_server.url("/posts/harborline-notice-annotated") in rows

    assert {r["title"] for r in stored(store)}.isdisjoint(
        {"Credit unions tighten password rules after a spate of attacks"}
    )
    for row in stored(store):
        assert_clean(row)
        assert row["published_at"].tzinfo is not None

    google = replay_server.requests_to(GOOGLE_PATH)[0]
    assert google.query == {
        "q": ['"Harborline Credit Union" OR "Harborline" -"Harborline Ferries"'],
        "hl": ["en-US"],
        "gl": ["US"],
        "ceid": ["US:en"],
    }
    bing_request = replay_server.requests_to(BING_PATH)[0]
    assert bing_request.query["format"] == ["rss"]
    assert bing_request.headers["user-agent"].startswith("repmon/")


def test_second_collect_stores_nothing_new_and_asks_conditionally_for_every_feed(
    store: Store, replay_server: ReplayServer
) -> None:
    options = serve_feeds(replay_server)
    run_news(store, options)
    count, sightings = store.count_mentions(), store.count_sightings()

    again = run_news(store, options)

    assert (again.status, again.new, again.updated, again.duplicates) == ("ok", 0, 0, 0)
    assert (store.count_mentions(), store.count_sightings()) == (count, sightings)
    for path in (GOOGLE_PATH, BING_PATH, ATOM_PATH):
        first, second = replay_server.requests_to(path)
        assert "if-none-match" not in first.headers and "if-modified-since" not in first.headers
        assert second.headers.get("if-none-match") or second.headers.get("if-modified-since")
    assert replay_server.requests_to(GOOGLE_PATH)[1].headers["if-none-match"] == '"g-1"'
    assert replay_server.requests_to(BING_PATH)[1].headers["if-modified-since"] == LAST_MODIFIED
    atom = replay_server.requests_to(ATOM_PATH)[1].headers
    assert (atom["if-none-match"], atom["if-modified-since"]) == ('"a-7"', LAST_MODIFIED)


def test_a_feed_that_changed_without_validators_stores_nothing_new_either(
    store: Store, replay_server: ReplayServer
) -> None:
    replay_server.add(ATOM_PATH, body=ATOM, headers=ATOM_TYPE)  # no ETag, no Last-Modified
    options = {"feeds": [replay_server.url(ATOM_PATH)]}
    assert run_news(store, options).new == 3
    again = run_news(store, options)
    assert (again.status, again.new, again.updated, again.unchanged) == ("ok", 0, 0, 3)


def test_same_article_in_two_feeds_is_one_mention_and_a_sighting(
    store: Store, replay_server: ReplayServer
) -> None:
    run = run_news(store, serve_feeds(replay_server))

    assert run.duplicates == 1 and store.count_sightings() == 1
    same = [r for r in stored(store) if r["canonical_url"] == LEDGER_ARTICLE]
    assert len(same) == 1 and same[0]["external_id"].startswith("google:")


# -- broken feeds -----------------------------------------------------------------------------

BROKEN = "/broken/feed.xml"
BIG_FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title>'
    + b"<item><title>Harborline filler</title><description>"
    + b"x" * 300_000
    + b"</description></item></channel></rss>"
)
BROKEN_CASES = {
    "http-500": ({"status": 500, "body": b"Internal error"}, "HTTP 500", {}),
    "not-found": ({"status": 404, "body": b"gone"}, "HTTP 404", {}),
    "timeout": ({"body": ATOM, "delay": 1.2}, "timed out", {"timeout": 0.5}),
    "malformed-xml": (
        {
            "body": b'<?xml version="1.0"?><rss version="2.0"><channel><title>Outage</title>'
            b"<item><title>Status & <<update",
            "headers": RSS,
        },
        "malformed XML",
        {},
    ),
    "html-page": (
        {
            "body": b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
            b"<body><form><input name=user></form></body></html>",
            "headers": {"Content-Type": "text/html; charset=utf-8"},
        },
        "an HTML page, not a feed",
        {},
    ),
    "html-page-as-rss": (
        {"body": b"<html><body><p>Moved</p></body></html>", "headers": RSS},
        "an HTML page, not a feed",
        {},
    ),
    "empty-body": ({"body": b"", "headers": RSS}, "empty response", {}),
    "garbage": ({"body": b"\x00\x01 plainly not xml \xff", "headers": RSS}, "not an RSS", {}),
    "over-size-cap": ({"body": BIG_FEED, "headers": RSS}, "response too large", {}),
}


@pytest.mark.parametrize("case", list(BROKEN_CASES))
def test_one_broken_feed_is_reported_with_its_reason_and_the_others_are_stored(
    store: Store, replay_server: ReplayServer, case: str
) -> None:
    route, reason, client = BROKEN_CASES[case]
    replay_server.add(BROKEN, **route)
    replay_server.add(ATOM_PATH, body=ATOM, headers=ATOM_TYPE, etag='"a-7"')
    options = {"feeds": [replay_server.url(BROKEN), replay_server.url(ATOM_PATH)]}

    run = run_news(store, options, max_bytes=200_000, **client)

    assert run.status == "partial"
    assert run.error.startswith(f"{replay_server.url(BROKEN)}: ")
    assert reason in run.error
    assert run.new == 3 and store.count_mentions() == 3
    feeds = store.get_cursor("news")["feeds"]
    assert feeds[replay_server.url(ATOM_PATH)] == {"etag": '"a-7"'}
    assert replay_server.url(BROKEN) not in feeds  # no validators for a feed that failed


def test_every_feed_failing_fails_the_source_with_each_reason(
    store: Store, replay_server: ReplayServer
) -> None:
    replay_server.add("/a.xml", status=500)
    replay_server.add("/b.xml", body=b"<html><body>login</body></html>")
    options = {"feeds": [replay_server.url("/a.xml"), replay_server.url("/b.xml")]}

    run = run_news(store, options)

    assert run.status == "failed"
    assert f"{replay_server.url('/a.xml')}: HTTP 500" in run.error
    assert f"{replay_server.url('/b.xml')}: an HTML page, not a feed" in run.error
    assert store.count_mentions() == 0 and store.get_cursor("news") == {}


def test_a_failing_feed_keeps_its_validators_while_the_others_move_on(
    store: Store, replay_server: ReplayServer
) -> None:
    options = serve_feeds(replay_server)
    run_news(store, options)
    replay_server.routes[BING_PATH].then = [Route(status=503)]

    run = run_news(store, options)

    assert run.status == "partial" and "HTTP 503" in run.error
    assert store.get_cursor("news")["feeds"][options_bing_url(replay_server)] == {
        "last_modified": LAST_MODIFIED
    }


def options_bing_url(server: ReplayServer) -> str:
    return (
        server.url(BING_PATH)
        + "?q="
        + (
            "%22Harborline%20Credit%20Union%22%20OR%20%22Harborline%22%20-%22Harborline%20Ferries%22"
        )
        + "&format=rss"
    )


def test_malformed_feed_with_readable_items_keeps_them_and_says_so(
    store: Store, replay_server: ReplayServer
) -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Ledger</title>'
        b"<item><title>Harborline opens a breach help line</title>"
        b"<link>https://ledger.example/a</link><guid>https://ledger.example/a</guid></item>"
        b"<item><title>Harborline & members</title></channel></rss>"
    )
    replay_server.add("/half.xml", body=body, headers=RSS)

    run = run_news(store, {"feeds": [replay_server.url("/half.xml")]})

    assert run.status == "partial"
    assert "malformed XML (line 1" in run.error and "kept the 2 items" in run.error
    assert "https://ledger.example/a" in by_url(store)


def test_an_empty_feed_is_not_a_failure(store: Store, replay_server: ReplayServer) -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'
    replay_server.add("/quiet.xml", body=body, headers=RSS)
    run = run_news(store, {"feeds": [replay_server.url("/quiet.xml")]})
    assert (run.status, run.error, run.new) == ("ok", "", 0)


# -- dates ------------------------------------------------------------------------------------


def test_missing_and_future_dates_are_flagged_not_dropped(
    store: Store, replay_server: ReplayServer
) -> None:
    replay_server.add(ATOM_PATH, body=ATOM, headers=ATOM_TYPE)
    run_news(store, {"feeds": [replay_server.url(ATOM_PATH)]})
    rows = {r["title"]: r for r in stored(store)}

    missing = rows["Harborline's breach notice, annotated"]
    assert missing["published_at"] == NOW
    assert missing["extra"]["date_missing"] is True
    assert missing["extra"]["date_unparsed"] == "sometime last week"

    future = rows["Harborline breach: the timeline, as we know it"]
    assert future["published_at"] == NOW
    assert future["extra"]["date_in_future"] == "2026-08-01T00:00:00+00:00"

    dated = rows['Harborline breach: attackers used a "forgotten" test server']
    assert not {"date_missing", "date_in_future"} & set(dated["extra"])


def test_max_items_per_feed_caps_each_feed(store: Store, replay_server: ReplayServer) -> None:
    options = {**serve_feeds(replay_server), "max_items_per_feed": 1}
    run = run_news(store, options)
    assert run.new == 3 and run.skipped == 0  # the first item of each feed


# -- hostile content --------------------------------------------------------------------------

HOSTILE = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>&lt;b onmouseover="steal()"&gt;Hostile&lt;/b&gt; Wire</title>
<link>javascript:alert('channel')</link>
<item>
  <title>&lt;img src=x onerror=alert(1)&gt;Harborline &lt;script&gt;alert("t")&lt;/script&gt;statement</title>
  <link>javascript:alert(document.cookie)</link>
  <guid>javascript:alert(5)</guid>
  <dc:creator>&lt;b onmouseover="x()"&gt;Staff&lt;/b&gt;</dc:creator>
  <source url="javascript:alert(6)">Hostile &lt;i&gt;Outlet&lt;/i&gt;</source>
  <description><![CDATA[<p onclick="steal()">Harborline <a href="javascript:alert(1)">said</a>
    <img src="x" onerror="alert(2)">members are safe.</p><script>alert(3)</script>
    <iframe src="javascript:alert(4)"></iframe><a href="data:text/html;base64,PHNjcmlwdD4=">x</a>]]></description>
  <pubDate>Tue, 14 Jul 2026 10:00:00 GMT</pubDate>
</item>
<item>
  <title>Harborline &amp;lt;svg onload=alert(7)&amp;gt; update</title>
  <link>data:text/html;base64,PHNjcmlwdD5hbGVydCg4KTwvc2NyaXB0Pg==</link>
  <content:encoded><![CDATA[&lt;script&gt;alert(9)&lt;/script&gt;Harborline &lt;a href="jav&#x61;script:alert(10)"
    onmouseover="alert(11)"&gt;replied&lt;/a&gt;.]]></content:encoded>
</item>
<item>
  <title>Harborline link with a "quote</title>
  <link>https://hostile.example/a"onmouseover="alert(12)</link>
  <description>&lt;a href="https://hostile.example/b" style="background:url(javascript:alert(13))"&gt;Harborline&lt;/a&gt;</description>
</item>
</channel></rss>"""


def test_markup_event_handlers_and_script_links_never_reach_the_store(
    store: Store, replay_server: ReplayServer
) -> None:
    replay_server.add("/hostile.xml", body=HOSTILE, headers=RSS)

    run = run_news(store, {"feeds": [replay_server.url("/hostile.xml")]})

    assert run.status == "ok" and run.new == 3
    rows = {r["title"]: r for r in stored(store)}
    assert set(rows) == {
        "Harborline statement",
        "Harborline update",
        'Harborline link with a "quote',
    }
    first = rows["Harborline statement"]
    assert first["text"] == "Harborline said members are safe. x"
    assert first["author"] == "Staff" and first["extra"]["publisher"] == "Hostile Outlet"
    assert "publisher_url" not in first["extra"]
    assert rows["Harborline update"]["text"] == "Harborline replied."
    for row in rows.values():
        assert row["url"] == "" and row["canonical_url"] == ""
        assert_clean(row)


# -- feedparser's hostile regression corpus ---------------------------------------------------

CORPUS_FILES = (
    "illformed/rss_incomplete_cdata.xml",
    "illformed/rss_item_link_corrupted_ampersands.xml",
    "illformed/undeclared_namespace.xml",
    "illformed/http_high_bit_date.xml",
    "illformed/chardet/koi8r.xml",
    "encoding/http_text_xml_charset_overrides_encoding.xml",
    "encoding/http_i18n.xml",
    "encoding/bozo_http_text_plain.xml",
    "encoding/utf-16le-bom.xml",
    "encoding/double-encoded-html.xml",
    "wellformed/sanitize/entry_content_crazy.xml",
    "wellformed/sanitize/entry_title_script_cdata.xml",
    "wellformed/sanitize/item_description_onerror.xml",
    "wellformed/sanitize/item_fullitem_script.xml",
    "wellformed/sanitize/item_content_encoded_script_nested_cdata.xml",
    "wellformed/sanitize/entry_content_link.xml",
    "wellformed/sanitize/entry_summary_script_inline.xml",
    "wellformed/sanitize/xml_malicious_comment.xml",
    "wellformed/http/headers_content_location-unsafe.xml",
)
HEADER = re.compile(rb"^Header:\s+([^:]+):(.*)$", re.M)


def declared_headers(body: bytes) -> dict[str, str]:
    """Return the HTTP headers a corpus file's comment says it is served with."""
    text = body.decode("utf-16") if body[:2] in (b"\xff\xfe", b"\xfe\xff") else body
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return {k.decode().strip(): v.decode("latin-1").strip() for k, v in HEADER.findall(raw)}


@pytest.mark.shared
def test_feedparser_corpus_files_do_not_crash_or_store_markup(
    store: Store, replay_server: ReplayServer
) -> None:
    root = shared_path("feeds", "feedparser-tests")
    urls = []
    for name in CORPUS_FILES:
        body = (root / name).read_bytes()
        path = "/corpus/" + name
        replay_server.add(path, body=body, headers=declared_headers(body))
        urls.append(replay_server.url(path))
    # A "brand" made of words these synthetic documents use, so their entries reach the store.
    brand = BrandConfig(name="safe", aliases=("description", "Crazy HTML"))

    run = run_news(store, {"feeds": urls}, brand=brand)

    assert run.status == "partial", run.error  # the broken files are reported, not fatal
    assert "unexpected error" not in run.error
    reported = {line.split(": ", 1)[0] for line in run.error.splitlines()}
    assert replay_server.url("/corpus/illformed/rss_incomplete_cdata.xml") in reported
    rows = stored(store)
    assert len(rows) >= 5
    assert any(r["text"] == "safe description" for r in rows)
    for row in rows:
        assert_clean(row)


@pytest.mark.shared
def test_every_corpus_document_parses_to_clean_mentions_or_a_reason() -> None:
    """Straight through parse_feed/entry_to_mention: 1,100 odd documents, no crash, no markup."""
    root = shared_path("feeds", "feedparser-tests")
    feed = Feed("http://127.0.0.1/feed.xml", "feed", "feed-test")
    seen, reasons = 0, []
    for folder in ("illformed", "encoding", "entities", "wellformed/sanitize"):
        for path in sorted((root / folder).rglob("*.xml")):
            body = path.read_bytes()
            headers = {k.lower(): v for k, v in declared_headers(body).items()}
            response = Response(url=feed.url, status=200, body=body, headers=headers)
            try:
                parsed = parse_feed(response)
            except FeedProblem as problem:
                reasons.append(str(problem))
                continue
            for entry in parsed.entries:
                mention = entry_to_mention(entry, parsed.feed, feed, NOW)
                if mention is not None:
                    seen += 1
                    assert_clean(mention)
    assert seen > 200 and reasons and all(reasons)


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"feeds": ["https://a.example/rss"], "google-news": True}, "'google-news'"),
        ({"feeds": ["javascript:alert(1)"]}, "[sources.news] feeds"),
        ({"feeds": "https://a.example/rss"}, "[sources.news] feeds must be a list"),
        ({"google_news": "yes"}, "[sources.news] google_news must be true or false"),
        ({"google_news": True, "country": "United States"}, "[sources.news] country"),
        ({"bing_news": True, "bing_news_url": "ftp://x"}, "[sources.news] bing_news_url"),
        ({"feeds": ["https://a.example/rss"], "max_items_per_feed": 0}, "max_items_per_feed"),
        ({}, "reads no feed"),
    ],
)
def test_configuration_mistakes_name_the_key(
    store: Store, options: dict[str, Any], message: str
) -> None:
    run = run_news(store, options)
    assert run.status == "failed" and message in run.error


def test_google_news_language_and_country_shape_the_query() -> None:
    with HttpClient() as http:
        ctx = CollectContext(
            source="news",
            brand=BrandConfig(name="Nordhafen Bank", exclude=("Nordhafen Reederei",)),
            options={"google_news": True, "language": "de", "country": "de"},
            secrets={},
            cursor={},
            http=http,
            now=NOW,
        )
        (feed,) = configured_feeds(ctx)
    assert feed.url == (
        "https://news.google.com/rss/search?q=%22Nordhafen%20Bank%22%20-%22Nordhafen%20"
        "Reederei%22&hl=de&gl=DE&ceid=DE:de"
    )
    assert feed.kind == "google"


def test_the_collector_is_registered() -> None:
    from monitor.collectors import REGISTRY

    assert REGISTRY["news"] is monitor.collectors.news.NewsCollector

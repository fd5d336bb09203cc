"""Collectors fetch independent inputs concurrently, bounded, and their output stays in order.

A loopback server counts the requests it has in flight. It holds every request until as many
requests as the configured bound are in flight together (once; later ones pass straight
through), then holds whatever arrives for a moment longer, so a collector that fetches one at
a time cannot pass and one that ignores the bound shows a higher peak. Concurrency is proven by
what the server saw: a correct collector passes however slow the machine is.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from monitor.bench.collection import ITEMS_PER_FEED, measure_collection
from monitor.collectors.base import CollectContext
from monitor.collectors.http import HttpClient, fetch_all
from monitor.collectors.news import DEFAULT_MAX_PARALLEL, NewsCollector
from monitor.collectors.reviews import MAX_PARALLEL as REVIEWS_MAX_PARALLEL
from monitor.config import BrandConfig, Settings
from monitor.models import CollectionRun
from monitor.pipeline import collect
from monitor.store import Store

BRAND = BrandConfig(name="Harborline")
NOW = datetime(2026, 7, 15, 12, tzinfo=UTC)
HOLD_LIMIT = 10.0  # seconds a held request waits at most: a safety valve, never reached when OK
LINGER = 0.2  # requests stay this long after the gate opens, for any beyond the bound to show
RSS_TYPE = {"Content-Type": "application/rss+xml"}


def rss(name: str, items: int = 2) -> bytes:
    """Return a small RSS feed whose items name the brand and are unique to `name`."""
    entries = "".join(
        f"<item><title>Harborline breach update {n} from {name}</title>"
        f"<link>https://{name}.example/story/{n}</link><guid>{name}-{n}</guid>"
        f"<pubDate>Tue, 14 Jul 2026 0{n}:00:00 GMT</pubDate></item>"
        for n in range(items)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
        f"{entries}</channel></rss>"
    ).encode()


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    delay: float = 0.0
    after: str | None = None  # answer only once this other path has been answered


class CountingServer:
    """Canned answers on 127.0.0.1 that count bodies, 304s and the peak of requests in flight."""

    def __init__(self, hold_until: int = 0) -> None:
        self.answers: dict[str, Answer] = {}
        self.hold_until = hold_until  # hold requests until this many are in flight (0: never)
        self.in_flight = self.peak = self.bodies = self.not_modified = 0
        self.answered: list[str] = []
        # When `hold_until` requests were first in flight together (at once when 0).
        self._opened: float | None = None if hold_until else 0.0
        self._state = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.serve(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        answer = self.answers.get(path, Answer(status=404, body=b"not here"))
        with self._state:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            if self.hold_until and self.peak >= self.hold_until and self._opened is None:
                self._opened = time.monotonic()
            self._state.notify_all()
            self._state.wait_for(lambda: self._opened is not None, timeout=HOLD_LIMIT)
            linger = (self._opened or 0.0) + LINGER - time.monotonic()
            if answer.after:
                self._state.wait_for(lambda: answer.after in self.answered, timeout=HOLD_LIMIT)
        if linger > 0:
            threading.Event().wait(linger)
        if answer.delay:
            threading.Event().wait(answer.delay)
        headers = dict(answer.headers)
        if answer.etag:
            headers["ETag"] = answer.etag
        if answer.etag and handler.headers.get("If-None-Match") == answer.etag:
            status, body = 304, b""
        else:
            status, body = answer.status, answer.body
        # Out of flight before the answer goes out: once the client has it, its next request
        # may arrive at once, and counting both would show more than the client ever had.
        with self._state:
            self.in_flight -= 1
        try:
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:  # the client gave up first (the slow feed): nothing was delivered
            return
        with self._state:
            self.answered.append(path)
            if status == 304:
                self.not_modified += 1
            elif body:
                self.bodies += 1
            self._state.notify_all()

    def reset_counts(self) -> None:
        with self._state:
            self.bodies = self.not_modified = 0

    def __enter__(self) -> CountingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server() -> Iterator[CountingServer]:
    with CountingServer() as running:
        yield running


def add_feeds(server: CountingServer, count: int, **answer: Any) -> list[str]:
    """Serve `count` good feeds with ETags; return their URLs in order."""
    for i in range(count):
        server.answers[f"/feeds/{i}.xml"] = Answer(
            body=rss(f"wire{i}"), headers=RSS_TYPE, etag=f'"w{i}-1"', **answer
        )
    return [server.url(f"/feeds/{i}.xml") for i in range(count)]


def run_news(
    store: Store, options: dict[str, Any], http: HttpClient | None = None
) -> CollectionRun:
    settings = Settings(brand=BRAND, sources={"news": options}, check_alerts_after_collect=False)
    client = http or HttpClient(attempts=2, backoff=0, timeout=3)
    try:
        (run,) = collect(store, settings, only=["news"], http=client, now=NOW)
    finally:
        if http is None:
            client.close()
    return run


# -- the helper ---------------------------------------------------------------------------------


def test_fetch_all_keeps_input_order_isolates_failures_and_honours_the_bound() -> None:
    bound, active, peak, opened = 3, [0], [0], [0.0]
    state = threading.Condition()

    def fetch(n: int) -> int:
        with state:  # the same gate as the server's: hold until `bound` run, then a moment more
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            if peak[0] == bound and not opened[0]:
                opened[0] = time.monotonic()
            state.notify_all()
            state.wait_for(lambda: opened[0] > 0, timeout=HOLD_LIMIT)
            linger = opened[0] + LINGER - time.monotonic()
        if linger > 0:
            threading.Event().wait(linger)
        try:
            if n == 4:
                raise ValueError("item 4 is broken")
            return n * n
        finally:
            with state:
                active[0] -= 1

    outcomes = list(fetch_all(range(10), fetch, max_parallel=bound))

    assert [o.index for o in outcomes] == list(range(10))
    assert [o.item for o in outcomes] == list(range(10))
    assert [o.value for o in outcomes if o.error is None] == [n * n for n in range(10) if n != 4]
    assert isinstance(outcomes[4].error, ValueError) and outcomes[4].value is None
    with pytest.raises(ValueError, match="item 4 is broken"):
        outcomes[4].get()
    assert peak[0] == bound


def test_fetch_all_out_of_order_still_returns_every_item_once() -> None:
    outcomes = list(fetch_all(["a", "b", "c", "d"], str.upper, max_parallel=2, in_order=False))
    assert sorted((o.index, o.get()) for o in outcomes) == [(0, "A"), (1, "B"), (2, "C"), (3, "D")]
    with pytest.raises(ValueError, match="at least 1"):
        list(fetch_all([1], str, max_parallel=0))


# -- news ---------------------------------------------------------------------------------------


def test_news_feeds_are_fetched_concurrently_up_to_max_parallel(store: Store) -> None:
    with CountingServer(hold_until=4) as server, HttpClient(attempts=1, timeout=15) as http:
        feeds = add_feeds(server, 12)
        run = run_news(store, {"feeds": feeds, "max_parallel": 4}, http)

        assert (run.status, run.new) == ("ok", 24)
        assert server.peak == 4  # never more than the bound, and the bound was reached
        assert (server.bodies, http.requests) == (12, 12)  # the shared client counted each one


def test_the_default_bound_fetches_many_feeds_at_once(store: Store) -> None:
    with CountingServer(hold_until=DEFAULT_MAX_PARALLEL) as server:
        feeds = add_feeds(server, DEFAULT_MAX_PARALLEL + 8)
        run = run_news(store, {"feeds": feeds})

        assert run.status == "ok" and run.new == 2 * len(feeds)
        assert server.peak == DEFAULT_MAX_PARALLEL


def test_max_parallel_one_reads_feeds_one_after_another(
    store: Store, server: CountingServer
) -> None:
    feeds = add_feeds(server, 5, delay=0.05)
    run = run_news(store, {"feeds": feeds, "max_parallel": 1})
    assert (run.status, run.new, server.peak) == ("ok", 10, 1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "[sources.news] max_parallel = 0: must be a whole number from 1 to 64"),
        (65, "[sources.news] max_parallel = 65: must be a whole number from 1 to 64"),
        ("8", "[sources.news] max_parallel = '8': must be a whole number"),
        (True, "[sources.news] max_parallel = True: must be a whole number"),
    ],
)
def test_max_parallel_is_validated_with_the_key_named(
    store: Store, server: CountingServer, value: object, message: str
) -> None:
    run = run_news(store, {"feeds": add_feeds(server, 1), "max_parallel": value})
    assert run.status == "failed"
    assert message in run.error
    assert server.answered == []  # nothing fetched with a bad option


def test_output_follows_feed_order_not_arrival_order(server: CountingServer) -> None:
    # Feed 0 answers only after feed 2, and feed 1 after feed 0: arrival order is 2, 0, 1.
    urls = add_feeds(server, 3)
    server.answers["/feeds/0.xml"].after = "/feeds/2.xml"
    server.answers["/feeds/1.xml"].after = "/feeds/0.xml"
    with HttpClient(attempts=1, timeout=15) as http:
        ctx = CollectContext(
            source="news",
            brand=BRAND,
            options={"feeds": urls, "max_parallel": 3},
            secrets={},
            cursor={},
            http=http,
            now=NOW,
        )
        mentions = list(NewsCollector().collect(ctx))

    assert server.answered == ["/feeds/2.xml", "/feeds/0.xml", "/feeds/1.xml"]
    publishers = [m.extra["publisher"] for m in mentions]
    assert publishers == ["wire0", "wire0", "wire1", "wire1", "wire2", "wire2"]
    assert list(ctx.cursor["feeds"]) == urls  # validators saved in feed order too
    assert ctx.problems == []


def test_broken_slow_and_malformed_feeds_among_many_are_named_and_the_rest_land(
    store: Store,
) -> None:
    with CountingServer(hold_until=4) as server, HttpClient(attempts=1, timeout=1.0) as http:
        good = add_feeds(server, 8)
        server.answers["/down.xml"] = Answer(status=500, body=b"upstream down")
        server.answers["/slow.xml"] = Answer(body=rss("slow"), headers=RSS_TYPE, delay=3.0)
        server.answers["/broken.xml"] = Answer(
            body=b'<?xml version="1.0"?><rss version="2.0"><channel><title>Outage & <<',  # no item
            headers=RSS_TYPE,
        )
        server.answers["/login.html"] = Answer(
            body=b"<!DOCTYPE html><html><body>Sign in</body></html>",
            headers={"Content-Type": "text/html"},
        )
        bad = [server.url(p) for p in ("/down.xml", "/slow.xml", "/broken.xml", "/login.html")]
        feeds = good[:3] + bad[:2] + good[3:6] + bad[2:] + good[6:]

        run = run_news(store, {"feeds": feeds, "max_parallel": 4}, http)

    assert run.status == "partial"
    assert run.new == 2 * len(good) and store.count_mentions() == 2 * len(good)
    # One line per broken feed, in feed order, each naming the feed and why.
    problems = run.error.splitlines()
    reasons = ["HTTP 500", "timed out", "malformed XML", "an HTML page, not a feed"]
    assert len(problems) == len(bad)
    for problem, url, reason in zip(problems, bad, reasons, strict=True):
        assert problem.startswith(f"{url}: ") and reason in problem, problem
    validators = store.get_cursor("news")["feeds"]
    assert list(validators) == good  # every good feed's ETag saved, in feed order
    assert all(validators[url] == {"etag": f'"w{i}-1"'} for i, url in enumerate(good))


def test_second_collect_gets_304_for_every_feed_and_stores_nothing_new(
    any_store: Store,
) -> None:
    with CountingServer(hold_until=4) as server:
        feeds = add_feeds(server, 16)
        first = run_news(any_store, {"feeds": feeds, "max_parallel": 4})
        assert (first.status, first.new, server.bodies) == ("ok", 32, 16)
        server.reset_counts()

        second = run_news(any_store, {"feeds": feeds, "max_parallel": 4})

        assert (second.status, second.new, second.updated, second.duplicates) == ("ok", 0, 0, 0)
        assert (server.bodies, server.not_modified) == (0, 16)
        assert any_store.count_mentions() == 32
        assert server.peak == 4


# -- App Store reviews --------------------------------------------------------------------------


def review_page(review_id: int) -> bytes:
    entry = {
        "id": {"label": str(review_id)},
        "title": {"label": f"Review {review_id}"},
        "content": {"label": "Login broken since the breach reset"},
        "im:rating": {"label": "2"},
        "author": {"name": {"label": f"user{review_id}"}, "uri": {"label": ""}},
    }
    return json.dumps({"feed": {"entry": [entry]}}).encode()


def test_review_inputs_are_read_concurrently_and_each_keeps_its_cursor(
    store: Store,
) -> None:
    apps = [
        {"id": "111", "countries": ["us", "gb", "de"]},
        {"id": "222", "countries": ["fr", "it"]},
    ]
    inputs = [("111", "us"), ("111", "gb"), ("111", "de"), ("222", "fr"), ("222", "it")]
    with CountingServer(hold_until=4) as server, HttpClient(attempts=1, timeout=15) as http:
        for n, (app, country) in enumerate(inputs):
            base = f"/{country}/rss/customerreviews/page={{}}/id={app}/sortby=mostrecent/json"
            server.answers[base.format(1)] = Answer(body=review_page(1000 + n))
            server.answers[base.format(2)] = Answer(body=b'{"feed": {}}')  # past the last page
        settings = Settings(
            brand=BRAND,
            sources={"reviews": {"apps": apps, "pages": 2, "base_url": server.url("")}},
            check_alerts_after_collect=False,
        )
        (run,) = collect(store, settings, only=["reviews"], http=http, now=NOW)

        assert (run.status, run.new) == ("ok", 5)
        assert server.peak == REVIEWS_MAX_PARALLEL == 4  # five inputs, never more than 4 at once
    newest = store.get_cursor("reviews")["newest"]
    assert newest == {f"{app}:{country}": str(1000 + n) for n, (app, country) in enumerate(inputs)}


# -- the benchmark ------------------------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_measure_collection_reports_consistent_counts(
    request: pytest.FixtureRequest, database: str
) -> None:
    url = request.getfixturevalue("postgres_url") if database == "postgres" else None

    figures = measure_collection(feeds=8, database_url=url, max_parallel=4)

    assert figures["feeds"] == 8 and figures["max_parallel"] == 4
    assert figures["slowest_delay_s"] == 1.0
    assert (figures["first_bodies"], figures["second_bodies"]) == (8, 0)
    assert figures["second_not_modified"] == 8
    assert (figures["new_first"], figures["new_second"]) == (8 * ITEMS_PER_FEED, 0)
    assert 1 <= figures["max_in_flight"] <= 4
    assert figures["ratio_to_slowest"] == pytest.approx(
        figures["first_collect_s"] / figures["slowest_delay_s"], abs=0.01
    )

"""How long collecting many news feeds takes, and what a second collect transfers.

`measure_collection()` serves `feeds` small RSS feeds from a ThreadingHTTPServer on
127.0.0.1. Each feed answers after its own delay, drawn from a seeded generator so every run
sees the same spread: most between 0.05 and 0.6 s, one in ten between 0.6 and 0.9 s, and the
slowest exactly 1.0 s. Feeds send an ETag and a Last-Modified and answer a matching
If-None-Match / If-Modified-Since with 304 and no body (after the same delay: a busy server is
slow to say "not modified" too).

The real pipeline (`monitor.pipeline.collect`, news only, with its own HTTP client) runs twice
against a fresh SQLite file, or `database_url` (SQLite or PostgreSQL). The server counts what
it did: feed bodies sent, 304 answers, and the peak number of requests in flight, which shows
the fetching was concurrent and bounded without relying on timing.

Targets: the first collect's wall time is at most 1.5x the slowest feed's delay, and the
second transfers no feed body. Alert checks are switched off, and the process's one-off
imports are done before timing: neither is collection.
"""

from __future__ import annotations

import email.utils
import random
import re
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from monitor.collectors.news import DEFAULT_MAX_PARALLEL
from monitor.config import BrandConfig, Settings
from monitor.models import CollectionRun
from monitor.pipeline import collect, make_http
from monitor.store import Store

BRAND = "Northwind Bank"
ITEMS_PER_FEED = 3
SLOWEST_DELAY = 1.0
PUBLISHED = datetime(2026, 3, 2, 9, tzinfo=UTC)  # fixed: a rerun serves the same documents
_HEADLINES = (
    "{brand} confirms customer data was exposed",
    "What {brand} customers should do after the breach",
    "{brand} offers credit monitoring to affected members",
    "Regulators ask {brand} for a breach timeline",
    "{brand} app back online after security reset",
    "Analysts weigh the cost of the {brand} breach",
)
_FEED_PATH = re.compile(r"/feeds/(\d+)\.rss")


def feed_delays(feeds: int, seed: int) -> list[float]:
    """Return each feed's answer delay in seconds: seeded, the slowest exactly SLOWEST_DELAY."""
    rng = random.Random(seed)
    delays = [
        rng.uniform(0.05, 0.6) if rng.random() < 0.9 else rng.uniform(0.6, 0.9)
        for _ in range(feeds)
    ]
    delays[rng.randrange(feeds)] = SLOWEST_DELAY
    return delays


class FeedServer:
    """RSS feeds on an ephemeral loopback port, each answered after its delay; counts traffic."""

    def __init__(self, delays: list[float], seed: int) -> None:
        self.delays = delays
        self.bodies = 0
        self.not_modified = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # a benchmark prints its figures only
                pass

            def do_GET(self) -> None:
                owner._answer(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # the default 5 would drop bursts of concurrent connects

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._documents = [self._document(i) for i in range(len(delays))]

    @property
    def base(self) -> str:
        """Return the server's base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def feed_urls(self) -> list[str]:
        """Return every feed's URL, in order."""
        return [f"{self.base}/feeds/{i}.rss" for i in range(len(self.delays))]

    def reset_counts(self) -> None:
        """Start counting bodies and 304s afresh (the in-flight peak is kept)."""
        with self._lock:
            self.bodies = self.not_modified = 0

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _document(self, index: int) -> tuple[bytes, str, str]:
        """Return (RSS body, ETag, Last-Modified) of feed `index`."""
        items = []
        newest = PUBLISHED - timedelta(hours=index)
        headlines = self._rng.sample(_HEADLINES, ITEMS_PER_FEED)
        for number, headline in enumerate(headlines):
            when = newest - timedelta(minutes=17 * number)
            # Links on this server: unique per run, so a reused database still stores them.
            link = f"{self.base}/story/{index}/{number}"
            title = headline.format(brand=BRAND)
            items.append(
                f"<item><title>{escape(title)}</title><link>{link}</link>"
                f'<guid isPermaLink="true">{link}</guid>'
                f"<pubDate>{email.utils.format_datetime(when, usegmt=True)}</pubDate>"
                f"<description>{escape(title)}. Wire {index} has the details.</description>"
                "</item>"
            )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>Wire {index}</title><link>{self.base}/</link>"
            f"<description>Business news</description>{''.join(items)}</channel></rss>"
        ).encode()
        return body, f'"wire-{index}-1"', email.utils.format_datetime(newest, usegmt=True)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        match = _FEED_PATH.fullmatch(handler.path)
        index = int(match.group(1)) if match else -1
        if not 0 <= index < len(self._documents):
            self._send(handler, 404, b"no such feed", {"Content-Type": "text/plain"})
            return
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(self.delays[index])
        body, etag, last_modified = self._documents[index]
        validators = {"ETag": etag, "Last-Modified": last_modified}
        unchanged = _unchanged(handler, etag, last_modified)
        # No longer in flight once the answer is ready: counted until it is written, a request
        # could overlap the client's next one, and the peak would exceed the client's bound.
        with self._lock:
            self.in_flight -= 1
            if unchanged:
                self.not_modified += 1
            else:
                self.bodies += 1
        if unchanged:
            self._send(handler, 304, b"", validators)
        else:
            headers = {"Content-Type": "application/rss+xml; charset=utf-8", **validators}
            self._send(handler, 200, body, headers)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if body:
            handler.wfile.write(body)


def _unchanged(handler: BaseHTTPRequestHandler, etag: str, last_modified: str) -> bool:
    """Return True when the request's validators say the client has this version."""
    if_none_match = handler.headers.get("If-None-Match")
    if if_none_match is not None:  # RFC 9110: it takes precedence over If-Modified-Since
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    since = handler.headers.get("If-Modified-Since")
    if not since:
        return False
    try:
        asked = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    return email.utils.parsedate_to_datetime(last_modified) <= asked


def _collect_news(store: Store, settings: Settings) -> tuple[CollectionRun, float]:
    started = time.perf_counter()
    (run,) = collect(store, settings, only=["news"])
    elapsed = time.perf_counter() - started
    if run.status != "ok":
        raise RuntimeError(f"the benchmark's news collect ended {run.status}: {run.error}")
    return run, elapsed


def measure_collection(
    feeds: int = 50,
    *,
    database_url: str | None = None,
    seed: int = 7,
    max_parallel: int | None = None,
) -> dict[str, float | int]:
    """Collect `feeds` delayed local feeds twice with the real pipeline; return the figures.

    `max_parallel` is `[sources.news] max_parallel` (None: the default). With `database_url`
    the mentions go to that database (give an empty one: its news cursor is replaced).
    """
    if feeds < 1:
        raise ValueError("feeds must be at least 1")
    delays = feed_delays(feeds, seed)
    with (
        tempfile.TemporaryDirectory(prefix="repmon-bench-") as folder,
        FeedServer(delays, seed) as server,
    ):
        url = database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        options: dict[str, Any] = {"feeds": server.feed_urls()}
        if max_parallel is not None:
            options["max_parallel"] = max_parallel
        settings = Settings(
            brand=BrandConfig(name=BRAND),
            sources={"news": options},
            database_url=url,
            check_alerts_after_collect=False,
        )
        store = Store(url)
        # httpx imports its transport on the first client a process makes: a one-off cost of
        # starting up, paid here so the timings are of collecting.
        make_http(settings).close()
        try:
            first, first_s = _collect_news(store, settings)
            first_bodies = server.bodies
            server.reset_counts()
            second, second_s = _collect_news(store, settings)
        finally:
            store.close()
    slowest = max(delays)
    return {
        "feeds": feeds,
        "max_parallel": max_parallel if max_parallel is not None else DEFAULT_MAX_PARALLEL,
        "slowest_delay_s": slowest,
        "first_collect_s": round(first_s, 3),
        "ratio_to_slowest": round(first_s / slowest, 3),
        "second_collect_s": round(second_s, 3),
        "first_bodies": first_bodies,
        "second_bodies": server.bodies,
        "second_not_modified": server.not_modified,
        "max_in_flight": server.max_in_flight,
        "new_first": first.new,
        "new_second": second.new,
    }

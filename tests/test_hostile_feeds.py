"""Hostile feeds: feedparser's whole regression corpus through the real news pipeline.

Every file of ../shared/data/feeds/feedparser-tests (2,107 hand-made documents: ill-formed
XML, UTF-16/32 and legacy encodings, script injection in every field, odd dates, see its
README) is served from a loopback HTTP server as a feed, with the HTTP headers its metadata
comment asks for (`Header: Name: value`: Content-Type with a charset that may contradict the
XML declaration, Content-Location, ETag, Last-Modified, ...), and collected twice with
`monitor.pipeline.collect` into a real SQLite file.

Why the news collector is told its entries are about the brand: the corpus is synthetic
("Example entry", "safe description") and names no brand, so with brand matching on almost
every entry would be skipped and the checks on stored text would pass vacuously. The
pipeline already has a switch for sources that are about the brand by construction
(`always_about_brand`, see monitor/collectors/base.py); the test turns it on for the news
collector, so every entry the collector turns into a mention reaches the store and is
checked. Brand matching itself is covered by tests/test_matching.py and
tests/test_properties.py.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from monitor.collectors.http import HttpClient
from monitor.collectors.news import NewsCollector
from monitor.config import BrandConfig, Settings
from monitor.models import CollectionRun
from monitor.pipeline import collect
from monitor.store import Store, collection_runs, mentions, sightings
from tests.conftest import shared_path
from tests.replay import ReplayServer

NOW = datetime(2026, 8, 1, 9, tzinfo=UTC)
BRAND = BrandConfig(name="Example")

# What no stored text may hold: a tag, an event-handler attribute, a script-capable URL.
MARKUP = re.compile(r"<\s*[A-Za-z!/?]")
EVENT_HANDLER = re.compile(r"\bon[a-z]+\s*=", re.IGNORECASE)
SCRIPT_URL = re.compile(r"\b(?:javascript|vbscript|data)\s*:", re.IGNORECASE)
HTTP_URL = re.compile(r"https?://[^\s<>\"']+")

# The metadata comment: `Header: Name: value` lines and the `Expect:` expression.
HEADER_LINE = re.compile(r"^Header:\s+([^:\r\n]+):[ \t]*(.*?)\s*$", re.MULTILINE)
EXPECT_LINE = re.compile(r"^Expect:\s*(.*)$", re.MULTILINE)
# An Expect that names the plain text of the first entry's title or summary, e.g.
# entries[0]['description'] == 'safe description'. Values with markup, entities or
# escapes are left out: their plain-text form is not a substring of the expectation.
PLAIN_EXPECTATION = re.compile(
    r"entries\[0\]\['(title|description|summary)'\]\s*==\s*u?'([^'<>&\\]+)'"
)

# How the collector words a feed it could not use (see monitor/collectors/news.py), and the
# warning for a broken feed it still read entries from.
FAILURE_REASONS = (
    "malformed XML",
    "not an RSS or Atom feed",
    "an HTML page, not a feed",
    "empty response, not a feed",
    "HTTP ",
)
KEPT_WARNING = re.compile(r"^malformed XML \(.*\); kept the \d+ items? that could be read$")


@dataclass(frozen=True)
class CorpusFile:
    """One corpus document and how it is served."""

    relative: str  # path below the corpus folder, with "/"
    body: bytes
    headers: dict[str, str]
    expect: str

    @property
    def folder(self) -> str:
        return self.relative.rpartition("/")[0] or "."

    @property
    def path(self) -> str:
        return "/" + quote(self.relative)


def as_text(body: bytes) -> str:
    """Return the document decoded well enough to read its metadata comment.

    Sniffs a BOM, else the first bytes of "<?" or "<!" in UTF-16/32, as an XML parser does;
    anything else is read as Latin-1, which never fails and keeps the ASCII comment intact.
    """
    boms = (
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
    )
    for bom, encoding in boms:
        if body.startswith(bom):
            return body[len(bom) :].decode(encoding, "replace")
    sniffed = {
        b"\x00\x00\x00<": "utf-32-be",
        b"<\x00\x00\x00": "utf-32-le",
        b"\x00<\x00?": "utf-16-be",
        b"<\x00?\x00": "utf-16-le",
        b"\x00<\x00!": "utf-16-be",
        b"<\x00!\x00": "utf-16-le",
    }
    encoding = sniffed.get(body[:4], "latin-1")
    return body.decode(encoding, "replace")


def load_corpus(root: Path) -> list[CorpusFile]:
    """Return every document of the corpus with the headers to serve it with."""
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name == "README.md":
            continue
        body = path.read_bytes()
        text = as_text(body)
        headers = {name.strip(): value for name, value in HEADER_LINE.findall(text)}
        if not any(name.lower() == "content-type" for name in headers):
            # feedparser's own test server sends XML as application/xml; JSON Feed as JSON.
            json = path.suffix == ".json"
            headers["Content-Type"] = "application/feed+json" if json else "application/xml"
        expect = EXPECT_LINE.search(text)
        files.append(
            CorpusFile(
                path.relative_to(root).as_posix(), body, headers, expect.group(1) if expect else ""
            )
        )
    return files


@pytest.fixture
def corpus() -> list[CorpusFile]:
    return load_corpus(shared_path("feeds", "feedparser-tests"))


@pytest.fixture
def corpus_server(corpus: list[CorpusFile]) -> Iterator[ReplayServer]:
    # Every answer is a full 200, even to a conditional request: the second collection must
    # parse and store everything again to show that re-reading adds nothing.
    with ReplayServer() as server:
        for item in corpus:
            server.add(item.path, body=item.body, headers=item.headers)
        yield server


def collect_corpus(
    store: Store, server: ReplayServer, batches: dict[str, list[CorpusFile]], now: datetime
) -> list[CollectionRun]:
    """Collect every corpus feed: one news run per corpus folder."""
    runs = []
    # Retries as in production (a pooled loopback connection can be dropped now and then
    # under parallel fetching), with short waits.
    with HttpClient(timeout=10, backoff=0.05) as http:
        for items in batches.values():
            settings = Settings(
                brand=BRAND,
                database_url=store.url,
                sources={"news": {"feeds": [server.url(item.path) for item in items]}},
                check_alerts_after_collect=False,
            )
            runs += collect(store, settings, http=http, now=now)
    return runs


def problem_lines(run: CollectionRun, base: str) -> list[str]:
    """Return the per-feed lines of a run's error (a failed run starts with a summary line)."""
    return [line for line in run.error.splitlines() if line.startswith(base)]


def test_the_feedparser_corpus_never_crashes_and_stores_only_plain_text(
    corpus: list[CorpusFile],
    corpus_server: ReplayServer,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(NewsCollector, "always_about_brand", True)  # see the module docstring
    batches: dict[str, list[CorpusFile]] = {}
    for item in corpus:
        batches.setdefault(item.folder, []).append(item)
    base = corpus_server.base + "/"
    by_url = {corpus_server.url(item.path): item for item in corpus}

    first = collect_corpus(store, corpus_server, batches, NOW)

    # Every document was asked for, and every run finished with a status.
    paths = {item.path for item in corpus}
    assert {r.path for r in corpus_server.requests} == paths
    asked_first = len(corpus_server.requests)
    with store.engine.connect() as conn:
        recorded = conn.execute(sa.select(collection_runs)).all()
    assert len(recorded) == len(batches)
    assert all(row.finished_at is not None for row in recorded)
    assert {row.status for row in recorded} <= {"ok", "partial", "failed"}

    # Every problem names its feed and says why, in the collector's words; none is a crash.
    failed_feeds: dict[str, str] = {}
    warned_feeds: dict[str, str] = {}
    for run, items in zip(first, batches.values(), strict=True):
        assert "unexpected error" not in run.error, run.error
        lines = problem_lines(run, base)
        if run.status == "ok":
            assert not run.error
        else:
            assert lines, f"{run.status} run without a reason: {run.error!r}"
        for line in lines:
            url, _, reason = line.partition(": ")
            assert url in by_url, line
            if KEPT_WARNING.match(reason):
                warned_feeds[url] = reason
            else:
                assert reason.startswith(FAILURE_REASONS), line
                failed_feeds[url] = reason
        if run.status == "failed":  # every feed of the batch failed, and each is named
            assert {u for u in failed_feeds if by_url[u] in items} == {
                corpus_server.url(item.path) for item in items
            }

    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(mentions)).all()
        sighted = conn.execute(sa.select(sa.func.count()).select_from(sightings)).scalar_one()
    stored_feeds = Counter(row.extra["feed"] for row in rows)

    # Substantial: the corpus holds about 500 entries with a title or text; most must land
    # (as a mention, or as a sighting of an identical story from another corpus file).
    assert len(rows) + sighted >= 300, (len(rows), sighted)
    assert len(stored_feeds) >= 200
    assert sum(by_url[url].folder == "wellformed/sanitize" for url in stored_feeds) >= 100
    # A feed reported as failed stored nothing.
    assert not set(failed_feeds) & set(stored_feeds)

    # Nothing stored carries markup, an event handler or a script URL.
    for row in rows:
        where = by_url[row.extra["feed"]].relative
        for column in ("title", "text", "author"):
            value = getattr(row, column)
            assert not MARKUP.search(value), (where, column, value)
            assert not EVENT_HANDLER.search(value), (where, column, value)
            assert not SCRIPT_URL.search(value), (where, column, value)
        for column in ("url", "canonical_url"):
            value = getattr(row, column)
            assert value == "" or HTTP_URL.fullmatch(value), (where, column, value)
        for key in ("publisher", "date_unparsed"):
            value = str(row.extra.get(key, ""))
            assert not MARKUP.search(value) and not EVENT_HANDLER.search(value), (where, value)

    # Sanitising removed the hostile parts and kept the words: where the corpus says what
    # the first entry's plain title or summary is, the stored mention holds those words.
    checked = 0
    for row in rows:
        item = by_url[row.extra["feed"]]
        if stored_feeds[row.extra["feed"]] != 1:
            continue
        for field, expected in PLAIN_EXPECTATION.findall(item.expect):
            words = " ".join(expected.split())
            stored = row.title if field == "title" else row.text
            assert words in stored, (item.relative, field, expected, stored)
            checked += 1
    assert checked >= 100

    # A second collection, a day later, re-reads every feed and adds nothing.
    second = collect_corpus(store, corpus_server, batches, NOW + timedelta(days=1))
    assert {r.path for r in corpus_server.requests[asked_first:]} == paths
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(mentions)).scalar_one() == len(
            rows
        )
        assert conn.execute(sa.select(sa.func.count()).select_from(sightings)).scalar_one() == (
            sighted
        )
        assert conn.execute(
            sa.select(sa.func.count()).select_from(collection_runs)
        ).scalar_one() == (2 * len(batches))
    assert all(run.new == 0 and run.updated == 0 and run.duplicates == 0 for run in second)
    assert sum(run.unchanged for run in second) == sum(run.new + run.duplicates for run in first)
    assert [run.status for run in second] == [run.status for run in first]

    print_summary(corpus, first, failed_feeds, warned_feeds, len(rows), sighted)


def print_summary(
    corpus: list[CorpusFile],
    runs: list[CollectionRun],
    failed: dict[str, str],
    warned: dict[str, str],
    stored: int,
    sighted: int,
) -> None:
    """Print the figures (shown with pytest -s): served, failed by reason, stored."""
    reasons = Counter(re.sub(r" \(.*", "", reason) for reason in failed.values())
    print(
        f"\nserved {len(corpus)} files in {len(runs)} runs "
        f"({Counter(run.status for run in runs)}); feeds failed: {len(failed)} {dict(reasons)}; "
        f"read despite broken XML: {len(warned)}; stored {stored} mentions + {sighted} sightings"
    )

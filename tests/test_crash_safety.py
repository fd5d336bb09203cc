"""Crash safety: `repmon import` and `repmon collect` killed with SIGKILL, then restarted.

Each scenario runs once without interruption into a reference database. Then it runs again
into a fresh database, killed with SIGKILL at seeded random moments and restarted each time,
until a run finishes. After every kill the database must be intact (`PRAGMA integrity_check`)
and hold only whole transactions: an import's stored rows are a prefix of whole batches of the
file, a source's mentions are all there or none, and a saved cursor never covers an item that
is not stored. At the end the database must hold exactly the reference's mentions (every
column but the collection timestamps) and sightings: nothing lost, nothing twice.

The same runs against PostgreSQL, where a killed client's open transaction is rolled back by
the server.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
import sqlalchemy as sa

from monitor.pipeline import IMPORT_BATCH
from monitor.store import Store, cursors, mentions, sightings
from tests.conftest import ROOT
from tests.replay import ReplayServer

SEED = 20240514
IMPORT_ROWS = 20_000
BRAND = "Northwind Bank"
START = datetime(2024, 5, 1, tzinfo=UTC)
# Collection timestamps differ between any two runs; every other column must match.
COLLECTION_TIMES = {"id", "collected_at", "updated_at"}
RUN_TIMEOUT = 300

WORDS = [
    *("breach", "card", "refund", "support", "password", "leak", "app", "login", "fraud"),
    *("thanks", "angry", "waiting", "hours", "branch", "letter", "credit", "monitoring"),
    *("stolen", "data", "customers", "week", "statement", "hackers"),
]


# -- running the CLI and killing it ------------------------------------------------------------


def cli_env() -> dict[str, str]:
    """Return the environment of a CLI subprocess: ours, minus settings that would redirect it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "praw_"))}
    # The package is importable from a checkout even when it is not installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_cli(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start `repmon ARGS` (as `python -m monitor`), its stderr merged into its stdout."""
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


class CliRun:
    """A CLI subprocess whose output lines are read as they come, each with its time."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.started = time.monotonic()
        self.process = start_cli(args, cwd)
        self.lines: list[tuple[float, str]] = []
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._changed:
                line = raw.decode(errors="replace").rstrip()
                self.lines.append((time.monotonic() - self.started, line))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def when(self, marker: str) -> float:
        """Return how long after the start the first line containing `marker` came."""
        return next(at for at, line in self.lines if marker in line)

    def wait_for(self, marker: str) -> bool:
        """Wait for a line containing `marker`; return False if the output ends first."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._ended or any(marker in line for _, line in self.lines),
                timeout=RUN_TIMEOUT,
            ) and any(marker in line for _, line in self.lines)

    def finish(self) -> None:
        """Wait for the end; fail the test if the command failed."""
        self.process.wait(timeout=RUN_TIMEOUT)
        self._reader.join(timeout=30)
        assert self.process.returncode == 0, "\n".join(line for _, line in self.lines)

    def kill(self) -> None:
        """SIGKILL the process: no handler, no cleanup, no chance to commit or roll back."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)


def run_cli(args: list[str], cwd: Path) -> CliRun:
    """Run the CLI to the end and return the run. A failure fails the test."""
    run = CliRun(args, cwd)
    run.finish()
    return run


@dataclass(frozen=True)
class Kill:
    """When to kill: `delay` seconds after the first output line holding `after` (or the start)."""

    delay: float
    after: str | None = None


@dataclass
class KillReport:
    kills: list[Kill] = field(default_factory=list)


def kill_and_restart(
    args: list[str], cwd: Path, plan: list[Kill], after_kill: Callable[[Kill], None]
) -> KillReport:
    """Start the CLI and SIGKILL it as each step of `plan` says, restarting it after each kill;
    then run it to the end. `after_kill` inspects the database after a kill, before the restart.

    A run that ends before its kill moment is the one that completes.
    """
    report = KillReport()
    for step in plan:
        run = CliRun(args, cwd)
        if step.after is not None and not run.wait_for(step.after):
            run.finish()
            return report
        try:
            run.process.wait(timeout=step.delay)
        except subprocess.TimeoutExpired:
            run.kill()
            report.kills.append(step)
            after_kill(step)
            continue
        run.finish()
        return report
    run_cli(args, cwd)
    return report


# -- reading a database back ---------------------------------------------------------------------


Key = tuple[str, str]


@dataclass
class Snapshot:
    """What a database holds, without ids or collection times, comparable across databases."""

    mentions: dict[Key, dict[str, Any]]
    sightings: set[tuple[str, str, str, Key]]  # (source, external_id, url, mention it repeats)
    cursors: dict[str, dict[str, Any]]

    def stored(self, source: str) -> set[str]:
        """Return the external ids of `source` stored as mentions or as sightings."""
        found = {external_id for s, external_id in self.mentions if s == source}
        return found | {external_id for s, external_id, _, _ in self.sightings if s == source}


def snapshot(url: str) -> Snapshot:
    """Return what the database at `url` holds."""
    engine = Store(url).engine
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(mentions)).mappings().all()
            keys = {row["id"]: (row["source"], row["external_id"]) for row in rows}
            found = {
                (row["source"], row["external_id"]): {
                    k: v for k, v in row.items() if k not in COLLECTION_TIMES
                }
                for row in rows
            }
            seen = {
                (row.source, row.external_id, row.url, keys[row.mention_id])
                for row in conn.execute(sa.select(sightings))
            }
            states = {row.source: dict(row.state) for row in conn.execute(sa.select(cursors))}
    finally:
        engine.dispose()
    return Snapshot(found, seen, states)


def assert_intact(url: str) -> None:
    """Fail unless the database passes its own consistency checks."""
    if url.startswith("sqlite"):
        with sqlite3.connect(sa.engine.make_url(url).database or "") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    store = Store(url)
    try:
        # The hourly rollups are written in the same transactions as the mentions they count.
        assert store.rollup_problems() == []
    finally:
        store.close()


def assert_same(actual: Snapshot, expected: Snapshot) -> None:
    """Fail unless two databases hold the same mentions and sightings."""
    missing = expected.mentions.keys() - actual.mentions.keys()
    extra = actual.mentions.keys() - expected.mentions.keys()
    assert not missing and not extra, (sorted(missing)[:5], sorted(extra)[:5])
    differing = [k for k in expected.mentions if actual.mentions[k] != expected.mentions[k]]
    assert not differing, [(actual.mentions[k], expected.mentions[k]) for k in differing[:2]]
    assert actual.sightings == expected.sightings


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return the URL of a fresh database for the killed runs: a SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'killed.db'}"
    return str(request.getfixturevalue("postgres_url"))


# -- import ---------------------------------------------------------------------------------------


def sentence(rng: random.Random) -> str:
    """Return a short post that names the brand."""
    return f"{BRAND} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12)))


@dataclass(frozen=True)
class ImportWorld:
    folder: Path
    rows: Path  # the file whose import is killed
    seed_rows: Path  # imported first, from another source: some rows repeat its stories
    valid_ids: list[str]  # external ids of the rows that become mentions, in file order
    reference: Snapshot
    duration: float


@pytest.fixture(scope="module")
def import_world(tmp_path_factory: pytest.TempPathFactory) -> ImportWorld:
    """Write the files and import them once, uninterrupted, into the reference database."""
    folder = tmp_path_factory.mktemp("import")
    rng = random.Random(SEED)
    seed_texts = [sentence(rng) for _ in range(300)]
    seed_rows = folder / "seed.csv"
    with seed_rows.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "text", "published_at"])
        for i, text in enumerate(seed_texts):
            writer.writerow([f"s{i}", text, (START + timedelta(hours=i)).isoformat()])

    rows = folder / "rows.csv"
    valid: list[str] = []
    with rows.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["external_id", "title", "text", "author", "url", "published_at", "score", "lang"]
        )
        for i in range(IMPORT_ROWS):
            external_id = f"r{i}"
            published = (START + timedelta(minutes=rng.randint(0, 60 * 24 * 40))).isoformat()
            text = sentence(rng)
            if i % 997 == 5:
                published = "not a date"  # reported by line, never stored
            elif i % 61 == 7:
                text = rng.choice(seed_texts)  # the seed story again: a sighting
            elif i % 83 == 11 and valid:
                external_id = rng.choice(valid)  # the same post again, grown: an update
            if published != "not a date":
                valid.append(external_id)
            writer.writerow(
                [
                    external_id,
                    rng.choice(["", "", "Re: statement"]),
                    text,
                    f"user{rng.randint(1, 800)}",
                    f"https://forum.example/t/{external_id}",
                    published,
                    rng.randint(0, 5000),
                    rng.choice(["en", "fr", "de"]),
                ]
            )
    url = f"sqlite:///{folder / 'reference.db'}"
    run_cli(["--database", url, "import", str(seed_rows), "--source", "wire"], folder)
    started = time.monotonic()
    run_cli(["--database", url, "import", str(rows), "--source", "forum"], folder)
    duration = time.monotonic() - started
    reference = snapshot(url)
    assert len(reference.mentions) > IMPORT_ROWS * 0.9
    assert {s for s, *_ in reference.sightings} == {"forum"}  # the repeated seed stories
    return ImportWorld(folder, rows, seed_rows, valid, reference, duration)


def batch_prefixes(valid_ids: list[str]) -> list[set[str]]:
    """Return the ids stored after each whole batch of an import, in order (empty first)."""
    ends = [*range(0, len(valid_ids), IMPORT_BATCH), len(valid_ids)]
    return [set(valid_ids[:end]) for end in ends]


def test_a_killed_import_leaves_whole_batches_and_finishes_as_if_never_killed(
    import_world: ImportWorld, database_url: str
) -> None:
    world = import_world
    run_cli(
        ["--database", database_url, "import", str(world.seed_rows), "--source", "wire"],
        world.folder,
    )
    prefixes = batch_prefixes(world.valid_ids)
    partial: list[int] = []

    def after_kill(_kill: Kill) -> None:
        assert_intact(database_url)
        stored = snapshot(database_url).stored("forum")
        assert stored in prefixes, f"{len(stored)} rows stored: not a whole number of batches"
        partial.append(prefixes.index(stored))

    # One kill in each third of the run after start-up, at a seeded random moment.
    rng = random.Random(f"{SEED}-import-{database_url.split(':')[0]}")
    bands = [(0.2, 0.45), (0.45, 0.7), (0.7, 0.95)]
    plan = [Kill(world.duration * rng.uniform(low, high)) for low, high in bands]
    report = kill_and_restart(
        ["--database", database_url, "import", str(world.rows), "--source", "forum"],
        world.folder,
        plan,
        after_kill,
    )
    assert len(report.kills) >= 2, report  # the moments fall inside the run
    assert_intact(database_url)
    assert_same(snapshot(database_url), world.reference)
    # At least one kill landed after some batches were committed and before the last.
    assert any(0 < k < len(prefixes) - 1 for k in partial), partial


# -- collect --------------------------------------------------------------------------------------

FEEDS = 8
ITEMS_PER_FEED = 300
HN_HITS = 1500
NEWS, HACKERNEWS = "news: collecting", "hackernews: collecting"  # progress lines on stderr


@dataclass(frozen=True)
class Item:
    guid: str
    title: str
    text: str
    link: str
    published: datetime


@dataclass
class CollectWorld:
    folder: Path
    server: ReplayServer
    feeds: dict[str, list[Item]]  # feed URL -> items
    hits: list[dict[str, Any]]
    reference: Snapshot = field(default_factory=lambda: Snapshot({}, set(), {}))
    # How long the uninterrupted run spent on each source, from its "NAME: collecting" line.
    news_seconds: float = 0.0
    hackernews_seconds: float = 0.0

    def config(self, database_url: str) -> list[str]:
        return ["--config", str(self.folder / "monitor.toml"), "--database", database_url]


def news_items(rng: random.Random, base: str) -> dict[str, list[Item]]:
    """Return FEEDS feeds (by URL on `base`) of ITEMS_PER_FEED items, some shared between feeds."""
    feeds: dict[str, list[Item]] = {}
    shared: list[Item] = []
    for f in range(FEEDS):
        items: list[Item] = []
        for i in range(ITEMS_PER_FEED):
            published = START + timedelta(minutes=rng.randint(0, 60 * 24 * 30))
            if shared and i % 23 == 0:
                # The same article in another feed: stored once, plus a sighting.
                original = rng.choice(shared)
                items.append(
                    Item(
                        f"f{f}-{i}",
                        original.title,
                        original.text,
                        original.link,
                        original.published,
                    )
                )
                continue
            # A few headlines are about another company: collected, but skipped by matching.
            name = BRAND if i % 31 else "Contoso Ltd"
            item = Item(
                f"f{f}-{i}",
                f"{name} {' '.join(rng.choice(WORDS) for _ in range(6))}",
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 40))),
                f"https://paper{f}.example/story/{i}",
                published,
            )
            items.append(item)
            if name == BRAND and i % 7 == 0:
                shared.append(item)
        feeds[f"{base}/feeds/{f}.xml"] = items
    return feeds


def rss(items: list[Item]) -> bytes:
    """Return an RSS 2.0 document of `items`."""
    entries = "".join(
        f"<item><title>{escape(item.title)}</title><link>{escape(item.link)}</link>"
        f"<guid isPermaLink='false'>{item.guid}</guid>"
        f"<pubDate>{format_datetime(item.published, usegmt=True)}</pubDate>"
        f"<description>{escape(item.text)}</description></item>"
        for item in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Wire</title>'
        f"<link>https://wire.example/</link>{entries}</channel></rss>"
    ).encode()


def hn_hits(rng: random.Random, feeds: dict[str, list[Item]]) -> list[dict[str, Any]]:
    """Return HN_HITS Algolia hits: comments, and stories that repeat a news article."""
    articles = [item for items in feeds.values() for item in items if BRAND in item.title]
    hits: list[dict[str, Any]] = []
    for i in range(HN_HITS):
        created = START + timedelta(minutes=rng.randint(0, 60 * 24 * 30))
        if i % 50 == 0:
            # An article posted to HN word for word: the same story from another source.
            article = rng.choice(articles)
            title, text = article.title, article.text
        else:
            title, text = "", f"{sentence(rng)} ({i})"
        hit: dict[str, Any] = {
            "objectID": str(40_000_000 + i),
            "created_at_i": int(created.timestamp()),
            "author": f"hn{rng.randint(1, 400)}",
            "points": rng.randint(1, 900),
            "num_comments": rng.randint(0, 300),
        }
        if title:
            hit.update(_tags=["story"], title=title, story_text=text, url=None)
        else:
            hit.update(
                _tags=["comment"],
                comment_text=text,
                story_id=39_000_000,
                story_title=f"{BRAND} statement",
            )
        hits.append(hit)
    return hits


@pytest.fixture(scope="module")
def collect_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectWorld]:
    """Serve many feeds and a Hacker News search on loopback; collect once into the reference."""
    folder = tmp_path_factory.mktemp("collect")
    rng = random.Random(SEED)
    with ReplayServer() as server:
        feeds = news_items(rng, server.base)
        for url, items in feeds.items():
            server.add(
                url.removeprefix(server.base),
                body=rss(items),
                headers={"Content-Type": "application/rss+xml"},
                etag=f'"{url.rsplit("/", 1)[1]}-v1"',
            )
        hits = hn_hits(rng, feeds)
        server.add(
            "/api/v1/search_by_date",
            body=json.dumps({"hits": hits, "nbPages": 1}).encode(),
            headers={"Content-Type": "application/json"},
        )
        feed_list = ", ".join(f'"{url}"' for url in feeds)
        (folder / "monitor.toml").write_text(
            f"""
[brand]
name = "{BRAND}"
aliases = ["Northwind"]
exclude = ["Northwind Traders"]

[alerts]
check_after_collect = false

[sources.news]
feeds = [{feed_list}]
max_items_per_feed = {ITEMS_PER_FEED}

[sources.hackernews]
base_url = "{server.base}"
backfill = "4000d"
lookback = "1d"
""",
            encoding="utf-8",
        )
        world = CollectWorld(folder, server, feeds, hits)
        url = f"sqlite:///{folder / 'reference.db'}"
        run = run_cli([*world.config(url), "collect"], folder)
        world.news_seconds = run.when(HACKERNEWS) - run.when(NEWS)
        world.hackernews_seconds = run.lines[-1][0] - run.when(HACKERNEWS)
        world.reference = snapshot(url)
        assert world.reference.stored("news") and world.reference.stored("hackernews")
        assert {s for s, *_ in world.reference.sightings} == {"news", "hackernews"}
        yield world


def uncovered(world: CollectWorld, found: Snapshot) -> list[str]:
    """Return the items a saved cursor says are collected but which are not stored."""
    problems: list[str] = []
    expected = world.reference
    news_cursor = found.cursors.get("news", {}).get("feeds", {})
    stored_news = found.stored("news")
    for feed_url in news_cursor:
        # A feed's validators mean "unchanged since": its next fetch is a 304 with no items.
        want = {
            k
            for k in expected.stored("news")
            if k.endswith(tuple(f":{item.guid}" for item in world.feeds[feed_url]))
        }
        problems += [f"news {k} (feed {feed_url})" for k in sorted(want - stored_news)]
    stored_hn = found.stored("hackernews")
    for term, since in found.cursors.get("hackernews", {}).get("since", {}).items():
        # Hits at or before `since` are never asked for again.
        covered = {
            hit["objectID"]
            for hit in world.hits
            if hit["created_at_i"] <= since and hit["objectID"] in expected.stored("hackernews")
        }
        problems += [f"hackernews {k} (term {term})" for k in sorted(covered - stored_hn)]
    return problems


def test_a_killed_collect_stores_whole_sources_and_finishes_as_if_never_killed(
    collect_world: CollectWorld, database_url: str
) -> None:
    world = collect_world
    seen: list[tuple[bool, bool]] = []

    def after_kill(_kill: Kill) -> None:
        assert_intact(database_url)
        found = snapshot(database_url)
        for source in ("news", "hackernews"):
            stored, cursor = found.stored(source), source in found.cursors
            # One transaction per source: all of its items and its cursor, or none of them.
            assert stored in (set(), world.reference.stored(source)), (source, len(stored))
            assert cursor == bool(stored), (source, cursor, len(stored))
        assert uncovered(world, found) == []
        seen.append((bool(found.stored("news")), bool(found.stored("hackernews"))))

    # Seeded random moments: while news is read and stored; early in Hacker News, when news
    # is committed and Hacker News is not yet; anywhere in the run.
    rng = random.Random(f"{SEED}-collect-{database_url.split(':')[0]}")
    news, hackernews = world.news_seconds, world.hackernews_seconds
    plan = [
        Kill(rng.uniform(0, news), after=NEWS),
        Kill(rng.uniform(0, hackernews / 2), after=HACKERNEWS),
        Kill(rng.uniform(0, news + hackernews), after=NEWS),
    ]
    report = kill_and_restart(
        [*world.config(database_url), "collect"], world.folder, plan, after_kill
    )
    assert len(report.kills) >= 2, report
    assert (True, False) in seen  # a restart picked up after one source and before the next
    assert_intact(database_url)
    final = snapshot(database_url)
    assert_same(final, world.reference)
    assert uncovered(world, final) == []
    assert final.cursors.keys() == {"news", "hackernews"}

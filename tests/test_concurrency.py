"""Reading while a writer writes: the dashboard never sees a lock error or a half-written batch.

A writer process imports continuously: file after file of exactly K mentions, each stored in
one transaction, and every UPDATE_EVERY-th transaction re-imports an earlier file with grown
engagement (K updates, no new rows). While it runs, for REPMON_SOAK_SECONDS (60 by default):

- three real browser sessions (Chromium via Playwright, each its own context) reload the
  Overview and Mentions pages of `streamlit run app.py` pointed at the same database;
- reader threads call the Store queries the dashboard makes, on one shared Store as the
  dashboard does;
- a snapshot reader reads the data version, the mentions and the hourly rollups in one
  read transaction.

What must hold: no page and no reader ever shows an exception ("database is locked" or any
other); every count a reader sees is a multiple of K (a batch is all there or not at all);
counts never go backwards; the totals of daily and hourly series read between two counts lie
between them; inside one transaction the rollups agree with the mentions and the count is
exactly what the data version says the writer had committed; the writer never fails.

And several writers at once (`repmon watch` while someone presses "Collect now", an import
during a collect) importing the same files: each mention is stored and counted once.
"""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.config import BrandConfig, Settings
from monitor.models import MentionQuery
from monitor.pipeline import import_file
from monitor.store import Store
from tests.conftest import CHROMIUM, ROOT, require
from tests.streamlit_server import streamlit_server
from tests.test_dashboard_browser import CHROMIUM_ARGS

SOAK_SECONDS = float(os.environ.get("REPMON_SOAK_SECONDS", "60"))
K = 40  # mentions per writer transaction
UPDATE_EVERY = 5  # every 5th transaction updates K stored mentions instead of adding K
BROWSER_SESSIONS = 3
READER_THREADS = 3
BRAND = "Northwind Bank"
DAY = datetime(2024, 5, 20, tzinfo=UTC)  # every mention is on this day: any window holds all
PAGE_MS = 180_000  # a page under a busy machine may take long; a hang still fails
# Words that only an error puts on a page (the writer's texts use none of them).
ERROR_WORDS = re.compile(r"locked|Traceback|Exception|OperationalError|Error:", re.IGNORECASE)
WORDS = [
    *("breach", "card", "refund", "support", "password", "leak", "app", "branch", "letter"),
    *("credit", "monitoring", "stolen", "data", "customers", "week", "statement", "hackers"),
    *("thanks", "angry", "waiting", "hours", "great", "awful"),
]


# -- the writer (runs in its own process) --------------------------------------------------------


def batch_file(folder: Path, batch: int, grown: int = 0) -> Path:
    """Write batch number `batch` as a CSV of K rows; `grown` adds to every score (an update)."""
    rng = random.Random(batch)
    path = folder / f"batch-{batch}-{grown}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "text", "author", "published_at", "score"])
        for i in range(K):
            minute = rng.randint(0, 24 * 60 - 1)
            text = f"{BRAND} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 20)))
            writer.writerow(
                [
                    f"b{batch}-{i}",
                    text,
                    f"user{rng.randint(1, 300)}",
                    (DAY + timedelta(minutes=minute)).isoformat(),
                    rng.randint(0, 500) + grown,
                ]
            )
    return path


def write_continuously(url: str, folder: str, stop: str) -> None:
    """Import K-mention files until the file `stop` appears; print what was committed as JSON.

    Transaction n (from 1) adds K new mentions, except when n is a multiple of UPDATE_EVERY:
    then it grows the engagement of an earlier batch's K mentions.
    """
    store = Store(url)
    settings = Settings(brand=BrandConfig(BRAND), database_url=url)
    where = Path(folder)
    transactions = batches = updates = 0
    while not Path(stop).exists():
        transactions += 1
        if transactions % UPDATE_EVERY == 0:
            report = import_file(
                store,
                settings,
                batch_file(where, transactions % batches, grown=transactions),
                fmt="csv",
                source="forum",
            )
            assert (report.new, report.updated, report.failed) == (0, K, 0), report
            updates += 1
        else:
            report = import_file(
                store, settings, batch_file(where, batches), fmt="csv", source="forum"
            )
            assert (report.new, report.failed) == (K, 0), report
            batches += 1
    print(json.dumps({"transactions": transactions, "batches": batches, "updates": updates}))


def expected_count(version: int) -> int:
    """Return how many mentions the writer had stored once `version` transactions committed."""
    return K * (version - version // UPDATE_EVERY)


# -- the readers ---------------------------------------------------------------------------------


@dataclass
class Observations:
    """What the readers saw, and every problem they met (an exception is a problem)."""

    problems: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # from the Store's queries
    snapshots: list[tuple[int, int]] = field(default_factory=list)  # (data version, mentions)
    page_counts: list[int] = field(default_factory=list)  # from the Mentions page
    page_loads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set once the dashboard has served its first page: the soak starts then and lasts until
    # `deadline` (until it starts, there is none).
    ready: threading.Event = field(default_factory=threading.Event)
    deadline: float = float("inf")

    def going(self) -> bool:
        return time.monotonic() < self.deadline

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


def read_like_the_dashboard(store: Store, seen: Observations) -> None:
    """Call the queries the dashboard pages make, over and over, checking what comes back."""
    day = MentionQuery(since=DAY, until=DAY + timedelta(days=1))
    previous = 0
    while seen.going():
        try:
            version = store.data_version()
            before = store.count_mentions()
            daily = int(store.daily_counts(day)["mentions"].sum())
            hourly = int(store.hourly_counts()["mentions"].sum())
            in_window = store.count_mentions(day)
            topics = store.topic_counts(day, ["breach", "cards"])
            page = store.mentions_frame(day, order_by="engagement", limit=50)
            bounds = store.time_bounds()
            sources = store.sources()
            runs = store.recent_runs(20)
            store.alerts(limit=20)
            after = store.count_mentions()
            later_version = store.data_version()
        except Exception as failure:  # any exception is what this test is looking for
            seen.problem(f"reader: {type(failure).__name__}: {failure}")
            continue
        for name, value in (
            ("count", before),
            ("daily", daily),
            ("hourly", hourly),
            ("window", in_window),
            ("count", after),
        ):
            if value % K:
                seen.problem(f"reader: {name} {value} is not a whole number of batches of {K}")
        if not previous <= before <= daily <= hourly <= in_window <= after:
            seen.problem(f"reader: went backwards: {previous, before, daily, hourly, after}")
        if later_version < version:
            seen.problem(f"reader: data version went back from {version} to {later_version}")
        if before and (bounds is None or sources != ["forum"] or len(page) < min(50, before)):
            seen.problem(f"reader: {len(page)} rows on a page of {before}; {bounds}, {sources}")
        if any(v > after for v in topics.values()):
            seen.problem(f"reader: topic counts {topics} above {after} mentions")
        if any(run.status not in ("running", "ok") for run in runs):
            seen.problem(f"reader: runs {[(r.status, r.error) for r in runs]}")
        previous = after
        with seen.lock:
            seen.counts.append(after)


SNAPSHOT_SQL = (
    "SELECT value FROM meta WHERE key = 'data_version'",
    "SELECT count(*) FROM mentions",
    "SELECT coalesce(sum(mentions), 0) FROM rollup_hours",
)


def read_snapshots(url: str, seen: Observations) -> None:
    """Read the version, the mentions and the rollups in one read transaction, repeatedly."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(
            sa.engine.make_url(url).database or "", timeout=30, isolation_level=None
        )

        def read() -> list[Any]:
            conn.execute("BEGIN")  # a WAL reader's snapshot lasts until COMMIT
            try:
                return [conn.execute(sql).fetchone()[0] for sql in SNAPSHOT_SQL]
            finally:
                conn.execute("COMMIT")

        close: Callable[[], None] = conn.close
    else:
        store = Store(url)
        engine = store.engine.execution_options(isolation_level="REPEATABLE READ")

        def read() -> list[Any]:
            with engine.begin() as connection:
                return [connection.exec_driver_sql(sql).scalar_one() for sql in SNAPSHOT_SQL]

        close = store.close
    try:
        while seen.going():
            try:
                version, stored, rolled = (int(v) for v in read())
            except Exception as failure:
                seen.problem(f"snapshot: {type(failure).__name__}: {failure}")
                continue
            if not stored == rolled == expected_count(version):
                seen.problem(
                    f"snapshot: data version {version} means {expected_count(version)} "
                    f"mentions; stored {stored}, rollups {rolled}"
                )
            with seen.lock:
                seen.snapshots.append((version, stored))
            time.sleep(0.005)  # pacing, not waiting: a busy loop would starve the writer
    finally:
        close()


# -- the dashboard in real browsers --------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    url: str
    log: Path


@pytest.fixture
def dashboard_factory(tmp_path: Path) -> Iterator[Callable[[str], Dashboard]]:
    """Return a function that starts `streamlit run app.py` on a database (stopped afterwards)."""
    running = ExitStack()

    def start(database_url: str) -> Dashboard:
        require(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM}")
        require(importlib.util.find_spec("playwright"), "playwright is not installed")
        folder = tmp_path / "app"
        folder.mkdir()
        (folder / "monitor.toml").write_text(f'[brand]\nname = "{BRAND}"\n', encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        env["MONITOR_DATABASE_URL"] = database_url
        log = folder / "streamlit.log"
        url = running.enter_context(streamlit_server(folder, env, log))
        return Dashboard(url, log)

    with running:
        yield start


IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
DOWNLOAD = re.compile(r"Download CSV \(([\d,]+) rows\)")


async def browse(dashboard: Dashboard, seen: Observations) -> None:
    """Load the Overview once to warm the server up, say so, then reload the Overview and
    Mentions pages in BROWSER_SESSIONS browser contexts at once until the soak ends."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            try:
                context = await browser.new_context()
                await load(await context.new_page(), dashboard.url + "/", "stMetric")
                await context.close()
            finally:
                seen.ready.set()
            await asyncio.gather(
                *(session(browser, n, dashboard, seen) for n in range(BROWSER_SESSIONS))
            )
        finally:
            await browser.close()


async def load(page: Any, url: str, ready: str) -> tuple[str, int]:
    """Open `url`; wait until the page is drawn (or failed) and its script has finished.

    Return the app's text and how many exceptions and error boxes it shows.
    """
    await page.goto(url)
    await page.wait_for_selector(
        f'[data-testid="{ready}"], [data-testid="stException"]', timeout=PAGE_MS
    )
    await page.wait_for_selector(IDLE, timeout=PAGE_MS)
    text = await page.locator('[data-testid="stApp"]').inner_text()
    failures = await page.locator(
        '[data-testid="stException"], [data-testid="stAlertContentError"]'
    ).count()
    return str(text), int(failures)


async def session(browser: Any, n: int, dashboard: Dashboard, seen: Observations) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    pages = [("/", "stMetric"), ("/explorer", "stDownloadButton")]
    try:
        while seen.going():
            for path, ready in pages:
                where = f"session {n} {path}"
                try:
                    text, failures = await load(page, dashboard.url + path, ready)
                except Exception as failure:  # a timeout or a crash is a finding too
                    seen.problem(f"{where}: {type(failure).__name__}: {failure}")
                    continue
                with seen.lock:
                    seen.page_loads += 1
                if failures or ERROR_WORDS.search(text):
                    seen.problem(f"{where}: an error on the page:\n{text[:2000]}")
                    continue
                if path == "/explorer":
                    found = DOWNLOAD.search(text)
                    if found is None:
                        seen.problem(f"{where}: no download button with a row count:\n{text}")
                        continue
                    rows = int(found.group(1).replace(",", ""))
                    if rows % K:
                        seen.problem(f"{where}: {rows} rows is not whole batches of {K}")
                    with seen.lock:
                        seen.page_counts.append(rows)
    finally:
        await context.close()


# -- the soak ------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_readers_never_see_a_lock_error_or_half_a_batch_while_a_writer_imports(
    database_url: str, tmp_path: Path, dashboard_factory: Callable[[str], Dashboard]
) -> None:
    Store(database_url).close()  # the schema exists before anyone reads
    dashboard = dashboard_factory(database_url)
    seen = Observations()
    browsing = threading.Thread(target=lambda: asyncio.run(browse(dashboard, seen)))
    browsing.start()
    assert seen.ready.wait(PAGE_MS / 1000), "the dashboard never served its first page"

    files, stop = tmp_path / "batches", tmp_path / "stop"
    files.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    seen.deadline = time.monotonic() + SOAK_SECONDS
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from tests.test_concurrency import write_continuously; "
            "write_continuously(*sys.argv[1:])",
            database_url,
            str(files),
            str(stop),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    shared = Store(database_url)  # one store for every reader thread, as the dashboard has
    readers = [
        threading.Thread(target=read_like_the_dashboard, args=(shared, seen))
        for _ in range(READER_THREADS)
    ]
    readers.append(threading.Thread(target=read_snapshots, args=(database_url, seen)))
    try:
        for thread in readers:
            thread.start()
    finally:
        # Every reader reads while the writer writes: it stops only when they are done.
        for thread in [*readers, browsing]:
            thread.join(timeout=SOAK_SECONDS + 2 * PAGE_MS / 1000)
        stop.touch()
        out, err = writer.communicate(timeout=PAGE_MS / 1000)
        shared.close()

    # The writer never failed, and committed what it says.
    errors = err.decode(errors="replace")
    assert writer.returncode == 0, errors
    assert not ERROR_WORDS.search(errors), errors
    done = json.loads(out.decode().strip().splitlines()[-1])
    final = Store(database_url)
    try:
        assert final.count_mentions() == K * done["batches"] == expected_count(final.data_version())
        assert final.rollup_problems() == []
    finally:
        final.close()

    streamlit_log = dashboard.log.read_text(errors="replace")
    assert not ERROR_WORDS.search(streamlit_log), streamlit_log[-3000:]
    assert seen.problems == [], "\n".join(seen.problems[:20])
    # The readers did read while the writer wrote: they saw the data grow, batch by batch.
    assert done["transactions"] >= 2 * UPDATE_EVERY, done
    assert len(set(seen.counts)) > 2 and len(set(seen.snapshots)) > 2
    assert seen.page_loads >= 2 * BROWSER_SESSIONS and len(set(seen.page_counts)) > 1


# -- several writers at once ---------------------------------------------------------------------

WRITERS = 3
SHARED_FILES = 30


def import_files(url: str, *paths: str) -> None:
    """Import each file in turn (one writer of several, in its own process)."""
    store = Store(url)
    settings = Settings(brand=BrandConfig(BRAND), database_url=url)
    for path in paths:
        report = import_file(store, settings, Path(path), fmt="csv", source="forum")
        assert report.failed == 0 and report.new + report.unchanged == K, report
    store.close()


def test_writers_importing_the_same_files_at_once_store_and_count_each_mention_once(
    database_url: str, tmp_path: Path
) -> None:
    """`repmon watch` and "Collect now", or an import during a collect: whichever writer stores
    a mention first, it is stored and counted once, and the data version moves once per batch."""
    Store(database_url).close()
    files = [str(batch_file(tmp_path, batch)) for batch in range(SHARED_FILES)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from tests.test_concurrency import import_files; "
                "import_files(*sys.argv[1:])",
                database_url,
                *files,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(WRITERS)
    ]
    for writer in writers:
        output, _ = writer.communicate(timeout=300)
        assert writer.returncode == 0, output.decode(errors="replace")
    store = Store(database_url)
    try:
        with store.engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM mentions")).scalar_one()
        assert stored == store.count_mentions() == K * SHARED_FILES
        assert store.rollup_problems() == []
        assert store.data_version() == SHARED_FILES
    finally:
        store.close()

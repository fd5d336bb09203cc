"""The one path every mention takes into the store.

collect (collector, with its cursor) -> match (brand terms and exclusions) -> score ->
upsert with the new cursor (one transaction) -> record the run. One failing source is
recorded with its reason; the others still run.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.collectors import REGISTRY, CollectContext, CollectorError, importers
from monitor.collectors.http import DEFAULT_USER_AGENT, FetchError, HttpClient
from monitor.config import ConfigError, Settings, redact_secrets
from monitor.matching import BrandMatcher
from monitor.models import Alert, CollectionRun, Mention, utcnow
from monitor.scoring import Scorer, default_scorer
from monitor.store import PreparedRow, Store, UpsertResult

log = logging.getLogger(__name__)


def ingest(
    store: Store,
    mentions: Iterable[Mention],
    scorer: Scorer | None = None,
    *,
    cursor: tuple[str, dict[str, object]] | None = None,
) -> UpsertResult:
    """Score `mentions` and upsert them (with `cursor`, in the same transaction)."""
    scored = (scorer or default_scorer()).score_mentions(mentions)
    return store.upsert_mentions(scored, cursor=cursor)


def enabled_sources(settings: Settings) -> list[str]:
    """Return the sources configured in [sources.NAME] and not switched off, in config order."""
    return [
        name for name, table in settings.sources.items() if table.get("enabled", True) is not False
    ]


def check_source_names(settings: Settings, names: Sequence[str]) -> None:
    """Raise ConfigError for a source name no collector answers to."""
    for name in names:
        if name not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            where = settings.config_path or "monitor.toml"
            raise ConfigError(f"{where}: no collector is called {name!r}. Known sources: {known}.")


def make_http(settings: Settings) -> HttpClient:
    """Return the HTTP client collectors share, with the configured User-Agent and timeout."""
    return HttpClient(
        user_agent=settings.user_agent or DEFAULT_USER_AGENT, timeout=settings.http_timeout
    )


def collect(
    store: Store,
    settings: Settings,
    *,
    only: Sequence[str] = (),
    http: HttpClient | None = None,
    now: datetime | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> list[CollectionRun]:
    """Run every enabled source once (or just `only`) and return each source's run record."""
    names = list(only) or enabled_sources(settings)
    check_source_names(settings, names)
    own_http = http is None
    client = http or make_http(settings)
    try:
        runs = [
            run_source(store, settings, name, http=client, now=now, on_progress=on_progress)
            for name in names
        ]
    finally:
        if own_http:
            client.close()
    if settings.check_alerts_after_collect and any(run.new or run.updated for run in runs):
        check_alerts(store, settings, on_progress=on_progress)
    return runs


def send_alert(alert: Alert, settings: Settings) -> tuple[list[str], list[str]]:
    """Send `alert` through every configured channel; return (delivered, failed with reason)."""
    from monitor.alerts.channels import notify

    delivery = notify(alert, settings)
    return list(delivery.sent), list(delivery.failures)


def check_alerts(
    store: Store, settings: Settings, *, on_progress: Callable[[str], None] | None = None
) -> list[Alert]:
    """Evaluate the alert rules now and send what fires; a failure here never loses data."""
    from monitor.alerts import engine

    try:
        result = engine.check(store, settings, send=send_alert)
    except Exception:  # the collected data is stored already; report and carry on
        log.exception("alert check failed")
        return []
    for alert in result.fired:
        if on_progress:
            on_progress(f"alert: [{alert.severity}] {alert.rule}: {alert.message}")
    return result.fired


def run_source(
    store: Store,
    settings: Settings,
    name: str,
    *,
    http: HttpClient,
    now: datetime | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> CollectionRun:
    """Collect one source, store what matches, and record the run: never raises for the source."""
    run = store.start_run(name)
    if on_progress:
        on_progress(f"{name}: collecting")
    try:
        collector = REGISTRY[name]()
        ctx = CollectContext(
            source=name,
            brand=settings.brand,
            options=settings.sources.get(name, {}),
            secrets=settings.secrets,
            cursor=store.get_cursor(name),
            http=http,
            now=now or utcnow(),
            config_path=settings.config_path,
            progress=on_progress,
        )
        collected = list(collector.collect(ctx))
        if getattr(collector, "always_about_brand", False):
            kept = collected
        else:
            matcher = BrandMatcher(settings.brand)
            kept = [m for m in collected if matcher.matches(m.full_text)]
        result = ingest(store, kept, cursor=(name, ctx.cursor))
        run.new, run.updated = result.new, result.updated
        run.unchanged, run.duplicates = result.unchanged, result.duplicates
        run.skipped = len(collected) - len(kept)
        run.status = "partial" if ctx.problems else "ok"
        run.error = "\n".join(ctx.problems)
    except (CollectorError, FetchError, ConfigError) as failure:
        run.status, run.error = "failed", str(failure)
    except Exception as failure:  # one source's bug must not stop the others
        log.exception("collector %s crashed", name)
        run.status, run.error = "failed", f"unexpected error: {type(failure).__name__}: {failure}"
    run.error = redact_secrets(run.error, settings.secrets)
    store.finish_run(run)
    if on_progress:
        on_progress(f"{name}: {run.status}")
    return run


@dataclass
class ImportReport:
    """What an import did, row by row."""

    path: Path
    source: str
    rows: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    skipped: int = 0  # rows that do not name the brand (only with match=True)
    failed: int = 0
    problems: list[str] = field(default_factory=list)  # the first MAX_PROBLEMS, by line

    def summary(self) -> str:
        """Return one line a person can read."""
        return (
            f"{self.rows:,} rows from {self.path.name} as source {self.source!r}: "
            f"{self.new:,} new, {self.updated:,} updated, {self.unchanged:,} unchanged, "
            f"{self.duplicates:,} duplicates, {self.skipped:,} skipped, {self.failed:,} failed"
        )


MAX_PROBLEMS = 20
MAX_SOURCE_NAME = 64  # the store's column width
IMPORT_BATCH = 2000  # mentions per transaction
CHUNK = 500  # records per task handed to a worker: small, so the writer starts early
# With fewer lines than this an import runs in one process: starting workers, and the
# writer waiting for their first rows, would cost more than they save (measured: even at
# about 3,000 rows).
PARALLEL_MIN_LINES = 4000
# Chunks read ahead per worker: enough to keep workers busy while the writer commits a batch.
IN_FLIGHT = 4
# A worker's part of a mention costs about 70 µs and the writer's about 40 µs (SQLite), so a
# few workers keep the one writer busy; more would wait for it, each holding memory.
MAX_DEFAULT_WORKERS = 4
WORKER_NICENESS = 10


@dataclass
class _Chunk:
    """What was made of a run of records: rows ready to store, and the rest accounted for."""

    read: int = 0
    rows: list[PreparedRow] = field(default_factory=list)
    skipped: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


class _ChunkMaker:
    """Turns records into scored rows ready to store: convert, match, score, prepare.

    Everything an import does before the write, and nothing that reads the database, so
    it runs in worker processes while the importing process writes.
    """

    def __init__(
        self,
        store: Store,
        parse: Callable[[Any], importers.Record] | None,
        convert: Callable[[importers.Record], Mention],
        matcher: BrandMatcher | None,
        scorer: Scorer,
    ) -> None:
        self.store, self.parse, self.convert = store, parse, convert
        self.matcher, self.scorer = matcher, scorer

    def __call__(self, items: list[Any]) -> _Chunk:
        """Make a chunk of `items`: records, or what `parse` turns into records."""
        chunk = _Chunk(read=len(items))
        kept: list[Mention] = []
        records = items if self.parse is None else map(self.parse, items)
        for record in records:
            if "__error__" in record.data:
                chunk.problems.append((record.line, str(record.data["__error__"])))
                continue
            try:
                mention = self.convert(record)
            except ValueError as reason:
                chunk.problems.append((record.line, str(reason)))
                continue
            if self.matcher is not None and not self.matcher.matches(mention.full_text):
                chunk.skipped += 1
                continue
            kept.append(mention)
        chunk.rows = self.store.prepare(self.scorer.score_mentions(kept))
        return chunk


_worker_maker: _ChunkMaker | None = None  # each worker process's own, set as it starts


def _start_worker(maker: _ChunkMaker, importer: int) -> None:
    global _worker_maker
    _worker_maker = maker
    _die_with(importer)
    # The writing process is the pipeline's narrowest step: when CPUs are short, it goes first.
    os.nice(WORKER_NICENESS)


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with(importer: int) -> None:
    """Have the kernel kill this worker as soon as the importing process `importer` dies.

    A worker holds copies of everything the importer had open, its database connections
    included. Left behind after a `kill -9` of the importer, it would keep PostgreSQL's
    session, and the lock that session holds, alive, and the next import would wait forever.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != importer:  # it died before the call above
        os._exit(1)


def _make_in_worker(items: list[Any]) -> _Chunk:
    assert _worker_maker is not None, "the pool starts every worker with _start_worker"
    return _worker_maker(items)


def _chunks_of(items: Iterable[Any]) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_workers(path: Path, requested: int | None = None) -> int:
    """Return how many worker processes an import of `path` uses (1: none, all in-process):
    `requested`, or by default one per CPU (up to MAX_DEFAULT_WORKERS) for a text file of
    PARALLEL_MIN_LINES or more.

    Workers are forked with what the import has already built (scorer, lexicon, matcher),
    so they start at once. That needs Linux, where fork is the safe default; elsewhere an
    import runs in one process.
    """
    if not sys.platform.startswith("linux"):
        return 1
    if requested is not None:
        return max(1, requested)
    if path.suffix.lower() == ".xlsx" or not _has_lines(path, PARALLEL_MIN_LINES):
        return 1
    return min(MAX_DEFAULT_WORKERS, len(os.sched_getaffinity(0)))


def _has_lines(path: Path, wanted: int) -> bool:
    """Return True if `path` holds at least `wanted` line ends (reading no further)."""
    try:
        with path.open("rb") as handle:
            found = 0
            while found < wanted and (block := handle.read(1 << 20)):
                found += block.count(b"\n")
            return found >= wanted
    except OSError:
        return False  # read_records reports what is wrong with the file


def _made_chunks(maker: _ChunkMaker, items: Iterable[Any], workers: int) -> Iterator[_Chunk]:
    """Yield the chunks `maker` makes of `items`, in file order (a later row for the same
    mention must still win): made by `workers` processes, or in this one when it is 1.

    At most IN_FLIGHT chunks per worker are read ahead, so memory stays bounded when the
    workers outrun the writer. A worker that dies (the OOM killer, a kill) ends the import
    with BrokenProcessPool instead of leaving it waiting for rows that never come.
    """
    if workers <= 1:
        yield from map(maker, _chunks_of(items))
        return
    maker.store.prepare([])  # compile the write statement once, before the workers fork
    pool = ProcessPoolExecutor(
        workers,
        mp_context=mp.get_context("fork"),
        initializer=_start_worker,
        initargs=(maker, os.getpid()),
    )
    pending: deque[Future[_Chunk]] = deque()
    try:
        for chunk in _chunks_of(items):
            pending.append(pool.submit(_make_in_worker, chunk))
            if len(pending) >= IN_FLIGHT * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def import_file(
    store: Store,
    settings: Settings,
    path: Path,
    *,
    fmt: str,
    source: str | None = None,
    mapping: Mapping[str, str] | None = None,
    match: bool = False,
    on_progress: Callable[[int], None] | None = None,
    scorer: Scorer | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Import a file of mentions (backfill or vendor export); re-importing changes nothing.

    Rows are stored as they are (a backfill is already about the brand) unless `match`,
    which keeps only rows naming the brand. Unreadable rows are counted and reported by
    line; they never stop the others. Raises ImportFileError if the file cannot be read.

    Converting, matching and scoring run in `workers` processes (by default one per CPU
    for a file of some size, see import_workers) while this one writes, in file order.
    """
    source = source or importers.DEFAULT_SOURCE.get(fmt, "import")
    if not source.strip() or len(source) > MAX_SOURCE_NAME:
        raise importers.ImportFileError(
            f"source name {source[:80]!r} must be 1 to {MAX_SOURCE_NAME} characters (--source)."
        )
    report = ImportReport(path=path, source=source)
    # JSON lines are parsed where they are converted: a worker, when there are workers.
    by_line = fmt in importers.JSON_LINES
    maker = _ChunkMaker(
        store,
        importers.parse_line if by_line else None,
        importers.converter(fmt, source, mapping or {}),
        BrandMatcher(settings.brand) if match else None,
        scorer or default_scorer(),
    )
    run = store.start_run(f"import:{source}")
    batch: list[PreparedRow] = []

    def flush(size: int) -> None:
        result = store.upsert_prepared(batch[:size])
        report.new += result.new
        report.updated += result.updated
        report.unchanged += result.unchanged
        report.duplicates += result.duplicates
        del batch[:size]
        if on_progress:
            on_progress(report.rows)

    try:
        items = importers.read_lines(path) if by_line else importers.read_records(path, fmt)
        for chunk in _made_chunks(maker, items, import_workers(path, workers)):
            report.rows += chunk.read
            report.skipped += chunk.skipped
            for line, reason in chunk.problems:
                report.failed += 1
                if len(report.problems) < MAX_PROBLEMS:
                    report.problems.append(f"line {line}: {reason}")
            batch.extend(chunk.rows)
            # Whole batches of IMPORT_BATCH, however the chunks fall: a killed import
            # leaves a number of whole batches stored.
            while len(batch) >= IMPORT_BATCH:
                flush(IMPORT_BATCH)
        flush(len(batch))
    except importers.ImportFileError as failure:
        run.new, run.updated, run.unchanged = report.new, report.updated, report.unchanged
        run.status, run.error = "failed", str(failure)
        store.finish_run(run)
        raise
    except Exception as failure:  # the database refused a batch: record why, then report it
        run.new, run.updated, run.unchanged = report.new, report.updated, report.unchanged
        run.status = "failed"
        run.error = f"stopped after {report.rows:,} rows: {type(failure).__name__}: {failure}"
        run.error = redact_secrets(run.error, settings.secrets)
        store.finish_run(run)
        raise importers.ImportFileError(
            f"{path}: the import stopped after {report.rows:,} rows ({report.new:,} stored): "
            f"{type(failure).__name__}: {failure}. Fix the cause and import again: rows "
            "already stored are not duplicated."
        ) from failure
    run.new, run.updated, run.unchanged = report.new, report.updated, report.unchanged
    run.duplicates, run.skipped = report.duplicates, report.skipped
    run.status = "partial" if report.failed else "ok"
    if report.failed:
        run.error = f"{report.failed} rows could not be imported: " + "; ".join(report.problems)
    store.finish_run(run)
    return report

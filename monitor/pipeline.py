"""The one path every mention takes into the store.

collect (collector, with its cursor) -> match (brand terms and exclusions) -> score ->
upsert with the new cursor (one transaction) -> record the run. One failing source is
recorded with its reason; the others still run.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from monitor.collectors import REGISTRY, CollectContext, CollectorError, importers
from monitor.collectors.http import DEFAULT_USER_AGENT, FetchError, HttpClient
from monitor.config import ConfigError, Settings, redact_secrets
from monitor.matching import BrandMatcher
from monitor.models import REMEMBERED_TEXT_CHARS, Alert, CollectionRun, Mention, utcnow
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
    """What an import did with one file, row by row."""

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
    error: str = ""  # why the file as a whole could not be read ("" when it could)

    def summary(self) -> str:
        """Return one line a person can read."""
        return (
            f"{self.rows:,} rows from {self.path.name} as source {self.source!r}: "
            f"{self.new:,} new, {self.updated:,} updated, {self.unchanged:,} unchanged, "
            f"{self.duplicates:,} duplicates, {self.skipped:,} skipped, {self.failed:,} failed"
        )


@dataclass(frozen=True)
class FileToImport:
    """A file to import, how to read it, and the source its rows are stored under (by
    default the format's: twitter, reddit, or import)."""

    path: Path
    fmt: str
    source: str | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)

    @property
    def source_name(self) -> str:
        """Return the source the rows are stored under; raise ImportFileError if unusable."""
        source = self.source or importers.DEFAULT_SOURCE.get(self.fmt, "import")
        if not source.strip() or len(source) > MAX_SOURCE_NAME:
            raise importers.ImportFileError(
                f"source name {source[:80]!r} must be 1 to {MAX_SOURCE_NAME} characters (--source)."
            )
        return source


MAX_PROBLEMS = 20
MAX_SOURCE_NAME = 64  # the store's column width
IMPORT_BATCH = 2000  # mentions per transaction
CHUNK = 500  # records per task handed to a worker: small, so the writer starts early
# Long texts (news articles, whole reviews) end a chunk, or a transaction, sooner: what an
# import holds in flight is bounded by its text, not only by its number of rows.
CHUNK_CHARS = 1_000_000
BATCH_CHARS = 20_000_000
# With fewer lines than this (all files together) an import runs in one process: starting
# workers, and the writer waiting for their first rows, would cost more than they save.
PARALLEL_MIN_LINES = 4000
# Chunks read ahead per worker: enough to keep workers busy while the writer commits a batch.
IN_FLIGHT = 4
# A worker's part of a mention costs about 60 µs and the writer's about 35 µs (SQLite), so a
# few workers keep the one writer busy; more would wait for it, each holding memory.
MAX_DEFAULT_WORKERS = 4
WORKER_NICENESS = 10


@dataclass
class _Chunk:
    """What was made of a run of one file's records: rows ready to store, and the rest
    accounted for."""

    file: int  # the file's place in the import
    read: int = 0
    rows: list[PreparedRow] = field(default_factory=list)
    chars: int = 0  # the length of the rows' titles and texts, together
    skipped: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


@dataclass(frozen=True)
class _FileEnd:
    """Every record of a file has been read, or reading it failed with `failure`."""

    file: int
    failure: importers.ImportFileError | None = None


# A run of one file's records (or lines, to be parsed where they are converted).
_Job = tuple[int, list[Any]]


class _ChunkMaker:
    """Turns records into scored rows ready to store: parse, convert, match, score, prepare.

    Everything an import does before the write, and nothing that reads the database, so
    it runs in worker processes while the importing process writes.
    """

    def __init__(
        self,
        store: Store,
        readers: Sequence[
            tuple[Callable[[Any], importers.Record] | None, Callable[[importers.Record], Mention]]
        ],
        matcher: BrandMatcher | None,
        scorer: Scorer,
    ) -> None:
        """`readers` holds, for each file, how to parse an item (None: items are records
        already) and how to convert a record."""
        self.store, self.readers, self.scorer = store, readers, scorer
        # Reposts and cross-posts repeat recent texts: each short one is matched once.
        self._matches = None if matcher is None else lru_cache(1 << 14)(matcher.matches)

    def names_brand(self, text: str) -> bool:
        """Return whether `text` names the brand (always, when the import does not match)."""
        if self._matches is None:
            return True
        if len(text) > REMEMBERED_TEXT_CHARS:
            return self._matches.__wrapped__(text)  # not remembered: long texts rarely repeat
        return self._matches(text)

    def __call__(self, job: _Job) -> _Chunk:
        """Make the chunk of a job: a file's place in the import and items read from it."""
        file, items = job
        parse, convert = self.readers[file]
        chunk = _Chunk(file, read=len(items))
        kept: list[Mention] = []
        records = items if parse is None else map(parse, items)
        for record in records:
            if "__error__" in record.data:
                chunk.problems.append((record.line, str(record.data["__error__"])))
                continue
            try:
                mention = convert(record)
            except ValueError as reason:
                chunk.problems.append((record.line, str(reason)))
                continue
            if not self.names_brand(mention.full_text):
                chunk.skipped += 1
                continue
            kept.append(mention)
        chunk.rows = self.store.prepare(self.scorer.score_mentions(kept))
        chunk.chars = sum(len(m.title) + len(m.text) for m in kept)
        return chunk


_worker_maker: _ChunkMaker | None = None  # each worker process's own, set as it starts
_worker_folder: Path | None = None  # where a worker leaves the chunks it makes


def _start_worker(maker: _ChunkMaker, importer: int, folder: Path) -> None:
    global _worker_maker, _worker_folder
    _worker_maker, _worker_folder = maker, folder
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


def _make_in_worker(job: _Job) -> Path:
    """Make a job's chunk and leave it in a file; return the file's path.

    A chunk is about 140 kB pickled. Sent through the pool's pipe, it takes several writes;
    a worker killed between them (the OOM killer) leaves half a message, and the pool's
    reading thread waits for the rest forever instead of reporting the dead worker. A path
    is one write, which a pipe delivers whole or not at all.
    """
    assert _worker_maker is not None, "the pool starts every worker with _start_worker"
    assert _worker_folder is not None, "the pool starts every worker with _start_worker"
    chunk = _worker_maker(job)
    handle, name = tempfile.mkstemp(dir=_worker_folder)
    with os.fdopen(handle, "wb") as file:
        pickle.dump(chunk, file, protocol=pickle.HIGHEST_PROTOCOL)
    return Path(name)


def _chunk_left_in(path: Path) -> _Chunk:
    """Return the chunk a worker left in `path`, and remove the file."""
    with path.open("rb") as file:
        chunk: _Chunk = pickle.load(file)  # noqa: S301 (written by our own worker, in our folder)
    path.unlink()
    return chunk


def _chunks_of(items: Iterable[Any], size: Callable[[Any], int]) -> Iterator[list[Any]]:
    """Yield `items` in lists of CHUNK, or fewer where their `size` reaches CHUNK_CHARS."""
    chunk: list[Any] = []
    chars = 0
    for item in items:
        chunk.append(item)
        chars += size(item)
        if len(chunk) >= CHUNK or chars >= CHUNK_CHARS:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def _line_size(numbered: tuple[int, str]) -> int:
    return len(numbered[1])


def _record_size(record: importers.Record) -> int:
    return sum(len(value) for value in record.data.values() if value.__class__ is str)


def _jobs(files: Sequence[FileToImport]) -> Iterator[_Job | _FileEnd]:
    """Yield each file's records in chunks, then the end of the file; a file that cannot
    be read ends with why, and the next one is read."""
    for file, spec in enumerate(files):
        try:
            if spec.fmt in importers.JSON_LINES:  # parsed where they are converted
                chunks = _chunks_of(importers.read_lines(spec.path), _line_size)
            else:
                chunks = _chunks_of(importers.read_records(spec.path, spec.fmt), _record_size)
            for chunk in chunks:
                yield file, chunk
        except importers.ImportFileError as failure:
            yield _FileEnd(file, failure)
        else:
            yield _FileEnd(file)


def import_workers(paths: Path | Sequence[Path], requested: int | None = None) -> int:
    """Return how many worker processes an import of `paths` uses (1: none, all in-process):
    `requested`, or by default one per CPU (up to MAX_DEFAULT_WORKERS) when the text files
    among them hold PARALLEL_MIN_LINES lines or more.

    Workers are forked with what the import has already built (scorer, lexicon, matcher),
    so they start at once. That needs Linux, where fork is the safe default; elsewhere an
    import runs in one process.
    """
    if not sys.platform.startswith("linux"):
        return 1
    if requested is not None:
        return max(1, requested)
    given = [paths] if isinstance(paths, Path) else paths
    texts = [path for path in given if path.suffix.lower() != ".xlsx"]
    if _lines_up_to(texts, PARALLEL_MIN_LINES) < PARALLEL_MIN_LINES:
        return 1
    return min(MAX_DEFAULT_WORKERS, usable_cpus())


def usable_cpus() -> int:
    """Return how many CPUs this process may run on (its affinity, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _lines_up_to(paths: Iterable[Path], wanted: int) -> int:
    """Return how many line ends `paths` hold together, counting no further than `wanted`."""
    found = 0
    for path in paths:
        try:
            with path.open("rb") as handle:
                while found < wanted and (block := handle.read(1 << 20)):
                    found += block.count(b"\n")
        except OSError:
            continue  # the import reports what is wrong with the file
    return found


@contextmanager
def _old_objects_left_alone() -> Iterator[None]:
    """Keep the objects that exist before an import out of the garbage collector's passes
    while it runs.

    An import allocates rows quickly, so Python's cycle collector runs often, and each full
    pass walks every object in the process: the scorer's lexicons, the modules, whatever
    else the process holds. Measured, one such pass took 0.1 s of a 1 s import. Workers
    forked meanwhile inherit the same, so their passes do not write to (and so copy) the
    pages they share with this process either. Objects made during the import are collected
    as usual; afterwards the old ones are again too.
    """
    if gc.get_freeze_count():  # the program froze objects itself: it is the one to undo that
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _made_chunks(
    maker: _ChunkMaker, jobs: Iterable[_Job | _FileEnd], workers: int
) -> Iterator[_Chunk | _FileEnd]:
    """Yield the chunks `maker` makes of `jobs`, and the ends of files, in order (a later
    row for the same mention must still win): made by `workers` processes, or in this one
    when it is 1.

    At most IN_FLIGHT chunks per worker are read ahead, so memory stays bounded when the
    workers outrun the writer. A worker that dies (the OOM killer, a kill) ends the import
    with BrokenProcessPool instead of leaving it waiting for rows that never come.
    """
    if workers <= 1:
        for job in jobs:
            yield job if isinstance(job, _FileEnd) else maker(job)
        return
    maker.store.prepare([])  # compile the write statement once, before the workers fork
    with _chunk_folder() as folder:
        yield from _made_by_workers(maker, jobs, workers, folder)


def _made_by_workers(
    maker: _ChunkMaker, jobs: Iterable[_Job | _FileEnd], workers: int, folder: Path
) -> Iterator[_Chunk | _FileEnd]:
    """_made_chunks with `workers` processes, which leave the chunks they make in `folder`."""
    pool = ProcessPoolExecutor(
        workers,
        mp_context=mp.get_context("fork"),
        initializer=_start_worker,
        initargs=(maker, os.getpid(), folder),
    )
    pending: deque[Future[Path | _FileEnd]] = deque()

    def made(future: Future[Path | _FileEnd]) -> _Chunk | _FileEnd:
        result = future.result()
        return result if isinstance(result, _FileEnd) else _chunk_left_in(result)

    try:
        for job in jobs:
            if isinstance(job, _FileEnd):
                end: Future[Path | _FileEnd] = Future()
                end.set_result(job)
                pending.append(end)
            else:
                pending.append(pool.submit(_make_in_worker, job))
            if len(pending) >= IN_FLIGHT * workers:
                yield made(pending.popleft())
        # Every job is queued: workers exit as soon as they have made their last chunk,
        # while the last rows are written, instead of after.
        pool.shutdown(wait=False)
        while pending:
            yield made(pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


CHUNK_FOLDER_PREFIX = "repmon-import-"


@contextmanager
def _chunk_folder() -> Iterator[Path]:
    """Yield a private folder (mode 0700) in the temporary directory for the chunks in
    flight; remove it, with whatever is left in it, at the end.

    The folder is locked (flock) for as long as this process and its workers live. The
    kernel drops the lock when they die, SIGKILL included, and the next import removes
    the folders nobody holds: a killed import leaves its chunks behind only until then.
    """
    import fcntl  # Linux only, as are the workers that need the folder

    _remove_abandoned_chunk_folders()
    # Made under another name and renamed once locked, so that no other import ever sees
    # this folder unlocked.
    folder = Path(tempfile.mkdtemp(prefix="." + CHUNK_FOLDER_PREFIX))
    lock = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: the folder stays hidden, never swept
            pass
        else:
            folder = folder.rename(folder.with_name(folder.name.removeprefix(".")))
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(lock)


def _remove_abandoned_chunk_folders() -> None:
    """Remove the chunk folders of imports that were killed: this user's, and unlocked."""
    import fcntl

    for folder in Path(tempfile.gettempdir()).glob(CHUNK_FOLDER_PREFIX + "*"):
        try:
            handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue  # gone already, not a folder, or not ours to open
        try:
            if os.fstat(handle).st_uid != os.getuid():
                continue
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a running import's (or a file system without locks)
        else:
            log.info("removing %s, left by an import that was killed", folder)
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(handle)


class _FileWriter:
    """The importing process's part for one file: counts, its run, and whole batches."""

    def __init__(self, store: Store, settings: Settings, path: Path, source: str) -> None:
        self.store, self.settings = store, settings
        self.report = ImportReport(path=path, source=source)
        self.run = store.start_run(f"import:{source}")
        self.batch: list[PreparedRow] = []
        self.batch_chars = 0  # the length of the batch's texts, about (counted by chunk)

    def add(self, chunk: _Chunk) -> None:
        """Count a chunk and store its rows in whole batches of IMPORT_BATCH."""
        report = self.report
        report.rows += chunk.read
        report.skipped += chunk.skipped
        for line, reason in chunk.problems:
            report.failed += 1
            if len(report.problems) < MAX_PROBLEMS:
                report.problems.append(f"line {line}: {reason}")
        self.batch.extend(chunk.rows)
        self.batch_chars += chunk.chars
        # Whole batches, however the chunks fall: a killed import leaves a number of whole
        # batches stored.
        while len(self.batch) >= IMPORT_BATCH:
            self._flush(IMPORT_BATCH)
        if self.batch_chars >= BATCH_CHARS:  # long texts: a smaller transaction
            self._flush(len(self.batch))

    def _flush(self, size: int) -> None:
        result = self.store.upsert_prepared(self.batch[:size])
        report = self.report
        report.new += result.new
        report.updated += result.updated
        report.unchanged += result.unchanged
        report.duplicates += result.duplicates
        # What is left is reckoned in proportion: counting it exactly would cost a pass.
        left = len(self.batch) - size
        self.batch_chars = self.batch_chars * left // len(self.batch) if left else 0
        del self.batch[:size]

    def finish(self, failure: importers.ImportFileError | None) -> ImportReport:
        """Store the last rows and record the run; or, if reading failed, record why."""
        report, run = self.report, self.run
        if failure is None:
            self._flush(len(self.batch))
        run.new, run.updated, run.unchanged = report.new, report.updated, report.unchanged
        if failure is not None:
            report.error = run.error = str(failure)
            run.status = "failed"
        else:
            run.duplicates, run.skipped = report.duplicates, report.skipped
            run.status = "partial" if report.failed else "ok"
            if report.failed:
                run.error = f"{report.failed} rows could not be imported: " + "; ".join(
                    report.problems
                )
        self.store.finish_run(run)
        return report

    def stopped(self, failure: Exception) -> importers.ImportFileError:
        """Record that the import stopped on `failure` (the database refused a batch, a
        worker died) and return the error that says so."""
        report, run = self.report, self.run
        run.new, run.updated, run.unchanged = report.new, report.updated, report.unchanged
        run.status = "failed"
        run.error = f"stopped after {report.rows:,} rows: {type(failure).__name__}: {failure}"
        run.error = redact_secrets(run.error, self.settings.secrets)
        self.store.finish_run(run)
        return importers.ImportFileError(
            f"{report.path}: the import stopped after {report.rows:,} rows "
            f"({report.new:,} stored): {type(failure).__name__}: {failure}. Fix the cause and "
            "import again: rows already stored are not duplicated."
        )


def import_files(
    store: Store,
    settings: Settings,
    files: Sequence[FileToImport],
    *,
    match: bool = False,
    on_progress: Callable[[int], None] | None = None,
    scorer: Scorer | None = None,
    workers: int | None = None,
) -> list[ImportReport]:
    """Import files of mentions (backfills, vendor exports), in order, each recorded as its
    own run; re-importing changes nothing.

    Rows are stored as they are (a backfill is already about the brand) unless `match`,
    which keeps only rows naming the brand. Unreadable rows are counted and reported by
    line; they never stop the others. A file that cannot be read is reported with why
    (ImportReport.error) and the next is imported. If storing fails, the import stops with
    ImportFileError. `on_progress` is told the rows read so far, of all files.

    Parsing, converting, matching and scoring run in `workers` processes (by default one
    per CPU for files of some size, see import_workers), which go on from one file to the
    next, while this process writes, in file order.
    """
    sources = [spec.source_name for spec in files]  # a bad name stops the import before it starts
    readers = [
        (
            importers.parse_line if spec.fmt in importers.JSON_LINES else None,
            importers.converter(spec.fmt, source, spec.mapping),
        )
        for spec, source in zip(files, sources, strict=True)
    ]
    maker = _ChunkMaker(
        store, readers, BrandMatcher(settings.brand) if match else None, scorer or default_scorer()
    )
    workers = import_workers([spec.path for spec in files], workers)
    reports: list[ImportReport] = []
    writer: _FileWriter | None = None
    rows = 0

    def current() -> _FileWriter:  # the writer of the file now arriving, in file order
        nonlocal writer
        if writer is None:
            file = len(reports)
            writer = _FileWriter(store, settings, files[file].path, sources[file])
        return writer

    try:
        with _old_objects_left_alone():
            for made in _made_chunks(maker, _jobs(files), workers):
                if isinstance(made, _FileEnd):
                    reports.append(current().finish(made.failure))
                    writer = None
                    continue
                current().add(made)
                rows += made.read
                if on_progress:
                    on_progress(rows)
    except Exception as failure:  # the database refused a batch, or a worker died
        if len(reports) == len(files):
            raise
        raise current().stopped(failure) from failure
    return reports


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
    """Import one file as import_files does; raise ImportFileError if it cannot be read."""
    (report,) = import_files(
        store,
        settings,
        [FileToImport(path, fmt, source, mapping or {})],
        match=match,
        on_progress=on_progress,
        scorer=scorer,
        workers=workers,
    )
    if report.error:
        raise importers.ImportFileError(report.error)
    return report

"""Imports with worker processes store exactly what an import in one process stores."""

from __future__ import annotations

import csv
import json
import os
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor import pipeline
from monitor.config import BrandConfig, Settings
from monitor.pipeline import FileToImport, ImportReport, import_file, import_files, import_workers
from monitor.store import Store, metadata

ROOT = Path(__file__).resolve().parent.parent
NORTHWIND = Settings(brand=BrandConfig("Northwind Bank", ("Northwind",)))
START = datetime(2024, 5, 1, tzinfo=UTC)
ROWS = 3 * pipeline.CHUNK + 137  # several chunks per worker, the last one short

needs_fork = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="import workers are forked, on Linux only"
)


def _rows(seed: int) -> list[dict[str, Any] | str]:
    """Rows with everything an import must get right across chunk boundaries: unreadable
    lines, rows not about the brand, a post arriving again with new numbers further on (the
    later one wins), and stories another source already has (kept as sightings)."""
    rng = random.Random(seed)
    words = ["breach", "refund", "card", "stolen", "thanks", "great", "awful", "support"]
    rows: list[dict[str, Any] | str] = []
    for i in range(ROWS):
        if i % 211 == 3:
            rows.append("{not json")
            continue
        if i % 97 == 5:
            rows.append({"external_id": f"n{i}", "text": "no date", "published_at": "soon"})
            continue
        text = " ".join(rng.choice(words) for _ in range(8))
        brand = "" if i % 13 == 0 else "Northwind Bank "
        if i % 89 == 7:
            text = _WIRE[i % len(_WIRE)]  # a story the wire already carried
            brand = ""
        rows.append(
            {
                "external_id": f"p{i}",
                "text": f"{brand}{text} #{i}" if i % 89 != 7 else text,
                "author": f"user{rng.randint(1, 50)}",
                "published_at": (
                    START + timedelta(minutes=rng.randint(0, 60 * 24 * 30))
                ).isoformat(),
                "score": rng.randint(0, 500),
            }
        )
    # The same posts again further on, grown: each is stored once, with the later numbers.
    for i in range(10, ROWS, 173):
        again = rows[i]
        if isinstance(again, dict) and again["external_id"].startswith("p"):
            rows.append({**again, "score": again["score"] + 1000})
    return rows


_WIRE = [
    "Northwind Bank confirms that card numbers of customers were exposed in the breach",
    "Regulators open an inquiry into the Northwind Bank data breach disclosed on Tuesday",
]


def _write(rows: list[dict[str, Any] | str], path: Path, fmt: str) -> Path:
    if fmt == "jsonl":
        lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
    fields = ["external_id", "text", "author", "published_at", "score"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            if isinstance(row, dict):
                writer.writerow({k: row.get(k, "") for k in fields})
    return path


def _wire(folder: Path) -> Path:
    """Write the wire's stories, which the forum rows repeat, as a JSON-lines file."""
    wire = folder / "wire.jsonl"
    wire.write_text(
        "".join(
            json.dumps({"external_id": f"w{i}", "text": text, "published_at": START.isoformat()})
            + "\n"
            for i, text in enumerate(_WIRE)
        ),
        encoding="utf-8",
    )
    return wire


def _import(store: Store, path: Path, fmt: str, workers: int) -> ImportReport:
    import_file(store, NORTHWIND, _wire(path.parent), fmt="jsonl", source="wire", workers=1)
    return import_file(store, NORTHWIND, path, fmt=fmt, source="forum", match=True, workers=workers)


def _contents(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row, ids included (file order decides them)."""
    tables = {
        "mentions": "SELECT id, source, external_id, text, author, score, published_at, "
        "compound, label, topics, content_hash FROM mentions ORDER BY id",
        "sightings": "SELECT mention_id, source, external_id FROM sightings ORDER BY id",
        "rollup_hours": "SELECT hour, source, label, mentions, compound_sum "
        "FROM rollup_hours ORDER BY hour, source, label",
        "rollup_topics": "SELECT hour, source, label, topic, mentions FROM rollup_topics "
        "ORDER BY hour, source, label, topic",
    }
    with store.engine.connect() as conn:
        found = {
            name: [tuple(row) for row in conn.execute(sa.text(sql))] for name, sql in tables.items()
        }
    # Sums added up in another order may differ in the last bits.
    found["rollup_hours"] = [(*row[:4], round(row[4], 6)) for row in found["rollup_hours"]]
    return found


def _counts(report: ImportReport) -> tuple[Any, ...]:
    return (
        report.rows,
        report.new,
        report.updated,
        report.unchanged,
        report.duplicates,
        report.skipped,
        report.failed,
        report.problems,
    )


@needs_fork
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_workers_store_exactly_what_one_process_stores(
    any_store: Store, tmp_path: Path, fmt: str
) -> None:
    rows = _rows(seed=6)
    path = _write(rows, tmp_path / f"forum.{fmt}", fmt)
    alone = Store(f"sqlite:///{tmp_path / 'alone.db'}")
    expected = _import(alone, path, fmt, workers=1)
    report = _import(any_store, path, fmt, workers=2)

    assert _counts(report) == _counts(expected)
    assert report.updated == 0 and report.new < report.rows  # repeats replaced earlier rows
    assert report.duplicates >= 2 and report.skipped > 0
    if fmt == "jsonl":
        assert report.failed > 0 and report.problems[0].startswith("line 4: not JSON")
    got, want = _contents(any_store), _contents(alone)
    if any_store.dialect == "sqlite":
        assert got == want
    else:  # the same values, as each database gives them back
        assert len(got["mentions"]) == len(want["mentions"])
        for mine, theirs in zip(got["mentions"], want["mentions"], strict=True):
            assert mine[:6] == theirs[:6] and mine[7:] == theirs[7:]
        assert got["sightings"] == want["sightings"]
        assert len(got["rollup_hours"]) == len(want["rollup_hours"])
    # The later copy of a repeated post won.
    with any_store.engine.connect() as conn:
        score = conn.execute(sa.text("SELECT score FROM mentions WHERE external_id = 'p10'"))
        assert score.scalar_one() >= 1000
    alone.close()


@needs_fork
def test_importing_again_with_workers_changes_nothing(store: Store, tmp_path: Path) -> None:
    path = _write(_rows(seed=7), tmp_path / "forum.jsonl", "jsonl")
    first = _import(store, path, "jsonl", workers=2)
    before = _contents(store)
    again = _import(store, path, "jsonl", workers=2)
    assert (again.new, again.updated, again.duplicates) == (0, 0, 0)
    assert again.unchanged == first.new + first.duplicates
    assert _contents(store) == before


def test_a_small_file_imports_in_this_process_and_a_large_one_with_workers(
    tmp_path: Path,
) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text('{"text": "Northwind"}\n', encoding="utf-8")
    large = tmp_path / "large.jsonl"
    large.write_bytes(b"{}\n" * pipeline.PARALLEL_MIN_LINES)
    just_short = tmp_path / "short.jsonl"
    just_short.write_bytes(b"{}\n" * (pipeline.PARALLEL_MIN_LINES - 1))
    assert import_workers(just_short) == 1
    assert import_workers(small) == 1
    assert import_workers(tmp_path / "missing.jsonl") == 1
    sheet = tmp_path / "big.XLSX"  # not lines of text: read in this process, whatever its size
    sheet.write_bytes(b"{}\n" * pipeline.PARALLEL_MIN_LINES)
    assert import_workers(sheet) == 1
    if sys.platform.startswith("linux"):
        assert import_workers(large, requested=3) == 3
        cpus = len(os.sched_getaffinity(0))
        assert import_workers(large) == min(cpus, pipeline.MAX_DEFAULT_WORKERS)
        # Several files count together: 3,999 lines in one and 1 in another are enough.
        assert import_workers([small, just_short]) == min(cpus, pipeline.MAX_DEFAULT_WORKERS)
        assert import_workers([just_short, sheet]) == 1
    else:
        assert import_workers(large, requested=3) == import_workers(large) == 1


@needs_fork
def test_a_file_that_cannot_be_read_is_a_clear_error_with_workers_too(
    store: Store, tmp_path: Path
) -> None:
    from monitor.collectors.importers import ImportFileError

    with pytest.raises(ImportFileError, match="does not exist"):
        import_file(store, NORTHWIND, tmp_path / "missing.jsonl", fmt="jsonl", workers=2)
    headless = tmp_path / "headless.csv"
    headless.write_text("", encoding="utf-8")
    with pytest.raises(ImportFileError, match="no header row"):
        import_file(store, NORTHWIND, headless, fmt="csv", workers=2)
    assert [run.status for run in store.recent_runs(2)] == ["failed", "failed"]


def _files(tmp_path: Path) -> list[FileToImport]:
    """Files of three sources, as one import would take them: the wire's stories first,
    then a forum repeating some of them (sightings across files), in JSON lines and CSV."""
    forum = _write(_rows(seed=9), tmp_path / "forum.jsonl", "jsonl")
    reviews = _write(_rows(seed=10), tmp_path / "reviews.csv", "csv")
    return [
        FileToImport(_wire(tmp_path), "jsonl", "wire"),
        FileToImport(forum, "jsonl", "forum"),
        FileToImport(reviews, "csv", "reviews"),
    ]


def _runs(store: Store) -> dict[str, tuple[Any, ...]]:
    return {
        run.source: (run.status, run.new, run.updated, run.duplicates, run.skipped, run.error)
        for run in store.recent_runs(10)
    }


@needs_fork
def test_several_files_in_one_import_store_what_importing_each_stores(
    any_store: Store, tmp_path: Path
) -> None:
    files = _files(tmp_path)
    expected = [
        import_file(any_store, NORTHWIND, f.path, fmt=f.fmt, source=f.source, match=True, workers=1)
        for f in files
    ]
    want, want_runs = _contents(any_store), _runs(any_store)
    metadata.drop_all(any_store.engine)
    store = Store(any_store.url)  # the same database, emptied

    reports = import_files(store, NORTHWIND, files, match=True, workers=2)

    assert [_counts(r) for r in reports] == [_counts(r) for r in expected]
    assert [r.source for r in reports] == ["wire", "forum", "reviews"]
    assert reports[1].duplicates > 0  # the forum repeats wire stories: sightings across files
    assert _contents(store) == want  # row ids included: the files' order is kept
    assert _runs(store) == want_runs  # each file is its own run, as if imported alone
    store.close()


@needs_fork
@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_that_cannot_be_read_does_not_stop_the_others(
    store: Store, tmp_path: Path, workers: int
) -> None:
    _, forum, reviews = _files(tmp_path)
    headless = tmp_path / "headless.csv"
    headless.write_text("", encoding="utf-8")
    files = [
        forum,
        FileToImport(tmp_path / "missing.jsonl", "jsonl", "lost"),
        FileToImport(headless, "csv", "headless"),
        reviews,
    ]
    reports = import_files(store, NORTHWIND, files, match=True, workers=workers)

    assert [bool(r.error) for r in reports] == [False, True, True, False]
    assert "does not exist" in reports[1].error and "no header row" in reports[2].error
    assert reports[0].new > 0 and reports[3].new > 0
    assert store.count_mentions() == reports[0].new + reports[3].new
    runs = {run.source: run for run in store.recent_runs(10)}
    assert runs["import:lost"].status == runs["import:headless"].status == "failed"
    assert runs["import:lost"].error == reports[1].error
    assert runs["import:forum"].new == reports[0].new and runs["import:reviews"].new > 0


@pytest.fixture
def run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], Any]:
    """Return a runner of `repmon` commands in `tmp_path`, with no config of the machine's."""
    from click.testing import CliRunner

    from monitor.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    return lambda args: CliRunner().invoke(main, args)


def test_cli_imports_several_files_and_names_the_one_it_cannot_read(
    tmp_path: Path, run_cli: Callable[[list[str]], Any]
) -> None:
    one = _write(_rows(seed=11), tmp_path / "one.jsonl", "jsonl")
    two = _write(_rows(seed=12), tmp_path / "two.jsonl", "jsonl")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    args = ["--database", url, "import", "--format", "jsonl", "--source", "forum"]
    result = run_cli([*args, str(one), str(tmp_path / "gone.jsonl"), str(two)])

    assert result.exit_code == 1
    summaries = [line for line in result.output.splitlines() if " rows from " in line]
    assert [line.split(" rows from ")[1].split()[0] for line in summaries] == [
        "one.jsonl",
        "two.jsonl",
    ]
    assert "gone.jsonl does not exist" in result.output
    store = Store(url)
    assert [run.status for run in store.recent_runs(3)][::-1] == ["partial", "failed", "partial"]
    store.close()


@needs_fork
def test_cli_import_takes_a_number_of_workers(
    tmp_path: Path, run_cli: Callable[[list[str]], Any]
) -> None:
    path = _write(_rows(seed=8), tmp_path / "forum.jsonl", "jsonl")
    summaries = []
    for workers in ("1", "2"):
        url = f"sqlite:///{tmp_path / f'w{workers}.db'}"
        args = ["--database", url, "import", str(path), "--format", "jsonl", "--source", "forum"]
        result = run_cli([*args, "--workers", workers])
        assert result.exit_code == 0, result.output
        summaries.append([line for line in result.output.splitlines() if " rows from " in line])
    assert summaries[0] == summaries[1] and summaries[0]
    refused = run_cli(["import", str(path), "--workers", "0"])
    assert refused.exit_code == 2 and "--workers" in refused.output


def _stat(pid: int) -> list[str] | None:
    """Return the fields of /proc/PID/stat after the command: state, parent id, ...; None
    when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # the command, in parentheses, may hold spaces


def _children(parent: int | None = None) -> list[int]:
    """Return the ids of the living child processes of `parent` (this process by default)."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and fields[0] != "Z" and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"  # a zombie has ended, unreaped


@needs_fork
def test_a_worker_killed_mid_import_ends_it_with_a_clear_error_and_a_rerun_completes(
    store: Store, tmp_path: Path
) -> None:
    import signal
    import threading
    import time

    from monitor.collectors.importers import ImportFileError

    rows = [
        row
        for seed in range(12)
        for row in _rows(seed)
        if isinstance(row, dict) and row["published_at"] != "soon"
    ]
    for number, row in enumerate(rows):
        row["external_id"] = f"k{number}"
    path = _write(rows, tmp_path / "big.jsonl", "jsonl")
    before = set(_children())
    failures: list[Exception] = []

    def run() -> None:
        try:
            import_file(store, NORTHWIND, path, fmt="jsonl", source="forum", workers=2)
        except ImportFileError as failure:
            failures.append(failure)

    importer = threading.Thread(target=run)
    importer.start()
    deadline = time.monotonic() + 30
    # Once a first batch is stored, a worker dies, as at the OOM killer's hand.
    while store.count_mentions() < pipeline.IMPORT_BATCH and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = set(_children()) - before
    assert workers, "the import runs no worker process"
    os.kill(min(workers), signal.SIGKILL)
    importer.join(timeout=120)
    assert not importer.is_alive(), "the import hung after losing a worker"
    assert failures and "terminated abruptly" in str(failures[0])
    assert "import again" in str(failures[0])
    run = store.recent_runs(1)[0]
    assert (run.status, run.source) == ("failed", "import:forum")
    stored = store.count_mentions()
    assert stored > 0 and stored % pipeline.IMPORT_BATCH == 0  # whole batches only

    report = import_file(store, NORTHWIND, path, fmt="jsonl", source="forum", workers=2)
    assert report.new == len(rows) - stored and report.failed == 0
    clean = Store(f"sqlite:///{tmp_path / 'clean.db'}")
    import_file(clean, NORTHWIND, path, fmt="jsonl", source="forum", workers=1)
    mine, theirs = _contents(store), _contents(clean)
    assert {m[2:] for m in mine["mentions"]} == {m[2:] for m in theirs["mentions"]}
    assert mine["rollup_hours"] == theirs["rollup_hours"]
    clean.close()


def _chunk_folders(temp: Path) -> list[Path]:
    """Return the folders imports have made in the temporary directory `temp`."""
    return sorted(temp.glob(f"*{pipeline.CHUNK_FOLDER_PREFIX}*"))


def _locked(folder: Path) -> bool:
    """Return whether a process holds `folder`'s lock, as a running import does."""
    import fcntl

    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)
    return False


@needs_fork
def test_workers_end_with_an_import_killed_by_sigkill_and_the_next_import_clears_its_chunks(
    tmp_path: Path,
) -> None:
    """A worker left behind would hold the importer's database connections open, and with
    them PostgreSQL's session and its lock: the next import would wait forever. The chunks
    in flight, left in the temporary directory, are removed by the next import."""
    import signal
    import subprocess
    import time

    rows = [
        {**row, "external_id": f"z{number}"}
        for number, row in enumerate(
            row
            for seed in range(12)
            for row in _rows(seed)
            if isinstance(row, dict) and row["published_at"] != "soon"
        )
    ]
    path = _write(rows, tmp_path / "big.jsonl", "jsonl")
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"} | {"TMPDIR": str(temp)}
    # The package is importable from this checkout even when it is not installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "monitor", "--database", url, "import", str(path)]
    command += ["--format", "jsonl", "--source", "forum", "--workers", "2"]
    importer = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers := _children(importer.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(workers) == 2, "the import started no workers"
        [running] = _chunk_folders(temp)
        assert _locked(running), "a running import's folder is open to removal"
        importer.kill()
        importer.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not any(map(_alive, workers)), "workers outlived the killed import"
    finally:  # leave nothing running, whatever failed
        if importer.poll() is None:
            importer.kill()
        for pid in filter(_alive, workers):
            os.kill(pid, signal.SIGKILL)
    assert _chunk_folders(temp) == [running] and not _locked(running)

    subprocess.run(command, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=300)
    assert _chunk_folders(temp) == []


@needs_fork
def test_an_import_leaves_the_chunk_folders_of_running_imports_alone(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl
    import tempfile

    temp = tmp_path / "temp"
    left, held = (temp / f"{pipeline.CHUNK_FOLDER_PREFIX}{name}" for name in ("left", "held"))
    for folder in (left, held):
        folder.mkdir(parents=True)
        (folder / "chunk").write_bytes(b"rows in flight")
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    lock = os.open(held, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as the import that made it, still running, does
        report = _import(store, _write(_rows(1), tmp_path / "forum.csv", "csv"), "csv", 2)
        assert report.new > 0
        assert _chunk_folders(temp) == [held]
        assert (held / "chunk").read_bytes() == b"rows in flight"
    finally:
        os.close(lock)


@needs_fork
def test_an_import_leaves_the_garbage_collector_as_it_found_it(
    store: Store, tmp_path: Path
) -> None:
    """Objects older than an import are left out of the collector's passes while it runs
    (each pass would walk them all, and in a worker copy their pages); afterwards, even when
    the import fails, they are collected again, or a long-lived process would keep them."""
    import gc

    from monitor.collectors.importers import ImportFileError

    path = _write(_rows(seed=3), tmp_path / "forum.jsonl", "jsonl")
    during: list[int] = []

    def progress(_rows_read: int) -> None:
        during.append(gc.get_freeze_count())

    before = gc.get_freeze_count()
    import_file(store, NORTHWIND, path, fmt="jsonl", workers=2, on_progress=progress)
    assert during and min(during) > before
    assert gc.get_freeze_count() == before

    def fails(_rows_read: int) -> None:
        raise RuntimeError("the progress bar went away")

    with pytest.raises(ImportFileError, match="went away"):
        import_file(store, NORTHWIND, path, fmt="jsonl", workers=2, on_progress=fails)
    assert gc.get_freeze_count() == before

    # A program that froze objects itself finds them still frozen after an import (frozen
    # objects are in no generation the collector lists).
    marker: list[object] = []
    gc.freeze()
    try:
        import_file(store, NORTHWIND, path, fmt="jsonl", workers=2)
        assert not any(found is marker for found in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(found is marker for found in gc.get_objects())


def test_an_import_worker_keeps_a_bounded_amount_of_the_texts_it_has_seen(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker lives for the whole import: an import of long articles must not leave every
    text it has read in the worker's memory (matching and scoring remember short texts)."""
    import gc
    import tracemalloc

    from monitor import scoring
    from monitor.collectors import importers
    from monitor.matching import BrandMatcher

    budget = 200_000
    monkeypatch.setattr(scoring, "MEMO_CHARS", budget)
    body = "Northwind Bank said the breach exposed cards, and stayed silent. " * 530
    articles = [
        {"external_id": f"a{i}", "text": f"{body} Article {i}.", "published_at": START.isoformat()}
        for i in range(40)  # 35,000 characters each: 1.4 MB of text
    ]
    file = FileToImport(_write(articles, tmp_path / "articles.jsonl", "jsonl"), "jsonl", "news")
    readers = [(importers.parse_line, importers.converter("jsonl", "news", {}))]
    jobs = [job for job in pipeline._jobs([file]) if not isinstance(job, pipeline._FileEnd)]
    maker = pipeline._ChunkMaker(
        store, readers, BrandMatcher(NORTHWIND.brand), scoring.Scorer(scoring.load_lexicon())
    )
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        made = sum(len(maker(job).rows) for job in jobs)  # what a worker does with its jobs
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert made == len(articles)
    assert held < 2 * budget, f"the worker holds {held:,} bytes"


def test_an_import_of_long_texts_holds_no_more_for_a_longer_file(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks and transactions end early on long texts: what an import holds at once is
    bounded by text, so three times the articles do not take three times the memory."""
    import tracemalloc

    from monitor import scoring

    monkeypatch.setattr(pipeline, "CHUNK_CHARS", 200_000)
    monkeypatch.setattr(pipeline, "BATCH_CHARS", 400_000)
    monkeypatch.setattr(scoring, "MEMO_CHARS", 200_000)
    body = "Northwind Bank said the breach exposed cards, and stayed silent. " * 530

    def peak_of_import(articles: int, name: str) -> int:
        path = _write(
            [
                {
                    "external_id": f"{name}{i}",
                    "text": f"{body} {i}.",
                    "published_at": START.isoformat(),
                }
                for i in range(articles)  # 35,000 characters each
            ],
            tmp_path / f"{name}.jsonl",
            "jsonl",
        )
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            report = import_file(store, NORTHWIND, path, fmt="jsonl", source="news", workers=1)
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        assert report.new == articles
        return peak

    peak_of_import(5, "warm")  # statements compiled and cached once, as in any long import
    shorter, longer = peak_of_import(40, "a"), peak_of_import(120, "b")
    assert longer < 1.25 * shorter, f"{shorter:,} bytes for 40 articles, {longer:,} for 120"

"""`repmon bench`: ingest, dashboard, alert and collection costs, measured side by side.

Every comparison runs in one process, interleaved, and reports medians: these machines are
shared, so absolute times drift while ratios measured together hold. What is measured and
why is in docs/performance.md.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from monitor import compiled, overview, pipeline
from monitor.analysis import Window, baseline_window, kpis
from monitor.bench import corpus
from monitor.config import BrandConfig, Settings
from monitor.models import Event
from monitor.scoring import Scorer
from monitor.store import Store, metadata, redact_url

# The most the ingest comparison reads: enough for stable rates, short enough to repeat.
INGEST_SAMPLE = 20_000
ROUNDS = 3
WARM_RUNS = 5

TARGETS = {
    "ingest_unique_ratio": (">=", 0.8),
    "ingest_duplicates_ratio": (">", 1.0),
    "overview_warm_s": ("<=", 0.3),
    "overview_cold_s": ("<=", 3.0),
    "overview_peak_mb": ("<=", 1024.0),
    "naive_to_ours_warm": (">=", 10.0),
    "alerts_check_s": ("<=", 0.5),
    "collect_ratio_to_slowest": ("<=", 1.5),
    "collect_second_bodies": ("<=", 0),
}

Progress = Callable[[str], None]


class BenchError(Exception):
    """The benchmark cannot run as asked; the message says why and what to do."""


def bench_settings(database_url: str) -> Settings:
    """Return the settings the benchmark monitors with: the corpus's brand and disclosure."""
    disclosure = corpus.END - timedelta(days=corpus.DAYS - corpus.DISCLOSURE_DAY)
    return Settings(
        brand=BrandConfig(name=corpus.BRAND, aliases=("Northwind", "@NorthwindBank")),
        events=(Event(disclosure, "Breach disclosed", "disclosure"),),
        database_url=database_url,
        check_alerts_after_collect=False,
    )


def _median_seconds(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class _Databases:
    """Fresh, empty databases on demand: files in a folder, or the one given URL emptied."""

    def __init__(self, folder: Path, url: str | None) -> None:
        self.folder, self.url, self.count = folder, url, 0

    def fresh(self) -> Store:
        self.count += 1
        if self.url is None:
            return Store(f"sqlite:///{self.folder / f'bench-{self.count}.db'}")
        engine = sa.create_engine(self.url.replace("postgresql://", "postgresql+psycopg://", 1))
        metadata.drop_all(engine)
        engine.dispose()
        return Store(self.url)


def check_empty(url: str) -> None:
    """Refuse a database that holds anything: the benchmark drops and recreates its tables."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        tables = sa.inspect(engine).get_table_names()
        for table in ("mentions", "alerts", "collection_runs"):
            if table in tables:
                with engine.connect() as conn:
                    rows = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608 (fixed names)
                if rows:
                    raise BenchError(
                        f"{redact_url(url)} holds {rows} rows in {table}. The benchmark drops "
                        "and recreates every table: give it an empty database of its own."
                    )
    finally:
        engine.dispose()


def _vader_only(texts: list[str]) -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    for text in texts:
        vader.polarity_scores(text)


CHILD_TIMEOUT = 120  # seconds; plain VADER over the ingest sample takes one or two


def _vader_span(texts: list[str]) -> tuple[float, float]:
    started = time.perf_counter()  # CLOCK_MONOTONIC on Linux: one clock for every process
    _vader_only(texts)
    return started, time.perf_counter()


def _vader_in_child(texts: list[str], start: Any, spans: Any) -> None:
    start.wait()
    spans.put(_vader_span(texts))


def _spans_of(children: list[Any], spans: Any) -> list[tuple[float, float]]:
    """Return each child's (start, end) from `spans`; raise BenchError if one fails."""
    found: list[tuple[float, float]] = []
    deadline = time.monotonic() + CHILD_TIMEOUT
    while len(found) < len(children):
        try:
            found.append(spans.get(timeout=1))
        except queue.Empty:
            failed = [child.exitcode for child in children if child.exitcode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                raise BenchError(
                    "plain VADER in several processes at once did not finish "
                    f"(exit codes {[child.exitcode for child in children]})"
                ) from None
    return found


def measure_cpus(texts: list[str], processes: int) -> dict[str, float]:
    """Return how much plain VADER work `processes` processes do at once, as a multiple of
    one process alone (ideal: `processes`), interleaved over ROUNDS rounds.

    It is what this machine's CPUs can give a parallel import: on shared or virtual CPUs
    the gain can be well under the number of CPUs, and the ingest ratios, which compare an
    import on every CPU with VADER on one, move with it.
    """
    if processes < 2 or not sys.platform.startswith("linux"):
        return {"processes": 1, "gain": 1.0}
    context = mp.get_context("fork")
    gains, alone_s, together_s = [], [], []
    for _ in range(ROUNDS):
        started, ended = _vader_span(texts)
        alone = ended - started
        start, spans = context.Barrier(processes, timeout=CHILD_TIMEOUT), context.Queue()
        children = [
            context.Process(target=_vader_in_child, args=(texts, start, spans))
            for _ in range(processes)
        ]
        try:
            for child in children:
                child.start()
            found = _spans_of(children, spans)
        except BaseException:
            for child in children:
                if child.pid is not None:  # a failed child leaves the others at the barrier
                    child.terminate()
            raise
        finally:
            for child in children:
                if child.pid is not None:
                    child.join()
        together = max(end for _, end in found) - min(begin for begin, _ in found)
        alone_s.append(alone)
        together_s.append(together)
        gains.append(processes * alone / together)
    return {
        "processes": processes,
        "alone_s": statistics.median(alone_s),
        "together_s": statistics.median(together_s),
        "gain": statistics.median(gains),
    }


def _scorer_only(texts: list[str]) -> None:
    scorer = Scorer()  # built in the timing, as the VADER analyzer is above
    for text in texts:
        scorer.score(text)


def _ingest(
    store: Store, settings: Settings, paths: dict[str, Path], workers: int | None = None
) -> int:
    """Import the corpus's files, one per source, as `repmon import` imports several files:
    one import, whose workers go on from one file to the next."""
    files = [pipeline.FileToImport(path, "jsonl", source) for source, path in paths.items()]
    reports = pipeline.import_files(
        store,
        settings,
        files,
        match=True,
        scorer=Scorer(),  # a new scorer: nothing remembered from an earlier round
        workers=workers,
    )
    return sum(report.new + report.duplicates for report in reports)


def measure_ingest(
    paths: dict[str, Path], databases: _Databases, settings: Settings
) -> dict[str, float]:
    """Return mentions per second for ingest (import, match, dedup, score, store) of the
    corpus files `paths` as `repmon import` runs it, and in one process; for plain VADER
    over the same texts; and for our scorer alone over them (VADER's rules, the breach
    lexicon and topics: what ingest pays for scoring). Interleaved over ROUNDS rounds."""
    texts = list(corpus.texts(paths))
    vader: list[float] = []
    scorer: list[float] = []
    ours: list[float] = []
    alone: list[float] = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        _vader_only(texts)
        vader.append(len(texts) / (time.perf_counter() - started))
        started = time.perf_counter()
        _scorer_only(texts)
        scorer.append(len(texts) / (time.perf_counter() - started))
        store = databases.fresh()
        started = time.perf_counter()
        _ingest(store, settings, paths)
        ours.append(len(texts) / (time.perf_counter() - started))
        store.close()
        store = databases.fresh()
        started = time.perf_counter()
        _ingest(store, settings, paths, workers=1)
        alone.append(len(texts) / (time.perf_counter() - started))
        store.close()
    return {
        "rows": len(texts),
        "distinct_texts": len(set(texts)),
        "workers": pipeline.import_workers(list(paths.values())),
        "vader_per_s": statistics.median(vader),
        "scorer_per_s": statistics.median(scorer),
        "ingest_per_s": statistics.median(ours),
        "ingest_one_process_per_s": statistics.median(alone),
    }


def measure_parts(
    paths: dict[str, Path], databases: _Databases, settings: Settings
) -> dict[str, float]:
    """Return microseconds per mention of each step ingest takes, timed apart on the rows of
    the corpus files `paths`: reading and matching, scoring, and preparing rows (what import
    workers do), and writing them (what the importing process does); with plain VADER's per
    text beside them."""
    from monitor.collectors import importers
    from monitor.matching import BrandMatcher

    texts = list(corpus.texts(paths))
    matcher = BrandMatcher(settings.brand)
    parts: dict[str, list[float]] = {
        "vader": [],
        "read_match": [],
        "score": [],
        "prepare": [],
        "write": [],
    }
    for _ in range(ROUNDS):
        started = time.perf_counter()
        _vader_only(texts)
        parts["vader"].append(time.perf_counter() - started)
        started = time.perf_counter()
        mentions = []
        for source, path in paths.items():
            convert = importers.converter("jsonl", source, {})
            for line in importers.read_lines(path):
                mention = convert(importers.parse_line(line))
                if matcher.matches(mention.full_text):
                    mentions.append(mention)
        parts["read_match"].append(time.perf_counter() - started)
        started = time.perf_counter()
        Scorer().score_mentions(mentions)
        parts["score"].append(time.perf_counter() - started)
        store = databases.fresh()
        started = time.perf_counter()
        rows = store.prepare(mentions)
        parts["prepare"].append(time.perf_counter() - started)
        started = time.perf_counter()
        for start in range(0, len(rows), pipeline.IMPORT_BATCH):
            store.upsert_prepared(rows[start : start + pipeline.IMPORT_BATCH])
        parts["write"].append(time.perf_counter() - started)
        store.close()
    return {f"{name}_us": statistics.median(t) / len(texts) * 1e6 for name, t in parts.items()}


def overview_rerun(store: Store, settings: Settings) -> overview.Overview:
    """Do what one rerun of the Overview asks of the database, with no cache: the sidebar's
    queries, the page's numbers and its alert banner."""
    store.data_version()
    bounds = store.time_bounds()
    store.sources()
    assert bounds is not None
    last_day = bounds[1].replace(hour=0, minute=0, second=0, microsecond=0)
    days = settings.default_window_days
    window = Window(last_day - timedelta(days=days - 1), last_day + timedelta(days=1))
    disclosure = settings.disclosure
    baseline = baseline_window(disclosure.at) if disclosure else None
    store.alerts(since=window.start, until=window.end, limit=None)
    return overview.build(store, window, baseline)


def naive_overview(store: Store, settings: Settings) -> pd.DataFrame:
    """The approach the targets compare against: read every mention into pandas and group."""
    with store.engine.connect() as conn:
        frame = pd.read_sql(sa.text("SELECT * FROM mentions"), conn)
    frame["published_at"] = pd.to_datetime(frame["published_at"], utc=True, format="ISO8601")
    last_day = frame["published_at"].max().floor("D")
    window = Window(
        (last_day - pd.Timedelta(days=settings.default_window_days - 1)).to_pydatetime(),
        (last_day + pd.Timedelta(days=1)).to_pydatetime(),
    )
    frame["day"] = frame["published_at"].dt.floor("D").dt.tz_localize(None)
    daily = (
        frame.groupby(["day", "source", "label"])
        .agg(
            mentions=("id", "size"),
            compound_sum=("compound", "sum"),
            rating_sum=("rating", "sum"),
            ratings=("rating", "count"),
        )
        .reset_index()
    )
    kpis(daily, window)
    recent = frame[(frame["published_at"] >= window.start) & (frame["label"] == "negative")]
    return recent.nlargest(overview.WORST, "engagement")


def peak_memory_mb() -> float:
    """Return this process's peak resident memory in MB.

    On Linux a child's ru_maxrss starts from its parent's peak (the kernel keeps it across
    exec), which would charge the benchmark's own memory to the process it starts; the
    kernel's VmHWM belongs to this process alone.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cold_overview(url: str) -> None:
    """Do one Overview rerun in this new process; print its time and peak memory as JSON."""
    started = time.perf_counter()
    store = Store(url)
    overview_rerun(store, bench_settings(url))
    cold = time.perf_counter() - started
    print(json.dumps({"cold_s": cold, "peak_mb": peak_memory_mb()}))


def measure_cold(url: str) -> dict[str, float]:
    """Run one Overview in a new process (no cache of any kind in it); return its time and
    the process's peak memory. Interpreter start and imports are not counted."""
    code = "import sys; from monitor.bench.run import cold_overview; cold_overview(sys.argv[1])"
    result = subprocess.run(  # noqa: S603 (our own interpreter and code)
        [sys.executable, "-c", code, url], capture_output=True, text=True, check=True
    )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def measure_dashboard(store: Store, settings: Settings) -> dict[str, float]:
    """Return the Overview's cold and warm times, its peak memory, and the naive approach's."""
    colds = [measure_cold(store.url) for _ in range(ROUNDS)]
    overview_rerun(store, settings)  # the first rerun of this process is the cold one
    ours, naive = [], []
    for _ in range(ROUNDS):
        ours.append(_median_seconds(lambda: overview_rerun(store, settings), WARM_RUNS))
        naive.append(_median_seconds(lambda: naive_overview(store, settings), 1))
    return {
        "overview_cold_s": statistics.median(c["cold_s"] for c in colds),
        "overview_peak_mb": max(c["peak_mb"] for c in colds),
        "overview_warm_s": statistics.median(ours),
        "naive_warm_s": statistics.median(naive),
    }


def measure_alerts(store: Store, settings: Settings) -> dict[str, float]:
    """Return the time to evaluate every alert rule at the end of the data (nothing sent)."""
    from monitor.alerts import engine

    bounds = store.time_bounds()
    assert bounds is not None
    now = bounds[1] + timedelta(minutes=1)

    def check() -> None:
        # A new rule name each time keeps every rule out of its cooldown: all are evaluated.
        rules = tuple(
            replace(r, name=f"{r.name} #{time.perf_counter_ns()}") for r in settings.alert_rules
        )
        engine.check(store, replace(settings, alert_rules=rules), now=now)

    return {
        "alerts_check_s": _median_seconds(check, WARM_RUNS),
        "alert_rules": len(settings.alert_rules),
    }


def run(
    mentions: int,
    *,
    database_url: str | None = None,
    feeds: int = 50,
    folder: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every measurement and return the figures (see TARGETS for what they must meet)."""
    say = progress or (lambda _message: None)
    if database_url is not None:
        check_empty(database_url)
    with tempfile.TemporaryDirectory(prefix="repmon-bench-") as scratch:
        work = folder or Path(scratch)
        databases = _Databases(work, database_url)
        settings = bench_settings(database_url or "sqlite://")
        figures: dict[str, Any] = {
            "mentions": mentions,
            "database": _backend(database_url or "sqlite://"),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            # Whether parsing, matching and scoring ran as mypyc built them (see setup.py).
            "compiled": compiled.STATE,
            "compiled_why": compiled.REASON,
        }
        sample = min(mentions, INGEST_SAMPLE)
        say(f"ingest: {sample:,} unique texts, against plain VADER ({ROUNDS} rounds)")
        # The unique-texts sample, written once: ingest, CPU scaling and the steps use it.
        sample_paths = corpus.write(corpus.CorpusSpec(sample, cross_posted=0.0), work / "unique")
        unique = measure_ingest(sample_paths, databases, settings)
        say(f"ingest: {sample:,} texts of which half are reposts")
        reposts = corpus.CorpusSpec(sample, cross_posted=0.0, reposts=0.5, seed=7)
        duplicated = measure_ingest(corpus.write(reposts, work / "duplicates"), databases, settings)
        figures["ingest_unique"] = unique
        figures["ingest_unique_ratio"] = unique["ingest_per_s"] / unique["vader_per_s"]
        figures["ingest_duplicates"] = duplicated
        figures["ingest_duplicates_ratio"] = duplicated["ingest_per_s"] / duplicated["vader_per_s"]
        figures["scorer_ratio"] = unique["scorer_per_s"] / unique["vader_per_s"]
        figures["ingest_one_process_ratio"] = (
            unique["ingest_one_process_per_s"] / unique["vader_per_s"]
        )
        # As many processes as an import keeps busy: its workers and the writer.
        processes = min(pipeline.usable_cpus(), pipeline.MAX_DEFAULT_WORKERS + 1)
        say(f"CPUs: plain VADER in {processes} processes at once, against one")
        figures["cpu_scaling"] = measure_cpus(list(corpus.texts(sample_paths)), processes)
        say("ingest, step by step: reading and matching, scoring, preparing, writing")
        figures["ingest_parts"] = measure_parts(sample_paths, databases, settings)

        say(f"collection: {feeds} feeds with delays, twice")
        from monitor.bench.collection import measure_collection

        store = databases.fresh()
        collection = measure_collection(feeds, database_url=store.url)
        store.close()
        figures["collection"] = collection
        figures["collect_ratio_to_slowest"] = collection["ratio_to_slowest"]
        figures["collect_second_bodies"] = collection["second_bodies"]

        say(f"building the database: {mentions:,} mentions over {corpus.DAYS} days")
        paths = corpus.write(corpus.CorpusSpec(mentions), work / "main")
        store = databases.fresh()
        started = time.perf_counter()
        stored = _ingest(store, settings, paths)
        elapsed = time.perf_counter() - started
        per_s = stored / elapsed if elapsed else 0.0
        figures["build"] = {
            "rows": mentions,
            "stored_mentions": store.count_mentions(),
            "sightings": store.count_sightings(),
            "seconds": elapsed,
            "per_s": per_s,
            # Sustained ingest at full size, against VADER's rate on the sample's texts.
            "ratio_to_vader": per_s / unique["vader_per_s"],
        }
        settings = replace(settings, database_url=store.url)
        if store.dialect == "postgresql":
            # What autovacuum does shortly after a bulk load; without it PostgreSQL cannot
            # answer from the covering index alone until it runs.
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(sa.text("VACUUM ANALYZE"))

        say("dashboard: the Overview cold (new process) and warm, and the naive way")
        dashboard = measure_dashboard(store, settings)
        figures.update(dashboard)
        figures["naive_to_ours_warm"] = dashboard["naive_warm_s"] / dashboard["overview_warm_s"]

        say("alerts: every rule evaluated at the end of the data")
        figures.update(measure_alerts(store, settings))
        store.close()
    figures["targets"] = {
        name: {"target": f"{op} {limit}", "met": _meets(figures[name], op, limit)}
        for name, (op, limit) in TARGETS.items()
    }
    return figures


def _backend(url: str) -> str:
    """Return "sqlite" or "postgresql" (for postgres:// too), as the figures name them."""
    name = sa.engine.make_url(url).get_backend_name()
    return "postgresql" if name == "postgres" else name


def _meets(value: float, op: str, limit: float) -> bool:
    return {"<=": value <= limit, ">=": value >= limit, ">": value > limit}[op]


def render(figures: dict[str, Any]) -> str:
    """Return the figures as a table a person reads."""
    unique, duplicated = figures["ingest_unique"], figures["ingest_duplicates"]
    build, collection = figures["build"], figures["collection"]
    lines = [
        f"repmon bench: {figures['mentions']:,} mentions on {figures['database']} "
        f"(Python {figures['python']}, {figures['cpus']} CPUs)",
        f"hot modules: {figures['compiled']} ({figures['compiled_why']})",
        "",
        f"{'measure':<56}{'value':>12}  target",
    ]

    def row(label: str, value: str, name: str | None = None) -> None:
        target = ""
        if name is not None:
            verdict = figures["targets"][name]
            target = f"{verdict['target']}  {'ok' if verdict['met'] else 'MISSED'}"
        lines.append(f"{label:<56}{value:>12}  {target}")

    row(
        f"ingest, unique texts, {unique['workers']} workers (mentions/s)",
        f"{unique['ingest_per_s']:,.0f}",
    )
    row("  plain VADER, same texts (texts/s)", f"{unique['vader_per_s']:,.0f}")
    row("  ratio", f"{figures['ingest_unique_ratio']:.2f}x", "ingest_unique_ratio")
    row("  in one process (mentions/s)", f"{unique['ingest_one_process_per_s']:,.0f}")
    row("  in one process / plain VADER", f"{figures['ingest_one_process_ratio']:.2f}x")
    row("  our scorer alone, same texts (texts/s)", f"{unique['scorer_per_s']:,.0f}")
    row("  scorer / plain VADER", f"{figures['scorer_ratio']:.2f}x")
    parts = figures["ingest_parts"]
    steps = ("read_match", "score", "prepare", "write")
    row(
        "  per mention: read+match/score/prepare/write (us)",
        " / ".join(f"{parts[f'{step}_us']:.0f}" for step in steps),
    )
    row("  plain VADER per text (us)", f"{parts['vader_us']:.0f}")
    processes = figures["cpu_scaling"]["processes"]
    row(
        f"CPUs: plain VADER, {processes} processes at once / one (ideal {processes})",
        f"{figures['cpu_scaling']['gain']:.2f}x",
    )
    row("ingest, half reposts (mentions/s)", f"{duplicated['ingest_per_s']:,.0f}")
    row("  plain VADER, same texts (texts/s)", f"{duplicated['vader_per_s']:,.0f}")
    row("  ratio", f"{figures['ingest_duplicates_ratio']:.2f}x", "ingest_duplicates_ratio")
    row("build: all mentions (mentions/s)", f"{build['per_s']:,.0f}")
    row("  / plain VADER on the ingest sample", f"{build['ratio_to_vader']:.2f}x")
    row("Overview rerun, cold (s)", f"{figures['overview_cold_s']:.3f}", "overview_cold_s")
    row("Overview rerun, warm (s)", f"{figures['overview_warm_s']:.3f}", "overview_warm_s")
    row("  peak memory (MB)", f"{figures['overview_peak_mb']:.0f}", "overview_peak_mb")
    row("naive pandas overview, warm (s)", f"{figures['naive_warm_s']:.3f}")
    row("  naive / ours", f"{figures['naive_to_ours_warm']:.0f}x", "naive_to_ours_warm")
    row(
        f"alert check, {figures['alert_rules']} rules (s)",
        f"{figures['alerts_check_s']:.3f}",
        "alerts_check_s",
    )
    row(f"collect {collection['feeds']} feeds (s)", f"{collection['first_collect_s']:.2f}")
    row(
        "  / slowest feed",
        f"{figures['collect_ratio_to_slowest']:.2f}x",
        "collect_ratio_to_slowest",
    )
    row("  second collect: bodies sent", f"{collection['second_bodies']}", "collect_second_bodies")
    return "\n".join(lines)


def main_json(figures: dict[str, Any]) -> str:
    """Return the figures as one JSON object."""
    return json.dumps(figures, indent=2, default=str)


__all__ = ["BenchError", "render", "run"]

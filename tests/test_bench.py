"""`repmon bench` works end to end at a small size (CI's smoke test; figures are for
docs/performance.md, measured at 1,000,000 mentions, never asserted here)."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor import compiled, pipeline
from monitor.bench import browser, corpus, growth
from monitor.bench import run as bench_run
from monitor.bench.passes import STEPS, run_passes
from monitor.bench.run import TARGETS, BenchError, bench_settings, render
from monitor.cli import main
from monitor.models import MentionQuery
from monitor.store import Store
from tests.conftest import CHROMIUM, require


def _bench(*args: str) -> dict:
    result = CliRunner().invoke(main, ["bench", "--mentions", "1500", "--feeds", "4", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _check(figures: dict) -> None:
    build = figures["build"]
    # Every generated row names the brand except the off-topic few; cross-posts are sightings.
    assert 0.9 * 1500 < build["stored_mentions"] + build["sightings"] <= 1500
    assert build["sightings"] > 0
    assert figures["ingest_unique"]["distinct_texts"] == figures["ingest_unique"]["rows"]
    assert figures["ingest_unique"]["scorer_per_s"] > 0 and figures["scorer_ratio"] > 0
    steps = ("read_match", "score", "prepare", "write")
    assert all(figures["ingest_parts"][f"{step}_us"] > 0 for step in steps)
    assert figures["ingest_unique"]["ingest_one_process_per_s"] > 0
    assert figures["ingest_unique"]["workers"] >= 1 and figures["ingest_one_process_ratio"] > 0
    scaling = figures["cpu_scaling"]
    # A gain was measured, and not far beyond the ideal (noise can lift it a little).
    assert scaling["processes"] >= 1 and 0 < scaling["gain"] <= 1.5 * scaling["processes"]
    assert "processes at once" in render(figures)
    reposted = figures["ingest_duplicates"]
    assert reposted["distinct_texts"] < 0.75 * reposted["rows"]
    collection = figures["collection"]
    assert collection["first_bodies"] == 4 and collection["second_bodies"] == 0
    assert collection["second_not_modified"] == 4 and collection["new_second"] == 0
    assert set(figures["targets"]) == set(TARGETS)
    assert figures["overview_peak_mb"] > 0 and figures["alert_rules"] >= 1
    assert "Overview rerun, warm" in render(figures)
    # Figures say whether the hot modules ran compiled: they are not comparable otherwise.
    assert (figures["compiled"], figures["compiled_why"]) == (compiled.STATE, compiled.REASON)
    assert f"hot modules: {compiled.STATE}" in render(figures)
    row = growth.table([figures]).splitlines()[-1]
    assert row.startswith(f"| {figures['database']} | 1,500 |")


def test_bench_runs_on_sqlite_and_prints_json() -> None:
    figures = _bench("--json")
    assert figures["database"] == "sqlite"
    _check(figures)


def test_cpu_scaling_stops_at_once_when_a_process_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each child dies before the barrier, as one killed by the OOM killer would.
    monkeypatch.setattr(bench_run, "_vader_in_child", lambda *_: os._exit(3))
    # Seen from the exit codes, not after the deadline: with an hour's deadline the
    # benchmark still stops well within a minute.
    monkeypatch.setattr(bench_run, "CHILD_TIMEOUT", 3600)
    started = time.monotonic()
    with pytest.raises(BenchError, match=r"did not finish \(exit codes \[3"):
        bench_run.measure_cpus(["a terrible breach"] * 10, 2)
    assert time.monotonic() - started < 60


def test_bench_runs_in_a_given_sqlite_file_and_leaves_its_data_there(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    figures = _bench("--json", "--database", url)
    assert figures["database"] == "sqlite"
    store = Store(url)  # the built database, for python -m monitor.bench.browser
    try:
        assert store.count_mentions() == figures["build"]["stored_mentions"] > 0
    finally:
        store.close()


def test_bench_runs_on_postgresql(postgres_url: str) -> None:
    figures = _bench("--json", "--database", postgres_url)
    assert figures["database"] == "postgresql"
    _check(figures)


def test_bench_refuses_a_database_holding_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'in-use.db'}"
    paths = corpus.write(corpus.CorpusSpec(50), tmp_path / "corpus")
    store = Store(url)
    pipeline.import_file(store, bench_settings(url), paths["reddit"], fmt="jsonl")
    result = CliRunner().invoke(main, ["bench", "--mentions", "1000", "--database", url])
    assert result.exit_code != 0
    assert "empty database" in result.output
    assert store.count_mentions() > 0  # untouched


def test_the_corpus_is_deterministic_and_shaped_like_a_breach(tmp_path: Path) -> None:
    spec = corpus.CorpusSpec(3000)
    first = list(corpus.rows(spec))
    assert first == list(corpus.rows(spec))
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    for source, path in corpus.write(spec, tmp_path / "c").items():
        pipeline.import_file(store, bench_settings(store.url), path, fmt="jsonl", source=source)
    disclosure = bench_settings(store.url).disclosure
    assert disclosure is not None
    before = MentionQuery(until=disclosure.at)
    after = MentionQuery(since=disclosure.at)
    share = {
        name: store.count_mentions(MentionQuery(since=q.since, until=q.until, labels=("negative",)))
        / store.count_mentions(q)
        for name, q in (("before", before), ("after", after))
    }
    per_day_before = store.count_mentions(before) / corpus.DISCLOSURE_DAY
    per_day_after = store.count_mentions(after) / (corpus.DAYS - corpus.DISCLOSURE_DAY)
    assert per_day_after > 2 * per_day_before
    assert share["after"] > share["before"] + 0.1


def test_the_passes_for_counting_instructions_run_every_step(tmp_path: Path) -> None:
    # The workers' step and the writer's handle the same rows: every generated row that
    # names the brand (a few are off-topic), however the chunks are shared between makers.
    handled = {step: run_passes(step, 2, 400, 0.5, tmp_path / step) for step in STEPS}
    assert handled["vader"] == 400
    assert 0.9 * 400 < handled["workers"] == handled["writer"] < 400


def _built_database(folder: Path, rows: int) -> str:
    """Import a corpus of `rows` mentions as `repmon bench` builds its database; return its URL."""
    url = f"sqlite:///{folder / 'bench.db'}"
    paths = corpus.write(corpus.CorpusSpec(rows), folder / "corpus")
    files = [pipeline.FileToImport(path, "jsonl", source) for source, path in paths.items()]
    store = Store(url)
    try:
        pipeline.import_files(store, bench_settings(url), files, match=True)
    finally:
        store.close()
    return url


@pytest.mark.browser
def test_browser_bench_times_the_dashboard_on_a_built_database(tmp_path: Path) -> None:
    require(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM}")
    require(importlib.util.find_spec("playwright"), "playwright is not installed")
    url = _built_database(tmp_path, 1500)
    shot = tmp_path / "overview.png"
    # measure() waits for the KPI cards, the worst mentions and the Mentions page's row
    # count, and raises if the page shows an error.
    figures = browser.measure(url, loads=2, chromium=CHROMIUM, screenshot=shot)
    store = Store(url)
    try:
        assert figures["mentions"] == store.count_mentions() > 1000
    finally:
        store.close()
    assert figures["cold_s"] > 0 and figures["mentions_page_median_s"] > 0
    assert 0 < figures["reload_min_s"] <= figures["reload_median_s"] <= figures["reload_max_s"]
    assert shot.stat().st_size > 50_000
    assert "loaded again" in browser.render(figures)


def test_browser_bench_refuses_an_empty_or_missing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Store(url).close()
    # Both are checked before any browser starts.
    with pytest.raises(BenchError, match="holds no mentions"):
        browser.measure(url, chromium=Path("/bin/sh"))
    missing = tmp_path / "typo.db"
    with pytest.raises(BenchError, match="no SQLite database at"):
        browser.measure(f"sqlite:///{missing}", chromium=Path("/bin/sh"))
    assert not missing.exists()

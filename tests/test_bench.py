"""`repmon bench` works end to end at a small size (CI's smoke test; figures are for
docs/performance.md, measured at 1,000,000 mentions, never asserted here)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from monitor import pipeline
from monitor.bench import corpus, growth
from monitor.bench.passes import STEPS, run_passes
from monitor.bench.run import TARGETS, bench_settings, render
from monitor.cli import main
from monitor.models import MentionQuery
from monitor.store import Store


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
    reposted = figures["ingest_duplicates"]
    assert reposted["distinct_texts"] < 0.75 * reposted["rows"]
    collection = figures["collection"]
    assert collection["first_bodies"] == 4 and collection["second_bodies"] == 0
    assert collection["second_not_modified"] == 4 and collection["new_second"] == 0
    assert set(figures["targets"]) == set(TARGETS)
    assert figures["overview_peak_mb"] > 0 and figures["alert_rules"] >= 1
    assert "Overview rerun, warm" in render(figures)
    row = growth.table([figures]).splitlines()[-1]
    assert row.startswith(f"| {figures['database']} | 1,500 |")


def test_bench_runs_on_sqlite_and_prints_json() -> None:
    figures = _bench("--json")
    assert figures["database"] == "sqlite"
    _check(figures)


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

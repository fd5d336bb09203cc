"""Repeat one part of an import, for counting its CPU instructions under valgrind.

Wall-clock time on a shared machine moves by 15% from one run to the next; the number of
instructions a step executes hardly moves at all. To count one pass of a step, run it once
and twice under callgrind and subtract the two "Collected" totals:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m monitor.bench.passes workers --passes 1 --reposts 0.5
    (the same with --passes 2)

Divide the difference by the rows. Steps:
- `workers`: what import workers do (parse, convert, match, score, prepare), with two chunk
  makers taking the chunks in turn, as two workers do, each remembering its own texts;
- `writer`: what the importing process does with those rows (SQLite, a fresh file a pass);
- `vader`: plain VADER over the same texts, the benchmark's floor.
Set-up (writing the corpus, making the writer's rows) happens before the passes, so it
cancels out. Kernel time (system calls, page faults) is not counted.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from monitor import models, pipeline
from monitor.bench import corpus, run
from monitor.collectors import importers
from monitor.matching import BrandMatcher
from monitor.scoring import Scorer
from monitor.store import Store

STEPS = ("workers", "writer", "vader")


def run_passes(step: str, passes: int, rows: int, reposts: float, folder: Path) -> int:
    """Run `step` `passes` times over a corpus of `rows` (in `folder`); return the rows a
    pass handled."""
    settings = run.bench_settings("sqlite://")
    spec = corpus.CorpusSpec(rows, cross_posted=0.0, reposts=reposts, seed=7 if reposts else 2026)
    paths = corpus.write(spec, folder / "corpus")
    files = [pipeline.FileToImport(path, "jsonl", source) for source, path in paths.items()]
    readers = [
        (importers.parse_line, importers.converter("jsonl", file.source_name, {})) for file in files
    ]
    jobs = [job for job in pipeline._jobs(files) if not isinstance(job, pipeline._FileEnd)]
    store = Store(f"sqlite:///{folder / 'makers.db'}")
    matcher = BrandMatcher(settings.brand)
    scorers = [Scorer(), Scorer()]
    prepared = []
    if step == "writer":
        maker = pipeline._ChunkMaker(store, readers, matcher, scorers[0])
        prepared = [row for job in jobs for row in maker(job).rows]
    texts = list(corpus.texts(paths)) if step == "vader" else []
    handled = 0
    for number in range(passes):
        if step == "workers":
            for scorer in scorers:  # each pass starts with nothing remembered
                scorer.forget()
            models.forget_hashes()
            makers = [pipeline._ChunkMaker(store, readers, matcher, s) for s in scorers]
            handled = sum(len(makers[i % 2](job).rows) for i, job in enumerate(jobs))
        elif step == "writer":
            target = Store(f"sqlite:///{folder / f'pass-{number}.db'}")
            for start in range(0, len(prepared), pipeline.IMPORT_BATCH):
                target.upsert_prepared(prepared[start : start + pipeline.IMPORT_BATCH])
            target.close()
            handled = len(prepared)
        else:
            run._vader_only(texts)
            handled = len(texts)
    store.close()
    return handled


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run the passes; print the rows a pass handled."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--reposts", type=float, default=0.0, help="share of rows reposted")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        handled = run_passes(args.step, args.passes, args.rows, args.reposts, Path(folder))
    print(f"{args.step}: {handled:,} rows a pass, passes: {args.passes}")


if __name__ == "__main__":
    main()

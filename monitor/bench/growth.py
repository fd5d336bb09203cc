"""Tabulate several `repmon bench --json` results: how each cost grows with the data.

    python -m monitor.bench.growth sqlite-*.json pg-*.json

prints one Markdown table (as in docs/performance.md), a row per run, sorted by database and
size.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COLUMNS = (
    ("database", "database", "{}"),
    ("mentions generated", "mentions", "{:,}"),
    ("stored", "build.stored_mentions", "{:,}"),
    ("build (mentions/s)", "build.per_s", "{:,.0f}"),
    ("build / VADER", "build.ratio_to_vader", "{:.2f}x"),
    ("ingest / VADER", "ingest_unique_ratio", "{:.2f}x"),
    ("in one process / VADER", "ingest_one_process_ratio", "{:.2f}x"),
    ("reposts ingest / VADER", "ingest_duplicates_ratio", "{:.2f}x"),
    ("scorer / VADER", "scorer_ratio", "{:.2f}x"),
    ("Overview cold (s)", "overview_cold_s", "{:.3f}"),
    ("Overview warm (s)", "overview_warm_s", "{:.3f}"),
    ("peak MB", "overview_peak_mb", "{:.0f}"),
    ("naive warm (s)", "naive_warm_s", "{:.2f}"),
    ("naive / ours", "naive_to_ours_warm", "{:.0f}x"),
    ("alert check (s)", "alerts_check_s", "{:.3f}"),
    ("collect / slowest", "collect_ratio_to_slowest", "{:.2f}x"),
    ("2nd collect bodies", "collect_second_bodies", "{}"),
)


def _get(figures: dict[str, Any], path: str) -> Any:
    value: Any = figures
    for part in path.split("."):
        value = value[part]
    return value


def table(runs: list[dict[str, Any]]) -> str:
    """Return a Markdown table of `runs` (dicts from `repmon bench --json`)."""
    ordered = sorted(runs, key=lambda f: (f["database"], f["mentions"]))
    lines = [
        "| " + " | ".join(title for title, _, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for figures in ordered:
        cells = [fmt.format(_get(figures, path)) for _, path, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table([json.loads(Path(name).read_text("utf-8")) for name in sys.argv[1:]]))

"""Measure the breach-aware scorer against plain VADER.

    python eval/evaluate_scorer.py [--shared ../shared] [--json]

Sets:
  breach-dev       eval/breach_dev.csv, 260 hand-labelled breach-context mentions (used to tune
                   the lexicon)
  breach-holdout   eval/breach_holdout.csv, 180 more, written separately and never used to tune
  tweets, amazon   VADER's human-rated ground truth (Hutto & Gilbert 2014), ../shared/data/sentiment
  hd-breach-tweets the real $HD tweets after the first breach reports (2014-09-02 17:30 UTC to
                   2014-10-31) that talk about the breach, from ../shared/data/real

Metrics: macro-F1 over negative/neutral/positive; for the human-rated sets also Pearson r between
the compound score and the raters' mean (-4..+4). A human mean within +-0.5 of zero counts as
neutral for F1. Labels from scores use VADER's cut-offs (+-0.05) for both scorers.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from scipy.stats import pearsonr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.models import LABELS  # noqa: E402
from monitor.scoring import Scorer, label_for, plain_vader_compound  # noqa: E402

HUMAN_NEUTRAL_BAND = 0.5
HD_BREACH_WORDS = re.compile(
    r"breach|hack|stolen|cyber|malware|card data|data theft|security", re.I
)
HD_FIRST_REPORT = datetime(2014, 9, 2, 17, 30, tzinfo=UTC)
HD_UNTIL = datetime(2014, 11, 1, tzinfo=UTC)


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Return the unweighted mean of per-class F1 over the three labels."""
    scores = []
    for label in LABELS:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores)


def human_label(mean: float) -> str:
    """Return the class of a human mean rating on the -4..+4 scale."""
    if mean >= HUMAN_NEUTRAL_BAND:
        return "positive"
    if mean <= -HUMAN_NEUTRAL_BAND:
        return "negative"
    return "neutral"


def read_labelled(path: Path) -> tuple[list[str], list[str]]:
    """Return texts and labels of one of our labelled CSV sets."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def read_ground_truth(path: Path) -> tuple[list[str], list[float]]:
    """Return texts and human means of a VADER *_GroundTruth.txt file."""
    texts, means = [], []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            means.append(float(parts[1]))
            texts.append(parts[2])
    return texts, means


def read_hd_breach_tweets(path: Path) -> list[str]:
    """Return the breach tweets posted between the first reports and the end of October 2014."""
    texts, seen = [], set()
    for line in path.read_text(encoding="utf-8").splitlines():
        tweet = json.loads(line)
        created = datetime.strptime(tweet["created_at"], "%a %b %d %H:%M:%S %z %Y")
        if tweet["id"] in seen or not HD_FIRST_REPORT <= created < HD_UNTIL:
            continue
        seen.add(tweet["id"])
        if HD_BREACH_WORDS.search(tweet["text"]):
            texts.append(tweet["text"])
    return texts


def evaluate(shared: Path | None) -> dict[str, dict[str, float]]:
    """Return {set: {metric: value}} for plain VADER and the domain scorer."""
    scorer = Scorer()
    results: dict[str, dict[str, float]] = {}

    def compare(name: str, texts: list[str], labels: list[str], means: list[float] | None) -> None:
        plain = plain_vader_compound(texts)
        ours = [scorer.compound(t) for t in texts]
        row = {
            "n": len(texts),
            "vader_f1": macro_f1(labels, [label_for(c) for c in plain]),
            "ours_f1": macro_f1(labels, [label_for(c) for c in ours]),
        }
        if means is not None:
            row["vader_r"] = float(pearsonr(plain, means).statistic)
            row["ours_r"] = float(pearsonr(ours, means).statistic)
        results[name] = row

    for name in ("breach_dev", "breach_holdout"):
        texts, labels = read_labelled(ROOT / "eval" / f"{name}.csv")
        compare(name.replace("_", "-"), texts, labels, None)
    if shared is not None:
        sentiment = shared / "data" / "sentiment"
        for name, file in (("tweets", "tweets"), ("amazon", "amazonReviewSnippets")):
            texts, means = read_ground_truth(sentiment / f"{file}_GroundTruth.txt")
            compare(name, texts, [human_label(m) for m in means], means)
        hd = read_hd_breach_tweets(
            shared.joinpath(
                "data", "real", "homedepot-breach-2014-tweets", "HD_raw_tweets_2014-2015.jsonl"
            )
        )
        plain = [label_for(c) for c in plain_vader_compound(hd)]
        ours = [scorer.score(t).label for t in hd]
        results["hd-breach-tweets"] = {
            "n": len(hd),
            "vader_negative": plain.count("negative"),
            "vader_positive": plain.count("positive"),
            "ours_negative": ours.count("negative"),
            "ours_positive": ours.count("positive"),
        }
    return results


def to_markdown(results: dict[str, dict[str, float]]) -> str:
    """Return the results as the Markdown table quoted in docs/scoring.md."""
    lines = [
        "| set | n | macro-F1 VADER | macro-F1 ours | delta | r VADER | r ours | delta |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in results.items():
        if "vader_f1" not in row:
            continue
        r_cells = (
            f"{row['vader_r']:.3f} | {row['ours_r']:.3f} | {row['ours_r'] - row['vader_r']:+.3f}"
            if "vader_r" in row
            else "- | - | -"
        )
        lines.append(
            f"| {name} | {row['n']:.0f} | {row['vader_f1']:.3f} | {row['ours_f1']:.3f} | "
            f"{row['ours_f1'] - row['vader_f1']:+.3f} | {r_cells} |"
        )
    hd = results.get("hd-breach-tweets")
    if hd:
        lines.append("")
        lines.append(
            f"Real $HD breach tweets ({hd['n']:.0f}): plain VADER calls {hd['vader_positive']:.0f} "
            f"positive and {hd['vader_negative']:.0f} negative; ours calls "
            f"{hd['ours_positive']:.0f} positive and {hd['ours_negative']:.0f} negative."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--shared", type=Path, default=ROOT.parent / "shared", help="path to shared/"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    shared = args.shared if (args.shared / "data" / "sentiment").is_dir() else None
    if shared is None:
        print(
            f"note: {args.shared}/data/sentiment not found; general sets skipped", file=sys.stderr
        )
    results = evaluate(shared)
    print(json.dumps(results, indent=2) if args.json else to_markdown(results))


if __name__ == "__main__":
    main()

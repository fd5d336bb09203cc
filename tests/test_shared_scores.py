"""Import workers share the scores they evaluate, so that a repeated text is scored once."""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor import pipeline
from monitor.config import BrandConfig, Settings
from monitor.models import Mention
from monitor.pipeline import FileToImport, import_files
from monitor.scoring import Evaluation, Scorer, default_scorer
from monitor.shared_scores import ScoreExchange, SharedScores
from monitor.store import Store

NORTHWIND = Settings(brand=BrandConfig("Northwind Bank", ("Northwind",)))
START = datetime(2024, 5, 1, tzinfo=UTC)
FORK = mp.get_context("fork")

needs_fork = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="import workers are forked, on Linux only"
)


class CountingScorer(Scorer):
    """The real scorer, counting its evaluations in memory its forked copies share."""

    def __init__(self) -> None:
        super().__init__(default_scorer().lexicon)
        self.evaluations = FORK.Value("i", 0)

    def _evaluate(self, text: str, rating: float | None) -> Evaluation:
        with self.evaluations.get_lock():
            self.evaluations.value += 1
        return super()._evaluate(text, rating)


def _texts(count: int) -> list[str]:
    """`count` distinct texts, new to every scorer of the test process."""
    tag = uuid.uuid4().hex[:8]
    words = ["breach", "refund", "stolen", "thanks", "awful", "great", "leak", "card"]
    return [
        f"Northwind Bank {words[i % 8]} {words[i * 7 % 8]} and {words[i * 3 % 8]} {tag}-{i}"
        for i in range(count)
    ]


def _mentions(texts: list[str], rating: float | None = None) -> list[Mention]:
    return [
        Mention(source="reviews", external_id=f"m{i}", text=text, published_at=START, rating=rating)
        for i, text in enumerate(texts)
    ]


def _scores(mentions: list[Mention]) -> list[tuple[Any, ...]]:
    return [(m.compound, m.label, m.topics) for m in mentions]


def _score_and_trade(shared: SharedScores, texts: list[str], rating: float | None) -> None:
    """A first worker: score `texts` and tell the others."""
    scorer = Scorer(default_scorer().lexicon)
    exchange = shared.join(scorer.topic_ids)
    scorer.score_mentions(_mentions(texts, rating), exchange)
    exchange.trade()


def _learn_and_score(
    shared: SharedScores, asked: list[tuple[str, float | None]], answers: Any
) -> None:
    """A second worker: learn what the first scored, then score `asked`; send back the
    scores and how many it evaluated itself."""
    scorer = CountingScorer()
    exchange = shared.join(scorer.topic_ids)
    exchange.trade()
    mentions = [
        Mention(source="forum", external_id=f"q{i}", text=text, published_at=START, rating=rating)
        for i, (text, rating) in enumerate(asked)
    ]
    scorer.score_mentions(mentions, exchange)
    answers.send((_scores(mentions), scorer.evaluations.value, exchange.taken))


def _run(target: Any, *args: Any) -> None:
    process = FORK.Process(target=target, args=args)
    process.start()
    process.join(60)
    assert process.exitcode == 0


@needs_fork
def test_a_worker_takes_the_scores_another_evaluated_and_evaluates_only_what_is_new() -> None:
    shared = SharedScores(2)
    seen, new = _texts(300), _texts(40)
    _run(_score_and_trade, shared, seen, None)
    # The same texts, some new ones, and a seen text with a 1-star rating: the rating can
    # change the label, so that one is a different question.
    asked: list[tuple[str, float | None]] = [(text, None) for text in seen + new]
    asked.append((seen[0], 1.0))
    receiving, sending = FORK.Pipe(duplex=False)
    _run(_learn_and_score, shared, asked, sending)
    scores, evaluated, taken = receiving.recv()
    shared.close()

    assert (evaluated, taken) == (len(new) + 1, len(seen))
    fresh = Scorer(default_scorer().lexicon)
    expected = [fresh.score(text, rating) for text, rating in asked]
    assert scores == [(s.compound, s.label, s.topics) for s in expected]
    assert scores[-1][1] == "negative" and any(s[2] for s in scores)  # topics made the trip


def test_a_reader_far_behind_gets_the_latest_scores_and_nothing_garbled() -> None:
    shared = SharedScores(2, ring_records=8)
    scorer = Scorer(default_scorer().lexicon)
    writer, reader = shared.join(scorer.topic_ids), shared.join(scorer.topic_ids)
    texts = _texts(25)
    for start in (0, 5, 10):  # three trades, the ring wrapping round in the second
        scorer.score_mentions(_mentions(texts[start : start + 5]), writer)
        writer.trade()
    reader.trade()
    learned = [reader.get((text, None)) for text in texts[:15]]
    # Only the last 8 are still in the ring; each is exactly what the writer's scorer gave.
    assert learned[:7] == [None] * 7
    assert learned[7:] == [scorer._evaluate(text, None) for text in texts[7:15]]
    # 10 more, more than the ring holds in one trade: the last 8 of them arrive.
    scorer.score_mentions(_mentions(texts[15:25]), writer)
    writer.trade()
    reader.trade()
    assert [reader.get((text, None)) is not None for text in texts[15:25]] == [False] * 2 + [
        True
    ] * 8
    shared.close()


def test_a_lock_nobody_releases_slows_no_worker_down_for_long() -> None:
    """A worker killed while holding the lock must not stop the others."""
    shared = SharedScores(2)
    scorer = Scorer(default_scorer().lexicon)
    early = shared.join(scorer.topic_ids, lock_wait=0.05)
    assert early.sharing
    shared._lock.acquire()  # as the killed worker left it
    began = time.monotonic()
    late = shared.join(scorer.topic_ids, lock_wait=0.05)
    assert not late.sharing
    mentions = _mentions(_texts(20))
    scorer.score_mentions(mentions, early)
    early.trade()  # waits once, then scores alone
    assert not early.sharing
    early.trade()
    scorer.score_mentions(_mentions(_texts(5)), early)
    assert time.monotonic() - began < 5
    fresh = Scorer(default_scorer().lexicon)
    expected = [fresh.score(m.text) for m in mentions]
    assert _scores(mentions) == [(s.compound, s.label, s.topics) for s in expected]
    shared._lock.release()
    shared.close()


@needs_fork
def test_an_import_with_workers_evaluates_each_distinct_text_once(tmp_path: Path) -> None:
    """Repeats further on than the chunks in flight are scored by nobody again."""
    workers = 2
    # When the importer hands out a chunk, it has received every chunk more than
    # IN_FLIGHT * workers before it, and their workers have told the others what they
    # scored: a repeat that far on must find its score, whichever worker meets it.
    first = _texts(2 * pipeline.CHUNK)
    between = _texts((pipeline.IN_FLIGHT * workers + 1) * pipeline.CHUNK)
    texts = first + between + first[::-1]
    path = tmp_path / "forum.jsonl"
    with path.open("w", encoding="utf-8") as file:
        for i, text in enumerate(texts):
            published = (START + timedelta(minutes=i)).isoformat()
            row = {"external_id": f"p{i}", "text": text, "published_at": published}
            file.write(json.dumps(row) + "\n")
    store = Store(f"sqlite:///{tmp_path / 'workers.db'}")
    scorer = CountingScorer()
    files = [FileToImport(path, "jsonl", "forum")]
    [report] = import_files(store, NORTHWIND, files, scorer=scorer, workers=workers)
    assert report.new == len(texts) and report.failed == 0
    assert scorer.evaluations.value == len(first) + len(between)

    alone = Store(f"sqlite:///{tmp_path / 'alone.db'}")
    import_files(alone, NORTHWIND, files, scorer=Scorer(default_scorer().lexicon), workers=1)
    query = "SELECT external_id, compound, label, topics FROM mentions ORDER BY external_id"
    with store.engine.connect() as mine, alone.engine.connect() as theirs:
        assert mine.execute(sa.text(query)).all() == theirs.execute(sa.text(query)).all()
    store.close()
    alone.close()


def test_an_exchange_that_does_not_share_changes_no_score() -> None:
    """More workers than rings (a replaced worker): the extra one scores alone."""
    shared = SharedScores(1)
    scorer = Scorer(default_scorer().lexicon)
    only, extra = shared.join(scorer.topic_ids), shared.join(scorer.topic_ids)
    assert only.sharing and not extra.sharing
    assert isinstance(extra, ScoreExchange)
    mentions = _mentions(_texts(10))
    scorer.score_mentions(mentions, extra)
    extra.trade()
    assert extra.get((mentions[0].text, None)) is None
    shared.close()

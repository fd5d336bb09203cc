"""Import workers share the scores they evaluate, so that a repeated text is scored once."""

from __future__ import annotations

import json
import multiprocessing as mp
import struct
import sys
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
from monitor.shared_scores import RECORD, SLOTS, SharedScores
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


def _score_into(shared: SharedScores, texts: list[str], rating: float | None) -> None:
    """A first worker: score `texts`, putting what it evaluates in the table."""
    Scorer(default_scorer().lexicon).score_mentions(_mentions(texts, rating), shared)


def _score_from(shared: SharedScores, asked: list[tuple[str, float | None]], answers: Any) -> None:
    """A second worker: score `asked` with the table; send back the scores, how many it
    evaluated itself and how many it took from the table."""
    scorer = CountingScorer()
    mentions = [
        Mention(source="forum", external_id=f"q{i}", text=text, published_at=START, rating=rating)
        for i, (text, rating) in enumerate(asked)
    ]
    scorer.score_mentions(mentions, shared)
    answers.send((_scores(mentions), scorer.evaluations.value, shared.taken))


def _run(target: Any, *args: Any) -> None:
    process = FORK.Process(target=target, args=args)
    process.start()
    process.join(60)
    assert process.exitcode == 0


def _expected(asked: list[tuple[str, float | None]]) -> list[tuple[Any, ...]]:
    fresh = Scorer(default_scorer().lexicon)
    return [(s.compound, s.label, s.topics) for s in (fresh.score(t, r) for t, r in asked)]


@needs_fork
def test_a_worker_takes_the_scores_another_evaluated_and_evaluates_only_what_is_new() -> None:
    shared = SharedScores(default_scorer().topic_ids)
    texts = _apart(_texts(340))
    seen, new = texts[:-40], texts[-40:]
    _run(_score_into, shared, seen, None)
    # The same texts, some new ones, and a seen text with a 1-star rating: the rating can
    # change the label, so that one is a different question.
    asked: list[tuple[str, float | None]] = [(text, None) for text in seen + new]
    taken_slots = {hash(key) & (SLOTS - 1) for key in asked}
    rated = next(t for t in seen if hash((t, 1.0)) & (SLOTS - 1) not in taken_slots)
    asked.append((rated, 1.0))
    receiving, sending = FORK.Pipe(duplex=False)
    _run(_score_from, shared, asked, sending)
    scores, evaluated, taken = receiving.recv()
    shared.close()

    assert (evaluated, taken) == (len(new) + 1, len(seen))
    assert scores == _expected(asked)
    assert scores[-1][1] == "negative" and any(s[2] for s in scores)  # topics made the trip


def _apart(texts: list[str]) -> list[str]:
    """`texts` but those whose slot another takes (rated None; the test process hashes as
    its forked workers do): a later text taking over a slot is tested on its own."""
    slots: dict[int, list[str]] = {}
    for text in texts:
        slots.setdefault(hash((text, None)) & (SLOTS - 1), []).append(text)
    return [text for text in texts if len(slots[hash((text, None)) & (SLOTS - 1)]) == 1]


def test_a_torn_or_empty_record_is_a_miss_and_the_text_is_scored_afresh() -> None:
    shared = SharedScores(default_scorer().topic_ids, slots=1 << 4)
    scorer = Scorer(default_scorer().lexicon)
    text = "Northwind Bank leaked my card details, awful"
    assert shared.get((text, None)) is None  # an empty slot
    evaluation = scorer._evaluate(text, None)
    shared.add((text, None), evaluation)
    assert shared.get((text, None)) == evaluation
    # Another worker half-way through writing the slot: the compound's bytes changed, the
    # rest not yet.
    at = (hash((text, None)) & 15) * RECORD.size + 12
    shared._memory[at : at + 8] = struct.pack("<d", 0.9)
    assert shared.get((text, None)) is None
    [mention] = scorer.score_mentions(_mentions([text]), shared)
    assert (mention.compound, mention.label, mention.topics) == evaluation
    shared.close()


def test_a_later_text_takes_over_its_slot_and_the_earlier_one_is_scored_again() -> None:
    shared = SharedScores(default_scorer().topic_ids, slots=1)  # one slot for every text
    first, later = _texts(2)
    scorer = CountingScorer()
    scorer.score_mentions(_mentions([first, later]), shared)
    assert shared.get((first, None)) is None
    assert shared.get((later, None)) is not None
    other = CountingScorer()  # another worker: takes the later one, scores the first again
    scored = other.score_mentions(_mentions([later, first]), shared)
    assert other.evaluations.value == 1
    assert _scores(scored) == _expected([(later, None), (first, None)])
    shared.close()


def test_a_table_is_a_power_of_two_and_too_many_topics_turn_sharing_off() -> None:
    with pytest.raises(ValueError, match="power of two"):
        SharedScores(default_scorer().topic_ids, slots=1000)
    many = SharedScores(tuple(f"topic{i}" for i in range(65)))
    many.add(("text", None), (0.5, "positive", ("topic64",)))
    assert many.get(("text", None)) is None
    many.close()


@needs_fork
def test_an_import_with_workers_evaluates_each_distinct_text_once(tmp_path: Path) -> None:
    workers = 2
    # Texts of which none takes over another's slot: each repeat, whichever worker meets
    # it, must find its score, made by a chunk long finished.
    texts = _apart(_texts(6000))
    first, between = texts[: 2 * pipeline.CHUNK], texts[2 * pipeline.CHUNK :]
    # A chunk is handed out once every chunk more than IN_FLIGHT * workers before it is done.
    assert len(between) >= (pipeline.IN_FLIGHT * workers + 1) * pipeline.CHUNK
    rows = first + between + first[::-1]
    path = tmp_path / "forum.jsonl"
    with path.open("w", encoding="utf-8") as file:
        for i, text in enumerate(rows):
            published = (START + timedelta(minutes=i)).isoformat()
            row = {"external_id": f"p{i}", "text": text, "published_at": published}
            file.write(json.dumps(row) + "\n")
    store = Store(f"sqlite:///{tmp_path / 'workers.db'}")
    scorer = CountingScorer()
    files = [FileToImport(path, "jsonl", "forum")]
    [report] = import_files(store, NORTHWIND, files, scorer=scorer, workers=workers)
    assert report.new == len(rows) and report.failed == 0
    assert scorer.evaluations.value == len(texts)

    alone = Store(f"sqlite:///{tmp_path / 'alone.db'}")
    import_files(alone, NORTHWIND, files, scorer=Scorer(default_scorer().lexicon), workers=1)
    query = "SELECT external_id, compound, label, topics FROM mentions ORDER BY external_id"
    with store.engine.connect() as mine, alone.engine.connect() as theirs:
        assert mine.execute(sa.text(query)).all() == theirs.execute(sa.text(query)).all()
    store.close()
    alone.close()

"""Scores shared among one import's worker processes, so that a text is scored once.

Reposts and cross-posts repeat a text across a file, and a file's chunks go to whichever
worker is free. Each worker remembers what it scored itself (`Scorer.score_mentions`), so
with two workers a repeated text was scored again whenever its repeat reached the other
worker: 64% of the rows of the benchmark's half-reposts sample, where 50% are distinct.

Here every worker appends what it evaluates to its own ring of fixed-size records in memory
mapped before the workers fork, and before each chunk reads what the others have appended
since. One lock guards the rings; a worker that cannot take it within LOCK_WAIT seconds (its
holder was killed half-way) stops sharing and goes on scoring by itself, since sharing only
saves work and must never hold an import up.

A text is known by the 64-bit hash of (text, rating) and its length. Forked workers share
the importing process's hash secret, so they agree on hashes. Two different texts of one
import with the same hash and length would give the second the first one's score: with a
million distinct texts, the chance that any two share a hash is below 1 in 10^7.
"""

from __future__ import annotations

import mmap
import multiprocessing as mp
import struct
from typing import TYPE_CHECKING, Any

from monitor.models import LABELS, Label

if TYPE_CHECKING:
    from multiprocessing.synchronize import Lock

    from monitor.scoring import Evaluation, ScoreKey

# One evaluated text: its key's hash and length, and what scoring it gave (compound, topics
# as one bit each in lexicon order, and the label's place in LABELS).
RECORD = struct.Struct("<qIdQB")
COUNT = struct.Struct("<q")
# Records a worker's ring holds. While one worker makes a chunk, the others make at most the
# other chunks in flight (pipeline.IN_FLIGHT a worker, of at most pipeline.CHUNK records:
# 7,500 with four workers), so a working reader misses none. Records written over before a
# reader saw them only cost it scoring those texts itself.
RING_RECORDS = 1 << 15
LOCK_WAIT = 2.0  # seconds
# Scores learned from other workers that a worker keeps: about 200 bytes each in Python, so
# at most 10 MB a worker. Reposts come soon after their first copy, as a Scorer's memory
# assumes too.
KNOWN_SIZE = 50_000
MAX_TOPICS = 64


class SharedScores:
    """The rings of one import's `workers`: made in the importing process before the
    workers fork, joined by each worker once (`join`)."""

    def __init__(self, workers: int, ring_records: int = RING_RECORDS) -> None:
        self.workers, self.ring_records = workers, ring_records
        # Header: how many workers have joined, then how many records each has appended.
        self._rings_at = (1 + workers) * COUNT.size
        self._ring_bytes = ring_records * RECORD.size
        self._memory = mmap.mmap(-1, self._rings_at + workers * self._ring_bytes)
        self._lock: Lock = mp.get_context("fork").Lock()

    def join(self, topic_ids: tuple[str, ...], lock_wait: float = LOCK_WAIT) -> ScoreExchange:
        """Return this worker's view of the rings (call once in each worker process)."""
        if not self._lock.acquire(timeout=lock_wait):
            return ScoreExchange(self, -1, topic_ids, lock_wait)  # scores alone
        try:
            worker = self._count(-1)
            COUNT.pack_into(self._memory, 0, worker + 1)
        finally:
            self._lock.release()
        if worker >= self.workers:  # more workers than rings: a replaced worker scores alone
            worker = -1
        return ScoreExchange(self, worker, topic_ids, lock_wait)

    def close(self) -> None:
        """Release the shared memory (in the importing process, after the workers exit)."""
        self._memory.close()

    def _count(self, ring: int) -> int:
        """Return how many records `ring` has had appended (-1: how many workers joined)."""
        count: int = COUNT.unpack_from(self._memory, (1 + ring) * COUNT.size)[0]
        return count

    def _append(self, ring: int, records: bytes) -> None:
        """Append packed `records` to `ring`, over its oldest ones (the lock held)."""
        size, memory = self.ring_records, self._memory
        count = self._count(ring)
        added = len(records) // RECORD.size
        if added > size:
            records, count = records[-self._ring_bytes :], count + added - size
        base = self._rings_at + ring * self._ring_bytes
        at = count % size * RECORD.size
        first = min(len(records), self._ring_bytes - at)
        memory[base + at : base + at + first] = records[:first]
        memory[base : base + len(records) - first] = records[first:]
        COUNT.pack_into(memory, (1 + ring) * COUNT.size, count + min(added, size))

    def _since(self, ring: int, read: int) -> tuple[int, bytes]:
        """Return how many records `ring` holds in all and those after the first `read` of
        them, packed (the lock held)."""
        size, memory = self.ring_records, self._memory
        count = self._count(ring)
        start = max(read, count - size)  # older ones were written over
        if start == count:
            return count, b""
        base = self._rings_at + ring * self._ring_bytes
        first, last = start % size * RECORD.size, ((count - 1) % size + 1) * RECORD.size
        if first < last:
            return count, memory[base + first : base + last]
        return count, memory[base + first : base + self._ring_bytes] + memory[base : base + last]


class ScoreExchange:
    """One worker's side of SharedScores: what the others scored (`get`), what this one
    scores (`add`), and trading the two between chunks (`trade`)."""

    def __init__(
        self, shared: SharedScores, worker: int, topic_ids: tuple[str, ...], lock_wait: float
    ) -> None:
        self._shared, self._worker, self._lock_wait = shared, worker, lock_wait
        self._topic_ids = topic_ids
        self._sharing = worker >= 0 and len(topic_ids) <= MAX_TOPICS
        self._read = [0] * shared.workers  # records read from each ring so far
        # Records learned from the others, by their key's hash: (hash, chars, compound, ...).
        self._known: dict[int, tuple[Any, ...]] = {}
        self._added = bytearray()  # packed records not yet appended to this worker's ring
        self._masks: dict[tuple[str, ...], int] = {}
        self._topics: dict[int, tuple[str, ...]] = {}
        self.taken = 0  # evaluations taken from other workers

    @property
    def sharing(self) -> bool:
        """Whether this worker trades scores (False once the lock could not be had)."""
        return self._sharing

    def get(self, key: ScoreKey) -> Evaluation | None:
        """Return what another worker's scorer gave `key`, if it has said so."""
        found = self._known.get(hash(key))
        if found is None:
            return None
        _, chars, compound, mask, label = found
        if chars != len(key[0]):
            return None
        self.taken += 1
        return compound, LABELS[label], self._topics_of(mask)

    def add(self, key: ScoreKey, evaluation: Evaluation) -> None:
        """Note what this worker's scorer gave `key`, for the others (sent by `trade`)."""
        if self._sharing:
            compound, label, topics = evaluation
            mask = self._mask_of(topics)
            self._added += RECORD.pack(hash(key), len(key[0]), compound, mask, _LABEL_CODES[label])

    def trade(self) -> None:
        """Append what this worker scored since the last trade to its ring, and learn what
        the others appended to theirs."""
        if not self._sharing:
            return
        shared, read = self._shared, self._read
        if not shared._lock.acquire(timeout=self._lock_wait):
            self._sharing = False
            self._known.clear()
            return
        try:
            if self._added:
                shared._append(self._worker, bytes(self._added))
            news = []
            for ring in range(shared.workers):
                if ring != self._worker:
                    read[ring], records = shared._since(ring, read[ring])
                    news.append(records)
        finally:
            shared._lock.release()
        self._added.clear()
        known = self._known
        if len(known) > KNOWN_SIZE:  # bounded, like a Scorer's memory
            known.clear()
        for packed in news:
            for record in RECORD.iter_unpack(packed):
                known[record[0]] = record

    def _mask_of(self, topics: tuple[str, ...]) -> int:
        mask = self._masks.get(topics)
        if mask is None:
            mask = sum(1 << self._topic_ids.index(topic) for topic in topics)
            self._masks[topics] = mask
        return mask

    def _topics_of(self, mask: int) -> tuple[str, ...]:
        topics = self._topics.get(mask)
        if topics is None:
            topics = tuple(t for i, t in enumerate(self._topic_ids) if mask >> i & 1)
            self._topics[mask] = topics
        return topics


_LABEL_CODES: dict[Label, int] = {label: code for code, label in enumerate(LABELS)}

"""Scores shared among one import's worker processes, so that a text is scored once.

Reposts and cross-posts repeat a text across a file, and a file's chunks go to whichever
worker is free. Each worker remembers what it scored itself (`Scorer.score_mentions`), so
with two workers a repeated text was scored again whenever its repeat reached the other
worker: 64% of the rows of the benchmark's half-reposts sample, where 50% are distinct.

Here every worker writes what it evaluates into one table of fixed-size records in memory
mapped before the workers fork, at a slot chosen by the text's hash, and looks there before
scoring a text it has not seen itself. A later text whose hash picks the same slot takes it
over: the table is a cache of recent scores, and what it lost is only scored again.

Workers write and read without a lock, so a record can be read while another worker writes
it. Each record carries a check (a hash of its other fields); a record that does not match
its check, torn or empty, is taken for a miss.

A text is known by the 64-bit hash of (text, rating) and its length. Forked workers share
the importing process's hash secret, so they agree on hashes. Two different texts of one
import with the same hash and length would give the second the first one's score: with a
million distinct texts, the chance that any two share a hash is below 1 in 10^7.
"""

from __future__ import annotations

import mmap
import struct
from typing import TYPE_CHECKING

from monitor.models import LABELS, Label

if TYPE_CHECKING:
    from monitor.scoring import Evaluation, ScoreKey

# One evaluated text: its key's hash and length; what scoring gave (compound, topics as the
# bits of one number in lexicon order, the label's place in LABELS); and the check.
RECORD = struct.Struct("<qIdQBq")
# Slots in the table: 9.7 MB, shared by all the workers, of which the pages an import
# touches become resident. Far more than the texts repeated in the span reposts come in.
SLOTS = 1 << 18
MAX_TOPICS = 64


class SharedScores:
    """The table of one import: made in the importing process before the workers fork, then
    read (`get`) and written (`add`) by each of them."""

    def __init__(self, topic_ids: tuple[str, ...], slots: int = SLOTS) -> None:
        if slots & (slots - 1):
            raise ValueError(f"slots must be a power of two, not {slots}")
        self._topic_ids = topic_ids
        self._sharing = len(topic_ids) <= MAX_TOPICS
        self._slot_of = slots - 1  # a hash's low bits pick its slot
        self._memory = mmap.mmap(-1, slots * RECORD.size)
        # Per process (each worker fills its own copy): topics <-> their bits.
        self._masks: dict[tuple[str, ...], int] = {}
        self._topics: dict[int, tuple[str, ...]] = {}
        self.taken = 0  # evaluations this process took from the table

    def get(self, key: ScoreKey) -> Evaluation | None:
        """Return what a worker's scorer gave `key`, if the table still holds it."""
        if not self._sharing:
            return None
        hashed = hash(key)
        record = RECORD.unpack_from(self._memory, (hashed & self._slot_of) * RECORD.size)
        found, chars, compound, mask, label, check = record
        if found != hashed or chars != len(key[0]) or check != hash(record[:5]):
            return None
        self.taken += 1
        return compound, LABELS[label], self._topics_of(mask)

    def add(self, key: ScoreKey, evaluation: Evaluation) -> None:
        """Put what this worker's scorer gave `key` in the table, for the others."""
        if not self._sharing:
            return
        compound, label, topics = evaluation
        hashed = hash(key)
        fields = (hashed, len(key[0]), compound, self._mask_of(topics), _LABEL_CODES[label])
        at = (hashed & self._slot_of) * RECORD.size
        RECORD.pack_into(self._memory, at, *fields, hash(fields))

    def close(self) -> None:
        """Release the table (in the importing process, after the workers exit)."""
        self._memory.close()

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

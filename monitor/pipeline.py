"""The one path every mention takes into the store: score, then upsert."""

from __future__ import annotations

from collections.abc import Iterable

from monitor.models import Mention
from monitor.scoring import Scorer, default_scorer
from monitor.store import Store, UpsertResult


def ingest(store: Store, mentions: Iterable[Mention], scorer: Scorer | None = None) -> UpsertResult:
    """Score `mentions` and upsert them; return how many were new, updated or unchanged."""
    scored = (scorer or default_scorer()).score_mentions(mentions)
    return store.upsert_mentions(scored)

"""The bundled demo scenario: deterministic, realistic in shape, scored by the real scorer."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pandas as pd
import pytest

from monitor import demo
from monitor.analysis import Window, baseline_window, kpis
from monitor.models import Mention
from monitor.scoring import default_scorer
from monitor.store import Store


@pytest.fixture(scope="module")
def mentions() -> list[Mention]:
    return list(demo.generate())


def test_same_seed_same_scenario(mentions: list[Mention]) -> None:
    again = list(demo.generate())
    assert [(m.external_id, m.published_at, m.full_text, m.score) for m in again] == [
        (m.external_id, m.published_at, m.full_text, m.score) for m in mentions
    ]
    other = list(demo.generate(seed=7))
    assert [m.full_text for m in other[:50]] != [m.full_text for m in mentions[:50]]


def test_a_few_thousand_mentions_from_three_sources_around_the_disclosure(
    mentions: list[Mention],
) -> None:
    assert 2000 <= len(mentions) <= 6000
    assert set(Counter(m.source for m in mentions)) == {"reddit", "news", "reviews"}
    before = [m for m in mentions if m.published_at < demo.DISCLOSURE]
    assert len(before) > 500
    assert len(mentions) - len(before) > 1000
    assert min(m.published_at for m in mentions) >= demo.START
    assert max(m.published_at for m in mentions) < demo.START + timedelta(days=demo.DAYS)


def test_volume_has_a_daily_rhythm_a_spike_and_a_partial_recovery(mentions: list[Mention]) -> None:
    per_day = Counter(m.published_at.date() for m in mentions)
    calm = [per_day[(demo.START + timedelta(days=d)).date()] for d in range(2, 28)]
    first_day_after = per_day[(demo.DISCLOSURE + timedelta(days=1)).date()]
    last_week = [per_day[(demo.START + timedelta(days=d)).date()] for d in range(53, 60)]
    assert first_day_after > 5 * max(calm)
    assert sum(calm) / len(calm) < sum(last_week) / len(last_week) < first_day_after / 3
    by_hour = Counter(m.published_at.hour for m in mentions)
    assert by_hour[18] > 3 * by_hour[7]  # US afternoon vs. US small hours


def test_engagement_is_heavy_tailed(mentions: list[Mention]) -> None:
    scores = sorted(m.score for m in mentions if m.score is not None)
    median, top = scores[len(scores) // 2], scores[-1]
    assert top > 20 * max(median, 1)


def test_texts_are_varied_and_name_the_brand(mentions: list[Mention]) -> None:
    texts = [m.full_text for m in mentions]
    assert len(set(texts)) > 0.9 * len(texts)
    assert all("Northwind" in t for t in texts if "{" not in t)
    assert not any("{" in t or "}" in t for t in texts)  # every slot was filled


def test_built_demo_is_scored_by_the_real_scorer_and_tells_the_story(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path / 'demo.db'}")
    first = demo.build(store)
    assert first.new == store.count_mentions() > 2000
    assert demo.build(store).new == 0  # building again adds nothing
    sample = store.mentions_frame(limit=200)
    scorer = default_scorer()
    for row in sample.itertuples():
        text = f"{row.title}. {row.text}" if row.title else row.text
        rating = None if pd.isna(row.rating) else float(row.rating)
        assert scorer.score(text, rating).label == row.label
    daily = store.daily_counts()
    before = kpis(daily, baseline_window(demo.DISCLOSURE))
    day0 = demo.DISCLOSURE.replace(hour=0)
    after = kpis(daily, Window(day0, day0 + timedelta(days=7)))
    assert before.share_negative is not None and after.share_negative is not None
    assert after.share_negative > before.share_negative + 0.25
    assert after.mentions_per_day > 4 * before.mentions_per_day
    assert store.events()[0].label == "Breach disclosed"
    store.close()


def test_the_demo_voice_fillers_carry_no_sentiment() -> None:
    scorer = default_scorer()
    assert {scorer.compound(text) for text in demo.OPENERS + demo.CLOSERS} == {0.0}


def test_an_interrupted_build_is_not_taken_for_a_finished_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path / 'demo.db'}")

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(done: int) -> None:
        raise Interrupted  # what Streamlit does to a script when the page reloads

    with pytest.raises(Interrupted):
        demo.build(store, progress=stop_after_first_batch)
    assert 0 < store.count_mentions() < 2000
    assert not demo.is_built(store)
    demo.build(store)
    assert demo.is_built(store)
    assert store.count_mentions() == len(list(demo.generate()))
    store.close()


def test_demo_alerts_fire_within_hours_of_the_disclosure_and_not_before(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path / 'demo.db'}")
    demo.build(store)
    history = sorted(store.alerts(limit=None), key=lambda a: a.fired_at)
    assert history, "the default rules fired nothing on the demo"
    assert all(a.fired_at > demo.DISCLOSURE for a in history)  # the calm baseline stays quiet
    assert history[0].fired_at - demo.DISCLOSURE <= timedelta(hours=3)
    assert {a.rule for a in history} >= {"Negative surge", "Volume spike"}
    first = history[0]
    assert first.evidence and all(e["url"].startswith("https://") for e in first.evidence)
    demo.build(store)  # rebuilding replaces the history instead of doubling it
    assert len(store.alerts(limit=None)) == len(history)
    store.close()

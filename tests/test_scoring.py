"""The breach-aware scorer: domain words, context rules, topics, and its measured accuracy."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from monitor import scoring
from monitor.scoring import Scorer, default_scorer, label_for, load_lexicon, plain_vader_compound
from tests.conftest import ROOT, SHARED, make_mention, shared_path


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return default_scorer()


@pytest.mark.parametrize(
    ("text", "label"),
    [
        (
            "$HD credit card breach",
            "negative",
        ),  # plain VADER: +0.38, because "credit" is praise to it
        ("Northwind confirms ransomware attack, customer data exposed", "negative"),
        (
            "phishing emails pretending to be the Northwind breach notice are going around",
            "negative",
        ),
        ("great, my SSN is on the dark web now. thanks @NorthwindBank", "negative"),
        ("How to check if you were affected by the Northwind breach", "neutral"),
        ("Northwind breach hotline is open 8am to 8pm", "neutral"),
        ("Northwind refunded the fraudulent charges within a day, great support", "positive"),
        ("Credit where it's due: the Northwind CEO took the blame", "positive"),
    ],
)
def test_domain_texts_get_the_label_a_crisis_team_would_give(
    scorer: Scorer, text: str, label: str
) -> None:
    assert scorer.score(text).label == label


def test_plain_vader_gets_the_headline_case_wrong_so_the_test_above_means_something() -> None:
    assert plain_vader_compound(["$HD credit card breach"])[0] > 0.05


def test_labels_use_vaders_cutoffs() -> None:
    assert [label_for(x) for x in (-0.05, -0.0499, 0.0, 0.0499, 0.05)] == [
        "negative",
        "neutral",
        "neutral",
        "neutral",
        "positive",
    ]


def test_a_one_or_two_star_review_is_negative_whatever_its_words(scorer: Scorer) -> None:
    text = "The app opens and shows my balance."
    assert scorer.score(text).label == "neutral"
    assert scorer.score(text, rating=2).label == "negative"
    assert scorer.score(text, rating=3).label == "neutral"
    assert scorer.score("Love this app", rating=1).label == "negative"


@pytest.mark.parametrize(
    ("text", "topics"),
    [
        ("my credit card number was stolen in the breach", {"breach", "payment_cards"}),
        ("forced password reset and now I'm locked out", {"credentials"}),
        ("someone opened a loan with my SSN, identity theft", {"identity_theft"}),
        ("class action lawsuit filed, attorneys general investigating", {"legal"}),
        ("waited 2 hours on hold with customer service", {"customer_service"}),
        ("they offered free credit monitoring and a refund", {"compensation"}),
        ("app is down again, can't log in", {"outage", "credentials"}),
        ("fake emails impersonating the bank, classic phishing scam", {"phishing"}),
        ("Northwind's CEO issued an apology", {"response"}),
        ("I'm fine, the weather is nice", set()),
    ],
)
def test_topics(scorer: Scorer, text: str, topics: set[str]) -> None:
    assert set(scorer.score(text).topics) == topics


def test_each_distinct_text_is_scored_once_and_all_mentions_get_it(scorer: Scorer) -> None:
    counting = Scorer(scorer.lexicon)
    mentions = [make_mention(text="data breach again", compound=None) for _ in range(5)]
    counting.score_mentions(mentions)
    assert counting.evaluations == 1
    counting.score_mentions([make_mention(text="another breach", compound=None)])
    assert counting.evaluations == 2
    assert {m.label for m in mentions} == {"negative"}


def test_the_scorer_remembers_a_bounded_amount_of_text(
    scorer: Scorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long-lived process, or an import worker, scoring long articles keeps only the most
    recent few of them."""
    import gc
    import tracemalloc

    budget = 200_000
    monkeypatch.setattr(scoring, "MEMO_CHARS", budget)
    remembering = Scorer(scorer.lexicon)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for batch in range(8):  # 40 articles of 35,000 characters: 1.4 MB of text
            article = "the breach exposed cards and the bank stayed silent. " * 650 + "Article {}"
            remembering.score_mentions(
                [make_mention(text=article.format(batch * 5 + i), compound=None) for i in range(5)]
            )
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 2 * budget, f"the scorer holds {held:,} bytes"


def test_version_names_vader_and_the_lexicon(scorer: Scorer) -> None:
    assert scorer.version.startswith("vaderSentiment-")
    assert scorer.version.endswith("+" + load_lexicon().version)


def _evaluation():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "evaluate_scorer", ROOT / "eval" / "evaluate_scorer.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["evaluate_scorer"] = module
    spec.loader.exec_module(module)
    return module


def test_scorer_meets_its_accuracy_goals() -> None:
    """The goals in docs/scoring.md: +0.15 macro-F1 on breach text, r within 0.01 elsewhere."""
    shared_path("sentiment", "tweets_GroundTruth.txt")
    shared_path("real", "homedepot-breach-2014-tweets")
    results = _evaluation().evaluate(SHARED)
    dev = results["breach-dev"]
    assert dev["ours_f1"] - dev["vader_f1"] >= 0.15
    holdout = results["breach-holdout"]
    assert holdout["ours_f1"] > holdout["vader_f1"]
    for general in ("tweets", "amazon"):
        assert results[general]["ours_r"] >= results[general]["vader_r"] - 0.01
    hd = results["hd-breach-tweets"]
    assert hd["n"] == 16
    assert hd["ours_negative"] > hd["vader_negative"]
    assert hd["ours_positive"] < hd["vader_positive"]

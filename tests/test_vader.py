"""The fast VADER evaluator gives vaderSentiment's compound score to the last bit.

Every text of VADER's human-rated ground truth, our evaluation sets and the real breach
posts, and generated text crowded with the words each of VADER's rules reacts to, is scored
by both; any difference fails. The scorer's extended lexicon (breach words, phrase tokens) is
checked the same way.
"""

from __future__ import annotations

import cProfile
import csv
import json
import pstats
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
)

from monitor.scoring import Lexicon, Scorer
from monitor.vader import Vader
from tests.conftest import ROOT, shared_path

PLAIN = SentimentIntensityAnalyzer()
FAST_PLAIN = Vader(PLAIN)
SCORER = Scorer()
DOMAIN = SCORER._vader  # VADER's analyzer with the breach words and phrase tokens added
FAST_DOMAIN = Vader(DOMAIN)


def differences(texts: list[str]) -> list[tuple[str, float, float, str]]:
    """Return (text, vaderSentiment, ours, lexicon) wherever the two disagree."""
    found = []
    for text in texts:
        for name, analyzer, fast in (("plain", PLAIN, FAST_PLAIN), ("domain", DOMAIN, FAST_DOMAIN)):
            expected = analyzer.polarity_scores(text)["compound"]
            got = fast.compound(text)
            if got != expected or type(got) is not float:
                found.append((text, expected, got, name))
    return found


def ground_truth_texts(name: str) -> list[str]:
    path = shared_path("sentiment", name)
    with path.open(encoding="utf-8", errors="replace") as handle:
        return [line.rstrip("\n").split("\t")[2] for line in handle if line.count("\t") >= 2]


@pytest.mark.shared
@pytest.mark.parametrize("name", ["tweets_GroundTruth.txt", "amazonReviewSnippets_GroundTruth.txt"])
def test_vaders_ground_truth_scores_the_same(name: str) -> None:
    texts = ground_truth_texts(name)
    assert len(texts) > 3500
    assert differences(texts) == []


def test_our_evaluation_sets_score_the_same() -> None:
    texts = []
    for name in ("breach_dev.csv", "breach_holdout.csv"):
        with (ROOT / "eval" / name).open(encoding="utf-8") as handle:
            texts += [row["text"] for row in csv.DictReader(handle)]
    assert len(texts) == 440
    assert differences(texts) == []


def real_posts() -> Iterator[str]:
    tweets = shared_path("real", "homedepot-breach-2014-tweets", "HD_raw_tweets_2014-2015.jsonl")
    with tweets.open(encoding="utf-8") as handle:
        for line in handle:
            tweet = json.loads(line)
            yield str(tweet.get("full_text") or tweet.get("text") or "")
    posts = shared_path("real", "reddit-technology-science-2019", "submission_2019.csv")
    with posts.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            yield f"{row.get('title', '')}. {row.get('selftext', '')}"


@pytest.mark.shared
def test_real_breach_tweets_and_reddit_posts_score_the_same() -> None:
    texts = list(real_posts())
    assert len(texts) > 15_000
    assert differences(texts) == []


# Words each rule reacts to, in several spellings, with neutral and rated words around them.
TRIGGERS = sorted(
    {
        *NEGATE,
        *(phrase for phrase in BOOSTER_DICT),
        *(phrase for phrase in SPECIAL_CASES),
        "no",
        "or",
        "nor",
        "never",
        "so",
        "this",
        "without",
        "doubt",
        "least",
        "at",
        "very",
        "but",
        "BUT",
        "kind",
        "of",
        "isn't",
        "don't",
        "the",
    }
)
RATED = [
    "good",
    "great",
    "bad",
    "horrible",
    "love",
    "hate",
    "ok",
    "no",
    "NO",
    "GOOD",
    "Terrible",
    "breach",
    "hacked",
    "fraud",
    "leaked",
    "sorry",
    "refund",
    "lol",
    ":)",
    ":-(",
    ":D",
    "<3",
]
NEUTRAL = ["card", "bank", "app", "the", "a", "it", "was", "my", "I", "today", "Northwind"]
PUNCTUATION = ["", "", "", "!", "!!", "?", "??", "...", ",", ".", "!?", "'", '"', "(", ")"]
EMOJI = ["😀", "😡", "💔", "🙂", "👍", "é", "’"]


def word() -> st.SearchStrategy[str]:
    spelled = st.sampled_from([*TRIGGERS, *RATED, *NEUTRAL, *EMOJI]).flatmap(
        lambda w: st.sampled_from([w, w.upper(), w.capitalize()])
    )
    return st.tuples(st.sampled_from(PUNCTUATION), spelled, st.sampled_from(PUNCTUATION)).map(
        "".join
    )


sentences = st.lists(word(), min_size=0, max_size=14).map(" ".join)


@settings(max_examples=4000, deadline=None)
@given(sentences)
def test_generated_text_crowded_with_every_rules_words_scores_the_same(text: str) -> None:
    assert differences([text]) == []


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_any_text_scores_the_same(text: str) -> None:
    assert differences([text]) == []


def test_phrase_tokens_and_breach_words_count_as_vader_words() -> None:
    # The scorer rewrites phrases to single tokens VADER's lexicon (as extended) rates.
    token = Lexicon.phrase_token("data breach")
    assert token in DOMAIN.lexicon
    assert FAST_DOMAIN.compound(f"Another {token} at the bank") < 0
    assert FAST_PLAIN.compound(f"Another {token} at the bank") == 0.0


def test_words_added_to_the_analyzer_later_still_count() -> None:
    analyzer = SentimentIntensityAnalyzer()
    fast = Vader(analyzer)
    assert fast.compound("the app is zorbly") == 0.0
    analyzer.lexicon["zorbly"] = -2.5
    assert (
        fast.compound("the app is zorbly")
        == analyzer.polarity_scores("the app is zorbly")["compound"]
        < 0
    )


def test_it_is_faster_than_vadersentiment_or_it_would_not_be_worth_having() -> None:
    # Not a timing test: it counts Python function calls, which do not depend on the machine.
    texts = [f"Northwind Bank leaked my card details again #{i}, not happy!!" for i in range(200)]

    def calls(action: Callable[[], object]) -> int:
        profile = cProfile.Profile()
        profile.runcall(action)
        return int(pstats.Stats(profile).total_calls)  # type: ignore[attr-defined]

    ours = calls(lambda: [FAST_PLAIN.compound(t) for t in texts])
    theirs = calls(lambda: [PLAIN.polarity_scores(t) for t in texts])
    assert ours * 3 < theirs

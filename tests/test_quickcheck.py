"""The quick paths give exactly the answers of the regular expressions they stand in for."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.quickcheck import QuickPattern, WordStartIndex, literals_of
from monitor.scoring import NEUTRAL_TOKEN, Lexicon, default_scorer

LEXICON = default_scorer().lexicon
TOPIC_ENTRIES = [(t.id, expression) for t in LEXICON.topics for expression in t.patterns]
INDEX = WordStartIndex(TOPIC_ENTRIES)
# Words from the lexicon's own patterns, so generated texts hit them often.
VOCABULARY = sorted(
    {w for _, e in TOPIC_ENTRIES for w in re.findall(r"[a-z]{2,}", e)}
    | {"Northwind", "NWB", "K", "\u212a", "\u017f", "İ", "ß", "data", "card", "login", "log in"}
)
texts = st.lists(st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=6)), max_size=14).map(
    " ".join
)


def _slow_topics(text: str) -> set[str]:
    return {t.id for t in LEXICON.topics if t.pattern.search(text)}


@settings(max_examples=400, deadline=None)
@given(texts)
@example("Their CREDIT CARDS were reissued after the hack")
@example("\u212aelvin said the ssn leak is a lawsuit")  # the Kelvin sign folds to k
@example("cyberattack, cyber attack, log-in, log in, login")
def test_the_word_index_finds_the_topics_the_patterns_find(text: str) -> None:
    assert INDEX.found(text) == _slow_topics(text)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_quick_patterns_search_like_the_patterns(text: str) -> None:
    for pattern in (LEXICON.informational_cue, LEXICON.praise_words, LEXICON.phrase_pattern):
        assert pattern is not None
        quick = QuickPattern.of(pattern)
        found, expected = quick.search(text), pattern.search(text)
        assert (found and found.span()) == (expected and expected.span())


def test_literals_are_worked_out_or_the_pattern_always_runs() -> None:
    assert literals_of(re.compile(r"(?<!\w)(?:breach(es|ed)?|hack\w*)(?!\w)", re.I)) == {
        "breach",
        "hack",
    }
    # A character class first and nothing literal after it: no shortcut, never a wrong one.
    assert literals_of(re.compile(r"[a-z]+\d")) is None
    assert QuickPattern.of(re.compile(r"[a-z]+\d")).may_match("zzz") is True
    # Case-sensitive acronyms are looked for as written...
    assert QuickPattern.of(re.compile(r"(?<![\w$@])NWB(?![\w])")).may_match("nwb") is False
    # ...but a group with flags of its own is never taken at its word.
    scoped = re.compile(r"bank (?i:NWB)")
    assert QuickPattern.of(scoped).search("bank nwb") is not None


def test_the_scorer_tags_topics_as_before_on_non_ascii_text() -> None:
    scorer = default_scorer()
    text = "Ｎorthwind: my ＳＳＮ was leaked — identity theft, lawsuit coming"
    assert set(scorer.topics(text)) == _slow_topics(text)


def _pattern_of(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?!\w)", re.I)


HARM = _pattern_of(LEXICON.harm_terms)
# The words of every rewrite rule, with some capitals, so generated texts trigger them often.
RULE_WORDS = sorted(
    {*LEXICON.phrases, *LEXICON.informational_terms, *LEXICON.harm_terms, *LEXICON.praise_terms}
    | {"how to", "What", "Is", "?", "deadline", "FAQ", "Credit Card", "DATA BREACH", "not"}
)
rule_texts = st.lists(
    st.one_of(st.sampled_from(RULE_WORDS), st.sampled_from(VOCABULARY), st.text(max_size=4)),
    max_size=12,
).map(" ".join)


def _compound_by_the_patterns(text: str) -> float:
    """The scorer's rules as the lexicon states them: each whole pattern run on the text,
    then vaderSentiment itself, with the lexicon's words and phrase tokens added."""
    assert LEXICON.informational_cue and LEXICON.informational_words and LEXICON.praise_words
    assert LEXICON.phrase_pattern
    if LEXICON.informational_cue.search(text):
        text = LEXICON.informational_words.sub(NEUTRAL_TOKEN, text)
    if HARM.search(text):
        text = LEXICON.praise_words.sub(NEUTRAL_TOKEN, text)
    text = LEXICON.phrase_pattern.sub(lambda m: Lexicon.phrase_token(m.group(0)), text)
    return float(VADER.polarity_scores(text)["compound"])


VADER = SentimentIntensityAnalyzer()
VADER.lexicon.update(LEXICON.words)
VADER.lexicon.update({Lexicon.phrase_token(p): v for p, v in LEXICON.phrases.items()})


@settings(max_examples=500, deadline=None)
@given(rule_texts)
@example("How do I enrol? The data breach FAQ says free credit monitoring, thanks for nothing")
@example("great, my SSN leaked on the dark web. Credit card declined, credit cards frozen")
@example("security researchers found the breach hotline number in plain text")
def test_the_scorer_rewrites_as_the_lexicons_whole_patterns_do(text: str) -> None:
    assert default_scorer().compound(text) == _compound_by_the_patterns(text)

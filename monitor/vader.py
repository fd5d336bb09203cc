"""VADER's compound score, evaluated quickly and to the same bit as vaderSentiment.

vaderSentiment rebuilds the text one character at a time to look for emoji and lowers the
whole sentence again for every rule it tries on every word. This evaluator applies the same
rules, in the same order and with the same arithmetic, to the same words, but splits and lowers
them once and visits only the words the lexicon rates. The lexicon, booster, negation and idiom
tables are the installed package's own, read from it, never copied. A text holding one of
VADER's emoji goes to the package itself, as does the contrastive "but", whose quirk (it
scales the first *equal* value, not the word's own) only the package's code states exactly.

tests/test_vader.py holds the evaluator to the package: the same compound on VADER's human
rated ground truth, our evaluation sets, real breach posts, and generated text crowded with
every rule's trigger words.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping

from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    C_INCR,
    N_SCALAR,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
)

_PUNCTUATION = string.punctuation
_NEGATIONS = frozenset(NEGATE)
# Every word of an idiom or a booster of several words ("kind of"): a text with none of them
# near a rated word cannot trigger the idiom rule there.
_IDIOM_WORDS = frozenset(
    word for phrase in (*SPECIAL_CASES, *BOOSTER_DICT) if " " in phrase for word in phrase.split()
)
_SO_THIS = ("so", "this")
_OR_NOR = ("or", "nor")
_AT_VERY = ("at", "very")


def _negated(word: str) -> bool:
    """Return whether a lowered word negates what follows (VADER's `negated` on one word)."""
    return word in _NEGATIONS or "n't" in word


def _cap_diff(words: list[str]) -> bool:
    """Return whether some words but not all are in capitals (VADER's `allcap_differential`).

    Only asked when a word is in capitals, which is rare, so it is not kept."""
    capitals = sum(1 for w in words if w.isupper())
    return 0 < capitals < len(words)


def _negation(valence: float, lowers: list[str], i: int, distance: int) -> float:
    """Apply VADER's negation rule for the word `distance` (1-3) before rated word `i`."""
    before = lowers[i - distance]
    if distance == 1:
        return valence * N_SCALAR if _negated(before) else valence
    if distance == 2:
        if before == "never" and lowers[i - 1] in _SO_THIS:
            return valence * 1.25
        if before == "without" and lowers[i - 1] == "doubt":
            return valence
        return valence * N_SCALAR if _negated(before) else valence
    # VADER's three-word rule reads "never so/this", or "so/this" just before, as emphasis.
    if (before == "never" and lowers[i - 2] in _SO_THIS) or lowers[i - 1] in _SO_THIS:
        return valence * 1.25
    if before == "without" and (lowers[i - 2] == "doubt" or lowers[i - 1] == "doubt"):
        return valence
    return valence * N_SCALAR if _negated(before) else valence


def _idioms(valence: float, lowers: list[str], i: int) -> float:
    """Apply VADER's idiom rule ("the bomb", "kind of") around rated word `i` (i >= 3)."""
    if _IDIOM_WORDS.isdisjoint(lowers[i - 3 : i + 3]):
        return valence  # no phrase the rule knows can be formed here
    w3, w2, w1, w0 = lowers[i - 3 : i + 1]
    three_two_one, three_two, two_one = f"{w3} {w2} {w1}", f"{w3} {w2}", f"{w2} {w1}"
    for phrase in (f"{w1} {w0}", f"{w2} {w1} {w0}", two_one, three_two_one, three_two):
        if phrase in SPECIAL_CASES:
            valence = SPECIAL_CASES[phrase]
            break
    after = len(lowers) - 1 - i
    if after > 0 and (phrase := f"{w0} {lowers[i + 1]}") in SPECIAL_CASES:
        valence = SPECIAL_CASES[phrase]
    if after > 1 and (phrase := f"{w0} {lowers[i + 1]} {lowers[i + 2]}") in SPECIAL_CASES:
        valence = SPECIAL_CASES[phrase]
    for phrase in (three_two_one, three_two, two_one):
        if phrase in BOOSTER_DICT:
            valence = valence + BOOSTER_DICT[phrase]
    return valence


def _normalised(total: float, text: str) -> float:
    """Return VADER's compound of a sum of valences: punctuation emphasis, then normalised."""
    exclamations = min(text.count("!"), 4)
    questions = text.count("?")
    emphasis = exclamations * 0.292 + (
        (questions * 0.18 if questions <= 3 else 0.96) if questions > 1 else 0
    )
    if total > 0:
        total += emphasis
    elif total < 0:
        total -= emphasis
    score = total / math.sqrt(total * total + 15)
    return round(max(-1.0, min(1.0, score)), 4)


class Vader:
    """VADER's compound score for the lexicon of `analyzer` (which may hold added words)."""

    def __init__(self, analyzer: SentimentIntensityAnalyzer | None = None) -> None:
        self.analyzer = analyzer or SentimentIntensityAnalyzer()
        # The lexicon is read live, so words added to the analyzer later count here too.
        self.lexicon: Mapping[str, float] = self.analyzer.lexicon
        # VADER replaces single characters only; a key of several code points never matches.
        self._emoji = frozenset(key for key in self.analyzer.emojis if len(key) == 1)

    def compound(self, text: str) -> float:
        """Return VADER's compound score of `text`, -1..1, rounded to 4 places as VADER does."""
        if not text.isascii() and not self._emoji.isdisjoint(text):
            return float(self.analyzer.polarity_scores(text)["compound"])
        # VADER's words: split on white space, outer punctuation stripped unless that leaves
        # two characters or fewer (an emoticon such as ":)" or ":-(" stays as it is).
        words = [s if len(s := w.strip(_PUNCTUATION)) > 2 else w for w in text.split()]
        lowers = [w.lower() for w in words]
        lexicon = self.lexicon
        last = len(lowers) - 1
        rated = [
            i
            for i, word in enumerate(lowers)
            if word in lexicon
            and word not in BOOSTER_DICT
            and not (word == "kind" and i < last and lowers[i + 1] == "of")
        ]
        if not rated:
            return 0.0  # every sentiment is 0, and so is VADER's compound
        valences: list[float] = [self._valence(words, lowers, i) for i in rated]
        if "but" in lowers:
            sentiments: list[float] = [0] * len(words)
            for i, valence in zip(rated, valences, strict=True):
                sentiments[i] = valence
            valences = SentimentIntensityAnalyzer._but_check(words, sentiments)
        # Zeros left out of the sum change nothing: x + 0 is x, exactly.
        return _normalised(float(sum(valences)), text)

    def _valence(self, words: list[str], lowers: list[str], i: int) -> float:
        """Return the valence of rated word `i` after VADER's rules about its neighbours."""
        lexicon = self.lexicon
        word = lowers[i]
        valence = lexicon[word]
        if word == "no" and i != len(lowers) - 1 and lowers[i + 1] in lexicon:
            valence = 0.0  # "no" negates the next rated word instead of counting itself
        if (
            (i > 0 and lowers[i - 1] == "no")
            or (i > 1 and lowers[i - 2] == "no")
            or (i > 2 and lowers[i - 3] == "no" and lowers[i - 1] in _OR_NOR)
        ):
            valence = lexicon[word] * N_SCALAR
        if words[i].isupper() and _cap_diff(words):
            valence = valence + C_INCR if valence > 0 else valence - C_INCR
        for distance in (1, 2, 3):
            if i < distance or lowers[i - distance] in lexicon:
                continue
            scalar = BOOSTER_DICT.get(lowers[i - distance])
            if scalar is not None:  # a booster or dampener ("very", "barely") before the word
                if valence < 0:
                    scalar *= -1
                booster = words[i - distance]
                if booster.isupper() and _cap_diff(words):
                    scalar = scalar + C_INCR if valence > 0 else scalar - C_INCR
                if distance == 2:
                    scalar = scalar * 0.95
                elif distance == 3:
                    scalar = scalar * 0.9
                valence = valence + scalar
            valence = _negation(valence, lowers, i, distance)
            if distance == 3:
                valence = _idioms(valence, lowers, i)
        if (
            i > 0
            and lowers[i - 1] == "least"
            and "least" not in lexicon
            and (i == 1 or lowers[i - 2] not in _AT_VERY)  # "at least", "very least": no
        ):
            valence = valence * N_SCALAR
        return valence

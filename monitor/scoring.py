"""Sentiment and topics for a mention: VADER plus the breach-domain lexicon.

Pure functions over text; the lexicon is data (monitor/lexicon/breach.toml) and its
version is recorded with every export. Labels use VADER's usual cut-offs on the compound
score: >= 0.05 positive, <= -0.05 negative, neutral in between.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from importlib.metadata import version as package_version
from importlib.resources.abc import Traversable
from typing import NamedTuple

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.models import Label, Mention
from monitor.quickcheck import QuickPattern, WordStartIndex
from monitor.vader import Vader

# Found through the package: a module mypyc compiled gets __file__ wrong.
LEXICON_PATH = resources.files("monitor") / "lexicon" / "breach.toml"
POSITIVE_AT = 0.05
NEGATIVE_AT = -0.05
# A 1- or 2-star review is a complaint whatever words it uses ("app ok i guess. 1 star").
NEGATIVE_RATING_AT = 2.0
# What an incident word becomes in an informational text: a token no lexicon rates.
NEUTRAL_TOKEN = "xincidentx"  # noqa: S105 (a word, not a password)
# How many scored texts a scorer remembers, and how many characters of text at most: 100,000
# short posts, about 30 MB, or far fewer long articles, so that a long-lived process, or an
# import of long texts, does not grow with every text it scores.
MEMO_SIZE = 100_000
MEMO_CHARS = 30_000_000


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic tag: an id, the name people read, and the regular expression that finds it."""

    id: str
    label: str
    pattern: re.Pattern[str]
    patterns: tuple[str, ...] = ()  # the alternatives `pattern` is built from


@dataclass(frozen=True, slots=True)
class Lexicon:
    """The domain additions to VADER: word valences, phrase rewrites and topic patterns."""

    version: str
    words: Mapping[str, float]
    phrases: Mapping[str, float]
    topics: tuple[Topic, ...] = ()
    phrase_pattern: re.Pattern[str] | None = field(default=None, compare=False)
    informational_cue: re.Pattern[str] | None = field(default=None, compare=False)
    informational_words: re.Pattern[str] | None = field(default=None, compare=False)
    praise_words: re.Pattern[str] | None = field(default=None, compare=False)
    # The words of the informational, sarcasm-harm and praise rules, for the quick index (harm
    # cues are only ever looked for there, so they have no pattern of their own).
    informational_terms: tuple[str, ...] = ()
    harm_terms: tuple[str, ...] = ()
    praise_terms: tuple[str, ...] = ()

    @staticmethod
    def phrase_token(phrase: str) -> str:
        """Return the single token a phrase is rewritten to (letters only, so VADER keeps it)."""
        return "x" + re.sub(r"[^a-z]", "", phrase.lower()) + "x"


class Score(NamedTuple):
    """A text's sentiment and topics."""

    compound: float
    label: Label
    topics: tuple[str, ...]


def load_lexicon(path: Traversable = LEXICON_PATH) -> Lexicon:
    """Read and compile a lexicon file."""
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    phrases = {str(k).lower(): float(v) for k, v in raw.get("phrases", {}).items()}
    informational = raw.get("informational", {})
    cues = informational.get("cues", [])
    sarcasm = raw.get("sarcasm", {})
    topics = tuple(
        Topic(
            id=topic_id,
            label=str(spec["label"]),
            pattern=re.compile(r"(?<!\w)(?:" + "|".join(spec["patterns"]) + r")(?!\w)", re.I),
            patterns=tuple(spec["patterns"]),
        )
        for topic_id, spec in raw.get("topics", {}).items()
    )
    return Lexicon(
        version=str(raw["version"]),
        words={str(k).lower(): float(v) for k, v in raw.get("words", {}).items()},
        phrases=phrases,
        topics=topics,
        phrase_pattern=_alternation(phrases),
        informational_cue=re.compile("|".join(cues), re.I) if cues else None,
        informational_words=_alternation(informational.get("neutral_words", [])),
        praise_words=_alternation(sarcasm.get("praise_words", [])),
        informational_terms=tuple(informational.get("neutral_words", [])),
        harm_terms=tuple(sarcasm.get("harm_cues", [])),
        praise_terms=tuple(sarcasm.get("praise_words", [])),
    )


def _alternation(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """Return a pattern matching any of `phrases` as whole words, longest first."""
    longest_first = sorted(phrases, key=len, reverse=True)
    if not longest_first:
        return None
    return re.compile(
        r"(?<!\w)(" + "|".join(re.escape(p) for p in longest_first) + r")(?!\w)", re.I
    )


_NEVER = re.compile(r"(?!)")  # matches nothing: stands in for a rule the lexicon leaves out


# Names in the word index for the lexicon's rules; topic ids cannot start with a space.
_INFORMATIONAL, _HARM, _PRAISE = " informational", " harm", " praise"
# Each phrase is indexed on its own, so a rewrite need only look for the phrases a text holds.
_PHRASE = " phrase "


@dataclass(frozen=True, slots=True)
class _QuickLexicon:
    """The lexicon's patterns arranged to be cheap to test (see monitor/quickcheck.py): one
    index of every word-like rule and topic, and the informational cue with its literals."""

    words: WordStartIndex
    informational_cue: QuickPattern

    @classmethod
    def of(cls, lexicon: Lexicon) -> _QuickLexicon:
        entries = [(t.id, expression) for t in lexicon.topics for expression in t.patterns]
        for name, words in (
            (_INFORMATIONAL, lexicon.informational_terms),
            (_HARM, lexicon.harm_terms),
            (_PRAISE, lexicon.praise_terms),
        ):
            entries += [(name, re.escape(word)) for word in words]
        entries += [(_PHRASE + phrase, re.escape(phrase)) for phrase in lexicon.phrases]
        return cls(
            words=WordStartIndex(entries),
            informational_cue=QuickPattern.of(lexicon.informational_cue or _NEVER),
        )


@lru_cache(maxsize=1 << 10)
def _phrases_pattern(names: frozenset[str]) -> re.Pattern[str]:
    """Return the pattern that rewrites the indexed phrases `names` (a text holds few).

    It rewrites a text as the lexicon's whole phrase pattern does: a phrase the text does
    not hold cannot match anywhere in it, and the rest are tried longest first, as there.
    """
    pattern = _alternation(sorted(name.removeprefix(_PHRASE) for name in names))
    assert pattern is not None, "called with at least one phrase"
    return pattern


def _phrase_token_of(match: re.Match[str]) -> str:
    return Lexicon.phrase_token(match.group(0))


def label_for(compound: float) -> Label:
    """Return the label of a compound score."""
    if compound >= POSITIVE_AT:
        return "positive"
    if compound <= NEGATIVE_AT:
        return "negative"
    return "neutral"


class Scorer:
    """Score texts with VADER, corrected for breach-domain vocabulary, and tag their topics."""

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self.lexicon = lexicon or load_lexicon()
        self._vader = SentimentIntensityAnalyzer()
        self._vader.lexicon.update(self.lexicon.words)
        for phrase, valence in self.lexicon.phrases.items():
            self._vader.lexicon[Lexicon.phrase_token(phrase)] = valence
        self._valence = Vader(self._vader)  # VADER's own rules and answers, several times faster
        self._quick = _QuickLexicon.of(self.lexicon)
        self._topic_ids = tuple(t.id for t in self.lexicon.topics)
        self._memo: dict[tuple[str, float | None], tuple[float, Label, tuple[str, ...]]] = {}
        self._memo_chars = 0  # the length of the texts in _memo, together
        self.evaluations = 0  # texts score_mentions evaluated, not answered from memory

    def forget(self) -> None:
        """Forget the scores remembered so far (the next texts are scored afresh)."""
        self._memo.clear()
        self._memo_chars = 0

    @property
    def version(self) -> str:
        """Return the scorer's identity for provenance: VADER's version and the lexicon's."""
        return f"vaderSentiment-{package_version('vaderSentiment')}+{self.lexicon.version}"

    def compound(self, text: str) -> float:
        """Return the domain-corrected VADER compound score of `text`, -1..1."""
        return self._compound(text, self._quick.words.found(text))

    def _compound(self, text: str, found: set[str]) -> float:
        lexicon, quick = self.lexicon, self._quick
        # Each rewrite runs only where the index found its words, which is exactly where the
        # rule's own pattern would match; after a rewrite the text is looked at afresh.
        if (
            _INFORMATIONAL in found
            and lexicon.informational_words is not None
            and quick.informational_cue.search(text)
        ):
            text = lexicon.informational_words.sub(NEUTRAL_TOKEN, text)
            found = quick.words.found(text)
        if _HARM in found and _PRAISE in found and lexicon.praise_words is not None:
            text = lexicon.praise_words.sub(NEUTRAL_TOKEN, text)
            found = quick.words.found(text)
        phrases = [name for name in found if name.startswith(_PHRASE)]
        if phrases:
            text = _phrases_pattern(frozenset(phrases)).sub(_phrase_token_of, text)
        return self._valence.compound(text)

    def topics(self, text: str) -> tuple[str, ...]:
        """Return the ids of the topics `text` touches, in lexicon order."""
        return self._topics(self._quick.words.found(text))

    def _topics(self, found: set[str]) -> tuple[str, ...]:
        return tuple([t for t in self._topic_ids if t in found]) if found else ()

    def score(self, text: str, rating: float | None = None) -> Score:
        """Return compound, label and topics of `text`; a low star rating makes it negative."""
        return Score(*self._evaluate(text, rating))

    def _evaluate(self, text: str, rating: float | None) -> tuple[float, Label, tuple[str, ...]]:
        found = self._quick.words.found(text)
        compound = round(self._compound(text, found), 4)
        label = label_for(compound)
        if rating is not None and rating <= NEGATIVE_RATING_AT and label != "negative":
            label = "negative"
        return compound, label, self._topics(found)

    def score_mentions(self, mentions: Iterable[Mention]) -> list[Mention]:
        """Score mentions in place and return them; each distinct text is scored once.

        Scores are remembered across calls (up to MEMO_SIZE texts of MEMO_CHARS characters
        together), so a repost or a story cross-posted to several sources costs one scoring
        however far apart they arrive.
        """
        memo = self._memo
        scored = []
        for mention in mentions:
            key = (mention.full_text, mention.rating)
            result = memo.get(key)
            if result is None:
                self._memo_chars += len(key[0])
                if len(memo) >= MEMO_SIZE or self._memo_chars > MEMO_CHARS:
                    memo.clear()  # cheaper than LRU bookkeeping; repeats cluster in time
                    self._memo_chars = len(key[0])
                result = memo[key] = self._evaluate(*key)
                self.evaluations += 1
            mention.compound, mention.label, mention.topics = result
            scored.append(mention)
        return scored


@cache
def default_scorer() -> Scorer:
    """Return a shared scorer with the bundled lexicon (building one reads VADER's files)."""
    return Scorer(_bundled_lexicon())


def plain_vader_compound(texts: Iterable[str]) -> list[float]:
    """Return plain VADER's compound scores, the baseline the domain scorer is measured against."""
    vader = SentimentIntensityAnalyzer()
    return [float(vader.polarity_scores(t)["compound"]) for t in texts]


def topic_labels(lexicon: Lexicon | None = None) -> dict[str, str]:
    """Return topic id -> readable name, in lexicon order (the bundled lexicon's by default)."""
    return {t.id: t.label for t in (lexicon or _bundled_lexicon()).topics}


@cache
def _bundled_lexicon() -> Lexicon:
    # Read once: pages that only name topics need no scorer (building one loads VADER too).
    return load_lexicon()

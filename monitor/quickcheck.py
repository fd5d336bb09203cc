"""Skip regular expressions that cannot match, by the literal text every match must contain.

Most mentions contain none of a lexicon's hundreds of words, yet a pattern that starts with a
look-behind is tried at every position of every text. `literals_of` reads a compiled pattern
and works out strings such that any match contains at least one of them; a plain substring
test then rules the pattern out in a fraction of the time. The answer never changes: when
the literals cannot be worked out (or, for a case-insensitive pattern, the text is not
ASCII, where Unicode case folding is subtler than `str.lower`), the pattern is simply run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The parser the re module itself uses (Python 3.11+), to read a pattern's structure.
from re import _constants as _c  # type: ignore[attr-defined]
from re import _parser as _parse  # type: ignore[attr-defined]
from typing import Any


def _required(items: Any) -> frozenset[str] | None:
    """Return strings one of which every match of the parsed sequence `items` contains."""
    best: frozenset[str] | None = None
    run: list[str] = []

    def consider(candidate: frozenset[str] | None) -> None:
        nonlocal best
        if candidate is None or not candidate:
            return
        # Prefer the candidate whose shortest string is longest, then the one with fewer.
        if best is None or _strength(candidate) > _strength(best):
            best = candidate

    def close_run() -> None:
        if run:
            consider(frozenset({"".join(run)}))
            run.clear()

    for op, arg in items:
        if op is _c.LITERAL:
            run.append(chr(arg))
            continue
        close_run()
        if op is _c.SUBPATTERN:
            if not (arg[1] or arg[2]):  # a group with its own flags, e.g. (?i:...): no shortcut
                consider(_required(arg[-1]))
        elif op is _c.BRANCH:
            consider(_union(arg[1]))
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and arg[0] >= 1:
            consider(_required(arg[2]))
    close_run()
    return best


def _strength(literals: frozenset[str]) -> tuple[int, int]:
    return min(map(len, literals)), -len(literals)


def _union(branches: Any) -> frozenset[str] | None:
    found: set[str] = set()
    for branch in branches:
        literals = _required(branch)
        if literals is None:
            return None
        found |= literals
    return frozenset(found)


def literals_of(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Return strings one of which every match of `pattern` contains, or None if unknown.

    For a case-insensitive pattern they are lower-cased (to test against lower-cased ASCII).
    """
    if pattern.flags & (re.VERBOSE | re.LOCALE):
        return None
    try:
        parsed = _parse.parse(pattern.pattern, pattern.flags)
    except Exception:  # an unfamiliar construct: no shortcut, the pattern just runs
        return None
    return _literals_of_parsed(parsed, bool(pattern.flags & re.IGNORECASE))


def _literals_of_parsed(parsed: Any, ignore_case: bool) -> frozenset[str] | None:
    literals = _required(parsed)
    if literals is None:
        return None
    if ignore_case:
        if not all(s.isascii() for s in literals):
            return None
        literals = frozenset(s.lower() for s in literals)
    return literals


@dataclass(frozen=True, slots=True)
class QuickPattern:
    """A compiled pattern with its required literals: `search` as re's, but faster on the
    texts that cannot match."""

    pattern: re.Pattern[str]
    literals: frozenset[str] | None
    ignore_case: bool

    @classmethod
    def of(cls, pattern: re.Pattern[str]) -> QuickPattern:
        """Return `pattern` with its literals worked out once."""
        return cls(pattern, literals_of(pattern), bool(pattern.flags & re.IGNORECASE))

    def may_match(self, text: str, lowered: str | None = None) -> bool:
        """Return False only when `pattern` certainly cannot match `text`.

        `lowered` is `text.lower()` when the caller has it already (it is reused across
        patterns); it is only consulted for ASCII text.
        """
        literals = self.literals
        if literals is None:
            return True
        if self.ignore_case:
            if not text.isascii():
                return True
            haystack = text.lower() if lowered is None else lowered
        else:
            haystack = text
        return any(literal in haystack for literal in literals)

    def search(self, text: str, lowered: str | None = None) -> re.Match[str] | None:
        """Return `pattern.search(text)`."""
        return self.pattern.search(text) if self.may_match(text, lowered) else None


def _starts(items: Any) -> frozenset[str] | None:
    """Return the literal strings one of which every match of `items` starts with."""
    if not items:
        return None
    op, arg = items[0]
    if op is _c.LITERAL:
        run = []
        for code, value in items:
            if code is not _c.LITERAL:
                break
            run.append(chr(value))
        return frozenset({"".join(run)})
    if op is _c.SUBPATTERN:
        return None if arg[1] or arg[2] else _starts(arg[-1])
    if op is _c.BRANCH:
        found: set[str] = set()
        for branch in arg[1]:
            starts = _starts(branch)
            if starts is None:
                return None
            found |= starts
        return frozenset(found)
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and arg[0] >= 1:
        return _starts(arg[2])
    return None


KEY = 3  # how many leading characters of a word the index looks up
# ASCII word characters (re's \w) after lowering; every other ASCII character separates words.
_WORD_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_TO_WORDS = bytes(
    ord(chr(c).lower()) if chr(c).lower() in _WORD_CHARS else ord(" ") for c in range(128)
) + bytes(range(128, 256))  # only ASCII text is translated: the rest is never looked up


def _keys_for(start: str) -> list[str]:
    """Return the KEY-character word prefixes a word must have for a match to start there.

    `start` is a lowered literal every match begins with. Words are runs of word characters,
    so a start that leaves the word early ("on hold") needs the whole word ("on"), and a
    start shorter than KEY ("is") any word that begins with it ("is", "isn", ...).
    """
    key = start[:KEY]
    for at, char in enumerate(key):
        if char not in _WORD_CHARS:
            return [key[:at]]
    keys, longer = [key], [key]
    for _ in range(KEY - len(key)):
        longer = [prefix + char for prefix in longer for char in _WORD_CHARS]
        keys += longer
    return keys


class WordStartIndex:
    """Finds which of many case-insensitive, whole-word patterns occur in a text.

    Each pattern is filed under the first letters its matches must start with. A text's words
    are read once, and only the patterns filed under their first letters, whose required
    literal text also occurs, are searched for, instead of every pattern at every position.
    Patterns whose start cannot be worked out, and texts that are not ASCII, are searched in
    full, so the answer is always the one `re.search` gives.
    """

    def __init__(self, entries: list[tuple[str, str]]) -> None:
        """`entries` are (name, regular expression); a name may have several expressions."""
        self.names = list(dict.fromkeys(name for name, _ in entries))
        self._full: dict[str, list[re.Pattern[str]]] = {}
        # A word's first KEY letters (the whole word if shorter) -> what to try there: a
        # pattern's name, the literals one of which every match holds (lowered), the pattern.
        # Keys are bytes: an ASCII text's words are found by a bytes translation, which is
        # several times faster than the same translation of a str.
        self._by_key: dict[bytes, list[tuple[str, tuple[str, ...], re.Pattern[str]]]] = {}
        self._always: list[tuple[str, re.Pattern[str]]] = []
        for name, expression in entries:
            compiled = re.compile(rf"(?<!\w)(?:{expression})(?!\w)", re.IGNORECASE)
            self._full.setdefault(name, []).append(compiled)
            try:
                parsed = _parse.parse(expression, re.IGNORECASE)
            except Exception:  # unfamiliar syntax: searched in full
                self._always.append((name, compiled))
                continue
            starts = _starts(parsed)
            usable = starts is not None and all(
                s and s.isascii() and (s[0].isalnum() or s[0] == "_") for s in starts
            )
            if not usable or starts is None:
                self._always.append((name, compiled))
                continue
            # What every match of the expression holds, every match of `compiled` holds: the
            # look-arounds around it add no text.
            found = _literals_of_parsed(parsed, ignore_case=True)
            literals = tuple(sorted(found or {""}))  # "" is in every text
            for key in {k for start in starts for k in _keys_for(start.lower())}:
                self._by_key.setdefault(key.encode(), []).append((name, literals, compiled))

    def found(self, text: str) -> set[str]:
        """Return the names of the patterns that match somewhere in `text`."""
        if not text.isascii():
            return {
                n for n, patterns in self._full.items() if any(p.search(text) for p in patterns)
            }
        hits = {name for name, pattern in self._always if pattern.search(text)}
        prefixes = {word[:KEY] for word in text.encode().translate(_TO_WORDS).split()}
        lowered = text.lower()
        by_key = self._by_key
        for key in prefixes & by_key.keys():
            for name, literals, pattern in by_key[key]:
                if name in hits:
                    continue
                for literal in literals:
                    if literal in lowered:
                        # Every match starts at a word beginning with a key the pattern is
                        # filed under, so searching the whole text finds what matching there
                        # would.
                        if pattern.search(text):
                            hits.add(name)
                        break
        return hits

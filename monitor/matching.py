"""Does a text mention the brand? Pure functions, shared by every source.

Rules:
- Terms (the name and aliases) match on word boundaries, case-insensitively, except a term
  written in capitals only (an acronym such as "NWB") which must appear in capitals: "nwb"
  in running text is rarely the brand. The words of a term may be split by any whitespace
  ("Northwind\nBank" at a line break); full-width and other compatibility forms match too.
- A cashtag ("$HD") matches when not preceded by another "$" ("$GE$HD" names $HD; "$$HD"
  does not) and not followed by a letter or digit. An @handle matches whole, and so does
  the hashtag of a name of several words (#NorthwindBank for "Northwind Bank").
- Exclusions win: a text that names the brand only inside a look-alike ("Northwind
  Traders") does not match; one that also names the brand elsewhere does.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from monitor.config import BrandConfig
from monitor.quickcheck import QuickPattern


def _fold(text: str) -> str:
    # NFKC turns full-width and stylised letters into plain ones; keep length-preserving
    # for the common case so spans stay meaningful. ASCII is left as it is.
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def _term_pattern(term: str) -> re.Pattern[str]:
    # The words of a name may be split by any run of spaces, a line break included.
    escaped = r"\s+".join(re.escape(word) for word in term.split())
    if term.startswith("$"):
        return re.compile(rf"(?<!\$){escaped}(?![\w])", re.IGNORECASE)
    if term.startswith(("@", "#")):
        return re.compile(rf"(?<![\w@#]){escaped}(?![\w])", re.IGNORECASE)
    flags = 0 if term.isupper() and len(term) <= 5 else re.IGNORECASE
    # \b fails next to punctuation ("northwindbank.com"), so assert the neighbours instead;
    # a "$" or "@" before the term makes it part of a cashtag or handle, not the word.
    return re.compile(rf"(?<![\w$@]){escaped}(?![\w])", flags)


@dataclass(frozen=True)
class BrandMatcher:
    """Decides whether texts mention one brand."""

    brand: BrandConfig
    _terms: tuple[QuickPattern, ...] = field(init=False, repr=False, compare=False)
    _excludes: tuple[QuickPattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A name of several words is written as one hashtag on social media: #NorthwindBank.
        hashtags = ["#" + t.replace(" ", "") for t in self.brand.terms if " " in t.strip()]
        terms = sorted([*self.brand.terms, *hashtags], key=len, reverse=True)
        # QuickPattern skips a term at once when its letters are nowhere in the text.
        quick_terms = tuple(QuickPattern.of(_term_pattern(_fold(t))) for t in terms)
        object.__setattr__(self, "_terms", quick_terms)
        excludes = sorted(self.brand.exclude, key=len, reverse=True)
        quick_excludes = tuple(QuickPattern.of(_term_pattern(_fold(t))) for t in excludes)
        object.__setattr__(self, "_excludes", quick_excludes)

    def matches(self, text: str) -> bool:
        """Return True when `text` names the brand outside every exclusion."""
        folded, lowered = self._outside_exclusions(text)
        return any(quick.search(folded, lowered) for quick in self._terms)

    def matched_terms(self, text: str) -> list[str]:
        """Return the brand terms found in `text` after blanking out exclusions."""
        folded, lowered = self._outside_exclusions(text)
        found = []
        for quick in self._terms:
            hit = quick.search(folded, lowered)
            if hit:
                found.append(hit.group(0))
        return found

    def _outside_exclusions(self, text: str) -> tuple[str, str]:
        """Return `text` folded, with every exclusion blanked out, and its lower case."""
        folded = _fold(text)
        lowered = folded.lower()
        for quick in self._excludes:
            if quick.may_match(folded, lowered):
                folded = quick.pattern.sub(lambda m: " " * len(m.group(0)), folded)
                lowered = folded.lower()
        return folded, lowered


def search_query(brand: BrandConfig) -> str:
    """Return a web-search query for the brand: quoted terms OR'ed, exclusions negated.

    Handles and cashtags are left out: news search engines drop the sigil and match noise.
    """
    terms = [t for t in brand.terms if not t.startswith(("@", "$"))]
    query = " OR ".join(f'"{t}"' for t in terms)
    excluded = " ".join(f'-"{t}"' for t in brand.exclude)
    return f"{query} {excluded}".strip()

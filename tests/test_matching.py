"""Brand matching: word boundaries, case, cashtags, handles, and exclusions that win."""

from __future__ import annotations

import pytest

from monitor.config import BrandConfig
from monitor.matching import BrandMatcher, search_query

NORTHWIND = BrandMatcher(
    BrandConfig(
        name="Northwind Bank",
        aliases=("Northwind", "@NorthwindBank", "northwindbank.com", "$NWB", "NWB"),
        exclude=("Northwind Traders",),
    )
)


@pytest.mark.parametrize(
    "text",
    [
        "Northwind Bank confirms breach",
        "northwind bank confirms breach",
        "Is NORTHWIND down again?",
        "got an email from @NorthwindBank just now",
        "logged in at northwindbank.com, nothing",
        "$NWB down 8% premarket",
        "watchlist: $GE$NWB$F",  # run-together cashtags
        "NWB says it is investigating",
        "(Northwind)",
        "Northwind's CEO apologised",
        "so done with #NorthwindBank",  # the hashtag of the name of several words
    ],
)
def test_mentions_of_the_brand_match(text: str) -> None:
    assert NORTHWIND.matches(text)


@pytest.mark.parametrize(
    "text",
    [
        "Northwinds are strong tonight",  # a longer word
        "SuperNorthwind gaming chairs",
        "@NorthwindBankFan account posted",  # another handle
        "$$NWB movie night",  # spam pattern, not the ticker
        "$NWBX is a different ticker",
        "nwb is shorthand here for something else",  # acronym in lower case
        "Northwind Traders ships cheese",  # only the look-alike
        "NORTHWIND TRADERS RECALL",
        "#NorthwindTraders sale",  # the look-alike's hashtag: no term in it
        "#NorthwindBankrupt jokes",
        "",
    ],
)
def test_non_mentions_do_not_match(text: str) -> None:
    assert not NORTHWIND.matches(text)


def test_exclusion_does_not_hide_a_real_mention_elsewhere() -> None:
    assert NORTHWIND.matches("Northwind Traders is fine, but Northwind Bank lost my data")


def test_full_width_letters_are_folded() -> None:
    assert NORTHWIND.matches("Ｎｏｒｔｈｗｉｎｄ Bank")


def test_search_query_quotes_terms_and_negates_exclusions() -> None:
    query = search_query(
        BrandConfig("Northwind Bank", ("Northwind", "@NorthwindBank"), ("Northwind Traders",))
    )
    assert query == '"Northwind Bank" OR "Northwind" -"Northwind Traders"'

"""Properties that hold for any input: brand matching, plain text, dates and imports.

Hypothesis generates the inputs. Examples that once broke a property are pinned with
@example so they are tried on every run. Locally the search is random (a failure prints the
example to pin); in CI (CI or REPMON_NO_SKIP=1 set) it is derandomised, so a run there is
reproducible. No example database is written: pinned examples are the memory.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from monitor.collectors.importers import EARLIEST, _json_loads, parse_time
from monitor.config import BrandConfig, Settings
from monitor.matching import BrandMatcher, search_query
from monitor.models import content_hash, normalise_text, safe_http_url, utc
from monitor.pipeline import import_file
from monitor.store import Store, mentions, metadata
from monitor.text import html_to_text

# Settings per test rather than a global profile, which would also change the hypothesis
# tests of other modules run in the same session.
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")) or os.environ.get("REPMON_NO_SKIP") == "1",
    # The stores come from function-scoped fixtures on purpose: one per test, emptied before
    # each example (a new PostgreSQL database per example would be slow).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- strategies ---------------------------------------------------------------------------------

# Any text a str can hold and UTF-8 can carry (lone surrogates cannot be written to a file).
any_text = st.text(st.characters(exclude_categories=["Cs"]))

# Pieces of markup, entities, invisible characters and script URLs, glued together at random:
# a denser source of hostile fragments than uniformly random text.
FRAGMENTS = [
    "<", ">", "&", ";", "/", "!", "?", "-", "=", '"', "'", " ", "\n", "\t", "#", "x", "3",
    "a", "b", "p", "amp", "lt", "gt", "script", "img", "on", "error", "javascript:",
    "&amp;", "&lt;", "&gt;", "&#60;", "&#x3c;", "&#8203;", "&nbsp;", "<b>", "</b>", "<p>",
    "<br>", "<!--", "-->", "<![CDATA[", "<![", "]]>", "<script>", "</script>", "<style>", "<?",
    "<a x='", "<rt>", "<hr>", "<p/>", "</br>",
    "\x00", "\u200b", "\ufeff", "\u2028", "\x85", "\xa0", "e\u0301", "…", "AT&T",
]  # fmt: skip
hostile_text = st.one_of(any_text, st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))

WORD = st.from_regex(r"[a-z]{1,10}", fullmatch=True)
# A tag opener, a comment or declaration start, or an end tag: what a browser reads as markup.
MARKUP = re.compile(r"<[A-Za-z/!?]")


@st.composite
def html_documents(draw: st.DrawFn) -> tuple[str, list[str], list[str], list[str]]:
    """Return (html, words shown, words hidden in script-like elements, attribute markers).

    Attributes carry event handlers, script URLs and styles; each value holds a marker
    ("m0rk1") that must never reach the text. Words are lower-case letters only.
    """
    shown: list[str] = []
    hidden: list[str] = []
    markers: list[str] = []

    def attributes() -> str:
        parts = []
        for name in draw(
            st.lists(
                st.sampled_from(["onerror", "onclick", "onload", "href", "src", "style"]),
                max_size=3,
            )
        ):
            marker = f"m{len(markers)}rk{draw(st.integers(0, 9))}"
            markers.append(marker)
            value = {
                "href": f"javascript:alert('{marker}')",
                "src": f"data:text/html,<script>{marker}</script>",
                "style": f"background:url(javascript:{marker})",
            }.get(name, f"alert('{marker}')")
            parts.append(f' {name}="{html.escape(value, quote=True)}"')
        return "".join(parts)

    def node(depth: int, dropped: bool) -> str:
        kind = draw(st.sampled_from(["text", "element", "void", "dropped"] if depth else ["text"]))
        if kind == "text":
            words = draw(st.lists(WORD, min_size=1, max_size=3))
            (hidden if dropped else shown).extend(words)
            return " " + " ".join(words) + " "
        if kind == "void":
            return f"<{draw(st.sampled_from(['img', 'br', 'hr', 'input']))}{attributes()}>"
        if kind == "dropped":
            tag = draw(st.sampled_from(["script", "style", "iframe", "object", "template"]))
            if tag in ("script", "style"):  # raw text inside: no nested elements
                words = draw(st.lists(WORD, min_size=1, max_size=3))
                hidden.extend(words)
                return f"<{tag}{attributes()}> {' '.join(words)} </{tag}>"
            inner = "".join(node(depth - 1, True) for _ in range(draw(st.integers(1, 3))))
            return f"<{tag}{attributes()}>{inner}</{tag}>"
        tag = draw(st.sampled_from(["p", "div", "span", "b", "a", "em", "li", "td", "h1", "q"]))
        inner = "".join(node(depth - 1, dropped) for _ in range(draw(st.integers(1, 3))))
        return f"<{tag}{attributes()}>{inner}</{tag}>"

    document = "".join(node(3, False) for _ in range(draw(st.integers(1, 4))))
    return document, shown, hidden, markers


# -- text: html_to_text -------------------------------------------------------------------------


@PROPERTY
@given(hostile_text, st.booleans())
@example("&lt;\u200bscript&gt;alert(1)&lt;\u200b/script&gt;", False)  # was returned as a tag
@example("<\x00img src=x onerror=alert(1)>", False)  # likewise
@example("<!--<b>", False)  # left "<!--"
@example("x</", True)  # left "</"
@example("&amp;a<!--", False)  # gave "&a", then "a": not stable
@example("AT&T", False)  # gave "ATT"
@example("<![ ]]>", False)  # the parser refused it: html_to_text raised
@example("&amp;" * 3 + "lt;b" + "&amp;" * 3 + "gt;", False)
def test_text_is_stable_and_never_markup(value: str, paragraphs: bool) -> None:
    text = html_to_text(value, paragraphs=paragraphs)
    assert html_to_text(text, paragraphs=paragraphs) == text
    assert not MARKUP.search(text), text
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]", text)
    if not paragraphs:
        assert "\n" not in text and text == text.strip()


@PROPERTY
@given(html_documents(), st.integers(0, 2), st.booleans())
def test_markup_goes_and_its_words_stay(
    document: tuple[str, list[str], list[str], list[str]], escapes: int, paragraphs: bool
) -> None:
    source, shown, _, markers = document
    for _ in range(escapes):  # escaped markup (once, twice) is markup too
        source = html.escape(source, quote=False)
    text = html_to_text(source, paragraphs=paragraphs)
    words = text.split()
    assert words == shown  # in order, none lost, nothing from hidden elements or attributes
    assert not any(marker in text for marker in markers)
    assert not re.search(r"javascript|onerror|onclick|onload|<|>", text)


@PROPERTY
@given(st.lists(st.text(st.characters(categories=["L", "N"]), min_size=1), max_size=30))
def test_plain_words_come_back_as_they_were(words: list[str]) -> None:
    assert html_to_text(" ".join(words)) == " ".join(words)


@PROPERTY
@given(hostile_text, st.integers(1, 60), st.booleans())
def test_text_is_cut_to_the_limit(value: str, limit: int, paragraphs: bool) -> None:
    text = html_to_text(value, limit=limit, paragraphs=paragraphs)
    assert len(text) <= limit
    if len(html_to_text(value, paragraphs=paragraphs)) > limit:
        assert text.endswith("…")


def test_deep_and_never_closed_markup_is_read() -> None:
    # Each of these once took minutes: time quadratic in the depth, in the tags that never
    # close, or in the spaces after a "<". The depth is past what a recursive walk could take.
    assert html_to_text("<p>x" * 20_000, limit=10**6) == " ".join(["x"] * 20_000)
    assert html_to_text("<b><i>x" * 20_000, limit=10**6) == "x" * 20_000
    assert html_to_text("x <" + " " * 100_000 + "3") == "x < 3"
    for unclosed in ("<a b=c ", "<!--", "<![CDATA[", "<a x='>'", "<title><![", "<![ ]]>"):
        text = html_to_text(unclosed * 20_000 + "<b>end</b>", paragraphs=True)
        assert not MARKUP.search(text)


@PROPERTY
@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text())))
def test_what_is_not_text_gives_empty_text(value: object) -> None:
    assert html_to_text(value) == ""


# -- matching -------------------------------------------------------------------------------------

# A term of letters and digits (any script), maybe several words, starting and ending on a letter.
TERM_WORD = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8).filter(
    lambda w: unicodedata.category(w[0])[0] == "L" and unicodedata.category(w[-1])[0] == "L"
)
TERM = st.lists(TERM_WORD, min_size=1, max_size=3).map(" ".join)
ASCII_TERM = st.lists(st.from_regex(r"[A-Za-z]{2,8}", fullmatch=True), min_size=1, max_size=3).map(
    " ".join
)
# What may stand right next to a term: spaces and punctuation that are never part of a word,
# a handle or a cashtag.
BOUNDARY = st.sampled_from([" ", "\n", "\t", ".", ",", ";", "!", "?", "(", ")", "'", '"', "-", ":"])


def matcher(*terms: str, exclude: tuple[str, ...] = ()) -> BrandMatcher:
    return BrandMatcher(BrandConfig(name=terms[0], aliases=terms[1:], exclude=exclude))


def _acronym(term: str) -> bool:
    return term.isupper() and len(term) <= 5


@PROPERTY
@given(TERM, any_text, BOUNDARY, BOUNDARY, any_text)
@example("Northwind Bank", "", " ", " ", "")
def test_a_term_between_word_boundaries_matches(
    term: str, before: str, left: str, right: str, after: str
) -> None:
    text = f"{before}{left}{term}{right}{after}"
    assert matcher(term).matches(text), text


@PROPERTY
@given(ASCII_TERM, any_text, BOUNDARY, BOUNDARY, any_text)
def test_case_and_width_do_not_matter_except_for_acronyms(
    term: str, before: str, left: str, right: str, after: str
) -> None:
    brand = matcher(term)
    full_width = "".join(chr(ord(c) + 0xFEE0) if c != " " else c for c in term)
    variants = [term.upper(), full_width] + ([] if _acronym(term) else [term.title()])
    for variant in variants:
        assert brand.matches(f"{before}{left}{variant}{right}{after}"), variant
    lower = f"{before}{left}{term.lower()}{right}{after}"
    if _acronym(term):
        # An acronym in lower case is an ordinary word ("nwb"): the text matches only if it
        # would with any other word in its place.
        assert brand.matches(lower) == brand.matches(f"{before}{left}zz{right}{after}")
    else:
        assert brand.matches(lower)


@PROPERTY
@given(ASCII_TERM, st.sampled_from([" ", "  ", "\n", "\t", " \n ", "\xa0"]))
@example("Northwind Bank", "\n")  # a name broken across lines was missed
def test_the_words_of_a_term_may_be_split_by_any_space(term: str, space: str) -> None:
    assume(" " in term)
    assert matcher(term).matches(f"said {term.replace(' ', space)} today")


@PROPERTY
@given(st.from_regex(r"[A-Za-z]{2,8}", fullmatch=True), any_text, BOUNDARY, any_text)
def test_a_term_glued_to_a_word_does_not_match(
    term: str, before: str, right: str, after: str
) -> None:
    # The term is not elsewhere in the text...
    assume(not matcher(term).matches(f"{before} {right}{after}"))
    assume(term.lower() not in f"{before}{right}{after}".lower())
    # ...and here it ends a longer word: not the brand.
    assert not matcher(term).matches(f"{before} x{term}{right}{after}")


FILLER = st.text(st.characters(categories=["N", "P", "Zs"]), max_size=20)


@PROPERTY
@given(ASCII_TERM, WORD, st.booleans(), st.lists(FILLER, min_size=1, max_size=4))
@example("Northwind", "traders", True, ["", ""])
def test_exclusions_win_but_only_where_they_are(
    term: str, word: str, suffix: bool, fillers: list[str]
) -> None:
    excluded = f"{term} {word}" if suffix else f"{word} {term}"
    brand = matcher(term, exclude=(excluded,))
    # Fillers hold no letters, so the brand appears only inside the look-alike.
    only_lookalike = " ".join(f"{filler} {excluded}" for filler in fillers)
    assert not brand.matches(only_lookalike)
    assert brand.matches(f"{only_lookalike} {term}.")
    assert matcher(term).matches(only_lookalike)  # without the exclusion it would match


@PROPERTY
@given(any_text, st.lists(any_text, min_size=1, max_size=3), st.lists(any_text, max_size=2))
def test_an_exclusion_never_adds_a_match(text: str, terms: list[str], excludes: list[str]) -> None:
    terms = [t.strip() for t in terms]
    assume(all(terms))
    with_excludes = matcher(*terms, exclude=tuple(e for e in excludes if e.strip()))
    if with_excludes.matches(text):
        assert matcher(*terms).matches(text)


TICKER = st.from_regex(r"[A-Z]{1,5}", fullmatch=True)


@PROPERTY
@given(TICKER, any_text, st.sampled_from([" ", "\n", "(", ",", "$GE"]), BOUNDARY, any_text)
@example("HD", "", "$GE", " ", "")
def test_cashtag_rules(ticker: str, before: str, left: str, right: str, after: str) -> None:
    brand = matcher(f"${ticker}")
    rest = f"{before} {after}"
    assume(not brand.matches(rest))
    assert brand.matches(f"{before}{left}${ticker}{right}{after}")
    assert not brand.matches(f"{before}{left}$${ticker}{right}{after}")
    for glued in ("X", "x", "0", "_"):
        assert not brand.matches(f"{before}{left}${ticker}{glued}{right}{after}")


@PROPERTY
@given(
    st.lists(any_text.map(str.strip).filter(bool), min_size=1, max_size=4),
    st.lists(any_text.map(str.strip).filter(bool), max_size=3),
    hostile_text,
)
def test_matching_never_raises_and_folding_changes_nothing(
    terms: list[str], excludes: list[str], text: str
) -> None:
    brand = matcher(*terms, exclude=tuple(excludes))
    found = brand.matches(text)
    assert isinstance(found, bool)
    assert brand.matches(unicodedata.normalize("NFKC", text)) == found
    assert isinstance(search_query(brand.brand), str)


# -- dates --------------------------------------------------------------------------------------

OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
MOMENTS = st.datetimes(
    min_value=datetime(1995, 1, 2), max_value=datetime(9998, 12, 30), timezones=OFFSETS
)


@PROPERTY
@given(
    st.one_of(
        hostile_text,
        st.integers(),
        st.floats(),
        st.datetimes(timezones=st.none() | OFFSETS),
        st.none(),
        st.booleans(),
        st.from_regex(r"[0-9]{1,30}(\.[0-9]{0,6})?", fullmatch=True),
    )
)
@example("99999999999999999999")  # OSError from the platform's clock
@example(float("inf"))  # OverflowError
@example("0001-01-01T00:00:00+01:00")  # OverflowError converting to UTC
@example("²")  # a digit to str.isdigit(), not to float()
def test_a_date_is_utc_or_a_value_error(value: object) -> None:
    try:
        parsed = parse_time(value)
    except ValueError as error:
        message = str(error)
    else:
        assert parsed.tzinfo is UTC
        assert parsed >= EARLIEST
        return
    assert message  # a refusal says why


@PROPERTY
@given(MOMENTS)
def test_iso_dates_round_trip(moment: datetime) -> None:
    assert parse_time(moment.isoformat()) == moment
    assert parse_time(moment.astimezone(UTC).isoformat().replace("+00:00", "Z")) == moment
    naive = moment.replace(tzinfo=None)
    assert parse_time(naive.isoformat()) == naive.replace(tzinfo=UTC)
    assert parse_time(moment) == moment and parse_time(moment).tzinfo is UTC
    assert utc(moment) == moment and utc(naive) == naive.replace(tzinfo=UTC)


# Numbers above 1e11 are read as milliseconds (1e11 seconds is the year 5138).
@PROPERTY
@given(st.integers(int(EARLIEST.timestamp()), 10**11))
def test_unix_seconds_and_milliseconds_round_trip(seconds: int) -> None:
    expected = datetime.fromtimestamp(seconds, UTC)
    assert parse_time(seconds) == expected
    assert parse_time(str(seconds)) == expected
    assert parse_time(seconds * 1000) == expected
    assert parse_time(f"{seconds * 1000}") == expected


@PROPERTY
@given(MOMENTS, st.sampled_from(["%d %B", "%B %d", "%H:%M", "%B %Y", "%d/%m %H:%M", "%A"]))
@example(datetime(2024, 5, 14, tzinfo=UTC), "%d %B")  # was dated in the current year
def test_a_partial_date_is_refused_not_completed_from_today(moment: datetime, layout: str) -> None:
    with pytest.raises(ValueError):  # "lacks a year, month or day", or unreadable ("13/01")
        parse_time(moment.strftime(layout))


# -- imports ------------------------------------------------------------------------------------

ROW_TEXT = any_text.filter(lambda t: bool(t.strip()))
FORMULAS = st.sampled_from(["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1)", '=HYPERLINK("x")'])
URLS = st.one_of(
    st.just(""),
    st.builds(
        lambda path: f"https://example.org/{path}",
        st.from_regex(r"[a-z0-9/]{0,20}", fullmatch=True),
    ),
    st.sampled_from(["javascript:alert(1)", "data:text/html,x", " http://a.example/x ", "ftp://x"]),
    any_text,
)


def clean(value: str) -> str:
    """Return a text field as an import stores it."""
    return value.replace("\x00", "").strip()


@st.composite
def import_rows(draw: st.DrawFn) -> list[dict[str, str]]:
    """Return rows of a vendor export: unique ids, arbitrary text, formulas, odd URLs."""
    count = draw(st.integers(1, 6))
    ids = draw(
        st.lists(
            st.text(st.characters(categories=["L", "N", "P"]), min_size=1, max_size=30),
            min_size=count,
            max_size=count,
            unique_by=clean,
        ).filter(lambda found: all(clean(i) for i in found))
    )
    rows = []
    for external_id in ids:
        rows.append(
            {
                "external_id": external_id,
                "title": draw(st.one_of(any_text, FORMULAS)),
                "text": draw(st.one_of(ROW_TEXT, FORMULAS)),
                "author": draw(st.text(st.characters(exclude_categories=["Cs"]), max_size=80)),
                "url": draw(URLS),
                "published_at": draw(MOMENTS).isoformat(),
                "note": draw(any_text),  # not a field: kept in extra
            }
        )
    return rows


def write_rows(path: Path, rows: list[dict[str, str]], fmt: str) -> None:
    if fmt == "csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        lines = (json.dumps(row, ensure_ascii=False) for row in rows)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def stored(store: Store, source: str) -> dict[str, dict[str, Any]]:
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(mentions).where(mentions.c.source == source))
        return {row.external_id: row._asdict() for row in found}


def empty(store: Store) -> None:
    """Delete every row (the schema stays): each example starts from an empty store, or a
    story from an earlier example would make this one's rows sightings of it."""
    with store.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name != "meta":
                conn.execute(table.delete())


@PROPERTY
@given(import_rows(), st.sampled_from(["csv", "jsonl"]))
@example(
    [
        {
            "external_id": "a\x00b",
            "title": "=cmd|' /C calc'!A0",
            "text": 'quote " comma , new\nline \x00 nul 🙂',
            "author": " spaced ",
            "url": "javascript:alert(1)",
            "published_at": "2024-05-14T16:00:00+02:00",
            "note": "\r\n",
        }
    ],
    "csv",
)
def test_imported_rows_come_back_as_written(
    any_store: Store, rows: list[dict[str, str]], fmt: str
) -> None:
    empty(any_store)
    source = "vendor"
    settings_ = Settings(brand=BrandConfig(name="Northwind"))
    with TemporaryDirectory() as folder:
        path = Path(folder) / f"rows.{fmt}"
        write_rows(path, rows, fmt)
        report = import_file(any_store, settings_, path, fmt=fmt, source=source)
        assert (report.rows, report.failed, report.new) == (len(rows), 0, len(rows)), report
        again = import_file(any_store, settings_, path, fmt=fmt, source=source)
    assert (again.new, again.updated, again.unchanged) == (0, 0, len(rows))

    found = stored(any_store, source)
    assert set(found) == {clean(row["external_id"]) for row in rows}
    for row in rows:
        mention = found[clean(row["external_id"])]
        # The documented normalisation: text fields lose NUL characters (PostgreSQL cannot
        # store them) and surrounding spaces; only http(s) URLs are kept; extra is verbatim.
        assert mention["title"] == clean(row["title"])
        assert mention["text"] == clean(row["text"])
        assert mention["author"] == clean(row["author"])
        assert mention["url"] == safe_http_url(clean(row["url"]))
        assert mention["published_at"] == datetime.fromisoformat(row["published_at"])
        assert mention["extra"]["note"] == row["note"]


# -- duplicate detection ----------------------------------------------------------------------


def _normalised_the_long_way(text: str) -> str:
    """normalise_text as its docstring states it: NFKC, casefold, punctuation to spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", folded).split())


@PROPERTY
@given(st.text(alphabet=st.characters(max_codepoint=127)), st.text(max_size=8))
def test_ascii_texts_fold_as_any_other_text(ascii_text: str, other: str) -> None:
    # ASCII takes a shortcut through one translation table; stored hashes must not change.
    assert normalise_text(ascii_text) == _normalised_the_long_way(ascii_text)
    assert normalise_text(ascii_text + other) == _normalised_the_long_way(ascii_text + other)
    assert content_hash("", ascii_text) == content_hash(ascii_text, "")


# -- JSON lines -------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: wider than 64 bits too
    | st.floats()  # NaN and infinities too, which json.dumps writes and json.loads reads
    | st.text(st.characters()),  # lone surrogates too, written as \ud800 escapes
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
# Numbers as anyone may write them: long digits, long fractions, subnormal and huge exponents.
NUMBER_LITERALS = st.from_regex(
    r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,3})?", fullmatch=True
)


@PROPERTY
@given(JSON_VALUES, st.booleans())
@example({"id": 123456789012345678901234567890}, True)  # past 64 bits: orjson gives a float
@example({"n": float("nan")}, True)  # orjson refuses NaN
@example({"t": "\ud83d"}, True)  # half an emoji
def test_a_json_line_reads_as_json_loads_reads_it(value: Any, ascii_only: bool) -> None:
    # Lines are read by orjson where it agrees with json.loads; where it does not, json.loads
    # reads them. Either way a line must give exactly what json.loads gives.
    line = json.dumps(value, ensure_ascii=ascii_only)
    assert repr(_json_loads(line)) == repr(json.loads(line))


@PROPERTY
@given(NUMBER_LITERALS)
@example("18446744073709551616")  # 2**64
@example("-9223372036854775809")  # one below the smallest 64-bit integer
@example("2.4703282292062328e-324")  # half the smallest subnormal, rounded up
def test_a_json_number_reads_as_json_loads_reads_it(literal: str) -> None:
    line = f'{{"n": {literal}, "list": [{literal}]}}'
    assert repr(_json_loads(line)) == repr(json.loads(line))

"""Historical imports: backfills and vendor exports, read from a file into Mentions.

Formats:
- `twitter-jsonl`: Twitter API v1.1 tweet objects, one per line.
- `reddit-pushshift`: Pushshift submission exports as CSV (id, subreddit, author,
  timestamp or created_utc, title, optional selftext/score/num_comments/permalink).
- `csv`, `jsonl`, `xlsx`: any table; columns map to Mention fields by name, or by
  `--map column=field` / an `[imports.NAME]` profile's `map`.

Text fields (id, title, text, author, url) are kept as written apart from surrounding
whitespace and NUL characters, which are removed; other columns go into `extra` verbatim.

Parsing is pure (a record in, a Mention out, or a reason it cannot be one); reading the
file is the only I/O. A bad row is reported with its line number and never stops the rest.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pandas as pd
from dateutil import parser as date_parser

from monitor.models import Mention, content_hash, safe_http_url, utc

FIELDS = (
    "external_id", "text", "title", "author", "url", "published_at", "score", "comments",
    "rating", "followers",
)  # fmt: skip
_FIELD_SET = frozenset(FIELDS)
INTEGER_FIELDS = {"score", "comments", "followers"}
FORMATS = ("csv", "jsonl", "xlsx", "twitter-jsonl", "reddit-pushshift")
DEFAULT_SOURCE = {"twitter-jsonl": "twitter", "reddit-pushshift": "reddit"}
# Dates before this are almost certainly a unit mistake (milliseconds read as seconds, ...).
EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)

csv.field_size_limit(16 * 1024 * 1024)


class ImportFileError(Exception):
    """The file as a whole cannot be read; the message names it and says what to do."""


class Record(NamedTuple):
    """One raw record of the input and where it was (1-based line or row number)."""

    line: int
    data: Mapping[str, Any]


def parse_mapping(pairs: tuple[str, ...] | list[str] | Mapping[str, str]) -> dict[str, str]:
    """Return {column: field} from "column=field" strings (or a mapping); raise ValueError."""
    items = pairs.items() if isinstance(pairs, Mapping) else (p.split("=", 1) for p in pairs if p)
    mapping: dict[str, str] = {}
    for item in items:
        if len(item) != 2 or not item[0].strip():
            raise ValueError(f"--map {'='.join(item)!r} must look like column=field")
        column, target = item[0].strip(), item[1].strip()
        if target not in FIELDS:
            raise ValueError(
                f"--map {column}={target}: unknown field {target!r}; fields: {', '.join(FIELDS)}"
            )
        mapping[column] = target
    return mapping


def parse_time(value: Any) -> datetime:
    """Return an aware UTC datetime read from `value`; raise ValueError if it is not a date.

    Accepts unix seconds or milliseconds, ISO 8601, RFC 2822 and Twitter's
    "Wed Jan 01 11:00:54 +0000 2014". Naive times are taken as UTC. A text without a year,
    month or day ("14 May", "10:30") is refused rather than completed from today's date.
    """
    if value.__class__ is str and value[4:5] == "-":  # ISO 8601 as exports write it, first
        try:
            parsed = utc(datetime.fromisoformat(value))
        except (ValueError, OverflowError):
            pass  # spaces around it, out of range, ...: read below, where errors are worded
        else:
            if parsed >= EARLIEST:
                return parsed
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    is_numeric_text = isinstance(value, str) and value.strip().replace(".", "", 1).isdigit()
    try:
        if isinstance(value, datetime):
            parsed = value
        elif is_number or is_numeric_text:
            parsed = _date_from_number(value)
        elif isinstance(value, str) and value.strip():
            parsed = _date_from_text(value.strip())
        else:
            raise ValueError("no date")
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (OverflowError, OSError):  # beyond what a datetime or the platform's clock holds
        raise ValueError(f"the date {value!r} is out of range") from None
    if parsed < EARLIEST:
        raise ValueError(f"the date {value!r} is before 1995; check its unit")
    return parsed


def _date_from_number(value: str | float) -> datetime:
    """Return the time of unix seconds, or milliseconds when the number is that large."""
    try:
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
    except ValueError:  # "²" is a digit to str.isdigit() but not a number; NaN is no time
        raise ValueError(f"cannot read the date {value!r}") from None


# dateutil completes a partial date from a default; two different defaults show which
# parts the text itself gave.
_DEFAULTS = (datetime(2001, 1, 1), datetime(2002, 2, 2))


def _date_from_text(text: str) -> datetime:
    try:  # ISO 8601, the common case: a full date, read without dateutil's slower parser
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        first, second = (date_parser.parse(text, default=default) for default in _DEFAULTS)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"cannot read the date {text!r}") from exc
    if first.date() != second.date():
        raise ValueError(f"the date {text!r} lacks a year, month or day")
    return first


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    """Return data["a"]["b"] for "a.b" (None where missing)."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _int(value: Any) -> int | None:
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    return None if number != number else number


def _text(value: Any) -> str:
    if value.__class__ is str:  # the usual case, first
        return (value.replace("\x00", "") if "\x00" in value else value).strip()
    if value is None or (isinstance(value, float) and value != value):
        return ""
    # NUL first: PostgreSQL cannot store it, and " \x00 x" must trim like " x".
    return str(value).replace("\x00", "").strip()


def tweet_to_mention(data: Mapping[str, Any], source: str) -> Mention:
    """Return the Mention of a Twitter API v1.1 tweet object."""
    tweet_id = _text(data.get("id_str") or data.get("id"))
    if not tweet_id:
        raise ValueError("tweet has no id")
    text = _text(
        _lookup(data, "extended_tweet.full_text") or data.get("full_text") or data.get("text")
    )
    if not text:
        raise ValueError(f"tweet {tweet_id} has no text")
    handle = _text(_lookup(data, "user.screen_name"))
    retweeted = _lookup(data, "retweeted_status.id_str")
    extra: dict[str, Any] = {"lang": _text(data.get("lang"))}
    if retweeted:
        extra["retweet_of"] = retweeted
    return Mention(
        source=source,
        external_id=tweet_id,
        text=text,
        author=handle,
        url=f"https://twitter.com/{handle or 'i'}/status/{tweet_id}",
        published_at=parse_time(data.get("created_at") or data.get("timestamp_ms")),
        # Stream captures record 0 for both counts: only keep them when they say something.
        score=_int(data.get("favorite_count")) or None,
        comments=_int(data.get("reply_count")) or None,
        followers=_int(_lookup(data, "user.followers_count")),
        extra=extra,
    )


def pushshift_to_mention(data: Mapping[str, Any], source: str) -> Mention:
    """Return the Mention of a Pushshift submission row."""
    post_id = _text(data.get("id")).removeprefix("t3_")
    if not post_id:
        raise ValueError("row has no id")
    subreddit = _text(data.get("subreddit"))
    title = _text(data.get("title"))
    body = _text(data.get("selftext"))
    if body in ("[removed]", "[deleted]"):
        body = ""
    if not title and not body:
        raise ValueError(f"post {post_id} has neither title nor text")
    permalink = _text(data.get("permalink")) or f"/r/{subreddit}/comments/{post_id}/"
    return Mention(
        source=source,
        external_id=f"t3_{post_id}",
        title=title,
        text=body,
        author=_text(data.get("author")),
        url=safe_http_url("https://www.reddit.com" + permalink),
        published_at=parse_time(data.get("created_utc") or data.get("timestamp")),
        score=_int(data.get("score")),
        comments=_int(data.get("num_comments")),
        extra={"subreddit": subreddit, "kind": "submission"},
    )


def table_to_mention(data: Mapping[str, Any], source: str, mapping: Mapping[str, str]) -> Mention:
    """Return the Mention of a generic row: columns named like fields, or mapped to them."""
    values: Mapping[str, Any]
    if mapping:
        values = {}
        for column, value in data.items():
            target = mapping.get(column, column if column in _FIELD_SET else None)
            if target is not None and target not in values:
                values[target] = value
        for column, target in mapping.items():
            if "." in column and target not in values:  # JSON paths like user.name
                values[target] = _lookup(data, column)
    else:
        values = data  # every column that is a field is named like it
    title, text = _text(values.get("title")), _text(values.get("text"))
    if not title and not text:
        raise ValueError("no text (map a column to 'text', e.g. --map body=text)")
    external_id = _text(values.get("external_id"))
    if not external_id:
        # Without an id, the content and time identify the row, so re-importing is safe.
        external_id = f"row-{content_hash(title, text)}-{_text(values.get('published_at'))}"
    extra = {
        k: v for k, v in data.items() if k not in _FIELD_SET and k not in mapping and _jsonable(v)
    }
    return Mention(
        source=source,
        external_id=external_id,
        title=title,
        text=text,
        author=_text(values.get("author")),
        url=safe_http_url(_text(values.get("url"))),
        published_at=parse_time(values.get("published_at")),
        score=_int(values.get("score")),
        comments=_int(values.get("comments")),
        rating=_float(values.get("rating")),
        followers=_int(values.get("followers")),
        extra=extra,
    )


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and not (
        isinstance(value, float) and value != value
    )


# -- reading files ----------------------------------------------------------------------------


def _open_text(path: Path) -> io.TextIOBase:
    """Open `path` as text: UTF-8 (with or without BOM), else Windows-1252, so nothing is lost."""
    with path.open("rb") as handle:
        head = handle.read(1 << 20)
    try:
        head.decode("utf-8-sig")
        encoding = "utf-8-sig"
    except UnicodeDecodeError:
        encoding = "cp1252"
    return open(path, encoding=encoding, errors="replace", newline="")


JSON_LINES = ("jsonl", "twitter-jsonl")


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield the lines of a JSON-lines file that hold something, with their numbers."""
    if not path.is_file():
        raise ImportFileError(f"{path} does not exist or is not a file.")
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def parse_line(numbered: tuple[int, str]) -> Record:
    """Return the record of one line from read_lines, or one holding why it is unreadable."""
    number, line = numbered
    try:
        data = _json_loads(line)
    except json.JSONDecodeError as exc:
        return Record(number, {"__error__": f"not JSON ({exc.msg} at column {exc.colno})"})
    if not isinstance(data, dict):
        return Record(number, {"__error__": "a JSON line must hold an object"})
    if "\\u" in line:  # an escape may spell half a character (a tweet cut mid-emoji)
        data = _whole_characters(data)
    return Record(number, data)


def _json_loads(line: str) -> Any:
    """Return what json.loads returns for `line`, or raise what it raises.

    orjson reads a line several times faster, and gives the same values for everything
    json.loads reads, with three exceptions, where json.loads is asked instead: what orjson
    refuses (NaN and Infinity, lone surrogates, a byte-order mark) and integers too wide for
    64 bits, which orjson reads as floats where json.loads keeps them exact.
    """
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)
    return json.loads(line) if _holds_huge_float(data) else data


# Floats from here outwards may be integers orjson could not hold in 64 bits.
_HUGE = float(2**63)


def _holds_huge_float(value: Any) -> bool:
    kind = value.__class__
    if kind is float:
        return not -_HUGE < value < _HUGE
    if kind is not dict and kind is not list:
        return False
    for item in value.values() if kind is dict else value:
        kind = item.__class__
        if kind is float:
            if not -_HUGE < item < _HUGE:
                return True
        elif (kind is dict or kind is list) and _holds_huge_float(item):
            return True
    return False


_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _whole_characters(value: Any) -> Any:
    """Return `value` with every lone surrogate in its strings replaced by U+FFFD.

    JSON can escape half of a surrogate pair, and Python keeps it, but UTF-8 cannot encode
    it: no database would store the row, and its text hash could not be computed.
    """
    if isinstance(value, str):
        return value if value.isascii() else _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_whole_characters(k): _whole_characters(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_characters(item) for item in value]
    return value


def read_records(path: Path, fmt: str) -> Iterator[Record]:
    """Yield the raw records of `path`; unreadable lines come back as records holding the error."""
    if not path.is_file():
        raise ImportFileError(f"{path} does not exist or is not a file.")
    if fmt in JSON_LINES:
        yield from map(parse_line, read_lines(path))
    elif fmt in ("csv", "reddit-pushshift"):
        with _open_text(path) as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames:
                raise ImportFileError(
                    f"{path} has no header row; the first line must name the columns."
                )
            for row in reader:
                # Line numbers count the header as line 1, as a spreadsheet does.
                yield Record(reader.line_num, {k: v for k, v in row.items() if k is not None})
    elif fmt == "xlsx":
        try:
            frame = pd.read_excel(path, dtype=object)
        except (ValueError, OSError, KeyError) as exc:
            raise ImportFileError(f"{path} is not a readable .xlsx file: {exc}") from None
        for index, row in enumerate(frame.to_dict("records"), start=2):
            yield Record(index, {str(k): v for k, v in row.items()})
    else:
        raise ImportFileError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def converter(fmt: str, source: str, mapping: Mapping[str, str]) -> Callable[[Record], Mention]:
    """Return the function that turns one record of `fmt` into a Mention."""
    if fmt == "twitter-jsonl":
        return lambda record: tweet_to_mention(record.data, source)
    if fmt == "reddit-pushshift":
        return lambda record: pushshift_to_mention(record.data, source)
    return lambda record: table_to_mention(record.data, source, mapping)

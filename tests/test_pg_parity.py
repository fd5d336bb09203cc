"""SQLite and PostgreSQL give the same answers: one scenario, run on each, compared byte for byte.

The scenario is what a team does in its first week: a collection (the call `repmon collect`
makes, at a fixed time) from the recorded sources of tests/test_collect_end_to_end.py (Reddit, two news feeds, App Store reviews, and
Hacker News down), `repmon import` of the real Home Depot 2014 tweets and of a vendor CSV and
a forum JSONL full of awkward values (accents in both cases, emoji, line breaks, formulas, NUL
bytes, over-long authors and ids, counts past 2^31, every date spelling), the alert rules
checked through the weeks of the breach, then every `repmon export` as CSV and the event study
as JSON. Only the database URL differs between the two runs.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from monitor.alerts import engine
from monitor.cli import main
from monitor.collectors.http import HttpClient
from monitor.config import load_settings
from monitor.pipeline import collect
from monitor.store import Store
from tests.conftest import require, shared_path
from tests.replay import ReplayServer
from tests.test_collect_end_to_end import world as world  # the recorded sources and config

# Manifest keys that say when and where an export was made, not what it holds: the time it
# was written, the database URL, and the config hash (which covers the database URL).
# With --redact-authors, also the checksum: the pseudonyms come from a per-export random key.
RUN_SPECIFIC = {"generated_at", "database", "config_sha256"}
PSEUDONYM = re.compile(rb"author-[0-9a-f]{10}")
COLLECTED_AT = datetime(2024, 5, 20, 9, 0, tzinfo=UTC)
RESAMPLES = "200"  # the same code path as the default 2,000, a tenth of the time

# The event study's floats come from sums of compound scores: SQL SUMs over rows in whatever
# order each database reads them (SQLite 3.43+ also compensates its SUM; PostgreSQL does not),
# then pandas sums over rows whose order within an hour no ORDER BY fixes. Floating-point
# addition is not associative, so a mean may differ in its last bits; on this data none does
# today. 1e-12 relative is ~4,500 ulps: far above such round-off, far below any printed digit.
REL_TOL = 1e-12
ABS_TOL = 1e-12

EVENTS_AND_RULES = """
[[events]]
at = "2014-09-02T17:30:00Z"
label = "First reports of a card breach"
kind = "disclosure"

[[events]]
at = "2014-09-08T22:00:00Z"
label = "Breach confirmed"
kind = "response"

[[events]]
at = "2024-05-14T16:00:00Z"
label = "PRAW token leak reported"
kind = "other"

[alerts]
check_after_collect = false

[[alerts.rules]]
name = "Breach chatter"
type = "volume_spike"
topics = ["breach"]
window = "24h"
baseline = "30d"
z = 2.0
ratio = 2.0
min_mentions = 2
min_history = "30d"
cooldown = "24h"
severity = "high"

[[alerts.rules]]
name = "Negative surge (low volume)"
type = "negative_share"
window = "24h"
threshold = 0.6
min_mentions = 4
min_history = "7d"
cooldown = "24h"
severity = "high"

[[alerts.rules]]
name = "Viral negative post"
type = "viral_negative"
window = "48h"
min_engagement = 50
cooldown = "12h"
severity = "medium"
"""

# Vendor rows that stress what databases disagree about: text, sizes, numbers and times.
LONG_AUTHOR = "Chief Correspondent of the Weekly Payments & Cards Review, " * 6
LONG_ID = "vendor-export/2014/09/" + "x" * 300
VENDOR_ROWS: list[dict[str, str]] = [
    {
        "id": "v1",
        "date": "2014-09-03T10:15:30.123456+02:00",
        "headline": "ÉCHEC du paiement par carte chez Home Depot",
        "body": "Les données de cartes ont fuité ; « inacceptable » dit un client. 😡",
        "by": "Zoë Ångström",
        "link": "https://presse.example/hd?utm_source=x",
        "likes": "12",
        "replies": "3",
        "stars": "",
        "reach": "1500",
        "channel": "web",
    },
    {
        "id": "v2",
        "date": "1409760000000",  # unix milliseconds
        "headline": "",
        "body": '=HYPERLINK("http://evil.example") Home Depot breach\r\nsecond line, "quoted"',
        "by": "@trader_joe",
        "link": "javascript:alert(1)",
        "likes": "-4",
        "replies": "0",
        "stars": "1",
        "reach": "",
        "channel": "",
    },
    {
        "id": "v3",
        "date": "Thu, 04 Sep 2014 23:59:59 -0700",  # RFC 2822, the next UTC day
        "headline": "straße Home Depot Kartendaten gestohlen",
        "body": "Null byte here:\x00 and after it. Home Depot is a mess",
        "by": LONG_AUTHOR,
        "link": "https://news.example/a b",
        "likes": "3000000000",  # past a 32-bit integer
        "replies": "2",
        "stars": "4.5",
        "reach": "5000000000",
        "channel": "app\x00beta",
    },
    {
        "id": LONG_ID,
        "date": "2014-09-05 08:00",  # naive: taken as UTC
        "headline": "Home Depot: ماذا حدث؟",
        "body": "עברית and العربية in one line, with a zero\u200bwidth space",
        "by": "",
        "link": "",
        "likes": "",
        "replies": "",
        "stars": "2",
        "reach": "7",
        "channel": "fax",
    },
    {
        "id": "v5",
        "date": "2014-08-20T12:00:00Z",
        "headline": "Good service at Home Depot today",
        "body": "Quick checkout, friendly staff",
        "by": "happy",
        "link": "http://store.example/",
        "likes": "1",
        "replies": "",
        "stars": "5",
        "reach": "10",
        "channel": "store",
    },
    {
        "id": "v6",
        "date": "not a date",
        "headline": "Broken row",
        "body": "reported by line, never stored",
        "by": "",
        "link": "",
        "likes": "",
        "replies": "",
        "stars": "",
        "reach": "",
        "channel": "",
    },
]
VENDOR_MAP = [
    "id=external_id",
    "date=published_at",
    "headline=title",
    "body=text",
    "by=author",
    "link=url",
    "likes=score",
    "replies=comments",
    "stars=rating",
    "reach=followers",
]
FORUM_ROWS: list[dict[str, Any]] = [
    {
        "external_id": "f1",
        "published_at": 1409702400,  # unix seconds: 2014-09-03 00:00 UTC
        "text": "My card was used in Ohio after shopping at Home Depot. Furious.",
        "user": {"name": "Ohio shopper"},
        "score": 40,
        "comments": 25,
    },
    {
        "external_id": "f2",
        "published_at": "2014-09-09T18:30:00-04:00",
        "title": "Thread: the breach, confirmed",
        "text": "Home Depot confirmed it. Change your PIN. %_ wildcard characters %_",
        "user": {"name": "mod"},
        "score": 7,
        "comments": 1,
    },
    {
        # The same words as a vendor row: another source's copy of one story (a sighting).
        "external_id": "f3",
        "published_at": "2014-09-03T08:15:30Z",
        "title": "ÉCHEC du paiement par carte chez Home Depot",
        "text": "Les données de cartes ont fuité ; « inacceptable » dit un client. 😡",
        "user": {"name": "repost"},
    },
]
FORUM_MAP = ["user.name=author"]
# Sorted last by code point (SQLite), first by a language's collation: where a database's
# ORDER BY leaks into a list of sources, the two disagree.
FORUM_SOURCE = "Écho forum"

# Filtered mention exports: search is case-insensitive (also for accented capitals), and
# % and _ in a search are literal characters, on both databases.
MENTION_FILTERS: dict[str, list[str]] = {
    "all": [],
    "search-accented-lowercase": ["--search", "échec"],
    "search-sharp-s": ["--search", "STRAßE"],
    "search-wildcards-literal": ["--search", "%_"],
    "negative-reddit-or-vendor": [
        "--label",
        "negative",
        "--source",
        "reddit",
        "--source",
        "vendor",
    ],
    "breach-topic-in-september": [
        "--topic",
        "breach",
        "--since",
        "2014-09-01",
        "--until",
        "2014-09-30",
    ],
    "to-the-second": ["--since", "2014-09-03T08:15:30Z", "--until", "2014-09-03T10:15:31Z"],
}


@dataclass
class Outcome:
    """What one database gave back: files by name, and outputs of commands that print."""

    files: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    printed: dict[str, str] = field(default_factory=dict)
    study: Any = None
    replay: Any = None


def _write_inputs(folder: Path) -> tuple[Path, Path]:
    vendor = folder / "vendor.csv"
    with vendor.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(VENDOR_ROWS[0]))
        writer.writeheader()
        writer.writerows(VENDOR_ROWS)
    forum = folder / "forum.jsonl"
    forum.write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in FORUM_ROWS),
        encoding="utf-8",
    )
    return vendor, forum


def _run(database: str, *args: str) -> Result:
    result = CliRunner().invoke(main, ["--database", database, *args])
    assert result.exit_code == 0, f"repmon {' '.join(args)} on {database}:\n{result.output}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _scenario(database: str, folder: Path, inputs: tuple[Path, Path]) -> Outcome:
    """Run the whole scenario against `database`; return everything it produced."""
    folder.mkdir()
    vendor, forum = inputs
    outcome = Outcome()
    settings = load_settings(Path("monitor.toml"), database_url=database)
    store = Store(database)
    # Retries of the Hacker News outage go out without waiting between them.
    http = HttpClient(backoff=0.0)
    try:
        # `repmon collect`'s own call, at a fixed time: undated reviews are dated when seen.
        runs = collect(store, settings, http=http, now=COLLECTED_AT)
    finally:
        http.close()
        store.close()
    outcome.printed["collect"] = "\n".join(
        f"{r.source} {r.status} {r.new} {r.updated} {r.unchanged} {r.duplicates} {r.skipped} "
        f"{r.error}"
        for r in runs
    )
    tweets = shared_path("real", "homedepot-breach-2014-tweets", "HD_raw_tweets_2014-2015.jsonl")
    imports = [
        ("tweets", [str(tweets), "--format", "twitter-jsonl"]),
        ("vendor", [str(vendor), "--format", "csv", "--source", "vendor", *_maps(VENDOR_MAP)]),
        ("forum", [str(forum), "--format", "jsonl", "--source", FORUM_SOURCE, *_maps(FORUM_MAP)]),
        # Importing the same file again finds every row unchanged.
        ("vendor-again", [str(vendor), "--source", "vendor", *_maps(VENDOR_MAP)]),
    ]
    for name, args in imports:
        outcome.printed[f"import {name}"] = _run(database, "import", *args).output

    # The rules checked as live, twice a day through the breach's first weeks: what fires
    # is stored (with its evidence) the same way `repmon alerts check` stores it.
    store = Store(database)
    try:
        moment = datetime(2014, 8, 26, tzinfo=UTC)
        while moment < datetime(2014, 9, 22, tzinfo=UTC):
            engine.check(store, settings, now=moment)
            moment += timedelta(hours=12)
    finally:
        store.close()
    replayed = _run(
        database,
        *("alerts", "replay", "--since", "2014-08-25", "--until", "2014-09-21", "--step", "3h"),
        "--json",
    )
    outcome.replay = json.loads(replayed.output)

    exports: dict[str, list[str]] = {
        **{f"mentions-{key}": ["mentions", *args] for key, args in MENTION_FILTERS.items()},
        "daily": ["daily"],
        "daily-vendor-september": ["daily", "--source", "vendor", "--since", "2014-09-01"],
        "event-study": ["event-study", "--resamples", RESAMPLES],
        "alerts": ["alerts"],
        "mentions-redacted-bom": ["mentions", "--redact-authors", "--bom"],
    }
    for name, args in exports.items():
        out = folder / f"{name}.csv"
        _run(database, "export", args[0], "--out", str(out), *args[1:])
        written = out.read_bytes()
        outcome.files[name] = _same_pseudonyms(written) if "--redact-authors" in args else written
        manifest = json.loads((folder / f"{name}.manifest.json").read_text(encoding="utf-8"))
        ignored = RUN_SPECIFIC | ({"sha256"} if "--redact-authors" in args else set())
        outcome.manifests[name] = {k: v for k, v in manifest.items() if k not in ignored}
    study = _run(database, "report", "event-study", "--json", "--resamples", RESAMPLES)
    outcome.study = json.loads(study.output)
    return outcome


def _maps(pairs: list[str]) -> list[str]:
    return [part for pair in pairs for part in ("--map", pair)]


def _same_pseudonyms(export: bytes) -> bytes:
    """Return a redacted export with its pseudonyms numbered in order of first appearance.

    Each export draws a new secret key, so the pseudonyms themselves differ from run to run;
    which cells share one must not.
    """
    seen: dict[bytes, bytes] = {}
    return PSEUDONYM.sub(lambda m: seen.setdefault(m.group(0), b"author-%d" % len(seen)), export)


def _float_differences(a: Any, b: Any, path: str = "$") -> Iterator[str]:
    """Yield where two JSON values differ beyond float round-off (REL_TOL, ABS_TOL)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            yield f"{path}: keys {sorted(a.keys() ^ b.keys())} in only one"
        for key in a.keys() & b.keys():
            yield from _float_differences(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield f"{path}: {len(a)} items against {len(b)}"
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            yield from _float_differences(x, y, f"{path}[{index}]")
    elif isinstance(a, float) and isinstance(b, float | int) and not isinstance(b, bool):
        if not math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL):
            yield f"{path}: {a!r} != {b!r}"
    elif isinstance(b, float) and isinstance(a, int) and not isinstance(a, bool):
        yield from _float_differences(b, a, path)
    elif a != b:
        yield f"{path}: {a!r} != {b!r}"


def _first_difference(a: bytes, b: bytes) -> str:
    lines_a, lines_b = a.decode("utf-8-sig").splitlines(), b.decode("utf-8-sig").splitlines()
    for number, (x, y) in enumerate(zip(lines_a, lines_b, strict=False), start=1):
        if x != y:
            return f"line {number}:\n  sqlite:   {x[:300]}\n  postgres: {y[:300]}"
    return f"{len(lines_a)} lines against {len(lines_b)}"


@pytest.fixture
def scenario_config(world: ReplayServer, tmp_path: Path) -> Path:
    """The recorded sources and their monitor.toml, plus events and alert rules."""
    config = tmp_path / "monitor.toml"
    with config.open("a", encoding="utf-8") as handle:
        handle.write(EVENTS_AND_RULES)
    return config


@pytest.fixture(params=["server-collation", "icu-en-US-collation"])
def postgres_database(request: pytest.FixtureRequest, postgres_url: str) -> Iterator[str]:
    """Return a fresh PostgreSQL database: as the server makes one, or sorting like en_US.

    Most servers are set up with a language's collation (en_US.UTF-8), where text sorts
    "Émile" before "forum" before "Forum"; the test cluster's C.UTF-8 sorts as SQLite does.
    ICU gives the linguistic order whatever locales the machine has installed.
    """
    if request.param == "server-collation":
        yield postgres_url
        return
    base, _, name = postgres_url.rpartition("/")
    icu = f"{name}_icu"
    admin = sa.create_engine(
        postgres_url.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    f"CREATE DATABASE \"{icu}\" LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
                    "TEMPLATE template0"
                )
            )
    except sa.exc.DBAPIError as problem:
        admin.dispose()
        require(False, f"PostgreSQL cannot create an ICU-collated database: {problem.orig}")
    try:
        yield f"{base}/{icu}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{icu}" WITH (FORCE)'))
        admin.dispose()


def test_sqlite_and_postgresql_give_identical_exports_and_studies(
    world: ReplayServer, scenario_config: Path, tmp_path: Path, postgres_database: str
) -> None:
    inputs = _write_inputs(tmp_path)
    sqlite_url = f"sqlite:///{tmp_path / 'parity.db'}"
    lite = _scenario(sqlite_url, tmp_path / "sqlite", inputs)
    pg = _scenario(postgres_database, tmp_path / "postgres", inputs)

    # Not vacuous: every source and import landed, alerts fired, the awkward rows are there.
    everything = lite.files["mentions-all"].decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(everything, newline="")))
    assert {r["source"] for r in rows} == {
        "reddit",
        "news",
        "reviews",
        "twitter",
        "vendor",
        FORUM_SOURCE,
    }
    assert len(rows) > 1000
    assert "Zoë Ångström" in everything and "Null byte here:" in everything
    assert "5 new" in lite.printed["import vendor"] and "1 failed" in lite.printed["import vendor"]
    assert "5 unchanged" in lite.printed["import vendor-again"]
    # Each search finds its one row; the copy of the vendor story in the forum is a sighting.
    for search in ("accented-lowercase", "sharp-s", "wildcards-literal"):
        found = csv.DictReader(io.StringIO(lite.files[f"mentions-search-{search}"].decode()))
        assert len(list(found)) == 1, search
    assert ",2147483647," in everything  # 3,000,000,000 likes, kept as INTEGER's largest
    assert len(list(csv.reader(lite.files["alerts"].decode().splitlines()))) > 1
    assert lite.replay, "the rules never fire in the replay: the comparison would be empty"
    assert len(lite.study["studies"]) == 3

    problems: list[str] = []
    for name in lite.files:
        if lite.files[name] != pg.files[name]:
            problems.append(f"export {name}: {_first_difference(lite.files[name], pg.files[name])}")
        if lite.manifests[name] != pg.manifests[name]:
            problems.append(f"manifest {name}: {lite.manifests[name]} != {pg.manifests[name]}")
    for name in lite.printed:
        if lite.printed[name] != pg.printed[name]:
            problems.append(f"output of {name}: {lite.printed[name]!r} != {pg.printed[name]!r}")
    problems += [f"alerts replay {d}" for d in _float_differences(lite.replay, pg.replay)]
    problems += [f"event study {d}" for d in _float_differences(lite.study, pg.study)]
    assert not problems, "SQLite and PostgreSQL disagree:\n" + "\n".join(problems[:40])

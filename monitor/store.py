"""Storage: SQLAlchemy Core over SQLite (default) or PostgreSQL (by URL).

The store owns the schema and creates or upgrades it on open. Every timestamp goes in
and comes out as timezone-aware UTC. Aggregates for charts are computed in the
database, so a chart never needs every row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property, lru_cache
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.models import Alert, CollectionRun, Event, Mention, MentionQuery, utcnow

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
ALL_MENTIONS = MentionQuery()
# Mentions looked up and written together, at most (a batch of an import is one part).
UPSERT_BATCH = 10_000
# Rows written by one statement, at most (the database's limit on parameters may lower it);
# a power of two, as are the smaller chunks that write the rest (see Store._run_converted).
WRITE_CHUNK = 256


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A datetime stored as UTC and always returned timezone-aware.

    SQLite has no time zones, so values are stored naive-in-UTC there; PostgreSQL
    gets a real `timestamptz`.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                f"naive datetime {value!r} reached the store; attach a time zone first"
            )
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

mentions = sa.Table(
    "mentions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("external_id", sa.String(256), nullable=False),
    sa.Column("url", sa.Text, nullable=False, default=""),
    sa.Column("canonical_url", sa.Text, nullable=False, default=""),
    sa.Column("author", sa.String(256), nullable=False, default=""),
    sa.Column("title", sa.Text, nullable=False, default=""),
    sa.Column("text", sa.Text, nullable=False, default=""),
    sa.Column("published_at", UTCDateTime, nullable=False),
    # The UTC calendar day of published_at: filtered daily counts (those the rollups cannot
    # answer) group on it, the same way on both databases.
    sa.Column("published_day", sa.Date, nullable=False),
    sa.Column("collected_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("score", sa.Integer),
    sa.Column("comments", sa.Integer),
    sa.Column("rating", sa.Float),
    sa.Column("followers", sa.Integer),
    sa.Column("engagement", sa.Integer, nullable=False, default=0),
    sa.Column("compound", sa.Float, nullable=False),
    sa.Column("label", sa.String(8), nullable=False),
    # Topic ids wrapped in commas (",breach,cards,") so one LIKE finds a topic on any database.
    sa.Column("topics", sa.Text, nullable=False, default=""),
    sa.Column("content_hash", sa.String(32), nullable=False),
    sa.Column("extra", sa.JSON, nullable=False, default=dict),
    sa.UniqueConstraint("source", "external_id", name="uq_mentions_source_external_id"),
    # Covers what alert rules read (Store.rule_frame), so a check reads only this index, not
    # the rows with their texts; it also serves every time-range filter.
    sa.Index(
        "ix_mentions_published_cover",
        "published_at",
        "source",
        "label",
        "compound",
        "engagement",
        "topics",
        "id",  # PostgreSQL indexes hold no row id of their own; SQLite's always do
    ),
    sa.Index("ix_mentions_label_engagement", "label", "engagement"),
    sa.Index("ix_mentions_content_hash", "content_hash"),
    # Only stories with a canonical URL (news) are looked up by it: the others, most
    # mentions, are left out of the index and cost nothing to insert.
    sa.Index(
        "ix_mentions_story_url",
        "canonical_url",
        sqlite_where=sa.text("canonical_url != ''"),
        postgresql_where=sa.text("canonical_url != ''"),
    ),
)

# The same story seen again: from another feed (same canonical URL) or another source
# (same normalised text). It is one mention; each further arrival is a sighting.
sightings = sa.Table(
    "sightings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "mention_id", sa.Integer, sa.ForeignKey("mentions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("external_id", sa.String(256), nullable=False),
    sa.Column("url", sa.Text, nullable=False, default=""),
    sa.Column("seen_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("source", "external_id", name="uq_sightings_source_external_id"),
    sa.Index("ix_sightings_mention", "mention_id"),
)

# Where each source's last successful run got to (since-ids, since-times, ETags ...).
cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("label", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.UniqueConstraint("at", "label", name="uq_events_at_label"),
)

collection_runs = sa.Table(
    "collection_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("new", sa.Integer, nullable=False, default=0),
    sa.Column("updated", sa.Integer, nullable=False, default=0),
    sa.Column("unchanged", sa.Integer, nullable=False, default=0),
    sa.Column("duplicates", sa.Integer, nullable=False, default=0),
    sa.Column("skipped", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Index("ix_collection_runs_source_started", "source", "started_at"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False, default=""),
    sa.Column("brand", sa.String(256), nullable=False),
    sa.Column("fired_at", UTCDateTime, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("threshold", sa.Float),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("evidence", sa.JSON, nullable=False, default=list),
    sa.Column("acknowledged_at", UTCDateTime),
    sa.Column("ack_note", sa.Text, nullable=False, default=""),
    sa.Index("ix_alerts_rule_brand_fired", "rule", "brand", "fired_at"),
)

# Totals per UTC hour, source and label, kept in the same transaction as the mentions they
# count: charts, KPIs and alert rules read a few thousand of these instead of every mention.
rollup_hours = sa.Table(
    "rollup_hours",
    metadata,
    sa.Column("hour", UTCDateTime, primary_key=True),
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("label", sa.String(8), primary_key=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("mentions", sa.Integer, nullable=False),
    sa.Column("compound_sum", sa.Float, nullable=False),
    sa.Column("rating_sum", sa.Float, nullable=False),
    sa.Column("ratings", sa.Integer, nullable=False),
    sa.Index("ix_rollup_hours_day", "day", "source", "label"),
)

# Mentions per UTC hour, source, label and topic, for "what are they angry about".
rollup_topics = sa.Table(
    "rollup_topics",
    metadata,
    sa.Column("hour", UTCDateTime, primary_key=True),
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("label", sa.String(8), primary_key=True),
    sa.Column("topic", sa.String(64), primary_key=True),
    sa.Column("mentions", sa.Integer, nullable=False),
)

ROLLUP_HOUR_KEYS = ("hour", "source", "label")
INTERRUPTED = (
    "No finish was recorded: the process stopped (killed or crashed) during the run. What it "
    "stored is kept whole, and the next run continues from the last saved cursor."
)
# What alert rules read of a mention (Store.rule_frame).
RULE_COLUMNS = ("id", "published_at", "source", "label", "compound", "engagement", "topics")
ROLLUP_TOPIC_KEYS = ("hour", "source", "label", "topic")

# Columns an upsert may change on a mention already stored. published_at and collected_at
# keep their first values: a post does not move in time when its score grows.
MUTABLE_COLUMNS = (
    "url",
    "canonical_url",
    "author",
    "title",
    "text",
    "score",
    "comments",
    "rating",
    "followers",
    "engagement",
    "compound",
    "label",
    "topics",
    "content_hash",
    "extra",
)

# What an upsert writes to mentions, in the order of a prepared row's values (Store.prepare).
WRITE_COLUMNS = tuple(c.name for c in mentions.columns if c.name != "id")
(_SOURCE, _EXTERNAL_ID, _URL, _CANONICAL_URL, _TITLE, _TEXT, _PUBLISHED_AT, _COLLECTED_AT) = (
    WRITE_COLUMNS.index(name)
    for name in (
        "source",
        "external_id",
        "url",
        "canonical_url",
        "title",
        "text",
        "published_at",
        "collected_at",
    )
)
_CONTENT_HASH = WRITE_COLUMNS.index("content_hash")
# A mention's values for the driver, in WRITE_COLUMNS order.
PreparedRow = tuple[Any, ...]
# What the rollups count of a mention, besides its hour and source.
ROLLUP_VALUES = ("label", "compound", "rating", "topics")
SIGHTING_COLUMNS = ("mention_id", "source", "external_id", "url", "seen_at")

# Columns shown and exported for a mention, in order.
MENTION_COLUMNS = (
    "published_at",
    "source",
    "label",
    "compound",
    "topics",
    "title",
    "text",
    "author",
    "url",
    "score",
    "comments",
    "rating",
    "followers",
    "engagement",
    "external_id",
)


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What an upsert did with each mention it was given."""

    new: int = 0  # stored as a new mention
    updated: int = 0  # already stored; changed in place (engagement grew, text edited)
    unchanged: int = 0  # already stored, or already a sighting, exactly as given
    duplicates: int = 0  # a story already stored from elsewhere: kept as a sighting

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            self.new + other.new,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.duplicates + other.duplicates,
        )


def make_engine(url: str) -> Engine:
    """Return an engine for `url`; SQLite files get WAL, a busy timeout and their folder."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if database and database != ":memory:":
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # 32 MB of page cache (SQLite's default is 2 MB), taken only as pages are read:
            # an import's index pages stay in it instead of being read back for every batch.
            cursor.execute("PRAGMA cache_size=-32768")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            # SQLite's lower() folds ASCII only; PostgreSQL's folds every letter. Searches
            # (lower(x) LIKE lower(y)) must find "ÉCHEC" for "échec" on both.
            dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        # psycopg 3 is the driver we ship with the `postgres` extra.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return sa.create_engine(url, pool_pre_ping=True)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


# libpq also takes a password from the URL's query string (postgresql://u@h/db?password=...).
SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})


def redact_url(url: str) -> str:
    """Return a database URL safe to print: every password (user info or query) replaced by ***."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return "<unparseable database URL>"
    hidden = {key: "***" for key in parsed.query if key.lower() in SECRET_QUERY_KEYS}
    shown = parsed.update_query_dict(hidden).render_as_string(hide_password=True)
    return shown.replace("%2A%2A%2A", "***")


def topics_to_db(topics: Sequence[str]) -> str:
    """Return topic ids in the stored form, ",a,b,"; empty string for none."""
    return f",{','.join(sorted(topics))}," if topics else ""


@lru_cache(maxsize=1 << 12)  # asked for every row written; few combinations of topics occur
def topics_from_db(value: str) -> tuple[str, ...]:
    """Return the topic ids of a stored topics value."""
    return tuple(filter(None, value.split(",")))


class Store:
    """The monitor's database: mentions, events, collection runs and alerts."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        self.dialect = self.engine.dialect.name
        self._batch_statements: dict[str, _BatchStatement] = {}
        self.migrate()

    def __repr__(self) -> str:
        return f"Store({redact_url(self.url)!r})"

    @cached_property
    def max_parameters(self) -> int:
        """Return how many parameters one statement may carry on this database."""
        if self.dialect != "sqlite":
            return 65_535  # PostgreSQL's protocol counts them in 16 bits
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)
            return raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    # -- schema -----------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create the schema, or upgrade an older one to SCHEMA_VERSION."""
        with self.engine.begin() as conn:
            metadata.create_all(conn)
            found = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version"))
            version = found.scalar_one_or_none()
            if version is None:
                self._set_meta(conn, "schema_version", str(SCHEMA_VERSION))
                self._set_meta(conn, "data_version", "0")
            elif int(version) > SCHEMA_VERSION:
                raise RuntimeError(
                    f"The database at {redact_url(self.url)} has schema version {version}, newer "
                    f"than this program's {SCHEMA_VERSION}. Upgrade repmon before using it."
                )
            elif int(version) < SCHEMA_VERSION:
                if int(version) < 2:  # version 1 had no rollups: count the mentions once
                    log.info("building hourly rollups for %s", redact_url(self.url))
                    conn.execute(sa.text("DROP INDEX IF EXISTS ix_mentions_published_at"))
                    self._rebuild_rollups(conn)
                if int(version) < 3:  # version 2 indexed every mention's canonical URL
                    conn.execute(sa.text("DROP INDEX IF EXISTS ix_mentions_canonical_url"))
                    _index("ix_mentions_story_url").create(conn, checkfirst=True)
                if int(version) < 4:
                    # Version 3 indexed (published_day, source, label, compound) for daily
                    # charts, which the rollups now answer. Only filtered daily counts used it,
                    # and they ran faster without it (an index scan fetched every row out of
                    # order); every mention written paid for it.
                    conn.execute(sa.text("DROP INDEX IF EXISTS ix_mentions_day_source_label"))
                self._set_meta(conn, "schema_version", str(SCHEMA_VERSION))

    def _set_meta(self, conn: Connection, key: str, value: str) -> None:
        updated = conn.execute(sa.update(meta).where(meta.c.key == key).values(value=value))
        if updated.rowcount == 0:
            conn.execute(sa.insert(meta).values(key=key, value=value))

    def get_meta(self, key: str) -> str | None:
        """Return a value kept in the meta table, or None."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(meta.c.value).where(meta.c.key == key)
            ).scalar_one_or_none()

    def set_meta(self, key: str, value: str) -> None:
        """Keep `value` under `key` in the meta table."""
        with self.engine.begin() as conn:
            self._set_meta(conn, key, value)

    def schema_version(self) -> int:
        """Return the schema version recorded in the database."""
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version"))
            return int(value.scalar_one())

    def data_version(self) -> int:
        """Return a number that grows whenever stored mentions change (for cache keys)."""
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(meta.c.value).where(meta.c.key == "data_version"))
            return int(value.scalar_one_or_none() or 0)

    # -- mentions -----------------------------------------------------------------------------

    def upsert_mentions(
        self, items: Iterable[Mention], *, cursor: tuple[str, dict[str, Any]] | None = None
    ) -> UpsertResult:
        """Store scored mentions: insert new ones, update changed ones in place, and keep a
        story already stored from elsewhere as a sighting of it.

        Keyed on (source, external_id), so running the same input twice changes nothing.
        Everything, and the source's new `cursor` when given, is written in one transaction:
        a cursor never runs ahead of the data it covers.
        """
        return self.upsert_prepared(self.prepare(items), cursor=cursor)

    def prepare(self, items: Iterable[Mention]) -> list[PreparedRow]:
        """Return scored mentions as rows ready for upsert_prepared: fitted to the columns,
        converted for the driver, in WRITE_COLUMNS order.

        It reads nothing from the database, so import workers in other processes run it and
        the writing process only decides and writes. A tuple of plain values is also what
        passes between processes at least cost.
        """
        self._statement("mentions")  # compiled here, so forked workers inherit it
        if self.dialect == "sqlite":
            return [_prepared_row(m, _sqlite_datetime, _sqlite_day) for m in items]
        return [_prepared_row(m, _as_given, datetime.date) for m in items]

    def upsert_prepared(
        self, items: Iterable[PreparedRow], *, cursor: tuple[str, dict[str, Any]] | None = None
    ) -> UpsertResult:
        """Do what upsert_mentions does, for rows from prepare()."""
        given = list(items)
        # A later duplicate wins (in the first one's place).
        ordered = list(dict(zip(map(_key, given), given, strict=True)).values())
        total = UpsertResult()
        with self._write_transaction() as conn:
            # One writer at a time (a collect and an import, `watch` and "Collect now"): what
            # is read below must not change before it is written, or a mention both writers
            # find new is counted twice in the rollups. This no-op write takes SQLite's write
            # lock, or PostgreSQL's lock on the row, before anything is read.
            conn.execute(
                sa.update(meta).where(meta.c.key == "data_version").values(value=meta.c.value)
            )
            # Each part's look-ups name up to two values a row (a URL and a text hash).
            step = max(1, min(UPSERT_BATCH, self.max_parameters // 2))
            for start in range(0, len(ordered), step):
                total += self._upsert_batch(conn, ordered[start : start + step])
            if cursor is not None:
                self._save_cursor(conn, *cursor)
            if total.new or total.updated or total.duplicates:
                version = conn.execute(
                    sa.select(meta.c.value).where(meta.c.key == "data_version")
                ).scalar_one_or_none()
                self._set_meta(conn, "data_version", str(int(version or 0) + 1))
        return total

    @contextmanager
    def _write_transaction(self) -> Iterator[Connection]:
        """Give a connection in a transaction for upserts; on SQLite, one whose temporary
        storage is in memory while the transaction lasts.

        A statement that writes many rows inside a transaction keeps a statement journal
        (what to undo should the statement fail half-way), and SQLite spills it to a
        temporary file beyond 64 KiB: our 256-row statements made more than half of an
        import's write calls that way. In memory, such a journal is only as large as the pages
        one statement changes. Reads keep the default, where a large sort spills to a file
        instead of growing in memory.
        """
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection if self.dialect == "sqlite" else None
            if raw is not None:
                # Outside any transaction, as SQLite requires; the driver begins none for it.
                raw.execute("PRAGMA temp_store=MEMORY")
            try:
                with conn.begin():
                    yield conn
            finally:
                if raw is not None:
                    try:
                        raw.execute("PRAGMA temp_store=DEFAULT")
                    except sqlite3.Error:
                        conn.invalidate()  # the pool must not hand it out as it is

    def _upsert_batch(self, conn: Connection, rows: list[PreparedRow]) -> UpsertResult:
        by_source = _ids_by_source(rows)
        published: dict[tuple[str, str], datetime] = {}
        stored = self._stored_fingerprints(conn, by_source, published)
        already_sighted = self._stored_sightings(conn, by_source)
        changed: list[PreparedRow] = []
        candidates: list[PreparedRow] = []
        unchanged = 0
        if not stored and not already_sighted:
            candidates = rows  # the usual case: nothing of this batch is stored yet
        else:
            for row in rows:
                key = (row[_SOURCE], row[_EXTERNAL_ID])
                before = stored.get(key)
                if before is not None:
                    if before == _fingerprint(row):
                        unchanged += 1
                    else:
                        changed.append(row)
                elif key in already_sighted:
                    unchanged += 1
                else:
                    candidates.append(row)
        by_url, by_hash = self._stored_stories(conn, candidates)
        new: list[PreparedRow] = []
        sighted: list[tuple[PreparedRow, int | PreparedRow]] = []  # (row, id or new row)
        for row in candidates:
            url, identifies = row[_CANONICAL_URL], _text_identifies_story(row)
            original = _same_story(row, url, identifies, by_url, by_hash)
            if original is None:
                new.append(row)
                # Later rows in this batch may repeat this one.
                if url:
                    by_url.setdefault(url, row)
                if identifies:
                    by_hash.setdefault(row[_CONTENT_HASH], {}).setdefault(row[_SOURCE], row)
            else:
                sighted.append((row, original))
        if new or changed:
            self._run_converted(conn, "mentions", new + changed)
            totals = _RollupDelta()
            add = totals.add
            for row in new:
                add(_hour_of(row[_PUBLISHED_AT]), row[_SOURCE], _counted(row), +1)
            for row in changed:
                # published_at never changes on update: the stored time is the one counted.
                key = (row[_SOURCE], row[_EXTERNAL_ID])
                hour = _hour_of(published[key])
                add(hour, row[_SOURCE], _counted_before(stored[key]), -1)
                add(hour, row[_SOURCE], _counted(row), +1)
            self._apply_rollup(conn, totals)
        if sighted:
            self._insert_sightings(conn, sighted)
        return UpsertResult(
            new=len(new), updated=len(changed), unchanged=unchanged, duplicates=len(sighted)
        )

    def _one_of(self, column: sa.Column[Any], name: str) -> sa.ColumnElement[bool]:
        """Return "`column` is one of the list given as parameter `name` at execution".

        The list is one parameter, so the statement is compiled and prepared once however
        long the list: an expanded IN (...) is a placeholder per value, which SQLAlchemy
        renders and the database parses on every call. PostgreSQL takes the list as an array;
        SQLite as JSON text, whose values json_each reads.
        """
        if self.dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))
        listed = sa.func.json_each(sa.bindparam(name, type_=sa.JSON)).table_valued("value")
        return column.in_(sa.select(listed.c.value))

    def _stored_sightings(
        self, conn: Connection, by_source: dict[str, list[str]]
    ) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        for source, ids in by_source.items():
            query = sa.select(sightings.c.source, sightings.c.external_id).where(
                sightings.c.source == source, self._one_of(sightings.c.external_id, "list")
            )
            found.update((row[0], row[1]) for row in conn.execute(query, {"list": ids}))
        return found

    def _stored_stories(
        self, conn: Connection, rows: list[PreparedRow]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Return the stored mentions that rows may repeat: the first with each canonical URL,
        and, for each text hash, the first from each source (earliest first)."""
        urls = [url for url in {r[_CANONICAL_URL] for r in rows} if url]
        hashes = list({r[_CONTENT_HASH] for r in rows if _text_identifies_story(r)})
        by_url: dict[str, Any] = {}
        by_hash: dict[str, dict[str, Any]] = {}
        c = mentions.c
        first = sa.func.min(c.id).label("first")
        if urls:
            query = (
                sa.select(c.canonical_url, first)
                # Spelled out so that the database may use the partial index.
                .where(c.canonical_url != "", self._one_of(c.canonical_url, "list"))
                .group_by(c.canonical_url)
            )
            by_url.update((found[0], found[1]) for found in conn.execute(query, {"list": urls}))
        if hashes:
            # Only the first mention of a source matters (a repeat from another source is a
            # sighting of the earliest): a text reposted a thousand times is one row here.
            query = (
                sa.select(c.content_hash, c.source, first)
                .where(self._one_of(c.content_hash, "list"))
                .group_by(c.content_hash, c.source)
                .order_by(first)
            )
            for found in conn.execute(query, {"list": hashes}):
                by_hash.setdefault(found[0], {})[found[1]] = found[2]
        return by_url, by_hash

    def _insert_sightings(
        self, conn: Connection, sighted: list[tuple[PreparedRow, int | PreparedRow]]
    ) -> None:
        # Originals inserted in this same batch have no id yet: look them up now.
        pending = [o for _, o in sighted if isinstance(o, tuple)]
        ids: dict[tuple[str, str], int] = {}
        for source, external_ids in _ids_by_source(pending).items():
            query = sa.select(mentions.c.id, mentions.c.external_id).where(
                mentions.c.source == source, self._one_of(mentions.c.external_id, "list")
            )
            found = conn.execute(query, {"list": external_ids})
            ids.update({(source, row.external_id): row.id for row in found})
        # In SIGHTING_COLUMNS order; collected_at is converted for the driver already.
        self._run_converted(
            conn,
            "sightings",
            [
                (
                    ids[_key(original)] if isinstance(original, tuple) else original,
                    row[_SOURCE],
                    row[_EXTERNAL_ID],
                    row[_URL],
                    row[_COLLECTED_AT],
                )
                for row, original in sighted
            ],
        )

    def get_cursor(self, source: str) -> dict[str, Any]:
        """Return the state the last successful run of `source` left ({} before the first)."""
        with self.engine.connect() as conn:
            state = conn.execute(
                sa.select(cursors.c.state).where(cursors.c.source == source)
            ).scalar_one_or_none()
        return dict(state) if state else {}

    def _save_cursor(self, conn: Connection, source: str, state: dict[str, Any]) -> None:
        conn.execute(sa.delete(cursors).where(cursors.c.source == source))
        conn.execute(sa.insert(cursors).values(source=source, state=state, updated_at=utcnow()))

    def count_sightings(self) -> int:
        """Return how many repeat arrivals of stored stories were kept as sightings."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(sightings)).scalar_one())

    def _stored_fingerprints(
        self,
        conn: Connection,
        by_source: dict[str, list[str]],
        published: dict[tuple[str, str], datetime],
    ) -> dict[tuple[str, str], tuple[Any, ...]]:
        """Return the mutable columns of the stored mentions among `by_source` (source ->
        external ids), as the driver gives them (so they compare with prepared rows), and
        fill `published` with their publication times."""
        c = mentions.c
        # JSON as its stored text: psycopg would otherwise parse it into objects.
        columns = [
            sa.cast(c[name], sa.Text) if isinstance(c[name].type, sa.JSON) else c[name]
            for name in MUTABLE_COLUMNS
        ]
        stored: dict[tuple[str, str], tuple[Any, ...]] = {}
        for source, ids in by_source.items():
            query = sa.select(c.source, c.external_id, c.published_at, *columns).where(
                c.source == source, self._one_of(c.external_id, "list")
            )
            for found in conn.execute(query, {"list": ids}):
                stored[(found[0], found[1])] = tuple(found[3:])
                published[(found[0], found[1])] = found[2]
        return stored

    # -- rollups ------------------------------------------------------------------------------

    def _dialect_insert(self, table: sa.Table) -> Any:
        # Both dialects spell "insert ... on conflict do update" the same way.
        from sqlalchemy.dialects import postgresql, sqlite

        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def _statement(self, name: str) -> _BatchStatement:
        """Return the named write statement, compiled for this database on first use."""
        found = self._batch_statements.get(name)
        if found is not None:
            return found
        if name == "mentions":  # a new mention, or new values for one already stored
            columns = list(WRITE_COLUMNS)
            statement = self._dialect_insert(mentions).values(_binds(mentions, columns))
            changes = {c: statement.excluded[c] for c in (*MUTABLE_COLUMNS, "updated_at")}
            statement = statement.on_conflict_do_update(
                index_elements=["source", "external_id"], set_=changes
            )
            table = mentions
        elif name == "sightings":
            table = sightings
            columns = list(SIGHTING_COLUMNS)
            statement = sa.insert(sightings).values(_binds(sightings, columns))
        else:  # a rollup table: totals added to what is there
            table = {"rollup_hours": rollup_hours, "rollup_topics": rollup_topics}[name]
            keys = ROLLUP_HOUR_KEYS if table is rollup_hours else ROLLUP_TOPIC_KEYS
            columns = [c.name for c in table.columns]
            statement = self._dialect_insert(table).values(_binds(table, columns))
            summed = [c for c in columns if c not in keys and c != "day"]
            statement = statement.on_conflict_do_update(
                index_elements=list(keys),
                set_={c: table.c[c] + statement.excluded[c] for c in summed},
            )
        compiled = _BatchStatement(statement, table, self.engine.dialect)
        if compiled.names != tuple(columns):  # rows are given in `columns` order
            raise RuntimeError(f"{name}: parameters in order {compiled.names}")  # a bug of ours
        self._batch_statements[name] = compiled
        return compiled

    def _run_converted(self, conn: Connection, name: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run the named write statement for every row (values in the driver's types, in the
        statement's column order), in chunks, in the caller's transaction.

        A chunk holds WRITE_CHUNK rows or, for what is left, the largest power of two that
        fits: SQLite prepares and keeps a statement for each number of rows (a 256-row one
        takes half a megabyte), so a few sizes serve every batch.
        """
        statement = self._statement(name)
        limit = WRITE_CHUNK
        if not statement.by_column:  # a parameter per value: the database's limit applies
            limit = max(1, min(WRITE_CHUNK, self.max_parameters // statement.columns))
        start = 0
        while start < len(rows):
            size = min(limit, 1 << ((len(rows) - start).bit_length() - 1))
            part = rows[start : start + size]
            conn.exec_driver_sql(statement.sql(len(part)), statement.parameters(part))
            start += size

    def _apply_rollup(self, conn: Connection, delta: _RollupDelta) -> None:
        """Add `delta` to the rollup tables (in the caller's transaction)."""
        # Rows straight in the driver's values: a batch of a backfill spread over months
        # touches about as many hours as it has mentions.
        moments = _sqlite_hour if self.dialect == "sqlite" else _aware_hour
        self._run_converted(conn, "rollup_hours", delta.hour_values(moments))
        self._run_converted(conn, "rollup_topics", delta.topic_values(moments))

    def _rebuild_rollups(self, conn: Connection) -> None:
        """Recount the rollup tables from the stored mentions."""
        conn.execute(sa.delete(rollup_topics))
        conn.execute(sa.delete(rollup_hours))
        self._apply_rollup(conn, _count_rollups(conn))

    def rebuild_rollups(self) -> None:
        """Recount the rollup tables from the stored mentions (one transaction)."""
        with self.engine.begin() as conn:
            self._rebuild_rollups(conn)

    def rollup_problems(self) -> list[str]:
        """Return where the rollup tables disagree with the stored mentions ([] when none)."""
        with self.engine.connect() as conn:
            expected = _count_rollups(conn)
            hours = {
                tuple(row[k] for k in ROLLUP_HOUR_KEYS): row
                for row in conn.execute(sa.select(rollup_hours)).mappings()
                if row["mentions"]
            }
            topics = {
                tuple(row[k] for k in ROLLUP_TOPIC_KEYS): row["mentions"]
                for row in conn.execute(sa.select(rollup_topics)).mappings()
                if row["mentions"]
            }
        problems = []
        want_hours = {tuple(r[k] for k in ROLLUP_HOUR_KEYS): r for r in expected.hour_rows()}
        for key in sorted(set(want_hours) | set(hours), key=repr):
            want, have = want_hours.get(key), hours.get(key)
            if want is None or have is None or not _same_totals(want, have):
                problems.append(f"rollup_hours {key}: expected {want}, stored {have}")
        want_topics = {
            tuple(r[k] for k in ROLLUP_TOPIC_KEYS): r["mentions"] for r in expected.topic_rows()
        }
        for key in sorted(set(want_topics) | set(topics), key=repr):
            if want_topics.get(key) != topics.get(key):
                problems.append(
                    f"rollup_topics {key}: expected {want_topics.get(key)}, "
                    f"stored {topics.get(key)}"
                )
        return problems

    def count_mentions(self, query: MentionQuery = ALL_MENTIONS) -> int:
        """Return how many stored mentions match `query`."""
        if _rollups_answer(query):
            r = rollup_hours.c
            statement = sa.select(sa.func.sum(r.mentions)).where(
                *_rollup_conditions(rollup_hours, query)
            )
        else:
            statement = sa.select(sa.func.count()).select_from(mentions).where(*_conditions(query))
        with self.engine.connect() as conn:
            return int(conn.execute(statement).scalar_one() or 0)

    def daily_counts(self, query: MentionQuery = ALL_MENTIONS) -> pd.DataFrame:
        """Return one row per (day, source, label): mentions, summed compound and rating.

        Sums rather than means, so callers can re-aggregate over any grouping exactly.
        """
        return self._counts(query, by_hour=False)

    def hourly_counts(self, query: MentionQuery = ALL_MENTIONS) -> pd.DataFrame:
        """Return one row per (UTC hour, source, label): mentions and summed compound and rating.

        Hours are the clusters the event study resamples: mentions arrive in bursts, so an
        hour, not a single mention, is the independent unit.
        """
        return self._counts(query, by_hour=True)

    def _counts(self, query: MentionQuery, *, by_hour: bool) -> pd.DataFrame:
        """Return mentions and sums per (day or hour, source, label) for `query`: from the
        rollups when they can answer it exactly, else grouped from the mentions."""
        period = "hour" if by_hour else "day"
        columns = [period, "source", "label", "mentions", "compound_sum", "rating_sum", "ratings"]
        if _rollups_answer(query):
            r = rollup_hours.c
            key: Any = r.hour if by_hour else r.day
            statement = (
                sa.select(
                    key.label(period),
                    r.source,
                    r.label,
                    sa.func.sum(r.mentions).label("mentions"),
                    sa.func.sum(r.compound_sum).label("compound_sum"),
                    sa.func.sum(r.rating_sum).label("rating_sum"),
                    sa.func.sum(r.ratings).label("ratings"),
                )
                .where(*_rollup_conditions(rollup_hours, query), r.mentions != 0)
                .group_by(key, r.source, r.label)
                .order_by(key, r.source, r.label)
            )
        else:
            c = mentions.c
            key = c.published_day
            if by_hour and self.dialect == "postgresql":
                key = sa.func.date_trunc("hour", sa.func.timezone("UTC", c.published_at))
            elif by_hour:  # stored as "YYYY-MM-DD HH:MM:SS...": 13 characters are the hour
                key = sa.func.substr(sa.cast(c.published_at, sa.String), 1, 13)
            statement = (
                sa.select(
                    key.label(period),
                    c.source,
                    c.label,
                    sa.func.count().label("mentions"),
                    sa.func.sum(c.compound).label("compound_sum"),
                    sa.func.sum(c.rating).label("rating_sum"),
                    sa.func.count(c.rating).label("ratings"),
                )
                .where(*_conditions(query))
                .group_by(key, c.source, c.label)
                .order_by(key, c.source, c.label)
            )
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(statement).mappings().all())
        if frame.empty:
            return pd.DataFrame(columns=columns)
        if not by_hour:
            frame["day"] = pd.to_datetime(frame["day"])
        elif _rollups_answer(query) or self.dialect == "postgresql":
            frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
        else:
            frame["hour"] = pd.to_datetime(frame["hour"], format="%Y-%m-%d %H", utc=True)
        frame["mentions"] = frame["mentions"].astype("int64")
        frame["ratings"] = frame["ratings"].astype("int64")
        frame["compound_sum"] = frame["compound_sum"].astype(float)
        frame["rating_sum"] = frame["rating_sum"].astype(float).fillna(0.0)
        return frame[columns]

    def topic_counts(self, query: MentionQuery, topics: Sequence[str]) -> dict[str, int]:
        """Return how many mentions matching `query` carry each of `topics` (one query)."""
        if not topics:
            return {}
        if _rollups_answer(query):
            t = rollup_topics.c
            statement = (
                sa.select(t.topic, sa.func.sum(t.mentions))
                .where(*_rollup_conditions(rollup_topics, query), t.topic.in_(list(topics)))
                .group_by(t.topic)
            )
            with self.engine.connect() as conn:
                found = {topic: int(n or 0) for topic, n in conn.execute(statement)}
            return {topic: found.get(topic, 0) for topic in topics}
        c = mentions.c
        columns = [
            sa.func.sum(sa.case((c.topics.contains(f",{t},", autoescape=True), 1), else_=0)).label(
                t
            )
            for t in topics
        ]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*columns).where(*_conditions(query))).mappings().one()
        return {t: int(row[t] or 0) for t in topics}

    def mentions_frame(
        self,
        query: MentionQuery = ALL_MENTIONS,
        *,
        order_by: str = "published_at",
        descending: bool = True,
        limit: int | None = 100,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Return one page of mentions matching `query`, newest (or the chosen order) first."""
        if order_by not in MENTION_COLUMNS:
            raise ValueError(f"cannot sort mentions by {order_by!r}")
        column = mentions.c[order_by]
        statement = (
            sa.select(*(mentions.c[name] for name in MENTION_COLUMNS))
            .where(*_conditions(query))
            .order_by(column.desc() if descending else column.asc(), mentions.c.id.desc())
            .offset(offset)
        )
        if limit is not None:
            statement = statement.limit(limit)
        with self.engine.connect() as conn:
            return _mentions_to_frame(conn.execute(statement).mappings().all())

    def rule_frame(
        self, since: datetime, until: datetime, columns: Sequence[str] = RULE_COLUMNS
    ) -> pd.DataFrame:
        """Return what alert rules read of the mentions published in [since, until), in time
        order: published_at and `columns` of RULE_COLUMNS (the others empty, ids -1).

        No text: rules need it only for the few mentions they cite (`mentions_by_id`), and
        leaving it out keeps a check after every collection fast however much is stored.
        """
        wanted = [
            "published_at",
            *(n for n in RULE_COLUMNS if n in columns and n != "published_at"),
        ]
        c = mentions.c
        # published_at as PostgreSQL's whole microseconds since 1970 (exact) or SQLite's
        # stored text, converted for the whole column at once: a datetime object per row
        # costs more than the query.
        if self.dialect == "postgresql":
            raw_time: Any = sa.cast(sa.extract("epoch", c.published_at) * 1_000_000, sa.BigInteger)
        else:
            raw_time = sa.type_coerce(c.published_at, sa.String)
        selected = [raw_time.label(n) if n == "published_at" else c[n] for n in wanted]
        statement = (
            sa.select(*selected)
            .where(c.published_at >= since, c.published_at < until)
            .order_by(c.published_at)  # the covering index's order; ties put in id order below
        )
        with self.engine.connect() as conn:
            # The driver's own tuples: nothing here needs SQLAlchemy's per-row processing.
            rows = conn.execute(statement).cursor.fetchall()
        # Column by column, from one table of plain objects (numpy lays the rows out in C):
        # letting pandas infer and convert each value of 100,000s of rows costs more than the
        # query, and so does transposing the rows in Python.
        size = len(rows)
        table = np.array(rows, dtype=object).reshape(size, len(wanted))
        found = {name: table[:, at] for at, name in enumerate(wanted)}

        def column(name: str, dtype: Any, empty: Any) -> Any:
            if name in found:
                return found[name].astype(dtype)
            return np.full(size, empty, dtype=dtype)  # not asked for: one value, no loop

        topics = column("topics", object, "")
        if "topics" in found:
            readable = {t: ", ".join(topics_from_db(t or "")) for t in set(found["topics"])}
            topics = np.array([readable[t] for t in found["topics"]], dtype=object)
        frame = pd.DataFrame(
            {
                "id": column("id", np.int64, -1),
                "published_at": _times_column(found["published_at"]),
                "source": pd.Series(column("source", object, ""), dtype=object),
                "label": pd.Series(column("label", object, ""), dtype=object),
                "compound": column("compound", float, np.nan),
                "engagement": column("engagement", np.int64, 0),
                "topics": pd.Series(topics, dtype=object),
            },
            columns=list(RULE_COLUMNS),
        )
        return frame.sort_values(["published_at", "id"], kind="stable", ignore_index=True)

    def mentions_by_id(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Return title, text and url of the mentions with these ids."""
        if not ids:
            return {}
        c = mentions.c
        statement = sa.select(c.id, c.title, c.text, c.url).where(c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            return {row.id: dict(row._mapping) for row in conn.execute(statement)}

    def iter_mentions(
        self, query: MentionQuery = ALL_MENTIONS, *, chunk: int = 5000
    ) -> Iterator[pd.DataFrame]:
        """Yield every mention matching `query` in time order, `chunk` rows at a time."""
        statement = (
            sa.select(*(mentions.c[name] for name in MENTION_COLUMNS))
            .where(*_conditions(query))
            .order_by(mentions.c.published_at, mentions.c.id)
        )
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(statement)
            for rows in result.mappings().partitions(chunk):
                yield _mentions_to_frame(rows)

    def sources(self) -> list[str]:
        """Return the sources that have stored mentions, sorted."""
        with self.engine.connect() as conn:
            r = rollup_hours.c
            found = conn.execute(sa.select(r.source).where(r.mentions != 0).distinct())
            # Sorted here, by code point: ORDER BY follows PostgreSQL's collation (en_US puts
            # "Émile" first and "forum" before "Forum"), SQLite's is binary.
            return sorted(found.scalars())

    def time_bounds(self) -> tuple[datetime, datetime] | None:
        """Return the first and last published_at stored, or None when empty."""
        c = mentions.c
        # Two subqueries: SQLite answers a lone min() or max() from the index, but scans
        # the whole table for both in one SELECT.
        earliest = sa.select(sa.func.min(c.published_at)).scalar_subquery()
        latest = sa.select(sa.func.max(c.published_at)).scalar_subquery()
        with self.engine.connect() as conn:
            first, last = conn.execute(sa.select(earliest, latest)).one()
        if first is None:
            return None
        # Aggregates bypass the column type on SQLite, so convert here.
        return _as_utc(first), _as_utc(last)

    # -- alerts -------------------------------------------------------------------------------

    def add_alert(self, alert: Alert) -> Alert:
        """Store a fired alert and return it with its id."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.insert(alerts).values(
                    rule=alert.rule,
                    kind=alert.kind,
                    brand=alert.brand,
                    fired_at=alert.fired_at,
                    severity=alert.severity,
                    value=alert.value,
                    threshold=alert.threshold,
                    message=alert.message,
                    evidence=alert.evidence,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            alert.id = int(key[0])
        return alert

    def replace_alerts(self, brand: str, items: Iterable[Alert]) -> None:
        """Make `brand`'s stored alerts exactly `items` (the demo's history, rebuilt)."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(alerts).where(alerts.c.brand == brand))
        for alert in items:
            self.add_alert(alert)

    def alerts(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        unacknowledged: bool = False,
        limit: int | None = 200,
    ) -> list[Alert]:
        """Return stored alerts, newest first."""
        c = alerts.c
        statement = sa.select(alerts).order_by(c.fired_at.desc(), c.id.desc())
        if since is not None:
            statement = statement.where(c.fired_at >= since)
        if until is not None:
            statement = statement.where(c.fired_at < until)
        if unacknowledged:
            statement = statement.where(c.acknowledged_at.is_(None))
        if limit is not None:
            statement = statement.limit(limit)
        with self.engine.connect() as conn:
            return [_alert_from_row(row) for row in conn.execute(statement)]

    def fired_times(self, rule: str, brand: str, latest: int = 1) -> list[datetime]:
        """Return when `rule` fired for `brand`, its `latest` alerts, oldest first: what its
        quiet period is worked out from (alerts.rules.quiet_until)."""
        c = alerts.c
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(c.fired_at)
                .where(c.rule == rule, c.brand == brand)
                .order_by(c.fired_at.desc())
                .limit(latest)
            ).scalars()
            return sorted(found)

    def acknowledge_alert(self, alert_id: int, note: str = "") -> bool:
        """Mark an alert as handled, with a note; return False when there is no such alert."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(alerts)
                .where(alerts.c.id == alert_id)
                .values(acknowledged_at=utcnow(), ack_note=note)
            )
        return bool(result.rowcount)

    # -- events and runs ----------------------------------------------------------------------

    def replace_events(self, items: Iterable[Event]) -> None:
        """Make the stored events exactly `items` (the config is their source of truth)."""
        rows = [{"at": e.at, "label": e.label, "kind": e.kind} for e in items]
        with self.engine.begin() as conn:
            conn.execute(sa.delete(events))
            if rows:
                conn.execute(sa.insert(events), rows)

    def events(self) -> list[Event]:
        """Return the stored events in time order."""
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(events.c.at, events.c.label, events.c.kind).order_by(events.c.at)
            )
            return [Event(at=row.at, label=row.label, kind=row.kind) for row in found]

    def start_run(self, source: str) -> CollectionRun:
        """Record that a collection run of `source` has started and return it."""
        run = CollectionRun(source=source, started_at=utcnow())
        with self.engine.begin() as conn:
            # A run still "running" here was killed or crashed; one that is in fact running in
            # another process records its own status when it finishes, over this one.
            conn.execute(
                sa.update(collection_runs)
                .where(collection_runs.c.source == source, collection_runs.c.status == "running")
                .values(status="interrupted", error=INTERRUPTED)
            )
            result = conn.execute(
                sa.insert(collection_runs).values(
                    source=source, started_at=run.started_at, status="running"
                )
            )
            key = result.inserted_primary_key
            assert key is not None  # an INSERT of one row always has one
            run.id = int(key[0])
        return run

    def finish_run(self, run: CollectionRun) -> None:
        """Record a run's outcome."""
        run.finished_at = run.finished_at or utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(collection_runs)
                .where(collection_runs.c.id == run.id)
                .values(
                    finished_at=run.finished_at,
                    status=run.status,
                    new=run.new,
                    updated=run.updated,
                    unchanged=run.unchanged,
                    duplicates=run.duplicates,
                    skipped=run.skipped,
                    error=_db_text(run.error),
                )
            )

    def recent_runs(self, limit: int = 50) -> list[CollectionRun]:
        """Return the latest collection runs, newest first."""
        c = collection_runs.c
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(collection_runs).order_by(c.started_at.desc(), c.id.desc()).limit(limit)
            )
            return [
                CollectionRun(
                    id=row.id,
                    source=row.source,
                    started_at=row.started_at,
                    finished_at=row.finished_at,
                    status=row.status,
                    new=row.new,
                    updated=row.updated,
                    unchanged=row.unchanged,
                    duplicates=row.duplicates,
                    skipped=row.skipped,
                    error=row.error,
                )
                for row in found
            ]


def _index(name: str) -> sa.Index:
    return next(index for index in mentions.indexes if index.name == name)


def _binds(table: sa.Table, columns: Sequence[str]) -> dict[str, Any]:
    return {name: sa.bindparam(name, type_=table.c[name].type) for name in columns}


def _sqlite_datetime(value: datetime) -> str:
    """Return what UTCDateTime stores in SQLite: UTC, always with microseconds, no zone."""
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError(
                f"naive datetime {value!r} reached the store; attach a time zone first"
            )
        value = value.astimezone(UTC)
    return _SQLITE_DATETIME % (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


_SQLITE_DATETIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"  # SQLAlchemy's SQLite storage format


def _sqlite_hour(hour: Hour) -> tuple[str, str]:
    """Return the start of `hour` and its day as SQLite stores them (see _sqlite_datetime)."""
    return hour + ":00:00.000000", hour[:10]


@lru_cache(maxsize=1 << 14)  # a batch asks for each of its hours once per table
def _aware_hour(hour: Hour) -> tuple[datetime, date]:
    """Return the start of `hour` and its day as objects (psycopg takes them as they are)."""
    start = datetime(int(hour[:4]), int(hour[5:7]), int(hour[8:10]), int(hour[11:13]), tzinfo=UTC)
    return start, start.date()


def _json_text(value: Any) -> str:
    """Return `value` as the JSON type stores it (json.dumps), quickly for the common {}."""
    return "{}" if value == {} else json.dumps(value)


def _split_values(sql: str) -> tuple[str, str, str]:
    """Return an INSERT's text before its row of values, the row "(...)", and what follows."""
    head, values = sql.split(" VALUES ", 1)
    depth = 0
    for end, char in enumerate(values):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return head + " VALUES ", values[: end + 1], values[end + 1 :]
    raise ValueError(f"no row of values in {sql!r}")


class _BatchStatement:
    """A write statement run for many rows at once.

    Two costs make this worth its own class. SQLAlchemy passes every value of every row
    through its type on each execute, which for thousands of rows costs more than the
    database's own work; rows come here already in the driver's types (see _prepared_row and
    _RollupDelta.hour_values). And a statement per row is a round trip per row. So SQLite gets
    one VALUES group per row, and PostgreSQL one array per column, unnested into rows: a
    statement short enough for psycopg to parse once, whatever the number of rows.
    """

    def __init__(self, statement: Any, table: sa.Table, dialect: sa.Dialect) -> None:
        self.by_column = dialect.name == "postgresql"
        # Positional placeholders ("?" or "%s"), so that one row's group can be repeated.
        style = "format" if self.by_column else "qmark"
        dialect_class: Any = type(dialect)
        compiled = statement.compile(dialect=dialect_class(paramstyle=style))
        names: list[str] = list(compiled.positiontup or ())
        head, self._group, self._tail = _split_values(str(compiled))
        placeholder = "%s" if self.by_column else "?"
        if not names or self._group.count(placeholder) != len(names):
            raise RuntimeError(f"cannot repeat the values of {compiled}")  # a bug of ours
        self._head = head
        if self.by_column:
            arrays = ", ".join(f"%s::{table.c[n].type.compile(dialect=dialect)}[]" for n in names)
            # Only our own table's column types go into the text; the values are parameters.
            self._head = f"{head.removesuffix(' VALUES ')} SELECT * FROM unnest({arrays})"  # noqa: S608
        self.names = tuple(names)
        self.columns = len(names)

    def sql(self, rows: int) -> str:
        """Return the statement for `rows` rows."""
        if self.by_column:
            return self._head + self._tail
        return self._head + ", ".join([self._group] * rows) + self._tail

    def parameters(self, rows: Sequence[Sequence[Any]]) -> tuple[Any, ...]:
        """Return the statement's parameters for rows of values in the driver's types."""
        if self.by_column:
            return tuple(map(list, zip(*rows, strict=True)))
        return tuple(chain.from_iterable(rows))


def _alert_from_row(row: Any) -> Alert:
    return Alert(
        id=row.id,
        rule=row.rule,
        kind=row.kind,
        brand=row.brand,
        fired_at=row.fired_at,
        severity=row.severity,
        value=row.value,
        threshold=row.threshold,
        message=row.message,
        evidence=list(row.evidence or []),
        acknowledged_at=row.acknowledged_at,
        ack_note=row.ack_note,
    )


def _as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# What every database can hold, so SQLite (which checks nothing) keeps what PostgreSQL keeps:
# no NUL in text, VARCHAR lengths, and INTEGER's 32 bits. Counts past 2^31 are clamped, a
# long author cut, and an over-long id shortened to a prefix plus a hash that keeps it unique.
AUTHOR_CHARS = 256
ID_CHARS = 256
INT_MAX = 2**31 - 1


def _db_text(value: str) -> str:
    return value.replace("\x00", "")


def _db_int(value: int | None) -> int | None:
    return None if value is None else max(-INT_MAX - 1, min(INT_MAX, value))


def _fit_id(value: str) -> str:
    if len(value) <= ID_CHARS:
        return value
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]
    return f"{value[: ID_CHARS - 33]}~{digest}"


def _prepared_row(
    mention: Mention, moment: Callable[[datetime], Any], day: Callable[[Any], Any]
) -> PreparedRow:
    """Return a mention's values in WRITE_COLUMNS order (the table's), fitted to the columns;
    `moment` converts a time for the driver and `day` gives published_day from the converted
    time. Rows written and read back, every column, hold this order (test_properties)."""
    if mention.label is None or mention.compound is None:
        raise ValueError(
            f"mention {mention.source}:{mention.external_id} reached the store unscored"
        )
    published = moment(mention.published_at)
    collected = moment(mention.collected_at)
    return (
        mention.source,
        _fit_id(_db_text(mention.external_id)),
        _db_text(mention.url),
        _db_text(mention.canonical_url),
        _db_text(mention.author)[:AUTHOR_CHARS],
        _db_text(mention.title),
        _db_text(mention.text),
        published,
        day(published),
        collected,
        collected,  # updated_at: a mention is new, or updated, when it is collected
        _db_int(mention.score),
        _db_int(mention.comments),
        mention.rating,
        _db_int(mention.followers),
        _db_int(mention.engagement),
        mention.compound,
        mention.label,
        topics_to_db(mention.topics),
        mention.content_hash,
        _json_text(mention.extra),
    )


# The day of a time as SQLite stores it ("2026-06-03 00:55:17.000000").
_sqlite_day: Callable[[str], str] = itemgetter(slice(10))


def _as_given(value: Any) -> Any:
    return value


# A prepared row's identity: (source, external_id).
_key: Callable[[PreparedRow], tuple[str, str]] = itemgetter(_SOURCE, _EXTERNAL_ID)


def _ids_by_source(rows: Iterable[PreparedRow]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for row in rows:
        grouped.setdefault(row[_SOURCE], []).append(row[_EXTERNAL_ID])
    return grouped


# Short texts ("This.", "lol") repeat by chance; only longer ones identify a story.
MIN_STORY_TEXT = 40


def _text_identifies_story(row: PreparedRow) -> bool:
    return len(row[_TITLE]) + len(row[_TEXT]) >= MIN_STORY_TEXT


def _same_story(
    row: PreparedRow,
    url: str,
    identifies: bool,
    by_url: dict[str, Any],
    by_hash: dict[str, dict[str, Any]],
) -> Any:
    """Return the stored mention (id, or a row of this batch) `row` repeats, or None.

    The same canonical URL is the same story from any source. The same normalised text
    (when long enough that it `identifies` one) is the same story only from another source:
    within one source, two posts may say the same words and still be two people.
    """
    if url and url in by_url:
        return by_url[url]
    if identifies:
        for source, original in by_hash.get(row[_CONTENT_HASH], {}).items():
            if source != row[_SOURCE]:
                return original  # the earliest from another source: by_hash keeps that order
    return None


def _is_whole_hour(moment: datetime | None) -> bool:
    return moment is None or (moment.minute, moment.second, moment.microsecond) == (0, 0, 0)


Hour = str  # a UTC hour as the first 13 characters of SQLite's times: "2026-06-03 00"


def _hour_of(moment: datetime | str) -> Hour:
    """Return the UTC hour of a time, or of one as SQLite stores it ("2026-06-03 00:55:17…")."""
    if isinstance(moment, str):
        return moment[:13]
    at = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return "%04d-%02d-%02d %02d" % (at.year, at.month, at.day, at.hour)  # noqa: UP031 (fast)


class _RollupDelta:
    """Changes to the rollup tables, summed per key before they are written."""

    def __init__(self) -> None:
        # (hour, source, label) -> [mentions, compound_sum, rating_sum, ratings]
        self.hours: dict[tuple[Hour, str, str], list[float]] = {}
        self.topics: dict[tuple[Hour, str, str, str], int] = {}

    def add(self, hour: Hour, source: str, values: Sequence[Any], sign: int) -> None:
        """Count (sign +1) or uncount (-1) one mention: `values` are its ROLLUP_VALUES."""
        label, compound, rating, topics = values
        key = (hour, source, label)
        totals = self.hours.get(key)
        if totals is None:
            totals = self.hours[key] = [0, 0.0, 0.0, 0]
        totals[0] += sign
        totals[1] += sign * compound
        if rating is not None:
            totals[2] += sign * rating
            totals[3] += sign
        if topics:
            counts = self.topics
            for topic in topics_from_db(topics):
                topic_key = (hour, source, label, topic)
                counts[topic_key] = counts.get(topic_key, 0) + sign

    def hour_rows(self) -> list[dict[str, Any]]:
        """Return the hour totals as rows of rollup_hours (changes that cancel out dropped)."""
        rows = []
        for (hour, source, label), (n, compound, rating, ratings) in self.hours.items():
            if n or compound or rating or ratings:
                start, day = _aware_hour(hour)
                rows.append(
                    {
                        "hour": start,
                        "source": source,
                        "label": label,
                        "day": day,
                        "mentions": int(n),
                        "compound_sum": compound,
                        "rating_sum": rating,
                        "ratings": int(ratings),
                    }
                )
        return rows

    def hour_values(self, moments: Callable[[Hour], tuple[Any, Any]]) -> list[tuple[Any, ...]]:
        """Return hour_rows as the driver takes them, in the table's column order; `moments`
        gives an hour's `hour` and `day` values."""
        rows = []
        for (hour, source, label), (n, compound, rating, ratings) in self.hours.items():
            if n or compound or rating or ratings:
                start, day = moments(hour)
                rows.append((start, source, label, day, int(n), compound, rating, int(ratings)))
        return rows

    def topic_values(self, moments: Callable[[Hour], tuple[Any, Any]]) -> list[tuple[Any, ...]]:
        """Return topic_rows as the driver takes them, in the table's column order."""
        return [
            (moments(hour)[0], source, label, topic, n)
            for (hour, source, label, topic), n in self.topics.items()
            if n
        ]

    def topic_rows(self) -> list[dict[str, Any]]:
        """Return the topic counts as rows of rollup_topics (zero changes dropped)."""
        return [
            {
                "hour": _aware_hour(hour)[0],
                "source": source,
                "label": label,
                "topic": topic,
                "mentions": n,
            }
            for (hour, source, label, topic), n in self.topics.items()
            if n
        ]


def _count_rollups(conn: Connection) -> _RollupDelta:
    """Return the rollups of every stored mention, counted afresh (streamed, not loaded)."""
    c = mentions.c
    totals = _RollupDelta()
    values = [c[name] for name in ROLLUP_VALUES]
    query = sa.select(c.published_at, c.source, *values)
    result = conn.execution_options(stream_results=True, yield_per=10_000).execute(query)
    for row in result:
        totals.add(_hour_of(row[0]), row[1], row[2:], +1)
    return totals


def _same_totals(want: dict[str, Any], have: Any) -> bool:
    # Sums kept by adding and subtracting can differ from a fresh sum in the last bits.
    return bool(
        want["mentions"] == have["mentions"]
        and want["ratings"] == have["ratings"]
        and abs(want["compound_sum"] - have["compound_sum"]) < 1e-6
        and abs(want["rating_sum"] - have["rating_sum"]) < 1e-6
    )


_fingerprint = itemgetter(*(WRITE_COLUMNS.index(name) for name in MUTABLE_COLUMNS))
_counted = itemgetter(*(WRITE_COLUMNS.index(name) for name in ROLLUP_VALUES))
# The same, of a stored mention's fingerprint (its MUTABLE_COLUMNS).
_counted_before = itemgetter(*(MUTABLE_COLUMNS.index(name) for name in ROLLUP_VALUES))


def _times_column(values: Sequence[Any] | np.ndarray[Any, Any]) -> pd.Series:
    """Return UTC timestamps from microseconds since 1970 or stored text."""
    if len(values) and isinstance(values[0], int):
        return pd.Series(pd.to_datetime(np.array(values, dtype=np.int64), unit="us", utc=True))
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")


def _rollups_answer(query: MentionQuery) -> bool:
    """Return True when the rollups hold the exact answer to `query`: no text search or
    topic filter, and a time range in whole UTC hours."""
    return (
        not query.topics
        and not query.search.strip()
        and _is_whole_hour(query.since)
        and _is_whole_hour(query.until)
    )


def _rollup_conditions(table: sa.Table, query: MentionQuery) -> list[sa.ColumnElement[bool]]:
    # With whole-hour bounds, "published in [since, until)" is "counted in an hour in it".
    r = table.c
    conditions: list[sa.ColumnElement[bool]] = []
    if query.since is not None:
        conditions.append(r.hour >= query.since)
    if query.until is not None:
        conditions.append(r.hour < query.until)
    if query.sources:
        conditions.append(r.source.in_(query.sources))
    if query.labels:
        conditions.append(r.label.in_(query.labels))
    return conditions


def _conditions(query: MentionQuery) -> list[sa.ColumnElement[bool]]:
    c = mentions.c
    conditions: list[sa.ColumnElement[bool]] = []
    if query.since is not None:
        conditions.append(c.published_at >= query.since)
    if query.until is not None:
        conditions.append(c.published_at < query.until)
    if query.sources:
        conditions.append(c.source.in_(query.sources))
    if query.labels:
        conditions.append(c.label.in_(query.labels))
    if query.topics:
        conditions.append(
            sa.or_(*(c.topics.contains(f",{t},", autoescape=True) for t in query.topics))
        )
    if query.search.strip():
        needle = query.search.strip()
        conditions.append(
            sa.or_(
                c.title.icontains(needle, autoescape=True),
                c.text.icontains(needle, autoescape=True),
            )
        )
    return conditions


def _mentions_to_frame(rows: Sequence[Any]) -> pd.DataFrame:
    frame = pd.DataFrame([dict(row) for row in rows], columns=list(MENTION_COLUMNS))
    frame["topics"] = frame["topics"].map(lambda value: ", ".join(topics_from_db(value or "")))
    frame["published_at"] = pd.to_datetime(frame["published_at"], utc=True)
    for name in ("score", "comments", "followers", "engagement"):
        frame[name] = frame[name].astype("Int64")
    frame["rating"] = frame["rating"].astype("Float64")
    return frame

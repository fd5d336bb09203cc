"""Storage: SQLAlchemy Core over SQLite (default) or PostgreSQL (by URL).

The store owns the schema and creates or upgrades it on open. Every timestamp goes in
and comes out as timezone-aware UTC. Aggregates for charts are computed in the
database, so a chart never needs every row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.models import Alert, CollectionRun, Event, Mention, MentionQuery, utcnow

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
ALL_MENTIONS = MentionQuery()
UPSERT_BATCH = 500


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
    # The UTC calendar day of published_at, kept so daily charts group on an indexed column.
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
    sa.Index("ix_mentions_published_at", "published_at"),
    sa.Index("ix_mentions_day_source_label", "published_day", "source", "label", "compound"),
    sa.Index("ix_mentions_label_engagement", "label", "engagement"),
    sa.Index("ix_mentions_content_hash", "content_hash"),
    sa.Index("ix_mentions_canonical_url", "canonical_url"),
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
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        # psycopg 3 is the driver we ship with the `postgres` extra.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return sa.create_engine(url, pool_pre_ping=True)


def redact_url(url: str) -> str:
    """Return a database URL safe to print: the password replaced by ***."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable database URL>"


def topics_to_db(topics: Sequence[str]) -> str:
    """Return topic ids in the stored form, ",a,b,"; empty string for none."""
    return f",{','.join(sorted(topics))}," if topics else ""


def topics_from_db(value: str) -> tuple[str, ...]:
    """Return the topic ids of a stored topics value."""
    return tuple(t for t in value.split(",") if t)


class Store:
    """The monitor's database: mentions, events, collection runs and alerts."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        self.dialect = self.engine.dialect.name
        self.migrate()

    def __repr__(self) -> str:
        return f"Store({redact_url(self.url)!r})"

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
            # Upgrades from older versions go here, one step per version, when there are any.

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
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for mention in items:
            row = _mention_row(mention)
            rows[(row["source"], row["external_id"])] = row  # a later duplicate wins
        ordered = list(rows.values())
        total = UpsertResult()
        with self.engine.begin() as conn:
            for start in range(0, len(ordered), UPSERT_BATCH):
                total += self._upsert_batch(conn, ordered[start : start + UPSERT_BATCH])
            if cursor is not None:
                self._save_cursor(conn, *cursor)
            if total.new or total.updated or total.duplicates:
                version = conn.execute(
                    sa.select(meta.c.value).where(meta.c.key == "data_version")
                ).scalar_one_or_none()
                self._set_meta(conn, "data_version", str(int(version or 0) + 1))
        return total

    def _upsert_batch(self, conn: Connection, rows: list[dict[str, Any]]) -> UpsertResult:
        stored = self._stored_fingerprints(conn, rows)
        already_sighted = self._stored_sightings(conn, rows)
        changed = [r for r in rows if _key(r) in stored and stored[_key(r)] != _fingerprint(r)]
        unchanged = sum(_key(r) in already_sighted for r in rows) + sum(
            _key(r) in stored and stored[_key(r)] == _fingerprint(r) for r in rows
        )
        candidates = [r for r in rows if _key(r) not in stored and _key(r) not in already_sighted]
        by_url, by_hash = self._stored_stories(conn, candidates)
        new: list[dict[str, Any]] = []
        sighted: list[tuple[dict[str, Any], int | dict[str, Any]]] = []  # (row, id or new row)
        for row in candidates:
            original = _same_story(row, by_url, by_hash)
            if original is None:
                new.append(row)
                # Later rows in this batch may repeat this one.
                if row["canonical_url"]:
                    by_url.setdefault(row["canonical_url"], row)
                if _text_identifies_story(row):
                    by_hash.setdefault(row["content_hash"], []).append((row, row["source"]))
            else:
                sighted.append((row, original))
        if new or changed:
            conn.execute(self._upsert_statement(), new + changed)
        if sighted:
            self._insert_sightings(conn, sighted)
        return UpsertResult(
            new=len(new), updated=len(changed), unchanged=unchanged, duplicates=len(sighted)
        )

    def _stored_sightings(
        self, conn: Connection, rows: list[dict[str, Any]]
    ) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        for source, ids in _ids_by_source(rows).items():
            query = sa.select(sightings.c.source, sightings.c.external_id).where(
                sightings.c.source == source, sightings.c.external_id.in_(ids)
            )
            found.update((row[0], row[1]) for row in conn.execute(query))
        return found

    def _stored_stories(
        self, conn: Connection, rows: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, list[tuple[Any, str]]]]:
        """Return stored mentions that rows may repeat: by canonical URL, and by text hash."""
        urls = {r["canonical_url"] for r in rows if r["canonical_url"]}
        hashes = {r["content_hash"] for r in rows if _text_identifies_story(r)}
        by_url: dict[str, Any] = {}
        by_hash: dict[str, list[tuple[Any, str]]] = {}
        if not urls and not hashes:
            return by_url, by_hash
        c = mentions.c
        query = (
            sa.select(c.id, c.source, c.canonical_url, c.content_hash)
            .where(sa.or_(c.canonical_url.in_(urls), c.content_hash.in_(hashes)))
            .order_by(c.id)
        )
        for found in conn.execute(query):
            if found.canonical_url in urls:
                by_url.setdefault(found.canonical_url, found.id)
            if found.content_hash in hashes:
                by_hash.setdefault(found.content_hash, []).append((found.id, found.source))
        return by_url, by_hash

    def _insert_sightings(
        self, conn: Connection, sighted: list[tuple[dict[str, Any], int | dict[str, Any]]]
    ) -> None:
        # Originals inserted in this same batch have no id yet: look them up now.
        pending = [o for _, o in sighted if isinstance(o, dict)]
        ids: dict[tuple[str, str], int] = {}
        for source, external_ids in _ids_by_source(pending).items():
            query = sa.select(mentions.c.id, mentions.c.external_id).where(
                mentions.c.source == source, mentions.c.external_id.in_(external_ids)
            )
            ids.update({(source, row.external_id): row.id for row in conn.execute(query)})
        conn.execute(
            sa.insert(sightings),
            [
                {
                    "mention_id": ids[_key(original)] if isinstance(original, dict) else original,
                    "source": row["source"],
                    "external_id": row["external_id"],
                    "url": row["url"],
                    "seen_at": row["collected_at"],
                }
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
        self, conn: Connection, rows: list[dict[str, Any]]
    ) -> dict[tuple[str, str], tuple[Any, ...]]:
        columns = [mentions.c[name] for name in MUTABLE_COLUMNS]
        stored: dict[tuple[str, str], tuple[Any, ...]] = {}
        for source, ids in _ids_by_source(rows).items():
            query = sa.select(mentions.c.source, mentions.c.external_id, *columns).where(
                mentions.c.source == source, mentions.c.external_id.in_(ids)
            )
            for found in conn.execute(query):
                stored[(found[0], found[1])] = tuple(found[2:])
        return stored

    def _upsert_statement(self) -> Any:
        # Both dialects spell "insert ... on conflict do update" the same way.
        from sqlalchemy.dialects import postgresql, sqlite

        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        statement: Any = dialect_insert(mentions)
        changes = {name: statement.excluded[name] for name in MUTABLE_COLUMNS}
        changes["updated_at"] = statement.excluded.updated_at
        return statement.on_conflict_do_update(
            index_elements=["source", "external_id"], set_=changes
        )

    def count_mentions(self, query: MentionQuery = ALL_MENTIONS) -> int:
        """Return how many stored mentions match `query`."""
        statement = sa.select(sa.func.count()).select_from(mentions).where(*_conditions(query))
        with self.engine.connect() as conn:
            return int(conn.execute(statement).scalar_one())

    def daily_counts(self, query: MentionQuery = ALL_MENTIONS) -> pd.DataFrame:
        """Return one row per (day, source, label): mentions, summed compound and rating.

        Sums rather than means, so callers can re-aggregate over any grouping exactly.
        """
        c = mentions.c
        statement = (
            sa.select(
                c.published_day.label("day"),
                c.source,
                c.label,
                sa.func.count().label("mentions"),
                sa.func.sum(c.compound).label("compound_sum"),
                sa.func.sum(c.rating).label("rating_sum"),
                sa.func.count(c.rating).label("ratings"),
            )
            .where(*_conditions(query))
            .group_by(c.published_day, c.source, c.label)
            .order_by(c.published_day)
        )
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(statement).mappings().all())
        if frame.empty:
            return pd.DataFrame(
                columns=[
                    "day",
                    "source",
                    "label",
                    "mentions",
                    "compound_sum",
                    "rating_sum",
                    "ratings",
                ]
            )
        frame["day"] = pd.to_datetime(frame["day"])
        frame["rating_sum"] = frame["rating_sum"].astype(float).fillna(0.0)
        return frame

    def hourly_counts(self, query: MentionQuery = ALL_MENTIONS) -> pd.DataFrame:
        """Return one row per (UTC hour, source, label): mentions and summed compound and rating.

        Hours are the clusters the event study resamples: mentions arrive in bursts, so an
        hour, not a single mention, is the independent unit.
        """
        c = mentions.c
        if self.dialect == "postgresql":
            hour: Any = sa.func.date_trunc("hour", sa.func.timezone("UTC", c.published_at))
        else:  # stored as "YYYY-MM-DD HH:MM:SS...": the first 13 characters are the hour
            hour = sa.func.substr(sa.cast(c.published_at, sa.String), 1, 13)
        statement = (
            sa.select(
                hour.label("hour"),
                c.source,
                c.label,
                sa.func.count().label("mentions"),
                sa.func.sum(c.compound).label("compound_sum"),
                sa.func.sum(c.rating).label("rating_sum"),
                sa.func.count(c.rating).label("ratings"),
            )
            .where(*_conditions(query))
            .group_by(hour, c.source, c.label)
            .order_by(hour)
        )
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(statement).mappings().all())
        columns = ["hour", "source", "label", "mentions", "compound_sum", "rating_sum", "ratings"]
        if frame.empty:
            return pd.DataFrame(columns=columns)
        if self.dialect == "postgresql":
            frame["hour"] = pd.to_datetime(frame["hour"]).dt.tz_localize("UTC")
        else:
            frame["hour"] = pd.to_datetime(frame["hour"], format="%Y-%m-%d %H", utc=True)
        frame["compound_sum"] = frame["compound_sum"].astype(float)
        frame["rating_sum"] = frame["rating_sum"].astype(float).fillna(0.0)
        return frame[columns]

    def topic_counts(self, query: MentionQuery, topics: Sequence[str]) -> dict[str, int]:
        """Return how many mentions matching `query` carry each of `topics` (one query)."""
        c = mentions.c
        columns = [
            sa.func.sum(sa.case((c.topics.contains(f",{t},", autoescape=True), 1), else_=0)).label(
                t
            )
            for t in topics
        ]
        if not columns:
            return {}
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
            found = conn.execute(
                sa.select(mentions.c.source).distinct().order_by(mentions.c.source)
            )
            return list(found.scalars())

    def time_bounds(self) -> tuple[datetime, datetime] | None:
        """Return the first and last published_at stored, or None when empty."""
        c = mentions.c
        with self.engine.connect() as conn:
            first, last = conn.execute(
                sa.select(sa.func.min(c.published_at), sa.func.max(c.published_at))
            ).one()
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

    def last_fired(self, rule: str, brand: str) -> datetime | None:
        """Return when `rule` last fired for `brand`, the start of its cooldown."""
        c = alerts.c
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(c.fired_at)
                .where(c.rule == rule, c.brand == brand)
                .order_by(c.fired_at.desc())
                .limit(1)
            ).scalar_one_or_none()
        return found

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
                    error=run.error,
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


def _mention_row(mention: Mention) -> dict[str, Any]:
    if mention.label is None or mention.compound is None:
        raise ValueError(
            f"mention {mention.source}:{mention.external_id} reached the store unscored"
        )
    published: date = mention.published_at.date()
    return {
        "source": mention.source,
        "external_id": mention.external_id,
        "url": mention.url,
        "canonical_url": mention.canonical_url,
        "author": mention.author,
        "title": mention.title,
        "text": mention.text,
        "published_at": mention.published_at,
        "published_day": published,
        "collected_at": mention.collected_at,
        "updated_at": mention.collected_at,
        "score": mention.score,
        "comments": mention.comments,
        "rating": mention.rating,
        "followers": mention.followers,
        "engagement": mention.engagement,
        "compound": mention.compound,
        "label": mention.label,
        "topics": topics_to_db(mention.topics),
        "content_hash": mention.content_hash,
        "extra": mention.extra,
    }


def _key(row: dict[str, Any]) -> tuple[str, str]:
    return (row["source"], row["external_id"])


def _ids_by_source(rows: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for row in rows:
        grouped.setdefault(row["source"], []).append(row["external_id"])
    return grouped


# Short texts ("This.", "lol") repeat by chance; only longer ones identify a story.
MIN_STORY_TEXT = 40


def _text_identifies_story(row: dict[str, Any]) -> bool:
    return len(row["title"]) + len(row["text"]) >= MIN_STORY_TEXT


def _same_story(
    row: dict[str, Any],
    by_url: dict[str, Any],
    by_hash: dict[str, list[tuple[Any, str]]],
) -> Any:
    """Return the stored mention (id, or a row of this batch) `row` repeats, or None.

    The same canonical URL is the same story from any source. The same normalised text is
    the same story only from another source: within one source, two posts may say the
    same words and still be two people.
    """
    if row["canonical_url"] and row["canonical_url"] in by_url:
        return by_url[row["canonical_url"]]
    if _text_identifies_story(row):
        for original, source in by_hash.get(row["content_hash"], []):
            if source != row["source"]:
                return original
    return None


def _fingerprint(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in MUTABLE_COLUMNS)


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

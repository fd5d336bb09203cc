"""The store, on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from monitor.models import CollectionRun, Event, MentionQuery
from monitor.store import SCHEMA_VERSION, WRITE_COLUMNS, Store, meta, redact_url
from tests.conftest import make_mention

DAY = datetime(2024, 5, 1, tzinfo=UTC)


def test_upsert_inserts_then_changes_nothing_on_rerun(any_store: Store) -> None:
    mentions = [make_mention(external_id=f"a{i}") for i in range(3)]
    first = any_store.upsert_mentions(mentions)
    second = any_store.upsert_mentions(mentions)
    assert (first.new, first.updated, first.unchanged) == (3, 0, 0)
    assert (second.new, second.updated, second.unchanged) == (0, 0, 3)
    assert any_store.count_mentions() == 3


def test_engagement_is_updated_in_place_and_publication_time_kept(any_store: Store) -> None:
    original = make_mention(external_id="t3_x", score=10, comments=2, published_at=DAY)
    any_store.upsert_mentions([original])
    later = make_mention(
        external_id="t3_x", score=950, comments=40, published_at=DAY + timedelta(hours=5)
    )
    result = any_store.upsert_mentions([later])
    assert (result.new, result.updated) == (0, 1)
    row = any_store.mentions_frame().iloc[0]
    assert (row["score"], row["comments"], row["engagement"]) == (950, 40, 990)
    assert row["published_at"] == DAY  # a post does not move in time when its score grows
    assert any_store.count_mentions() == 1


def test_same_external_id_from_another_source_is_another_mention(any_store: Store) -> None:
    any_store.upsert_mentions(
        [
            make_mention(source="reddit", external_id="1", text="Northwind thread"),
            make_mention(source="news", external_id="1", text="Northwind headline"),
        ]
    )
    assert any_store.count_mentions() == 2


def test_duplicates_inside_one_batch_keep_the_last(any_store: Store) -> None:
    result = any_store.upsert_mentions(
        [make_mention(external_id="d", score=1), make_mention(external_id="d", score=7)]
    )
    assert result.new == 1
    assert any_store.mentions_frame().iloc[0]["score"] == 7


def test_timestamps_come_back_aware_utc(any_store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    any_store.upsert_mentions(
        [make_mention(published_at=datetime(2024, 5, 1, 14, tzinfo=plus_two))]
    )
    published = any_store.mentions_frame().iloc[0]["published_at"]
    assert published.tzinfo is not None
    assert published == datetime(2024, 5, 1, 12, tzinfo=UTC)
    first, last = any_store.time_bounds() or (None, None)
    assert first == last == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_unscored_mention_is_refused(any_store: Store) -> None:
    mention = make_mention(compound=None)
    mention.label = None
    with pytest.raises(ValueError, match="unscored"):
        any_store.upsert_mentions([mention])


def test_daily_counts_group_by_utc_day_source_and_label(any_store: Store) -> None:
    any_store.upsert_mentions(
        [
            make_mention(
                text="terrible breach, data leaked", published_at=DAY + timedelta(hours=1)
            ),
            make_mention(text="awful hack, furious", published_at=DAY + timedelta(hours=23)),
            make_mention(text="love the new app, great work", published_at=DAY + timedelta(days=1)),
            make_mention(source="news", text="branch opens Tuesday", published_at=DAY),
        ]
    )
    daily = any_store.daily_counts()
    reddit_day_one = daily[(daily["source"] == "reddit") & (daily["day"] == "2024-05-01")]
    assert reddit_day_one["label"].tolist() == ["negative"]
    assert reddit_day_one["mentions"].tolist() == [2]
    assert reddit_day_one["compound_sum"].iloc[0] < -1.0
    assert int(daily["mentions"].sum()) == 4


def test_filters_select_by_window_source_label_topic_and_text(any_store: Store) -> None:
    any_store.upsert_mentions(
        [
            make_mention(external_id="1", text="my credit card was compromised", published_at=DAY),
            make_mention(
                external_id="2", text="100% refund, thanks", published_at=DAY + timedelta(days=2)
            ),
            make_mention(
                external_id="3", source="news", text="Northwind hires a CFO", published_at=DAY
            ),
        ]
    )

    def ids(query: MentionQuery) -> set[str]:
        return set(any_store.mentions_frame(query)["external_id"])

    assert ids(MentionQuery(since=DAY + timedelta(days=1))) == {"2"}
    assert ids(MentionQuery(until=DAY + timedelta(days=1))) == {"1", "3"}
    assert ids(MentionQuery(sources=("news",))) == {"3"}
    assert ids(MentionQuery(labels=("negative",))) == {"1"}
    assert ids(MentionQuery(topics=("payment_cards",))) == {"1"}
    assert ids(MentionQuery(search="CREDIT")) == {"1"}
    # Wildcards in a search are literal characters, not patterns.
    assert ids(MentionQuery(search="100%")) == {"2"}
    assert ids(MentionQuery(search="_")) == set()


def test_pages_are_ordered_and_bounded(any_store: Store) -> None:
    any_store.upsert_mentions(
        [
            make_mention(external_id=str(i), score=i, published_at=DAY + timedelta(hours=i))
            for i in range(30)
        ]
    )
    newest = any_store.mentions_frame(limit=10)
    assert newest["external_id"].tolist() == [str(i) for i in range(29, 19, -1)]
    second_page = any_store.mentions_frame(limit=10, offset=10)
    assert second_page["external_id"].tolist() == [str(i) for i in range(19, 9, -1)]
    top = any_store.mentions_frame(order_by="engagement", descending=True, limit=3)
    assert top["engagement"].tolist() == [29, 28, 27]
    with pytest.raises(ValueError, match="cannot sort"):
        any_store.mentions_frame(order_by="id; DROP TABLE mentions")


def test_iter_mentions_streams_everything_in_time_order(any_store: Store) -> None:
    any_store.upsert_mentions(
        [make_mention(external_id=str(i), published_at=DAY - timedelta(hours=i)) for i in range(25)]
    )
    chunks = list(any_store.iter_mentions(chunk=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    times = [t for c in chunks for t in c["published_at"]]
    assert times == sorted(times)


def test_data_version_grows_only_when_mentions_change(any_store: Store) -> None:
    start = any_store.data_version()
    mention = make_mention(external_id="v")
    any_store.upsert_mentions([mention])
    after_insert = any_store.data_version()
    any_store.upsert_mentions([mention])
    assert after_insert > start
    assert any_store.data_version() == after_insert


def test_events_are_replaced_from_config(any_store: Store) -> None:
    first = [
        Event(DAY, "Breach disclosed", "disclosure"),
        Event(DAY + timedelta(days=2), "Apology", "response"),
    ]
    any_store.replace_events(first)
    any_store.replace_events(first[:1])
    assert any_store.events() == first[:1]


def test_collection_runs_record_outcome_and_reason(any_store: Store) -> None:
    run = any_store.start_run("news")
    run.status, run.new, run.error = "failed", 3, "HTTP 500 from https://feeds.example/rss"
    any_store.finish_run(run)
    ok = any_store.start_run("reddit")
    ok.status = "ok"
    any_store.finish_run(ok)
    runs = any_store.recent_runs()
    assert [r.source for r in runs] == ["reddit", "news"]
    failed: CollectionRun = runs[1]
    assert (failed.status, failed.new, failed.error) == (
        "failed",
        3,
        "HTTP 500 from https://feeds.example/rss",
    )
    assert failed.finished_at is not None and failed.finished_at >= failed.started_at


def test_schema_version_is_recorded_and_reopening_keeps_data(any_store: Store) -> None:
    any_store.upsert_mentions([make_mention()])
    reopened = Store(any_store.url)
    assert reopened.schema_version() == SCHEMA_VERSION
    assert reopened.count_mentions() == 1
    reopened.close()


def test_a_version_2_database_gets_the_partial_story_url_index(any_store: Store) -> None:
    url = "https://news.example/northwind-breach"
    any_store.upsert_mentions([make_mention(source="news", external_id="a", canonical_url=url)])
    with any_store.engine.begin() as conn:  # as version 2 left it
        conn.execute(sa.text("DROP INDEX ix_mentions_story_url"))
        conn.execute(sa.text("CREATE INDEX ix_mentions_canonical_url ON mentions (canonical_url)"))
        conn.execute(sa.update(meta).where(meta.c.key == "schema_version").values(value="2"))
    reopened = Store(any_store.url)
    assert reopened.schema_version() == SCHEMA_VERSION
    indexes = {ix["name"]: ix for ix in sa.inspect(reopened.engine).get_indexes("mentions")}
    assert "ix_mentions_canonical_url" not in indexes and "ix_mentions_story_url" in indexes
    again = make_mention(source="news", external_id="b", text="Other words", canonical_url=url)
    assert reopened.upsert_mentions([again]).duplicates == 1  # still found by its URL
    reopened.close()


def test_a_version_3_database_loses_the_daily_index_and_counts_the_same(
    any_store: Store,
) -> None:
    any_store.upsert_mentions(
        [
            make_mention(external_id="a", text="Northwind Bank leaked my card number"),
            make_mention(external_id="b", text="Northwind Bank card replaced, thanks"),
            make_mention(external_id="c", text="Northwind Bank opened a new branch"),
        ]
    )
    searched = MentionQuery(search="card")
    before = any_store.daily_counts(searched)
    with any_store.engine.begin() as conn:  # as version 3 left it
        conn.execute(
            sa.text(
                "CREATE INDEX ix_mentions_day_source_label "
                "ON mentions (published_day, source, label, compound)"
            )
        )
        conn.execute(sa.update(meta).where(meta.c.key == "schema_version").values(value="3"))
    reopened = Store(any_store.url)
    assert reopened.schema_version() == SCHEMA_VERSION
    indexes = {ix["name"] for ix in sa.inspect(reopened.engine).get_indexes("mentions")}
    assert "ix_mentions_day_source_label" not in indexes
    assert "ix_mentions_published_cover" in indexes  # what time ranges and rules read
    after = reopened.daily_counts(searched)
    assert after["mentions"].sum() == 2
    pd.testing.assert_frame_equal(after, before)
    reopened.close()


def test_a_database_from_a_newer_version_is_refused(any_store: Store) -> None:
    with any_store.engine.begin() as conn:
        conn.execute(sa.update(meta).where(meta.c.key == "schema_version").values(value="999"))
    with pytest.raises(RuntimeError, match="newer than this program"):
        Store(any_store.url)


def test_sqlite_uses_wal_and_a_busy_timeout(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_sqlite_folder_is_created(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Store(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'm.db'}")
    assert (tmp_path / "nested" / "dir" / "m.db").exists()
    db.close()


def test_printed_urls_hide_the_password() -> None:
    shown = redact_url("postgresql://crisis:hunter2-secret@db.internal/monitor")
    assert "hunter2-secret" not in shown
    assert "db.internal/monitor" in shown
    assert "hunter2" not in repr(Store.__new__(Store).__class__)  # the class repr has no URL either


STORY = "Northwind Bank confirms that card data of 2.3 million customers was exposed"


def test_same_link_from_another_feed_is_a_sighting_not_a_mention(any_store: Store) -> None:
    url = "https://news.example/northwind-breach"
    first = make_mention(source="news", external_id="google-1", text=STORY, canonical_url=url)
    again = make_mention(
        source="news", external_id="bing-9", text=STORY + " (updated)", canonical_url=url
    )
    assert any_store.upsert_mentions([first]).new == 1
    result = any_store.upsert_mentions([again])
    assert (result.new, result.duplicates) == (0, 1)
    assert any_store.count_mentions() == 1
    assert any_store.count_sightings() == 1
    rerun = any_store.upsert_mentions([first, again])
    assert (rerun.new, rerun.duplicates, rerun.unchanged) == (0, 0, 2)
    assert any_store.count_sightings() == 1


def test_same_text_from_another_source_is_a_sighting(any_store: Store) -> None:
    result = any_store.upsert_mentions(
        [
            make_mention(source="news", external_id="n1", text=STORY),
            make_mention(source="hackernews", external_id="h1", text=STORY.upper() + "!"),
        ]
    )
    assert (result.new, result.duplicates) == (1, 1)
    assert any_store.count_sightings() == 1


def test_same_text_within_one_source_is_two_people(any_store: Store) -> None:
    result = any_store.upsert_mentions(
        [make_mention(source="twitter", external_id=str(i), text=STORY) for i in range(3)]
    )
    assert result.new == 3


def test_short_texts_are_never_merged(any_store: Store) -> None:
    result = any_store.upsert_mentions(
        [
            make_mention(source="reddit", text="Northwind again"),
            make_mention(source="news", text="Northwind again"),
        ]
    )
    assert result.new == 2


def test_cursor_is_saved_with_the_data_it_covers(any_store: Store) -> None:
    assert any_store.get_cursor("news") == {}
    any_store.upsert_mentions(
        [make_mention(source="news")], cursor=("news", {"etag": {"u": "W/1"}})
    )
    assert any_store.get_cursor("news") == {"etag": {"u": "W/1"}}


def test_a_failed_write_leaves_neither_mentions_nor_cursor(any_store: Store) -> None:
    good = make_mention(source="news", external_id="ok")
    bad = make_mention(source="news", external_id="bad")
    bad.label = None  # refused by the store, after the good one was prepared
    with pytest.raises(ValueError, match="unscored"):
        any_store.upsert_mentions([good, bad], cursor=("news", {"since": "later"}))
    assert any_store.count_mentions() == 0
    assert any_store.get_cursor("news") == {}


def test_hourly_counts_group_by_utc_hour(any_store: Store) -> None:
    any_store.upsert_mentions(
        [
            make_mention(
                external_id="a",
                text="data breach, furious",
                published_at=DAY + timedelta(minutes=5),
            ),
            make_mention(
                external_id="b", text="data breach, angry", published_at=DAY + timedelta(minutes=59)
            ),
            make_mention(
                external_id="c", text="great support today", published_at=DAY + timedelta(hours=1)
            ),
            make_mention(
                external_id="d", text="ok", published_at=DAY + timedelta(hours=1), rating=4.0
            ),
        ]
    )
    hourly = any_store.hourly_counts()
    first = hourly[hourly["hour"] == DAY]
    assert first["label"].tolist() == ["negative"] and first["mentions"].tolist() == [2]
    assert str(hourly["hour"].dt.tz) == "UTC"
    second = hourly[hourly["hour"] == DAY + timedelta(hours=1)]
    assert int(second["mentions"].sum()) == 2
    assert float(second["rating_sum"].sum()) == 4.0 and int(second["ratings"].sum()) == 1


def test_topic_counts(any_store: Store) -> None:
    any_store.upsert_mentions(
        [
            make_mention(text="my credit card was stolen in the breach"),
            make_mention(text="the breach again"),
            make_mention(text="nice weather"),
        ]
    )
    counts = any_store.topic_counts(MentionQuery(), ["breach", "payment_cards", "legal"])
    assert counts == {"breach": 2, "payment_cards": 1, "legal": 0}


def test_alerts_are_stored_listed_and_acknowledged(any_store: Store) -> None:
    from monitor.models import Alert

    evidence = [
        {"source": "reddit", "url": "https://www.reddit.com/r/x/comments/1/", "text": "furious"}
    ]
    first = any_store.add_alert(
        Alert(
            "Negative surge",
            "Northwind Bank",
            DAY,
            "high",
            0.52,
            0.4,
            "52% negative",
            evidence,
            kind="negative_share",
        )
    )
    later = any_store.add_alert(
        Alert(
            "Volume spike", "Northwind Bank", DAY + timedelta(hours=3), "medium", 4.1, 3.0, "z 4.1"
        )
    )
    assert [a.rule for a in any_store.alerts()] == ["Volume spike", "Negative surge"]
    assert any_store.alerts()[1].evidence == evidence
    assert any_store.fired_times("Negative surge", "Northwind Bank") == [DAY]
    assert any_store.fired_times("Negative surge", "Other brand") == []
    assert first.id is not None and later.id is not None
    assert any_store.acknowledge_alert(first.id, "Statement drafted, legal looped in")
    assert not any_store.acknowledge_alert(9999)
    open_alerts = any_store.alerts(unacknowledged=True)
    assert [a.rule for a in open_alerts] == ["Volume spike"]
    handled = any_store.alerts(until=DAY + timedelta(hours=1))[0]
    assert (
        handled.ack_note == "Statement drafted, legal looped in"
        and handled.acknowledged_at is not None
    )
    again = DAY + timedelta(hours=7)
    any_store.add_alert(Alert("Negative surge", "Northwind Bank", again, "high", 0.5, 0.4, "50%"))
    assert any_store.fired_times("Negative surge", "Northwind Bank", 5) == [DAY, again]
    assert any_store.fired_times("Negative surge", "Northwind Bank") == [again]


def test_a_run_left_running_by_a_killed_process_is_marked_interrupted(store: Store) -> None:
    killed = store.start_run("news")  # its process dies: finish_run is never called
    other = store.start_run("reddit")
    store.start_run("news")  # the next run of the same source
    runs = {run.id: run for run in store.recent_runs(10)}
    assert runs[killed.id].status == "interrupted"
    assert "killed or crashed" in runs[killed.id].error
    assert runs[other.id].status == "running"  # another source's run is left alone


def _temporary_files_open() -> list[str]:
    """Return the SQLite temporary files this process has open (Linux names them in /proc)."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed since it was listed
        if "etilqs_" in target:  # the prefix SQLite gives its temporary files
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
def test_an_import_sized_upsert_writes_no_temporary_files(store: Store, tmp_path: Path) -> None:
    # Each multi-row statement in a transaction keeps a journal to undo it should it fail
    # half-way; spilled to a temporary file, it was more than half of an import's writes.
    # First, that such a file is seen where SQLite's defaults make one, so the check below
    # can fail on this system.
    control = sqlite3.connect(tmp_path / "control.db")
    control.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)")
    control.execute("BEGIN")
    control.executemany(
        "INSERT INTO t VALUES (?, ?)", [(i, f"{i}" + "x" * 600) for i in range(2000)]
    )
    control.execute("UPDATE t SET v = v || 'y'")  # may fail half-way: journalled
    assert _temporary_files_open() != []
    control.execute("ROLLBACK")
    control.close()

    seen: list[str] = []

    @sa.event.listens_for(store.engine, "after_cursor_execute")
    def look(*_: object) -> None:
        seen.extend(_temporary_files_open())

    long_text = "Northwind Bank leaked card numbers and nobody answers the phone. " * 8
    mentions = [make_mention(external_id=f"t{i}", text=f"{long_text} #{i}") for i in range(2000)]
    result = store.upsert_mentions(mentions)
    again = store.upsert_mentions([make_mention(external_id=f"t{i}", score=i) for i in range(2000)])
    assert (result.new, again.updated) == (2000, 2000)
    assert seen == []


def test_reads_after_an_upsert_keep_the_default_temporary_storage(store: Store) -> None:
    # In memory only while writing: a read's large sort must still spill to a file rather
    # than grow in memory, after a write that succeeded and after one that failed.
    def temp_store_of_pooled_connections() -> set[int]:
        # Every connection the pool holds, taken at once (it hands them out in turn).
        held = [store.engine.connect() for _ in range(store.engine.pool.size())]  # type: ignore[attr-defined]
        try:
            return {int(c.exec_driver_sql("PRAGMA temp_store").scalar_one()) for c in held}
        finally:
            for conn in held:
                conn.close()

    default = temp_store_of_pooled_connections()
    assert len(default) == 1
    store.upsert_mentions([make_mention(external_id="ok")])
    assert temp_store_of_pooled_connections() == default
    unscored = make_mention(external_id="bad")
    unscored.label = None
    with pytest.raises(ValueError, match="unscored"):
        store.upsert_mentions([unscored])
    (row,) = store.prepare([make_mention(external_id="refused")])
    at = WRITE_COLUMNS.index("label")
    with pytest.raises(sa.exc.IntegrityError):  # the database refuses it mid-transaction
        store.upsert_prepared([(*row[:at], None, *row[at + 1 :])])
    assert temp_store_of_pooled_connections() == default
    assert store.count_mentions() == 1

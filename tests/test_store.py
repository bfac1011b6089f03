"""The SQLite store: migrations, atomic poll records, the outbox."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.adapters.store.sqlite import SCHEMA_VERSION, SqliteStore, StoreError
from monitor.model import Article
from monitor.state import Delivery, FollowUp, MatchRecord, SourceState

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def delivery(id: str, target: str = "hook") -> Delivery:
    return Delivery(id, "a1", "rule", target, "title", "body", NOW)


def test_new_database_is_migrated_and_uses_wal(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "sub" / "m.db"))

    assert store.schema_version() == SCHEMA_VERSION
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    SqliteStore(str(path)).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(StoreError, match="newer"):
        SqliteStore(str(path))


def test_a_poll_is_recorded_at_once_and_survives_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "m.db")
    store = SqliteStore(path)
    state = SourceState("s", "https://example.com/f", etag='W/"1"', last_ok_at=NOW)
    item = Article(id="a1", url="https://example.com/a", source="s", title="A", published=NOW)

    store.save_poll(state, [item], [MatchRecord("a1", "rule", ("A",), NOW)], [delivery("d1")], NOW)
    store.close()
    reopened = SqliteStore(path)

    assert reopened.source_state("s") == state
    assert reopened.known_ids(["a1", "zz"]) == {"a1"}
    assert [d.id for d in reopened.pending_deliveries(NOW)] == ["d1"]
    assert list(reopened.articles_since(NOW - timedelta(days=1))) == [item]
    assert reopened.recent_matches()[0][0].terms == ("A",)


def test_a_failed_poll_record_leaves_nothing_behind(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "m.db"))
    item = Article(id="a1", url="u", source="s", title="A")
    broken = MatchRecord("missing-article", "rule", (), NOW)

    with pytest.raises(sqlite3.IntegrityError):
        store.save_poll(SourceState("s", "u"), [item], [broken], [], NOW)

    assert store.source_state("s") is None
    assert store.known_ids(["a1"]) == set()


def test_enqueueing_the_same_delivery_twice_keeps_one(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "m.db"))
    state = SourceState("s", "u")
    store.save_poll(state, [], [], [delivery("d1")], NOW)
    store.save_poll(state, [], [], [delivery("d1")], NOW)

    assert len(store.pending_deliveries(NOW)) == 1


def test_failed_deliveries_wait_for_their_retry_time_unless_asked(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "m.db"))
    store.save_poll(SourceState("s", "u"), [], [], [delivery("d1"), delivery("d2")], NOW)

    store.mark_failed("d1", "down", NOW + timedelta(minutes=1))
    store.mark_delivered("d2", NOW)

    assert store.pending_deliveries(NOW) == []
    retried = store.pending_deliveries(NOW, due_only=False)
    assert [(d.id, d.attempts, d.last_error) for d in retried] == [("d1", 1, "down")]
    assert [d.id for d in store.pending_deliveries(NOW + timedelta(minutes=1))] == ["d1"]


def test_dead_deliveries_leave_the_queue_but_stay_visible(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "m.db"))
    store.save_poll(SourceState("s", "u"), [], [], [delivery("d1"), delivery("d2")], NOW)

    store.mark_dead("d1", "HTTP 400", NOW)

    assert [d.id for d in store.pending_deliveries(NOW, due_only=False)] == ["d2"]
    assert [(d.id, d.last_error) for d in store.dead_deliveries()] == [("d1", "HTTP 400")]


def test_a_follow_up_is_put_off_by_each_copy_and_queued_once(store: SqliteStore) -> None:
    state = SourceState("s", "https://example.com/f")
    later = FollowUp("rule", "story", "hook", NOW + timedelta(minutes=40))
    store.save_poll(state, [], [], [], NOW, follow_ups=[replace(later, due_at=NOW)])
    store.save_poll(state, [], [], [], NOW, follow_ups=[later])
    store.save_poll(state, [], [], [], NOW, follow_ups=[replace(later, due_at=NOW)])

    assert store.due_follow_ups(NOW + timedelta(minutes=39)) == []
    assert store.due_follow_ups(later.due_at) == [later]
    queued_at = later.due_at
    assert store.queue_follow_up(later, delivery("f1"), queued_at)
    assert not store.queue_follow_up(later, delivery("f2"), queued_at)
    store.save_poll(state, [], [], [], NOW, follow_ups=[later])

    assert store.due_follow_ups(NOW + timedelta(days=1)) == []
    assert [d.id for d in store.pending_deliveries(queued_at)] == ["f1"]


def test_a_follow_up_put_off_after_it_was_read_is_not_queued_early(store: SqliteStore) -> None:
    state = SourceState("s", "https://example.com/f")
    due = FollowUp("rule", "story", "hook", NOW)
    store.save_poll(state, [], [], [], NOW, follow_ups=[due])
    [read] = store.due_follow_ups(NOW)
    store.save_poll(
        state, [], [], [], NOW, follow_ups=[replace(due, due_at=NOW + timedelta(hours=1))]
    )

    assert not store.queue_follow_up(read, delivery("f1"), NOW)
    store.drop_follow_up(read)
    assert store.due_follow_ups(NOW + timedelta(days=1)) == []
    assert store.pending_deliveries(NOW, due_only=False) == []

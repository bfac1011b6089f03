"""The PostgreSQL store's short paths for a poll (docs/design.md, Cluster): the claim's row
serves the poll's state read, a fenced save gives the lease back in the same statement, a
host turn is one call; with the lease and fencing rules of tests/test_cluster.py intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from monitor.adapters.store.postgres import PostgresStore
from monitor.adapters.store.postgres_cluster import BUSY_RETRY
from monitor.errors import LeaseLost
from monitor.state import MatchRecord, SourceState

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def lease_of(url: str, name: str) -> tuple[object, ...]:
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(
            "SELECT lease_owner, lease_until, polled_by FROM sources WHERE name = %s", (name,)
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_a_304_polls_store_calls_are_two_statements(
    postgres_pair: tuple[PostgresStore, PostgresStore],
) -> None:
    first, _ = postgres_pair
    first.save_state(SourceState("s", "u", etag='"v1"'))
    before = first.queries
    assert first.claim_poll("s", "u", NOW)

    state = first.source_state("s")  # served by the claim's row
    assert state is not None and state.etag == '"v1"'
    first.save_state(SourceState("s", "u", etag='"v2"', next_fetch_at=NOW + timedelta(hours=1)))
    first.release_poll("s")  # the save gave the lease back already

    assert first.queries - before == 2  # the claim, the fenced save
    saved = first.source_state("s")  # read from the database again
    assert saved is not None and saved.etag == '"v2"'


def test_a_saved_poll_frees_its_lease_and_a_stale_save_is_still_refused(
    postgres_pair: tuple[PostgresStore, PostgresStore], postgres_url: str
) -> None:
    first, second = postgres_pair
    assert first.claim_poll("s", "u", NOW)
    first.save_poll(SourceState("s", "u", etag="first"), [], [], [], NOW)
    owner, until, polled_by = lease_of(postgres_url, "s")
    assert (owner, until, polled_by) == (None, None, first.instance_name)

    assert second.claim_poll("s", "u", NOW, due_only=False)  # free at once, not in 45 s
    with pytest.raises(LeaseLost):  # the first's token is behind the second's claim
        first.save_state(SourceState("s", "u", etag="stale"))
    first.release_poll("s")
    assert lease_of(postgres_url, "s")[0] == second.instance_name  # not the first's to free
    second.release_poll("s")

    state = second.source_state("s")
    assert state is not None and state.etag == "first"


def test_a_save_that_rolls_back_keeps_the_release(
    postgres_pair: tuple[PostgresStore, PostgresStore], postgres_url: str
) -> None:
    first, _ = postgres_pair
    assert first.claim_poll("s", "u", NOW)
    orphan = MatchRecord("no-such-article", "rule", ("x",), NOW)
    with pytest.raises(psycopg.IntegrityError):  # the match's article is missing
        first.save_poll(SourceState("s", "u"), [], [orphan], [], NOW)
    assert lease_of(postgres_url, "s")[0] == first.instance_name  # the lease rolled back too

    first.release_poll("s")
    assert lease_of(postgres_url, "s")[0] is None


def test_a_host_turn_is_one_statement_and_keeps_the_gap_and_the_slots(
    postgres_pair: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = postgres_pair
    turns = [first.host_turns(), second.host_turns()]
    before = first.queries

    turn, wait = turns[0].try_start("h.example", 2, 0)
    assert turn is not None and wait == 0.0
    assert first.queries - before == 1
    other, _ = turns[1].try_start("h.example", 2, 0)
    assert other is not None and other != turn  # the second slot, to the other instance
    assert turns[0].try_start("h.example", 2, 0) == (None, BUSY_RETRY)  # both in flight

    turns[0].finish("h.example", turn)
    again, _ = turns[1].try_start("h.example", 2, 3600)
    assert again == turn  # the slot freed, taken by the other instance
    held, wait = turns[0].try_start("h.example", 2, 0)
    assert held is None and 3500 < wait <= 3600  # the gap the last start asked for

"""What several instances sharing one PostgreSQL database need: the instances table with
heartbeats; poll leases taken with FOR UPDATE SKIP LOCKED, with an expiry and a fencing
counter; outbox claims; digests closed once per period.

Lease and claim expiry use the database's clock (`clock_timestamp()`), so instances on
machines whose clocks disagree still agree on when a lease has expired; due times are the
service's (`now`), as it wrote them.
"""

from __future__ import annotations

import contextlib
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from monitor.adapters.store.postgres_schema import (
    MIGRATION_LOCK,
    STATE_COLUMNS,
    Row,
    delivery_of,
    state_of,
    state_values,
    utc,
)
from monitor.errors import LeaseLost
from monitor.state import Delivery, InstanceInfo, SourceState

if TYPE_CHECKING:
    import psycopg

    from monitor.adapters.store.postgres import PostgresStore

__all__ = [
    "LEASE",
    "HostTurns",
    "claim_deliveries",
    "claim_poll",
    "fenced_save",
    "heartbeat",
    "instances",
    "polled_by",
    "register_instance",
    "release_poll",
    "save_digest_once",
    "unregister_instance",
]

# How long a lease or claim lasts unless renewed by a heartbeat (every HEARTBEAT): an
# instance killed with -9 gives its work up within this.
LEASE = timedelta(seconds=45)
STORY_LOCK = MIGRATION_LOCK + 1
# A host's slot is freed when its request ends; if its instance dies, after this (a
# request's whole deadline is 60 s).
TURN_HELD = timedelta(seconds=90)
BUSY_RETRY = 0.05  # seconds before asking again when all of a host's slots are busy
# Instances not heard of for this long are forgotten (`monitor status` lists the others).
FORGET_AFTER = timedelta(days=7)


def register_instance(store: PostgresStore) -> None:
    with store.faults(), store._tx() as cur:
        store._run(
            cur,
            "DELETE FROM instances WHERE heartbeat_at < clock_timestamp() - %s",
            (FORGET_AFTER,),
        )
        store._run(
            cur,
            "INSERT INTO instances (name, host, pid, started_at, heartbeat_at)"
            " VALUES (%s, %s, %s, clock_timestamp(), clock_timestamp())",
            (store.instance_name, socket.gethostname(), os.getpid()),
        )
    store.registered = True


def heartbeat(store: PostgresStore) -> None:
    """Say this instance is alive and renew its leases and claims."""
    me = store.instance_name
    with store.faults(), store._tx() as cur:
        store._run(
            cur,
            "UPDATE instances SET heartbeat_at = clock_timestamp(), stopped_at = NULL"
            " WHERE name = %s",
            (me,),
        )
        store._run(
            cur,
            "UPDATE sources SET lease_until = clock_timestamp() + %s WHERE lease_owner = %s",
            (LEASE, me),
        )
        store._run(
            cur,
            "UPDATE outbox SET claim_until = clock_timestamp() + %s WHERE claim_owner = %s"
            " AND delivered_at IS NULL AND dead_at IS NULL",
            (LEASE, me),
        )


def unregister_instance(store: PostgresStore) -> None:
    """A clean stop: mark the instance stopped and give back its leases and claims."""
    me = store.instance_name
    with store._tx() as cur:
        store._run(
            cur, "UPDATE instances SET stopped_at = clock_timestamp() WHERE name = %s", (me,)
        )
        store._run(
            cur,
            "UPDATE sources SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = %s",
            (me,),
        )
        store._run(
            cur,
            "UPDATE outbox SET claim_owner = NULL, claim_until = NULL WHERE claim_owner = %s",
            (me,),
        )
    store.registered = False


def claim_poll(
    store: PostgresStore,
    name: str,
    url: str,
    now: datetime,
    due_only: bool,
    unpolled_since: datetime | None = None,
) -> bool:
    """Lease the source (a row for it made first if it has none): free, expired or ours,
    and with `due_only` still due; a row another instance is claiming is skipped, not
    waited for. The fencing counter moves on with each claim. One statement in the usual
    case; the row it returns serves the poll's first state read (`store.claimed`)."""
    claim = (
        "UPDATE sources SET lease_owner = %(me)s,"
        " lease_until = clock_timestamp() + %(lease)s, lease_token = lease_token + 1"
        " WHERE name = (SELECT name FROM sources WHERE name = %(name)s"
        " AND (lease_owner IS NULL OR lease_owner = %(me)s"
        "      OR lease_until < clock_timestamp())"
        " AND (NOT %(due_only)s OR next_fetch_at IS NULL OR next_fetch_at <= %(now)s)"
        " AND (%(since)s::timestamptz IS NULL OR last_fetch_at IS NULL"
        "      OR last_fetch_at < %(since)s)"
        " FOR UPDATE SKIP LOCKED) RETURNING *"
    )
    params = {"me": store.instance_name, "lease": LEASE, "name": name, "now": now,
              "due_only": due_only, "since": unpolled_since}  # fmt: skip
    with store.faults():
        rows, _ = store._auto(claim, params)
        if not rows:  # taken, not due, or a source with no row yet: make it, try again
            _, made = store._auto(
                "INSERT INTO sources (name, url) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                (name, url),
            )
            if made:
                rows, _ = store._auto(claim, params)
    if not rows:
        return False
    store.leases[name] = int(rows[0]["lease_token"])
    store.released.discard(name)
    store.claimed[name] = state_of(rows[0])
    return True


def fenced_save(store: PostgresStore, cur: psycopg.Cursor[Row] | None, state: SourceState) -> None:
    """Save the state of a source this instance leased, in one statement that also ends
    the lease (the save is a poll's last write; `release_poll` then has nothing to send).
    Refused (LeaseLost; inside `cur`'s transaction, which rolls back) if the lease has been
    taken over since it was claimed: the fencing token no longer matches."""
    token = store.leases[state.name]
    sets = ", ".join(f"{column} = %s" for column in STATE_COLUMNS[1:])
    sql = (
        f"UPDATE sources SET {sets}, polled_by = %s,"  # noqa: S608
        " lease_owner = NULL, lease_until = NULL WHERE name = %s AND lease_token = %s"
    )
    params = (*state_values(state)[1:], store.instance_name, state.name, token)
    if cur is None:
        with store.faults():
            _, count = store._auto(sql, params)
    else:
        count = store._run(cur, sql, params)
    if count != 1:
        store.leases.pop(state.name, None)
        raise LeaseLost(
            f"{state.name}: this instance's lease was taken over by another; its poll is not saved"
        )


def release_poll(store: PostgresStore, name: str) -> None:
    token = store.leases.pop(name, None)
    store.claimed.pop(name, None)
    if token is None or name in store.released:
        store.released.discard(name)
        return
    with store.faults():
        store._auto(
            "UPDATE sources SET lease_owner = NULL, lease_until = NULL"
            " WHERE name = %s AND lease_token = %s",
            (name, token),
        )


def claim_deliveries(store: PostgresStore, now: datetime, due_only: bool) -> list[Delivery]:
    """Claim the pending deliveries no other live instance holds, oldest first."""
    with store.faults(), store._tx() as cur:
        store._run(
            cur,
            "UPDATE outbox o SET claim_owner = %(me)s,"
            " claim_until = clock_timestamp() + %(lease)s"
            " FROM (SELECT id FROM outbox WHERE delivered_at IS NULL AND dead_at IS NULL"
            " AND (NOT %(due_only)s OR next_attempt_at <= %(now)s)"
            " AND (claim_owner IS NULL OR claim_owner = %(me)s"
            "      OR claim_until < clock_timestamp())"
            " FOR UPDATE SKIP LOCKED) c WHERE o.id = c.id RETURNING o.id",
            {"me": store.instance_name, "lease": LEASE, "now": now, "due_only": due_only},
        )
        ids = [row["id"] for row in cur.fetchall()]
        if not ids:
            return []
        store._run(
            cur,
            "SELECT o.*, a.url, a.title AS article_title FROM outbox o"
            " LEFT JOIN articles a ON a.id = o.article_id WHERE o.id = ANY(%s)"
            " ORDER BY o.created_at, o.seq",
            (ids,),
        )
        return [delivery_of(row) for row in cur.fetchall()]


def save_digest_once(
    store: PostgresStore,
    cur: psycopg.Cursor[Row],
    rule: str,
    covered_until: datetime,
    expected: datetime | None,
) -> bool:
    """Move the rule's coverage from `expected` to `covered_until`; False if another
    instance has moved it already (its digest for the period is the one queued)."""
    if expected is None:
        return bool(
            store._run(
                cur,
                "INSERT INTO digests (rule, covered_until) VALUES (%s, %s)"
                " ON CONFLICT (rule) DO NOTHING",
                (rule, covered_until),
            )
        )
    return bool(
        store._run(
            cur,
            "UPDATE digests SET covered_until = %s WHERE rule = %s AND covered_until = %s",
            (covered_until, rule, expected),
        )
    )


def instances(store: PostgresStore) -> list[InstanceInfo]:
    with store.faults():
        rows = store._all(
            "SELECT i.*, (SELECT count(*) FROM sources s WHERE s.lease_owner = i.name"
            " AND s.lease_until > clock_timestamp()) AS leases"
            " FROM instances i ORDER BY i.heartbeat_at DESC"
        )
    return [
        InstanceInfo(
            r["name"], r["host"], r["pid"], r["started_at"].astimezone(UTC),
            r["heartbeat_at"].astimezone(UTC), int(r["leases"]), utc(r["stopped_at"]),
        )
        for r in rows
    ]  # fmt: skip


class StoryLock:
    """A session advisory lock on a connection of its own, held from a poll's story
    grouping to the end of its save: instances group stories one at a time."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.conn: psycopg.Connection[Row] | None = None

    def __enter__(self) -> None:
        with self.store.faults():
            conn = self.store.pool.getconn()
            try:
                conn.execute("SELECT pg_advisory_lock(%s)", (STORY_LOCK,))
            except BaseException:
                self.store.pool.putconn(conn)
                raise
            self.conn = conn

    def __exit__(self, *exc: object) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            with contextlib.suppress(Exception):  # a broken connection frees it anyway
                conn.execute("SELECT pg_advisory_unlock(%s)", (STORY_LOCK,))
        finally:
            self.store.pool.putconn(conn)


class HostTurns:
    """Per-host manners across instances (monitor.ports.HostTurns): the host's
    `host_starts` row, locked, serialises the decision; a slot is held until the request
    ends, or for TURN_HELD at most if its instance dies."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def try_start(self, host: str, slots: int, gap: float) -> tuple[str | None, float]:
        """One call of the schema's monitor_host_turn (postgres_schema), one round trip."""
        store = self.store
        with store.faults():
            rows, _ = store._auto(
                "SELECT o_slot, o_wait FROM monitor_host_turn(%s, %s, %s, %s, %s, %s)",
                (host, slots, timedelta(seconds=gap), store.instance_name, TURN_HELD, BUSY_RETRY),
            )
        slot, wait = rows[0]["o_slot"], rows[0]["o_wait"]
        if slot is None:
            return None, float(wait)
        return str(slot), 0.0

    def finish(self, host: str, turn: str) -> None:
        store = self.store
        with store.faults():
            store._auto(
                "UPDATE host_turns SET holder = NULL, until = NULL"
                " WHERE host = %s AND slot = %s AND holder = %s",
                (host, int(turn), store.instance_name),
            )


def polled_by(store: PostgresStore) -> dict[str, str]:
    with store.faults():
        rows = store._all("SELECT name, polled_by FROM sources WHERE polled_by IS NOT NULL")
    return {row["name"]: row["polled_by"] for row in rows}

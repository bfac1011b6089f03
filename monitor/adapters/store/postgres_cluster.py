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

from monitor.adapters.store.postgres_schema import MIGRATION_LOCK, Row, delivery_of, utc
from monitor.errors import LeaseLost
from monitor.state import Delivery, InstanceInfo

if TYPE_CHECKING:
    import psycopg

    from monitor.adapters.store.postgres import PostgresStore

__all__ = [
    "LEASE",
    "HostTurns",
    "claim_deliveries",
    "claim_poll",
    "fence",
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
    waited for. The fencing counter moves on with each claim."""
    claim = (
        "UPDATE sources SET lease_owner = %(me)s,"
        " lease_until = clock_timestamp() + %(lease)s, lease_token = lease_token + 1"
        " WHERE name = (SELECT name FROM sources WHERE name = %(name)s"
        " AND (lease_owner IS NULL OR lease_owner = %(me)s"
        "      OR lease_until < clock_timestamp())"
        " AND (NOT %(due_only)s OR next_fetch_at IS NULL OR next_fetch_at <= %(now)s)"
        " AND (%(since)s::timestamptz IS NULL OR last_fetch_at IS NULL"
        "      OR last_fetch_at < %(since)s)"
        " FOR UPDATE SKIP LOCKED) RETURNING lease_token"
    )
    params = {"me": store.instance_name, "lease": LEASE, "name": name, "now": now,
              "due_only": due_only, "since": unpolled_since}  # fmt: skip
    with store.faults(), store._tx() as cur:
        store._run(cur, claim, params)
        row = cur.fetchone()
        if row is None:  # taken, not due, or a source with no row yet: make it, try again
            store._run(
                cur,
                "INSERT INTO sources (name, url) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                (name, url),
            )
            if cur.rowcount:
                store._run(cur, claim, params)
                row = cur.fetchone()
    if row is None:
        return False
    store.leases[name] = int(row["lease_token"])
    return True


def fence(store: PostgresStore, cur: psycopg.Cursor[Row], name: str) -> None:
    """Inside a save of source `name`: refuse it (LeaseLost, the transaction rolls back) if
    this instance's lease on it has been taken over since it was claimed."""
    token = store.leases.get(name)
    if token is None:
        return
    store._run(
        cur,
        "UPDATE sources SET polled_by = %s WHERE name = %s AND lease_token = %s",
        (store.instance_name, name, token),
    )
    if cur.rowcount != 1:
        store.leases.pop(name, None)
        raise LeaseLost(
            f"{name}: this instance's lease was taken over by another; its poll is not saved"
        )


def release_poll(store: PostgresStore, name: str) -> None:
    token = store.leases.pop(name, None)
    if token is None:
        return
    with store.faults(), store._tx() as cur:
        store._run(
            cur,
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
        store = self.store
        with store.faults(), store._tx() as cur:
            # An upsert takes the host's row lock and reads its next start at once.
            store._run(
                cur,
                "INSERT INTO host_starts AS h (host, next_start) VALUES (%s, 'epoch')"
                " ON CONFLICT (host) DO UPDATE SET next_start = h.next_start"
                " RETURNING extract(epoch FROM h.next_start - clock_timestamp()) AS wait",
                (host,),
            )
            row = cur.fetchone()
            wait = float(row["wait"]) if row and row["wait"] is not None else 0.0
            if wait > 0:
                return None, wait
            take = (
                "UPDATE host_turns SET holder = %(me)s, until = clock_timestamp() + %(held)s"
                " WHERE host = %(host)s AND slot = (SELECT slot FROM host_turns"
                " WHERE host = %(host)s AND slot <= %(slots)s"
                " AND (holder IS NULL OR until < clock_timestamp()) ORDER BY slot LIMIT 1)"
                " RETURNING slot"
            )
            params = {"me": store.instance_name, "held": TURN_HELD, "host": host, "slots": slots}
            store._run(cur, take, params)
            taken = cur.fetchone()
            if taken is None:  # a new host (or more slots): make its slots, try again
                store._run(
                    cur,
                    "INSERT INTO host_turns (host, slot) SELECT %s, generate_series(1, %s)"
                    " ON CONFLICT DO NOTHING",
                    (host, slots),
                )
                if cur.rowcount:
                    store._run(cur, take, params)
                    taken = cur.fetchone()
            if taken is None:
                return None, BUSY_RETRY
            store._run(
                cur,
                "UPDATE host_starts SET next_start = clock_timestamp() + %s WHERE host = %s",
                (timedelta(seconds=gap), host),
            )
        return str(taken["slot"]), 0.0

    def finish(self, host: str, turn: str) -> None:
        store = self.store
        with store.faults(), store._tx() as cur:
            store._run(
                cur,
                "UPDATE host_turns SET holder = NULL, until = NULL"
                " WHERE host = %s AND slot = %s AND holder = %s",
                (host, int(turn), store.instance_name),
            )


def polled_by(store: PostgresStore) -> dict[str, str]:
    with store.faults():
        rows = store._all("SELECT name, polled_by FROM sources WHERE polled_by IS NOT NULL")
    return {row["name"]: row["polled_by"] for row in rows}

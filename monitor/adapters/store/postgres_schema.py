"""The PostgreSQL store's schema: migrations 1..SCHEMA_VERSION, run once under an advisory
lock however many instances start together.

The tables mirror the SQLite store's (monitor.adapters.store.sqlite_schema) with native
types (timestamptz, bytea, bigint sequence numbers for the order rows were written in), plus
what a cluster needs: `instances` (heartbeats) and, on `sources`, the poll lease
(`lease_owner`, `lease_until`) and its fencing counter (`lease_token`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from monitor.adapters.store.sqlite_schema import STATE_COLUMNS, _hints_from_json, _hints_to_json
from monitor.errors import StoreError
from monitor.state import Delivery, MatchRecord, SourceState

Row = dict[str, Any]

__all__ = [
    "MIGRATIONS", "MIGRATION_LOCK", "SCHEMA_VERSION", "STATE_COLUMNS", "Row", "delivery_of",
    "match_of", "migrate", "reason", "safe_name", "state_of", "state_values", "utc",
]  # fmt: skip

# pg_advisory_xact_lock key of the migrations (any constant; "news-monitor" in ASCII).
MIGRATION_LOCK = 0x6E6577736D6F6E

MIGRATIONS: dict[int, Sequence[str]] = {
    1: (
        """CREATE TABLE sources (
            name text PRIMARY KEY,
            url text NOT NULL,
            etag text,
            last_modified text,
            last_fetch_at timestamptz,
            last_ok_at timestamptz,
            last_result text,
            error_count integer NOT NULL DEFAULT 0,
            next_fetch_at timestamptz,
            items_seen integer NOT NULL DEFAULT 0,
            fetch_url text,
            not_before timestamptz,
            failing_since timestamptz,
            failure_reported boolean NOT NULL DEFAULT false,
            disabled text,
            hints text,
            lease_owner text,
            lease_until timestamptz,
            lease_token bigint NOT NULL DEFAULT 0,
            polled_by text
        )""",
        """CREATE TABLE articles (
            id text PRIMARY KEY,
            seq bigserial NOT NULL,
            source text NOT NULL,
            url text NOT NULL,
            title text NOT NULL,
            published timestamptz,
            first_seen timestamptz NOT NULL,
            data text NOT NULL
        )""",
        "CREATE INDEX articles_first_seen ON articles (first_seen, seq)",
        "CREATE INDEX articles_source ON articles (source, first_seen)",
        """CREATE TABLE matches (
            article_id text NOT NULL REFERENCES articles (id),
            rule text NOT NULL,
            seq bigserial NOT NULL,
            terms text NOT NULL,
            matched_at timestamptz NOT NULL,
            story_id text NOT NULL,
            fingerprint bytea,
            source text,
            explanation text,
            PRIMARY KEY (article_id, rule)
        )""",
        "CREATE INDEX matches_rule ON matches (rule, matched_at)",
        "CREATE INDEX matches_story ON matches (rule, story_id)",
        "CREATE INDEX matches_recent ON matches (matched_at DESC)",
        """CREATE TABLE outbox (
            id text PRIMARY KEY,
            seq bigserial NOT NULL,
            article_id text NOT NULL,
            rule text NOT NULL,
            target text NOT NULL,
            title text NOT NULL,
            body text NOT NULL,
            body_format text NOT NULL DEFAULT 'markdown',
            created_at timestamptz NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL,
            last_error text,
            delivered_at timestamptz,
            dead_at timestamptz,
            folded_into text,
            claim_owner text,
            claim_until timestamptz
        )""",
        """CREATE INDEX outbox_pending ON outbox (next_attempt_at)
            WHERE delivered_at IS NULL AND dead_at IS NULL""",
        "CREATE INDEX outbox_sent ON outbox (target, delivered_at)",
        "CREATE TABLE digests (rule text PRIMARY KEY, covered_until timestamptz NOT NULL)",
        """CREATE TABLE links (
            id text PRIMARY KEY,
            source text NOT NULL,
            settled_at timestamptz NOT NULL,
            recheck_at timestamptz NOT NULL
        )""",
        """CREATE TABLE follow_ups (
            rule text NOT NULL,
            story_id text NOT NULL,
            target text NOT NULL,
            due_at timestamptz NOT NULL,
            queued_at timestamptz,
            PRIMARY KEY (rule, story_id, target)
        )""",
        "CREATE INDEX follow_ups_due ON follow_ups (due_at) WHERE queued_at IS NULL",
        """CREATE TABLE instances (
            name text PRIMARY KEY,
            host text NOT NULL,
            pid integer NOT NULL,
            started_at timestamptz NOT NULL,
            heartbeat_at timestamptz NOT NULL,
            stopped_at timestamptz
        )""",
    ),
    # Per-host manners across the cluster (postgres_cluster.HostTurns): a row per host
    # saying when the next request may start, and its in-flight slots.
    2: (
        "CREATE TABLE host_starts (host text PRIMARY KEY, next_start timestamptz NOT NULL)",
        """CREATE TABLE host_turns (
            host text NOT NULL,
            slot integer NOT NULL,
            holder text,
            until timestamptz,
            PRIMARY KEY (host, slot)
        )""",
    ),
    # WebSub subscriptions (monitor.service.websub): one row per callback id.
    3: (
        """CREATE TABLE websub (
            id text PRIMARY KEY,
            source text NOT NULL,
            topic text NOT NULL,
            hub text NOT NULL,
            secret text NOT NULL,
            state text NOT NULL,
            requested_at timestamptz,
            verified_at timestamptz,
            expires_at timestamptz,
            renew_at timestamptz,
            error text,
            pushed_at timestamptz,
            pushes integer NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX websub_source ON websub (source)",
        # Periodic jobs one instance runs for the cluster (WebSub renewals): who, until when.
        """CREATE TABLE upkeep (
            job text PRIMARY KEY,
            owner text NOT NULL,
            until timestamptz NOT NULL
        )""",
    ),
    # A host turn (postgres_cluster.HostTurns.try_start) in one call: the host's
    # `host_starts` row, locked by the upsert, serialises the decision across instances;
    # then a free slot is taken and the next start moved on by the gap. Returns the slot
    # taken, or NULL and how long to wait (until the gap ends, or p_busy if all are busy).
    4: (
        """CREATE FUNCTION monitor_host_turn(p_host text, p_slots integer, p_gap interval,
            p_me text, p_held interval, p_busy double precision,
            OUT o_slot integer, OUT o_wait double precision)
        LANGUAGE plpgsql AS $$
        DECLARE
            v_next timestamptz;
        BEGIN
            INSERT INTO host_starts AS h (host, next_start) VALUES (p_host, 'epoch')
                ON CONFLICT (host) DO UPDATE SET next_start = h.next_start
                RETURNING h.next_start INTO v_next;
            o_wait := extract(epoch FROM v_next - clock_timestamp());
            IF o_wait > 0 THEN
                RETURN;
            END IF;
            FOR attempt IN 1..2 LOOP
                UPDATE host_turns t SET holder = p_me, until = clock_timestamp() + p_held
                    WHERE t.host = p_host AND t.slot = (SELECT s.slot FROM host_turns s
                        WHERE s.host = p_host AND s.slot <= p_slots
                        AND (s.holder IS NULL OR s.until < clock_timestamp())
                        ORDER BY s.slot LIMIT 1)
                    RETURNING t.slot INTO o_slot;
                EXIT WHEN o_slot IS NOT NULL OR attempt = 2;
                -- a new host (or more slots): make its slots, and try again if any were
                INSERT INTO host_turns (host, slot) SELECT p_host, generate_series(1, p_slots)
                    ON CONFLICT DO NOTHING;
                EXIT WHEN NOT FOUND;
            END LOOP;
            IF o_slot IS NULL THEN
                o_wait := p_busy;
                RETURN;
            END IF;
            o_wait := 0;
            UPDATE host_starts SET next_start = clock_timestamp() + p_gap WHERE host = p_host;
        END
        $$""",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)


def migrate(cur: psycopg.Cursor[Row], instance_name: str) -> None:
    """All steps in one transaction (`cur`'s) under an advisory lock, the version read
    inside it: instances starting together migrate once, the others wait and find it done."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    cur.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
        " applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL)"
    )
    cur.execute("SELECT coalesce(max(version), 0) AS v FROM schema_migrations")
    row = cur.fetchone()
    version = int(row["v"]) if row else 0
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database schema {version} is newer than this news-monitor ({SCHEMA_VERSION})"
        )
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[step]:
            cur.execute(statement)
        cur.execute(
            "INSERT INTO schema_migrations (version, applied_by) VALUES (%s, %s)",
            (step, instance_name),
        )


def utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def state_values(state: SourceState) -> tuple[Any, ...]:
    return (
        state.name, state.url, state.etag, state.last_modified, state.last_fetch_at,
        state.last_ok_at, state.last_result, state.error_count, state.next_fetch_at,
        state.items_seen, state.fetch_url, state.not_before, state.failing_since,
        state.failure_reported, state.disabled, _hints_to_json(state.hints),
    )  # fmt: skip


def state_of(row: Row) -> SourceState:
    return SourceState(
        name=row["name"],
        url=row["url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_fetch_at=utc(row["last_fetch_at"]),
        last_ok_at=utc(row["last_ok_at"]),
        last_result=row["last_result"],
        error_count=row["error_count"],
        next_fetch_at=utc(row["next_fetch_at"]),
        items_seen=row["items_seen"],
        fetch_url=row["fetch_url"],
        not_before=utc(row["not_before"]),
        failing_since=utc(row["failing_since"]),
        failure_reported=bool(row["failure_reported"]),
        disabled=row["disabled"],
        hints=_hints_from_json(row["hints"]),
    )


def match_of(row: Row) -> MatchRecord:
    return MatchRecord(
        article_id=row["article_id"],
        rule=row["rule"],
        terms=tuple(json.loads(row["terms"])),
        matched_at=row["matched_at"].astimezone(UTC),
        story_id=row["story_id"] or row["article_id"],
        fingerprint=bytes(row["fingerprint"] or b""),
        source=row["source"] or "",
        explanation=row["explanation"] or "",
    )


def delivery_of(row: Row) -> Delivery:
    return Delivery(
        id=row["id"],
        article_id=row["article_id"],
        rule=row["rule"],
        target=row["target"],
        title=row["title"],
        body=row["body"],
        created_at=row["created_at"].astimezone(UTC),
        attempts=row["attempts"],
        next_attempt_at=utc(row["next_attempt_at"]),
        last_error=row["last_error"],
        url=row.get("url") or "",
        body_format=row["body_format"],
        article_title=row.get("article_title") or "",
    )


def safe_name(url: str) -> str:
    """The database as logs and errors may name it: no password, no other parameters."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    user = f"{info['user']}@" if info.get("user") else ""
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{user}{info.get('host', '')}{port}/{info.get('dbname', '')}"


def reason(exc: BaseException) -> str:
    """The error's first line (psycopg adds server detail lines; none carry the password)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

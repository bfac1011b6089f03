"""The SQLite store's schema: migrations 1..SCHEMA_VERSION and the column encodings."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from monitor.state import FeedHints

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "STATE_COLUMNS"]


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Statement by statement: `executescript` would commit the migration's transaction."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _migrate_1(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            etag TEXT,
            last_modified TEXT,
            last_fetch_at TEXT,
            last_ok_at TEXT,
            last_result TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            next_fetch_at TEXT,
            items_seen INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE articles (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            url TEXT NOT NULL,
            title TEXT NOT NULL,
            published TEXT,
            first_seen TEXT NOT NULL,
            data TEXT NOT NULL
        );
        CREATE INDEX articles_first_seen ON articles (first_seen);
        CREATE TABLE matches (
            article_id TEXT NOT NULL REFERENCES articles (id),
            rule TEXT NOT NULL,
            terms TEXT NOT NULL,
            matched_at TEXT NOT NULL,
            PRIMARY KEY (article_id, rule)
        );
        CREATE TABLE outbox (
            id TEXT PRIMARY KEY,
            article_id TEXT NOT NULL,
            rule TEXT NOT NULL,
            target TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            delivered_at TEXT
        );
        CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
        """,
    )


def _migrate_2(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        ALTER TABLE sources ADD COLUMN fetch_url TEXT;
        ALTER TABLE sources ADD COLUMN not_before TEXT;
        ALTER TABLE sources ADD COLUMN failing_since TEXT;
        ALTER TABLE sources ADD COLUMN failure_reported INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sources ADD COLUMN disabled TEXT;
        ALTER TABLE sources ADD COLUMN hints TEXT
        """,
    )


def _migrate_3(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        ALTER TABLE outbox ADD COLUMN dead_at TEXT;
        DROP INDEX outbox_pending;
        CREATE INDEX outbox_pending ON outbox (next_attempt_at)
            WHERE delivered_at IS NULL AND dead_at IS NULL
        """,
    )


def _migrate_4(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        ALTER TABLE outbox ADD COLUMN folded_into TEXT;
        CREATE INDEX outbox_sent ON outbox (target, delivered_at);
        CREATE INDEX matches_rule ON matches (rule, matched_at);
        CREATE TABLE digests (
            rule TEXT PRIMARY KEY,
            covered_until TEXT NOT NULL
        )
        """,
    )


def _migrate_5(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        ALTER TABLE matches ADD COLUMN story_id TEXT;
        ALTER TABLE matches ADD COLUMN fingerprint BLOB;
        ALTER TABLE matches ADD COLUMN source TEXT;
        UPDATE matches SET story_id = article_id
        """,
    )


def _migrate_6(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE outbox ADD COLUMN body_format TEXT NOT NULL DEFAULT 'markdown'")


def _migrate_7(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE matches ADD COLUMN explanation TEXT")


def _migrate_8(db: sqlite3.Connection) -> None:
    # Links found on pages that need no fetch before `recheck_at`, though no article has
    # their id (see `Reading.settled_links`).
    db.execute(
        "CREATE TABLE links (id TEXT PRIMARY KEY, source TEXT NOT NULL,"
        " settled_at TEXT NOT NULL, recheck_at TEXT NOT NULL)"
    )


def _migrate_9(db: sqlite3.Connection) -> None:
    # One coalesced "also reported by" message per (rule, story, target): queued once the
    # story has been quiet until due_at; queued_at set means done, whatever copies follow.
    _run_script(
        db,
        """
        CREATE TABLE follow_ups (
            rule TEXT NOT NULL,
            story_id TEXT NOT NULL,
            target TEXT NOT NULL,
            due_at TEXT NOT NULL,
            queued_at TEXT,
            PRIMARY KEY (rule, story_id, target)
        );
        CREATE INDEX follow_ups_due ON follow_ups (due_at) WHERE queued_at IS NULL;
        CREATE INDEX matches_story ON matches (rule, story_id);
        CREATE INDEX articles_source ON articles (source, first_seen)
        """,
    )


def _migrate_10(db: sqlite3.Connection) -> None:
    # The dashboard's reads: the newest matches, and dead deliveries, without a table scan.
    _run_script(
        db,
        """
        CREATE INDEX matches_time ON matches (matched_at);
        CREATE INDEX outbox_dead ON outbox (dead_at) WHERE dead_at IS NOT NULL
        """,
    )


def _migrate_11(db: sqlite3.Connection) -> None:
    # WebSub subscriptions (monitor.service.websub): one row per callback id.
    _run_script(
        db,
        """
        CREATE TABLE websub (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            topic TEXT NOT NULL,
            hub TEXT NOT NULL,
            secret TEXT NOT NULL,
            state TEXT NOT NULL,
            requested_at TEXT,
            verified_at TEXT,
            expires_at TEXT,
            renew_at TEXT,
            error TEXT,
            pushed_at TEXT,
            pushes INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX websub_source ON websub (source)
        """,
    )


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _migrate_1,
    2: _migrate_2,
    3: _migrate_3,
    4: _migrate_4,
    5: _migrate_5,
    6: _migrate_6,
    7: _migrate_7,
    8: _migrate_8,
    9: _migrate_9,
    10: _migrate_10,
    11: _migrate_11,
}
STATE_COLUMNS = (  # a SourceState as the sources table of either backend stores it
    "name",
    "url",
    "etag",
    "last_modified",
    "last_fetch_at",
    "last_ok_at",
    "last_result",
    "error_count",
    "next_fetch_at",
    "items_seen",
    "fetch_url",
    "not_before",
    "failing_since",
    "failure_reported",
    "disabled",
    "hints",
)
SCHEMA_VERSION = max(MIGRATIONS)


_PRUNED = "{}"


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _hints_to_json(hints: FeedHints) -> str | None:
    if hints == FeedHints():
        return None
    return json.dumps(
        {
            "ttl": hints.ttl.total_seconds() if hints.ttl else None,
            "update_period": hints.update_period.total_seconds() if hints.update_period else None,
            "skip_hours": sorted(hints.skip_hours),
            "skip_days": sorted(hints.skip_days),
        }
    )


def _hints_from_json(text: str | None) -> FeedHints:
    if not text:
        return FeedHints()
    data = json.loads(text)
    ttl, period = data.get("ttl"), data.get("update_period")
    return FeedHints(
        ttl=timedelta(seconds=ttl) if ttl else None,
        update_period=timedelta(seconds=period) if period else None,
        skip_hours=frozenset(data.get("skip_hours", ())),
        skip_days=frozenset(data.get("skip_days", ())),
    )

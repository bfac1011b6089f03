"""`monitor store copy FROM TO`: all state from one store to another, SQLite <-> PostgreSQL
(or the same kind), so an install can move without alerting anything again.

The destination must be empty (new or freshly migrated); the source must not be in use by
a polling process (SQLite: its run lock is taken; PostgreSQL: no instance alive). The copy
is written in one transaction: it lands whole or not at all. Rows keep their order
(SQLite's rowid, PostgreSQL's seq), which the stores use to break ties.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from monitor.adapters.store.postgres import PostgresStore
from monitor.adapters.store.postgres_cluster import LEASE
from monitor.adapters.store.postgres_schema import STATE_COLUMNS
from monitor.adapters.store.select import is_postgres
from monitor.adapters.store.sqlite import SqliteStore
from monitor.errors import StoreError

__all__ = ["TABLES", "copy_store"]

# table -> (columns, those holding times, those holding booleans); parents before children.
TABLES: dict[str, tuple[tuple[str, ...], frozenset[str], frozenset[str]]] = {
    "sources": (
        STATE_COLUMNS,
        frozenset({"last_fetch_at", "last_ok_at", "next_fetch_at", "not_before", "failing_since"}),
        frozenset({"failure_reported"}),
    ),
    "articles": (
        ("id", "source", "url", "title", "published", "first_seen", "data"),
        frozenset({"published", "first_seen"}),
        frozenset(),
    ),
    "matches": (
        (
            "article_id",
            "rule",
            "terms",
            "matched_at",
            "story_id",
            "fingerprint",
            "source",
            "explanation",
        ),
        frozenset({"matched_at"}),
        frozenset(),
    ),
    "outbox": (
        (
            "id",
            "article_id",
            "rule",
            "target",
            "title",
            "body",
            "created_at",
            "attempts",
            "next_attempt_at",
            "last_error",
            "delivered_at",
            "dead_at",
            "folded_into",
            "body_format",
        ),
        frozenset({"created_at", "next_attempt_at", "delivered_at", "dead_at"}),
        frozenset(),
    ),
    "digests": (("rule", "covered_until"), frozenset({"covered_until"}), frozenset()),
    "links": (
        ("id", "source", "settled_at", "recheck_at"),
        frozenset({"settled_at", "recheck_at"}),
        frozenset(),
    ),
    "follow_ups": (
        ("rule", "story_id", "target", "due_at", "queued_at"),
        frozenset({"due_at", "queued_at"}),
        frozenset(),
    ),
    "websub": (
        (
            "id",
            "source",
            "topic",
            "hub",
            "secret",
            "state",
            "requested_at",
            "verified_at",
            "expires_at",
            "renew_at",
            "error",
            "pushed_at",
            "pushes",
        ),
        frozenset({"requested_at", "verified_at", "expires_at", "renew_at", "pushed_at"}),
        frozenset(),
    ),
}
_BATCH = 1000


def copy_store(source: str, destination: str) -> dict[str, int]:
    """Copy every table; how many rows each had."""
    if source == destination:
        raise StoreError("copy: FROM and TO are the same database")
    reader = _open(source)
    try:
        writer = _open(destination)
        try:
            _check_empty(writer, destination)
            return _copy(reader, writer)
        finally:
            writer.close()
    finally:
        reader.close()


def _open(database: str) -> SqliteStore | PostgresStore:
    if is_postgres(database):
        store = PostgresStore(database)
        with store.faults():
            alive = store._all(
                "SELECT name FROM instances WHERE stopped_at IS NULL"
                " AND heartbeat_at > clock_timestamp() - %s",
                (LEASE,),
            )
        if alive:
            store.close()
            raise StoreError(
                f"copy: {len(alive)} instance(s) still running on {store.path}; stop them first"
            )
        return store
    return SqliteStore(database, exclusive=True)  # no `monitor run` on it meanwhile


def _check_empty(store: SqliteStore | PostgresStore, name: str) -> None:
    for table in TABLES:
        if _count(store, table):
            raise StoreError(f"copy: {store.path} is not empty ({table}); copy into a new one")


def _count(store: SqliteStore | PostgresStore, table: str) -> int:
    sql = f"SELECT count(*) AS n FROM {table}"  # noqa: S608 (our table names)
    if isinstance(store, SqliteStore):
        return int(store.db.execute(sql).fetchone()[0])
    with store.faults():
        row = store._one(sql)
    return int(row["n"]) if row else 0


def _rows(store: SqliteStore | PostgresStore, table: str) -> Iterator[list[Sequence[Any]]]:
    columns = ", ".join(TABLES[table][0])
    if isinstance(store, SqliteStore):
        with store.faults():
            cursor = store.db.execute(f"SELECT {columns} FROM {table} ORDER BY rowid")  # noqa: S608
            while batch := cursor.fetchmany(_BATCH):
                yield [tuple(row) for row in batch]
        return
    order = "seq" if table in ("articles", "matches", "outbox") else "1"
    with store.faults(), store.pool.connection() as conn, conn.transaction():
        server = conn.cursor(name=f"copy_{table}")  # server side: a batch at a time
        server.execute(f"SELECT {columns} FROM {table} ORDER BY {order}")  # noqa: S608
        while rows := server.fetchmany(_BATCH):
            yield [tuple(row.values()) for row in rows]
        server.close()


def _to_sqlite(table: str, row: Sequence[Any]) -> tuple[Any, ...]:
    columns, times, flags = TABLES[table]
    out: list[Any] = []
    for column, value in zip(columns, row, strict=True):
        if column in times and isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat()
        elif column in flags:
            value = int(bool(value))
        elif isinstance(value, memoryview):
            value = bytes(value)
        out.append(value)
    return tuple(out)


def _to_postgres(table: str, row: Sequence[Any]) -> tuple[Any, ...]:
    columns, times, flags = TABLES[table]
    out: list[Any] = []
    for column, value in zip(columns, row, strict=True):
        if column in times and isinstance(value, str):
            value = datetime.fromisoformat(value)
        elif column in flags:
            value = bool(value)
        out.append(value)
    if table == "matches" and out[4] is None:  # story_id: the article's own story
        out[4] = out[0]
    return tuple(out)


def _copy(
    reader: SqliteStore | PostgresStore, writer: SqliteStore | PostgresStore
) -> dict[str, int]:
    copied: dict[str, int] = {}
    if isinstance(writer, SqliteStore):
        with writer.faults(), writer._transaction():
            for table, (columns, _, _) in TABLES.items():
                sql = (f"INSERT INTO {table} ({', '.join(columns)})"  # noqa: S608
                       f" VALUES ({', '.join('?' * len(columns))})")  # fmt: skip
                copied[table] = 0
                for batch in _rows(reader, table):
                    writer.db.executemany(sql, [_to_sqlite(table, row) for row in batch])
                    copied[table] += len(batch)
        return copied
    with writer.faults(), writer._tx() as cur:
        for table, (columns, _, _) in TABLES.items():
            sql = (f"INSERT INTO {table} ({', '.join(columns)})"  # noqa: S608
                   f" VALUES ({', '.join(['%s'] * len(columns))})")  # fmt: skip
            copied[table] = 0
            for batch in _rows(reader, table):
                cur.executemany(sql, [_to_postgres(table, row) for row in batch])
                copied[table] += len(batch)
    return copied

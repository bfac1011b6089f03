"""Which store backend a `database` setting names: a postgresql:// (or postgres://) URL is a
PostgreSQL database (monitor.adapters.store.postgres), anything else a SQLite file path."""

from __future__ import annotations

from monitor.ports import StoreBackend

__all__ = ["is_postgres", "open_store"]


def is_postgres(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://"))


def open_store(database: str, *, exclusive: bool = False) -> StoreBackend:
    """Open (and migrate) the store `database` names. With `exclusive`, the process is one
    that polls and delivers (`monitor run`): SQLite takes its run lock (one such process per
    file); PostgreSQL registers an instance of the cluster."""
    if is_postgres(database):
        from monitor.adapters.store.postgres import PostgresStore

        return PostgresStore(database, instance=exclusive)
    from monitor.adapters.store.sqlite import SqliteStore

    return SqliteStore(database, exclusive=exclusive)

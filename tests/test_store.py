"""What only the SQLite store does: WAL, its schema version. What every store does is in
tests/store_contract/."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.adapters.store.sqlite import SCHEMA_VERSION, SqliteStore, StoreError
from monitor.state import Delivery

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

"""The `store` fixture of the contract suite, parametrised over every store backend.

Each test gets a fresh, empty store; `backend.open()` opens another store on the same
database (a reopening, or a second process's view of it). The PostgreSQL case runs in a
database this test session created (tests/pg.py), one fresh schema per test.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitor.adapters.store.select import open_store
from monitor.ports import StoreBackend
from tests import pg

BACKENDS = ["sqlite", "postgresql"]


@dataclass
class Backend:
    """One store backend under test: where its database is and how to open it again."""

    name: str
    database: str
    integrity_error: type[Exception]
    opened: list[StoreBackend] = field(default_factory=list)

    def open(self) -> StoreBackend:
        store = open_store(self.database)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        chosen = Backend("sqlite", str(tmp_path / "m.db"), sqlite3.IntegrityError)
    else:
        import psycopg

        database: str = request.getfixturevalue("postgres_database")
        chosen = Backend("postgresql", pg.schema_url(database), psycopg.IntegrityError)
    yield chosen
    chosen.close_all()


@pytest.fixture
def store(backend: Backend) -> StoreBackend:
    """A fresh, empty store of each backend."""
    return backend.open()

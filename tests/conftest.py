from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from monitor.adapters.store.postgres import PostgresStore
from monitor.adapters.store.sqlite import SqliteStore
from tests import pg
from tests.servers import FixtureServer, SmtpServer, WebhookReceiver

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

# No per-example deadline: a time limit is a timed assertion, and on this shared machine
# a busy moment failed examples that were right (the property is what is tested).
settings.register_profile("untimed", deadline=None)
settings.load_profile("untimed")


@pytest.fixture(autouse=True)
def _direct_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests reach their servers on 127.0.0.1 directly, whatever proxy the machine sets."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def seeds() -> Path:
    return SEEDS


@pytest.fixture
def feed_server() -> Iterator[FixtureServer]:
    server = FixtureServer().start()
    yield server
    server.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    """A fresh SQLite store in the test's own directory."""
    store = SqliteStore(str(tmp_path / "m.db"))
    yield store
    store.close()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database this test session created, dropped at its end (tests/pg.py)."""
    pg.require_server()
    with pg.throwaway_database() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """A fresh, empty schema of that database, as a `database` URL."""
    return pg.schema_url(postgres_database)


@pytest.fixture
def postgres_pair(postgres_url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """Two instances' stores on one fresh schema (two `monitor run` processes sharing it)."""
    first = PostgresStore(postgres_url, instance=True)
    second = PostgresStore(postgres_url, instance=True)
    yield first, second
    first.close()
    second.close()

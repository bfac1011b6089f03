"""A throwaway PostgreSQL database for tests: the local server (127.0.0.1:5432, trust auth,
user postgres), a database of our own created per test session and dropped after it, and a
fresh schema in it per store. Tests never touch a database they did not create.

Without a server the PostgreSQL cases skip, except under CI (CI=true), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

SERVER = os.environ.get("MONITOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def server_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(f"{SERVER}/postgres", connect_timeout=3):
            return True
    except Exception:
        return False


def require_server() -> None:
    """Skip (fail under CI) when there is no PostgreSQL server to test against."""
    if server_available():
        return
    if os.environ.get("CI"):
        pytest.fail(f"no PostgreSQL server at {SERVER} (CI runs the store contract on it)")
    pytest.skip(f"no PostgreSQL server at {SERVER}")


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A new database (its URL), dropped afterwards with whatever is still connected."""
    import psycopg

    name = f"nm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def schema_url(database_url: str) -> str:
    """The URL of a fresh, empty schema in `database_url` (the store creates its tables)."""
    import psycopg

    schema = f"s_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute(f'CREATE SCHEMA "{schema}"')
    return f"{database_url}?options={quote(f'-csearch_path={schema}')}"

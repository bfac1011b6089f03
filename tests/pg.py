"""A throwaway PostgreSQL database for tests: the local server (127.0.0.1:5432, trust auth,
user postgres), a database of our own created per test session and dropped after it, and a
fresh schema in it per store. Tests never touch a database they did not create.

Without a server the PostgreSQL cases skip, except under CI (CI=true), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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


class TcpProxy:
    """A TCP relay on 127.0.0.1 (ephemeral port) to the PostgreSQL server, for outages:
    `cut()` drops every connection and refuses new ones until `restore()`."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        import socket
        import threading

        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.down = threading.Event()
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, database_url: str) -> str:
        """`database_url` reached through the relay."""
        return database_url.replace(f"{self.upstream[0]}:{self.upstream[1]}",
                                    f"127.0.0.1:{self.port}")  # fmt: skip

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: object, sink: object) -> None:
        import socket

        assert isinstance(source, socket.socket) and isinstance(sink, socket.socket)
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        import socket

        self.down.set()
        with self.lock:
            ends, self.open = self.open, []
        for end in ends:
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def restore(self) -> None:
        self.down.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()

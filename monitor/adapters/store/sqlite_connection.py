"""The SQLite store's connection: the run lock, one connection shared by threads, and
transactions that hold it."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from monitor.errors import StoreError

__all__ = ["SharedConnection", "Transaction", "lock_for_run"]


def lock_for_run(path: str) -> TextIO:
    """Hold `PATH.lock` exclusively for the process's life, or say who holds it.

    The kernel frees a flock when its process dies, so a killed monitor's lock is free at once.
    """
    try:
        # The resolved path, so a database reached through a symlink has one lock.
        lock_path = Path(f"{Path(path).resolve()}.lock")
        lock = lock_path.open("a+", encoding="utf-8")  # held until close
    except OSError as exc:
        raise StoreError(f"cannot open database {path} for writing: {exc.strerror}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise StoreError(f"another monitor ({holder}) is running on {path}") from None
    lock.truncate(0)
    lock.write(f"pid {os.getpid()}, started {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n")
    lock.flush()
    return lock


class SharedConnection(sqlite3.Connection):
    """A connection the event loop and worker threads (`asyncio.to_thread`) share: each
    statement, and each whole transaction (`_Transaction`), holds `lock`, so they take turns
    and a thread never runs inside another's transaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.RLock()

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        with self.lock:
            return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        with self.lock:
            return super().executemany(sql, parameters)


class Transaction:
    def __init__(self, db: SharedConnection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.db.lock.release()
            raise

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        try:
            if not kind:
                self.db.execute("COMMIT")
            elif self.db.in_transaction:  # SQLite may have rolled back already (disk full)
                self.db.execute("ROLLBACK")
        finally:
            self.db.lock.release()

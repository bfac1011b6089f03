"""The SQLite store's WebSub subscriptions (a mixin of SqliteStore; `ports.WebSubStore`)."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import timedelta
from typing import Any

from monitor.adapters.store.sqlite_schema import _parse, _time
from monitor.state import Subscription

__all__ = ["SqliteWebSub"]

_COLUMNS = (
    "id, source, topic, hub, secret, state, requested_at, verified_at, expires_at, renew_at,"
    " error, pushed_at, pushes"
)
_SELECT = "SELECT " + _COLUMNS + " FROM websub"  # noqa: S608 (constants)
_INSERT = "INSERT OR REPLACE INTO websub (" + _COLUMNS + ") VALUES (" + ", ".join("?" * 13) + ")"  # noqa: S608


class SqliteWebSub:
    db: Any  # the store's shared connection

    def faults(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def subscription(self, subscription_id: str) -> Subscription | None:
        with self.faults():
            row = self.db.execute(_SELECT + " WHERE id = ?", (subscription_id,)).fetchone()
        return None if row is None else _subscription(row)

    def subscriptions(self, source: str | None = None) -> list[Subscription]:
        query = _SELECT
        params: tuple[str, ...] = ()
        if source is not None:
            query, params = query + " WHERE source = ?", (source,)
        with self.faults():
            rows = self.db.execute(query + " ORDER BY requested_at DESC, id", params).fetchall()
        return [_subscription(row) for row in rows]

    def save_subscription(self, subscription: Subscription) -> None:
        s = subscription
        with self.faults(), self._transaction():
            self.db.execute(
                _INSERT,
                (s.id, s.source, s.topic, s.hub, s.secret, s.state, _time(s.requested_at),
                 _time(s.verified_at), _time(s.expires_at), _time(s.renew_at), s.error,
                 _time(s.pushed_at), s.pushes),
            )  # fmt: skip

    def delete_subscription(self, subscription_id: str) -> None:
        with self.faults(), self._transaction():
            self.db.execute("DELETE FROM websub WHERE id = ?", (subscription_id,))

    def take_upkeep(self, job: str, period: timedelta) -> bool:
        return True  # one process per SQLite database (the run lock)


def _subscription(row: sqlite3.Row) -> Subscription:
    return Subscription(
        row[0], row[1], row[2], row[3], row[4], row[5], _parse(row[6]), _parse(row[7]),
        _parse(row[8]), _parse(row[9]), row[10], _parse(row[11]), int(row[12]),
    )  # fmt: skip

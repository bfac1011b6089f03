"""The PostgreSQL store's WebSub subscriptions (a mixin of PostgresStore; `ports.WebSubStore`).
Every instance of a cluster reads them, so any instance answers a hub's callbacks."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import psycopg

from monitor.adapters.store.postgres_schema import Row, utc
from monitor.state import Subscription

__all__ = ["PostgresWebSub"]

_COLUMNS = (
    "id, source, topic, hub, secret, state, requested_at, verified_at, expires_at, renew_at,"
    " error, pushed_at, pushes"
)
_SELECT = "SELECT " + _COLUMNS + " FROM websub"  # noqa: S608 (constants)
_UPSERT = (
    "INSERT INTO websub (" + _COLUMNS + ") VALUES (" + ", ".join(["%s"] * 13) + ")"  # noqa: S608
    " ON CONFLICT (id) DO UPDATE SET source = EXCLUDED.source, topic = EXCLUDED.topic,"
    " hub = EXCLUDED.hub, secret = EXCLUDED.secret, state = EXCLUDED.state,"
    " requested_at = EXCLUDED.requested_at, verified_at = EXCLUDED.verified_at,"
    " expires_at = EXCLUDED.expires_at, renew_at = EXCLUDED.renew_at, error = EXCLUDED.error,"
    " pushed_at = EXCLUDED.pushed_at, pushes = EXCLUDED.pushes"
)


class PostgresWebSub:
    instance_name: str  # this process, as the cluster knows it

    def faults(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _tx(self) -> contextlib.AbstractContextManager[psycopg.Cursor[Row]]:
        raise NotImplementedError

    def _all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        raise NotImplementedError

    def _run(
        self, cur: psycopg.Cursor[Row], sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> int:
        raise NotImplementedError

    def subscription(self, subscription_id: str) -> Subscription | None:
        with self.faults():
            rows = self._all(_SELECT + " WHERE id = %s", (subscription_id,))
        return _subscription(rows[0]) if rows else None

    def subscriptions(self, source: str | None = None) -> list[Subscription]:
        query, params = _SELECT, tuple[str, ...]()
        if source is not None:
            query, params = query + " WHERE source = %s", (source,)
        order = ' ORDER BY requested_at DESC NULLS LAST, id COLLATE "C"'
        with self.faults():
            return [_subscription(row) for row in self._all(query + order, params)]

    def save_subscription(self, subscription: Subscription) -> None:
        s = subscription
        with self.faults(), self._tx() as cur:
            self._run(
                cur,
                _UPSERT,
                (s.id, s.source, s.topic, s.hub, s.secret, s.state, s.requested_at,
                 s.verified_at, s.expires_at, s.renew_at, s.error, s.pushed_at, s.pushes),
            )  # fmt: skip

    def delete_subscription(self, subscription_id: str) -> None:
        with self.faults(), self._tx() as cur:
            self._run(cur, "DELETE FROM websub WHERE id = %s", (subscription_id,))

    def take_upkeep(self, job: str, period: timedelta) -> bool:
        # The database's clock, as for poll leases: instances' clocks may differ.
        with self.faults():
            rows = self._all(
                "INSERT INTO upkeep AS u (job, owner, until)"
                " VALUES (%s, %s, clock_timestamp() + %s)"
                " ON CONFLICT (job) DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until"
                " WHERE u.owner = EXCLUDED.owner OR u.until <= clock_timestamp()"
                " RETURNING owner",
                (job, self.instance_name, period),
            )
        return bool(rows)


def _subscription(row: Row) -> Subscription:
    return Subscription(
        row["id"], row["source"], row["topic"], row["hub"], row["secret"], row["state"],
        utc(row["requested_at"]), utc(row["verified_at"]), utc(row["expires_at"]),
        utc(row["renew_at"]), row["error"], utc(row["pushed_at"]), int(row["pushes"]),
    )  # fmt: skip

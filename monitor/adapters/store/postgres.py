"""PostgreSQL store: the same contract as SqliteStore (tests/store_contract/), on a
thread-safe psycopg connection pool, plus what several instances sharing one database need
(see monitor.adapters.store.postgres_cluster)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from monitor.adapters.store import postgres_cluster as cluster
from monitor.adapters.store.guard import guarded
from monitor.adapters.store.postgres_schema import (
    SCHEMA_VERSION,
    STATE_COLUMNS,
    Row,
    delivery_of,
    match_of,
    migrate,
    reason,
    safe_name,
    state_of,
    state_values,
    utc,
)
from monitor.adapters.store.postgres_views import PostgresViews
from monitor.adapters.store.postgres_websub import PostgresWebSub
from monitor.errors import StoreError, StoreUnavailable
from monitor.model import Article
from monitor.state import (
    Delivery,
    FollowUp,
    InstanceInfo,
    MatchRecord,
    SourceState,
    StoryCopy,
)

__all__ = ["SCHEMA_VERSION", "PostgresStore", "safe_name"]

log = logging.getLogger(__name__)

_PRUNED = "{}"
# Bugs in our SQL or data, not faults of the server: they keep their traceback.
_BUGS = (psycopg.IntegrityError, psycopg.ProgrammingError, psycopg.DataError)


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET TIME ZONE 'UTC'")


class PostgresStore(PostgresViews, PostgresWebSub):
    """One process's view of a PostgreSQL database. Several processes (instances) may share
    it; with `instance`, this process registers itself in `instances` (see
    postgres_cluster) as one that polls and delivers."""

    def __init__(
        self, url: str, *, instance: bool = False, pool_size: int = 8, pool_timeout: float = 10
    ) -> None:
        self.url = url
        self.path = safe_name(url)
        self.instance_name = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.queries = 0  # statements sent, for the benchmark's queries per poll
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=_configure,
            open=False,
            name="news-monitor",
            timeout=pool_timeout,  # a call waits this long for a connection in an outage
            reconnect_timeout=24 * 3600.0,  # then keeps trying: the server may come back
        )
        try:
            self.pool.open(wait=True, timeout=pool_timeout)
            self._migrate()
        except (psycopg.Error, PoolTimeout) as exc:
            self.pool.close()
            raise StoreError(f"cannot open database {self.path}: {reason(exc)}") from None
        except StoreError:
            self.pool.close()
            raise
        self.registered = False
        self.leases: dict[str, int] = {}  # source -> fencing token of the lease we hold
        # A claimed source's row as the claim returned it, for the poll's first state read.
        self.claimed: dict[str, SourceState] = {}
        # Leased sources whose committed save gave the lease back (see cluster.fence).
        self.released: set[str] = set()
        if instance:
            cluster.register_instance(self)

    @contextlib.contextmanager
    def faults(self) -> Iterator[None]:
        """The server's faults (down, unreachable, out of space) as a StoreError naming the
        database without its password; bugs in our SQL keep their traceback."""
        try:
            yield
        except (PoolTimeout, psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailable(f"database {self.path}: {reason(exc)}") from None
        except psycopg.Error as exc:
            if isinstance(exc, _BUGS):
                raise
            raise StoreError(f"database {self.path}: {reason(exc)}") from None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Row]]:
        """A cursor in one transaction on a pooled connection."""
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def _all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        self.queries += 1
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _auto(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> tuple[list[Row], int]:
        """One statement in autocommit (its own transaction, without the BEGIN and COMMIT
        round trips): its rows (if it returns any) and its row count."""
        self.queries += 1
        with self.pool.connection() as conn:
            cur = conn.execute(sql, params)
            return (cur.fetchall() if cur.description else []), cur.rowcount

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    def _run(
        self, cur: psycopg.Cursor[Row], sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> int:
        self.queries += 1
        cur.execute(sql, params)
        return cur.rowcount

    def _many(self, cur: psycopg.Cursor[Row], sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.queries += 1
            cur.executemany(sql, rows)

    def _migrate(self) -> None:
        with self._tx() as cur:
            migrate(cur, self.instance_name)

    @guarded
    def schema_version(self) -> int:
        row = self._one("SELECT coalesce(max(version), 0) AS v FROM schema_migrations")
        return int(row["v"]) if row else 0

    @guarded
    def check_integrity(self) -> None:
        """The server keeps its own integrity; check that it answers and the schema is ours."""
        version = self.schema_version()
        if version != SCHEMA_VERSION:
            raise StoreError(f"database {self.path}: schema {version}, not {SCHEMA_VERSION}")

    def close(self) -> None:
        """Leave the cluster (leases given back) and close the pool, after any transaction
        another thread has open has ended."""
        if self.registered:
            with contextlib.suppress(psycopg.Error, PoolTimeout, StoreError):
                cluster.unregister_instance(self)
            log.info("database %s: %d statements from this instance", self.path, self.queries)
        self.pool.close()

    # -- sources -------------------------------------------------------------------------

    @guarded
    def source_state(self, name: str) -> SourceState | None:
        claimed = self.claimed.pop(name, None)
        if claimed is not None:  # read by the claim a moment ago, and ours to write since
            return claimed
        row = self._one("SELECT * FROM sources WHERE name = %s", (name,))
        return None if row is None else state_of(row)

    @guarded
    def source_states(self) -> list[SourceState]:
        return [state_of(row) for row in self._all("SELECT * FROM sources ORDER BY name")]

    @guarded
    def save_state(self, state: SourceState) -> None:
        if state.name in self.leases:  # one fenced statement, which ends the lease too
            cluster.fenced_save(self, None, state)
            self.released.add(state.name)
            return
        with self._tx() as cur:
            self._put_state(cur, state)

    def _put_state(self, cur: psycopg.Cursor[Row], state: SourceState) -> None:
        if state.name in self.leases:
            cluster.fenced_save(self, cur, state)
            return
        updates = ", ".join(f"{c} = excluded.{c}" for c in STATE_COLUMNS[1:])
        self._run(
            cur,
            f"INSERT INTO sources ({', '.join(STATE_COLUMNS)})"  # noqa: S608
            f" VALUES ({', '.join(['%s'] * len(STATE_COLUMNS))})"
            f" ON CONFLICT (name) DO UPDATE SET {updates}",
            state_values(state),
        )

    # -- polls ---------------------------------------------------------------------------

    @guarded
    def known_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = list(ids)
        if not wanted:
            return set()
        rows = self._all("SELECT id FROM articles WHERE id = ANY(%s)", (wanted,))
        return {row["id"] for row in rows}

    @guarded
    def known_links(self, ids: Iterable[str], now: datetime) -> set[str]:
        wanted = list(ids)
        if not wanted:
            return set()
        rows = self._all(
            "SELECT id FROM articles WHERE id = ANY(%(ids)s) UNION"
            " SELECT id FROM links WHERE id = ANY(%(ids)s) AND recheck_at > %(now)s",
            {"ids": wanted, "now": now},
        )
        return {row["id"] for row in rows}

    @guarded
    def save_poll(
        self,
        state: SourceState,
        articles: Sequence[Article],
        matches: Sequence[MatchRecord],
        deliveries: Sequence[Delivery],
        now: datetime,
        settled_links: Sequence[tuple[str, datetime]] = (),
        follow_ups: Sequence[FollowUp] = (),
    ) -> None:
        with self._tx() as cur:
            self._save_poll(cur, state, articles, matches, deliveries, now, settled_links,
                            follow_ups)  # fmt: skip
        if state.name in self.leases:  # committed: the fenced save gave the lease back
            self.released.add(state.name)

    def _save_poll(
        self,
        cur: psycopg.Cursor[Row],
        state: SourceState,
        articles: Sequence[Article],
        matches: Sequence[MatchRecord],
        deliveries: Sequence[Delivery],
        now: datetime,
        settled_links: Sequence[tuple[str, datetime]],
        follow_ups: Sequence[FollowUp],
    ) -> None:
        self._put_state(cur, state)
        self._many(
            cur,
            "INSERT INTO links (id, source, settled_at, recheck_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET source = excluded.source,"
            " settled_at = excluded.settled_at, recheck_at = excluded.recheck_at",
            [(link, state.name, now, until) for link, until in settled_links],
        )
        self._many(
            cur,
            "INSERT INTO articles (id, source, url, title, published, first_seen, data)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            [
                (a.id, a.source, a.url, a.title, a.published, now,
                 json.dumps(a.to_json(), ensure_ascii=False))
                for a in articles
            ],
        )  # fmt: skip
        self._many(
            cur,
            "INSERT INTO matches (article_id, rule, terms, matched_at, story_id, fingerprint,"
            " source, explanation) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (article_id, rule) DO NOTHING",
            [
                (m.article_id, m.rule, json.dumps(m.terms), m.matched_at,
                 m.story_id or m.article_id, m.fingerprint or None, m.source,
                 m.explanation or None)
                for m in matches
            ],
        )  # fmt: skip
        self._put_deliveries(cur, deliveries)
        self._many(
            cur,
            "INSERT INTO follow_ups (rule, story_id, target, due_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (rule, story_id, target) DO UPDATE"
            " SET due_at = greatest(follow_ups.due_at, excluded.due_at)"
            " WHERE follow_ups.queued_at IS NULL",
            [(f.rule, f.story_id, f.target, f.due_at) for f in follow_ups],
        )

    def _put_deliveries(self, cur: psycopg.Cursor[Row], deliveries: Sequence[Delivery]) -> None:
        self._many(
            cur,
            "INSERT INTO outbox (id, article_id, rule, target, title, body, created_at,"
            " next_attempt_at, body_format) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            [
                (d.id, d.article_id, d.rule, d.target, d.title, d.body, d.created_at,
                 d.next_attempt_at or d.created_at, d.body_format)
                for d in deliveries
            ],
        )  # fmt: skip

    @guarded
    def story_fingerprints(self, rule: str, since: datetime) -> list[tuple[str, bytes]]:
        rows = self._all(
            "SELECT story_id, fingerprint FROM matches WHERE rule = %s AND matched_at >= %s"
            " AND fingerprint IS NOT NULL ORDER BY matched_at, seq",
            (rule, since),
        )
        return [(row["story_id"], bytes(row["fingerprint"])) for row in rows]

    @guarded
    def recent_articles(self, source: str, since: datetime, limit: int) -> list[Article]:
        rows = self._all(
            "SELECT data FROM articles WHERE source = %s AND first_seen >= %s AND data != %s"
            " ORDER BY first_seen DESC, seq DESC LIMIT %s",
            (source, since, _PRUNED, limit),
        )
        return [Article.from_json(json.loads(row["data"])) for row in rows]

    # -- outbox --------------------------------------------------------------------------

    @guarded
    def pending_deliveries(self, now: datetime, *, due_only: bool = True) -> list[Delivery]:
        query = (
            "SELECT o.*, a.url, a.title AS article_title FROM outbox o"
            " LEFT JOIN articles a ON a.id = o.article_id"
            " WHERE o.delivered_at IS NULL AND o.dead_at IS NULL"
        )
        params: tuple[datetime, ...] = ()
        if due_only:
            query += " AND o.next_attempt_at <= %s"
            params = (now,)
        rows = self._all(query + " ORDER BY o.created_at, o.seq", params)
        return [delivery_of(row) for row in rows]

    def _update(self, sql: str, params: Sequence[Any]) -> int:
        return self._auto(sql, params)[1]

    @guarded
    def mark_delivered(self, delivery_id: str, now: datetime) -> None:
        self._update(
            "UPDATE outbox SET delivered_at = %s, attempts = attempts + 1, last_error = NULL,"
            " claim_owner = NULL WHERE id = %s",
            (now, delivery_id),
        )

    @guarded
    def mark_failed(self, delivery_id: str, error: str, next_attempt_at: datetime) -> None:
        self._update(
            "UPDATE outbox SET attempts = attempts + 1, last_error = %s, next_attempt_at = %s,"
            " claim_owner = NULL WHERE id = %s",
            (error, next_attempt_at, delivery_id),
        )

    @guarded
    def mark_folded(self, delivery_ids: Sequence[str], into: str, now: datetime) -> None:
        self._update(
            "UPDATE outbox SET delivered_at = %s, folded_into = %s, claim_owner = NULL"
            " WHERE id = ANY(%s)",
            (now, into, list(delivery_ids)),
        )

    @guarded
    def mark_dead(self, delivery_id: str, error: str, now: datetime) -> None:
        self._update(
            "UPDATE outbox SET attempts = attempts + 1, last_error = %s, dead_at = %s,"
            " claim_owner = NULL WHERE id = %s",
            (error, now, delivery_id),
        )

    @guarded
    def messages_sent(self, target: str, since: datetime) -> int:
        row = self._one(
            "SELECT count(*) AS n FROM outbox WHERE target = %s AND delivered_at >= %s"
            " AND folded_into IS NULL",
            (target, since),
        )
        return int(row["n"]) if row else 0

    @guarded
    def dead_deliveries(self, limit: int = 20) -> list[Delivery]:
        rows = self._all(
            "SELECT * FROM outbox WHERE dead_at IS NOT NULL ORDER BY dead_at DESC, seq DESC"
            " LIMIT %s",
            (limit,),
        )
        return [delivery_of(row) for row in rows]

    # -- follow-ups and digests ------------------------------------------------------------

    @guarded
    def due_follow_ups(self, now: datetime) -> list[FollowUp]:
        rows = self._all(
            "SELECT rule, story_id, target, due_at FROM follow_ups"
            " WHERE queued_at IS NULL AND due_at <= %s ORDER BY due_at, rule, story_id, target",
            (now,),
        )
        return [FollowUp(r["rule"], r["story_id"], r["target"], r["due_at"]) for r in rows]

    @guarded
    def story_copies(self, rule: str, story_id: str) -> list[StoryCopy]:
        rows = self._all(
            "SELECT m.article_id, m.source, a.title, a.url FROM matches m"
            " JOIN articles a ON a.id = m.article_id WHERE m.rule = %s AND m.story_id = %s"
            " ORDER BY m.matched_at, m.seq",
            (rule, story_id),
        )
        return [StoryCopy(r["article_id"], r["source"] or "", r["title"], r["url"]) for r in rows]

    @guarded
    def queue_follow_up(
        self, follow_up: FollowUp, delivery: Delivery | None, now: datetime
    ) -> bool:
        with self._tx() as cur:
            settled = self._run(
                cur,
                "UPDATE follow_ups SET queued_at = %s WHERE rule = %s AND story_id = %s"
                " AND target = %s AND queued_at IS NULL AND due_at <= %s",
                (now, follow_up.rule, follow_up.story_id, follow_up.target, now),
            )
            if settled and delivery is not None:
                self._put_deliveries(cur, [delivery])
        return bool(settled)

    @guarded
    def drop_follow_up(self, follow_up: FollowUp) -> None:
        self._update(
            "DELETE FROM follow_ups WHERE rule = %s AND story_id = %s AND target = %s"
            " AND queued_at IS NULL",
            (follow_up.rule, follow_up.story_id, follow_up.target),
        )

    @guarded
    def digest_covered_until(self, rule: str) -> datetime | None:
        row = self._one("SELECT covered_until FROM digests WHERE rule = %s", (rule,))
        return None if row is None else utc(row["covered_until"])

    @guarded
    def matches_between(
        self, rule: str, start: datetime, end: datetime
    ) -> list[tuple[MatchRecord, Article]]:
        rows = self._all(
            "SELECT m.*, a.data FROM matches m JOIN articles a ON a.id = m.article_id"
            " WHERE m.rule = %s AND m.matched_at > %s AND m.matched_at <= %s"
            " ORDER BY m.matched_at, m.article_id",
            (rule, start, end),
        )
        return [(match_of(row), Article.from_json(json.loads(row["data"]))) for row in rows]

    @guarded
    def save_digest(
        self,
        rule: str,
        covered_until: datetime,
        deliveries: Sequence[Delivery],
        *,
        expected: datetime | None = None,
        check: bool = False,
    ) -> bool:
        with self._tx() as cur:
            if check:
                if not cluster.save_digest_once(self, cur, rule, covered_until, expected):
                    return False
            else:
                self._run(
                    cur,
                    "INSERT INTO digests (rule, covered_until) VALUES (%s, %s)"
                    " ON CONFLICT (rule) DO UPDATE SET covered_until = excluded.covered_until",
                    (rule, covered_until),
                )
            self._put_deliveries(cur, deliveries)
        return True

    # -- the cluster (monitor.adapters.store.postgres_cluster) -----------------------------

    def claim_poll(
        self,
        name: str,
        url: str,
        now: datetime,
        *,
        due_only: bool = True,
        unpolled_since: datetime | None = None,
    ) -> bool:
        return cluster.claim_poll(self, name, url, now, due_only, unpolled_since)

    def story_lock(self) -> contextlib.AbstractContextManager[None]:
        return cluster.StoryLock(self)

    def release_poll(self, name: str) -> None:
        cluster.release_poll(self, name)

    def claim_deliveries(self, now: datetime, *, due_only: bool = True) -> list[Delivery]:
        return cluster.claim_deliveries(self, now, due_only)

    def host_turns(self) -> cluster.HostTurns:
        return cluster.HostTurns(self)

    def heartbeat(self, now: datetime) -> None:
        cluster.heartbeat(self)

    def instances(self) -> list[InstanceInfo]:
        return cluster.instances(self)

    def polled_by(self) -> dict[str, str]:
        return cluster.polled_by(self)

    # -- queries and upkeep ----------------------------------------------------------------

    @guarded
    def recent_matches(self, limit: int = 20) -> list[tuple[MatchRecord, str, str]]:
        rows = self._all(
            "SELECT m.*, a.title, a.url FROM matches m JOIN articles a ON a.id = m.article_id"
            " ORDER BY m.matched_at DESC, m.seq DESC LIMIT %s",
            (limit,),
        )
        return [(match_of(row), row["title"], row["url"]) for row in rows]

    def articles_since(self, since: datetime) -> Iterable[Article]:
        """Read a page of 1,000 at a time (no connection held between pages)."""
        after: tuple[datetime, int] | None = None
        while True:
            with self.faults():
                if after is None:
                    rows = self._all(
                        "SELECT data, first_seen, seq FROM articles WHERE first_seen >= %s"
                        " AND data != %s ORDER BY first_seen, seq LIMIT 1000",
                        (since, _PRUNED),
                    )
                else:
                    rows = self._all(
                        "SELECT data, first_seen, seq FROM articles WHERE first_seen >= %s"
                        " AND data != %s AND (first_seen, seq) > (%s, %s)"
                        " ORDER BY first_seen, seq LIMIT 1000",
                        (since, _PRUNED, *after),
                    )
            for row in rows:
                yield Article.from_json(json.loads(row["data"]))
            if len(rows) < 1000:
                return
            after = (rows[-1]["first_seen"], rows[-1]["seq"])

    @guarded
    def count_articles_since(self, since: datetime) -> int:
        row = self._one(
            "SELECT count(*) AS n FROM articles WHERE first_seen >= %s AND data != %s",
            (since, _PRUNED),
        )
        return int(row["n"]) if row else 0

    @guarded
    def prune_text(self, before: datetime) -> int:
        return self._update(
            "UPDATE articles SET data = %s WHERE first_seen < %s AND data != %s",
            (_PRUNED, before, _PRUNED),
        )

    @guarded
    def prune_sent_bodies(self, before: datetime) -> int:
        return self._update(
            "UPDATE outbox SET body = '' WHERE body != '' AND (delivered_at < %s OR dead_at < %s)",
            (before, before),
        )

"""The PostgreSQL store's read views for the dashboard, health checks and metrics (a mixin
of PostgresStore): the same answers as the SQLite store's (sqlite_views), checked by
tests/store_contract/test_views.py. Ties in time break by `seq`, the order rows were
written in, as SQLite's break by rowid."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from monitor.adapters.store.postgres_schema import Row, delivery_of, state_of
from monitor.model import Article
from monitor.state import Delivery, SourceRank, SourceState, StoryCopy

__all__ = ["PostgresViews"]

_PRUNED = "{}"


def _ascii_lower(sql: str) -> str:
    """SQLite's lower() folds ASCII letters only; so does lower() in the "C" collation,
    whatever the database's locale (and fast: 16 ms, where translate() took 140, for
    10,000 sources)."""
    return f'lower(({sql}) COLLATE "C")'


_HAYSTACK = _ascii_lower(
    "name || ' ' || coalesce(fetch_url, url) || ' ' || coalesce(disabled, last_result, '')"
)
_RANKS = (
    "SELECT name, error_count, (disabled IS NOT NULL)::int, (last_fetch_at IS NOT NULL)::int,"
    " {hit} FROM sources"
)


class PostgresViews:
    """Short read-only queries (and the one "retry now" write) over the store's tables."""

    pool: ConnectionPool[psycopg.Connection[Row]]
    queries: int

    def faults(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        raise NotImplementedError

    def _update(self, sql: str, params: Sequence[Any]) -> int:
        raise NotImplementedError

    def ping(self) -> None:
        """Raise StoreError unless the database answers a query."""
        with self.faults():
            self._all("SELECT 1 AS one FROM sources LIMIT 1")

    def source_ranks(self, text: str = "") -> list[SourceRank]:
        """Every stored source, ranked briefly; `hit` says whether `text` (ASCII letters
        case-insensitive) occurs in its name, URL or last result (always, for no text)."""
        hit = "1"
        params: tuple[str, ...] = ()
        if text:
            hit = f"(strpos({_HAYSTACK}, {_ascii_lower('%s')}) > 0)::int"
            params = (text,)
        with self.faults():
            self.queries += 1
            with (
                self.pool.connection() as conn,
                conn.cursor(row_factory=tuple_row) as cur,  # plain tuples: 10,000 a request
            ):
                cur.execute(_RANKS.format(hit=hit), params)
                rows: list[SourceRank] = cur.fetchall()
        return rows

    def overdue_sources(self, before: datetime) -> list[str]:
        """The sources not disabled whose next poll (and the publisher's floor) fell due
        before `before`."""
        with self.faults():
            rows = self._all(
                "SELECT name FROM sources WHERE disabled IS NULL AND next_fetch_at < %(at)s"
                " AND (not_before IS NULL OR not_before < %(at)s)",
                {"at": before},
            )
        return [row["name"] for row in rows]

    def source_states_named(self, names: list[str]) -> list[SourceState]:
        """The stored states of these sources (those that have one)."""
        if not names:
            return []
        with self.faults():
            rows = self._all("SELECT * FROM sources WHERE name = ANY(%s)", (list(names),))
        return [state_of(row) for row in rows]

    def outbox_counts(self) -> tuple[int, int]:
        """(pending, dead) deliveries."""
        with self.faults():
            rows = self._all(
                "SELECT count(*) FILTER (WHERE delivered_at IS NULL AND dead_at IS NULL) AS p,"
                " count(*) FILTER (WHERE dead_at IS NOT NULL) AS d FROM outbox"
            )
        return int(rows[0]["p"]), int(rows[0]["d"])

    def retry_dead(self, delivery_id: str, now: datetime) -> bool:
        """Put a dead delivery back in the queue, due at `now`; False if it is not dead."""
        with self.faults():
            changed = self._update(
                "UPDATE outbox SET dead_at = NULL, next_attempt_at = %s, claim_owner = NULL"
                " WHERE id = %s AND dead_at IS NOT NULL AND delivered_at IS NULL",
                (now, delivery_id),
            )
        return bool(changed)

    def pending_page(self, limit: int) -> list[Delivery]:
        """At most `limit` deliveries waiting to be sent, oldest first."""
        with self.faults():
            rows = self._all(
                "SELECT o.*, a.url, a.title AS article_title FROM outbox o"
                " LEFT JOIN articles a ON a.id = o.article_id"
                " WHERE o.delivered_at IS NULL AND o.dead_at IS NULL"
                " ORDER BY o.created_at, o.seq LIMIT %s",
                (limit,),
            )
        return [delivery_of(row) for row in rows]

    def recent_match_articles(self, limit: int) -> list[tuple[str, str, datetime, Article | None]]:
        """The newest matches as (rule, explanation, matched at, article or None if its text
        was pruned), newest first."""
        with self.faults():
            rows = self._all(
                "SELECT m.rule, m.explanation, m.matched_at, a.data FROM matches m"
                " JOIN articles a ON a.id = m.article_id"
                " ORDER BY m.matched_at DESC, m.seq DESC LIMIT %s",
                (limit,),
            )
        return [
            (row["rule"], row["explanation"] or "", row["matched_at"].astimezone(UTC),
             _article(row["data"]))
            for row in rows
        ]  # fmt: skip

    def recent_stories(self, limit: int, scan: int = 2000) -> list[tuple[str, list[StoryCopy]]]:
        """The rules' stories with the newest matches (among the last `scan` matches), each
        as (rule, every copy in the order seen), newest story first."""
        with self.faults():
            rows = self._all(
                "SELECT rule, story_id FROM matches ORDER BY matched_at DESC, seq DESC LIMIT %s",
                (scan,),
            )
            stories = list(dict.fromkeys((r["rule"], r["story_id"]) for r in rows if r["story_id"]))
            stories = stories[:limit]
            if not stories:
                return []
            copies = self._all(
                "SELECT m.rule, m.story_id, m.article_id, m.source, a.title, a.url FROM matches m"
                " JOIN articles a ON a.id = m.article_id"
                " WHERE (m.rule, m.story_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
                " ORDER BY m.matched_at, m.seq",
                ([s[0] for s in stories], [s[1] for s in stories]),
            )
        found: dict[tuple[str, str], list[StoryCopy]] = {story: [] for story in stories}
        for r in copies:
            found[(r["rule"], r["story_id"])].append(
                StoryCopy(r["article_id"], r["source"] or "", r["title"], r["url"])
            )
        return [(rule, copies) for (rule, _), copies in found.items()]


def _article(data: str) -> Article | None:
    if data == _PRUNED:
        return None
    return Article.from_json(json.loads(data))

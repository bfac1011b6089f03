"""The SQLite store's read views for the dashboard and metrics (a mixin of SqliteStore)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import datetime
from typing import Any

from monitor.adapters.store.sqlite_schema import _PRUNED, _time
from monitor.adapters.store.sqlite_websub import SqliteWebSub
from monitor.model import Article
from monitor.state import Delivery, SourceRank, SourceState, StoryCopy

__all__ = ["SqliteViews"]


class SqliteViews(SqliteWebSub):
    """Short read-only queries (and the one "retry now" write) over the store's tables;
    the WebSub subscriptions come from `SqliteWebSub`."""

    db: Any  # the store's shared connection
    path: str

    def faults(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def ping(self) -> None:
        """Raise StoreError unless the database answers a query."""
        with self.faults():
            self.db.execute("SELECT count(*) FROM sources WHERE rowid = 1").fetchone()

    def source_ranks(self, text: str = "") -> list[SourceRank]:
        """Every stored source, ranked briefly; `hit` says whether `text` (ASCII letters
        case-insensitive) occurs in its name, URL or last result (always, for no text)."""
        with self.faults():
            cursor = self.db.cursor()
            cursor.row_factory = None  # plain tuples: 10,000 of them a dashboard request
            hit = "1"
            if text:
                hit = (
                    "instr(lower(name || ' ' || coalesce(fetch_url, url) || ' '"
                    " || coalesce(disabled, last_result, '')), lower(?)) > 0"
                )
            columns = f"name, error_count, disabled IS NOT NULL, last_fetch_at IS NOT NULL, {hit}"
            sql = f"SELECT {columns} FROM sources"  # noqa: S608 (`hit` is one of two constants)
            rows: list[SourceRank] = cursor.execute(sql, (text,) if text else ()).fetchall()
        return rows

    def overdue_sources(self, before: datetime) -> list[str]:
        """The sources not disabled whose next poll (and the publisher's floor) fell due
        before `before`."""
        at = _time(before)
        with self.faults():
            rows = self.db.execute(
                "SELECT name FROM sources WHERE disabled IS NULL AND next_fetch_at < ?"
                " AND (not_before IS NULL OR not_before < ?)",
                (at, at),
            ).fetchall()
        return [row[0] for row in rows]

    def source_states_named(self, names: list[str]) -> list[SourceState]:
        """The stored states of these sources (those that have one)."""
        from monitor.adapters.store.sqlite import SqliteStore

        found: list[SourceState] = []
        with self.faults():
            for start in range(0, len(names), 500):
                chunk = names[start : start + 500]
                rows = self.db.execute(
                    f"SELECT * FROM sources WHERE name IN ({','.join('?' * len(chunk))})",  # noqa: S608
                    chunk,
                ).fetchall()
                found.extend(SqliteStore._state(row) for row in rows)
        return found

    def outbox_counts(self) -> tuple[int, int]:
        """(pending, dead) deliveries."""
        with self.faults():
            pending = self.db.execute(
                "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND dead_at IS NULL"
            ).fetchone()[0]
            dead = self.db.execute(
                "SELECT count(*) FROM outbox WHERE dead_at IS NOT NULL"
            ).fetchone()[0]
        return int(pending), int(dead)

    def retry_dead(self, delivery_id: str, now: datetime) -> bool:
        """Put a dead delivery back in the queue, due at `now`; False if it is not dead."""
        with self.faults(), self._transaction():
            cursor = self.db.execute(
                "UPDATE outbox SET dead_at = NULL, next_attempt_at = ?"
                " WHERE id = ? AND dead_at IS NOT NULL AND delivered_at IS NULL",
                (_time(now), delivery_id),
            )
        return bool(cursor.rowcount)

    def pending_page(self, limit: int) -> list[Delivery]:
        """At most `limit` deliveries waiting to be sent, oldest first."""
        from monitor.adapters.store.sqlite import _delivery

        with self.faults():
            rows = self.db.execute(
                "SELECT o.*, a.url, a.title AS article_title FROM outbox o"
                " LEFT JOIN articles a ON a.id = o.article_id"
                " WHERE o.delivered_at IS NULL AND o.dead_at IS NULL"
                " ORDER BY o.created_at, o.rowid LIMIT ?",
                (limit,),
            ).fetchall()
        return [_delivery(row) for row in rows]

    def recent_match_articles(self, limit: int) -> list[tuple[str, str, datetime, Article | None]]:
        """The newest matches as (rule, explanation, matched at, article or None if its text
        was pruned), newest first."""
        with self.faults():
            rows = self.db.execute(
                "SELECT m.rule, m.explanation, m.matched_at, a.data, a.title, a.url, a.source"
                " FROM matches m JOIN articles a ON a.id = m.article_id"
                " ORDER BY m.matched_at DESC, m.rowid DESC LIMIT ?",  # ties: newest written first
                (limit,),
            ).fetchall()
        return [
            (row[0], row[1] or "", datetime.fromisoformat(row[2]), _article(row)) for row in rows
        ]

    def recent_stories(self, limit: int, scan: int = 2000) -> list[tuple[str, list[StoryCopy]]]:
        """The rules' stories with the newest matches (among the last `scan` matches), each
        as (rule, every copy in the order seen), newest story first."""
        with self.faults():
            rows = self.db.execute(
                "SELECT rule, story_id FROM matches ORDER BY matched_at DESC, rowid DESC LIMIT ?",
                (scan,),
            ).fetchall()
            stories = list(dict.fromkeys((row[0], row[1]) for row in rows if row[1]))[:limit]
            found = []
            for rule, story_id in stories:
                copies = self.db.execute(
                    "SELECT m.article_id, m.source, a.title, a.url FROM matches m"
                    " JOIN articles a ON a.id = m.article_id WHERE m.rule = ? AND m.story_id = ?"
                    " ORDER BY +m.matched_at, m.rowid",  # `+`: look up by story, not by rule
                    (rule, story_id),
                ).fetchall()
                found.append((rule, [StoryCopy(r[0], r[1] or "", r[2], r[3]) for r in copies]))
        return found


def _article(row: sqlite3.Row) -> Article | None:
    if row[3] == _PRUNED:
        return None
    return Article.from_json(json.loads(row[3]))

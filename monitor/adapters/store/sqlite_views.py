"""The SQLite store's read views for the dashboard and metrics (a mixin of SqliteStore)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import datetime
from typing import Any

from monitor.adapters.store.sqlite_schema import _PRUNED, _time
from monitor.model import Article
from monitor.state import Delivery, StoryCopy

__all__ = ["SqliteViews"]


class SqliteViews:
    """Short read-only queries (and the one "retry now" write) over the store's tables."""

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
                " ORDER BY m.matched_at DESC LIMIT ?",
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
                "SELECT rule, story_id FROM matches ORDER BY matched_at DESC LIMIT ?", (scan,)
            ).fetchall()
            stories = list(dict.fromkeys((row[0], row[1]) for row in rows if row[1]))[:limit]
            found = []
            for rule, story_id in stories:
                copies = self.db.execute(
                    "SELECT m.article_id, m.source, a.title, a.url FROM matches m"
                    " JOIN articles a ON a.id = m.article_id WHERE m.rule = ? AND m.story_id = ?"
                    " ORDER BY m.matched_at, m.rowid",
                    (rule, story_id),
                ).fetchall()
                found.append((rule, [StoryCopy(r[0], r[1] or "", r[2], r[3]) for r in copies]))
        return found


def _article(row: sqlite3.Row) -> Article | None:
    if row[3] == _PRUNED:
        return None
    return Article.from_json(json.loads(row[3]))

"""SQLite store: source state, seen articles, matches and the durable outbox."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from monitor.adapters.store.guard import guarded
from monitor.adapters.store.sqlite_connection import SharedConnection, Transaction, lock_for_run
from monitor.adapters.store.sqlite_schema import (
    _PRUNED,
    MIGRATIONS,
    SCHEMA_VERSION,
    STATE_COLUMNS,
    _hints_from_json,
    _hints_to_json,
    _parse,
    _time,
)
from monitor.adapters.store.sqlite_views import SqliteViews
from monitor.errors import StoreError
from monitor.model import Article
from monitor.state import (
    Delivery,
    FollowUp,
    InstanceInfo,
    MatchRecord,
    SourceState,
    StoryCopy,
)

__all__ = ["SCHEMA_VERSION", "SqliteStore", "StoreError"]

OPEN_TIMEOUT = 30.0  # seconds a connection waits for another's lock
ARTICLE_CHUNK = 500  # stored articles read at a time by `articles_since` (match --since)
# Bugs in our SQL, not faults of the database file: they keep their traceback.
_BUGS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)


class SqliteStore(SqliteViews):
    """With `exclusive`, the process is the one that polls and delivers on this database
    (`monitor run`); others may still read it."""

    def __init__(self, path: str, *, exclusive: bool = False) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = lock_for_run(path) if exclusive and path != ":memory:" else None
        try:
            self.db = sqlite3.connect(
                path,
                isolation_level=None,
                timeout=OPEN_TIMEOUT,
                check_same_thread=False,
                factory=SharedConnection,
            )
            self.db.row_factory = sqlite3.Row
            _use_wal(self.db)
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as exc:
            self._unlock()
            raise StoreError(f"cannot open database {path}: {exc}") from None
        except StoreError:
            self._unlock()
            raise

    @contextlib.contextmanager
    def faults(self) -> Iterator[None]:
        """SQLite's faults (disk full, read-only, damaged file) as a StoreError naming the
        database; bugs in our SQL keep their traceback."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, _BUGS):
                raise
            raise StoreError(f"database {self.path}: {exc}") from None

    def _migrate(self) -> None:
        """Each step under the write lock, the version read again inside it: several
        processes opening a new database at once migrate it once."""
        while (version := self.schema_version()) < SCHEMA_VERSION:
            with self._transaction():
                version = self.schema_version()
                if version < SCHEMA_VERSION:
                    MIGRATIONS[version + 1](self.db)
                    self.db.execute(f"PRAGMA user_version = {version + 1}")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"database schema {version} is newer than this news-monitor ({SCHEMA_VERSION})"
            )

    @guarded
    def check_integrity(self) -> None:
        """Refuse a damaged database (SQLite's quick check) instead of working on it."""
        problems = [row[0] for row in self.db.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise StoreError(
                f"database {self.path} is damaged ({'; '.join(problems)}):"
                " restore it from a backup, or move it away to start afresh"
            )

    def close(self) -> None:
        """Close after any transaction a worker thread still has open (a save that outlived
        the shutdown grace) has ended, and only then free the run lock."""
        try:
            with self.db.lock:
                self.db.close()
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @guarded
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    @guarded
    def source_state(self, name: str) -> SourceState | None:
        row = self.db.execute("SELECT * FROM sources WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._state(row)

    @guarded
    def source_states(self) -> list[SourceState]:
        rows = self.db.execute("SELECT * FROM sources ORDER BY name").fetchall()
        return [self._state(row) for row in rows]

    @staticmethod
    def _state(row: sqlite3.Row) -> SourceState:
        return SourceState(
            name=row["name"],
            url=row["url"],
            etag=row["etag"],
            last_modified=row["last_modified"],
            last_fetch_at=_parse(row["last_fetch_at"]),
            last_ok_at=_parse(row["last_ok_at"]),
            last_result=row["last_result"],
            error_count=row["error_count"],
            next_fetch_at=_parse(row["next_fetch_at"]),
            items_seen=row["items_seen"],
            fetch_url=row["fetch_url"],
            not_before=_parse(row["not_before"]),
            failing_since=_parse(row["failing_since"]),
            failure_reported=bool(row["failure_reported"]),
            disabled=row["disabled"],
            hints=_hints_from_json(row["hints"]),
        )

    @guarded
    def known_ids(self, ids: Iterable[str]) -> set[str]:
        return self._found("SELECT id FROM articles WHERE id IN ({marks})", ids)

    @guarded
    def known_links(self, ids: Iterable[str], now: datetime) -> set[str]:
        """The page-link ids that need no fetch at `now`: stored articles, and links
        settled until later."""
        wanted = list(ids)
        settled = self._found(
            "SELECT id FROM links WHERE id IN ({marks}) AND recheck_at > ?", wanted, _time(now)
        )
        return self.known_ids(wanted) | settled

    def _found(self, query: str, ids: Iterable[str], *params: str | None) -> set[str]:
        """The ids `query` selects, asked 500 at a time: `{marks}` in it stands for the
        placeholders of a chunk of ids, `params` follow them."""
        wanted = list(ids)
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            sql = query.format(marks=",".join("?" * len(chunk)))
            found.update(row[0] for row in self.db.execute(sql, [*chunk, *params]))
        return found

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
        """Record a fetch: new source state, new articles, their matches and deliveries, the
        page links settled without an article until a time (see `Reading`), and the stories'
        follow-ups to schedule (or put off, if not yet queued), at once."""
        with self._transaction():
            self._put_state(state)
            self.db.executemany(
                "INSERT OR REPLACE INTO links (id, source, settled_at, recheck_at)"
                " VALUES (?, ?, ?, ?)",
                [(link, state.name, _time(now), _time(until)) for link, until in settled_links],
            )
            self.db.executemany(
                "INSERT OR IGNORE INTO articles (id, source, url, title, published, first_seen,"
                " data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        a.id,
                        a.source,
                        a.url,
                        a.title,
                        _time(a.published),
                        _time(now),
                        json.dumps(a.to_json(), ensure_ascii=False),
                    )
                    for a in articles
                ],
            )
            self.db.executemany(
                "INSERT OR IGNORE INTO matches (article_id, rule, terms, matched_at, story_id,"
                " fingerprint, source, explanation) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (m.article_id, m.rule, json.dumps(m.terms), _time(m.matched_at),
                     m.story_id or m.article_id, m.fingerprint or None, m.source,
                     m.explanation or None)
                    for m in matches
                ],
            )  # fmt: skip
            self._put_deliveries(deliveries)
            self.db.executemany(
                "INSERT INTO follow_ups (rule, story_id, target, due_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (rule, story_id, target) DO UPDATE"
                " SET due_at = max(due_at, excluded.due_at) WHERE queued_at IS NULL",
                [(f.rule, f.story_id, f.target, _time(f.due_at)) for f in follow_ups],
            )

    def _put_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO outbox (id, article_id, rule, target, title, body,"
            " created_at, next_attempt_at, body_format) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (d.id, d.article_id, d.rule, d.target, d.title, d.body, _time(d.created_at),
                 _time(d.next_attempt_at or d.created_at), d.body_format)
                for d in deliveries
            ],
        )  # fmt: skip

    @guarded
    def save_state(self, state: SourceState) -> None:
        with self._transaction():
            self._put_state(state)

    def _put_state(self, state: SourceState) -> None:
        values = (
            state.name, state.url, state.etag, state.last_modified,
            _time(state.last_fetch_at), _time(state.last_ok_at), state.last_result,
            state.error_count, _time(state.next_fetch_at), state.items_seen, state.fetch_url,
            _time(state.not_before), _time(state.failing_since), int(state.failure_reported),
            state.disabled, _hints_to_json(state.hints),
        )  # fmt: skip
        updates = ", ".join(f"{c} = excluded.{c}" for c in STATE_COLUMNS[1:])
        self.db.execute(
            f"INSERT INTO sources ({', '.join(STATE_COLUMNS)})"  # noqa: S608
            f" VALUES ({', '.join('?' * len(STATE_COLUMNS))})"
            f" ON CONFLICT (name) DO UPDATE SET {updates}",
            values,
        )

    @guarded
    def pending_deliveries(self, now: datetime, *, due_only: bool = True) -> list[Delivery]:
        query = (
            "SELECT o.*, a.url, a.title AS article_title FROM outbox o"
            " LEFT JOIN articles a ON a.id = o.article_id"
            " WHERE o.delivered_at IS NULL AND o.dead_at IS NULL"
        )
        params: tuple[str, ...] = ()
        if due_only:
            query += " AND o.next_attempt_at <= ?"
            params = (_time(now) or "",)
        rows = self.db.execute(query + " ORDER BY o.created_at, o.rowid", params).fetchall()
        return [_delivery(row) for row in rows]

    @guarded
    def mark_delivered(self, delivery_id: str, now: datetime) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL"
                " WHERE id = ?",
                (_time(now), delivery_id),
            )

    @guarded
    def mark_failed(self, delivery_id: str, error: str, next_attempt_at: datetime) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
                " WHERE id = ?",
                (error, _time(next_attempt_at), delivery_id),
            )

    @guarded
    def mark_folded(self, delivery_ids: Sequence[str], into: str, now: datetime) -> None:
        """Record deliveries sent as part of another message ("and N more")."""
        with self._transaction():
            self.db.executemany(
                "UPDATE outbox SET delivered_at = ?, folded_into = ? WHERE id = ?",
                [(_time(now), into, delivery_id) for delivery_id in delivery_ids],
            )

    @guarded
    def messages_sent(self, target: str, since: datetime) -> int:
        """Messages (folded ones not counted) delivered to `target` since `since`."""
        row = self.db.execute(
            "SELECT count(*) FROM outbox WHERE target = ? AND delivered_at >= ?"
            " AND folded_into IS NULL",
            (target, _time(since)),
        ).fetchone()
        return int(row[0])

    @guarded
    def story_fingerprints(self, rule: str, since: datetime) -> list[tuple[str, bytes]]:
        """(story id, fingerprint) of the rule's matches since `since`."""
        rows = self.db.execute(
            "SELECT story_id, fingerprint FROM matches WHERE rule = ? AND matched_at >= ?"
            " AND fingerprint IS NOT NULL ORDER BY matched_at",
            (rule, _time(since)),
        ).fetchall()
        return [(row[0], bytes(row[1])) for row in rows]

    @guarded
    def recent_articles(self, source: str, since: datetime, limit: int) -> list[Article]:
        """The source's newest `limit` articles first seen since `since` (text not pruned)."""
        rows = self.db.execute(
            "SELECT data FROM articles WHERE source = ? AND first_seen >= ? AND data != ?"
            " ORDER BY first_seen DESC LIMIT ?",
            (source, _time(since), _PRUNED, limit),
        ).fetchall()
        return [Article.from_json(json.loads(row[0])) for row in rows]

    @guarded
    def due_follow_ups(self, now: datetime) -> list[FollowUp]:
        rows = self.db.execute(
            "SELECT rule, story_id, target, due_at FROM follow_ups"
            " WHERE queued_at IS NULL AND due_at <= ? ORDER BY due_at",
            (_time(now),),
        ).fetchall()
        return [FollowUp(row[0], row[1], row[2], datetime.fromisoformat(row[3])) for row in rows]

    @guarded
    def story_copies(self, rule: str, story_id: str) -> list[StoryCopy]:
        """Every article of the rule's story, in the order they were matched."""
        rows = self.db.execute(
            "SELECT m.article_id, m.source, a.title, a.url FROM matches m"
            " JOIN articles a ON a.id = m.article_id WHERE m.rule = ? AND m.story_id = ?"
            " ORDER BY +m.matched_at, m.rowid",  # `+`: look up by story, not scan the rule
            (rule, story_id),
        ).fetchall()
        return [StoryCopy(row[0], row[1] or "", row[2], row[3]) for row in rows]

    @guarded
    def queue_follow_up(
        self, follow_up: FollowUp, delivery: Delivery | None, now: datetime
    ) -> bool:
        """Mark a due follow-up done and queue its message (none: settle it unsent), at
        once; False if it was done already or a newer copy has put it off."""
        with self._transaction():
            cursor = self.db.execute(
                "UPDATE follow_ups SET queued_at = ? WHERE rule = ? AND story_id = ?"
                " AND target = ? AND queued_at IS NULL AND due_at <= ?",
                (_time(now), follow_up.rule, follow_up.story_id, follow_up.target, _time(now)),
            )
            if cursor.rowcount and delivery is not None:
                self._put_deliveries([delivery])
        return bool(cursor.rowcount)

    @guarded
    def drop_follow_up(self, follow_up: FollowUp) -> None:
        """Forget a follow-up not yet queued (a later copy from another outlet schedules it
        again)."""
        with self._transaction():
            self.db.execute(
                "DELETE FROM follow_ups WHERE rule = ? AND story_id = ? AND target = ?"
                " AND queued_at IS NULL",
                (follow_up.rule, follow_up.story_id, follow_up.target),
            )

    @guarded
    def digest_covered_until(self, rule: str) -> datetime | None:
        row = self.db.execute(
            "SELECT covered_until FROM digests WHERE rule = ?", (rule,)
        ).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    @guarded
    def matches_between(
        self, rule: str, start: datetime, end: datetime
    ) -> list[tuple[MatchRecord, Article]]:
        rows = self.db.execute(
            "SELECT m.*, a.data FROM matches m JOIN articles a ON a.id = m.article_id"
            " WHERE m.rule = ? AND m.matched_at > ? AND m.matched_at <= ?"
            " ORDER BY m.matched_at, m.article_id",
            (rule, _time(start), _time(end)),
        ).fetchall()
        return [(_match(row), Article.from_json(json.loads(row["data"]))) for row in rows]

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
        """Queue a digest's messages and move its period forward, at once (with `check`,
        only if the period still begins at `expected`)."""
        with self._transaction():
            if check:
                row = self.db.execute(
                    "SELECT covered_until FROM digests WHERE rule = ?", (rule,)
                ).fetchone()
                if (None if row is None else datetime.fromisoformat(row[0])) != expected:
                    return False
            self._put_deliveries(deliveries)
            self.db.execute(
                "INSERT INTO digests (rule, covered_until) VALUES (?, ?)"
                " ON CONFLICT (rule) DO UPDATE SET covered_until = excluded.covered_until",
                (rule, _time(covered_until)),
            )
        return True

    def claim_deliveries(self, now: datetime, *, due_only: bool = True) -> list[Delivery]:
        """The pending deliveries: the run lock makes this the only sending process."""
        return self.pending_deliveries(now, due_only=due_only)

    def claim_poll(
        self,
        name: str,
        url: str,
        now: datetime,
        *,
        due_only: bool = True,
        unpolled_since: datetime | None = None,
    ) -> bool:
        """Granted: the run lock makes this the only polling process."""
        return True

    def story_lock(self) -> contextlib.AbstractContextManager[None]:
        """Nothing more to hold: one process polls the file, and its service serialises
        its own polls' grouping."""
        return contextlib.nullcontext()

    def release_poll(self, name: str) -> None:
        """Nothing to give back (see `claim_poll`)."""

    def host_turns(self) -> None:
        """One process polls: its fetcher's own per-host manners hold."""
        return

    def heartbeat(self, now: datetime) -> None:
        """No cluster to tell."""

    def instances(self) -> list[InstanceInfo]:
        """None recorded: one process polls a SQLite file (its pid is in the lock file)."""
        return []

    def polled_by(self) -> dict[str, str]:
        return {}

    @guarded
    def mark_dead(self, delivery_id: str, error: str, now: datetime) -> None:
        """Stop retrying: the delivery is kept, with its error, for `monitor status`."""
        with self._transaction():
            self.db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, dead_at = ?"
                " WHERE id = ?",
                (error, _time(now), delivery_id),
            )

    @guarded
    def dead_deliveries(self, limit: int = 20) -> list[Delivery]:
        rows = self.db.execute(
            "SELECT * FROM outbox WHERE dead_at IS NOT NULL ORDER BY dead_at DESC, rowid DESC"
            " LIMIT ?",
            (limit,),
        ).fetchall()
        return [_delivery(row) for row in rows]

    def articles_since(self, since: datetime) -> Iterable[Article]:
        """Stored articles first seen since `since`, whose text has not been pruned; read
        `ARTICLE_CHUNK` at a time (keyset on first_seen, rowid), one short query each."""
        after, rowid = _time(since), -1
        while True:
            with self.faults():
                rows = self.db.execute(
                    "SELECT first_seen, rowid, data FROM articles WHERE data != ? AND"
                    " (first_seen > ? OR (first_seen = ? AND rowid > ?))"
                    " ORDER BY first_seen, rowid LIMIT ?",
                    (_PRUNED, after, after, rowid, ARTICLE_CHUNK),
                ).fetchall()
            yield from (Article.from_json(json.loads(row[2])) for row in rows)
            if len(rows) < ARTICLE_CHUNK:
                return
            after, rowid = rows[-1][0], rows[-1][1]

    @guarded
    def count_articles_since(self, since: datetime) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM articles WHERE first_seen >= ? AND data != ?",
            (_time(since), _PRUNED),
        ).fetchone()
        return int(row[0])

    @guarded
    def prune_text(self, before: datetime) -> int:
        """Drop the text of articles first seen before `before`; their ids stay, so they
        still never alert twice."""
        with self._transaction():
            cursor = self.db.execute(
                "UPDATE articles SET data = ? WHERE first_seen < ? AND data != ?",
                (_PRUNED, _time(before), _PRUNED),
            )
        return int(cursor.rowcount)

    @guarded
    def prune_sent_bodies(self, before: datetime) -> int:
        """Drop the bodies of messages delivered or given up on before `before`; the rows
        stay for rate limits, folding and `monitor status`. Pending messages keep theirs."""
        with self._transaction():
            cursor = self.db.execute(
                "UPDATE outbox SET body = '' WHERE body != ''"
                " AND (delivered_at < ? OR dead_at < ?)",
                (_time(before), _time(before)),
            )
        return int(cursor.rowcount)

    @guarded
    def recent_matches(self, limit: int = 20) -> list[tuple[MatchRecord, str, str]]:
        """The newest matches with their article's title and URL."""
        rows = self.db.execute(
            "SELECT m.*, a.title, a.url FROM matches m JOIN articles a ON a.id = m.article_id"
            " ORDER BY m.matched_at DESC, m.rowid DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [(_match(row), row["title"], row["url"]) for row in rows]

    def _transaction(self) -> Transaction:
        return Transaction(self.db)


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch the database to WAL, retried while another process holds it: SQLite answers
    "database is locked" at once, without its busy wait, when several processes open a
    new database together and each tries to switch it."""
    deadline = time.monotonic() + OPEN_TIMEOUT
    pause = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def _match(row: sqlite3.Row) -> MatchRecord:
    return MatchRecord(
        article_id=row["article_id"],
        rule=row["rule"],
        terms=tuple(json.loads(row["terms"])),
        matched_at=datetime.fromisoformat(row["matched_at"]),
        story_id=row["story_id"] or row["article_id"],
        fingerprint=bytes(row["fingerprint"] or b""),
        source=row["source"] or "",
        explanation=row["explanation"] or "",
    )


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row["id"],
        article_id=row["article_id"],
        rule=row["rule"],
        target=row["target"],
        title=row["title"],
        body=row["body"],
        created_at=datetime.fromisoformat(row["created_at"]),
        attempts=row["attempts"],
        next_attempt_at=_parse(row["next_attempt_at"]),
        last_error=row["last_error"],
        url=(row["url"] if "url" in row.keys() else "") or "",  # noqa: SIM118
        body_format=row["body_format"],
        article_title=(row["article_title"] if "article_title" in row.keys() else "") or "",  # noqa: SIM118
    )

"""Real processes on one SQLite database: one worker at a time; damaged, full, read-only files."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from monitor.adapters.store.sqlite import SCHEMA_VERSION, SqliteStore
from monitor.errors import StoreError
from monitor.state import FollowUp, SourceState
from tests.servers import FixtureServer, Page, Request, SmtpServer, WebhookReceiver
from tests.test_end_to_end import RULES, run_once, serve_feed, start_daemon, write_config
from tests.test_service import NOW, RecordingNotifier, make_config, run, service_for, source


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs where the test's config keeps its database (`state/`)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "state"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "--lazy", str(disk)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill `disk` with one file, then give back `leave` bytes of it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 65536)
        os.ftruncate(fd, max(os.fstat(fd).st_size - leave, 0))
    finally:
        os.close(fd)
    return filler


class StderrLines:
    """A running process's stderr, read line by line in a thread, to wait for log lines."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self.stream = process.stderr
        self.lines: list[str] = []
        self.arrived = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.stream:
            with self.arrived:
                self.lines.append(line)
                self.arrived.notify_all()

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> bool:
        with self.arrived:
            return self.arrived.wait_for(
                lambda: sum(text in line for line in self.lines) >= count, timeout
            )

    def text(self) -> str:
        self.thread.join(timeout=30)
        return "".join(self.lines)


def monitor(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def quiet_items(count: int, words: int = 200, prefix: str = "quiet") -> bytes:
    """A feed of items no rule matches, with some text each, so the database has many pages."""
    text = " ".join(f"word{n}" for n in range(words))
    items = "".join(
        f"<item><guid>{prefix}-{n}</guid><title>Weather report {n}</title>"
        f"<description>{text}</description></item>"
        for n in range(count)
    )
    return f'<rss version="2.0"><channel><title>quiet</title>{items}</channel></rss>'.encode()


def test_a_second_worker_on_the_database_stops_at_once_naming_the_first(
    tmp_path: Path,
    seeds: Path,
    feed_server: FixtureServer,
    smtp: SmtpServer,
    webhook: WebhookReceiver,
) -> None:
    config = write_config(tmp_path, serve_feed(feed_server, seeds), smtp.port, webhook.port)
    daemon = start_daemon(config)
    try:
        working = webhook.wait_for(lambda requests: len(requests) >= 1, timeout=60)
        once_beside = run_once(config)
        daemon_beside = monitor(config, "run")
        status_beside = monitor(config, "status")
        backtest_beside = monitor(config, "match", "Japan AND abduction", "--since", "7d")
        daemon.kill()
        daemon.wait(timeout=30)
        after_kill_9 = run_once(config)
    finally:
        daemon.kill()

    assert working
    for refused in (once_beside, daemon_beside):
        assert refused.returncode == 2, refused.stderr
        assert f"another monitor (pid {daemon.pid}, started " in refused.stderr
        assert "monitor.db" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert status_beside.returncode == 0, status_beside.stderr
    assert "asia-dispatch" in status_beside.stdout
    assert backtest_beside.returncode == 0, backtest_beside.stderr
    assert "abduction" in backtest_beside.stdout
    assert after_kill_9.returncode == 0, after_kill_9.stderr
    assert len(webhook.posts) == 1


def test_a_damaged_database_is_reported_by_status_and_run(
    tmp_path: Path, feed_server: FixtureServer, smtp: SmtpServer, webhook: WebhookReceiver
) -> None:
    feed_server.pages["/quiet.rss"] = Page(quiet_items(300))
    config = write_config(tmp_path, feed_server.url("/quiet.rss"), smtp.port, webhook.port)
    assert run_once(config).returncode == 0
    database = tmp_path / "state" / "monitor.db"
    size = database.stat().st_size
    with database.open("r+b") as file:
        file.seek(size // 2 // 4096 * 4096)
        file.write(b"\xff" * 4096)

    status = monitor(config, "status")
    again = run_once(config)

    for result in (status, again):
        assert result.returncode == 2, result.stderr
        assert (
            f"database {Path('state/monitor.db')}" in result.stderr or "monitor.db" in result.stderr
        )
        assert "damaged" in result.stderr or "malformed" in result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def _open_store_together(barrier: Barrier, path: str, outcomes: Queue[str]) -> None:
    barrier.wait()
    try:
        SqliteStore(path).close()
        outcomes.put("ok")
    except Exception as exc:
        outcomes.put(repr(exc))


def test_six_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    path = str(tmp_path / "fresh.db")
    forked = multiprocessing.get_context("fork")
    barrier, outcomes = forked.Barrier(6), forked.Queue()
    processes = [
        forked.Process(target=_open_store_together, args=(barrier, path, outcomes))
        for _ in range(6)
    ]
    for process in processes:
        process.start()
    results = [outcomes.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)

    assert results == ["ok"] * 6
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def big_feed(count: int) -> bytes:
    items = "".join(f"<item><guid>{n}</guid><title>Item {n}</title></item>" for n in range(count))
    return f'<rss version="2.0"><channel><title>big</title>{items}</channel></rss>'.encode()


def write_sources(config: Path, urls: list[str]) -> None:
    """Replace the config's one source with one per URL."""
    text = config.read_text(encoding="utf-8")
    head = text[: text.index("[[sources]]")]
    sources = "".join(
        f'[[sources]]\nname = "feed-{n}"\nurl = "{url}"\n' for n, url in enumerate(urls)
    )
    config.write_text(head + sources, encoding="utf-8")


def test_sigterm_during_big_polls_stops_quietly(
    tmp_path: Path, feed_server: FixtureServer, smtp: SmtpServer, webhook: WebhookReceiver
) -> None:
    body = big_feed(150_000)
    paths = [f"/big-{n}.rss" for n in range(3)]
    for path in paths:
        feed_server.pages[path] = Page(body)
    config = write_config(tmp_path, feed_server.url(paths[0]), smtp.port, webhook.port)
    write_sources(config, [feed_server.url(path) for path in paths])
    daemon = start_daemon(config)
    try:
        polling = feed_server.wait_for(lambda requests: len(requests) >= 3, timeout=60)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=120)
    finally:
        daemon.kill()

    assert polling
    assert daemon.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr


def test_sighup_then_sigterm_reloads_and_still_stops_cleanly(
    tmp_path: Path,
    seeds: Path,
    feed_server: FixtureServer,
    smtp: SmtpServer,
    webhook: WebhookReceiver,
) -> None:
    config = write_config(tmp_path, serve_feed(feed_server, seeds), smtp.port, webhook.port)
    daemon = start_daemon(config)
    try:
        polled = feed_server.wait_for(lambda requests: len(requests) >= 1, timeout=60)
        daemon.send_signal(signal.SIGHUP)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
    finally:
        daemon.kill()

    assert polled
    assert daemon.returncode == 0, stderr
    assert "config reloaded: no changes" in stderr  # the reload in flight finished first
    assert "Traceback" not in stderr


def test_a_full_disk_backs_polls_off_then_stops_the_daemon(
    tmp_path: Path,
    small_disk: Path,
    feed_server: FixtureServer,
    smtp: SmtpServer,
    webhook: WebhookReceiver,
) -> None:
    paths = [f"/quiet-{n}.rss" for n in range(5)]
    for path in paths:
        feed_server.pages[path] = Page(quiet_items(300))
    config = write_config(tmp_path, feed_server.url(paths[0]), smtp.port, webhook.port)
    write_sources(config, [feed_server.url(path) for path in paths])
    assert monitor(config, "status").returncode == 0  # creates the database
    fill(small_disk, leave=256 * 1024)

    daemon = start_daemon(config)
    try:
        _, stderr = daemon.communicate(timeout=90)
    finally:
        daemon.kill()

    assert daemon.returncode == 2, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("monitor: stopped: the last 5 polls could not be saved (database ")
    assert "monitor.db: database or disk is full)" in last
    assert "Traceback" not in stderr
    assert [len(feed_server.gets(path)) for path in paths] == [1] * 5


def test_run_once_on_a_full_disk_fails_in_one_line(
    tmp_path: Path,
    small_disk: Path,
    feed_server: FixtureServer,
    smtp: SmtpServer,
    webhook: WebhookReceiver,
) -> None:
    feed_server.pages["/quiet.rss"] = Page(quiet_items(300))
    config = write_config(tmp_path, feed_server.url("/quiet.rss"), smtp.port, webhook.port)
    assert monitor(config, "status").returncode == 0  # creates the database
    fill(small_disk, leave=256 * 1024)

    once = run_once(config)

    assert once.returncode == 2, once.stderr
    assert "Traceback" not in once.stderr
    assert once.stderr.strip().splitlines()[-1] == (
        f"monitor: database {small_disk / 'monitor.db'}: database or disk is full"
    )


class DiskFillingWebhook(WebhookReceiver):
    """Fills the disk as the first post arrives, so its delivery cannot be recorded."""

    def __init__(self, disk: Path) -> None:
        super().__init__()
        self.disk = disk
        self.filler: Path | None = None

    def handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        if self.filler is None:
            self.filler = fill(self.disk)
        return super().handle(request)


def test_a_delivery_that_cannot_be_recorded_is_not_sent_again(
    tmp_path: Path, seeds: Path, small_disk: Path, feed_server: FixtureServer, smtp: SmtpServer
) -> None:
    hook = DiskFillingWebhook(small_disk).start()
    config = write_config(tmp_path, serve_feed(feed_server, seeds), smtp.port, hook.port)
    (tmp_path / "rules.toml").write_text(RULES.replace('["email", "hook"]', '["hook"]'))
    daemon = start_daemon(config)
    log = StderrLines(daemon)
    try:
        refused_twice = log.wait_for("could not be recorded as sent", count=2, timeout=90)
        assert hook.filler is not None
        hook.filler.unlink()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        stderr = log.text()
        later = run_once(config)
    finally:
        daemon.kill()
        hook.stop()

    assert len(hook.posts) == 1
    assert refused_twice, stderr
    assert daemon.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert later.returncode == 0, later.stderr
    with sqlite3.connect(small_disk / "monitor.db") as db:
        assert db.execute("SELECT count(*) FROM outbox WHERE delivered_at IS NULL").fetchone() == (
            0,
        )


def test_run_once_on_a_read_only_database_fails_in_one_line_and_status_still_reads_it(
    tmp_path: Path,
    seeds: Path,
    small_disk: Path,
    feed_server: FixtureServer,
    smtp: SmtpServer,
    webhook: WebhookReceiver,
) -> None:
    config = write_config(tmp_path, serve_feed(feed_server, seeds), smtp.port, webhook.port)
    daemon = start_daemon(config)
    try:
        assert webhook.wait_for(lambda requests: len(requests) >= 1, timeout=60)
        daemon.kill()  # leaves the WAL behind, so SQLite can still read the database
        daemon.wait(timeout=30)
    finally:
        daemon.kill()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)

    once = run_once(config)
    status = monitor(config, "status")

    assert once.returncode == 2, once.stderr
    assert "Traceback" not in once.stderr
    assert once.stderr.strip().splitlines() == [
        f"monitor: cannot open database {small_disk / 'monitor.db'} for writing:"
        " Read-only file system"
    ]
    assert status.returncode == 0, status.stderr
    assert "asia-dispatch" in status.stdout


class FullStore(SqliteStore):
    """A real store whose writes fail, as on a full disk, while `full` is set (a seam for
    the cases a tmpfs cannot pin down: which write fails, and when)."""

    full_for: frozenset[str] = frozenset()

    def _refuse(self, write: str) -> None:
        if write in self.full_for:
            raise StoreError(f"database {self.path}: database or disk is full")

    def save_poll(self, *args: Any, **kwargs: Any) -> None:
        self._refuse("save_poll")
        super().save_poll(*args, **kwargs)

    def save_state(self, state: SourceState) -> None:
        self._refuse("save_state")
        super().save_state(state)

    def mark_delivered(self, delivery_id: str, now: datetime) -> None:
        self._refuse("mark_delivered")
        super().mark_delivered(delivery_id, now)

    def due_follow_ups(self, now: datetime) -> list[FollowUp]:
        self._refuse("due_follow_ups")
        return super().due_follow_ups(now)


def test_a_poll_the_store_refuses_backs_off_in_memory(
    tmp_path: Path, seeds: Path, feed_server: FixtureServer
) -> None:
    feed_server.pages["/asia.rss"] = Page((seeds / "feeds" / "asia.rss").read_bytes())
    config = make_config(tmp_path, [source(feed_server, "/asia.rss")])
    store = FullStore(str(tmp_path / "m.db"))
    store.full_for = frozenset({"save_poll", "save_state"})
    service = service_for(config, store, RecordingNotifier())

    run(service, deliver=False)

    state = service.state_of(config.sources[0])
    assert (state.error_count, state.next_fetch_at) == (1, NOW + timedelta(minutes=15))
    assert not service.is_due(config.sources[0], ignore_interval=False)
    assert service.store_failures == 1
    assert store.source_state("asia") is None


def test_a_send_the_store_cannot_record_is_not_sent_again_and_recorded_later(
    tmp_path: Path, seeds: Path, feed_server: FixtureServer
) -> None:
    feed_server.pages["/asia.rss"] = Page((seeds / "feeds" / "asia.rss").read_bytes())
    config = make_config(tmp_path, [source(feed_server, "/asia.rss")])
    store = FullStore(str(tmp_path / "m.db"))
    notifier = RecordingNotifier()
    service = service_for(config, store, notifier)
    run(service, deliver=False)

    store.full_for = frozenset({"mark_delivered"})
    asyncio.run(service.deliver(due_only=False))
    asyncio.run(service.deliver(due_only=False))
    refused = [d.id for d in store.pending_deliveries(NOW, due_only=False)]
    store.full_for = frozenset()
    asyncio.run(service.deliver(due_only=False))

    assert len(notifier.sent) == 1
    assert len(refused) == 1
    assert store.pending_deliveries(NOW, due_only=False) == []
    assert service.outbox.unrecorded == {}


def test_follow_ups_the_store_refuses_do_not_hold_up_queued_alerts(
    tmp_path: Path, seeds: Path, feed_server: FixtureServer
) -> None:
    feed_server.pages["/asia.rss"] = Page((seeds / "feeds" / "asia.rss").read_bytes())
    config = make_config(tmp_path, [source(feed_server, "/asia.rss")])
    store = FullStore(str(tmp_path / "m.db"))
    notifier = RecordingNotifier()
    service = service_for(config, store, notifier)
    run(service, deliver=False)

    store.full_for = frozenset({"due_follow_ups"})
    report = asyncio.run(service.deliver(due_only=False))

    assert report.sent == len(notifier.sent) == 1
    assert store.pending_deliveries(NOW, due_only=False) == []


def test_a_database_reached_through_a_symlink_has_the_same_run_lock(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "other").mkdir()
    first = SqliteStore(str(tmp_path / "data" / "m.db"), exclusive=True)
    (tmp_path / "other" / "m.db").symlink_to(tmp_path / "data" / "m.db")
    try:
        with pytest.raises(StoreError, match="another monitor"):
            SqliteStore(str(tmp_path / "other" / "m.db"), exclusive=True)
    finally:
        first.close()


def test_closing_waits_for_a_transaction_another_thread_has_open(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "m.db"))
    in_transaction, finish = threading.Event(), threading.Event()

    def save() -> None:
        with store._transaction():
            store.db.execute("INSERT INTO sources (name, url) VALUES ('a', 'http://a/')")
            in_transaction.set()
            finish.wait(timeout=10)

    writer = threading.Thread(target=save)
    writer.start()
    assert in_transaction.wait(timeout=10)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(timeout=0.2)
    still_open = closer.is_alive()
    finish.set()
    writer.join(timeout=10)
    closer.join(timeout=10)

    assert still_open
    reopened = SqliteStore(str(tmp_path / "m.db"))
    assert reopened.source_state("a") is not None
    reopened.close()

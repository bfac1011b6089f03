"""A running `monitor run` reloaded by SIGHUP, with JSON logs: every line parses."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import FixtureServer, Page, WebhookReceiver
from tests.test_end_to_end import many_matching_items

CONFIG = """
[monitor]
database = "state/monitor.db"
rules = ["rules/*.toml"]
sources = ["sources/*.toml"]
backfill = "100000d"
log_format = "json"

[targets]
hook = "json://127.0.0.1:{port}/alerts/s3cr3t-token-path"
"""
NO_MATCH = '[[rules]]\nname = "quiet"\nquery = "zzzz-never"\nnotify = ["hook"]\n'
JAPAN = '[[rules]]\nname = "japan"\nquery = "Japan AND North Korea"\nnotify = ["hook"]\n'


class Daemon:
    """`monitor run` in the background, its stderr read line by line as it comes."""

    def __init__(self, config: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "-c", str(config), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines)]

    def wait_for(self, found: Callable[[dict[str, Any]], bool], timeout: float = 30) -> bool:
        with self.changed:
            return self.changed.wait_for(
                lambda: (
                    any(found(json.loads(line)) for line in self.lines)
                    or self.process.poll() is not None
                ),
                timeout,
            ) and any(found(json.loads(line)) for line in self.lines)

    def count(self, found: Callable[[dict[str, Any]], bool]) -> int:
        return sum(1 for record in self.records() if found(record))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        return code


@pytest.fixture
def daemon_dir(tmp_path: Path, feed_server: FixtureServer, webhook: WebhookReceiver) -> Path:
    for folder in ("rules", "sources", "state"):
        (tmp_path / folder).mkdir()
    (tmp_path / "config.toml").write_text(CONFIG.format(port=webhook.port), encoding="utf-8")
    (tmp_path / "rules" / "main.toml").write_text(NO_MATCH, encoding="utf-8")
    feed_server.pages["/a.rss"] = Page(many_matching_items(2))
    feed_server.pages["/b.rss"] = Page(many_matching_items(3).replace(b"story-", b"b-story-"))
    (tmp_path / "sources" / "a.toml").write_text(
        f'[[sources]]\nname = "a"\nurl = "{feed_server.url("/a.rss")}"\n', encoding="utf-8"
    )
    return tmp_path


@pytest.fixture
def running(daemon_dir: Path) -> Iterator[Daemon]:
    daemon = Daemon(daemon_dir / "config.toml")
    yield daemon
    daemon.process.kill()


def reloaded(record: dict[str, Any]) -> bool:
    return str(record["message"]).startswith("config reloaded")


def refused(record: dict[str, Any]) -> bool:
    return str(record["message"]).startswith("reload failed")


def test_sighup_brings_a_new_rule_and_source_live_and_a_broken_file_keeps_the_old(
    daemon_dir: Path, running: Daemon, feed_server: FixtureServer, webhook: WebhookReceiver
) -> None:
    assert running.wait_for(lambda r: r["message"].startswith("a: 2 new")), running.lines
    assert webhook.posts == []  # the first rule matches nothing

    # 1: a new rule and a new source, in their own files, go live without a restart
    (daemon_dir / "rules" / "japan.toml").write_text(JAPAN, encoding="utf-8")
    (daemon_dir / "sources" / "b.toml").write_text(
        f'[[sources]]\nname = "b"\nurl = "{feed_server.url("/b.rss")}"\ngroup = "Wire"\n',
        encoding="utf-8",
    )
    running.process.send_signal(signal.SIGHUP)
    assert running.wait_for(reloaded)
    assert webhook.wait_for(lambda requests: len(requests) >= 3, timeout=30)
    assert sorted(p["title"] for p in webhook.posts) == [
        f"Japan and North Korea summit, part {n} [japan]" for n in range(3)
    ]
    summary = next(r for r in running.records() if reloaded(r))["message"]
    assert "sources +1 (b)" in summary and "rules +1 (japan)" in summary
    assert len(feed_server.gets("/a.rss")) == 1  # no burst: the unchanged source waits

    # 2: a broken rules file and a new source: refused, the running config kept
    (daemon_dir / "rules" / "japan.toml").write_text(
        JAPAN.replace("Japan AND North Korea", "Japan AND (North Korea"), encoding="utf-8"
    )
    (daemon_dir / "sources" / "c.toml").write_text(
        f'[[sources]]\nname = "c"\nurl = "{feed_server.url("/c.rss")}"\n', encoding="utf-8"
    )
    running.process.send_signal(signal.SIGHUP)
    assert running.wait_for(refused)
    error = next(r for r in running.records() if refused(r))
    assert error["level"] == "error"
    assert error["file"].endswith("rules/japan.toml") and error["line"] == 3
    assert error["key"] == "rules[0].query"

    # 3: fixed again, source a removed, the target moved to another receiver; the summary
    # shows c was never part of the running config; c's alerts go to the new receiver
    (daemon_dir / "rules" / "japan.toml").write_text(JAPAN, encoding="utf-8")
    (daemon_dir / "sources" / "a.toml").unlink()
    feed_server.pages["/c.rss"] = Page(
        many_matching_items(2)
        .replace(b"story-", b"c-story-")
        .replace(b"summit, part", b"ministers meet in Hanoi for talks, round")
    )
    config = daemon_dir / "config.toml"
    moved = WebhookReceiver().start()
    try:
        config.write_text(CONFIG.format(port=moved.port), encoding="utf-8")
        running.process.send_signal(signal.SIGHUP)
        assert running.wait_for(
            lambda r: (
                reloaded(r)
                and "sources +1 (c) -1 (a)" in r["message"]
                and "targets ~1 (hook)" in r["message"]
            )
        )
        assert moved.wait_for(lambda requests: len(requests) >= 2, timeout=30)
        assert running.process.poll() is None
        code = running.stop()
    finally:
        moved.stop()

    assert code == 0
    assert len(webhook.posts) == 3
    with sqlite3.connect(daemon_dir / "state" / "monitor.db") as db:
        kept = db.execute("SELECT name FROM sources ORDER BY name").fetchall()
    assert kept == [("a",), ("b",), ("c",)]  # a removed source's state is kept
    records = running.records()  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert all(r["instance"].endswith(f":{running.process.pid}") for r in records)
    assert any(r.get("source") == "b" and r["message"].startswith("b: 3 new") for r in records)
    assert not any("s3cr3t-token-path" in line for line in running.lines)
    assert "Traceback" not in "".join(running.lines)


def test_log_level_and_format_flags_override_the_config(daemon_dir: Path) -> None:
    config = daemon_dir / "config.toml"
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    text = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once", "-c", str(config),
         "--log-format", "text", "--log-level", "warning"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    debug = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once", "-c", str(config),
         "--log-level", "debug"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip

    assert text.returncode == 0 and debug.returncode == 0, debug.stderr
    assert "cycle done" not in text.stderr  # an INFO line, below the level asked for
    assert not text.stderr.lstrip().startswith("{")
    records = [json.loads(line) for line in debug.stderr.splitlines()]
    assert any(r["level"] == "debug" for r in records)
    assert any(r["message"].startswith("cycle done") for r in records)
    assert "s3cr3t-token-path" not in debug.stderr


def test_watch_reloads_when_a_rules_file_changes_and_keeps_running_on_a_bad_one(
    daemon_dir: Path, webhook: WebhookReceiver
) -> None:
    config = daemon_dir / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("[monitor]\n", "[monitor]\nwatch = true\n"),
        encoding="utf-8",
    )
    daemon = Daemon(config)
    try:
        assert daemon.wait_for(lambda r: r["message"].startswith("watching ") and
                               "config changes" in r["message"])  # fmt: skip
        assert daemon.wait_for(lambda r: r["message"].startswith("a: 2 new"))
        (daemon_dir / "rules" / "main.toml").write_text("[[rules]\n", encoding="utf-8")
        assert daemon.wait_for(refused)
        (daemon_dir / "rules" / "main.toml").write_text(
            NO_MATCH.replace("quiet", "calm"), encoding="utf-8"
        )
        assert daemon.wait_for(lambda r: reloaded(r) and "rules +1 (calm) -1 (quiet)" in
                               r["message"])  # fmt: skip
        assert daemon.process.poll() is None
    finally:
        code = daemon.stop()
    assert code == 0
    assert daemon.count(reloaded) == 1


def test_a_json_run_that_cannot_start_still_logs_one_json_line(daemon_dir: Path) -> None:
    (daemon_dir / "rules" / "main.toml").write_text('[[rules]]\nname = "x"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--log-format", "json",
         "-c", str(daemon_dir / "config.toml")],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip

    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    record = json.loads(line)
    assert record["level"] == "error" and record["key"] == "rules[0].query"
    assert record["file"].endswith("main.toml") and "is required" in record["message"]

"""`monitor run` with [web] on an ephemeral port, against fixture feeds on 127.0.0.1."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import FixtureServer, Page, WebhookReceiver

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
RULES = """
[[rules]]
name = "japan-korea"
query = "Japan AND North Korea AND summit|abduction"
notify = ["hook"]
"""


def hostile_feed() -> bytes:
    """A JSON Feed (whose titles are plain text by its spec) with markup in a headline."""
    now = datetime.now(UTC).isoformat()
    items = [
        (f"Japan and North Korea hold summit {HOSTILE}", "http://127.0.0.1/world/summit",
         "Talks on the abduction issue went on."),
        ("Japan, North Korea: the summit ends", "http://127.0.0.1/world/summit-ends",
         "The abduction issue stays open."),
        ("Weather for the weekend", "http://127.0.0.1/weather", "Sunny."),
    ]  # fmt: skip
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Fixture",
        "items": [
            {"id": link, "url": link, "title": title, "content_text": text, "date_published": now}
            for title, link, text in items
        ],
    }
    return json.dumps(feed).encode()


@dataclass
class Daemon:
    process: subprocess.Popen[str]
    port: int
    log: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


def write_config(
    tmp: Path, feeds: FixtureServer, hook: WebhookReceiver, *, extra: str = ""
) -> Path:
    (tmp / "rules.toml").write_text(RULES, encoding="utf-8")
    config = tmp / "config.toml"
    config.write_text(
        f"""
[monitor]
database = "state/monitor.db"
rules = ["rules.toml"]
backfill = "100000d"

[web]
listen = "127.0.0.1:0"
{extra}
[targets]
hook = "json://127.0.0.1:{hook.port}/alerts-secret-path"

[[sources]]
name = "asia-dispatch"
url = "{feeds.url("/asia.rss")}"

[[sources]]
name = "broken-wire"
url = "{feeds.url("/broken.rss")}"
""",
        encoding="utf-8",
    )
    feeds.pages["/asia.rss"] = Page(hostile_feed(), content_type="application/feed+json")
    feeds.pages["/broken.rss"] = Page(b"down", status=500, content_type="text/plain")
    return config


def start(config: Path, timeout: float = 30) -> Daemon:
    """Start `monitor run` and wait for its log to name the dashboard's port."""
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        found = re.search(r"dashboard at http://127\.0\.0\.1:(\d+)/", line)
        if found:
            return Daemon(process, int(found.group(1)), log)
    process.kill()
    raise AssertionError("the daemon never named its web port:\n" + "".join(log))


def wait_until(condition: Callable[[], bool], timeout: float = 30, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)  # polling a condition with a deadline
    return False


def metric(daemon: Daemon, name: str, **labels: str) -> float:
    text = httpx.get(daemon.url("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0

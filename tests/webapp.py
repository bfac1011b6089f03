"""The web app over a real SQLite store filled with fixture data, served on 127.0.0.1 (an
ephemeral port) from an event loop in a thread, for HTTP and browser tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.adapters.fetch import HttpFetcher
from monitor.adapters.notify import AppriseNotifier
from monitor.adapters.store.sqlite import SqliteStore
from monitor.config.files import load_config
from monitor.config.schema import Config
from monitor.model import Article, Block
from monitor.ports import ClosingFetcher, StoreBackend
from monitor.state import Delivery, MatchRecord, SourceState
from monitor.web.app import WebContext
from monitor.web.metrics import Metrics
from monitor.web.server import WebServer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TOKEN = "s3cret-token-0123456789"
HOSTILE_TITLE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'

RULES = """
[[rules]]
name = "japan-korea"
query = "Japan AND North Korea AND summit|abduction"
notify = ["hook"]
"""


def write_config(tmp_path: Path, *, token: str | None = None, sources: int = 3) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.toml").write_text(RULES)
    lines = [
        "[monitor]",
        'database = "m.db"',
        "[web]",
        'listen = "127.0.0.1:0"',
    ]
    if token:
        lines.append(f'auth_token = "{token}"')
    lines += [
        "[targets]",
        'hook = "json://127.0.0.1:9/secret-path-XYZ?token=hunter2"',
    ]
    names = ["asia-dispatch", "broken-feed", "quiet-wire"]
    for index in range(sources):
        name = names[index] if index < len(names) else f"source-{index:05d}"
        lines += ["[[sources]]", f'name = "{name}"', f'url = "https://{name}.example/feed.xml"']
    config = tmp_path / "config.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def article(n: int, source: str, title: str | None = None) -> Article:
    return Article(
        id=f"a{n}",
        url=f"https://{source}.example/story/{n}",
        source=source,
        title=title or f"Japan and North Korea hold summit ({n})",
        lede="Japan and North Korea held a summit on the abduction issue.",
        body=(Block("paragraph", "Officials from Japan met North Korea's envoy at a summit."),),
    )


def fill(store: StoreBackend, config: Config) -> None:
    """Three sources (one failing), matches, a story carried by two outlets, one pending and
    one dead delivery, and a hostile headline."""
    store.save_state(
        SourceState("broken-feed", "https://broken-feed.example/feed.xml",
                    last_fetch_at=NOW - timedelta(minutes=5), last_result="HTTP 500",
                    error_count=4, next_fetch_at=NOW + timedelta(minutes=30),
                    failing_since=NOW - timedelta(hours=2))
    )  # fmt: skip
    store.save_state(
        SourceState("quiet-wire", "https://quiet-wire.example/feed.xml",
                    last_fetch_at=NOW - timedelta(minutes=3), last_ok_at=NOW,
                    last_result="not modified", next_fetch_at=NOW + timedelta(minutes=12))
    )  # fmt: skip
    first = article(1, "asia-dispatch")
    copy = article(2, "quiet-wire", "Japan, North Korea summit: the abduction issue")
    hostile = article(3, "asia-dispatch", HOSTILE_TITLE)
    state = SourceState("asia-dispatch", "https://asia-dispatch.example/feed.xml",
                        last_fetch_at=NOW - timedelta(minutes=1), last_ok_at=NOW,
                        last_result="ok: 3 new", next_fetch_at=NOW + timedelta(minutes=14),
                        items_seen=3)  # fmt: skip
    terms = ("Japan", "north korea", "summit")
    matches = [
        MatchRecord("a1", "japan-korea", terms, NOW - timedelta(minutes=9), "a1",
                    source="asia-dispatch", explanation="Japan (title), north korea (title)"),
        MatchRecord("a2", "japan-korea", terms, NOW - timedelta(minutes=8), "a1",
                    source="quiet-wire", explanation="Japan (title)"),
        MatchRecord("a3", "japan-korea", terms, NOW - timedelta(minutes=7), "a3",
                    source="asia-dispatch", explanation="Japan (lede)"),
    ]  # fmt: skip
    deliveries = [
        Delivery("d-pending", "a1", "japan-korea", "hook", "Japan and North Korea hold summit",
                 "body", NOW - timedelta(minutes=9), next_attempt_at=NOW),
        Delivery("d-dead", "a3", "japan-korea", "hook", "An alert that never went", "body",
                 NOW - timedelta(days=2), next_attempt_at=NOW),
    ]  # fmt: skip
    store.save_poll(state, [first, copy, hostile], matches, deliveries, NOW - timedelta(minutes=9))
    store.mark_dead("d-dead", "HTTP 503 from the webhook", NOW - timedelta(hours=1))


@dataclass
class RunningWeb:
    config: Config
    store: SqliteStore
    metrics: Metrics
    server: WebServer
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    woken: list[bool] = field(default_factory=list)
    running: list[bool] = field(default_factory=lambda: [True])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def call(self, function: Callable[[], Any]) -> Any:
        """Run `function` in the server's event loop (e.g. a metrics update)."""
        return asyncio.run_coroutine_threadsafe(_wrap(function), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.store.close()


async def _wrap(function: Callable[[], Any]) -> Any:
    return function()


def start_web(
    tmp_path: Path,
    *,
    token: str | None = None,
    sources: int = 3,
    fill_store: bool = True,
    tester_fetcher: Callable[[], ClosingFetcher] | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
) -> RunningWeb:
    config = load_config(str(write_config(tmp_path, token=token, sources=sources)), env={})
    store = SqliteStore(config.settings.database)
    if fill_store:
        fill(store, config)
    metrics = Metrics(config.targets)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    holder: dict[str, RunningWeb] = {}
    woken: list[bool] = []
    running = [True]
    context = WebContext(
        config=config,
        store=store,
        directory=AppriseNotifier({n: t.url for n, t in config.targets.items()}),
        metrics=metrics,
        scheduler_running=lambda: running[0],
        wake_outbox=lambda: woken.append(True),
        tester_fetcher=tester_fetcher
        or (lambda: HttpFetcher("test", concurrency=2, public_only=True)),
        started_at=NOW - timedelta(minutes=30),
        clock=clock,
    )
    assert config.web is not None
    server = WebServer(context, config.web.host, config.web.port)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    holder["web"] = RunningWeb(config, store, metrics, server, loop, thread, woken, running)
    return holder["web"]

"""A WebSub subscriber under test: the real Service, SqliteStore, HttpFetcher, HttpHubClient
and the web server's callbacks on 127.0.0.1, a loopback hub (tests/websub_hub.py) and the
fixture feed server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.adapters.fetch import HttpFetcher
from monitor.adapters.hub import HttpHubClient
from monitor.adapters.store.sqlite import SqliteStore
from monitor.config.schema import Config, Rule, Settings, Source, Target, WebSettings
from monitor.daemon import build_service
from monitor.rules import compile_query
from monitor.service.poll import Service
from monitor.service.websub import Subscriber
from monitor.state import SendResult
from monitor.web.app import WebContext
from monitor.web.metrics import Metrics
from monitor.web.server import WebServer
from tests.servers import FixtureServer
from tests.websub_hub import LoopbackHub


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, target: str, title: str, body: str, body_format: str = "markdown") -> SendResult:
        self.sent.append((target, title))
        return SendResult(True)

    def describe(self, name: str) -> str:
        return name

    def problems(self) -> dict[str, str]:
        return {}


class Clock:
    """The subscriber's clock: real time plus `ahead`."""

    def __init__(self) -> None:
        self.ahead = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@dataclass
class Env:
    config: Config
    store: SqliteStore
    service: Service
    subscriber: Subscriber
    notifier: RecordingNotifier
    hub: LoopbackHub
    feeds: FixtureServer
    server: WebServer
    clock: Clock

    @property
    def source(self) -> Source:
        return self.config.sources[0]

    def reconfigure(self, change: Callable[[Config], Config]) -> None:
        self.config = change(self.config)
        self.subscriber.config = self.service.config = self.config


def config_for(tmp: Path, sources: list[Source]) -> Config:
    settings = Settings(str(tmp / "m.db"), (), timedelta(minutes=15), timedelta(days=1), "test/1")
    rule = Rule("jnk", compile_query("Japan AND North Korea AND summit|abduction"), ("a",))
    targets = {"a": Target("a", "json://127.0.0.1/a")}
    web = WebSettings("127.0.0.1", 0)
    return Config("config.toml", settings, targets, tuple(sources), (rule,), web)


@asynccontextmanager
async def subscriber_env(
    tmp: Path, feeds: FixtureServer, path: str = "/feed", hub: LoopbackHub | None = None
) -> AsyncIterator[Env]:
    hub = await (hub or LoopbackHub()).start()
    source = Source("asia", feeds.url(path), timedelta(minutes=15))
    config = config_for(tmp, [source])
    store = SqliteStore(config.settings.database)
    notifier = RecordingNotifier()
    service = build_service(config, HttpFetcher("test/1"), store, notifier)
    clock = Clock()
    hub_client = HttpHubClient("test/1")
    subscriber = Subscriber(config, store, hub_client, service, clock)
    context = WebContext(
        config=config, store=store, directory=notifier, metrics=Metrics(["a"]),
        scheduler_running=lambda: True, wake_outbox=lambda: None,
        tester_fetcher=lambda: HttpFetcher("test/1"), subscriber=subscriber,
    )  # fmt: skip
    server = WebServer(context, "127.0.0.1", 0)
    await server.start()
    assert config.web is not None
    public = replace(config.web, public_url=f"http://127.0.0.1:{server.port}/")
    env = Env(replace(config, web=public), store, service, subscriber, notifier, hub, feeds,
              server, clock)  # fmt: skip
    env.reconfigure(lambda c: c)
    try:
        yield env
    finally:
        for task in list(subscriber.tasks):
            task.cancel()
        await server.stop()
        await hub.stop()
        await hub_client.aclose()
        await service.collector.fetcher.aclose()  # type: ignore[attr-defined]
        store.close()


def atom(
    hub: str | None,
    self_url: str | None,
    entries: list[tuple[str, str]] = (),  # type: ignore[assignment]
    when: datetime | None = None,
) -> bytes:
    """An Atom feed advertising `hub` and `self_url`; entries are (id, title)."""
    when = when or datetime.now(UTC)
    links = ""
    if hub:
        links += f'<link rel="hub" href="{hub}"/>'
    if self_url:
        links += f'<link rel="self" href="{self_url}"/>'
    items = "".join(
        f"<entry><id>{eid}</id><title>{title}</title><link href='https://news.example/{eid}'/>"
        f"<published>{when.isoformat()}</published><updated>{when.isoformat()}</updated>"
        f"<summary>{title}</summary></entry>"
        for eid, title in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Asia</title><id>urn:asia</id><updated>{when.isoformat()}</updated>"
        f"{links}{items}</feed>"
    ).encode()


def rss(hub: str, self_url: str, entries: list[tuple[str, str]] = ()) -> bytes:  # type: ignore[assignment]
    items = "".join(
        f"<item><guid>{eid}</guid><title>{title}</title><link>https://news.example/{eid}</link>"
        "</item>"
        for eid, title in entries
    )
    return (
        '<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">'
        f"<channel><title>Asia</title><link>https://news.example/</link>"
        f'<atom:link rel="hub" href="{hub}"/><atom:link rel="self" href="{self_url}"/>'
        f"{items}</channel></rss>"
    ).encode()


def html_page(hub: str, self_url: str) -> bytes:
    return (
        "<!doctype html><html><head><title>Asia</title>"
        f'<link rel="hub" href="{hub}"><link rel="self" href="{self_url}"></head>'
        "<body><article><h1>Nothing</h1><p>Text.</p></article></body></html>"
    ).encode()

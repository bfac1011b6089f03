"""One poll and one outbox pass with a real fetcher, store and HTTP server; a recording notifier."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.adapters.fetch import HttpFetcher
from monitor.adapters.store.sqlite import SqliteStore
from monitor.config.schema import Config, Rule, Settings, Source, Target
from monitor.daemon import build_service
from monitor.rules import compile_query
from monitor.service.poll import Service
from monitor.state import SendResult
from tests.servers import FixtureServer, Page, Request, free_port

NOW = datetime(2024, 7, 2, 12, 0, tzinfo=UTC)


class RecordingNotifier:
    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.failing = failing
        self.sent: list[tuple[str, str]] = []

    def send(self, target: str, title: str, body: str, body_format: str = "markdown") -> SendResult:
        if target in self.failing:
            return SendResult(False, f"delivery to {target} failed")
        self.sent.append((target, title))
        return SendResult(True)


def make_config(tmp: Path, sources: list[Source], notify: tuple[str, ...] = ("a",)) -> Config:
    settings = Settings(str(tmp / "m.db"), (), timedelta(minutes=15), timedelta(days=1), "test/1")
    rule = Rule("jnk", compile_query("Japan AND North Korea AND summit|abduction"), notify)
    targets = {name: Target(name, f"json://127.0.0.1/{name}") for name in ("a", "b")}
    return Config("config.toml", settings, targets, tuple(sources), (rule,))


def run(service: Service, *, deliver: bool = True) -> None:
    async def cycle() -> None:
        try:
            await service.poll_all(ignore_interval=True)
            if deliver:
                await service.deliver(due_only=False)
        finally:
            await service.collector.fetcher.aclose()  # type: ignore[attr-defined]

    asyncio.run(cycle())


def service_for(
    config: Config, store: SqliteStore, notifier: RecordingNotifier, **fetch: float
) -> Service:
    return build_service(config, HttpFetcher("test/1", **fetch), store, notifier, clock=lambda: NOW)  # type: ignore[arg-type]


def source(server: FixtureServer, path: str, name: str = "asia") -> Source:
    return Source(name, server.url(path), timedelta(minutes=15))


def test_one_failing_source_does_not_stop_the_others(
    tmp_path: Path, seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    feed_server.pages["/asia.rss"] = Page((seeds / "feeds" / "asia.rss").read_bytes())
    dead = Source("dead", f"http://127.0.0.1:{free_port()}/feed", timedelta(minutes=15))
    sources = [dead, source(feed_server, "/missing", "missing"), source(feed_server, "/asia.rss")]
    notifier = RecordingNotifier()

    run(service_for(make_config(tmp_path, sources), store, notifier))

    assert [title for _, title in notifier.sent] == [
        "Japan, North Korea held meeting in May – S Korean newspaper [jnk]"
    ]
    states = {s.name: s for s in store.source_states()}
    assert states["missing"].last_result == "HTTP 404"
    assert states["dead"].error_count == 1
    assert "Connect" in (states["dead"].last_result or "")
    assert states["dead"].next_fetch_at == NOW + timedelta(minutes=15)


def test_a_failing_target_does_not_hold_back_the_others(
    tmp_path: Path, seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    feed_server.pages["/asia.rss"] = Page((seeds / "feeds" / "asia.rss").read_bytes())
    config = make_config(tmp_path, [source(feed_server, "/asia.rss")], notify=("a", "b"))
    notifier = RecordingNotifier(failing=frozenset({"a"}))

    run(service_for(config, store, notifier))

    assert [target for target, _ in notifier.sent] == ["b"]
    pending = store.pending_deliveries(NOW, due_only=False)
    assert [(d.target, d.attempts, d.next_attempt_at) for d in pending] == [
        ("a", 1, NOW + timedelta(seconds=30))
    ]


def test_reordered_and_redated_items_never_alert_twice(
    tmp_path: Path, seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    rss = (seeds / "feeds" / "asia.rss").read_text(encoding="utf-8")
    feed_server.pages["/asia.rss"] = Page(rss.encode())
    config = make_config(tmp_path, [source(feed_server, "/asia.rss")])
    notifier = RecordingNotifier()
    run(service_for(config, store, notifier))
    head, *items = rss.split("<item>")
    items[-1] = items[-1].replace("</channel>", "").replace("</rss>", "")
    shuffled = head + "<item>" + "<item>".join(reversed(items)) + "</channel></rss>"
    shuffled = shuffled.replace("Tue, 02 Jul 2024 09:41:00 GMT", "Tue, 02 Jul 2024 11:59:00 GMT")
    feed_server.pages["/asia.rss"] = Page(shuffled.encode())

    run(service_for(config, store, notifier))

    assert len(notifier.sent) == 1
    assert store.source_state("asia").items_seen == 5  # type: ignore[union-attr]


def test_validators_are_echoed_and_kept_on_304(
    tmp_path: Path, seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    page = Page((seeds / "feeds" / "asia.rss").read_bytes(), etag='W/"v1"')
    page.headers["Last-Modified"] = "Tue, 02 Jul 2024 11:05:00 GMT"
    feed_server.pages["/asia.rss"] = page
    config = make_config(tmp_path, [source(feed_server, "/asia.rss")])

    for _ in range(2):
        run(service_for(config, store, RecordingNotifier()))

    first, second = feed_server.gets("/asia.rss")
    assert "if-none-match" not in first.headers
    assert second.headers["if-none-match"] == 'W/"v1"'
    assert second.headers["if-modified-since"] == "Tue, 02 Jul 2024 11:05:00 GMT"
    state = store.source_state("asia")
    assert state is not None and state.etag == 'W/"v1"' and state.last_result == "not modified"


def test_requests_carry_no_cookies_and_name_the_project(
    seeds: Path, feed_server: FixtureServer
) -> None:
    page = Page((seeds / "feeds" / "asia.rss").read_bytes())
    page.headers["Set-Cookie"] = "session=abc; Path=/"
    feed_server.pages["/asia.rss"] = page

    async def twice() -> None:
        fetcher = HttpFetcher("news-monitor/0.1.0 (+https://example.com)")
        await fetcher.fetch(feed_server.url("/asia.rss"))
        await fetcher.fetch(feed_server.url("/asia.rss"))
        await fetcher.aclose()

    asyncio.run(twice())

    second = feed_server.gets("/asia.rss")[1]
    assert "cookie" not in second.headers
    assert "referer" not in second.headers
    assert second.headers["user-agent"].startswith("news-monitor/")
    assert "gzip" in second.headers["accept-encoding"]


def test_a_huge_response_is_cut_off_at_the_cap(
    tmp_path: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    items = "".join(f"<item><guid>g{n}</guid><title>Item {n}</title></item>" for n in range(5000))
    feed_server.pages["/huge.rss"] = Page(f"<rss><channel>{items}</channel></rss>".encode())

    async def fetch() -> int:
        fetcher = HttpFetcher("test/1", max_bytes=10_000)
        try:
            response = await fetcher.fetch(feed_server.url("/huge.rss"))
        finally:
            await fetcher.aclose()
        assert response.truncated
        return len(response.content)

    assert asyncio.run(fetch()) == 10_000


class StallingServer(FixtureServer):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        self.release.wait(timeout=30)
        return 200, {}, b""


def test_a_stalled_source_times_out_and_is_recorded(tmp_path: Path, store: SqliteStore) -> None:
    server = StallingServer().start()
    try:
        config = make_config(tmp_path, [source(server, "/slow.rss", "slow")])
        run(service_for(config, store, RecordingNotifier(), timeout=0.3, connect_timeout=0.3))
    finally:
        server.release.set()
        server.stop()

    state = store.source_state("slow")
    assert state is not None and state.error_count == 1
    assert "Timeout" in (state.last_result or "")


def test_a_delivery_failing_past_the_give_up_age_is_dead(
    tmp_path: Path, seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    feed_server.pages["/asia.rss"] = Page((seeds / "feeds" / "asia.rss").read_bytes())
    config = make_config(tmp_path, [source(feed_server, "/asia.rss")])
    run(service_for(config, store, RecordingNotifier(failing=frozenset({"a"}))))
    late = build_service(
        config, HttpFetcher("t"), store, RecordingNotifier(frozenset({"a"})),
        clock=lambda: NOW + timedelta(hours=24),
    )  # fmt: skip

    run(late)

    assert store.pending_deliveries(NOW + timedelta(days=9), due_only=False) == []
    dead = store.dead_deliveries()
    assert [(d.target, d.attempts) for d in dead] == [("a", 2)]


SHARED_GUID_TITLES = (
    "Dispatch: harbour cranes stand idle after the storm",
    "Dispatch: village bakery wins the regional bread prize",
    "Dispatch: council votes to reopen the old railway line",
    "Dispatch: rare orchids found blooming beside the motorway",
    "Dispatch: chess club celebrates its hundredth season",
)


def shared_guid_feed(server: FixtureServer) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>{server.url(f'/story/{n}')}</link>"
        "<guid isPermaLink='false'>urn:cms:item</guid>"
        "<pubDate>Tue, 02 Jul 2024 11:00:00 GMT</pubDate></item>"
        for n, title in enumerate(SHARED_GUID_TITLES)
    )
    return f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>".encode()


def test_an_item_keeps_its_id_when_a_newer_one_starts_sharing_its_guid(
    tmp_path: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    """The stored item is not stored (nor alerted) again under its link; the newcomer
    alerts once."""

    def item(n: int, day: int) -> str:
        return (f"<item><title>Dispatch {n}</title><link>{feed_server.url(f'/story/{n}')}</link>"
                "<guid isPermaLink='false'>urn:cms:item</guid>"
                f"<pubDate>Tue, 0{day} Jul 2024 11:00:00 GMT</pubDate></item>")  # fmt: skip

    def feed(*items: str) -> bytes:
        return (
            f"<rss version='2.0'><channel><title>t</title>{''.join(items)}</channel></rss>".encode()
        )

    config = make_config(tmp_path, [source(feed_server, "/shared.rss", "cms")])
    config = replace(config, rules=(Rule("dispatch", compile_query("Dispatch"), ("a",)),))
    notifier = RecordingNotifier()
    for items in ((item(1, 2),), (item(2, 3), item(1, 2)), (item(3, 4), item(2, 3))):
        feed_server.pages["/shared.rss"] = Page(feed(*items))
        run(service_for(config, store, notifier))

    assert sorted(title for _, title in notifier.sent) == [
        f"Dispatch {n} [dispatch]" for n in (1, 2, 3)
    ]
    assert store.db.execute("SELECT count(*) FROM articles").fetchone()[0] == 3


def test_items_sharing_a_guid_under_different_links_each_alert_and_are_logged(
    tmp_path: Path,
    store: SqliteStore,
    feed_server: FixtureServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed_server.pages["/shared.rss"] = Page(shared_guid_feed(feed_server))
    config = make_config(tmp_path, [source(feed_server, "/shared.rss", "cms")])
    config = replace(config, rules=(Rule("dispatch", compile_query("Dispatch"), ("a",)),))
    notifier = RecordingNotifier()

    with caplog.at_level("WARNING", logger="monitor.service.collect"):
        run(service_for(config, store, notifier))
    run(service_for(config, store, notifier))

    assert sorted(title for _, title in notifier.sent) == sorted(
        f"{title} [dispatch]" for title in SHARED_GUID_TITLES
    )
    assert (
        "cms: identity collision: 5 items share the guid 'urn:cms:item'; the oldest keeps it,"
        " the others are known by their links" in caplog.messages
    )

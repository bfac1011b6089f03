"""Fetching manners against loopback servers that record every request."""

from __future__ import annotations

import asyncio
import base64
import gzip
import itertools
import socket
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import brotli
import pytest

from monitor.adapters.fetch import FetchError, HttpFetcher
from monitor.adapters.store.sqlite import SqliteStore
from monitor.config.schema import Config, Rule, Settings, Source, Target
from monitor.daemon import build_service
from monitor.rules import compile_query
from monitor.service.poll import Service
from monitor.state import FetchResponse, SendResult
from tests.servers import FixtureServer, Page, Request, free_port

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><guid>one</guid><title>Japan and North Korea hold summit</title></item>
</channel></rss>"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class Notices:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, target: str, title: str, body: str, body_format: str = "markdown") -> SendResult:
        self.sent.append((target, title, body))
        return SendResult(True)


def config(*sources: Source, failures_to: str | None = "ops") -> Config:
    settings = Settings(
        ":memory:", (), timedelta(minutes=15), timedelta(days=1), "news-monitor/test",
        failures_to=failures_to, failure_threshold=timedelta(hours=24),
    )  # fmt: skip
    rule = Rule("jnk", compile_query("Japan AND North Korea"), ("ops",))
    return Config("c.toml", settings, {"ops": Target("ops", "json://x")}, sources, (rule,))


def feed(server: FixtureServer, path: str = "/feed", name: str = "feed") -> Source:
    return Source(name, server.url(path), timedelta(minutes=15))


class Harness:
    """A service with a controllable clock; each cycle is one `run --once`."""

    def __init__(self, cfg: Config, store: SqliteStore, host_gap: float = 0.5) -> None:
        self.config = cfg
        self.store = store
        self.clock = Clock()
        self.notices = Notices()
        self.host_gap = host_gap

    def service(self, fetcher: HttpFetcher) -> Service:
        return build_service(self.config, fetcher, self.store, self.notices, self.clock)

    def cycle(self) -> None:
        async def run() -> None:
            fetcher = HttpFetcher("t/1", host_gap=self.host_gap)
            service = self.service(fetcher)
            try:
                await service.poll_all(ignore_interval=True)
                await service.deliver(due_only=False)
            finally:
                await fetcher.aclose()

        asyncio.run(run())


def test_new_source_gets_one_unconditional_request_then_exact_validators(
    feed_server: FixtureServer, store: SqliteStore
) -> None:
    page = Page(RSS, etag='W/"5e1-a/b"')
    page.headers["Last-Modified"] = "Sat, 28 Nov 2026 11:00:00 GMT"
    feed_server.pages["/feed"] = page
    harness = Harness(config(feed(feed_server)), store)

    for _ in range(3):
        harness.cycle()

    first, *later = feed_server.gets("/feed")
    assert "if-none-match" not in first.headers and "if-modified-since" not in first.headers
    assert [r.headers["if-none-match"] for r in later] == ['W/"5e1-a/b"'] * 2
    assert [r.headers["if-modified-since"] for r in later] == ["Sat, 28 Nov 2026 11:00:00 GMT"] * 2


def test_validators_renewed_by_a_304_are_kept(
    feed_server: FixtureServer, store: SqliteStore
) -> None:
    class Renewing(FixtureServer):
        def handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
            if request.headers.get("if-none-match") == '"v1"':
                return 304, {"ETag": '"v2"'}, b""
            return 200, {"ETag": '"v1"', "Content-Type": "application/rss+xml"}, RSS

    server = Renewing().start()
    try:
        harness = Harness(config(feed(server)), store)
        for _ in range(3):
            harness.cycle()
    finally:
        server.stop()

    assert [r.headers.get("if-none-match") for r in server.requests] == [None, '"v1"', '"v2"']


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        (429, "120", timedelta(seconds=120)),
        (503, "Sat, 28 Nov 2026 14:00:00 GMT", timedelta(hours=2)),
        (503, None, timedelta(hours=1)),
        (429, "999999", timedelta(hours=24)),
    ],
)
def test_retry_after_is_honoured_even_by_run_once(
    feed_server: FixtureServer,
    store: SqliteStore,
    status: int,
    retry_after: str | None,
    wait: timedelta,
) -> None:
    page = Page(b"slow down", status=status, content_type="text/plain")
    if retry_after:
        page.headers["Retry-After"] = retry_after
    feed_server.pages["/feed"] = page
    harness = Harness(config(feed(feed_server)), store)

    harness.cycle()
    harness.clock.advance(wait - timedelta(seconds=1))
    harness.cycle()

    assert len(feed_server.gets("/feed")) == 1
    state = store.source_state("feed")
    assert state is not None and state.not_before == datetime(2026, 11, 28, 12, tzinfo=UTC) + wait
    harness.clock.advance(timedelta(seconds=1))
    harness.cycle()
    assert len(feed_server.gets("/feed")) == 2


def test_cache_control_and_ttl_are_floors_on_the_next_fetch(
    feed_server: FixtureServer, store: SqliteStore
) -> None:
    page = Page(RSS.replace(b"<title>t</title>", b"<title>t</title><ttl>90</ttl>"))
    page.headers["Cache-Control"] = "public, max-age=3600"
    feed_server.pages["/feed"] = page
    harness = Harness(config(feed(feed_server)), store)

    harness.cycle()
    harness.clock.advance(timedelta(minutes=89))
    harness.cycle()
    harness.clock.advance(timedelta(minutes=1))
    harness.cycle()

    assert len(feed_server.gets("/feed")) == 2


def test_permanent_redirects_move_the_source_and_temporary_ones_do_not(
    feed_server: FixtureServer, store: SqliteStore
) -> None:
    feed_server.pages["/old"] = Page(b"", status=301, headers={"Location": "/hop"})
    feed_server.pages["/hop"] = Page(b"", status=308, headers={"Location": "/new"})
    feed_server.pages["/new"] = Page(RSS)
    feed_server.pages["/temp"] = Page(b"", status=302, headers={"Location": "/new"})
    sources = (feed(feed_server, "/old", "moved"), feed(feed_server, "/temp", "temp"))
    harness = Harness(config(*sources), store, host_gap=0)

    harness.cycle()
    harness.cycle()

    moved, temp = store.source_state("moved"), store.source_state("temp")
    assert moved is not None and moved.fetch_url == feed_server.url("/new")
    assert temp is not None and temp.fetch_url is None
    assert len(feed_server.gets("/old")) == 1
    assert len(feed_server.gets("/temp")) == 2
    assert all("referer" not in r.headers for r in feed_server.requests)


def test_permanent_redirect_to_something_unreadable_does_not_move_the_source(
    feed_server: FixtureServer, store: SqliteStore
) -> None:
    feed_server.pages["/old"] = Page(b"", status=301, headers={"Location": "/parked"})
    feed_server.pages["/parked"] = Page(b"\x00\x01 parked domain", content_type="text/plain")
    harness = Harness(config(feed(feed_server, "/old")), store)

    harness.cycle()

    state = store.source_state("feed")
    assert state is not None and state.fetch_url is None and state.error_count == 1


@pytest.mark.parametrize(
    ("pages", "error"),
    [
        ({"/a": "/b", "/b": "/a"}, "redirect loop"),
        ({f"/{n}": f"/{n + 1}" for n in range(7)}, "more than 5 redirects"),
    ],
)
def test_redirect_loops_and_long_chains_are_errors(
    feed_server: FixtureServer, store: SqliteStore, pages: dict[str, str], error: str
) -> None:
    for path, target in pages.items():
        feed_server.pages[path] = Page(b"", status=302, headers={"Location": target})
    start = "/a" if "/a" in pages else "/0"
    harness = Harness(config(feed(feed_server, start)), store, host_gap=0)

    harness.cycle()

    state = store.source_state("feed")
    assert state is not None and error in (state.last_result or "")


def test_410_disables_the_source_and_reports_it_once(
    feed_server: FixtureServer, store: SqliteStore
) -> None:
    feed_server.pages["/feed"] = Page(b"gone", status=410, content_type="text/plain")
    harness = Harness(config(feed(feed_server)), store)

    harness.cycle()
    harness.clock.advance(timedelta(days=2))
    harness.cycle()

    assert len(feed_server.gets("/feed")) == 1
    state = store.source_state("feed")
    assert state is not None and state.disabled and "410" in state.disabled
    assert [(t, title) for t, title, _ in harness.notices.sent] == [
        ("ops", "news-monitor: source feed is failing")
    ]
    fetcher = HttpFetcher("t/1")
    assert harness.service(fetcher).next_due(harness.config.sources[0]) is None
    asyncio.run(fetcher.aclose())


def test_errors_back_off_exponentially_and_a_long_failure_is_reported_once(
    feed_server: FixtureServer, store: SqliteStore
) -> None:
    feed_server.pages["/feed"] = Page(b"oops", status=500, content_type="text/plain")
    harness = Harness(config(feed(feed_server)), store)
    delays = []
    for _ in range(9):
        harness.cycle()
        state = store.source_state("feed")
        assert state is not None and state.next_fetch_at is not None
        delays.append(state.next_fetch_at - harness.clock.now)
        harness.clock.now = state.next_fetch_at

    minutes = [d.total_seconds() / 60 for d in delays]
    assert minutes[:5] == [15, 30, 60, 120, 240]
    assert minutes[-1] == 24 * 60
    assert len(harness.notices.sent) == 1
    assert "HTTP 500" in harness.notices.sent[0][2]


def test_success_clears_the_failure_state(feed_server: FixtureServer, store: SqliteStore) -> None:
    feed_server.pages["/feed"] = Page(b"oops", status=500, content_type="text/plain")
    harness = Harness(config(feed(feed_server)), store)
    harness.cycle()
    feed_server.pages["/feed"] = Page(RSS)
    harness.clock.advance(timedelta(hours=1))

    harness.cycle()

    state = store.source_state("feed")
    assert state is not None
    assert (state.error_count, state.failing_since, state.last_result) == (0, None, "ok")


class CountingServer(FixtureServer):
    """Holds each request until a third arrives (or briefly), tracking the most in flight."""

    def __init__(self, host: str) -> None:
        super().__init__(host=host)
        self.in_flight = 0
        self.most = 0
        self.changed = threading.Condition()

    def handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        with self.changed:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.changed.notify_all()
            self.changed.wait_for(lambda: self.in_flight > 2, timeout=0.3)
            self.in_flight -= 1
        return 200, {"Content-Type": "application/rss+xml"}, RSS


def test_at_most_two_requests_in_flight_per_host(store: SqliteStore) -> None:
    servers = [CountingServer("127.0.0.1").start(), CountingServer("127.0.0.2").start()]
    try:
        sources = [
            Source(f"s{n}-{i}", server.url(f"/feed{i}"), timedelta(minutes=15))
            for n, server in enumerate(servers)
            for i in range(6)
        ]
        Harness(config(*sources), store, host_gap=0).cycle()
    finally:
        for server in servers:
            server.stop()

    assert [server.most for server in servers] == [2, 2]
    assert [len(server.requests) for server in servers] == [6, 6]


def test_requests_to_one_host_start_a_minimum_gap_apart(feed_server: FixtureServer) -> None:
    feed_server.pages.update({f"/f{i}": Page(RSS) for i in range(4)})

    feed_server.pages["/warm-up"] = Page(RSS)

    async def fetch_all() -> None:
        fetcher = HttpFetcher("t/1", host_gap=0.2)
        try:
            # The client's one-time set-up (session, connector) is paid on another host
            # name first, so it cannot delay the first measured request's arrival.
            await fetcher.fetch(f"http://localhost:{feed_server.port}/warm-up")
            await asyncio.gather(*(fetcher.fetch(feed_server.url(f"/f{i}")) for i in range(4)))
        finally:
            await fetcher.aclose()

    asyncio.run(fetch_all())

    arrivals = sorted(r.arrived_at for r in feed_server.requests if r.path != "/warm-up")
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == 3
    assert min(gaps) >= 0.15


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compression_bombs_stop_at_the_cap(feed_server: FixtureServer, encoding: str) -> None:
    payload = b"<rss>" + b" " * 50_000_000
    body = gzip.compress(payload) if encoding == "gzip" else brotli.compress(payload)
    feed_server.pages["/bomb"] = Page(body, headers={"Content-Encoding": encoding})

    async def fetch() -> tuple[int, bool]:
        fetcher = HttpFetcher("t/1", max_bytes=1_000_000)
        try:
            response = await fetcher.fetch(feed_server.url("/bomb"))
        finally:
            await fetcher.aclose()
        return len(response.content), response.truncated

    assert len(body) < 1_000_000
    assert asyncio.run(fetch()) == (1_000_000, True)


def fetch_contents(*urls: str) -> list[bytes]:
    """The bodies of `urls`, fetched in turn by one fresh fetcher."""

    async def fetch() -> list[bytes]:
        fetcher = HttpFetcher("t/1")
        try:
            return [(await fetcher.fetch(url)).content for url in urls]
        finally:
            await fetcher.aclose()

    return asyncio.run(fetch())


def test_compressed_feeds_are_decoded(feed_server: FixtureServer) -> None:
    feed_server.pages["/gz"] = Page(gzip.compress(RSS), headers={"Content-Encoding": "gzip"})

    assert fetch_contents(feed_server.url("/gz")) == [RSS]


BEHIND_PROXY = "http://feeds.invalid/feed"


def serve_through_proxy_and_directly(server: FixtureServer) -> list[str]:
    """The server answers as a proxy for BEHIND_PROXY and as itself for /direct."""
    server.pages[BEHIND_PROXY] = Page(RSS)
    server.pages["/direct"] = Page(RSS)
    return [BEHIND_PROXY, server.url("/direct")]


def test_proxies_from_the_environment_are_used_except_for_no_proxy_hosts(
    feed_server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = serve_through_proxy_and_directly(feed_server)
    monkeypatch.setenv("HTTP_PROXY", feed_server.url("/"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    assert fetch_contents(*urls) == [RSS, RSS]
    assert [request.path for request in feed_server.requests] == [BEHIND_PROXY, "/direct"]


def test_proxy_credentials_go_to_the_proxy_only(
    feed_server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = serve_through_proxy_and_directly(feed_server)
    proxy = feed_server.url("/").replace("http://", "http://feeds:s3cret@")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    assert fetch_contents(*urls) == [RSS, RSS]
    proxied, direct = feed_server.requests
    expected = "Basic " + base64.b64encode(b"feeds:s3cret").decode()
    assert proxied.headers.get("proxy-authorization") == expected
    assert "proxy-authorization" not in direct.headers
    assert "authorization" not in proxied.headers and "authorization" not in direct.headers


def test_a_socks_proxy_is_refused_with_a_warning_and_lower_case_names_are_read(
    feed_server: FixtureServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    urls = serve_through_proxy_and_directly(feed_server)
    monkeypatch.setenv("ALL_PROXY", "socks5://user:secret@127.0.0.1:9")
    monkeypatch.setenv("http_proxy", feed_server.url("/"))
    monkeypatch.setenv("no_proxy", "127.0.0.1")

    with caplog.at_level("WARNING", logger="monitor.adapters.fetch"):
        assert fetch_contents(*urls) == [RSS, RSS]
    assert [request.path for request in feed_server.requests] == [BEHIND_PROXY, "/direct"]
    assert "SOCKS5 proxy from the environment is not supported" in caplog.text
    assert "secret" not in caplog.text


def fetch_one(url: str) -> FetchResponse:
    async def fetch() -> FetchResponse:
        fetcher = HttpFetcher("t/1", host_gap=0)
        try:
            return await fetcher.fetch(url)
        finally:
            await fetcher.aclose()

    return asyncio.run(fetch())


def test_a_refused_connection_is_named_not_called_a_timeout() -> None:
    port = free_port()

    with pytest.raises(FetchError) as caught:
        fetch_one(f"http://127.0.0.1:{port}/feed")

    assert str(caught.value) == f"cannot connect to 127.0.0.1:{port}: Connection refused"


def test_a_failed_dns_lookup_is_named_not_called_a_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolve = socket.getaddrinfo

    def no_such_host(host: object, *args: Any, **kwargs: Any) -> Any:
        if host == "feeds.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return resolve(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)

    with pytest.raises(FetchError) as caught:
        fetch_one("http://feeds.invalid/feed")

    assert str(caught.value) == "DNS lookup failed for feeds.invalid: Name or service not known"


def fetch_discovered(url: str, discovered_on: str) -> FetchResponse:
    async def fetch() -> FetchResponse:
        fetcher = HttpFetcher("t/1", host_gap=0)
        try:
            return await fetcher.fetch(url, discovered_on=discovered_on)
        finally:
            await fetcher.aclose()

    return asyncio.run(fetch())


def test_discovered_links_to_private_addresses_are_refused(feed_server: FixtureServer) -> None:
    feed_server.pages["/feed"] = Page(RSS)

    with pytest.raises(FetchError, match="non-public"):
        fetch_discovered(feed_server.url("/feed"), discovered_on="https://news.example/")
    assert feed_server.requests == []


def test_every_hop_of_a_discovered_link_off_the_sources_host_must_be_public(
    feed_server: FixtureServer,
) -> None:
    internal = FixtureServer(host="127.0.0.2").start()
    try:
        internal.pages["/secret"] = Page(RSS)
        feed_server.pages["/hop"] = Page(b"", status=302, headers={"Location": "/next"})
        feed_server.pages["/next"] = Page(
            b"", status=302, headers={"Location": internal.url("/secret")}
        )

        with pytest.raises(FetchError, match=r"127\.0\.0\.2 resolves to a non-public"):
            fetch_discovered(feed_server.url("/hop"), discovered_on=feed_server.url("/"))
    finally:
        internal.stop()

    assert [r.path for r in feed_server.requests] == ["/hop", "/next"]
    assert internal.requests == []


def test_a_changed_config_url_starts_the_source_afresh(
    feed_server: FixtureServer, store: SqliteStore
) -> None:
    feed_server.pages["/feed"] = Page(RSS, etag='"a"')
    feed_server.pages["/other"] = Page(RSS, etag='"b"')
    source = feed(feed_server)
    Harness(config(source), store).cycle()

    Harness(config(replace(source, url=feed_server.url("/other"))), store).cycle()

    assert "if-none-match" not in feed_server.gets("/other")[0].headers


def test_a_failure_notice_is_written_in_its_targets_markup(
    feed_server: FixtureServer, store: SqliteStore
) -> None:
    """Failure notices were queued as markdown whatever the target; e-mail reads HTML."""

    class Formats(Notices):
        def __init__(self) -> None:
            super().__init__()
            self.formats: list[str] = []

        def send(
            self, target: str, title: str, body: str, body_format: str = "markdown"
        ) -> SendResult:
            self.formats.append(body_format)
            return super().send(target, title, body, body_format)

    feed_server.pages["/feed"] = Page(b"gone", status=410, content_type="text/plain")
    cfg = config(feed(feed_server, name="a&b <feed>"))
    email = Target("ops", "mailto://127.0.0.1:25?from=m@example.com&to=d@example.com")
    harness = Harness(replace(cfg, targets={"ops": email}), store)
    harness.notices = Formats()

    harness.cycle()

    assert harness.notices.formats == ["html"]
    [(_, title, body)] = harness.notices.sent
    assert title == "news-monitor: source a&b <feed> is failing"  # Apprise escapes e-mail titles
    assert body.startswith("<p><strong>a&amp;b &lt;feed&gt;</strong> has been failing")
    assert "<p>Last result: 410 Gone</p>" in body


def rebinding_fetch(url: str, *, public_only: bool, discovered_on: str | None = None) -> list[str]:
    """Fetch `url` while `rebind.test` answers a public address to its first lookup and
    127.0.0.1 to every later one (a TTL-0 rebinding DNS server); the lookups made."""
    lookups: list[str] = []

    async def fetch() -> None:
        loop = asyncio.get_running_loop()
        real = loop.getaddrinfo

        async def rebinding(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
            if host != "rebind.test":
                return await real(host, port, *args, **kwargs)
            lookups.append(host)
            address = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

        loop.getaddrinfo = rebinding  # type: ignore[method-assign,assignment]
        fetcher = HttpFetcher("t/1", host_gap=0, connect_timeout=1, public_only=public_only)
        try:
            with pytest.raises(FetchError):
                await fetcher.fetch(url, discovered_on=discovered_on)
        finally:
            await fetcher.aclose()

    asyncio.run(fetch())
    return lookups


def test_a_rebinding_dns_answer_cannot_reach_loopback_when_public_only(
    feed_server: FixtureServer,
) -> None:
    """The check resolved the name, then the connector resolved it again: the second
    answer (127.0.0.1) was fetched. Now the address checked is the one connected to."""
    feed_server.pages["/feed"] = Page(b"internal secret")

    lookups = rebinding_fetch(f"http://rebind.test:{feed_server.port}/feed", public_only=True)

    assert feed_server.requests == []
    assert lookups == ["rebind.test"]


def test_a_rebinding_dns_answer_cannot_reach_loopback_from_a_discovered_link(
    feed_server: FixtureServer,
) -> None:
    feed_server.pages["/feed"] = Page(b"internal secret")

    rebinding_fetch(
        f"http://rebind.test:{feed_server.port}/feed",
        public_only=False,
        discovered_on="https://news.example/",
    )

    assert feed_server.requests == []


def test_a_name_resolving_to_loopback_is_refused_by_the_resolver(
    feed_server: FixtureServer,
) -> None:
    feed_server.pages["/feed"] = Page(RSS)

    async def fetch() -> None:
        fetcher = HttpFetcher("t/1", host_gap=0, public_only=True)
        try:
            await fetcher.fetch(f"http://localhost:{feed_server.port}/feed")
        finally:
            await fetcher.aclose()

    with pytest.raises(FetchError, match=r"^localhost resolves to a non-public address"):
        asyncio.run(fetch())
    assert feed_server.requests == []


def test_public_only_fetches_use_no_proxy_from_the_environment(
    feed_server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy resolves the name itself, out of the resolver's reach."""
    proxy = FixtureServer().start()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url("/"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)

        async def fetch(url: str) -> None:
            fetcher = HttpFetcher("t/1", host_gap=0, public_only=True)
            try:
                await fetcher.fetch(url)
            finally:
                await fetcher.aclose()

        with pytest.raises(FetchError, match="non-public"):
            asyncio.run(fetch("http://127.0.0.1/feed"))
        # Names too: the fetch goes direct (and fails to resolve), never to the proxy.
        with pytest.raises(FetchError, match="DNS lookup failed"):
            asyncio.run(fetch("http://feeds.invalid/feed"))
    finally:
        proxy.stop()
    assert proxy.requests == []

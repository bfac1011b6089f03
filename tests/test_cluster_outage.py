"""A PostgreSQL outage (the connection cut by a relay between us and the server): polls
and deliveries fail with a logged StoreUnavailable, nothing crashes, nothing is lost, and
the same Service resumes when the database is back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from monitor.adapters.fetch import HttpFetcher
from monitor.adapters.store.postgres import PostgresStore
from monitor.config.schema import Config, Rule, Settings, Source, Target
from monitor.daemon import build_service
from monitor.errors import StoreUnavailable
from monitor.rules import compile_query
from monitor.state import SourceState
from tests.pg import TcpProxy
from tests.servers import FixtureServer, Page
from tests.test_intake import Recorder, rss

NOW = datetime.now(UTC)


async def until_back(attempt: Callable[[], Awaitable[object]]) -> None:
    """Try again while the pool reconnects (its backoff), up to a deadline."""
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while True:
        try:
            await attempt()
            return
        except StoreUnavailable:
            if datetime.now(UTC) > deadline:
                raise


@pytest.fixture
def relay() -> Iterator[TcpProxy]:
    proxy = TcpProxy()
    yield proxy
    proxy.close()


def test_an_outage_is_waited_out_and_nothing_is_lost(
    postgres_url: str, relay: TcpProxy, feed_server: FixtureServer,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    feed_server.pages["/feed"] = Page(rss([("Japan first", NOW)]))
    store = PostgresStore(relay.url(postgres_url), instance=True, pool_timeout=2)
    source = Source("feed", feed_server.url("/feed"), timedelta(minutes=15))
    settings = Settings(":memory:", (), timedelta(minutes=15), timedelta(days=3650), "t/1")
    rule = Rule("r", compile_query("Japan"), ("hook",))
    config = Config("c", settings, {"hook": Target("hook", "json://x")}, (source,), (rule,))
    recorder = Recorder()

    async def scenario() -> None:
        fetcher = HttpFetcher("t/1", host_gap=0)
        service = build_service(config, fetcher, store, recorder)
        try:
            assert (await service.poll(source)).alerts == 1
            relay.cut()
            feed_server.pages["/feed"] = Page(rss([("Japan second", NOW), ("Japan first", NOW)]))
            report = await service.poll(source, ignore_interval=True)
            assert not report.ok and "database" in report.detail
            assert isinstance(service.store_error, StoreUnavailable)
            with pytest.raises(StoreUnavailable):  # the daemon logs it; the alert waits
                await service.deliver()
            assert recorder.titles == []
            relay.restore()
            await until_back(service.deliver)  # as the daemon's next passes do
            assert len(recorder.titles) == 1
            service.unsaved.clear()  # the in-memory backoff: poll again now
            store.save_state(SourceState("feed", source.url))  # due again
            assert (await service.poll(source, ignore_interval=True)).alerts == 1
            await service.deliver()
        finally:
            await fetcher.aclose()

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    store.close()

    assert len(recorder.titles) == 2
    assert "Japan first" in recorder.titles[0] and "Japan second" in recorder.titles[1]
    assert any("poll not saved" in r.getMessage() for r in caplog.records)

"""What one poll of a feed costs and keeps: bad bytes, the item cap, cheap re-polls, and store
writes off the event loop; real HTTP on 127.0.0.1 and a real SQLite file."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from monitor.adapters.fetch import HttpFetcher
from monitor.adapters.store.sqlite import SqliteStore
from monitor.config.schema import Config, Rule, Settings, Source, Target
from monitor.daemon import build_service
from monitor.model import Article
from monitor.rules import compile_query
from monitor.runtime import runner
from monitor.sources import feeds as parse
from monitor.state import SendResult, SourceState
from tests.servers import FixtureServer, Page

NOW = datetime(2024, 7, 2, 12, 0, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.titles: list[str] = []

    def send(self, target: str, title: str, body: str, body_format: str = "markdown") -> SendResult:
        self.titles.append(title)
        return SendResult(True)


class SaveThreads(SqliteStore):
    """The real store, noting the thread each poll's save and each prune runs in."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.threads: list[threading.Thread] = []

    def save_poll(self, *args: Any, **kwargs: Any) -> None:
        self.threads.append(threading.current_thread())
        super().save_poll(*args, **kwargs)

    def prune_text(self, before: datetime) -> int:
        self.threads.append(threading.current_thread())
        return super().prune_text(before)


def poll(store: SqliteStore, sources: list[Source], query: str = "Japan") -> Recorder:
    settings = Settings(":memory:", (), timedelta(minutes=15), timedelta(days=3650), "t/1")
    rule = Rule("r", compile_query(query), ("hook",))
    config = Config("c", settings, {"hook": Target("hook", "json://x")}, tuple(sources), (rule,))
    recorder = Recorder()

    async def cycle() -> None:
        fetcher = HttpFetcher("t/1", host_gap=0)
        try:
            service = build_service(config, fetcher, store, recorder, clock=lambda: NOW)
            reports = await service.poll_all(ignore_interval=True)
            assert all(report.ok for report in reports), reports
            await service.deliver(due_only=False)
        finally:
            await fetcher.aclose()

    asyncio.run(cycle())
    return recorder


def feed_source(server: FixtureServer, path: str = "/feed", max_items: int = 1000) -> Source:
    return Source(path.strip("/"), server.url(path), timedelta(minutes=15), max_items=max_items)


def rss(items: list[tuple[str, datetime | None]]) -> bytes:
    """RSS 2.0 with an item per (title, published), linked to /story/TITLE (%-quoted)."""
    parts = []
    for title, published in items:
        date = f"<pubDate>{format_datetime(published)}</pubDate>" if published else ""
        link = "https://news.example/story/" + quote(title)
        parts.append(f"<item><title>{title}</title><link>{link}</link>{date}</item>")
    return f'<rss version="2.0"><channel><title>t</title>{"".join(parts)}</channel></rss>'.encode()


def stored_titles(store: SqliteStore) -> list[str]:
    return [row[0] for row in store.db.execute("SELECT title FROM articles ORDER BY title")]


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[object]:
    """Count the calls of monitor.sources.feeds's function `name` (it still runs)."""
    calls: list[object] = []
    real: Callable[..., Any] = getattr(parse, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(parse, name, counted)
    return calls


# -- charsets ---------------------------------------------------------------------------------


def test_one_bad_byte_does_not_turn_the_feed_to_mojibake(
    store: SqliteStore, feed_server: FixtureServer, caplog: pytest.LogCaptureFixture
) -> None:
    titles = ["北朝鮮、拉致問題で日本と協議", "Corée du Nord : réunion", "Caf#BAD# au lait"]
    content = rss([(t, NOW) for t in titles]).replace(b"#BAD#", b"\xe9")
    feed_server.pages["/feed"] = Page(content)

    with caplog.at_level(logging.WARNING):
        recorder = poll(store, [feed_source(feed_server)], "北朝鮮 AND 拉致")

    assert recorder.titles == ["北朝鮮、拉致問題で日本と協議 [r]"]
    assert stored_titles(store) == sorted([*titles[:2], "Caf\ufffd au lait"])
    assert "1 byte(s) invalid in utf-8, replaced with U+FFFD" in caplog.text


# -- the item cap -----------------------------------------------------------------------------


def test_only_the_newest_max_items_are_read_and_the_rest_logged(
    store: SqliteStore, feed_server: FixtureServer, caplog: pytest.LogCaptureFixture
) -> None:
    hours = [5, None, 1, 9, 3, None, 0, 7, 2, 8, 4, 6]  # item n published n hours ago
    items = [(f"Japan {h}" if h is not None else "undated", NOW - timedelta(hours=h or 0))
             for h in hours]  # fmt: skip
    content = rss([(title, None if title == "undated" else when) for title, when in items])
    feed_server.pages["/feed"] = Page(content)

    with caplog.at_level(logging.INFO):
        recorder = poll(store, [feed_source(feed_server, max_items=4)])

    assert stored_titles(store) == ["Japan 0", "Japan 1", "Japan 2", "Japan 3"]
    assert recorder.titles == ["Japan 1 [r]", "Japan 3 [r]", "Japan 0 [r]", "Japan 2 [r]"]
    assert "feed: the feed lists 12 items; read the newest 4 (max_items), left out 8" in caplog.text


def test_a_repoll_reads_no_more_than_max_items_entries(
    store: SqliteStore, feed_server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_server.pages["/feed"] = Page(rss([(f"item {n}", None) for n in range(50)]))
    source = feed_source(feed_server, max_items=10)
    poll(store, [source])
    entries = counting(monkeypatch, "_xml_entry")

    poll(store, [source])

    assert len(entries) == 10
    assert len(stored_titles(store)) == 10


def test_a_repoll_builds_articles_only_for_new_items(
    store: SqliteStore, feed_server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    items: list[tuple[str, datetime | None]] = [(f"item {n}", NOW) for n in range(20)]
    feed_server.pages["/feed"] = Page(rss(items))
    poll(store, [feed_source(feed_server)])
    feed_server.pages["/feed"] = Page(rss([("Japan new", NOW), *items]))
    built = counting(monkeypatch, "_article_from_entry")

    recorder = poll(store, [feed_source(feed_server)])

    assert len(built) == 1
    assert recorder.titles == ["Japan new [r]"]


# -- store writes off the event loop ----------------------------------------------------------


def test_polls_are_saved_in_worker_threads(tmp_path: Path, feed_server: FixtureServer) -> None:
    store = SaveThreads(str(tmp_path / "m.db"))
    sources = []
    for n in range(6):
        feed_server.pages[f"/feed{n}"] = Page(rss([(f"Japan {n} {i}", NOW) for i in range(30)]))
        sources.append(feed_source(feed_server, f"/feed{n}"))
    try:
        recorder = poll(store, sources)
        assert len(stored_titles(store)) == 180
    finally:
        store.close()

    assert len(recorder.titles) == 180
    assert len(store.threads) == 6
    assert threading.main_thread() not in store.threads


class FirstSaveWaits(SqliteStore):
    """Holds the first poll's save until another poll reads its rule's stories, or for at
    most a second: a poll that groups its matches meanwhile cannot see the first's story."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.saving = threading.Event()
        self.read_meanwhile = threading.Event()

    def story_fingerprints(self, rule: str, since: datetime) -> list[tuple[str, bytes]]:
        if self.saving.is_set():
            self.read_meanwhile.set()
        return super().story_fingerprints(rule, since)

    def save_poll(self, *args: Any, **kwargs: Any) -> None:
        if not self.saving.is_set():
            self.saving.set()
            self.read_meanwhile.wait(timeout=1)
        super().save_poll(*args, **kwargs)


def test_a_story_in_two_sources_polled_at_once_alerts_once(
    tmp_path: Path, feed_server: FixtureServer
) -> None:
    text = " ".join(
        f"Japan and North Korea held talk number {n} in Ulaanbaatar." for n in range(12)
    )
    for name in ("wire", "paper"):
        feed_server.pages[f"/{name}"] = Page(
            f'<rss version="2.0"><channel><title>{name}</title><item><title>Talks {name}</title>'
            f"<link>https://{name}.example/talks</link><description>{text}</description>"
            f"<pubDate>{format_datetime(NOW)}</pubDate>"
            "</item></channel></rss>".encode()
        )
    store = FirstSaveWaits(str(tmp_path / "m.db"))
    try:
        recorder = poll(
            store, [feed_source(feed_server, "/wire"), feed_source(feed_server, "/paper")]
        )
    finally:
        store.close()

    assert len(recorder.titles) == 1


def test_the_store_takes_writes_and_reads_from_many_threads_at_once(store: SqliteStore) -> None:
    def save(n: int) -> set[str]:
        ids = [f"{n}-{i}" for i in range(200)]
        articles = [Article(id=i, url=f"https://x.example/{i}", source=f"s{n}", title=i)
                    for i in ids]  # fmt: skip
        store.save_poll(SourceState(f"s{n}", "https://x.example/"), articles, [], [], NOW)
        return store.known_ids(ids)

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(save, range(24)))

    assert [len(ids) for ids in found] == [200] * 24
    assert store.db.execute("SELECT count(*) FROM articles").fetchone()[0] == 4800
    assert len(store.source_states()) == 24


def test_the_daemons_prune_runs_in_a_worker_thread(tmp_path: Path) -> None:
    store = SaveThreads(str(tmp_path / "m.db"))
    settings = Settings(":memory:", (), timedelta(minutes=15), timedelta(days=1), "t/1")
    try:
        asyncio.run(runner.prune_off_loop(Config("c", settings, {}, (), ()), store))
    finally:
        store.close()

    assert len(store.threads) == 1
    assert store.threads[0] is not threading.main_thread()

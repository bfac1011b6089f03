"""Page sources, advertised feeds and full text, served from fixtures on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from monitor.adapters.fetch import HttpFetcher
from monitor.adapters.store.sqlite import SqliteStore
from monitor.config.schema import Config, ReadAs, Rule, Settings, Source, Target
from monitor.daemon import build_service
from monitor.rules import compile_query
from monitor.state import SendResult, SourceState
from tests.servers import FixtureServer, Page

NOW = datetime(2024, 7, 2, 12, 0, tzinfo=UTC)
SEED_PATH = "/world/asia/japan/japan-north-korea-held-meeting-in-may/"
HTML = "text/html; charset=utf-8"


class Recorder:
    def __init__(self) -> None:
        self.titles: list[str] = []

    def send(self, target: str, title: str, body: str, body_format: str = "markdown") -> SendResult:
        self.titles.append(title)
        return SendResult(True)


def localized(path: Path, server: FixtureServer) -> bytes:
    """A fixture page whose site links point at the test server instead."""
    text = path.read_text(encoding="utf-8")
    for site in ("https://www.asiadispatch.example", "https://asiadispatch.example"):
        text = text.replace(site, server.url("").rstrip("/"))
    return text.encode()


def serve_site(server: FixtureServer, seeds: Path) -> None:
    pages = seeds / "pages"
    server.pages["/world/asia/"] = Page(localized(pages / "asia-section-front.html", server), HTML)
    server.pages[SEED_PATH] = Page(
        localized(pages / "japan-north-korea-meeting.html", server), HTML
    )


def poll(
    store: SqliteStore,
    source: Source,
    query: str = "Japan AND North Korea AND summit|abduction",
    now: datetime = NOW,
    backfill: timedelta = timedelta(days=3650),
) -> Recorder:
    settings = Settings(":memory:", (), timedelta(minutes=15), backfill, "t/1")
    rule = Rule("jnk", compile_query(query), ("hook",))
    config = Config("c", settings, {"hook": Target("hook", "json://x")}, (source,), (rule,))
    recorder = Recorder()

    async def cycle() -> None:
        fetcher = HttpFetcher("t/1", host_gap=0)
        try:
            service = build_service(config, fetcher, store, recorder, clock=lambda: now)
            await service.poll_all(ignore_interval=True)
            await service.deliver(due_only=False)
        finally:
            await fetcher.aclose()

    asyncio.run(cycle())
    return recorder


def source(server: FixtureServer, path: str, read_as: ReadAs, full_text: bool = False) -> Source:
    return Source("asia", server.url(path), timedelta(minutes=15), read_as, True, full_text)


def test_a_page_source_fetches_new_article_links_once(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    serve_site(feed_server, seeds)
    page_source = source(feed_server, "/world/asia/", "page")

    first = poll(store, page_source)
    second = poll(store, page_source)

    assert first.titles == ["Japan, North Korea held meeting in May – S Korean newspaper [jnk]"]
    assert second.titles == []
    assert len(feed_server.gets(SEED_PATH)) == 1
    fetched = {r.path for r in feed_server.requests}
    assert "/login/" not in fetched and "/tag/north-korea/" not in fetched
    assert "/world/asia/japan/tokyo-protests-north-korean-missile-launch/" in fetched


def test_a_bad_byte_in_a_page_is_replaced_and_logged(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer, caplog: pytest.LogCaptureFixture
) -> None:
    serve_site(feed_server, seeds)
    page = feed_server.pages[SEED_PATH]
    page.body = page.body.replace(b"Ulaanbaatar", b"Ulaanbaatar\x81", 1)

    with caplog.at_level(logging.WARNING):
        first = poll(store, source(feed_server, "/world/asia/", "page"))

    assert first.titles == ["Japan, North Korea held meeting in May – S Korean newspaper [jnk]"]
    assert f"{SEED_PATH}: 1 byte(s) invalid in utf-8, replaced with U+FFFD" in caplog.text


def test_auto_follows_the_pages_advertised_feed(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    serve_site(feed_server, seeds)
    feed_server.pages["/world/asia/feed/"] = Page((seeds / "feeds" / "asia.rss").read_bytes())
    auto = source(feed_server, "/world/asia/", "auto")

    first = poll(store, auto)
    poll(store, auto)

    assert first.titles == ["Japan, North Korea held meeting in May – S Korean newspaper [jnk]"]
    state = store.source_state("asia")
    assert state is not None and state.fetch_url == feed_server.url("/world/asia/feed/")
    assert len(feed_server.gets("/world/asia/")) == 1
    assert len(feed_server.gets("/world/asia/feed/")) == 2
    assert feed_server.gets(SEED_PATH) == []


def test_a_feed_source_that_serves_html_is_an_error(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    serve_site(feed_server, seeds)

    poll(store, source(feed_server, "/world/asia/", "feed"))

    state = store.source_state("asia")
    assert state is not None and "expected a feed" in (state.last_result or "")


def summary_only_feed(link: str) -> bytes:
    return f"""<rss version="2.0"><channel><title>t</title><item>
      <title>Japan, North Korea held meeting in May – S Korean newspaper</title>
      <link>{link}</link><guid>{link}</guid><pubDate>Tue, 02 Jul 2024 09:41:00 GMT</pubDate>
      <description>A South Korean newspaper reported a secret meeting.</description>
    </item></channel></rss>""".encode()


def test_full_text_fetches_the_body_of_summary_only_items(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    serve_site(feed_server, seeds)
    feed_server.pages["/teasers.rss"] = Page(summary_only_feed(feed_server.url(SEED_PATH)))
    body_only = "Ulaanbaatar AND Kishida"

    without = poll(store, source(feed_server, "/teasers.rss", "feed"), body_only)
    store.db.execute("DELETE FROM articles")
    store.db.execute("DELETE FROM sources")
    with_full_text = poll(store, source(feed_server, "/teasers.rss", "feed", True), body_only)

    assert without.titles == []
    assert len(with_full_text.titles) == 1
    stored = next(iter(store.articles_since(NOW - timedelta(days=1))))
    assert stored.lede == "A South Korean newspaper reported a secret meeting."
    assert [b.kind for b in stored.body].count("heading") == 1


def teasers(server: FixtureServer, hours_ago: list[int]) -> bytes:
    """Summary-only items published `hours_ago`, each linking to /story/HOURS/ (a copy of
    the seed page), in the order given."""
    items = "".join(
        f"<item><title>Story {h}</title><link>{server.url(f'/story/{h}/')}</link>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=h))}</pubDate>"
        f"<description>A summary.</description></item>"
        for h in hours_ago
    )
    return f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


def serve_stories(server: FixtureServer, seeds: Path, hours_ago: list[int]) -> None:
    serve_site(server, seeds)
    for h in hours_ago:
        server.pages[f"/story/{h}/"] = server.pages[SEED_PATH]
    server.pages["/teasers.rss"] = Page(teasers(server, hours_ago))


def story_pages_fetched(server: FixtureServer) -> list[int]:
    return sorted(
        int(r.path.split("/")[2]) for r in server.requests if r.path.startswith("/story/")
    )


def test_full_text_on_a_first_fetch_fetches_only_items_that_may_alert(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    hours_ago = [*range(0, 120, 3)]  # 40 items, one every 3 hours: 9 within a day
    serve_stories(feed_server, seeds, hours_ago)
    teaser_source = source(feed_server, "/teasers.rss", "feed", full_text=True)

    poll(store, teaser_source, "Ulaanbaatar", backfill=timedelta(hours=24))

    assert story_pages_fetched(feed_server) == [0, 3, 6, 9, 12, 15, 18, 21, 24]
    assert len(store.db.execute("SELECT id FROM articles").fetchall()) == 40


def test_full_text_fetches_at_most_30_pages_a_poll_the_newest(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer, caplog: pytest.LogCaptureFixture
) -> None:
    hours_ago = [*range(39, -1, -1)]  # 40 items, oldest first
    serve_stories(feed_server, seeds, hours_ago)

    with caplog.at_level(logging.INFO):
        poll(store, source(feed_server, "/teasers.rss", "feed", True), "Ulaanbaatar")

    assert story_pages_fetched(feed_server) == [*range(30)]
    assert store.db.execute("SELECT count(*) FROM matches").fetchone()[0] == 30
    assert "full text for the newest 30 of 40 new items (30 pages a poll)" in caplog.text


def test_full_text_links_to_other_hosts_must_be_public(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    other = FixtureServer(host="127.0.0.2").start()
    try:
        serve_site(other, seeds)
        feed_server.pages["/teasers.rss"] = Page(summary_only_feed(other.url(SEED_PATH)))

        recorder = poll(store, source(feed_server, "/teasers.rss", "feed", True), "Ulaanbaatar")
    finally:
        other.stop()

    assert recorder.titles == []
    assert other.requests == []


def redirect_to(server: FixtureServer, path: str) -> Page:
    return Page(b"", HTML, status=302, headers={"Location": server.url(path)})


def test_a_same_host_page_link_redirecting_to_another_host_must_be_public(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    internal = FixtureServer(host="127.0.0.2").start()
    try:
        serve_site(internal, seeds)
        serve_site(feed_server, seeds)
        feed_server.pages[SEED_PATH] = redirect_to(internal, SEED_PATH)

        recorder = poll(store, source(feed_server, "/world/asia/", "page"))
    finally:
        internal.stop()

    assert len(feed_server.gets(SEED_PATH)) == 1
    assert internal.requests == []
    assert recorder.titles == []
    assert list(store.articles_since(NOW - timedelta(days=1))) == []


def test_a_same_host_full_text_link_redirecting_to_another_host_must_be_public(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    internal = FixtureServer(host="127.0.0.2").start()
    try:
        serve_site(internal, seeds)
        feed_server.pages["/teasers.rss"] = Page(summary_only_feed(feed_server.url("/go")))
        feed_server.pages["/go"] = redirect_to(internal, SEED_PATH)

        recorder = poll(store, source(feed_server, "/teasers.rss", "feed", True), "Ulaanbaatar")
    finally:
        internal.stop()

    assert len(feed_server.gets("/go")) == 1
    assert internal.requests == []
    assert recorder.titles == []
    stored = next(iter(store.articles_since(NOW - timedelta(days=1))))
    assert "Ulaanbaatar" not in " ".join(block.text for block in stored.body)


def test_an_advertised_feed_redirecting_to_another_host_must_be_public(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    internal = FixtureServer(host="127.0.0.2").start()
    try:
        internal.pages["/feed/"] = Page((seeds / "feeds" / "asia.rss").read_bytes())
        serve_site(feed_server, seeds)
        feed_server.pages["/world/asia/feed/"] = redirect_to(internal, "/feed/")

        poll(store, source(feed_server, "/world/asia/", "auto"))
    finally:
        internal.stop()

    assert len(feed_server.gets("/world/asia/feed/")) == 1
    assert internal.requests == []
    state = store.source_state("asia")
    assert state is not None and state.fetch_url is None


def test_a_stored_feed_url_found_on_the_page_is_checked_on_every_poll(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    internal = FixtureServer(host="127.0.0.2").start()
    try:
        internal.pages["/feed/"] = Page((seeds / "feeds" / "asia.rss").read_bytes())
        page_source = source(feed_server, "/world/asia/", "auto")
        # Advertised while its host resolved to a public address; it no longer does.
        store.save_state(SourceState("asia", page_source.url, fetch_url=internal.url("/feed/")))

        recorder = poll(store, page_source)
    finally:
        internal.stop()

    assert internal.requests == []
    assert recorder.titles == []
    state = store.source_state("asia")
    assert state is not None and "non-public" in (state.last_result or "")


ALIAS = "/world/asia/japan/tokyo-protests-north-korean-missile-launch/"
DEAD = "/2024/07/01/mongolia/"
REFUSED = "/world/asia/news/48199"


def serve_odd_links(server: FixtureServer, seeds: Path) -> None:
    serve_site(server, seeds)
    # Another address of the seed article: its rel=canonical names SEED_PATH.
    server.pages[ALIAS] = server.pages[SEED_PATH]
    server.pages[DEAD] = Page(b"gone", HTML, status=404)
    server.pages[REFUSED] = Page(b"bot check", HTML, status=403)


def test_aliases_and_dead_links_wait_and_refusals_are_tried_again(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    serve_odd_links(feed_server, seeds)
    page_source = source(feed_server, "/world/asia/", "page")

    first = poll(store, page_source)
    second = poll(store, page_source, now=NOW + timedelta(hours=1))

    assert len(first.titles) == 1 and second.titles == []
    assert [len(feed_server.gets(path)) for path in (SEED_PATH, ALIAS, DEAD)] == [1, 1, 1]
    assert len(feed_server.gets(REFUSED)) == 2

    poll(store, page_source, now=NOW + timedelta(days=2))
    assert [len(feed_server.gets(path)) for path in (SEED_PATH, ALIAS, DEAD)] == [1, 1, 2]
    poll(store, page_source, now=NOW + timedelta(days=8))
    assert [len(feed_server.gets(path)) for path in (SEED_PATH, ALIAS, DEAD)] == [1, 2, 3]


def test_a_dead_link_later_published_alerts_once_it_is_rechecked(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    serve_site(feed_server, seeds)
    article = feed_server.pages.pop(SEED_PATH)
    page_source = source(feed_server, "/world/asia/", "page")

    assert poll(store, page_source).titles == []
    feed_server.pages[SEED_PATH] = article
    assert poll(store, page_source, now=NOW + timedelta(hours=1)).titles == []
    later = poll(store, page_source, now=NOW + timedelta(days=2))

    assert len(later.titles) == 1
    assert len(feed_server.gets(SEED_PATH)) == 2


def test_a_link_settled_by_a_page_source_still_alerts_from_a_feed(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer
) -> None:
    serve_site(feed_server, seeds)
    feed_server.pages.pop(SEED_PATH)
    poll(store, source(feed_server, "/world/asia/", "page"))
    feed_server.pages["/feed"] = Page(
        b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><item>"
        b"<title>Japan and North Korea held summit on abduction issue</title><link>"
        + feed_server.url(SEED_PATH).encode()
        + b"</link><pubDate>Tue, 02 Jul 2024 11:00:00 +0000</pubDate></item></channel></rss>"
    )
    feed_source = Source("wire", feed_server.url("/feed"), timedelta(minutes=15))

    assert len(poll(store, feed_source).titles) == 1

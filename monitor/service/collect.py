"""From a fetched source document to articles: feeds, advertised feeds, pages and full text."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from monitor.config.schema import Source
from monitor.errors import MonitorError
from monitor.model import Article
from monitor.ports import Clock, Fetcher
from monitor.sources.charset import decode
from monitor.sources.feeds import FeedError, document_type, parse_feed, read_feed
from monitor.sources.identity import link_id
from monitor.sources.newest import newest
from monitor.state import FeedHints, FetchResponse

__all__ = ["Collector", "Reading", "read_document"]

log = logging.getLogger(__name__)
MAX_NEW_PAGES = 30
EXTRACT_BUDGET = 20.0
THIN_BODY_CHARS = 600
# When a settled page link is fetched again, in case the site has changed its mind.
ALIAS_RECHECK = timedelta(days=7)
DEAD_RECHECK = timedelta(days=1)


KnownIds = Callable[[Iterable[str]], set[str]]


@dataclass(frozen=True, slots=True)
class Reading:
    """What a source held: its articles, how often it changes, and where it really lives.

    `response` is the document whose validators and headers count (the advertised feed
    when a page pointed to one); `feed_url` is set when that feed should be fetched
    directly from now on. `settled_links` are links found on a page that need no fetch
    until the time given, though no article has their id: aliases of an article (its
    canonical URL differs) and links that gave no article (404, 410, not HTML).
    """

    articles: list[Article]
    response: FetchResponse
    hints: FeedHints = field(default_factory=FeedHints)
    feed_url: str | None = None
    settled_links: list[tuple[str, datetime]] = field(default_factory=list)


def read_document(response: FetchResponse, source: str, now: datetime | None = None) -> Reading:
    """A feed's items, or a page as one article (CPU-bound: run it off the event loop)."""
    if document_type(response.content, response.content_type) == "html":
        from monitor.sources import pages  # page extraction's libraries load only for pages

        html = _page_html(source, response)
        return Reading(
            [pages.extract_article(html, url=response.url, source=source, now=now)], response
        )
    return _read_feed(response, source)


def _page_html(source: str, response: FetchResponse) -> str:
    """A page's text (see monitor.sources.charset); bytes invalid in its charset are logged."""
    decoded = decode(response.content, response.content_type)
    if decoded.replaced:
        log.warning("%s: %s: %d byte(s) invalid in %s, replaced with U+FFFD",
                    source, response.url, decoded.replaced, decoded.encoding)  # fmt: skip
    return decoded.text


def _read_feed(response: FetchResponse, source: str) -> Reading:
    feed = parse_feed(response.content, source=source, url=response.url, headers=response.headers)
    if feed.problem:
        log.warning("%s: malformed feed, read what could be read: %s", source, feed.problem)
    return Reading(list(feed.articles), response, feed.hints)


async def _read_new_items(response: FetchResponse, source: Source, known: KnownIds) -> Reading:
    """A feed's items not seen before, off the event loop: at most the newest
    `source.max_items`, ids first, then only new items' HTML is read."""
    return await asyncio.to_thread(_new_items, response, source, known)


def _new_items(response: FetchResponse, source: Source, known: KnownIds) -> Reading:
    feed = read_feed(response.content, source=source.name, url=response.url,
                     headers=response.headers, max_items=source.max_items)  # fmt: skip
    if feed.problem:
        log.warning("%s: malformed feed, read what could be read: %s", source.name, feed.problem)
    for collision in feed.collisions:
        log.warning("%s: identity collision: %s", source.name, collision)
    if feed.dropped:
        log.info("%s: the feed lists %d items; read the newest %d (max_items), left out %d",
                 source.name, feed.dropped + len(feed.entries), source.max_items,
                 feed.dropped)  # fmt: skip
    seen = known(entry.id for entry in feed.entries)
    return Reading(list(feed.articles(seen)), response, feed.hints)


class Collector:
    """Turns a source's response into a Reading, fetching what else the source calls for."""

    def __init__(self, fetcher: Fetcher, clock: Clock) -> None:
        self.fetcher = fetcher
        self.clock = clock

    async def collect(
        self,
        source: Source,
        response: FetchResponse,
        known: KnownIds,
        known_links: KnownIds,
        may_alert: Callable[[Article], bool],
    ) -> Reading:
        """`known` tells which item ids are stored (it is called from a worker thread);
        `known_links`, which page links need no fetch now (stored articles and settled
        links); `may_alert`, whether a new item could alert (only those get full text)."""
        if document_type(response.content, response.content_type) != "html":
            reading = await _read_new_items(response, source, known)
            if source.full_text:
                articles = await self._full_text(source, reading.articles, known, may_alert)
                reading = replace(reading, articles=articles)
            return reading
        if source.read_as == "feed":
            raise FeedError('expected a feed, got an HTML page (kind = "feed")')
        html = _page_html(source.name, response)
        if source.read_as == "auto":
            followed = await self._advertised_feed(source, html, response.url, known)
            if followed is not None:
                return followed
        articles, settled = await self._page_articles(source, html, response.url, known_links)
        return Reading(articles, response, settled_links=settled)

    async def _advertised_feed(
        self, source: Source, html: str, url: str, known: KnownIds
    ) -> Reading | None:
        from monitor.sources import pages

        for feed_url in pages.feed_links(html, url)[:1]:
            try:
                response = await self.fetcher.fetch(feed_url, discovered_on=source.url)
            except MonitorError as exc:
                log.warning("%s: advertised feed %s failed: %s", source.name, feed_url, exc)
                return None
            if response.status != 200 or document_type(response.content) == "html":
                return None
            log.info("%s: following the page's advertised feed %s", source.name, feed_url)
            reading = await _read_new_items(response, source, known)
            return replace(reading, feed_url=feed_url)
        return None

    async def _page_articles(
        self, source: Source, html: str, url: str, known: KnownIds
    ) -> tuple[list[Article], list[tuple[str, datetime]]]:
        """Fetch the article links on a front or section page that were not seen before;
        the articles, and the links settled without an article of their id, with the time
        to look at them again."""
        from monitor.sources import pages

        links = await asyncio.to_thread(pages.article_links, html, url)
        ids = {link: link_id(link) for link in links}
        seen = known(ids.values())
        new = [link for link in links if ids[link] not in seen][:MAX_NEW_PAGES]
        outcomes = await asyncio.gather(*(self._article_page(source, link) for link in new))
        articles = [page for page in outcomes if isinstance(page, Article)]
        found = {article.id for article in articles}
        now = self.clock()
        settled = [
            (ids[link], now + (ALIAS_RECHECK if isinstance(page, Article) else DEAD_RECHECK))
            for link, page in zip(new, outcomes, strict=True)
            if page is not _RETRY and ids[link] not in found
        ]
        return articles, settled

    async def _article_page(self, source: Source, url: str) -> Article | _Outcome:
        """The link's article, or whether to try it again on a later poll."""
        try:
            response = await self.fetcher.fetch(url, discovered_on=source.url)
        except MonitorError as exc:
            log.info("%s: %s not fetched: %s", source.name, url, exc)
            return _RETRY
        if response.status != 200:
            log.info("%s: %s gave HTTP %d", source.name, url, response.status)
            return _NOTHING if response.status in (404, 410) else _RETRY
        if document_type(response.content, response.content_type) != "html":
            log.info("%s: %s is not a page", source.name, url)
            return _NOTHING
        html = _page_html(source.name, response)
        from monitor.sources import pages

        try:
            return await asyncio.wait_for(
                asyncio.to_thread(
                    pages.extract_article,
                    html,
                    url=response.url,
                    source=source.name,
                    now=self.clock(),
                ),
                EXTRACT_BUDGET,
            )
        except TimeoutError:
            log.warning("%s: extracting %s took over %.0f s; skipped", source.name, url,
                        EXTRACT_BUDGET)  # fmt: skip
            return _RETRY

    async def _full_text(
        self,
        source: Source,
        articles: Sequence[Article],
        known: KnownIds,
        may_alert: Callable[[Article], bool],
    ) -> list[Article]:
        """Give new items that carry only a summary and may alert the body of their page:
        the newest `MAX_NEW_PAGES` of them a poll (the others keep their summary)."""
        seen = await asyncio.to_thread(known, [a.id for a in articles])
        wanted = [a for a in articles if a.id not in seen and a.url and _thin(a) and may_alert(a)]
        thin = newest(wanted, MAX_NEW_PAGES, _published)
        if len(thin) < len(wanted):
            log.info("%s: full text for the newest %d of %d new items (%d pages a poll)",
                     source.name, len(thin), len(wanted), MAX_NEW_PAGES)  # fmt: skip
        pages = await asyncio.gather(*(self._article_page(source, a.url) for a in thin))
        fuller = {
            item.id: _merge(item, page)
            for item, page in zip(thin, pages, strict=True)
            if isinstance(page, Article)
        }
        return [fuller.get(a.id, a) for a in articles]


class _Outcome(enum.Enum):
    RETRY = "retry"  # try again on the next poll
    NOTHING = "nothing"  # no article there (404, 410, not HTML): look again in a while


_RETRY, _NOTHING = _Outcome.RETRY, _Outcome.NOTHING


def _published(article: Article) -> float | None:
    return article.published.timestamp() if article.published else None


def _thin(article: Article) -> bool:
    return sum(len(block.text) for block in article.body) < THIN_BODY_CHARS


def _merge(item: Article, page: Article) -> Article:
    """The feed item's identity, title and dates, with the page's text and structure."""
    return replace(
        item,
        body=page.body or item.body,
        lede=item.lede or page.lede,
        section=item.section or page.section,
        authors=item.authors or page.authors,
        related=page.related,
        language=item.language or page.language,
        tags=item.tags or page.tags,
    )

"""The queries the CLI uses (and the web will): read-only views over the store, the rules
and documents, and a test message. Each takes the collaborators it needs (a store, a
notifier, a fetcher factory) from its caller; daemon.py builds them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from monitor.config.schema import Config, Rule, Target, default_user_agent
from monitor.delivery.markup import body_format
from monitor.delivery.render import render_test
from monitor.errors import MonitorError
from monitor.matching.intake import Matcher
from monitor.model import Article
from monitor.ports import ClosingFetcher, Fetcher, Notifier, QueryStore, TargetDirectory
from monitor.rules import Document, Explanation, lint_query, mark_snippet
from monitor.service.collect import read_document

# The dashboard's reads (the web's queries) live in their own module.
from monitor.service.dashboard import (
    MARK,
    SHOW,
    MatchRow,
    OutboxView,
    Readiness,
    RuleTest,
    SourcePage,
    SourceRow,
    StoryRow,
    fetch_articles,
    instance_rows,
    masked_targets,
    match_rows,
    outbox_view,
    readiness,
    retry_delivery,
    source_page,
    source_rows,
    story_rows,
    text_article,
    try_rule,
)
from monitor.sources.feeds import FeedError
from monitor.sources.identity import is_http_url
from monitor.state import Delivery, FetchResponse, MatchRecord, SendResult, SourceState

__all__ = [
    "MARK",
    "SHOW",
    "LocationRead",
    "MatchFound",
    "MatchRow",
    "OutboxView",
    "Readiness",
    "RuleTest",
    "SourcePage",
    "SourceRow",
    "StoryRow",
    "Unreadable",
    "dead_deliveries",
    "describe_targets",
    "fetch_articles",
    "instance_rows",
    "load_articles",
    "masked_targets",
    "match_articles",
    "match_rows",
    "match_stream",
    "outbox_view",
    "read_locations",
    "readiness",
    "recent_matches",
    "retry_delivery",
    "rule_warnings",
    "send_test",
    "source_page",
    "source_rows",
    "source_states",
    "stored_articles",
    "story_rows",
    "text_article",
    "try_rule",
]


def rule_warnings(config: Config) -> list[tuple[str, str]]:
    """(rule, warning) for rules that look like mistakes or cannot be indexed."""
    warnings = [(rule.name, text) for rule in config.rules for text in lint_query(rule.query)]
    for rule in config.rules:
        if rule.sources and not any(rule.applies_to(s.name, None) for s in config.sources):
            globs = ", ".join(rule.sources)
            warnings.append((rule.name, f"sources {globs} match no source: it never applies"))
    for name in Matcher(config.rules).index.always_evaluated:
        warnings.append((name, "cannot be indexed: it is evaluated for every article"))
    return warnings


def describe_targets(directory: TargetDirectory, config: Config) -> dict[str, str]:
    """Each configured target as the notifier describes it (its service, never its secrets)."""
    return {name: directory.describe(name) for name in config.targets}


def send_test(notifier: Notifier, target: Target, now: datetime) -> SendResult:
    """Send the test message of `monitor notify-test` to `target`, in its markup."""
    message = render_test(target.name, default_user_agent(), now, target.markup)
    return notifier.send(target.name, message.title, message.body, body_format(target.markup))


async def _fetch_document(fetcher: Fetcher, url: str) -> FetchResponse:
    response = await fetcher.fetch(url)
    if response.status != 200:
        raise OSError(f"{url}: HTTP {response.status}")
    return response


_MEDIA_TYPES = {".html": "text/html", ".htm": "text/html", ".json": "application/feed+json"}


@dataclass(frozen=True, slots=True)
class LocationRead:
    """The articles of one location (none for an empty feed)."""

    location: str
    articles: list[Article]


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A location that could not be read, and why (one line, no traceback)."""

    location: str
    reason: str


def load_articles(
    locations: Iterable[str],
    *,
    source: str | None = None,
    saved_from: str | None = None,
    fetcher_factory: Callable[[], ClosingFetcher] | None = None,
) -> list[Article]:
    """Articles from files (feeds, pages, Article JSON Lines) and http(s) URLs, as a list;
    raises OSError at the first location that cannot be read (see `read_locations`)."""
    articles: list[Article] = []
    for item in read_locations(
        locations, source=source, saved_from=saved_from, fetcher_factory=fetcher_factory
    ):
        if isinstance(item, Unreadable):
            raise OSError(f"{item.location}: {item.reason}")
        articles.extend(item.articles)
    return articles


def read_locations(
    locations: Iterable[str],
    *,
    source: str | None = None,
    saved_from: str | None = None,
    fetcher_factory: Callable[[], ClosingFetcher] | None = None,
) -> Iterator[LocationRead | Unreadable]:
    """The articles of each location in turn, as soon as it is read, or an `Unreadable`
    for a location that cannot be (missing file, HTTP error, not a feed or page): the
    others are read all the same.

    Each article's `source` is `source`, else the file's name or the URL's host. A saved
    file is read as if fetched from `saved_from` (for its links and page URL). URLs are
    fetched with a fetcher from `fetcher_factory` (made on the first URL, closed at the end).
    One location's articles are in memory at a time.
    """
    loop = asyncio.new_event_loop()
    fetcher: ClosingFetcher | None = None
    try:
        for location in locations:
            if is_http_url(location) and fetcher is None and fetcher_factory is not None:
                fetcher = fetcher_factory()
            try:
                articles = loop.run_until_complete(
                    _read_location(location, source, saved_from, fetcher)
                )
            except (OSError, MonitorError, FeedError, UnicodeDecodeError) as exc:
                yield Unreadable(location, _reason(location, exc))
                continue
            except Exception as exc:  # untrusted input: one bad file, never the whole batch
                yield Unreadable(location, f"cannot be read: {type(exc).__name__}: {exc}")
                continue
            yield LocationRead(location, articles)
    finally:
        if fetcher is not None:
            loop.run_until_complete(fetcher.aclose())
        loop.close()


def _reason(location: str, exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    text = str(exc)
    if text.startswith(location + ": "):
        text = text[len(location) + 2 :]
    return text or type(exc).__name__


async def _read_location(
    location: str,
    source_name: str | None,
    saved_from: str | None,
    fetcher: ClosingFetcher | None,
) -> list[Article]:
    if is_http_url(location):
        if fetcher is None:
            raise OSError(f"{location}: no fetcher to read URLs with")
        response = await _fetch_document(fetcher, location)
        source = source_name or urlsplit(location).hostname or location
    else:
        response = _file_response(location, saved_from)
        source = source_name or Path(location).name
        if _is_article_json_lines(response.content):
            return _article_json_lines(response.content)
    reading = await asyncio.to_thread(read_document, response, source)
    if not reading.articles and not _looks_like_feed(response.content):
        raise OSError(f"{location}: not a feed or an article page")
    return reading.articles


_FEED_MARKS = (b"<rss", b"<feed", b"<rdf:rdf", b"<rdf", b"<channel", b"jsonfeed.org")


def _looks_like_feed(content: bytes) -> bool:
    """Whether a document that gave no items is an (empty) feed rather than something else."""
    head = content[:4096].lower()
    return any(mark in head for mark in _FEED_MARKS)


def _file_response(path: str, saved_from: str | None) -> FetchResponse:
    file = Path(path)
    content_type = _MEDIA_TYPES.get(file.suffix.lower(), "")
    return FetchResponse(
        url=saved_from or file.resolve().as_uri(),
        status=200,
        headers={"content-type": content_type} if content_type else {},
        content=file.read_bytes(),
    )


def _is_article_json_lines(content: bytes) -> bool:
    head = content.lstrip()[:2000]
    return head.startswith(b"{") and b'"body"' in head and b'"section"' in head


def _article_json_lines(content: bytes) -> list[Article]:
    return [
        Article.from_json(json.loads(line))
        for line in content.decode("utf-8").splitlines()
        if line.strip()
    ]


class MatchFound:
    """One (rule, article) match: the matched terms with their fields at once, the snippet
    only when asked for (it is the costly part, and only some outputs show it)."""

    __slots__ = ("_document", "_snippet", "article", "explanation", "rule")

    def __init__(
        self, rule: str, article: Article, explanation: Explanation, document: Document
    ) -> None:
        self.rule = rule
        self.article = article
        self.explanation = explanation
        self._document = document
        self._snippet: str | None = None

    @property
    def terms(self) -> tuple[str, ...]:
        return self.explanation.terms

    @property
    def matched(self) -> str:
        """`Japan (title, body), summit (body)`: each term with the fields it matched in."""
        return self.explanation.summary()

    @property
    def snippet(self) -> str:
        """The article around the match, matched words marked (computed once, on first use,
        from the one `Document` the article was matched on)."""
        if self._snippet is None:
            self._snippet = mark_snippet(self._document, self.explanation)
        return self._snippet


def match_articles(
    articles: Iterable[Article],
    rules: list[Rule],
    progress: Callable[[int], None] | None = None,
) -> list[MatchFound]:
    """Every (rule, article) match, as a list (see `match_stream`)."""
    return list(match_stream(articles, rules, progress))


def match_stream(
    articles: Iterable[Article],
    rules: Sequence[Rule] | Matcher,
    progress: Callable[[int], None] | None = None,
) -> Iterator[MatchFound]:
    """Each (rule, article) match as soon as its article is matched; `progress(n)` after
    the n-th article. Each article's `Document` is built once, for matching, explanation
    and snippet, and dropped with the article's matches."""
    for article, document, found in match_groups(articles, rules, progress):
        for name, why in found:
            yield MatchFound(name, article, why, document)


def match_groups(
    articles: Iterable[Article],
    rules: Sequence[Rule] | Matcher,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[Article, Document, list[tuple[str, Explanation]]]]:
    """As `match_stream`, one article at a time: the article, its `Document` and the
    names of the rules it matched with their explanations (nothing made per match but
    the explanation: a backtest of 100,000 rules makes a thousand an article)."""
    matcher = rules if isinstance(rules, Matcher) else Matcher(rules)
    for count, article in enumerate(articles, 1):
        document = Document.from_article(article)
        found = matcher.match_names(article, document)
        if found:
            yield article, document, found
        if progress is not None:
            progress(count)


def stored_articles(
    store: QueryStore, since: timedelta, now: datetime
) -> tuple[int, Iterator[Article]]:
    """How many articles the store kept from the last `since`, and the articles themselves
    (read lazily: consume them before the store is closed)."""
    start = now - since
    return store.count_articles_since(start), iter(store.articles_since(start))


def source_states(store: QueryStore) -> list[SourceState]:
    """For `status`, which reports a damaged database rather than a healthy-looking table."""
    store.check_integrity()
    return store.source_states()


def recent_matches(store: QueryStore, limit: int = 10) -> list[tuple[MatchRecord, str, str]]:
    return store.recent_matches(limit)


def dead_deliveries(store: QueryStore, limit: int = 20) -> list[Delivery]:
    return store.dead_deliveries(limit)

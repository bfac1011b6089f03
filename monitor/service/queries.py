"""The queries the CLI uses (and the web will): read-only views over the store, the rules
and documents, and a test message. Each takes the collaborators it needs (a store, a
notifier, a fetcher factory) from its caller; daemon.py builds them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from monitor.config.schema import Config, Rule, Target, default_user_agent
from monitor.delivery.markup import body_format
from monitor.delivery.render import render_test
from monitor.matching.intake import Matcher
from monitor.model import Article
from monitor.ports import ClosingFetcher, Fetcher, Notifier, QueryStore, TargetDirectory
from monitor.rules import Document, lint_query, mark_snippet
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
from monitor.sources.identity import is_http_url
from monitor.state import Delivery, FetchResponse, MatchRecord, SendResult, SourceState

__all__ = [
    "MARK",
    "SHOW",
    "MatchFound",
    "MatchRow",
    "OutboxView",
    "Readiness",
    "RuleTest",
    "SourcePage",
    "SourceRow",
    "StoryRow",
    "dead_deliveries",
    "describe_targets",
    "fetch_articles",
    "load_articles",
    "masked_targets",
    "match_articles",
    "match_rows",
    "outbox_view",
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


def load_articles(
    locations: Iterable[str],
    *,
    source: str | None = None,
    saved_from: str | None = None,
    fetcher_factory: Callable[[], ClosingFetcher] | None = None,
) -> list[Article]:
    """Articles from files (feeds, pages, Article JSON Lines) and http(s) URLs.

    Each article's `source` is `source`, else the file's name or the URL's host. A saved
    file is read as if fetched from `saved_from` (for its links and page URL). URLs are
    fetched with a fetcher from `fetcher_factory` (made on the first URL, closed at the end).
    """
    return asyncio.run(_load_articles(list(locations), source, saved_from, fetcher_factory))


async def _load_articles(
    locations: list[str],
    source_name: str | None,
    saved_from: str | None,
    fetcher_factory: Callable[[], ClosingFetcher] | None,
) -> list[Article]:
    articles: list[Article] = []
    fetcher: ClosingFetcher | None = None
    try:
        for location in locations:
            if is_http_url(location):
                if fetcher_factory is None:
                    raise OSError(f"{location}: no fetcher to read URLs with")
                fetcher = fetcher or fetcher_factory()
                response = await _fetch_document(fetcher, location)
                source = source_name or urlsplit(location).hostname or location
            else:
                response = _file_response(location, saved_from)
                source = source_name or Path(location).name
                if _is_article_json_lines(response.content):
                    articles.extend(_article_json_lines(response.content))
                    continue
            reading = await asyncio.to_thread(read_document, response, source)
            articles.extend(reading.articles)
    finally:
        if fetcher is not None:
            await fetcher.aclose()
    return articles


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


@dataclass(frozen=True, slots=True)
class MatchFound:
    rule: str
    article: Article
    terms: tuple[str, ...]
    matched: str
    snippet: str


def match_articles(
    articles: Iterable[Article],
    rules: list[Rule],
    progress: Callable[[int], None] | None = None,
) -> list[MatchFound]:
    """Every (rule, article) match, explained, with a snippet marking the matched words."""
    matcher = Matcher(rules)
    found = []
    for count, article in enumerate(articles, 1):
        for rule, why in matcher.match(article):
            quote = mark_snippet(Document.from_article(article), why)
            found.append(MatchFound(rule.name, article, why.terms, why.summary(), quote))
        if progress is not None:
            progress(count)
    return found


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

"""Pure decisions: which items are new, which may alert, what matched, when to try again."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.config import Rule
from monitor.model import Article
from monitor.rules import Document

__all__ = [
    "Intake",
    "delivery_id",
    "fetch_retry_delay",
    "find_matches",
    "retry_delay",
    "triage",
]

RETRY_FIRST = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
FETCH_ERROR_CAP = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Intake:
    """A newly seen article and whether it may alert (backfill decides on a first fetch)."""

    article: Article
    alert: bool


def triage(
    articles: Iterable[Article],
    *,
    known: Collection[str],
    first_fetch: bool,
    now: datetime,
    backfill: timedelta,
) -> list[Intake]:
    """Keep articles not seen before, once each.

    On a source's first fetch only items published within `backfill` alert, so adding a
    source does not flood a channel with its archive; undated items are recorded silently.
    """
    fresh: list[Intake] = []
    seen: set[str] = set(known)
    for article in articles:
        if article.id in seen:
            continue
        seen.add(article.id)
        alert = not first_fetch or (
            article.published is not None and article.published >= now - backfill
        )
        fresh.append(Intake(article, alert))
    return fresh


def find_matches(article: Article, rules: Sequence[Rule]) -> list[tuple[Rule, tuple[str, ...]]]:
    document = Document.from_article(article)
    found = []
    for rule in rules:
        if not rule.applies_to(article.source, article.language):
            continue
        terms = rule.query.evaluate(document)
        if terms is not None:
            found.append((rule, terms))
    return found


def delivery_id(article_id: str, rule: str, target: str) -> str:
    """Stable per (article, rule, target), so a retried enqueue never duplicates."""
    key = "\0".join((article_id, rule, target)).encode("utf-8")
    return hashlib.sha256(key).hexdigest()[:24]


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after `attempts` failed deliveries: 30 s, 1 min, 2 min ... 1 h."""
    if attempts <= 0:
        return timedelta(0)
    delay: timedelta = RETRY_FIRST * 2 ** min(attempts - 1, 20)
    return min(delay, RETRY_CAP)


def fetch_retry_delay(errors: int, interval: timedelta) -> timedelta:
    """After `errors` consecutive failed fetches: the interval doubled per error, up to 24 h."""
    if errors <= 0:
        return interval
    delay: timedelta = interval * 2 ** min(errors - 1, 20)
    return min(delay, FETCH_ERROR_CAP)

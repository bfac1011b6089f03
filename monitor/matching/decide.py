"""Pure decisions: which items are new, which may alert, what matched, when to try again."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from monitor.config.schema import QuietHours, Rule
from monitor.model import Article
from monitor.rules import Document, Explanation, RuleIndex
from monitor.state import Delivery, FeedHints

__all__ = [
    "Intake",
    "Matcher",
    "cache_floor",
    "delivery_id",
    "fetch_retry_delay",
    "may_alert",
    "next_poll",
    "plan_sends",
    "publisher_floor",
    "retry_after",
    "retry_delay",
    "skip_to_allowed",
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
        alert = may_alert(article, first_fetch=first_fetch, now=now, backfill=backfill)
        fresh.append(Intake(article, alert))
    return fresh


def may_alert(article: Article, *, first_fetch: bool, now: datetime, backfill: timedelta) -> bool:
    """Whether a new article alerts: always, except on its source's first fetch, where only
    one published within `backfill` does."""
    return not first_fetch or (
        article.published is not None and article.published >= now - backfill
    )


class Matcher:
    """Every rule compiled into one index: per article only candidate rules are evaluated."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self.index = RuleIndex((rule.name, rule.query) for rule in rules)
        self._everywhere = frozenset(r.name for r in rules if not r.sources and not r.languages)

    def match(
        self, article: Article, document: Document | None = None
    ) -> list[tuple[Rule, Explanation]]:
        """The rules that match `article` (and apply to its source and language);
        `document` is the article's, if its caller built it already."""
        document = document or Document.from_article(article)
        rules, everywhere = self.rules, self._everywhere
        source, language = article.source, article.language
        return [
            (rules[name], explanation)
            for name, explanation in self.index.match(document)
            if name in everywhere or rules[name].applies_to(source, language)
        ]


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


MAX_FLOOR = timedelta(hours=24)
DEFAULT_RETRY_AFTER = timedelta(hours=1)


def retry_after(value: str | None, now: datetime) -> timedelta:
    """A 429/503 Retry-After (seconds or an HTTP date) as a delay; 1 h when absent or unreadable."""
    text = (value or "").strip()
    if text.isdigit():
        delay = timedelta(seconds=int(text))
    else:
        when = _http_date(text)
        delay = when - now if when else DEFAULT_RETRY_AFTER
    return min(max(delay, timedelta(0)), MAX_FLOOR)


def cache_floor(headers: Mapping[str, str], now: datetime) -> timedelta:
    """How long the response says it stays fresh: Cache-Control max-age, else Expires."""
    directives = {
        part.split("=", 1)[0].strip().lower(): part.split("=", 1)[1].strip(' "')
        if "=" in part
        else ""
        for part in headers.get("cache-control", "").split(",")
        if part.strip()
    }
    if "no-store" in directives or "no-cache" in directives:
        return timedelta(0)
    if directives.get("max-age", "").isdigit():
        return min(timedelta(seconds=int(directives["max-age"])), MAX_FLOOR)
    expires = _http_date(headers.get("expires", ""))
    if expires is None:
        return timedelta(0)
    served = _http_date(headers.get("date", "")) or now
    return min(max(expires - served, timedelta(0)), MAX_FLOOR)


def publisher_floor(headers: Mapping[str, str], hints: FeedHints, now: datetime) -> timedelta:
    """The soonest the publisher wants to be asked again, capped at 24 h."""
    floors = [cache_floor(headers, now), hints.ttl or timedelta(0)]
    floors.append(hints.update_period or timedelta(0))
    return min(max(floors), MAX_FLOOR)


def skip_to_allowed(when: datetime, hints: FeedHints) -> datetime:
    """Move `when` past the feed's skipHours/skipDays (UTC), at most 24 h further."""
    if not hints.skip_hours and not hints.skip_days:
        return when
    moved = when
    limit = when + MAX_FLOOR
    while moved.hour in hints.skip_hours or moved.weekday() in hints.skip_days:
        moved = (moved + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        if moved >= limit:
            return limit
    return moved


def next_poll(
    now: datetime, interval: timedelta, headers: Mapping[str, str], hints: FeedHints
) -> tuple[datetime, datetime | None]:
    """(next scheduled fetch, publisher's not-before) after a successful fetch."""
    floor = publisher_floor(headers, hints, now)
    not_before = skip_to_allowed(now + floor, hints)
    scheduled = skip_to_allowed(now + max(interval, floor), hints)
    return scheduled, (not_before if not_before > now else None)


def _http_date(text: str) -> datetime | None:
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def plan_sends(
    queue: Sequence[Delivery],
    *,
    now: datetime,
    allowance: int | None,
    quiet: QuietHours | None,
) -> list[list[Delivery]]:
    """Group a target's due deliveries into messages, oldest first.

    Nothing goes out during quiet hours; what queued up during them leaves as one message.
    With a rate limit, the last message the limit allows carries everything beyond it
    ("and 37 more"). A group of one is an ordinary alert; nothing is ever dropped.
    """
    if (quiet is not None and quiet.contains(now)) or (allowance is not None and allowance < 1):
        return []
    held = [d for d in queue if quiet is not None and quiet.contains(d.created_at)]
    if len(held) < 2:
        held = []
    held_ids = {d.id for d in held}
    groups = [[d] for d in queue if d.id not in held_ids]
    if held:
        groups.append(held)
    groups.sort(key=lambda group: group[0].created_at)
    if allowance is not None and len(groups) > allowance:
        overflow = [d for group in groups[allowance - 1 :] for d in group]
        groups = [*groups[: allowance - 1], overflow]
    return groups

"""The publisher's manners: when a source may be fetched again. Pure: `now` is passed in.

After a success, the interval, stretched to what the response and the feed ask for
(Cache-Control max-age or Expires, RSS <ttl>, sy:updatePeriod, skipHours/skipDays); after
a 429/503, Retry-After; after other failures, the interval doubled per error up to 24 h.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from monitor.state import FeedHints

__all__ = [
    "cache_floor",
    "fetch_retry_delay",
    "next_poll",
    "publisher_floor",
    "retry_after",
    "skip_to_allowed",
]

FETCH_ERROR_CAP = timedelta(hours=24)


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

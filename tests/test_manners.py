"""When a source may be fetched again (sources.manners), on plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.sources.manners import (
    cache_floor,
    fetch_retry_delay,
    next_poll,
    retry_after,
    skip_to_allowed,
)
from monitor.state import FeedHints

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_fetch_backoff_is_capped_at_a_day() -> None:
    assert fetch_retry_delay(0, timedelta(minutes=15)) == timedelta(minutes=15)
    assert fetch_retry_delay(2, timedelta(minutes=15)) == timedelta(minutes=30)
    assert fetch_retry_delay(50, timedelta(minutes=15)) == timedelta(hours=24)


def test_retry_after_reads_seconds_and_dates_and_defaults_to_an_hour() -> None:
    assert retry_after("120", NOW) == timedelta(seconds=120)
    assert retry_after("Sat, 28 Nov 2026 13:30:00 GMT", NOW) == timedelta(minutes=90)
    assert retry_after("Sat, 28 Nov 2026 11:00:00 GMT", NOW) == timedelta(0)
    assert retry_after(None, NOW) == timedelta(hours=1)
    assert retry_after("soon", NOW) == timedelta(hours=1)
    assert retry_after("86400000", NOW) == timedelta(hours=24)


def test_cache_floor_from_max_age_or_expires() -> None:
    assert cache_floor({"cache-control": "public, max-age=600"}, NOW) == timedelta(minutes=10)
    assert cache_floor({"cache-control": "no-cache, max-age=600"}, NOW) == timedelta(0)
    expires = {"expires": "Sat, 28 Nov 2026 14:00:00 GMT", "date": "Sat, 28 Nov 2026 12:00:00 GMT"}
    assert cache_floor(expires, NOW) == timedelta(hours=2)
    assert cache_floor({"expires": "0"}, NOW) == timedelta(0)
    assert cache_floor({"cache-control": "max-age=99999999"}, NOW) == timedelta(hours=24)


def test_skip_hours_and_days_push_the_next_fetch_out() -> None:
    hints = FeedHints(skip_hours=frozenset({12, 13}), skip_days=frozenset({5}))  # Saturday
    saturday_noon = NOW  # 2026-11-28 is a Saturday

    assert skip_to_allowed(saturday_noon, hints) == datetime(2026, 11, 29, 0, tzinfo=UTC)
    friday = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
    assert skip_to_allowed(friday, hints) == datetime(2026, 11, 27, 14, tzinfo=UTC)


def test_next_poll_takes_the_largest_floor_and_keeps_the_interval() -> None:
    hints = FeedHints(ttl=timedelta(minutes=30), update_period=timedelta(hours=2))

    scheduled, not_before = next_poll(NOW, timedelta(minutes=15), {}, hints)

    assert (scheduled, not_before) == (NOW + timedelta(hours=2), NOW + timedelta(hours=2))
    assert next_poll(NOW, timedelta(minutes=15), {}, FeedHints()) == (
        NOW + timedelta(minutes=15),
        None,
    )

"""Outbox policy (delivery.policy): entry ids and retry backoff, on plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.delivery.policy import delivery_id, retry_delay

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_delivery_backoff_doubles_from_30_seconds_to_an_hour() -> None:
    delays = [retry_delay(n).total_seconds() for n in range(1, 10)]

    assert delays[:4] == [30, 60, 120, 240]
    assert delays[-1] == 3600
    assert retry_delay(1000) == timedelta(hours=1)


def test_delivery_ids_are_stable_and_distinct() -> None:
    assert delivery_id("a", "r", "t") == delivery_id("a", "r", "t")
    assert (
        len({delivery_id("a", "r", "t"), delivery_id("a", "r", "u"), delivery_id("a", "rt", "")})
        == 3
    )

"""The newest of a source's items, when it lists more than we read in one poll."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["newest"]

T = TypeVar("T")


def newest(items: Sequence[T], limit: int | None, when: Callable[[T], float | None]) -> list[T]:
    """At most `limit` of `items`, the newest by `when` (a timestamp, None if undated):
    undated items count as older than dated ones, and ties go by document order. The items
    kept stay in document order. `when` is only called if there are more than `limit`."""
    if limit is None or len(items) <= limit:
        return list(items)
    times = [when(item) for item in items]
    order = heapq.nsmallest(limit, range(len(items)), key=lambda i: _age(times[i]))
    return [items[i] for i in sorted(order)]


def _age(timestamp: float | None) -> tuple[bool, float]:
    return (timestamp is None, -(timestamp or 0.0))

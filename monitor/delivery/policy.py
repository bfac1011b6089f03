"""Outbox policy: what an entry is, when a failed one is tried again, how a queue is sent.

`queued` is the one place an outbox entry (`Delivery`) is built: its id derived from
(article or key, rule, target), so queueing twice is harmless. `retry_delay` backs off
after failures; `plan_sends` groups a target's queue under its quiet hours and rate limit.
Pure: `now` is passed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from monitor.config.schema import QuietHours, Target
from monitor.delivery.markup import body_format
from monitor.delivery.templates import Message
from monitor.state import Delivery

__all__ = ["delivery_id", "plan_sends", "queued", "retry_delay"]

RETRY_FIRST = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)


def delivery_id(article_id: str, rule: str, target: str) -> str:
    """Stable per (article, rule, target), so a retried enqueue never duplicates."""
    key = "\0".join((article_id, rule, target)).encode("utf-8")
    return hashlib.sha256(key).hexdigest()[:24]


def queued(key: str, rule: str, target: Target, message: Message, now: datetime) -> Delivery:
    """A new outbox entry: `message` for `target`, queued at `now` for (`key`, `rule`).

    `key` is the article id for an alert, else what the message is about (a digest
    period, a story's follow-up, a failing source); the entry's id is derived from it,
    the rule and the target, and the body is declared to Apprise in the target's markup.
    """
    return Delivery(
        id=delivery_id(key, rule, target.name),
        article_id=key,
        rule=rule,
        target=target.name,
        title=message.title,
        body=message.body,
        created_at=now,
        body_format=body_format(target.markup),
    )


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after `attempts` failed deliveries: 30 s, 1 min, 2 min ... 1 h."""
    if attempts <= 0:
        return timedelta(0)
    delay: timedelta = RETRY_FIRST * 2 ** min(attempts - 1, 20)
    return min(delay, RETRY_CAP)


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

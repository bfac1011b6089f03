"""The durable outbox: sending queued messages under each target's limits, and digests."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.config.schema import Config, Rule, Target
from monitor.delivery.markup import limit_for
from monitor.delivery.policy import plan_sends, queued, retry_delay
from monitor.delivery.render import Folded, Message, render_digest, render_fold, render_follow_up
from monitor.errors import StoreError
from monitor.model import Article, format_time
from monitor.ports import Clock, Notifier, OutboxStore
from monitor.service.logs import log_context
from monitor.state import Delivery, FollowUp, MatchRecord, StoryCopy

__all__ = ["DeliveryReport", "Outbox"]

log = logging.getLogger(__name__)
MAX_FAILURES_IN_ROW = 3
FIRST_DIGEST_SPAN = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0


class Outbox:
    def __init__(
        self,
        config: Config,
        store: OutboxStore,
        notifier: Notifier,
        clock: Clock,
    ) -> None:
        self.config = config
        self.store = store
        self.notifier = notifier
        self.clock = clock
        # Sent, but not yet recorded as sent: delivery id -> (the one it was folded into, when).
        # Never sent again; recorded as soon as the store takes it.
        self.unrecorded: dict[str, tuple[str | None, datetime]] = {}

    async def deliver(self, *, due_only: bool = True) -> DeliveryReport:
        """Send pending messages; each target's queue runs on its own, so one slow or dead
        target delays only itself. Follow-ups whose story has gone quiet are queued first
        (`due_only=False` sends what is queued, but never a story's follow-up early)."""
        self.record_sent()
        try:
            self.queue_follow_ups()
        except StoreError as exc:  # they stay due; what is queued already still goes out
            log.error("follow-ups not queued: %s", exc)
        pending = [
            delivery
            for delivery in self.store.claim_deliveries(self.clock(), due_only=due_only)
            if delivery.id not in self.unrecorded
        ]
        by_target: dict[str, list[Delivery]] = defaultdict(list)
        for delivery in pending:
            by_target[delivery.target].append(delivery)
        results = await asyncio.gather(
            *(self._deliver_logged(name, queue) for name, queue in by_target.items())
        )
        return DeliveryReport(sum(r.sent for r in results), sum(r.failed for r in results))

    async def _deliver_logged(self, name: str, queue: Sequence[Delivery]) -> DeliveryReport:
        with log_context(target=name):
            return await self._deliver_target(name, queue)

    async def _deliver_target(self, name: str, queue: Sequence[Delivery]) -> DeliveryReport:
        """Send in order; a target failing several times in a row waits for the next pass."""
        now = self.clock()
        target = self.config.targets.get(name)
        allowance = None
        if target is not None and target.max_per_hour:
            sent_last_hour = self.store.messages_sent(name, now - timedelta(hours=1))
            allowance = target.max_per_hour - sent_last_hour
        quiet = target.quiet_hours if target is not None else None
        sent = failed = failed_in_row = 0
        for group in plan_sends(queue, now=now, allowance=allowance, quiet=quiet):
            if failed_in_row == MAX_FAILURES_IN_ROW:
                break
            with log_context(delivery=group[0].id, rule=group[0].rule):
                delivered = await self._send(group)
            if delivered:
                sent, failed_in_row = sent + 1, 0
            else:
                failed, failed_in_row = failed + 1, failed_in_row + 1
        return DeliveryReport(sent, failed)

    async def _send(self, group: Sequence[Delivery]) -> bool:
        first, rest = group[0], group[1:]
        message = Message(first.title, first.body)
        if rest:
            folded = [Folded(d.article_title or d.title, d.url) for d in rest]
            message = render_fold(message, folded, self._target(first.target).markup)
        result = await asyncio.to_thread(
            self.notifier.send, first.target, message.title, message.body, first.body_format
        )
        now = self.clock()
        if result.ok:
            self.unrecorded[first.id] = (None, now)
            self.unrecorded.update((d.id, (first.id, now)) for d in rest)
            self.record_sent()
            return True
        try:
            self._failed(first, result.error or "delivery failed", now)
        except StoreError as exc:  # it stays due, so the next pass tries it again
            log.error("%s: the failed delivery could not be recorded (%s)", first.target, exc)
        return False

    def record_sent(self) -> None:
        """Record the messages sent but not yet recorded, as far as the store takes them."""
        try:
            for sent_id, (into, sent_at) in list(self.unrecorded.items()):
                if into is None:
                    self.store.mark_delivered(sent_id, sent_at)
                else:
                    self.store.mark_folded([sent_id], into, sent_at)
                del self.unrecorded[sent_id]
        except StoreError as exc:
            log.error("%d sent messages could not be recorded as sent (%s); they are not sent"
                      " again, and are recorded once the database allows", len(self.unrecorded),
                      exc)  # fmt: skip

    def _failed(self, delivery: Delivery, error: str, now: datetime) -> None:
        if now - delivery.created_at >= self.config.settings.give_up_after:
            log.error("%s: %s; giving up on %r (%s)", delivery.target, error,
                      delivery.title, delivery.id)  # fmt: skip
            self.store.mark_dead(delivery.id, error, now)
            return
        delay = retry_delay(delivery.attempts + 1)
        log.warning("%s: %s; retry in %s", delivery.target, error, delay)
        self.store.mark_failed(delivery.id, error, now + delay)

    def queue_follow_ups(self) -> int:
        """Queue the "also reported by" message of each story that has been quiet long
        enough, listing every other outlet that carried it."""
        now = self.clock()
        rules = {rule.name: rule for rule in self.config.rules}
        queued = 0
        for due in self.store.due_follow_ups(now):
            rule = rules.get(due.rule)
            if rule is None or not rule.follow_up or due.target not in rule.notify:
                self.store.queue_follow_up(due, None, now)
                continue
            story, outlets = _other_outlets(
                due.story_id, self.store.story_copies(rule.name, due.story_id)
            )
            if story is None or not outlets:
                self.store.drop_follow_up(due)
                continue
            delivery = self._follow_up(due, story, outlets, now)
            queued += self.store.queue_follow_up(due, delivery, now)
        if queued:
            log.info("%d follow-ups queued", queued)
        return queued

    def _follow_up(
        self, due: FollowUp, story: StoryCopy, outlets: Sequence[StoryCopy], now: datetime
    ) -> Delivery:
        target = self._target(due.target)
        message = render_follow_up(story, outlets, due.rule, target.markup, limit_for(target.url))
        return queued(f"{due.story_id}:also", due.rule, target, message, now)

    def _target(self, name: str) -> Target:
        """The configured target (one unknown to the config is written for as plain text)."""
        return self.config.targets.get(name) or Target(name, "")

    def start_digest(self, rule: Rule) -> datetime:
        """When the rule's current digest period began (a new digest rule begins now)."""
        covered = self.store.digest_covered_until(rule.name)
        if covered is None:
            covered = self.clock()
            if not self.store.save_digest(rule.name, covered, [], expected=None, check=True):
                return self.store.digest_covered_until(rule.name) or covered  # another's
        return covered

    def queue_digest(self, rule: Rule) -> int:
        """Close the rule's digest period now and queue its message (none if it is empty)."""
        now = self.clock()
        covered = self.store.digest_covered_until(rule.name)
        start = covered or now - FIRST_DIGEST_SPAN
        matches = self.store.matches_between(rule.name, start, now)
        if not matches:
            self.store.save_digest(rule.name, now, [], expected=covered, check=True)
            return 0
        stories = _by_story(matches)
        key = f"digest:{rule.name}:{format_time(now)}"
        deliveries = []
        for name in rule.notify:
            target = self._target(name)
            message = render_digest(rule.name, stories, target.markup)
            deliveries.append(queued(key, rule.name, target, message, now))
        if not self.store.save_digest(rule.name, now, deliveries, expected=covered, check=True):
            log.info("%s: digest of this period queued by another instance", rule.name)
            return 0
        log.info("%s: digest of %d matches queued", rule.name, len(matches))
        return len(matches)


def _by_story(matches: Sequence[tuple[MatchRecord, Article]]) -> list[tuple[Article, list[str]]]:
    """Each story once (its first article), with every source that carried it, in order."""
    stories: dict[str, tuple[Article, list[str]]] = {}
    for match, article in matches:
        _, sources = stories.setdefault(match.story_id or article.id, (article, []))
        source = match.source or article.source
        if source not in sources:
            sources.append(source)
    return list(stories.values())


def _other_outlets(
    story_id: str, copies: Sequence[StoryCopy]
) -> tuple[StoryCopy | None, list[StoryCopy]]:
    """The story's alerted article, and each other outlet's first copy, in order."""
    story = next((copy for copy in copies if copy.article_id == story_id), None)
    if story is None:
        return None, []
    seen = {story.source}
    outlets = []
    for copy in copies:
        if copy.source not in seen:
            seen.add(copy.source)
            outlets.append(copy)
    return story, outlets

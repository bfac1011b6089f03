"""One poll of a source and one pass over the outbox, with the adapters behind Protocols."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from monitor.config import Config, Source
from monitor.decide import delivery_id, fetch_retry_delay, find_matches, retry_delay, triage
from monitor.errors import MonitorError
from monitor.extract import decode_html, extract_article
from monitor.model import Article
from monitor.parse import FeedError, detect_kind, parse_feed
from monitor.render import render_alert
from monitor.state import Delivery, FetchResponse, MatchRecord, SendResult, SourceState

__all__ = [
    "DeliveryReport",
    "Fetcher",
    "Notifier",
    "PollReport",
    "Service",
    "Store",
    "read_document",
    "utc_now",
]

log = logging.getLogger(__name__)
MAX_FAILURES_IN_ROW = 3


class Fetcher(Protocol):
    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResponse: ...


class Store(Protocol):
    def source_state(self, name: str) -> SourceState | None: ...
    def known_ids(self, ids: Iterable[str]) -> set[str]: ...
    def save_poll(
        self,
        state: SourceState,
        articles: Sequence[Article],
        matches: Sequence[MatchRecord],
        deliveries: Sequence[Delivery],
        now: datetime,
    ) -> None: ...
    def save_state(self, state: SourceState) -> None: ...
    def pending_deliveries(self, now: datetime, *, due_only: bool = True) -> list[Delivery]: ...
    def mark_delivered(self, delivery_id: str, now: datetime) -> None: ...
    def mark_failed(self, delivery_id: str, error: str, next_attempt_at: datetime) -> None: ...


class Notifier(Protocol):
    def send(self, target: str, title: str, body: str) -> SendResult: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PollReport:
    source: str
    ok: bool
    new: int = 0
    alerts: int = 0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0


def read_document(response: FetchResponse, source: str) -> list[Article]:
    """A fetched feed's items, or a fetched page as one article (CPU-bound: run off the loop)."""
    kind = detect_kind(response.content, response.content_type)
    if kind == "html":
        html = decode_html(response.content, response.content_type)
        return [extract_article(html, url=response.url, source=source)]
    feed = parse_feed(response.content, source=source, url=response.url, headers=response.headers)
    if feed.problem:
        log.warning("%s: malformed feed, read what could be read: %s", source, feed.problem)
    return list(feed.articles)


class Service:
    def __init__(
        self,
        config: Config,
        fetcher: Fetcher,
        store: Store,
        notifier: Notifier,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self.fetcher = fetcher
        self.store = store
        self.notifier = notifier
        self.clock = clock

    def state_of(self, source: Source) -> SourceState:
        state = self.store.source_state(source.name)
        if state is None or state.url != source.url:
            return SourceState(source.name, source.url)
        return state

    def is_due(self, source: Source, *, ignore_interval: bool) -> bool:
        """Due by its schedule; with `ignore_interval` (run --once) unless it is backing off."""
        state = self.state_of(source)
        if state.next_fetch_at is None or state.next_fetch_at <= self.clock():
            return True
        return ignore_interval and state.error_count == 0

    async def poll_all(self, *, ignore_interval: bool = False) -> list[PollReport]:
        due = [
            s
            for s in self.config.sources
            if s.enabled and self.is_due(s, ignore_interval=ignore_interval)
        ]
        return list(await asyncio.gather(*(self.poll(source) for source in due)))

    async def poll(self, source: Source) -> PollReport:
        """Fetch one source, record new articles, and queue a delivery per match and target."""
        state = self.state_of(source)
        try:
            response = await self.fetcher.fetch(
                source.url, etag=state.etag, last_modified=state.last_modified
            )
        except MonitorError as exc:
            return self._failed(source, state, str(exc))
        now = self.clock()
        if response.not_modified:
            self.store.save_state(self._succeeded(source, state, now, "not modified", 0))
            return PollReport(source.name, True, detail="not modified")
        if response.status != 200:
            return self._failed(source, state, f"HTTP {response.status}")
        try:
            articles = await asyncio.to_thread(read_document, response, source.name)
        except FeedError as exc:
            return self._failed(source, state, str(exc))
        known = self.store.known_ids(a.id for a in articles)
        intake = triage(
            articles,
            known=known,
            first_fetch=state.never_fetched,
            now=now,
            backfill=self.config.settings.backfill,
        )
        alerting = [item.article for item in intake if item.alert]
        matches, deliveries = await asyncio.to_thread(self._match, alerting, source, now)
        new_state = self._succeeded(
            source, state, now, "ok", len(intake), response.etag, response.last_modified
        )
        self.store.save_poll(new_state, [i.article for i in intake], matches, deliveries, now)
        if intake:
            log.info("%s: %d new, %d matched", source.name, len(intake), len(matches))
        return PollReport(source.name, True, len(intake), len(matches))

    def _match(
        self, articles: Sequence[Article], source: Source, now: datetime
    ) -> tuple[list[MatchRecord], list[Delivery]]:
        matches: list[MatchRecord] = []
        deliveries: list[Delivery] = []
        for article in articles:
            for rule, terms in find_matches(article, self.config.rules):
                matches.append(MatchRecord(article.id, rule.name, terms, now))
                message = render_alert(article, rule.name, terms, source.name)
                deliveries.extend(
                    Delivery(
                        id=delivery_id(article.id, rule.name, target),
                        article_id=article.id,
                        rule=rule.name,
                        target=target,
                        title=message.title,
                        body=message.body,
                        created_at=now,
                    )
                    for target in rule.notify
                )
        return matches, deliveries

    def _succeeded(
        self,
        source: Source,
        state: SourceState,
        now: datetime,
        result: str,
        new: int,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> SourceState:
        return replace(
            state,
            etag=etag or state.etag,
            last_modified=last_modified or state.last_modified,
            last_fetch_at=now,
            last_ok_at=now,
            last_result=result,
            error_count=0,
            next_fetch_at=now + source.interval,
            items_seen=state.items_seen + new,
        )

    def _failed(self, source: Source, state: SourceState, error: str) -> PollReport:
        now = self.clock()
        errors = state.error_count + 1
        delay = fetch_retry_delay(errors, source.interval)
        log.warning("%s: fetch failed (%s); retry in %s", source.name, error, delay)
        self.store.save_state(
            replace(
                state,
                last_fetch_at=now,
                last_result=error,
                error_count=errors,
                next_fetch_at=now + delay,
            )
        )
        return PollReport(source.name, False, detail=error)

    async def deliver(self, *, due_only: bool = True) -> DeliveryReport:
        """Send pending outbox entries; each target's queue runs on its own."""
        pending = self.store.pending_deliveries(self.clock(), due_only=due_only)
        by_target: dict[str, list[Delivery]] = defaultdict(list)
        for delivery in pending:
            by_target[delivery.target].append(delivery)
        results = await asyncio.gather(*(self._deliver_queue(q) for q in by_target.values()))
        return DeliveryReport(sum(r.sent for r in results), sum(r.failed for r in results))

    async def _deliver_queue(self, queue: Sequence[Delivery]) -> DeliveryReport:
        """Send in order; a target that fails several times in a row waits for the next pass."""
        sent = failed = failed_in_row = 0
        for delivery in queue:
            if failed_in_row == MAX_FAILURES_IN_ROW:
                break
            result = await asyncio.to_thread(
                self.notifier.send, delivery.target, delivery.title, delivery.body
            )
            now = self.clock()
            if result.ok:
                self.store.mark_delivered(delivery.id, now)
                sent += 1
                failed_in_row = 0
                continue
            failed += 1
            failed_in_row += 1
            delay = retry_delay(delivery.attempts + 1)
            error = result.error or "delivery failed"
            log.warning("%s: %s; retry in %s", delivery.target, error, delay)
            self.store.mark_failed(delivery.id, error, now + delay)
        return DeliveryReport(sent, failed)

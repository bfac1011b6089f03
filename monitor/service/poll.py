"""One poll of a source and one pass over the outbox, with the adapters behind Protocols."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.config.schema import Config, Rule, Source, Target, Templates
from monitor.delivery.policy import queued
from monitor.delivery.render import Message, render_alert, render_source_failure
from monitor.delivery.templates import TemplateError
from monitor.errors import LeaseLost, MonitorError, StoreError
from monitor.matching.intake import Intake, Matcher, may_alert, triage
from monitor.matching.stories import Fingerprint, boilerplate, find_story, fingerprint
from monitor.model import Article, format_time
from monitor.ports import Clock, Notifier, PollStore, utc_now
from monitor.rules import Explanation
from monitor.service.collect import Collector, Reading, read_document
from monitor.service.logs import log_context
from monitor.service.outbox import DeliveryReport, Outbox
from monitor.sources.manners import fetch_retry_delay, next_poll, retry_after
from monitor.sources.websub import fallback_interval
from monitor.state import (
    Delivery,
    FeedHints,
    FetchResponse,
    FollowUp,
    MatchRecord,
    SourceState,
)

__all__ = [
    "DeliveryReport",
    "PollReport",
    "Service",
    "read_document",
]

log = logging.getLogger(__name__)
# Polls in progress at once: bounds the fetched bodies waiting to be parsed in memory.
MAX_POLLS_AT_ONCE = 128
# A source's stored articles that, with its new ones, show which text it repeats.
BOILERPLATE_CONTEXT = 50
# A story's follow-up waits until no new copy has come for this long.
FOLLOW_UP_QUIET = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class Found:
    article: Article
    rule: Rule
    explanation: Explanation
    fingerprint: Fingerprint


@dataclass(frozen=True, slots=True)
class Grouped:
    """A poll's matches under their stories, with what they queue or schedule."""

    matches: list[MatchRecord]
    deliveries: list[Delivery]
    follow_ups: list[FollowUp]


@dataclass(frozen=True, slots=True)
class PollReport:
    source: str
    ok: bool
    new: int = 0
    alerts: int = 0
    detail: str = ""


class Service:
    def __init__(
        self,
        config: Config,
        store: PollStore,
        outbox: Outbox,
        collector: Collector,
        clock: Clock = utc_now,
    ) -> None:
        """The collaborators come built (daemon.build_service wires them): the store, the
        outbox over the same store and a notifier, the collector over a fetcher."""
        self.config = config
        self.store = store
        self.clock = clock
        self.outbox = outbox
        # Held from a poll's story grouping to the end of its save (which runs in a thread),
        # so another source's copy of a story is grouped only after the first is stored.
        self._recording = asyncio.Lock()
        self.collector = collector
        self.matcher = Matcher(config.rules)
        # Sources whose last poll the store refused: their backoff lives here until it takes one.
        self.unsaved: dict[str, SourceState] = {}
        self._last_read: dict[str, SourceState] = {}  # to back off from in a database outage
        self.store_failures = 0  # polls in a row, across sources, that the store refused
        self.store_error: StoreError | None = None
        # WebSub (service.websub.Subscriber sets these): a poll's 200 response for discovery,
        # a poll's new items (a hub that missed them), and whether a source is pushed.
        self.on_fetched: Callable[[Source, FetchResponse], None] | None = None
        self.on_unpushed: Callable[[Source, Sequence[Article]], None] | None = None
        self.pushed: Callable[[str], bool] = lambda name: False

    def reconfigure(self, config: Config, matcher: Matcher, notifier: Notifier) -> None:
        """Swap in a reloaded config at once (its rules compiled into `matcher` and its
        targets into `notifier` beforehand, off the event loop); work in flight finishes
        with what it holds."""
        self.config = config
        self.matcher = matcher
        self.outbox.config = config
        self.outbox.notifier = notifier

    def state_of(
        self, source: Source, stored: Mapping[str, SourceState] | None = None
    ) -> SourceState:
        """The source's state: held back after a refused save, else `stored` (all the
        states, read at once) or the store's."""
        state = self.unsaved.get(source.name) or (
            self.store.source_state(source.name) if stored is None else stored.get(source.name)
        )
        if state is None or state.url != source.url:
            return SourceState(source.name, source.url)
        self._last_read[source.name] = state
        return state

    def is_due(
        self,
        source: Source,
        *,
        ignore_interval: bool,
        stored: Mapping[str, SourceState] | None = None,
    ) -> bool:
        """Due by its schedule, or any time with `ignore_interval` (run --once), except while
        disabled, backing off after errors, or inside the publisher's not-before."""
        state = self.state_of(source, stored)
        now = self.clock()
        if state.disabled or (state.not_before and now < state.not_before):
            return False
        if state.next_fetch_at is None or state.next_fetch_at <= now:
            return True
        return ignore_interval and state.error_count == 0

    def next_due(self, source: Source) -> datetime | None:
        """When the daemon should poll next (None: never, the source is disabled)."""
        state = self.state_of(source)
        if state.disabled:
            return None
        times = [t for t in (state.next_fetch_at, state.not_before) if t is not None]
        return max(times) if times else self.clock()

    async def poll_all(self, *, ignore_interval: bool = False) -> list[PollReport]:
        started = self.clock()
        # One read of every state, in a worker thread, rather than one a source on the loop.
        stored = {s.name: s for s in await asyncio.to_thread(self.store.source_states)}
        due = [
            s
            for s in self.config.sources
            if s.enabled and self.is_due(s, ignore_interval=ignore_interval, stored=stored)
        ]
        del stored
        slots = asyncio.Semaphore(MAX_POLLS_AT_ONCE)

        async def bounded(source: Source) -> PollReport:
            async with slots:
                return await self._poll_safely(source, ignore_interval, started)

        return list(await asyncio.gather(*(bounded(source) for source in due)))

    async def _poll_safely(
        self, source: Source, ignore_interval: bool, started: datetime
    ) -> PollReport:
        """One source's bug must not stop the others: log it and count it as a failure.
        With `ignore_interval` (`run --once`), a source another process fetched since this
        cycle `started` is left to it."""
        try:
            with log_context(source=source.name):
                return await self.poll(
                    source,
                    ignore_interval=ignore_interval,
                    unpolled_since=started if ignore_interval else None,
                )
        except Exception as exc:
            log.exception("%s: poll failed unexpectedly", source.name)
            return self._failed(source, self.state_of(source), f"internal error: {exc!r}")

    async def poll(
        self,
        source: Source,
        *,
        ignore_interval: bool = False,
        unpolled_since: datetime | None = None,
    ) -> PollReport:
        """Fetch one source, record new articles, and queue a delivery per match and target.

        The poll holds the source's lease (`PollStore.claim_poll`) throughout: processes
        sharing the database poll each due source once; a poll whose lease passed to another
        meanwhile is not saved (LeaseLost), that one's result stands."""
        try:
            claimed = await asyncio.to_thread(
                self.store.claim_poll, source.name, source.url, self.clock(),
                due_only=not ignore_interval, unpolled_since=unpolled_since,
            )  # fmt: skip
        except StoreError as exc:
            return self._not_saved(source, exc)
        if not claimed:
            return PollReport(source.name, True, detail="polled by another instance")
        try:
            report = await self._poll(source)
        except LeaseLost as exc:
            log.warning("%s", exc)
            return PollReport(source.name, False, detail="lease lost")
        except StoreError as exc:
            return self._not_saved(source, exc)
        finally:
            with contextlib.suppress(StoreError):
                await asyncio.to_thread(self.store.release_poll, source.name)
        self.unsaved.pop(source.name, None)
        self.store_failures = 0
        return report

    def _not_saved(self, source: Source, error: StoreError) -> PollReport:
        """The store refused the poll (disk full, read-only): back off as after a failed
        fetch, in memory if the store refuses that too, rather than fetch again at once."""
        self.store_failures += 1
        self.store_error = error
        now = self.clock()
        try:
            current = self.state_of(source)
        except StoreError:  # a database server that is down cannot be read either
            current = self._last_read.get(source.name) or SourceState(source.name, source.url)
        state, delay = self._backed_off(source, current, f"not saved: {error}", now)
        log.error("%s: poll not saved (%s); retry in %s", source.name, error, delay)
        self.unsaved[source.name] = state
        with contextlib.suppress(StoreError):
            self.store.save_state(state)
        return PollReport(source.name, False, detail=str(error))

    async def _poll(self, source: Source) -> PollReport:
        # The store's calls of a poll run in worker threads, off the event loop: a database
        # round trip must not hold up the other polls' fetches.
        state = await asyncio.to_thread(self.state_of, source)
        if state.disabled:
            return PollReport(source.name, False, detail=state.disabled)
        try:
            response = await self.collector.fetcher.fetch(
                state.fetch_url or source.url,
                etag=state.etag,
                last_modified=state.last_modified,
                # A stored fetch URL came from the network (an advertised feed, a 301), not
                # from the config: checked as a discovered link is, on every poll.
                discovered_on=source.url if state.fetch_url else None,
            )
        except MonitorError as exc:
            return self._failed(source, state, str(exc))
        if response.status == 200:
            return await self._read(source, state, response)
        if response.status == 304:
            return await asyncio.to_thread(self._not_modified, source, state, response)
        if response.status in (429, 503):
            wait = retry_after(response.headers.get("retry-after"), self.clock())
            return self._failed(source, state, f"HTTP {response.status}", wait=wait)
        if response.status == 410:
            return self._gone(source, state)
        return self._failed(source, state, f"HTTP {response.status}")

    async def take_push(self, source: Source, response: FetchResponse) -> PollReport:
        """A document a WebSub hub pushed, read as a poll's 200 response is (identity,
        backfill, matching, stories, outbox): an item pushed and later polled alerts once."""
        with log_context(source=source.name):
            try:
                report = await self._read(source, self.state_of(source), response, pushed=True)
            except StoreError as exc:
                return self._not_saved(source, exc)
        self.unsaved.pop(source.name, None)
        return report

    async def _read(
        self, source: Source, state: SourceState, response: FetchResponse, pushed: bool = False
    ) -> PollReport:
        if self.on_fetched is not None and not pushed:  # WebSub discovery, before parsing
            self.on_fetched(source, response)
        try:
            reading = await self.collector.collect(
                source,
                response,
                self.store.known_ids,
                known_links=lambda ids: self.store.known_links(ids, self.clock()),
                may_alert=self._may_alert(state),
            )
        except MonitorError as exc:  # FeedError among them
            if pushed:
                log.warning("%s: pushed document not read: %s", source.name, exc)
                return PollReport(source.name, False, detail=str(exc))
            return self._failed(source, state, str(exc))
        now = self.clock()
        known = await asyncio.to_thread(self.store.known_ids, [a.id for a in reading.articles])
        intake = triage(
            reading.articles,
            known=known,
            first_fetch=state.never_fetched,
            now=now,
            backfill=self.config.settings.backfill,
        )
        alerting = [item.article for item in intake if item.alert]
        found = await self._find(alerting, source, [item.article for item in intake], now)
        if intake and self.on_unpushed is not None and not pushed:
            self.on_unpushed(source, [item.article for item in intake])
        async with self._recording:
            if not found:
                return await self._record(source, state, response, reading, intake, found, now)
            # Across processes sharing the database too: grouping, then the save, one at a time.
            grouping = self.store.story_lock()
            await asyncio.to_thread(grouping.__enter__)
            try:
                return await self._record(source, state, response, reading, intake, found, now)
            finally:
                await asyncio.to_thread(grouping.__exit__, None, None, None)

    async def _record(
        self,
        source: Source,
        state: SourceState,
        response: FetchResponse,
        reading: Reading,
        intake: Sequence[Intake],
        found: Sequence[Found],
        now: datetime,
    ) -> PollReport:
        """Group the poll's matches into stories and save it all (in a worker thread)."""
        grouped = self._group(found, source, now)
        fetch_url = reading.feed_url or state.fetch_url
        if response.moved_permanently and response.url != (state.fetch_url or source.url):
            log.warning(
                "%s: moved permanently to %s; fetching from there (update the config)",
                source.name, response.url,
            )  # fmt: skip
            fetch_url = reading.feed_url or response.url
        new_state = replace(
            self._succeeded(source, state, reading.response, reading.hints, "ok"),
            fetch_url=fetch_url,
            items_seen=state.items_seen + len(intake),
        )
        await asyncio.to_thread(
            self.store.save_poll,
            new_state,
            [i.article for i in intake],
            grouped.matches,
            grouped.deliveries,
            now,
            settled_links=reading.settled_links,
            follow_ups=grouped.follow_ups,
        )
        matched = len(grouped.matches)
        if intake:
            log.info("%s: %d new, %d matched", source.name, len(intake), matched)
        return PollReport(source.name, True, len(intake), matched)

    def _may_alert(self, state: SourceState) -> Callable[[Article], bool]:
        """Whether a new item of this poll could alert (see `intake.may_alert`)."""
        return functools.partial(
            may_alert,
            first_fetch=state.never_fetched,
            now=self.clock(),
            backfill=self.config.settings.backfill,
        )

    def _not_modified(
        self, source: Source, state: SourceState, response: FetchResponse
    ) -> PollReport:
        new_state = self._succeeded(source, state, response, state.hints, "not modified")
        self.store.save_state(new_state)
        return PollReport(source.name, True, detail="not modified")

    def _succeeded(
        self,
        source: Source,
        state: SourceState,
        response: FetchResponse,
        hints: FeedHints,
        result: str,
    ) -> SourceState:
        now = self.clock()
        interval = (
            fallback_interval(source.interval) if self.pushed(source.name) else source.interval
        )
        scheduled, not_before = next_poll(now, interval, response.headers, hints)
        return replace(
            state,
            etag=response.etag or state.etag,
            last_modified=response.last_modified or state.last_modified,
            last_fetch_at=now,
            last_ok_at=now,
            last_result=result,
            error_count=0,
            next_fetch_at=scheduled,
            not_before=not_before,
            failing_since=None,
            failure_reported=False,
            hints=hints,
        )

    def _failed(
        self, source: Source, state: SourceState, error: str, wait: timedelta | None = None
    ) -> PollReport:
        """Record a failed fetch: back off (or wait as the publisher asked) and maybe report."""
        now = self.clock()
        new_state, delay = self._backed_off(source, state, error, now, wait)
        log.warning("%s: fetch failed (%s); retry in %s", source.name, error, delay)
        self._save_with_report(source, new_state, now)
        return PollReport(source.name, False, detail=error)

    @staticmethod
    def _backed_off(
        source: Source,
        state: SourceState,
        error: str,
        now: datetime,
        wait: timedelta | None = None,
    ) -> tuple[SourceState, timedelta]:
        """The state after one more failure, and the delay before the next fetch: the
        backoff, or `wait` as the publisher asked."""
        errors = state.error_count + 1
        delay = wait if wait is not None else fetch_retry_delay(errors, source.interval)
        return replace(
            state,
            last_fetch_at=now,
            last_result=error,
            error_count=errors,
            next_fetch_at=now + delay,
            not_before=now + wait if wait else state.not_before,
            failing_since=state.failing_since or now,
        ), delay

    def _gone(self, source: Source, state: SourceState) -> PollReport:
        now = self.clock()
        log.warning("%s: 410 Gone; the source is disabled until its URL changes", source.name)
        new_state = replace(
            state,
            last_fetch_at=now,
            last_result="410 Gone",
            disabled="410 Gone: the publisher removed this feed",
            failing_since=state.failing_since or now,
        )
        self._save_with_report(source, new_state, now, at_once=True)
        return PollReport(source.name, False, detail="410 Gone")

    def _save_with_report(
        self, source: Source, state: SourceState, now: datetime, *, at_once: bool = False
    ) -> None:
        """Save a failed source's state; once it has failed long enough, tell `failures_to`."""
        settings = self.config.settings
        failing_for = now - (state.failing_since or now)
        due = at_once or failing_for >= settings.failure_threshold
        if not settings.failures_to or state.failure_reported or not due:
            self.store.save_state(state)
            return
        log.warning("%s: failing since %s: %s", source.name, state.failing_since, state.last_result)
        target = self._target(settings.failures_to)
        message = render_source_failure(
            source.name, source.url, state.last_result or "", failing_for, target.markup
        )
        key = f"source:{source.name}:{format_time(state.failing_since)}"
        delivery = queued(key, "source-health", target, message, now)
        self.store.save_poll(replace(state, failure_reported=True), [], [], [delivery], now)

    async def _find(
        self, articles: Sequence[Article], source: Source, new: Sequence[Article], now: datetime
    ) -> list[Found]:
        """Every (article, rule) match with the article's fingerprint, which leaves out the
        text the source repeats under other headlines (its `new` and recent articles)."""
        matched = await asyncio.to_thread(self._match, articles)
        if not matched:
            return []
        since = now - self.config.settings.story_window
        recent = self.store.recent_articles(source.name, since, BOILERPLATE_CONTEXT)
        return await asyncio.to_thread(self._fingerprint, matched, [*new, *recent])

    def _match(
        self, articles: Sequence[Article]
    ) -> list[tuple[Article, list[tuple[Rule, Explanation]]]]:
        """The articles some rule matches, with those rules (CPU-bound)."""
        found = ((article, self.matcher.match(article)) for article in articles)
        return [(article, matches) for article, matches in found if matches]

    @staticmethod
    def _fingerprint(
        matched: Sequence[tuple[Article, list[tuple[Rule, Explanation]]]],
        context: Sequence[Article],
    ) -> list[Found]:
        """Each match with its article's fingerprint, without the context's boilerplate
        (CPU-bound)."""
        repeated = boilerplate(context)
        found: list[Found] = []
        for article, matches in matched:
            story_print = fingerprint(article, repeated)
            found.extend(Found(article, rule, why, story_print) for rule, why in matches)
        return found

    def _group(self, found: Sequence[Found], source: Source, now: datetime) -> Grouped:
        """Attach each match to a story of its rule seen within the window, or start one.

        Only a new story alerts; a later copy (syndicated, republished, truncated) is
        recorded under the story: digests list the sources that carried it, and for
        immediate rules it schedules (or puts off) the story's one "also reported by"
        follow-up per target, queued by the outbox once the story has been quiet.
        """
        since = now - self.config.settings.story_window
        stories: dict[str, list[tuple[str, Fingerprint]]] = {}
        grouped = Grouped([], [], [])
        for item in found:
            rule, article = item.rule, item.article
            if rule.name not in stories:
                stored = self.store.story_fingerprints(rule.name, since)
                stories[rule.name] = [(key, Fingerprint.from_bytes(raw)) for key, raw in stored]
            story = find_story(item.fingerprint, stories[rule.name])
            stories[rule.name].append((story or article.id, item.fingerprint))
            grouped.matches.append(
                MatchRecord(article.id, rule.name, item.explanation.terms, now,
                            story or article.id, item.fingerprint.to_bytes(), source.name,
                            item.explanation.summary())
            )  # fmt: skip
            if story is not None:
                log.info("%s: %r is another copy of a story already alerted for %s",
                         source.name, article.title, rule.name)  # fmt: skip
                if rule.digest is None and rule.follow_up:
                    due = now + FOLLOW_UP_QUIET
                    grouped.follow_ups.extend(
                        FollowUp(rule.name, story, target, due) for target in rule.notify
                    )
            elif rule.digest is None:
                grouped.deliveries.extend(
                    self._alerts(article, rule, item.explanation, source, now)
                )
        return grouped

    def _alerts(
        self, article: Article, rule: Rule, why: Explanation, source: Source, now: datetime
    ) -> list[Delivery]:
        """One message per target, each in its target's markup."""
        deliveries = []
        for name in rule.notify:
            target = self._target(name)
            message = self._message(article, rule, why, source, target)
            deliveries.append(queued(article.id, rule.name, target, message, now))
        return deliveries

    def _target(self, name: str) -> Target:
        """The configured target (one unknown to the config is written for as plain text)."""
        return self.config.targets.get(name) or Target(name, "")

    def _message(
        self, article: Article, rule: Rule, why: Explanation, source: Source, target: Target
    ) -> Message:
        """The alert through its custom templates, or through the defaults if those fail."""
        try:
            return render_alert(article, rule, why, source.name, target)
        except TemplateError as exc:
            log.error("%s -> %s: template failed (%s); sent with the default one",
                      rule.name, target.name, exc)  # fmt: skip
            plain_rule = replace(rule, templates=Templates())
            plain_target = replace(target, templates=Templates())
            return render_alert(article, plain_rule, why, source.name, plain_target)

    async def deliver(self, *, due_only: bool = True) -> DeliveryReport:
        return await self.outbox.deliver(due_only=due_only)

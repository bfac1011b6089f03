"""The running daemon's jobs on apscheduler: each source's next poll (with jitter, so a
restart is no burst), the outbox pass, digests, the daily prune and the cluster heartbeat;
work in flight that a shutdown waits for."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from monitor.config.schema import Config, Rule, Source
from monitor.errors import StoreError, StoreUnavailable
from monitor.ports import StoreBackend, utc_now
from monitor.service import logs
from monitor.service.poll import DeliveryReport, PollReport, Service
from monitor.web.metrics import Metrics
from monitor.web.server import WebServer

__all__ = [
    "HEARTBEAT_EVERY",
    "OUTBOX_EVERY",
    "OUTBOX_JOB",
    "SHUTDOWN_GRACE",
    "Runner",
    "beat_until",
    "catch_up_digests",
    "heartbeat",
    "prune",
    "prune_off_loop",
]

log = logging.getLogger(__name__)
OUTBOX_EVERY = timedelta(seconds=30)
OUTBOX_JOB = "outbox"
MAX_JITTER = timedelta(minutes=2)
STARTUP_SPREAD = timedelta(seconds=3)
SHUTDOWN_GRACE = 30.0
# Polls in a row, across sources, that the store refused (disk full, read-only) before the
# daemon stops: a store that stays unwritable must not keep publishers fetched for nothing.
STORE_FAILURES_TO_STOP = 5
# How often an instance renews its leases and claims (they last postgres_cluster.LEASE, 45 s).
HEARTBEAT_EVERY = timedelta(seconds=10)


@dataclass
class Runner:
    """The scheduled work of one `monitor run` process over its Service."""

    service: Service
    scheduler: AsyncIOScheduler
    in_flight: set[asyncio.Task[object]]
    stop: asyncio.Event
    fatal: StoreError | None = None
    metrics: Metrics | None = None
    """Set with [web]: polls are counted there."""
    web: WebServer | None = None
    """Set with [web]; a reload swaps `web.context.config` for the new config."""

    def track(self, work: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[object]]:
        """Run `work` as a task that a shutdown waits for instead of cancelling."""

        async def job() -> object:
            task: asyncio.Task[object] = asyncio.ensure_future(work())
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
            await asyncio.wait({task})  # unlike awaiting it, never raises its cancellation
            return None if task.cancelled() else task.result()

        return job

    async def finish_in_flight(self, grace: float) -> None:
        """Let work in flight finish; cancel what is still running after `grace` seconds
        (an unsaved poll is made again at the next start; unsent messages stay queued)."""
        if self.in_flight:
            _, late = await asyncio.wait(set(self.in_flight), timeout=grace)
            if late:
                log.warning("stopping: %d jobs still running after %.0f s are cancelled",
                            len(late), grace)  # fmt: skip
                for task in late:
                    task.cancel()
                await asyncio.wait(late)
        await asyncio.sleep(0)  # let the scheduler's job wrappers see their work finish

    def schedule_source(
        self, source: Source, due: datetime | None = None, start_spread: timedelta | None = None
    ) -> None:
        """Next poll at the store's due time (or `due`) plus jitter, so restarts cause no
        burst; one due already starts within `start_spread` (3 s by default)."""
        due = due or self.service.next_due(source)
        if due is None:
            log.info("%s: disabled, not scheduled", source.name)
            return
        now = utc_now()
        early = start_spread or STARTUP_SPREAD
        spread = min(source.interval / 10, MAX_JITTER) if due > now else early
        when = max(due, now) + timedelta(seconds=random.uniform(0, spread.total_seconds()))
        self.scheduler.add_job(
            self.track(lambda: self.poll(source)),
            DateTrigger(run_date=when),
            id=f"source:{source.name}",
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def poll(self, source: Source) -> None:
        with logs.log_context(source=source.name):
            await self._poll(source)

    async def _poll(self, source: Source) -> None:
        try:
            report = await self.service.poll(source)
            self.observe(report)
            if report.alerts:
                self.deliver_soon()
        except StoreError as exc:
            log.error("%s: poll failed: %s", source.name, exc)
        except Exception:
            log.exception("%s: poll failed unexpectedly", source.name)
        failures = self.service.store_failures
        error = self.service.store_error
        if failures >= STORE_FAILURES_TO_STOP and not isinstance(error, StoreUnavailable):
            self.stop_for(
                StoreError(f"stopped: the last {failures} polls could not be saved ({error})")
            )
            return
        current = next((s for s in self.service.config.sources if s.name == source.name), None)
        if current is None or not current.enabled:
            return  # a reload removed or disabled it while it was polled: its state is kept
        try:
            self.schedule_source(current)
        except StoreError as exc:  # its due time cannot even be read
            self.stop_for(StoreError(f"stopped: {exc}"))

    def observe(self, report: PollReport) -> None:
        if self.metrics is not None:
            self.metrics.record_poll(report.new, report.alerts)

    def stop_for(self, error: StoreError) -> None:
        """Stop the daemon, which then exits 2 with `error` (one line)."""
        self.fatal = error
        self.stop.set()

    async def digest(self, rule: Rule) -> None:
        try:
            if self.service.outbox.queue_digest(rule):
                self.deliver_soon()
        except StoreError as exc:
            log.error("%s: digest not queued: %s", rule.name, exc)
        except Exception:
            log.exception("%s: digest failed unexpectedly", rule.name)

    def deliver_soon(self) -> None:
        """Run the outbox job now: one job, one pass at a time, so nothing is sent twice
        and a slow target never holds up a poll."""
        self.scheduler.modify_job(OUTBOX_JOB, next_run_time=utc_now())

    async def deliver(self) -> DeliveryReport:
        try:
            return await self.service.deliver()
        except StoreError as exc:
            log.error("outbox pass failed: %s", exc)
            return DeliveryReport()
        except Exception:
            log.exception("outbox pass failed unexpectedly")
            return DeliveryReport()

    def add_digest_jobs(self, digests: list[tuple[Rule, CronTrigger]]) -> None:
        for rule, trigger in digests:
            self.scheduler.add_job(
                self.track(functools.partial(self.digest, rule)),
                trigger,
                id=f"digest:{rule.name}",
                misfire_grace_time=None,
                coalesce=True,
                replace_existing=True,
            )


async def heartbeat(store: StoreBackend) -> None:
    """Tell the cluster this instance lives and renew its leases (no-op on SQLite); an
    outage is logged and the next beat tries again."""
    try:
        await asyncio.to_thread(store.heartbeat, utc_now())
    except StoreError as exc:
        log.error("heartbeat failed: %s", exc)


async def beat_until(store: StoreBackend, done: asyncio.Event) -> None:
    while not done.is_set():
        await heartbeat(store)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), HEARTBEAT_EVERY.total_seconds())


def prune(config: Config, store: StoreBackend) -> None:
    """Keep article text (for `match --since`) and sent messages' bodies for `retention`;
    ids are kept for good."""
    before = utc_now() - config.settings.retention
    pruned = store.prune_text(before)
    if pruned:
        log.info("pruned the text of %d articles older than %s", pruned, config.settings.retention)
    bodies = store.prune_sent_bodies(before)
    if bodies:
        log.info("pruned the bodies of %d sent messages older than %s", bodies,
                 config.settings.retention)  # fmt: skip


async def prune_off_loop(config: Config, store: StoreBackend) -> None:
    """The daily prune in a worker thread: a big UPDATE must not hold the event loop."""
    try:
        await asyncio.to_thread(prune, config, store)
    except StoreError as exc:
        log.error("pruning failed: %s", exc)


def catch_up_digests(service: Service, digests: list[tuple[Rule, CronTrigger]]) -> None:
    """Send now a digest whose time came while we were not running."""
    now = utc_now()
    for rule, trigger in digests:
        start = service.outbox.start_digest(rule)
        due = trigger.get_next_fire_time(None, start)
        if due is not None and due <= now:
            log.info("%s: digest due since %s; sending it now", rule.name, due)
            service.outbox.queue_digest(rule)

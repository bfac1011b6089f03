"""The composition root: builds the adapters, runs polls and deliveries on a schedule."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.adapters.fetch import HttpFetcher
from monitor.adapters.notify import AppriseNotifier
from monitor.adapters.store import select
from monitor.config.schema import Config, Rule, Source, default_user_agent
from monitor.errors import ConfigError, StoreError, StoreUnavailable
from monitor.ports import Clock, Fetcher, Notifier, Store, StoreBackend, utc_now
from monitor.service.collect import Collector
from monitor.service.outbox import Outbox
from monitor.service.poll import DeliveryReport, Service

__all__ = [
    "build_service",
    "copy_store",
    "new_fetcher",
    "notifier",
    "open_store",
    "run",
    "validate",
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


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


def copy_store(source: str, destination: str) -> dict[str, int]:
    """`monitor store copy`: every row FROM one database TO a new one (rows per table)."""
    from monitor.adapters.store.copy import copy_store as copy  # psycopg only when asked

    return copy(source, destination)


def open_store(config: Config) -> StoreBackend:
    """The store `database` names: a SQLite file, or a postgresql:// URL."""
    return select.open_store(config.settings.database)


def _open_store_for_run(config: Config) -> StoreBackend:
    """The store of a process that polls and delivers, checked for damage first."""
    store = select.open_store(config.settings.database, exclusive=True)
    try:
        store.check_integrity()
    except BaseException:
        store.close()
        raise
    return store


def build_service(
    config: Config, fetcher: Fetcher, store: Store, notifier: Notifier, clock: Clock = utc_now
) -> Service:
    """The Service over these adapters: its Outbox and Collector are built here."""
    return Service(
        config, store, Outbox(config, store, notifier, clock), Collector(fetcher, clock), clock
    )


def _service(config: Config, store: StoreBackend, fetcher: HttpFetcher) -> Service:
    return build_service(config, fetcher, store, notifier(config))


def run(config: Config, *, once: bool) -> int:
    """`monitor run`: one full cycle with `once`, else poll until SIGTERM or SIGINT."""
    configure_logging()
    return asyncio.run(_run_once(config) if once else _run_forever(config))


async def _heartbeat(store: StoreBackend) -> None:
    """Tell the cluster this instance lives and renew its leases (no-op on SQLite); an
    outage is logged and the next beat tries again."""
    try:
        await asyncio.to_thread(store.heartbeat, utc_now())
    except StoreError as exc:
        log.error("heartbeat failed: %s", exc)


async def _beat_until(store: StoreBackend, done: asyncio.Event) -> None:
    while not done.is_set():
        await _heartbeat(store)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), HEARTBEAT_EVERY.total_seconds())


async def _run_once(config: Config) -> int:
    store = _open_store_for_run(config)
    fetcher = HttpFetcher(config.settings.user_agent, host_turns=store.host_turns())
    done = asyncio.Event()
    beating = asyncio.ensure_future(_beat_until(store, done))
    try:
        service = _service(config, store, fetcher)
        digests = _digest_triggers(config)
        _catch_up_digests(service, digests)
        reports = await service.poll_all(ignore_interval=True)
        if service.store_error is not None:
            raise service.store_error
        delivered = await service.deliver(due_only=False)
        _prune(config, store)
    finally:
        done.set()
        await beating
        await fetcher.aclose()
        store.close()
    failed_sources = sum(not r.ok for r in reports)
    log.info(
        "cycle done: %d sources (%d failed), %d new articles, %d matches, %d sent, %d failed",
        len(reports),
        failed_sources,
        sum(r.new for r in reports),
        sum(r.alerts for r in reports),
        delivered.sent,
        delivered.failed,
    )
    return 1 if delivered.failed else 0


@dataclass
class _Daemon:
    service: Service
    scheduler: AsyncIOScheduler
    in_flight: set[asyncio.Task[object]]
    stop: asyncio.Event
    fatal: StoreError | None = None

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

    def schedule_source(self, source: Source) -> None:
        """Next poll at the store's due time plus jitter, so restarts cause no burst."""
        due = self.service.next_due(source)
        if due is None:
            log.info("%s: disabled, not scheduled", source.name)
            return
        now = utc_now()
        spread = min(source.interval / 10, MAX_JITTER) if due > now else STARTUP_SPREAD
        when = max(due, now) + timedelta(seconds=random.uniform(0, spread.total_seconds()))
        self.scheduler.add_job(
            self.track(lambda: self.poll(source)),
            DateTrigger(run_date=when),
            id=f"source:{source.name}",
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def poll(self, source: Source) -> None:
        try:
            report = await self.service.poll(source)
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
        try:
            self.schedule_source(source)
        except StoreError as exc:  # its due time cannot even be read
            self.stop_for(StoreError(f"stopped: {exc}"))

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


async def _run_forever(config: Config) -> int:
    store = _open_store_for_run(config)
    fetcher = HttpFetcher(config.settings.user_agent, host_turns=store.host_turns())
    scheduler = AsyncIOScheduler(timezone=UTC)
    stop = asyncio.Event()
    daemon = _Daemon(_service(config, store, fetcher), scheduler, set(), stop)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(
        signal.SIGHUP, log.warning, "SIGHUP ignored: reload is not supported yet"
    )
    sources = [s for s in config.sources if s.enabled]
    for source in sources:
        daemon.schedule_source(source)
    scheduler.add_job(
        functools.partial(_heartbeat, store),
        IntervalTrigger(seconds=HEARTBEAT_EVERY.total_seconds()),
        id="heartbeat",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        daemon.track(functools.partial(_prune_off_loop, config, store)),
        IntervalTrigger(days=1),
        id="prune",
        next_run_time=utc_now(),
    )
    digests = _digest_triggers(config)
    _catch_up_digests(daemon.service, digests)
    for rule, trigger in digests:
        scheduler.add_job(
            daemon.track(functools.partial(daemon.digest, rule)),
            trigger,
            id=f"digest:{rule.name}",
            misfire_grace_time=None,
            coalesce=True,
        )
    scheduler.add_job(
        daemon.track(daemon.deliver),
        IntervalTrigger(seconds=OUTBOX_EVERY.total_seconds()),
        id=OUTBOX_JOB,
        next_run_time=utc_now(),
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    log.info(
        "watching %d sources with %d rules; SIGTERM or Ctrl-C stops",
        len(sources),
        len(config.rules),
    )
    try:
        await stop.wait()
    finally:
        log.info("stopping: finishing work in flight")
        scheduler.pause()
        await daemon.finish_in_flight(SHUTDOWN_GRACE)
        daemon.service.outbox.record_sent()  # a last try, or the next start sends them again
        scheduler.shutdown(wait=False)
        await fetcher.aclose()
        store.close()
    if daemon.fatal is not None:
        raise daemon.fatal
    return 0


def _prune(config: Config, store: StoreBackend) -> None:
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


async def _prune_off_loop(config: Config, store: StoreBackend) -> None:
    """The daily prune in a worker thread: a big UPDATE must not hold the event loop."""
    try:
        await asyncio.to_thread(_prune, config, store)
    except StoreError as exc:
        log.error("pruning failed: %s", exc)


def _digest_triggers(config: Config) -> list[tuple[Rule, CronTrigger]]:
    """A cron trigger per digest rule; a bad schedule is a config error naming the rule."""
    triggers = []
    for rule in config.rules:
        if rule.digest is None:
            continue
        try:
            trigger = CronTrigger.from_crontab(rule.digest.schedule, timezone=rule.digest.zone)
        except ValueError as exc:
            raise ConfigError(
                f"schedule {rule.digest.schedule!r}: {exc}", file=rule.file, key="rules.schedule"
            ) from None
        triggers.append((rule, trigger))
    return triggers


def _catch_up_digests(service: Service, digests: list[tuple[Rule, CronTrigger]]) -> None:
    """Send now a digest whose time came while we were not running."""
    now = utc_now()
    for rule, trigger in digests:
        start = service.outbox.start_digest(rule)
        due = trigger.get_next_fire_time(None, start)
        if due is not None and due <= now:
            log.info("%s: digest due since %s; sending it now", rule.name, due)
            service.outbox.queue_digest(rule)


def validate(config: Config) -> None:
    """What `check` refuses and `run` must refuse before it starts: a digest schedule cron
    cannot read, a target URL Apprise cannot read (a ConfigError naming it, not its URL)."""
    _digest_triggers(config)
    problems = _target_problems(config)
    if problems:
        name, problem = next(iter(problems.items()))
        raise ConfigError(problem, file=config.file, key=f"targets.{name}")


def _target_problems(config: Config) -> dict[str, str]:
    return notifier(config).problems()


def notifier(config: Config) -> AppriseNotifier:
    """The notifier over the configured targets (also their directory, for `check`)."""
    return AppriseNotifier({n: t.url for n, t in config.targets.items()})


def new_fetcher() -> HttpFetcher:
    """A fetcher for the CLI's `preview` and `match` of URLs (the caller closes it)."""
    return HttpFetcher(default_user_agent())

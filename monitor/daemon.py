"""The composition root: builds the adapters, runs polls and deliveries on a schedule."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import random
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.adapters.fetch import HttpFetcher
from monitor.adapters.hub import HttpHubClient
from monitor.adapters.notify import AppriseNotifier
from monitor.adapters.store.sqlite import SqliteStore
from monitor.adapters.watch import watch_files
from monitor.config.changes import ConfigChanges, ReloadStatus, diff_configs
from monitor.config.files import load_config
from monitor.config.schema import Config, Rule, Source, default_user_agent
from monitor.errors import ConfigError, MonitorError, StoreError
from monitor.matching.intake import Matcher
from monitor.ports import Clock, Fetcher, Notifier, Store, utc_now
from monitor.service import logs
from monitor.service.collect import Collector
from monitor.service.outbox import Outbox
from monitor.service.poll import DeliveryReport, PollReport, Service
from monitor.service.websub import Subscriber
from monitor.web.app import WebContext
from monitor.web.metrics import MeasuredFetcher, MeasuredNotifier, Metrics
from monitor.web.server import WebServer

__all__ = [
    "LogOptions",
    "ReloadStatus",
    "build_service",
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


# New sources found by a reload that are due at once start about one a second, at most
# spread over this long, so a reload that adds 500 feeds is no burst.
NEW_SOURCE_GAP = timedelta(seconds=1)
MAX_NEW_SPREAD = timedelta(minutes=5)
WATCH_DEBOUNCE_MS = 1600


@dataclass(frozen=True, slots=True)
class LogOptions:
    """`--log-format` / `--log-level` from the command line (None: the config's, or text/INFO)."""

    log_format: str | None = None
    log_level: str | None = None


def configure_logging(config: Config | None = None, options: LogOptions = LogOptions()) -> None:
    """Logs as the command line, else the config, asks; target URLs are masked."""
    log_format = options.log_format or (config.settings.log_format if config else "text")
    logs.configure(log_format, options.log_level or logging.INFO,
                   instance=logs.default_instance())  # fmt: skip
    if config is not None:
        secrets = logs.secrets_of_urls(t.url for t in config.targets.values())
        if "://" in config.settings.database:  # postgresql://user:password@host/db
            secrets += logs.secrets_of_urls([config.settings.database], paths=False)
        logs.set_secrets(secrets)


def open_store(config: Config) -> SqliteStore:
    return SqliteStore(config.settings.database)


def _open_store_for_run(config: Config) -> SqliteStore:
    """The store of the one process that polls and delivers, checked for damage first."""
    store = SqliteStore(config.settings.database, exclusive=True)
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


def _service(
    config: Config, store: SqliteStore, fetcher: HttpFetcher, metrics: Metrics | None = None
) -> Service:
    if metrics is None:
        return build_service(config, fetcher, store, notifier(config))
    measured = MeasuredNotifier(notifier(config), metrics)
    return build_service(config, MeasuredFetcher(fetcher, metrics), store, measured)


def run(
    config: Config,
    *,
    once: bool,
    path: str | None = None,
    log_options: LogOptions = LogOptions(),
    reloads: ReloadStatus | None = None,
) -> int:
    """`monitor run`: one full cycle with `once`, else poll until SIGTERM or SIGINT;
    SIGHUP reloads `path` (the config file) when given. `reloads` is the reload outcome
    the daemon keeps up to date (give one to watch it, e.g. for metrics)."""
    configure_logging(config, log_options)
    if once:
        return asyncio.run(_run_once(config))
    return asyncio.run(_run_forever(config, path, log_options, reloads or ReloadStatus()))


async def _run_once(config: Config) -> int:
    store = _open_store_for_run(config)
    fetcher = HttpFetcher(config.settings.user_agent)
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
    path: str | None = None  # the config file a reload reads
    reloads: ReloadStatus = field(default_factory=ReloadStatus)
    log_options: LogOptions = LogOptions()
    reloading: bool = False
    reload_again: bool = False
    watcher: asyncio.Task[None] | None = None
    metrics: Metrics | None = None
    """Set with [web]; a config reload reports to `metrics.record_reload(ok, at)`."""
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
        if failures >= STORE_FAILURES_TO_STOP:
            error = self.service.store_error
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

    def request_reload(self) -> None:
        """SIGHUP (or a watched file changed): reload; one at a time, the last request wins."""
        if self.path is None:
            log.warning("SIGHUP ignored: no config file to reload")
            return
        if self.reloading:
            self.reload_again = True
            return
        self.reloading = True
        task = asyncio.ensure_future(self.track(self._reload_until_settled)())
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _reload_until_settled(self) -> None:
        try:
            while True:
                self.reload_again = False
                await self.reload()
                if not self.reload_again:
                    return
        finally:
            self.reloading = False

    async def reload(self) -> None:
        """Read and check everything as `monitor check` does, off the event loop (rules
        compile there too); on any error keep the running config; else swap at once."""
        assert self.path is not None
        old = self.service.config
        at = utc_now()
        try:
            new, matcher, new_notifier = await asyncio.to_thread(_load_for_reload, self.path, old)
        except ConfigError as exc:
            log.error("reload failed, the running config is kept: %s", exc,
                      extra={"file": exc.file, "key": exc.key, "line": exc.line})  # fmt: skip
            self.reloads.record(False, at, error=str(exc))
            return
        except (MonitorError, OSError) as exc:
            log.error("reload failed, the running config is kept: %s", exc)
            self.reloads.record(False, at, error=str(exc))
            return
        changes = diff_configs(old, new)
        measured = (
            new_notifier if self.metrics is None else MeasuredNotifier(new_notifier, self.metrics)
        )
        self.service.reconfigure(new, matcher, measured)
        if self.web is not None:
            self.web.context.config, self.web.context.directory = new, new_notifier
            if self.web.context.subscriber is not None:  # unsubscribes removed sources
                self.web.context.subscriber.config = new
        self._reschedule(old, new, changes)
        if new.settings.log_format != old.settings.log_format or changes.targets:
            configure_logging(new, self.log_options)
        if new.settings.user_agent != old.settings.user_agent or new.web != old.web:
            log.warning("user_agent and [web] changes take effect at the next start")
        if new.settings.watch and not old.settings.watch:
            self.start_watching()
        elif old.settings.watch and not new.settings.watch:
            self.stop_watching()
        summary = changes.summary()
        log.info("config reloaded: %s", summary)
        self.reloads.record(True, at, summary)

    def _reschedule(self, old: Config, new: Config, changes: ConfigChanges) -> None:
        before = {s.name: s for s in old.sources}
        after = {s.name: s for s in new.sources}
        for name in (*changes.sources.removed, *changes.sources.changed):
            if self.scheduler.get_job(f"source:{name}") is not None:
                self.scheduler.remove_job(f"source:{name}")
        added = [after[n] for n in changes.sources.added if after[n].enabled]
        spread = min(MAX_NEW_SPREAD, max(STARTUP_SPREAD, NEW_SOURCE_GAP * len(added)))
        for source in added:
            self.schedule_source(source, start_spread=spread)
        for name in changes.sources.changed:
            source = after[name]
            if source.enabled:
                self.schedule_source(source, self._due_after_change(before[name], source))
        for job in self.scheduler.get_jobs():
            if job.id.startswith("digest:"):
                job.remove()
        digests = _digest_triggers(new)
        self._add_digest_jobs(digests)
        fresh = set(changes.rules.added) | set(changes.rules.changed)
        _catch_up_digests(self.service, [(r, t) for r, t in digests if r.name in fresh])

    def _due_after_change(self, old: Source, new: Source) -> datetime | None:
        """A changed interval counts from the last fetch (a shorter one takes effect now,
        not after the old interval); backoff and the publisher's floor still hold."""
        state = self.service.state_of(new)
        due = self.service.next_due(new)
        if due is None or old.url != new.url or old.interval == new.interval:
            return due
        if state.last_fetch_at is None or state.error_count:
            return due
        by_interval = state.last_fetch_at + new.interval
        return max([by_interval, *(t for t in (state.not_before,) if t is not None)])

    def _add_digest_jobs(self, digests: list[tuple[Rule, CronTrigger]]) -> None:
        for rule, trigger in digests:
            self.scheduler.add_job(
                self.track(functools.partial(self.digest, rule)),
                trigger,
                id=f"digest:{rule.name}",
                misfire_grace_time=None,
                coalesce=True,
                replace_existing=True,
            )

    def start_watching(self) -> None:
        if self.watcher is None and self.path is not None:
            self.watcher = asyncio.ensure_future(self._watch())

    def stop_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
            self.watcher = None

    async def _watch(self) -> None:
        """`watch = true`: a change to the config, a rules file or a sources file (after
        WATCH_DEBOUNCE_MS of quiet) reloads, as SIGHUP does."""
        assert self.path is not None
        config_file = str(Path(self.path).absolute())

        def globs() -> list[str]:
            settings = self.service.config.settings
            return [config_file, *settings.rules, *settings.source_files]

        await watch_files(globs, self.request_reload, WATCH_DEBOUNCE_MS)


def _load_for_reload(path: str, old: Config) -> tuple[Config, Matcher, AppriseNotifier]:
    """Everything a reload swaps in, read and checked off the event loop.

    The cyclic garbage collector is held off while it runs and the result is frozen
    (`gc.freeze`): thousands of new rule objects would otherwise set off full collections,
    each one holding the GIL, so the event loop, while the load runs in its thread, would
    stall for them (at 5,000 rules in benchmarks/bench_reload.py: 0.94 s; frozen, 0.09 s).
    The cost: cycles among what is frozen are never collected (the config holds none)."""
    gc.disable()
    try:
        config = load_config(path)
        validate(config)
        if config.settings.database != old.settings.database:
            raise ConfigError(
                "the database cannot change on reload (restart the daemon to move it)",
                file=path,
                key="monitor.database",
            )
        loaded = config, Matcher(config.rules), notifier(config)
        gc.freeze()
        return loaded
    finally:
        gc.enable()


async def _run_forever(
    config: Config,
    path: str | None = None,
    log_options: LogOptions = LogOptions(),
    reloads: ReloadStatus | None = None,
) -> int:
    store = _open_store_for_run(config)
    fetcher = HttpFetcher(config.settings.user_agent)
    scheduler = AsyncIOScheduler(timezone=UTC)
    stop = asyncio.Event()
    metrics = Metrics(config.targets) if config.web is not None else None
    daemon = _Daemon(_service(config, store, fetcher, metrics), scheduler, set(), stop)
    daemon.path, daemon.log_options = path, log_options
    daemon.reloads = reloads or daemon.reloads
    daemon.metrics = metrics
    if metrics is not None:
        daemon.reloads.on_reload(metrics.record_reload)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
    sources = [s for s in config.sources if s.enabled]
    for source in sources:
        daemon.schedule_source(source)
    scheduler.add_job(
        daemon.track(functools.partial(_prune_off_loop, config, store)),
        IntervalTrigger(days=1),
        id="prune",
        next_run_time=utc_now(),
    )
    digests = _digest_triggers(config)
    _catch_up_digests(daemon.service, digests)
    daemon._add_digest_jobs(digests)
    scheduler.add_job(
        daemon.track(daemon.deliver),
        IntervalTrigger(seconds=OUTBOX_EVERY.total_seconds()),
        id=OUTBOX_JOB,
        next_run_time=utc_now(),
        max_instances=1,
        coalesce=True,
    )
    try:  # before the scheduler: a port in use stops the start before any poll
        web = daemon.web = await _start_web(config, store, daemon)
    except BaseException:
        await fetcher.aclose()
        store.close()
        raise
    scheduler.start()
    if config.settings.watch:
        daemon.start_watching()
    log.info(
        "watching %d sources with %d rules; SIGHUP reloads, SIGTERM or Ctrl-C stops",
        len(sources),
        len(config.rules),
    )
    try:
        await stop.wait()
    finally:
        log.info("stopping: finishing work in flight")
        daemon.stop_watching()
        if web is not None:
            await web.stop()
        scheduler.pause()
        await daemon.finish_in_flight(SHUTDOWN_GRACE)
        daemon.service.outbox.record_sent()  # a last try, or the next start sends them again
        scheduler.shutdown(wait=False)
        await fetcher.aclose()
        store.close()
    if daemon.fatal is not None:
        raise daemon.fatal
    return 0


async def _start_web(config: Config, store: SqliteStore, daemon: _Daemon) -> WebServer | None:
    """The [web] server in this event loop: health, metrics, dashboard."""
    if config.web is None or daemon.metrics is None:
        return None
    daemon.metrics.record_reload(True, utc_now())
    user_agent = config.settings.user_agent
    context = WebContext(
        config=config,
        store=store,
        directory=notifier(config),
        metrics=daemon.metrics,
        scheduler_running=lambda: bool(daemon.scheduler.running),
        wake_outbox=daemon.deliver_soon,
        tester_fetcher=lambda: HttpFetcher(user_agent, concurrency=4, public_only=True),
        subscriber=_subscriber(config, store, daemon),
    )
    server = WebServer(context, config.web.host, config.web.port)
    await server.start()
    return server


def _subscriber(config: Config, store: SqliteStore, daemon: _Daemon) -> Subscriber | None:
    """WebSub with `[web] public_url`: upkeep each minute; a push with alerts wakes the outbox."""
    if config.web is None or not config.web.public_url:
        return None
    subscriber = Subscriber(
        config, store, HttpHubClient(config.settings.user_agent), daemon.service
    )

    def after_push(report: PollReport) -> None:
        daemon.observe(report)
        if report.alerts:
            daemon.deliver_soon()

    subscriber.after_push = after_push
    daemon.scheduler.add_job(daemon.track(subscriber.maintain), IntervalTrigger(minutes=1),
                             id="websub", max_instances=1, coalesce=True)  # fmt: skip
    return subscriber


def _prune(config: Config, store: SqliteStore) -> None:
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


async def _prune_off_loop(config: Config, store: SqliteStore) -> None:
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

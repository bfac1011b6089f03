"""The composition root: opens the store, builds the fetcher, notifier, Service, web server,
Runner and Reloader, and wires them (monitor/runtime runs the scheduled work)."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
from dataclasses import dataclass
from datetime import UTC

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.adapters.fetch import HttpFetcher
from monitor.adapters.hub import HttpHubClient
from monitor.adapters.notify import AppriseNotifier
from monitor.adapters.store import select
from monitor.config.changes import ReloadStatus
from monitor.config.files import load_config
from monitor.config.schema import Config, default_user_agent
from monitor.errors import ConfigError
from monitor.matching.intake import Matcher
from monitor.ports import Clock, Fetcher, Notifier, Store, StoreBackend, utc_now
from monitor.runtime.checks import digest_triggers, notifier, validate
from monitor.runtime.reloading import Reloader
from monitor.runtime.runner import (
    HEARTBEAT_EVERY,
    OUTBOX_EVERY,
    OUTBOX_JOB,
    SHUTDOWN_GRACE,
    Runner,
    beat_until,
    catch_up_digests,
    heartbeat,
    prune,
    prune_off_loop,
)
from monitor.service import logs
from monitor.service.collect import Collector
from monitor.service.outbox import Outbox
from monitor.service.poll import PollReport, Service
from monitor.service.websub import Subscriber
from monitor.web.app import WebContext
from monitor.web.metrics import MeasuredFetcher, MeasuredNotifier, Metrics
from monitor.web.server import WebServer

__all__ = [
    "LogOptions",
    "ReloadStatus",
    "build_service",
    "copy_store",
    "new_fetcher",
    "notifier",
    "open_store",
    "run",
    "validate",
]

log = logging.getLogger(__name__)


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
        if config.web is not None and config.web.auth_token:
            secrets.append(config.web.auth_token)
        logs.set_secrets(secrets)


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


def _service(
    config: Config, store: StoreBackend, fetcher: HttpFetcher, metrics: Metrics | None = None
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
    fetcher = HttpFetcher(config.settings.user_agent, host_turns=store.host_turns())
    done = asyncio.Event()
    beating = asyncio.ensure_future(beat_until(store, done))
    try:
        service = _service(config, store, fetcher)
        digests = digest_triggers(config)
        catch_up_digests(service, digests)
        reports = await service.poll_all(ignore_interval=True)
        if service.store_error is not None:
            raise service.store_error
        delivered = await service.deliver(due_only=False)
        prune(config, store)
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


def _load_for_reload(path: str, old: Config) -> tuple[Config, Matcher, AppriseNotifier]:
    """Everything a reload swaps in, read and checked off the event loop.

    The cyclic garbage collector is held off while it runs: thousands of new rule objects
    would otherwise set off full collections, each one holding the GIL, so the event loop,
    while the load runs in its thread, would stall for them. Nothing is frozen
    (`gc.freeze` would move every object alive, not only the new config, out of the
    collector's reach for good); the collection the load leaves due runs afterwards and
    stays short (benchmarks/bench_reload.py, 5,000 rules: see docs/design.md)."""
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
        return config, Matcher(config.rules), notifier(config)
    finally:
        gc.enable()


async def _run_forever(
    config: Config,
    path: str | None = None,
    log_options: LogOptions = LogOptions(),
    reloads: ReloadStatus | None = None,
) -> int:
    store = _open_store_for_run(config)
    fetcher = HttpFetcher(config.settings.user_agent, host_turns=store.host_turns())
    scheduler = AsyncIOScheduler(timezone=UTC)
    stop = asyncio.Event()
    metrics = Metrics(config.targets) if config.web is not None else None
    runner = Runner(_service(config, store, fetcher, metrics), scheduler, set(), stop)
    runner.metrics = metrics
    reloader = Reloader(
        runner,
        path,
        _load_for_reload,
        functools.partial(configure_logging, options=log_options),
        reloads or ReloadStatus(),
    )
    if metrics is not None:
        reloader.reloads.on_reload(metrics.record_reload)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reloader.request_reload)
    sources = [s for s in config.sources if s.enabled]
    for source in sources:
        runner.schedule_source(source)
    scheduler.add_job(
        functools.partial(heartbeat, store),
        IntervalTrigger(seconds=HEARTBEAT_EVERY.total_seconds()),
        id="heartbeat",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        runner.track(functools.partial(prune_off_loop, config, store)),
        IntervalTrigger(days=1),
        id="prune",
        next_run_time=utc_now(),
    )
    digests = digest_triggers(config)
    catch_up_digests(runner.service, digests)
    runner.add_digest_jobs(digests)
    scheduler.add_job(
        runner.track(runner.deliver),
        IntervalTrigger(seconds=OUTBOX_EVERY.total_seconds()),
        id=OUTBOX_JOB,
        next_run_time=utc_now(),
        max_instances=1,
        coalesce=True,
    )
    try:  # before the scheduler: a port in use stops the start before any poll
        web = runner.web = await _start_web(config, store, runner)
    except BaseException:
        await fetcher.aclose()
        store.close()
        raise
    scheduler.start()
    if config.settings.watch:
        reloader.start_watching()
    log.info(
        "watching %d sources with %d rules; SIGHUP reloads, SIGTERM or Ctrl-C stops",
        len(sources),
        len(config.rules),
    )
    try:
        await stop.wait()
    finally:
        log.info("stopping: finishing work in flight")
        reloader.stop_watching()
        if web is not None:
            await web.stop()
        scheduler.pause()
        await runner.finish_in_flight(SHUTDOWN_GRACE)
        runner.service.outbox.record_sent()  # a last try, or the next start sends them again
        scheduler.shutdown(wait=False)
        await fetcher.aclose()
        store.close()
    if runner.fatal is not None:
        raise runner.fatal
    return 0


async def _start_web(config: Config, store: StoreBackend, runner: Runner) -> WebServer | None:
    """The [web] server in this event loop: health, metrics, dashboard."""
    if config.web is None or runner.metrics is None:
        return None
    runner.metrics.record_reload(True, utc_now())
    user_agent = config.settings.user_agent
    context = WebContext(
        config=config,
        store=store,
        directory=notifier(config),
        metrics=runner.metrics,
        scheduler_running=lambda: bool(runner.scheduler.running),
        wake_outbox=runner.deliver_soon,
        tester_fetcher=lambda: HttpFetcher(user_agent, concurrency=4, public_only=True),
        subscriber=_subscriber(config, store, runner),
    )
    if select.is_postgres(config.settings.database):  # a cluster: list its instances
        from monitor.service.dashboard import instance_rows

        context.instances = functools.partial(instance_rows, store)
    server = WebServer(context, config.web.host, config.web.port)
    await server.start()
    return server


def _subscriber(config: Config, store: StoreBackend, runner: Runner) -> Subscriber | None:
    """WebSub with `[web] public_url`: upkeep each minute; a push with alerts wakes the outbox."""
    if config.web is None or not config.web.public_url:
        return None
    subscriber = Subscriber(
        config, store, HttpHubClient(config.settings.user_agent), runner.service
    )

    def after_push(report: PollReport) -> None:
        runner.observe(report)
        if report.alerts:
            runner.deliver_soon()

    subscriber.after_push = after_push
    runner.scheduler.add_job(runner.track(subscriber.maintain), IntervalTrigger(minutes=1),
                             id="websub", max_instances=1, coalesce=True)  # fmt: skip
    return subscriber


def new_fetcher() -> HttpFetcher:
    """A fetcher for the CLI's `preview` and `match` of URLs (the caller closes it)."""
    return HttpFetcher(default_user_agent())

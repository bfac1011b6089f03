"""Reload without restart (SIGHUP, or `watch = true`): load and check the new config off the
event loop, keep the old one on any error, else swap it in at once and reschedule only what
changed (new sources spread out, removed ones stopped with their state kept)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from monitor.adapters.watch import watch_files
from monitor.config.changes import ConfigChanges, ReloadStatus, diff_configs
from monitor.config.schema import Config, Source
from monitor.errors import ConfigError, MonitorError
from monitor.matching.intake import Matcher
from monitor.ports import Notifier, TargetDirectory, utc_now
from monitor.runtime.checks import digest_triggers
from monitor.runtime.runner import STARTUP_SPREAD, Runner, catch_up_digests
from monitor.web.metrics import MeasuredNotifier
from monitor.web.server import WebServer

__all__ = ["Loader", "NotifierDirectory", "Reloader"]

log = logging.getLogger(__name__)
# New sources found by a reload that are due at once start about one a second, at most
# spread over this long, so a reload that adds 500 feeds is no burst.
NEW_SOURCE_GAP = timedelta(seconds=1)
MAX_NEW_SPREAD = timedelta(minutes=5)
WATCH_DEBOUNCE_MS = 1600


def _token(config: Config) -> str | None:
    return config.web.auth_token if config.web else None


def _web_rest(config: Config) -> object:
    """[web] without auth_token (which a reload applies at once)."""
    return None if config.web is None else replace(config.web, auth_token=None)


class NotifierDirectory(Notifier, TargetDirectory, Protocol):
    """A notifier that also describes its targets (the dashboard shows them masked)."""


Loader = Callable[[str, Config], tuple[Config, Matcher, NotifierDirectory]]
"""Reads and checks the config file as `monitor check` does (called in a worker thread): the
new config, its compiled rules and its notifier, given the running config."""


@dataclass
class Reloader:
    runner: Runner
    path: str | None  # the config file a reload reads
    load: Loader
    relog: Callable[[Config], None]
    """Set logging up again for a new config (its format, its targets' secrets)."""
    reloads: ReloadStatus = field(default_factory=ReloadStatus)
    reloading: bool = False
    reload_again: bool = False
    watcher: asyncio.Task[None] | None = None

    def request_reload(self) -> None:
        """SIGHUP (or a watched file changed): reload; one at a time, the last request wins."""
        if self.path is None:
            log.warning("SIGHUP ignored: no config file to reload")
            return
        if self.reloading:
            self.reload_again = True
            return
        self.reloading = True
        task = asyncio.ensure_future(self.runner.track(self._reload_until_settled)())
        self.runner.in_flight.add(task)
        task.add_done_callback(self.runner.in_flight.discard)

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
        old = self.runner.service.config
        at = utc_now()
        try:
            new, matcher, new_notifier = await asyncio.to_thread(self.load, self.path, old)
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
        metrics, web = self.runner.metrics, self.runner.web
        measured = new_notifier if metrics is None else MeasuredNotifier(new_notifier, metrics)
        if metrics is not None:
            metrics.set_targets(new.targets)
        self.runner.service.reconfigure(new, matcher, measured)
        if web is not None:
            web.context.config, web.context.directory = new, new_notifier
            if web.context.subscriber is not None:  # unsubscribes removed sources
                web.context.subscriber.config = new
        self._reschedule(old, new, changes)
        if (
            new.settings.log_format != old.settings.log_format
            or changes.targets
            or _token(new) != _token(old)
        ):
            self.relog(new)  # also the secrets it masks
        if web is not None:
            self._retoken(web, new)
        if new.settings.user_agent != old.settings.user_agent or _web_rest(new) != _web_rest(old):
            log.warning("user_agent and [web] changes take effect at the next start")
        if new.settings.watch and not old.settings.watch:
            self.start_watching()
        elif old.settings.watch and not new.settings.watch:
            self.stop_watching()
        summary = changes.summary()
        log.info("config reloaded: %s", summary)
        self.reloads.record(True, at, summary)

    def _retoken(self, web: WebServer, new: Config) -> None:
        token = _token(new)
        if token == web.token:
            return
        if token is None:
            log.warning("[web] auth_token removed: the old token stays until the next start")
            return
        web.set_token(token)
        log.info("[web] auth_token changed: logged-in sessions ended")

    def _reschedule(self, old: Config, new: Config, changes: ConfigChanges) -> None:
        before = {s.name: s for s in old.sources}
        after = {s.name: s for s in new.sources}
        for name in (*changes.sources.removed, *changes.sources.changed):
            if self.runner.scheduler.get_job(f"source:{name}") is not None:
                self.runner.scheduler.remove_job(f"source:{name}")
        added = [after[n] for n in changes.sources.added if after[n].enabled]
        spread = min(MAX_NEW_SPREAD, max(STARTUP_SPREAD, NEW_SOURCE_GAP * len(added)))
        for source in added:
            self.runner.schedule_source(source, start_spread=spread)
        for name in changes.sources.changed:
            source = after[name]
            if source.enabled:
                self.runner.schedule_source(source, self._due_after_change(before[name], source))
        for job in self.runner.scheduler.get_jobs():
            if job.id.startswith("digest:"):
                job.remove()
        digests = digest_triggers(new)
        self.runner.add_digest_jobs(digests)
        fresh = set(changes.rules.added) | set(changes.rules.changed)
        catch_up_digests(self.runner.service, [(r, t) for r, t in digests if r.name in fresh])

    def _due_after_change(self, old: Source, new: Source) -> datetime | None:
        """A changed interval counts from the last fetch (a shorter one takes effect now,
        not after the old interval); backoff and the publisher's floor still hold."""
        state = self.runner.service.state_of(new)
        due = self.runner.service.next_due(new)
        if due is None or old.url != new.url or old.interval == new.interval:
            return due
        if state.last_fetch_at is None or state.error_count:
            return due
        by_interval = state.last_fetch_at + new.interval
        return max([by_interval, *(t for t in (state.not_before,) if t is not None)])

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
            settings = self.runner.service.config.settings
            return [config_file, *settings.rules, *settings.source_files]

        await watch_files(globs, self.request_reload, WATCH_DEBOUNCE_MS)

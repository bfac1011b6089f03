"""Prometheus metrics of one daemon, in their own registry (names: ../shared design.md).

No label takes an unbounded set of values: `result` is one of a few words, `target` a
configured target's name, `state` one of SOURCE_STATES.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from monitor import __version__
from monitor.config.schema import Config
from monitor.ports import ClosingFetcher, Notifier
from monitor.state import FetchResponse, SendResult, SourceRank

__all__ = [
    "CONTENT_TYPE",
    "SOURCE_STATES",
    "MeasuredFetcher",
    "MeasuredNotifier",
    "Metrics",
    "fetch_result",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
SOURCE_STATES = ("ok", "failing", "disabled", "never_fetched")
FETCH_RESULTS = ("ok", "not_modified", "redirect", "client_error", "server_error", "error")
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def fetch_result(status: int | None) -> str:
    """The `result` label of a fetch: a few words, never a URL or a raw status."""
    if status is None:
        return "error"
    if status == 304:
        return "not_modified"
    if 200 <= status < 300:
        return "ok"
    if 300 <= status < 400:
        return "redirect"
    return "client_error" if status < 500 else "server_error"


DELIVERY_RESULTS = ("sent", "failed")


class Metrics:
    """The daemon's counters and gauges; `exposition()` renders them for a scrape."""

    def __init__(self, targets: Iterable[str] = ()) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series
        self.registry = CollectorRegistry()
        r = self.registry
        self.fetches = Counter(
            "news_monitor_fetches", "HTTP fetches of feeds and pages, by result", ["result"],
            registry=r,
        )  # fmt: skip
        self.fetch_duration = Histogram(
            "news_monitor_fetch_duration_seconds", "Time an HTTP fetch took, in seconds",
            buckets=FETCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.articles = Counter("news_monitor_articles", "New articles stored", registry=r)
        self.matches = Counter("news_monitor_matches", "Rule matches recorded", registry=r)
        self.deliveries = Counter(
            "news_monitor_deliveries", "Messages sent to targets, by target and result",
            ["target", "result"], registry=r,
        )  # fmt: skip
        self.outbox_pending = Gauge(
            "news_monitor_outbox_pending", "Deliveries waiting to be sent", registry=r
        )
        self.outbox_dead = Gauge("news_monitor_outbox_dead", "Deliveries given up on", registry=r)
        self.sources = Gauge(
            "news_monitor_sources", "Configured sources, by state", ["state"], registry=r
        )
        self.reload_ok = Gauge(
            "news_monitor_config_last_reload_successful",
            "1 if the last config load or reload succeeded, else 0", registry=r,
        )  # fmt: skip
        self.reload_time = Gauge(
            "news_monitor_config_last_reload_success_timestamp_seconds",
            "When the config was last loaded successfully (Unix time)", registry=r,
        )  # fmt: skip
        self.websub_pushes = Counter(
            "news_monitor_websub_pushes", "WebSub content distributions received, by result"
            " (accepted, rejected: missing or wrong signature, gone: no such subscription)",
            ["result"], registry=r,
        )  # fmt: skip
        self.build_info = Gauge(
            "news_monitor_build_info", "Always 1; the version is a label", ["version"],
            registry=r,
        )  # fmt: skip
        self.build_info.labels(__version__).set(1)
        for result in FETCH_RESULTS:
            self.fetches.labels(result)
        self._targets: set[str] = set()
        self.set_targets(targets)
        for state in SOURCE_STATES:
            self.sources.labels(state)

    def set_targets(self, targets: Iterable[str]) -> None:
        """Zero `deliveries_total` series for each configured target (a scrape sees 0, not
        nothing), and none left for a target a reload removed."""
        wanted = set(targets)
        for target in wanted - self._targets:
            for result in DELIVERY_RESULTS:
                self.deliveries.labels(target, result)
        for target in self._targets - wanted:
            for result in DELIVERY_RESULTS:
                with contextlib.suppress(KeyError):
                    self.deliveries.remove(target, result)
        self._targets = wanted

    def record_reload(self, ok: bool, at: datetime) -> None:
        """The outcome of loading the config (at start: ok) or of a SIGHUP reload."""
        self.reload_ok.set(1 if ok else 0)
        if ok:
            self.reload_time.set(at.timestamp())

    def record_fetch(self, status: int | None, seconds: float) -> None:
        self.fetches.labels(fetch_result(status)).inc()
        self.fetch_duration.observe(seconds)

    def record_poll(self, new_articles: int, matches: int) -> None:
        self.articles.inc(new_articles)
        self.matches.inc(matches)

    def record_delivery(self, target: str, ok: bool) -> None:
        self.deliveries.labels(target, "sent" if ok else "failed").inc()

    def record_store(
        self, config: Config, states: Iterable[SourceRank], outbox: tuple[int, int]
    ) -> None:
        """Refresh the gauges read from the store (at each scrape)."""
        by_name = {state[0]: state for state in states}
        counts = dict.fromkeys(SOURCE_STATES, 0)
        for source in config.sources:
            counts[source_state(source.enabled, by_name.get(source.name))] += 1
        for state, count in counts.items():
            self.sources.labels(state).set(count)
        self.outbox_pending.set(outbox[0])
        self.outbox_dead.set(outbox[1])

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def source_state(enabled: bool, state: SourceRank | None) -> str:
    if not enabled or (state is not None and state[2]):
        return "disabled"
    if state is None or not state[3]:
        return "never_fetched"
    return "failing" if state[1] > 0 else "ok"


class MeasuredFetcher:
    """A fetcher that counts and times each fetch of the one it wraps."""

    def __init__(self, inner: ClosingFetcher, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        discovered_on: str | None = None,
    ) -> FetchResponse:
        start = time.perf_counter()
        status: int | None = None
        try:
            response = await self.inner.fetch(
                url, etag=etag, last_modified=last_modified, discovered_on=discovered_on
            )
            status = response.status
            return response
        finally:
            self.metrics.record_fetch(status, time.perf_counter() - start)

    async def aclose(self) -> None:
        await self.inner.aclose()


class MeasuredNotifier:
    """A notifier that counts each send of the one it wraps, by target and result."""

    def __init__(self, inner: Notifier, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def send(self, target: str, title: str, body: str, body_format: str = "markdown") -> SendResult:
        result = self.inner.send(target, title, body, body_format)
        self.metrics.record_delivery(target, result.ok)
        return result

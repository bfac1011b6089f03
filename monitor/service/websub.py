"""The WebSub subscriber: subscribes to the hubs polled feeds advertise, answers the hubs'
verifications of intent, takes their content distributions into the poll's path, renews
leases at 80% and unsubscribes sources that were removed or disabled.

Subscription state lives in the store (`ports.WebSubStore`), so after a restart, and on any
instance of a cluster, callbacks are answered. The hub's HTTP calls go through
`ports.HubClient`; the callback routes are in monitor.web.websub.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from monitor.config.schema import Config, Source
from monitor.errors import MonitorError, StoreError
from monitor.model import Article
from monitor.ports import Clock, HubClient, WebSubStore, utc_now
from monitor.service.poll import PollReport, Service
from monitor.sources.websub import (
    DEFAULT_LEASE,
    discover,
    hub_allowed,
    new_callback_id,
    new_secret,
    renew_at,
    signature_ok,
)
from monitor.state import FetchResponse, Subscription

__all__ = ["Subscriber", "push_state", "push_states"]

log = logging.getLogger(__name__)
RETRY = timedelta(minutes=30)  # after a hub's error, or a verification that never came
VERIFY_WITHIN = timedelta(hours=1)
MIN_LEASE = timedelta(minutes=5)
MAX_LEASE = timedelta(days=365)
UNSUBSCRIBE_WITHIN = timedelta(days=1)
# The upkeep runs each minute; an instance holds it this long, so another takes over
# within about two minutes of its death.
UPKEEP_HELD = timedelta(seconds=90)
# A polled item published this long after the subscription was verified, and this long
# before the poll, should have been pushed.
PUSH_GRACE = timedelta(minutes=2)
CURRENT = ("pending", "active", "denied", "failing")


def push_state(subscriptions: Sequence[Subscription], now: datetime) -> str:
    """A source's push state for `monitor status` and the dashboard: none, pending,
    "active until ...", denied (reason), failing (error)."""
    current = [s for s in subscriptions if s.state in CURRENT]
    active = [s for s in subscriptions if s.state in ("active", "retired")]
    live = [s for s in active if s.expires_at is None or s.expires_at > now]
    if current and current[0].state == "denied":
        return f"denied ({current[0].error or 'no reason given'})"
    if current and current[0].state == "failing" and not live:
        return f"failing ({current[0].error})"
    if live:
        until = max(s.expires_at for s in live if s.expires_at is not None)
        return f"active until {until:%Y-%m-%d %H:%M} UTC"
    if current and current[0].state == "pending":
        return "pending"
    return "none"


def push_states(store: WebSubStore, now: datetime) -> dict[str, str]:
    """Each source with subscriptions, by name: its `push_state` (others: "none")."""
    by_source: dict[str, list[Subscription]] = {}
    for sub in store.subscriptions():
        by_source.setdefault(sub.source, []).append(sub)
    return {name: push_state(subs, now) for name, subs in by_source.items()}


class Subscriber:
    def __init__(
        self,
        config: Config,
        store: WebSubStore,
        hub: HubClient,
        service: Service,
        clock: Clock = utc_now,
    ) -> None:
        self.config = config
        self.store = store
        self.hub = hub
        self.service = service
        self.clock = clock
        self.rejected = 0
        """Content distributions refused for a missing or wrong signature."""
        self.tasks: set[asyncio.Task[object]] = set()
        self.after_push: Callable[[PollReport], None] = lambda report: None
        """Called with each push's report (the daemon wakes the outbox on alerts)."""
        self._active: set[str] = set()
        self._asking: set[str] = set()  # sources with a subscription request in flight
        service.on_fetched = self.discovered
        service.on_unpushed = self.unpushed
        service.pushed = lambda name: name in self._active

    @property
    def public_url(self) -> str | None:
        web = self.config.web
        return web.public_url.rstrip("/") if web is not None and web.public_url else None

    def _wanted(self, source: Source | None) -> bool:
        return bool(source and source.enabled and source.websub and self.public_url)

    def _source(self, name: str) -> Source | None:
        return next((s for s in self.config.sources if s.name == name), None)

    def _current(self, source: str) -> Subscription | None:
        return next((s for s in self.store.subscriptions(source) if s.state in CURRENT), None)

    def spawn(self, work: Coroutine[object, object, object]) -> None:
        """Run `work` in the background (kept referenced; a failure is logged)."""
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("websub: background work failed: %r", task.exception())

    # Subscribing -----------------------------------------------------------------------

    def discovered(self, source: Source, response: FetchResponse) -> None:
        """A poll's 200 response: subscribe when it advertises a hub we have no
        subscription with (or the topic or hub changed)."""
        if not self._wanted(source) or source.name in self._asking:
            return
        found = discover(response.url, response.headers, response.content)
        if found is None:
            return
        if not hub_allowed(found.hubs[0], response.url):
            log.warning("%s: the feed names a hub on a private address; not subscribing",
                        source.name)  # fmt: skip
            return
        current = self._current(source.name)
        if current is not None and current.topic == found.topic and current.hub in found.hubs:
            return
        self._asking.add(source.name)
        self.spawn(self.subscribe(source, found.hubs[0], found.topic))

    def unpushed(self, source: Source, articles: Sequence[Article]) -> None:
        """A poll found new items: if the hub should have pushed them, resubscribe."""
        if source.name not in self._active or source.name in self._asking:
            return
        current = self._current(source.name)
        if current is None or current.state != "active" or current.verified_at is None:
            return
        now = self.clock()
        since, until = current.verified_at + PUSH_GRACE, now - PUSH_GRACE
        dates = ((a, a.published or a.updated) for a in articles)
        missed = [a for a, when in dates if when is not None and since < when < until]
        if missed:
            log.warning("%s: a poll found %d items the hub never pushed (%r); resubscribing",
                        source.name, len(missed), missed[0].title)  # fmt: skip
            self._asking.add(source.name)
            self.spawn(self.subscribe(source, current.hub, current.topic))

    async def subscribe(self, source: Source, hub: str, topic: str) -> Subscription:
        """Ask `hub` for `topic` with a fresh callback and secret; pending until verified."""
        try:
            return await self._subscribe(source, hub, topic)
        finally:
            self._asking.discard(source.name)

    async def _subscribe(self, source: Source, hub: str, topic: str) -> Subscription:
        public = self.public_url
        assert public is not None
        now = self.clock()
        sub = Subscription(new_callback_id(), source.name, topic, hub, new_secret(),
                           "pending", requested_at=now)  # fmt: skip
        await asyncio.to_thread(self.store.save_subscription, sub)
        form = {
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.callback": f"{public}/websub/{sub.id}",
            "hub.secret": sub.secret,
            "hub.lease_seconds": str(int(DEFAULT_LEASE.total_seconds())),
        }
        log.info("%s: subscribing to %s at hub %s", source.name, topic, hub)
        try:
            status, answer = await self.hub.post_form(hub, form)
            error = None if 200 <= status < 300 else f"hub answered HTTP {status}: {answer!r}"
        except MonitorError as exc:
            error = str(exc)
        if error is None:
            return sub
        log.warning("%s: subscription failed: %s", source.name, error)
        latest = await asyncio.to_thread(self.store.subscription, sub.id)
        if latest is None or latest.state != "pending":  # verified (or denied) meanwhile
            return latest or sub
        failed = replace(sub, state="failing", error=error[:300], renew_at=self.clock() + RETRY)
        await asyncio.to_thread(self.store.save_subscription, failed)
        return failed

    async def unsubscribe(self, sub: Subscription) -> None:
        public = self.public_url or ""
        await asyncio.to_thread(
            self.store.save_subscription,
            replace(sub, state="unsubscribing", requested_at=self.clock()),
        )
        self._active.discard(sub.source)
        form = {"hub.mode": "unsubscribe", "hub.topic": sub.topic,
                "hub.callback": f"{public}/websub/{sub.id}"}  # fmt: skip
        log.info("%s: unsubscribing from %s at hub %s", sub.source, sub.topic, sub.hub)
        try:
            status, answer = await self.hub.post_form(sub.hub, form)
            if not 200 <= status < 300:
                log.warning("%s: unsubscribe refused: HTTP %d %r", sub.source, status, answer)
        except MonitorError as exc:
            log.warning("%s: unsubscribe failed: %s", sub.source, exc)

    # The hub's requests ------------------------------------------------------------------

    def verify(self, subscription_id: str, query: Mapping[str, str]) -> str | None:
        """A verification of intent (or a denial): the text to answer with 200, or None for
        404 (unknown callback, another topic, a mode we did not ask for)."""
        sub = self.store.subscription(subscription_id)
        mode, topic = query.get("hub.mode", ""), query.get("hub.topic", "")
        if sub is None or topic != sub.topic:
            log.warning("websub: verification refused (unknown callback or topic %r)", topic)
            return None
        now = self.clock()
        if mode == "denied" and sub.state in ("pending", "active", "failing"):
            reason = query.get("hub.reason", "")[:300] or None
            log.warning("%s: the hub denied the subscription (%s)", sub.source, reason)
            self.store.save_subscription(replace(sub, state="denied", error=reason))
            self._active.discard(sub.source)
            return ""
        challenge = query.get("hub.challenge")
        if not challenge:
            return None
        if mode == "subscribe" and sub.state in ("pending", "active", "failing"):
            # (failing: the hub's answer to our POST was an error, yet it verifies)
            lease = _lease(query.get("hub.lease_seconds"))
            active = replace(sub, state="active", verified_at=now, expires_at=now + lease,
                             renew_at=renew_at(now, lease), error=None)  # fmt: skip
            self.store.save_subscription(active)
            for old in self.store.subscriptions(sub.source):
                if old.id != sub.id and old.state in CURRENT:
                    self.store.save_subscription(replace(old, state="retired"))
            self._active.add(sub.source)
            log.info("%s: subscription active until %s", sub.source, active.expires_at)
            return challenge
        if mode == "unsubscribe" and sub.state == "unsubscribing":
            self.store.delete_subscription(sub.id)
            log.info("%s: unsubscribed from %s", sub.source, sub.topic)
            return challenge
        log.warning("%s: verification refused (mode %r, state %s)", sub.source, mode, sub.state)
        return None

    def check_delivery(
        self, subscription_id: str, signature: str | None, body: bytes
    ) -> tuple[int, Subscription | None]:
        """A content distribution: the status to answer at once, and the subscription when
        the body is to be read (410: not subscribed; 202 without one: refused signature)."""
        sub = self.store.subscription(subscription_id)
        source = self._source(sub.source) if sub is not None else None
        if sub is None or source is None or not source.enabled:
            return 410, None
        if sub.state not in ("active", "retired", "pending"):
            return 410, None
        if sub.secret and not signature_ok(sub.secret, signature, body):
            self.rejected += 1
            what = "no signature" if not signature else "a wrong signature"
            log.warning("%s: pushed content with %s ignored", sub.source, what)
            return 202, None
        return 202, sub

    async def take(self, sub: Subscription, body: bytes, content_type: str) -> PollReport:
        """Read a verified push through the poll's path (after the hub had its 202)."""
        source = self._source(sub.source)
        if source is None:
            return PollReport(sub.source, False, detail="source removed")
        now = self.clock()
        await asyncio.to_thread(
            self.store.save_subscription, replace(sub, pushed_at=now, pushes=sub.pushes + 1)
        )
        log.info("%s: content pushed by the hub (%d bytes)", source.name, len(body))
        headers = {"content-type": content_type} if content_type else {}
        report = await self.service.take_push(source, FetchResponse(sub.topic, 200, headers, body))
        self.after_push(report)
        return report

    # Upkeep ------------------------------------------------------------------------------

    async def maintain(self) -> None:
        """Renew leases due (at 80%), retry failures, end subscriptions no longer wanted;
        in a cluster only the instance holding the upkeep does (one renewal per lease)."""
        try:
            if not await asyncio.to_thread(self.store.take_upkeep, "websub", UPKEEP_HELD):
                return
            subs = await asyncio.to_thread(self.store.subscriptions)
        except StoreError as exc:
            log.warning("websub: cannot read subscriptions: %s", exc)
            return
        now = self.clock()
        self._active = {s.source for s in subs if s.state in ("active", "retired")
                        and (s.expires_at is None or s.expires_at > now)}  # fmt: skip
        newest: dict[str, Subscription] = {}
        for sub in subs:
            source = self._source(sub.source)
            if sub.state == "unsubscribing":
                if sub.requested_at is None or sub.requested_at < now - UNSUBSCRIBE_WITHIN:
                    await asyncio.to_thread(self.store.delete_subscription, sub.id)
            elif sub.state == "retired":
                if sub.expires_at is not None and sub.expires_at <= now:
                    await asyncio.to_thread(self.store.delete_subscription, sub.id)
            elif not self._wanted(source):
                if sub.state in ("active", "pending"):
                    await self.unsubscribe(sub)
                else:
                    await asyncio.to_thread(self.store.delete_subscription, sub.id)
            elif sub.source in newest:  # an older attempt; an older active one is retired
                if sub.state in ("failing", "denied"):  # once the newer is verified
                    await asyncio.to_thread(self.store.delete_subscription, sub.id)
            else:
                newest[sub.source] = sub
        for sub in newest.values():
            source = self._source(sub.source)
            if source is None or sub.source in self._asking:
                continue
            if (
                sub.state == "pending"
                and sub.requested_at
                and sub.requested_at < now - VERIFY_WITHIN
            ):
                sub = replace(sub, state="failing", error="the hub never verified",
                              renew_at=now)  # fmt: skip
                await asyncio.to_thread(self.store.save_subscription, sub)
            if sub.state in ("active", "failing") and sub.renew_at and sub.renew_at <= now:
                self._asking.add(sub.source)
                await self.subscribe(source, sub.hub, sub.topic)


def _lease(value: str | None) -> timedelta:
    try:
        seconds = int(value) if value else int(DEFAULT_LEASE.total_seconds())
    except ValueError:
        seconds = int(DEFAULT_LEASE.total_seconds())
    return min(max(timedelta(seconds=seconds), MIN_LEASE), MAX_LEASE)

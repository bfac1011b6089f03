"""The seams: every Protocol the service layer uses, and the clock.

The service (monitor.service) knows its collaborators only through these; the adapters
(monitor.adapters) implement them; daemon.py wires one to the other. Implementations need not
inherit from them (they are structural).

The store seam is synchronous: each method is one short transaction (`save_poll` is the one
atomic write of a poll, the basis of "never twice"). The service calls the slow ones off the
event loop with `asyncio.to_thread`; a backend must therefore accept calls from worker threads
(SqliteStore shares one connection under a lock). See docs/design.md "Layers".

May import monitor.model, monitor.state and monitor.errors only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Protocol

from monitor.model import Article
from monitor.state import (
    Delivery,
    FetchResponse,
    FollowUp,
    InstanceInfo,
    MatchRecord,
    SendResult,
    SourceRank,
    SourceState,
    StoryCopy,
    Subscription,
)

__all__ = [
    "Clock",
    "ClosingFetcher",
    "DashboardStore",
    "Fetcher",
    "HostTurns",
    "HubClient",
    "Notifier",
    "OutboxStore",
    "PollStore",
    "QueryStore",
    "Store",
    "StoreBackend",
    "TargetDirectory",
    "WebSubStore",
    "utc_now",
]


Clock = Callable[[], datetime]
"""What the service reads the time from: returns an aware datetime in UTC."""


def utc_now() -> datetime:
    """The real clock: now, aware, in UTC."""
    return datetime.now(UTC)


class Fetcher(Protocol):
    """HTTP GET of feeds and pages (monitor.adapters.fetch.HttpFetcher)."""

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        discovered_on: str | None = None,
    ) -> FetchResponse:
        """GET `url`, conditionally when `etag`/`last_modified` are given (a 304 comes back
        as a response, not an error); `discovered_on` names the page the URL was found on.
        Any HTTP status is a response; an unreachable host or a broken transfer raises
        FetchError (a MonitorError)."""
        ...


class ClosingFetcher(Fetcher, Protocol):
    """A fetcher its user owns and closes (the daemon's, the one `load_articles` makes)."""

    async def aclose(self) -> None:
        """Close the connections; the fetcher is not used afterwards."""
        ...


class Notifier(Protocol):
    """Sends one message to one target (monitor.adapters.notify.AppriseNotifier)."""

    def send(self, target: str, title: str, body: str, body_format: str = "markdown") -> SendResult:
        """Send `title`/`body` (in `body_format`: markdown, html or text) to the target named
        `target`; blocking (the outbox calls it in a worker thread). Never raises for a
        failed send: the result says whether it went and, if not, why."""
        ...


class HostTurns(Protocol):
    """Per-host manners shared by every process fetching for one database (a cluster): at
    most `slots` requests in flight to a host and starts `gap` seconds apart, across all
    of them. Blocking calls (the fetcher makes them in a worker thread)."""

    def try_start(self, host: str, slots: int, gap: float) -> tuple[str | None, float]:
        """A turn to start a request to `host` now: (its id, 0), or (None, seconds to wait
        before asking again)."""
        ...

    def finish(self, host: str, turn: str) -> None:
        """The request of `turn` has ended: its slot is free."""
        ...


class TargetDirectory(Protocol):
    """The configured targets as the notifier reads them (for `monitor check`)."""

    def describe(self, name: str) -> str:
        """The target's service in words (e.g. "Slack webhook"), never its URL or secrets."""
        ...

    def problems(self) -> dict[str, str]:
        """Target name -> why its URL cannot be used; empty when all can."""
        ...


class OutboxStore(Protocol):
    """The store as the outbox sees it: the durable queue of deliveries, digests, follow-ups."""

    def pending_deliveries(self, now: datetime, *, due_only: bool = True) -> list[Delivery]:
        """Deliveries not yet sent nor dead, oldest first; with `due_only`, only those whose
        next attempt is at or before `now`."""
        ...

    def mark_delivered(self, delivery_id: str, now: datetime) -> None:
        """Record that the delivery was sent at `now` (it leaves the queue)."""
        ...

    def mark_folded(self, delivery_ids: Sequence[str], into: str, now: datetime) -> None:
        """Record that these deliveries went out folded into the delivery `into`."""
        ...

    def mark_failed(self, delivery_id: str, error: str, next_attempt_at: datetime) -> None:
        """Record a failed attempt and when to try again."""
        ...

    def mark_dead(self, delivery_id: str, error: str, now: datetime) -> None:
        """Give up on the delivery: it leaves the queue but stays visible (`dead_deliveries`)."""
        ...

    def messages_sent(self, target: str, since: datetime) -> int:
        """How many messages went to `target` since `since` (for its rate limit)."""
        ...

    def digest_covered_until(self, rule: str) -> datetime | None:
        """The end of the last period the rule's digest covered, None before the first."""
        ...

    def matches_between(
        self, rule: str, start: datetime, end: datetime
    ) -> list[tuple[MatchRecord, Article]]:
        """The rule's matches recorded in (start, end], with their articles, oldest first
        (a period ending at `end` includes a match made at `end`; the next one starts after)."""
        ...

    def save_digest(
        self,
        rule: str,
        covered_until: datetime,
        deliveries: Sequence[Delivery],
        *,
        expected: datetime | None = None,
        check: bool = False,
    ) -> bool:
        """In one transaction: queue the digest's deliveries and move the rule's coverage
        to `covered_until`. With `check`, only if the coverage is still `expected` (None:
        no period yet), so of several instances closing one period one queues it; True if
        saved."""
        ...

    def claim_deliveries(self, now: datetime, *, due_only: bool = True) -> list[Delivery]:
        """Like `pending_deliveries`, but each returned delivery is claimed for this process
        until it is marked (or its claim expires, a minute at most, if the process dies):
        processes sharing the database never get the same one at once."""
        ...

    def due_follow_ups(self, now: datetime) -> list[FollowUp]:
        """Follow-ups ("also reported by") whose quiet time has passed at `now`."""
        ...

    def story_copies(self, rule: str, story_id: str) -> list[StoryCopy]:
        """The copies of a story recorded for a rule, in the order they were seen."""
        ...

    def queue_follow_up(
        self, follow_up: FollowUp, delivery: Delivery | None, now: datetime
    ) -> bool:
        """Settle the follow-up: queue `delivery` (None: nothing to send) unless a newer
        copy put it off since it was read; True if it was settled."""
        ...

    def drop_follow_up(self, follow_up: FollowUp) -> None:
        """Forget the follow-up without sending anything."""
        ...


class PollStore(Protocol):
    """The store as one poll sees it: source state, seen articles, stories."""

    def source_state(self, name: str) -> SourceState | None:
        """The source's stored state (validators, backoff, next poll), None if never polled."""
        ...

    def source_states(self) -> list[SourceState]:
        """Every stored source state (a cycle's due check reads them at once)."""
        ...

    def known_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of `ids` that are stored articles."""
        ...

    def known_links(self, ids: Iterable[str], now: datetime) -> set[str]:
        """Those of `ids` that are stored articles or settled links not expired at `now`."""
        ...

    def save_poll(
        self,
        state: SourceState,
        articles: Sequence[Article],
        matches: Sequence[MatchRecord],
        deliveries: Sequence[Delivery],
        now: datetime,
        settled_links: Sequence[tuple[str, datetime]] = (),
        follow_ups: Sequence[FollowUp] = (),
    ) -> None:
        """Record a whole poll in one transaction, all or nothing: the source's state, its
        new articles, matches, deliveries (a delivery id already queued is kept, not
        doubled), settled links and follow-ups. Raises StoreError on a fault."""
        ...

    def claim_poll(
        self,
        name: str,
        url: str,
        now: datetime,
        *,
        due_only: bool = True,
        unpolled_since: datetime | None = None,
    ) -> bool:
        """Take the lease on polling source `name`: with `due_only`, only if it is still due
        at `now`; with `unpolled_since` (`run --once`), only if nobody fetched it since then.
        False if another process holds it or the condition fails.
        Until `release_poll`, this process's saves of the source are fenced: refused with
        LeaseLost if the lease has passed to another process meanwhile."""
        ...

    def story_lock(self) -> AbstractContextManager[None]:
        """Held (entered and left from worker threads, maybe different ones) from a poll's
        story grouping to the end of its save, so that two copies of a story polled at
        once, by this process or another sharing the database, give one story and one
        alert. A process's own polls are serialised by the service as well."""
        ...

    def release_poll(self, name: str) -> None:
        """Give back the lease `claim_poll` took (the poll is saved or abandoned)."""
        ...

    def save_state(self, state: SourceState) -> None:
        """Record only the source's state (a poll that found nothing new, or failed)."""
        ...

    def story_fingerprints(self, rule: str, since: datetime) -> list[tuple[str, bytes]]:
        """(story id, fingerprint) of the rule's stories seen since `since`."""
        ...

    def recent_articles(self, source: str, since: datetime, limit: int) -> list[Article]:
        """At most `limit` of the source's articles stored since `since`, newest first."""
        ...


class QueryStore(Protocol):
    """The store as the CLI's queries (and the web) read it."""

    def check_integrity(self) -> None:
        """Raise StoreError if the database is damaged."""
        ...

    def source_states(self) -> list[SourceState]:
        """Every stored source state."""
        ...

    def recent_matches(self, limit: int = 20) -> list[tuple[MatchRecord, str, str]]:
        """The newest `limit` matches, newest first, with their article's title and URL."""
        ...

    def dead_deliveries(self, limit: int = 20) -> list[Delivery]:
        """At most `limit` deliveries given up on (see `OutboxStore.mark_dead`)."""
        ...

    def articles_since(self, since: datetime) -> Iterable[Article]:
        """The stored articles first seen at or after `since` whose text was not pruned, oldest
        first (may be read lazily, while the store is open)."""
        ...

    def count_articles_since(self, since: datetime) -> int:
        """How many articles `articles_since(since)` gives."""
        ...

    def instances(self) -> list[InstanceInfo]:
        """The processes polling this database (a cluster's instances), newest heartbeat
        first, with the leases each holds; empty for a single-process backend."""
        ...

    def polled_by(self) -> dict[str, str]:
        """Source name -> the instance that polled it last (empty when not recorded)."""
        ...


class DashboardStore(QueryStore, Protocol):
    """The store as the web's dashboard, health checks and metrics read it (and the one
    write they make: "retry now" of a dead delivery)."""

    def ping(self) -> None:
        """Raise StoreError unless the database answers a query."""
        ...

    def source_ranks(self, text: str = "") -> list[SourceRank]:
        """Every stored source, briefly (cheap enough for 10,000 sources a request); `hit`
        says whether `text` occurs in its name, URL or last result (always for no text)."""
        ...

    def overdue_sources(self, before: datetime) -> list[str]:
        """The sources not disabled whose next poll and publisher's floor are before
        `before`."""
        ...

    def source_states_named(self, names: list[str]) -> list[SourceState]:
        """The full stored states of the named sources (those that have one)."""
        ...

    def outbox_counts(self) -> tuple[int, int]:
        """(pending, dead): deliveries waiting to be sent, and those given up on."""
        ...

    def pending_page(self, limit: int) -> list[Delivery]:
        """At most `limit` deliveries waiting to be sent, oldest first."""
        ...

    def retry_dead(self, delivery_id: str, now: datetime) -> bool:
        """Put the dead delivery back in the queue, due at `now`; False if it is not dead."""
        ...

    def recent_match_articles(self, limit: int) -> list[tuple[str, str, datetime, Article | None]]:
        """The newest `limit` matches as (rule, explanation, matched at, article; None when
        its text was pruned), newest first."""
        ...

    def recent_stories(self, limit: int, scan: int = 2000) -> list[tuple[str, list[StoryCopy]]]:
        """At most `limit` stories among the newest `scan` matches, newest first, each as
        (rule, every matched copy in the order seen)."""
        ...


class Store(OutboxStore, PollStore, Protocol):
    """What a store backend implements for the service (monitor.adapters.store.sqlite)."""


class WebSubStore(Protocol):
    """WebSub subscriptions (monitor.service.websub). Every instance of a cluster reads
    them, so any instance answers a hub's verification or delivery."""

    def subscription(self, subscription_id: str) -> Subscription | None:
        """The subscription of that callback id, or None."""
        ...

    def subscriptions(self, source: str | None = None) -> list[Subscription]:
        """All subscriptions (of `source`), newest request first."""
        ...

    def save_subscription(self, subscription: Subscription) -> None:
        """Insert or replace by id."""
        ...

    def delete_subscription(self, subscription_id: str) -> None: ...

    def take_upkeep(self, job: str, period: timedelta) -> bool:
        """Whether this process runs the periodic `job` now (WebSub renewals): always for a
        single-process store; in a cluster, one instance holds it for `period` at a time
        and keeps it while it lives, another takes it once that has run out."""
        ...


class HubClient(Protocol):
    """The subscriber's requests to a hub (monitor.adapters.hub)."""

    async def post_form(self, url: str, form: dict[str, str]) -> tuple[int, str]:
        """POST `form` (application/x-www-form-urlencoded) to `url`, following 307 and 308
        with the same POST; returns the final status and up to 1 KiB of its body. Raises
        MonitorError when no answer came."""
        ...


class StoreBackend(Store, DashboardStore, WebSubStore, Protocol):
    """A whole store as the composition root opens and keeps it (SqliteStore, PostgresStore):
    every seam above plus upkeep. tests/store_contract/ is the suite every backend passes."""

    def prune_text(self, before: datetime) -> int:
        """Drop the text of articles first seen before `before` (their ids stay known, so
        they never alert twice); how many were pruned."""
        ...

    def prune_sent_bodies(self, before: datetime) -> int:
        """Drop the bodies of messages delivered or given up on before `before` (pending
        ones keep theirs; the rows stay for rate limits); how many were emptied."""
        ...

    def host_turns(self) -> HostTurns | None:
        """The cluster-wide per-host manners for the fetcher, None when one process polls
        (its fetcher's own manners are enough)."""
        ...

    def heartbeat(self, now: datetime) -> None:
        """Tell the others this process is alive and renew its leases and claims (a
        running daemon calls it every few seconds; a no-op for a single-process backend)."""
        ...

    def close(self) -> None:
        """Close after any transaction still open in another thread has ended (a cluster
        instance gives back its leases first)."""

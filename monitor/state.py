"""Records that pass between the core and the adapters: fetch responses, source state, outbox."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = [
    "Delivery",
    "FeedHints",
    "FetchResponse",
    "FollowUp",
    "MatchRecord",
    "SendResult",
    "SourceRank",
    "SourceState",
    "StoryCopy",
    "Subscription",
]


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """What a fetch brought back; `content` is empty on 304 Not Modified."""

    url: str
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    truncated: bool = False
    redirects: tuple[int, ...] = ()

    @property
    def moved_permanently(self) -> bool:
        """Redirected, and every hop was permanent (301 or 308)."""
        return bool(self.redirects) and all(code in (301, 308) for code in self.redirects)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass(frozen=True, slots=True)
class FeedHints:
    """How often a feed says it changes: RSS <ttl>, sy:updatePeriod/Frequency, skip lists."""

    ttl: timedelta | None = None
    update_period: timedelta | None = None
    skip_hours: frozenset[int] = frozenset()
    skip_days: frozenset[int] = frozenset()  # 0 = Monday, as datetime.weekday()


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the store remembers about one source between fetches.

    `url` is the configured URL (a change in the config starts the source afresh);
    `fetch_url` is where a permanent redirect moved it. `next_fetch_at` is our schedule
    (interval or error backoff); `not_before` is the publisher's floor (Retry-After,
    Cache-Control, <ttl>), which even `run --once` respects.
    """

    name: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_fetch_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_result: str | None = None
    error_count: int = 0
    next_fetch_at: datetime | None = None
    items_seen: int = 0
    fetch_url: str | None = None
    not_before: datetime | None = None
    failing_since: datetime | None = None
    failure_reported: bool = False
    disabled: str | None = None
    hints: FeedHints = field(default_factory=FeedHints)

    @property
    def never_fetched(self) -> bool:
        return self.last_ok_at is None


SourceRank = tuple[str, int, int, int, int]
"""(name, error streak, disabled, ever fetched, hit): what the dashboard sorts, filters and
counts thousands of sources by, read cheaply for all of them. `hit` (1 or 0) says whether a
filter text occurs in the source's name, URL or last result."""


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """A rule's match; `story_id` is the first article of the story this one belongs to."""

    article_id: str
    rule: str
    terms: tuple[str, ...]
    matched_at: datetime
    story_id: str = ""
    fingerprint: bytes = b""
    source: str = ""
    explanation: str = ""


@dataclass(frozen=True, slots=True)
class StoryCopy:
    """One matched article of a story, as an "also reported by" message lists it."""

    article_id: str
    source: str
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The coalesced "also reported by" message of a story for one target, queued once the
    story has been quiet until `due_at` (each later copy moves it on)."""

    rule: str
    story_id: str
    target: str
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox entry: a rendered message for one (article, rule, target)."""

    id: str
    article_id: str
    rule: str
    target: str
    title: str
    body: str
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    url: str = ""
    body_format: str = "markdown"
    article_title: str = ""


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class InstanceInfo:
    """One `monitor run` process of a cluster sharing a database (`monitor status`)."""

    name: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    leases: int = 0
    stopped_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    """One WebSub subscription (or attempt), keyed by its callback's unguessable id.

    `state`: pending (asked, not yet verified), active, denied (the hub refused; `error`
    holds its reason), failing (the hub's answer was an error; retried at `renew_at`),
    unsubscribing (asked to end; verified and then deleted), retired (replaced by a newer
    subscription of the source; still accepts content until `expires_at`)."""

    id: str
    source: str
    topic: str
    hub: str
    secret: str = field(repr=False)
    state: str = "pending"
    requested_at: datetime | None = None
    verified_at: datetime | None = None
    expires_at: datetime | None = None
    renew_at: datetime | None = None
    error: str | None = None
    pushed_at: datetime | None = None
    pushes: int = 0

"""Records that pass between the core and the adapters: fetch responses, source state, outbox."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Delivery", "FetchResponse", "MatchRecord", "SendResult", "SourceState"]


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """What a fetch brought back; `content` is empty on 304 Not Modified."""

    url: str
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    truncated: bool = False

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
class SourceState:
    """What the store remembers about one source between fetches."""

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

    @property
    def never_fetched(self) -> bool:
        return self.last_ok_at is None


@dataclass(frozen=True, slots=True)
class MatchRecord:
    article_id: str
    rule: str
    terms: tuple[str, ...]
    matched_at: datetime


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


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    error: str | None = None

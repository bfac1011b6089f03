"""Records the contract tests build."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.model import Article
from monitor.state import Delivery, MatchRecord

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def delivery(id: str, target: str = "hook", article_id: str = "a1") -> Delivery:
    return Delivery(id, article_id, "rule", target, "title", "body", NOW)


def article(id: str, source: str = "s", title: str = "A") -> Article:
    return Article(id=id, url=f"https://example.com/{id}", source=source, title=title)


def match(article_id: str, rule: str = "rule", at: datetime = NOW, **kw: object) -> MatchRecord:
    return MatchRecord(article_id, rule, ("A",), at, **kw)  # type: ignore[arg-type]

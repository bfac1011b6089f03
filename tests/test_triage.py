"""Intake (matching.intake): which items are new, which may alert, which rules match."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.config.schema import Rule
from monitor.matching.intake import Matcher, triage
from monitor.model import Article
from monitor.rules import compile_query

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def article(id: str, published: datetime | None, **fields: object) -> Article:
    defaults: dict[str, object] = {"url": f"https://example.com/{id}", "source": "s", "title": id}
    return Article(id=id, published=published, **{**defaults, **fields})  # type: ignore[arg-type]


def test_first_fetch_alerts_only_recent_items_and_never_undated_ones() -> None:
    items = [
        article("fresh", NOW - timedelta(hours=2)),
        article("old", NOW - timedelta(days=3)),
        article("undated", None),
    ]

    intake = triage(items, known=set(), first_fetch=True, now=NOW, backfill=timedelta(hours=24))

    assert [(i.article.id, i.alert) for i in intake] == [
        ("fresh", True),
        ("old", False),
        ("undated", False),
    ]


def test_later_fetches_alert_every_new_item_and_skip_known_and_repeated_ones() -> None:
    items = [article("a", None), article("b", NOW - timedelta(days=30)), article("a", None)]

    intake = triage(items, known={"b"}, first_fetch=False, now=NOW, backfill=timedelta(0))

    assert [(i.article.id, i.alert) for i in intake] == [("a", True)]


def test_rules_filter_by_source_glob_and_language() -> None:
    query = compile_query("Japan")
    rules = [
        Rule("any", query, ("console",)),
        Rule("guardian", query, ("console",), sources=("guardian-*",)),
        Rule("french", query, ("console",), languages=("fr",)),
    ]
    item = article("x", None, title="Japan", source="bbc-asia", language="en")

    assert [rule.name for rule, _ in Matcher(rules).match(item)] == ["any"]

"""Intake of a poll's items: which are new, which may alert, which rules match them. Pure."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.config.schema import Rule
from monitor.model import Article
from monitor.rules import Document, Explanation, RuleIndex

__all__ = ["Intake", "Matcher", "may_alert", "triage"]


@dataclass(frozen=True, slots=True)
class Intake:
    """A newly seen article and whether it may alert (backfill decides on a first fetch)."""

    article: Article
    alert: bool


def triage(
    articles: Iterable[Article],
    *,
    known: Collection[str],
    first_fetch: bool,
    now: datetime,
    backfill: timedelta,
) -> list[Intake]:
    """Keep articles not seen before, once each.

    On a source's first fetch only items published within `backfill` alert, so adding a
    source does not flood a channel with its archive; undated items are recorded silently.
    """
    fresh: list[Intake] = []
    seen: set[str] = set(known)
    for article in articles:
        if article.id in seen:
            continue
        seen.add(article.id)
        alert = may_alert(article, first_fetch=first_fetch, now=now, backfill=backfill)
        fresh.append(Intake(article, alert))
    return fresh


def may_alert(article: Article, *, first_fetch: bool, now: datetime, backfill: timedelta) -> bool:
    """Whether a new article alerts: always, except on its source's first fetch, where only
    one published within `backfill` does."""
    return not first_fetch or (
        article.published is not None and article.published >= now - backfill
    )


class Matcher:
    """Every rule compiled into one index: per article only candidate rules are evaluated."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self.index = RuleIndex((rule.name, rule.query) for rule in rules)
        self._everywhere = frozenset(r.name for r in rules if not r.sources and not r.languages)

    def match(
        self, article: Article, document: Document | None = None
    ) -> list[tuple[Rule, Explanation]]:
        """The rules that match `article` (and apply to its source and language);
        `document` is the article's, if its caller built it already."""
        document = document or Document.from_article(article)
        rules, everywhere = self.rules, self._everywhere
        source, language = article.source, article.language
        return [
            (rules[name], explanation)
            for name, explanation in self.index.match(document)
            if name in everywhere or rules[name].applies_to(source, language)
        ]

    def match_names(self, article: Article, document: Document) -> list[tuple[str, Explanation]]:
        """As `match`, by rule name (what a backtest writes): when every rule applies
        everywhere, the index's list itself."""
        found = self.index.match(document)
        if len(self._everywhere) == len(self.rules):
            return found
        rules, everywhere = self.rules, self._everywhere
        source, language = article.source, article.language
        return [
            (name, explanation)
            for name, explanation in found
            if name in everywhere or rules[name].applies_to(source, language)
        ]

"""The queries the CLI uses (and the web will): read-only views over the store, the rules
and documents, and a test message. Each takes the collaborators it needs (a store, a
notifier, a fetcher factory) from its caller; daemon.py builds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta

from monitor.config.schema import Config, Rule, Target, default_user_agent
from monitor.delivery.markup import body_format
from monitor.matching.intake import Matcher
from monitor.model import Article
from monitor.ports import Notifier, QueryStore, TargetDirectory
from monitor.rules import Document, Explanation, lint_query, mark_snippet
from monitor.state import Delivery, MatchRecord, SendResult, SourceState

__all__ = [
    "MatchFound",
    "dead_deliveries",
    "describe_targets",
    "match_articles",
    "match_stream",
    "recent_matches",
    "rule_warnings",
    "send_test",
    "source_states",
    "stored_articles",
]


def rule_warnings(config: Config) -> list[tuple[str, str]]:
    """(rule, warning) for rules that look like mistakes or cannot be indexed."""
    warnings = [(rule.name, text) for rule in config.rules for text in lint_query(rule.query)]
    for rule in config.rules:
        if rule.sources and not any(rule.applies_to(s.name, None) for s in config.sources):
            globs = ", ".join(rule.sources)
            warnings.append((rule.name, f"sources {globs} match no source: it never applies"))
    for name in Matcher(config.rules).index.always_evaluated:
        warnings.append((name, "cannot be indexed: it is evaluated for every article"))
    return warnings


def describe_targets(directory: TargetDirectory, config: Config) -> dict[str, str]:
    """Each configured target as the notifier describes it (its service, never its secrets)."""
    return {name: directory.describe(name) for name in config.targets}


def send_test(notifier: Notifier, target: Target, now: datetime) -> SendResult:
    """Send the test message of `monitor notify-test` to `target`, in its markup."""
    from monitor.delivery.render import render_test

    message = render_test(target.name, default_user_agent(), now, target.markup)
    return notifier.send(target.name, message.title, message.body, body_format(target.markup))


class MatchFound:
    """One (rule, article) match: the matched terms with their fields at once, the snippet
    only when asked for (it is the costly part, and only some outputs show it)."""

    __slots__ = ("_document", "_snippet", "article", "explanation", "rule")

    def __init__(
        self, rule: str, article: Article, explanation: Explanation, document: Document
    ) -> None:
        self.rule = rule
        self.article = article
        self.explanation = explanation
        self._document = document
        self._snippet: str | None = None

    @property
    def terms(self) -> tuple[str, ...]:
        return self.explanation.terms

    @property
    def matched(self) -> str:
        """`Japan (title, body), summit (body)`: each term with the fields it matched in."""
        return self.explanation.summary()

    @property
    def snippet(self) -> str:
        """The article around the match, matched words marked (computed once, on first use,
        from the one `Document` the article was matched on)."""
        if self._snippet is None:
            self._snippet = mark_snippet(self._document, self.explanation)
        return self._snippet


def match_articles(
    articles: Iterable[Article],
    rules: list[Rule],
    progress: Callable[[int], None] | None = None,
) -> list[MatchFound]:
    """Every (rule, article) match, as a list (see `match_stream`)."""
    return list(match_stream(articles, rules, progress))


def match_stream(
    articles: Iterable[Article],
    rules: Sequence[Rule] | Matcher,
    progress: Callable[[int], None] | None = None,
) -> Iterator[MatchFound]:
    """Each (rule, article) match as soon as its article is matched; `progress(n)` after
    the n-th article. Each article's `Document` is built once, for matching, explanation
    and snippet, and dropped with the article's matches."""
    for article, document, found in match_groups(articles, rules, progress):
        for name, why in found:
            yield MatchFound(name, article, why, document)


def match_groups(
    articles: Iterable[Article],
    rules: Sequence[Rule] | Matcher,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[Article, Document, list[tuple[str, Explanation]]]]:
    """As `match_stream`, one article at a time: the article, its `Document` and the
    names of the rules it matched with their explanations (nothing made per match but
    the explanation: a backtest of 100,000 rules makes a thousand an article)."""
    matcher = rules if isinstance(rules, Matcher) else Matcher(rules)
    for count, article in enumerate(articles, 1):
        document = Document.from_article(article)
        found = matcher.match_names(article, document)
        if found:
            yield article, document, found
        if progress is not None:
            progress(count)


def stored_articles(
    store: QueryStore, since: timedelta, now: datetime
) -> tuple[int, Iterator[Article]]:
    """How many articles the store kept from the last `since`, and the articles themselves
    (read lazily: consume them before the store is closed)."""
    start = now - since
    return store.count_articles_since(start), iter(store.articles_since(start))


def source_states(store: QueryStore) -> list[SourceState]:
    """For `status`, which reports a damaged database rather than a healthy-looking table."""
    store.check_integrity()
    return store.source_states()


def recent_matches(store: QueryStore, limit: int = 10) -> list[tuple[MatchRecord, str, str]]:
    return store.recent_matches(limit)


def dead_deliveries(store: QueryStore, limit: int = 20) -> list[Delivery]:
    return store.dead_deliveries(limit)

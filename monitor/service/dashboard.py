"""The dashboard's and health checks' reads (re-exported by monitor.service.queries):
source rows failing first, recent matches with snippets, stories, the outbox, readiness,
and the rule tester. Pure over a DashboardStore; `now` is passed in.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.config.schema import Config
from monitor.model import Article, Block, format_time
from monitor.ports import DashboardStore, Fetcher, TargetDirectory
from monitor.rules import Document, Explanation, RuleSyntaxError, compile_query, mark_snippet
from monitor.service.collect import read_document
from monitor.state import Delivery, SourceState, StoryCopy

__all__ = [
    "MARK",
    "SHOW",
    "MatchRow",
    "OutboxView",
    "Readiness",
    "RuleTest",
    "SourcePage",
    "SourceRow",
    "StoryRow",
    "fetch_articles",
    "instance_rows",
    "masked_targets",
    "match_rows",
    "outbox_view",
    "readiness",
    "retry_delivery",
    "source_page",
    "source_rows",
    "story_rows",
    "text_article",
    "try_rule",
]

MARK = ("\ue000", "\ue001")
"""What a snippet's matched words are wrapped in (private-use characters; the web turns
them into <mark> after escaping the text)."""
OVERDUE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class SourceRow:
    name: str
    url: str
    enabled: bool
    failing: bool
    result: str
    last_fetch_at: datetime | None
    last_ok_at: datetime | None
    next_check: datetime | None
    errors: int
    failing_since: datetime | None
    items_seen: int


SHOW = ("all", "failing", "ok", "disabled")


@dataclass(frozen=True, slots=True)
class SourcePage:
    rows: list[SourceRow]
    total: int
    failing: int
    matching: int
    """How many sources pass the filter (over all pages)."""
    page: int
    pages: int


def source_page(
    store: DashboardStore,
    config: Config,
    *,
    text: str = "",
    show: str = "all",
    page: int = 1,
    per_page: int = 100,
) -> SourcePage:
    """One page of the configured sources: failing (or disabled) first, the longest error
    streak first, then by name; filtered by `text` (in name, URL or last result) and `show`
    (one of SHOW). Sorting and filtering read brief ranks; only the page's states are read
    whole."""
    wanted = text.strip()
    ranks = {rank[0]: rank for rank in store.source_ranks(wanted)}
    folded = wanted.casefold()
    keyed = []
    failing_total = 0
    for source in config.sources:
        name = source.name
        rank = ranks.get(name)
        if rank is None:  # never polled: only its name and URL can match
            errors, disabled = 0, False
            hit = not folded or any(
                folded in value
                for value in (name.casefold(), source.url.casefold(), "never fetched")
            )
        else:
            _, errors, off_flag, _, hit_flag = rank
            disabled, hit = bool(off_flag), bool(hit_flag)
        failing = disabled or errors > 0
        failing_total += failing
        if not hit:
            continue
        if show != "all":
            off = disabled or not source.enabled
            if (
                (show == "failing" and not failing)
                or (show == "disabled" and not off)
                or (show == "ok" and (failing or off))
            ):
                continue
        keyed.append((not failing, -errors, name, source))
    keyed.sort(key=lambda key: key[:3])
    pages = max(1, -(-len(keyed) // per_page))
    page = min(max(1, page), pages)
    shown = [key[3] for key in keyed[(page - 1) * per_page : page * per_page]]
    states = {state.name: state for state in store.source_states_named([s.name for s in shown])}
    rows = [_source_row(s.name, s.url, s.enabled, states.get(s.name)) for s in shown]
    return SourcePage(rows, len(config.sources), failing_total, len(keyed), page, pages)


def source_rows(store: DashboardStore, config: Config) -> list[SourceRow]:
    """Every configured source with its stored state, in the dashboard's order."""
    everything = source_page(store, config, per_page=max(1, len(config.sources)))
    return everything.rows


def _source_row(name: str, url: str, enabled: bool, state: SourceState | None) -> SourceRow:
    if state is None:
        state = SourceState(name, url, last_result="never fetched")
    due = [t for t in (state.next_fetch_at, state.not_before) if t is not None]
    active = enabled and not state.disabled
    return SourceRow(
        name=name,
        url=state.fetch_url or url,
        enabled=active,
        failing=bool(state.disabled) or state.error_count > 0,
        result=state.disabled or state.last_result or "",
        last_fetch_at=state.last_fetch_at,
        last_ok_at=state.last_ok_at,
        next_check=max(due, default=None) if active else None,
        errors=state.error_count,
        failing_since=state.failing_since,
        items_seen=state.items_seen,
    )


@dataclass(frozen=True, slots=True)
class MatchRow:
    rule: str
    title: str
    url: str
    source: str
    matched_at: datetime
    terms: tuple[str, ...]
    explanation: str
    snippet: str
    """With matched words wrapped in MARK."""


def match_rows(store: DashboardStore, config: Config, limit: int = 50) -> list[MatchRow]:
    """The newest matches, each with the words that matched quoted in context."""
    queries = {rule.name: rule.query for rule in config.rules}
    rows = []
    for rule, explanation, matched_at, article in store.recent_match_articles(limit):
        if article is None:
            continue
        query = queries.get(rule)
        doc = Document.from_article(article)
        why = query.explain(doc) if query is not None else None
        terms = why.terms if why is not None else ()
        snippet = mark_snippet(doc, why or Explanation(()), mark=MARK)
        summary = explanation or (why.summary() if why is not None else "")
        rows.append(MatchRow(rule, article.title, article.url, article.source, matched_at,
                             terms, summary, snippet))  # fmt: skip
    return rows


def _snippet(article: Article, why: Explanation | None) -> str:
    doc = Document.from_article(article)
    return mark_snippet(doc, why or Explanation(()), mark=MARK)


@dataclass(frozen=True, slots=True)
class StoryRow:
    rule: str
    title: str
    copies: tuple[StoryCopy, ...]

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(copy.source for copy in self.copies))


def story_rows(store: DashboardStore, limit: int = 20) -> list[StoryRow]:
    """The newest stories, each with every source that carried it."""
    return [
        StoryRow(rule, copies[0].title, tuple(copies))
        for rule, copies in store.recent_stories(limit)
        if copies
    ]


@dataclass(frozen=True, slots=True)
class OutboxView:
    pending: list[Delivery]
    dead: list[Delivery]
    pending_total: int
    dead_total: int
    targets: dict[str, str] = field(default_factory=dict)
    """Target name -> its service and masked URL."""


def masked_targets(directory: TargetDirectory, config: Config) -> dict[str, str]:
    """Each target as the notifier describes it, masked: never its secrets."""
    return {name: directory.describe(name) for name in config.targets}


def outbox_view(
    store: DashboardStore, directory: TargetDirectory, config: Config, limit: int = 50
) -> OutboxView:
    pending_total, dead_total = store.outbox_counts()
    return OutboxView(
        store.pending_page(limit),
        store.dead_deliveries(limit),
        pending_total,
        dead_total,
        masked_targets(directory, config),
    )


def retry_delivery(store: DashboardStore, delivery_id: str, now: datetime) -> bool:
    """Queue a dead delivery again, due now; False if no dead delivery has that id."""
    return store.retry_dead(delivery_id, now)


def instance_rows(store: DashboardStore) -> list[dict[str, object]]:
    """The cluster's instances as the dashboard lists them (newest heartbeat first): name,
    host, pid, last heartbeat, poll leases held, running or stopped."""
    return [
        {
            "instance": i.name,
            "host": i.host,
            "pid": i.pid,
            "last heartbeat": format_time(i.heartbeat_at),
            "leases": i.leases,
            "state": "stopped" if i.stopped_at else "running",
        }
        for i in store.instances()
    ]


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reasons: tuple[str, ...] = ()
    overdue: tuple[str, ...] = ()


def readiness(
    store: DashboardStore,
    config: Config,
    *,
    scheduler_running: bool,
    started_at: datetime,
    now: datetime,
    overdue_after: timedelta = OVERDUE_AFTER,
) -> Readiness:
    """Ready when the store answers, the scheduler runs and no enabled source's poll is
    overdue by more than `overdue_after` (counted from the start for polls due before it)."""
    reasons = []
    if not scheduler_running:
        reasons.append("scheduler not running")
    try:
        store.ping()
        # Overdue: max(due, started_at) < now - overdue_after (none so soon after the start).
        late = now - overdue_after
        late_names = set(store.overdue_sources(late)) if started_at < late else set()
    except Exception as exc:  # any failure of the store is the answer, not a crash
        reasons.append(f"store not answering: {exc}")
        late_names = set()
    overdue = [s.name for s in config.sources if s.enabled and s.name in late_names]
    if overdue:
        shown = ", ".join(overdue[:5]) + (" …" if len(overdue) > 5 else "")
        reasons.append(f"{len(overdue)} polls overdue by more than {overdue_after}: {shown}")
    return Readiness(not reasons, tuple(reasons), tuple(overdue))


@dataclass(frozen=True, slots=True)
class RuleTest:
    query: str
    canonical: str = ""
    error: str = ""
    pointer: str = ""
    """The query line with a caret under the offending character."""
    matches: tuple[tuple[Article, tuple[str, ...], str, str], ...] = ()
    """(article, terms, explanation, snippet with MARK) for each article that matched."""
    tested: int = 0


def text_article(text: str) -> Article:
    """Pasted text as an article: the first line is its title, the rest its body."""
    lines = text.strip().splitlines()
    title = lines[0].strip() if lines else ""
    paragraphs = [p.strip() for p in "\n".join(lines[1:]).split("\n\n") if p.strip()]
    body = tuple(Block("paragraph", " ".join(p.split())) for p in paragraphs)
    return Article(id="pasted", url="", source="pasted", title=title, body=body)


def try_rule(query_text: str, articles: list[Article]) -> RuleTest:
    """Parse `query_text`; with no error, evaluate it on each article and explain matches."""
    try:
        query = compile_query(query_text)
    except RuleSyntaxError as exc:
        return RuleTest(query_text, error=str(exc), pointer=exc.pointer(query_text))
    found = []
    for article in articles:
        why = query.explain(Document.from_article(article))
        if why is not None:
            found.append((article, why.terms, why.summary(), _snippet(article, why)))
    return RuleTest(query_text, query.canonical(), matches=tuple(found), tested=len(articles))


async def fetch_articles(fetcher: Fetcher, url: str) -> list[Article]:
    """The articles of the feed or page at `url` (OSError or FetchError when it cannot
    be read)."""
    response = await fetcher.fetch(url)
    if response.status != 200:
        raise OSError(f"HTTP {response.status}")
    reading = await asyncio.to_thread(read_document, response, "tested")
    return list(reading.articles)

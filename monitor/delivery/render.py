"""Messages in each target's markup: alerts (through templates), "and N more" folds,
digests, follow-ups and source-failure notices. Article text stays data: every untrusted
string passes through `monitor.delivery.markup` (the one escaping stack) for its target."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.config.schema import Rule, Target
from monitor.delivery.markup import (
    Markup,
    escape,
    escape_title,
    fit,
    fit_title,
    limit_for,
    link_line,
    safe_url,
)
from monitor.delivery.templates import AlertContext, Message, render_message
from monitor.model import Article
from monitor.rules import Document, Explanation, mark_snippet
from monitor.state import StoryCopy

__all__ = [
    "Folded",
    "Message",
    "render_alert",
    "render_digest",
    "render_fold",
    "render_follow_up",
    "render_source_failure",
    "render_test",
    "snippet",
]

_TEXT_FIELDS = ("lede", "body")


def snippet(article: Article, why: Explanation) -> str:
    """The passage of the lede or body around the match's best hits, else the start of the
    lede or body; "" for an article with neither (its title is shown anyway).

    The one snippet builder is `monitor.rules.mark_snippet` (also behind `monitor match`),
    here unmarked, since the template escapes it for the target.
    """
    if not article.lede and not article.body:
        return ""
    hits = tuple(hit for hit in why.hits if hit.field in _TEXT_FIELDS)
    document = Document.from_article(article)
    return mark_snippet(document, Explanation(why.terms, hits), mark=("", ""))


def render_alert(
    article: Article,
    rule: Rule,
    why: Explanation,
    source_label: str,
    target: Target,
) -> Message:
    """One alert for one target, in its markup, through the rule's or target's templates
    (the rule's win) or the defaults. Raises TemplateError if a custom template fails.

    "Matched:" says which terms matched in which fields: "Japan (title), abduction (body)".
    """
    context = AlertContext.from_article(
        article,
        rule.name,
        why.terms,
        source=source_label,
        snippet=snippet(article, why),
        matched=why.summary(),
    )
    return render_message(
        context,
        target.markup,
        rule.templates.title or target.templates.title,
        rule.templates.body or target.templates.body,
        limit=limit_for(target.url),
    )


def render_source_failure(
    name: str, url: str, error: str, failing_for: timedelta, markup: Markup
) -> Message:
    """The notice sent to `failures_to` when a source has failed for too long."""
    hours = failing_for.total_seconds() / 3600
    since = f"for {hours:.0f} h" if hours >= 1 else "and cannot recover"
    headline = f"{_strong(name, markup)} has been failing {since}."
    result = f"Last result: {escape(error, markup)}"
    link = link_line(url, markup)
    if markup == "html":
        body = "\n".join([f"<p>{headline}</p>", f"<p>{result}</p>", link])
    else:
        body = "\n\n".join(part for part in (headline, result, link) if part)
    title = fit_title(escape_title(f"news-monitor: source {name} is failing", markup), markup)
    return Message(title=title, body=body)


def render_test(target: str, sender: str, now: datetime, markup: Markup) -> Message:
    """The message `monitor notify-test` sends: proof that alerts reach `target`."""
    lines = [
        f"{_strong('news-monitor test message', markup)}",
        escape("If you can read this, alerts for this target will arrive here.", markup),
        escape(f"Sent at {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC by {sender}", markup),
    ]
    body = "\n".join(f"<p>{line}</p>" for line in lines) if markup == "html" else "\n\n".join(lines)
    title = fit_title(escape_title(f"news-monitor test: {target}", markup), markup)
    return Message(title=title, body=body)


def _strong(text: str, markup: Markup) -> str:
    """Untrusted `text`, escaped and in bold where the markup has bold."""
    if markup == "html":
        return f"<strong>{escape(text, markup)}</strong>"
    if markup == "text":
        return escape(text, markup)
    return f"**{escape(text, markup)}**"


@dataclass(frozen=True, slots=True)
class Folded:
    """An alert held back by a rate limit or quiet hours, listed in another message."""

    title: str
    url: str


def render_fold(first: Message, rest: Sequence[Folded], markup: Markup) -> Message:
    """The first held alert in full, then "and N more" with each one's title and link."""
    heading = f"And {len(rest)} more:"
    title = f"{first.title} (and {len(rest)} more)"
    if markup == "html":
        items = "".join(_list_items(rest, markup))
        return Message(title, f"{first.body}<p><strong>{heading}</strong></p><ul>{items}</ul>")
    if markup == "text":
        return Message(title, "\n".join([first.body, "", heading, *_list_items(rest, markup)]))
    return Message(title, "\n".join([first.body, "", f"**{heading}**", *_list_items(rest, markup)]))


def _list_items(items: Sequence[Folded], markup: Markup) -> list[str]:
    """One list entry per item, "title: link" (the title alone without a link), escaped
    for `markup`."""
    entries = []
    for item in items:
        link = _item_link(item.url, markup)
        entry = f"{escape(item.title, markup)}: {link}" if link else escape(item.title, markup)
        entries.append(f"<li>{entry}</li>" if markup == "html" else f"- {entry}")
    return entries


def _item_link(url: str, markup: Markup) -> str:
    if not safe_url(url):
        return ""
    if markup == "html":
        return _html_link(url)
    return safe_url(url) if markup == "text" else link_line(url, markup)


def _html_link(url: str) -> str:
    safe = html.escape(safe_url(url), quote=True)
    return f'<a href="{safe}">{safe}</a>'


def render_digest(
    rule: str, items: Sequence[tuple[Article, Sequence[str]]], markup: Markup
) -> Message:
    """One message for a digest period: each story once, with the sources that carried it."""
    entries = []
    for article, sources in items:
        facts = [escape(", ".join(sources), markup)]
        if article.published:
            facts.append(f"{article.published.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
        lines = [_strong(article.title, markup), " · ".join(facts)]
        if safe_url(article.url):
            lines.append(_item_link(article.url, markup))
        if markup == "html":
            entries.append(f"<li>{'<br>'.join(lines)}</li>")
        else:
            entries.append("\n".join([f"- {lines[0]}", *(f"  {line}" for line in lines[1:])]))
    title = f"{len(items)} {'story' if len(items) == 1 else 'stories'} for {rule}"
    body = "\n".join(["<ul>", *entries, "</ul>"] if markup == "html" else entries)
    return Message(title=fit_title(escape_title(title, markup), markup), body=body)


def render_follow_up(
    story: StoryCopy,
    outlets: Sequence[StoryCopy],
    rule: str,
    markup: Markup,
    limit: int | None = None,
) -> Message:
    """The one note that other outlets carried a story already alerted (not a new alert):
    "Also reported by N outlets", then each outlet once with its headline and link."""
    count = f"{len(outlets)} {'outlet' if len(outlets) == 1 else 'outlets'}"
    title = fit_title(escape_title(f"Also reported by {count}: {story.title}", markup), markup)
    names = escape(", ".join(copy.source for copy in outlets), markup)
    listed = [Folded(f"{copy.source} — {copy.title}", copy.url) for copy in outlets]
    items = _list_items(listed, markup)
    note = escape(f"Same story as an earlier alert for {rule}; not a new alert.", markup)
    if markup == "html":
        heading = f"<p>Also reported by <strong>{count}</strong>: {names}</p>"
        parts, sep = [heading, "<ul>", *items, "</ul>", f"<p>{note}</p>"], "\n"
    else:
        parts, sep = [f"Also reported by {count}: {names}", "\n".join(items), note], "\n\n"
    return Message(title, fit(parts, limit or limit_for(markup), parts[-1], markup=markup, sep=sep))

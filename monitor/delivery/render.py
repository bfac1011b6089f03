"""Messages for each target's markup (alerts through templates). Article text stays data."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Literal

from monitor.config.schema import Rule, Target
from monitor.delivery.markup import (
    MarkupKind,
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
from monitor.rules import Explanation, normalize, tokenize
from monitor.sources.htmltext import clean_text
from monitor.state import StoryCopy

__all__ = [
    "BodyFormat",
    "Folded",
    "Message",
    "body_format",
    "neutralize",
    "render_alert",
    "render_digest",
    "render_fold",
    "render_follow_up",
    "render_source_failure",
    "snippet",
]

SNIPPET_WIDTH = 280
_MENTIONS = re.compile(r"@(everyone|here|channel|all)\b", re.IGNORECASE)
_MARKDOWN = re.compile(r"([\\`*_\[\]])")


BodyFormat = Literal["markdown", "html", "text"]


def neutralize(text: str) -> str:
    """Make untrusted text inert in markdown, HTML and chat markup.

    `<`, `>` and `&` become entities (Slack's own escaping, and safe in HTML), so
    `<!channel>` or `<http://evil|text>` cannot ping or link; `@everyone`-style mentions
    get a word joiner; markdown emphasis and link brackets are escaped.
    """
    text = clean_text(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MENTIONS.sub("@\u2060\\1", text)
    return _MARKDOWN.sub(r"\\\1", text)


def snippet(article: Article, terms: Sequence[str], width: int = SNIPPET_WIDTH) -> str:
    """The lede, or else the body sentence window around the first matched term."""
    if article.lede:
        return _shorten(article.lede, width)
    text = clean_text(article.body_text)
    wanted = [tokenize(term) for term in terms]
    words = text.split(" ")
    for index in range(len(words)):
        window = normalize(" ".join(words[index : index + 4]))
        if any(parts and " ".join(parts) in " ".join(tokenize(window)) for parts in wanted):
            start = max(0, index - 12)
            prefix = "… " if start else ""
            return _shorten(prefix + " ".join(words[start:]), width)
    return _shorten(text, width)


def _shorten(text: str, width: int) -> str:
    text = clean_text(text)
    if len(text) <= width:
        return text
    return text[: width - 1].rsplit(" ", 1)[0] + " …"


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
        snippet=snippet(article, why.terms),
        matched=why.summary(),
    )
    return render_message(
        context,
        target.kind,
        rule.templates.title or target.templates.title,
        rule.templates.body or target.templates.body,
        limit=limit_for(target.url),
    )


def body_format(kind: MarkupKind) -> BodyFormat:
    """What Apprise is told the body is: Slack's messages are CommonMark it converts."""
    return "html" if kind == "html" else "text" if kind == "text" else "markdown"


def neutralize_title(text: str) -> str:
    text = clean_text(text).replace("<", "‹").replace(">", "›")
    return _MENTIONS.sub("@\u2060\\1", text)


def _link(url: str) -> str:
    safe = url.replace(" ", "%20").replace("<", "%3C").replace(">", "%3E")
    return safe.replace("(", "%28").replace(")", "%29")


def render_source_failure(name: str, url: str, error: str, failing_for: timedelta) -> Message:
    """The notice sent to `failures_to` when a source has failed for too long."""
    hours = failing_for.total_seconds() / 3600
    since = f"for {hours:.0f} h" if hours >= 1 else "and cannot recover"
    body = "\n".join(
        [
            f"**{neutralize(name)}** has been failing {since}.",
            "",
            f"Last result: {neutralize(error)}",
            "",
            _link(url),
        ]
    )
    return Message(title=neutralize_title(f"news-monitor: source {name} is failing"), body=body)


@dataclass(frozen=True, slots=True)
class Folded:
    """An alert held back by a rate limit or quiet hours, listed in another message."""

    title: str
    url: str


def render_fold(first: Message, rest: Sequence[Folded], kind: MarkupKind) -> Message:
    """The first held alert in full, then "and N more" with each one's title and link."""
    heading = f"And {len(rest)} more:"
    title = f"{first.title} (and {len(rest)} more)"
    if kind == "html":
        items = "".join(_list_items(rest, kind))
        return Message(title, f"{first.body}<p><strong>{heading}</strong></p><ul>{items}</ul>")
    if kind == "text":
        return Message(title, "\n".join([first.body, "", heading, *_list_items(rest, kind)]))
    return Message(title, "\n".join([first.body, "", f"**{heading}**", *_list_items(rest, kind)]))


def _list_items(items: Sequence[Folded], kind: MarkupKind) -> list[str]:
    """One list entry per item, "title: link" (the title alone without a link), escaped
    for `kind`."""
    entries = []
    for item in items:
        link = _item_link(item.url, kind)
        entry = f"{escape(item.title, kind)}: {link}" if link else escape(item.title, kind)
        entries.append(f"<li>{entry}</li>" if kind == "html" else f"- {entry}")
    return entries


def _item_link(url: str, kind: MarkupKind) -> str:
    if not safe_url(url):
        return ""
    if kind == "html":
        return _html_link(url)
    return safe_url(url) if kind == "text" else link_line(url, kind)


def _html_link(url: str) -> str:
    safe = html.escape(safe_url(url), quote=True)
    return f'<a href="{safe}">{safe}</a>'


def render_digest(rule: str, items: Sequence[tuple[Article, Sequence[str]]]) -> Message:
    """One message for a digest period: each story once, with the sources that carried it."""
    lines = []
    for article, sources in items:
        lines.append(f"- **{neutralize(article.title)}**")
        facts = [neutralize(", ".join(sources))]
        if article.published:
            facts.append(f"{article.published.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
        lines.append(f"  {' · '.join(facts)}")
        if article.url:
            lines.append(f"  {_link(article.url)}")
    title = f"{len(items)} {'story' if len(items) == 1 else 'stories'} for {rule}"
    return Message(title=neutralize_title(title), body="\n".join(lines))


def render_follow_up(
    story: StoryCopy,
    outlets: Sequence[StoryCopy],
    rule: str,
    kind: MarkupKind,
    limit: int | None = None,
) -> Message:
    """The one note that other outlets carried a story already alerted (not a new alert):
    "Also reported by N outlets", then each outlet once with its headline and link."""
    count = f"{len(outlets)} {'outlet' if len(outlets) == 1 else 'outlets'}"
    title = fit_title(escape_title(f"Also reported by {count}: {story.title}", kind), kind)
    names = escape(", ".join(copy.source for copy in outlets), kind)
    listed = [Folded(f"{copy.source} — {copy.title}", copy.url) for copy in outlets]
    items = _list_items(listed, kind)
    note = escape(f"Same story as an earlier alert for {rule}; not a new alert.", kind)
    if kind == "html":
        heading = f"<p>Also reported by <strong>{count}</strong>: {names}</p>"
        parts, sep = [heading, "<ul>", *items, "</ul>", f"<p>{note}</p>"], "\n"
    else:
        parts, sep = [f"Also reported by {count}: {names}", "\n".join(items), note], "\n\n"
    return Message(title, fit(parts, limit or limit_for(kind), parts[-1], kind=kind, sep=sep))

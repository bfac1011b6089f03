"""Alert messages as markdown (Apprise converts per target). Article text stays data."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta

from monitor.htmltext import clean_text
from monitor.model import Article
from monitor.rules import normalize, tokenize

__all__ = [
    "Folded",
    "Message",
    "neutralize",
    "render_alert",
    "render_digest",
    "render_fold",
    "render_source_failure",
    "snippet",
]

SNIPPET_WIDTH = 280
_MENTIONS = re.compile(r"@(everyone|here|channel|all)\b", re.IGNORECASE)
_MARKDOWN = re.compile(r"([\\`*_\[\]])")


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str


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


def render_alert(article: Article, rule: str, terms: Sequence[str], source_label: str) -> Message:
    title = f"{clean_text(article.title)} [{rule}]"
    facts = [neutralize(source_label)]
    if article.published:
        facts.append(f"{article.published.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    if article.section:
        facts.append(neutralize(" › ".join(article.section)))
    lines = [f"**{neutralize(article.title)}**", " · ".join(facts), ""]
    text = snippet(article, terms)
    if text:
        lines += [neutralize(text), ""]
    if article.url:
        lines += [_link(article.url), ""]
    matched = ", ".join(neutralize(term) for term in terms)
    lines.append(f"Rule: {neutralize(rule)} · matched: {matched}")
    return Message(title=neutralize_title(title), body="\n".join(lines))


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


def render_fold(first: Message, rest: Sequence[Folded]) -> Message:
    """The first held alert in full, then "and N more" with each one's title and link."""
    lines = [first.body, "", f"**And {len(rest)} more:**"]
    lines += [f"- {neutralize(item.title)}: {_link(item.url)}" for item in rest]
    return Message(title=f"{first.title} (and {len(rest)} more)", body="\n".join(lines))


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

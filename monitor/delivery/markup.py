"""Markup per delivery target: which markup a target reads, escaping, size limits. Pure.

Four markups, each the *source* format we hand to Apprise (see docs/templates.md):

- ``slack``: CommonMark, declared to Apprise as ``NotifyFormat.MARKDOWN``. Apprise's Slack
  plugin converts CommonMark to Slack mrkdwn (``[t](u)`` -> ``<u|t>``, ``\\<`` -> ``&lt;``,
  ``&`` -> ``&amp;``). Never send Slack native mrkdwn undeclared (``body_format=None``): in
  Slack's default legacy mode Apprise then *re-creates* ``<!channel|...>`` from escaped
  text, so untrusted ``!channel|x`` would ping. The Slack title is plain text (Apprise
  escapes it).
- ``markdown``: CommonMark for Discord, Mattermost, Telegram, Teams workflows, Rocket.Chat,
  Google Chat, Matrix (``NotifyFormat.MARKDOWN``). Titles are escaped too: several of these
  plugins fold the title into the markdown body.
- ``html``: e-mail (``NotifyFormat.HTML``); Apprise sends multipart/alternative with a
  plain-text part it derives from our HTML (links lose their href, so show URLs as text).
- ``text``: everything else (console, json, ntfy, gotify, unknown schemes;
  ``NotifyFormat.TEXT``). Apprise escapes plain text itself if a target wants markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Literal, get_args
from urllib.parse import quote, urlsplit

from monitor.model import clean_text

__all__ = [
    "MARKUPS",
    "BodyFormat",
    "Markup",
    "body_format",
    "escape",
    "escape_title",
    "fit",
    "fit_title",
    "limit_for",
    "link_line",
    "markup_for",
    "measure",
    "safe_url",
    "shorten",
]

Markup = Literal["slack", "markdown", "html", "text"]
MARKUPS: tuple[Markup, ...] = get_args(Markup)
BodyFormat = Literal["markdown", "html", "text"]
"""What Apprise is told a body is (its NotifyFormat)."""

ELLIPSIS = "…"
WORD_JOINER = "\u2060"

_SCHEME_MARKUPS: dict[str, Markup] = {
    "slack": "slack",
    **dict.fromkeys(
        ("mailto", "mailtos", "mailgun", "sendgrid", "ses", "sparkpost", "smtp2go", "resend"),
        "html",
    ),
    **dict.fromkeys(("postmark", "brevo", "mailersend", "o365", "azure"), "html"),
    **dict.fromkeys(("discord", "mmost", "mmosts", "tgram", "msteams", "workflow"), "markdown"),
    **dict.fromkeys(("workflows", "rocket", "rockets", "gchat", "matrix", "matrixs"), "markdown"),
}
# Apprise also accepts these services' own https:// webhook URLs.
_NATIVE_HOSTS = {
    "hooks.slack.com": "slack",
    "hooks.slack-gov.com": "slack",
    "discord.com": "discord",
    "discordapp.com": "discord",
    "api.telegram.org": "tgram",
}
_MARKUP_LIMITS: dict[str, int] = {
    "slack": 3000,
    "markdown": 4000,
    "html": 100_000,
    "text": 4000,
}
_SCHEME_LIMITS: dict[str, int] = {
    "slack": 3000,
    "discord": 2000,
    "tgram": 4096,
    "mmost": 4000,
    "mmosts": 4000,
    "workflow": 1000,
    "workflows": 1000,
    "msteams": 1000,
    "rocket": 1000,
    "rockets": 1000,
    "pover": 1024,
}
_TITLE_LIMITS: dict[Markup, int] = {"slack": 150, "markdown": 250, "html": 250, "text": 250}

_ANY_MENTION = re.compile("@")  # also <@&role>, <@!id>: every @ gets a joiner
_BROADCAST = re.compile(r"@(?=(?:everyone|here|channel|all|room)\b)", re.IGNORECASE)
_MD_SPECIAL = re.compile(r"([\\`*_\[\](){}<>#~|!])|&(?=#?\w+;)")
_SLACK_SPECIAL = re.compile(r"([\\`*_\[\]<>#~])")
_URL_UNSAFE = frozenset('<>"`\\|{}()[]')
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)\b[^<>]*?(/?)>")
_VOID = frozenset(("br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base"))


def markup_for(apprise_url: str) -> Markup:
    """The markup we render for an Apprise URL (after ``${VAR}`` expansion).

    By scheme; ``https://hooks.slack.com/...`` and Discord/Telegram webhook URLs by host.
    A ``?format=text`` override on the URL selects plain text. Unknown: ``text``.
    """
    if re.search(r"[?&]format=text(?:&|$)", apprise_url, re.IGNORECASE):
        return "text"
    return _SCHEME_MARKUPS.get(_scheme(apprise_url), "text")


def body_format(markup: Markup) -> BodyFormat:
    """What Apprise is told the body is: Slack's messages are CommonMark it converts."""
    return "html" if markup == "html" else "text" if markup == "text" else "markdown"


def limit_for(target: str) -> int:
    """Body size limit for a markup (``"slack"``), a scheme (``"discord"``) or an Apprise URL."""
    if target in _MARKUP_LIMITS:
        return _MARKUP_LIMITS[target]
    scheme = _scheme(target) if "://" in target else target.lower()
    if scheme in _SCHEME_LIMITS:
        return _SCHEME_LIMITS[scheme]
    return _MARKUP_LIMITS[_SCHEME_MARKUPS.get(scheme, "text")]


def _scheme(apprise_url: str) -> str:
    """The Apprise scheme of a URL, mapping services' native https:// webhooks to theirs."""
    parts = urlsplit(apprise_url.strip())
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return _NATIVE_HOSTS.get((parts.hostname or "").lower(), scheme)
    return scheme


def fit_title(title: str, markup: Markup) -> str:
    """An (escaped) title cut at a word boundary to the markup's title limit, measured after
    Apprise's own escaping of Slack titles (``&`` -> ``&amp;``, ``<`` -> ``&lt;``)."""
    limit = _TITLE_LIMITS[markup]
    fitted = shorten(title, limit)
    while _title_size(fitted, markup) > limit:
        fitted = shorten(fitted, len(fitted) - (_title_size(fitted, markup) - limit))
    return fitted


def _title_size(title: str, markup: Markup) -> int:
    if markup != "slack":
        return len(title)
    return len(title) + 4 * title.count("&") + 3 * (title.count("<") + title.count(">"))


def escape(text: str, markup: Markup) -> str:
    """Untrusted text as inert data in `markup`'s markup (always on one line).

    - slack: CommonMark escapes for what Apprise's Slack converter honours (``\\<`` becomes
      ``&lt;``, so ``<!channel>`` and ``<http://x|y>`` stay text); every ``@`` gets a word joiner.
    - markdown: CommonMark backslash escapes of all markup punctuation (links, emphasis,
      ``<@id>``, spoilers) and entities; every ``@`` gets a word joiner (U+2060), so no
      ``@everyone``, ``@here``, ``@user``, ``<@&role>`` can ping.
    - html: ``html.escape`` (quotes too, so it is safe in attributes).
    - text: control characters only.
    All markups put a word joiner in ``@everyone``-style broadcasts (everyone, here, channel,
    all, room).
    """
    text = clean_text(text)
    if markup == "html":
        return html.escape(_BROADCAST.sub("@" + WORD_JOINER, text), quote=True)
    if markup == "text":
        return _BROADCAST.sub("@" + WORD_JOINER, text)
    if markup == "slack":
        text = _SLACK_SPECIAL.sub(r"\\\1", text)
    else:
        text = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)
    return _ANY_MENTION.sub("@" + WORD_JOINER, text)


def escape_title(text: str, markup: Markup) -> str:
    """A message title for `markup`: markdown titles are escaped (plugins fold them into the
    body); Slack and e-mail titles are plain text, which Apprise escapes itself (with word
    joiners in Slack ``@mentions`` and in broadcasts); text titles are escaped as text."""
    if markup in ("markdown", "text"):
        return escape(text, markup)
    mention = _ANY_MENTION if markup == "slack" else _BROADCAST
    return mention.sub("@" + WORD_JOINER, clean_text(text))


def safe_url(url: str) -> str:
    """An http(s) URL with markup-breaking characters percent-encoded; "" for other schemes."""
    url = clean_text(url).replace(" ", "")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    start = len(parts.scheme) + 3 + len(parts.netloc)
    return _encode(url[:start], _URL_UNSAFE - {"[", "]"}) + _encode(url[start:], _URL_UNSAFE)


def _encode(text: str, unsafe: frozenset[str]) -> str:
    """Percent-encode the `unsafe` characters ("[" "]" stay in an IPv6 host)."""
    return "".join(quote(ch, safe="") if ch in unsafe else ch for ch in text)


def link_line(url: str, markup: Markup) -> str:
    """The bare article link, as the last line of a message: an autolink in (Slack)
    markdown, an anchor showing the URL in HTML (so the plain-text part keeps it)."""
    url = safe_url(url)
    if not url:
        return ""
    if markup in ("slack", "markdown"):
        return f"<{url}>"
    if markup == "html":
        attr = html.escape(url, quote=True)
        return f'<p><a href="{attr}">{attr}</a></p>'
    return url


def measure(text: str, markup: Markup) -> int:
    """An upper bound on the size of `text` once Apprise has converted it for the target.

    Slack: ``&`` becomes ``&amp;`` and ``\\<``/``\\>`` become entities. Markdown: Telegram's
    MarkdownV2 may backslash-escape any ASCII punctuation.
    """
    if markup == "slack":
        return len(text) + 4 * text.count("&") + 2 * (text.count("\\<") + text.count("\\>"))
    if markup == "markdown":
        return len(text) + sum(1 for ch in text if ch.isascii() and not ch.isalnum() and ch > " ")
    return len(text)


def shorten(text: str, width: int) -> str:
    """Plain `text` cut at a word boundary to at most `width` characters, ending in "…"."""
    text = clean_text(text)
    if len(text) <= width:
        return text
    if width < 2:
        return ""
    head = text[: width - 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else head
    return cut.rstrip() + ELLIPSIS


def fit(
    parts: str | Sequence[str],
    limit: int,
    link: str,
    *,
    markup: Markup = "text",
    sep: str = "\n",
) -> str:
    """`parts` joined by `sep`, cut at a word boundary if over `limit`, then ending with `link`.

    A message within the limit is returned unchanged. Cutting never splits an escape or
    entity (they contain no spaces) nor, in HTML, a tag; unclosed HTML tags are closed.
    """
    text = parts if isinstance(parts, str) else sep.join(parts)
    if measure(text, markup) <= limit:
        return text
    joint = "\n" if markup == "html" else "\n\n"
    budget = limit - measure(f" {ELLIPSIS}{joint}{link}", markup)
    head = _cut(text, budget, markup) if budget > 0 else ""
    if markup == "html":
        head = head + f" {ELLIPSIS}" + _closing_tags(head) if head else ""
        while head and measure(f"{head}{joint}{link}", markup) > limit:
            head = _cut(head, len(head) - 16, markup)
            head = head + _closing_tags(head) if head else ""
    elif head:
        head += f" {ELLIPSIS}"
    if not head:
        return link if measure(link, markup) <= limit else link[:limit]
    return f"{head}{joint}{link}"


def _cut(text: str, budget: int, markup: Markup) -> str:
    """The longest prefix measuring at most `budget`, backed off to a word boundary."""
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if measure(text[:mid], markup) <= budget:
            low = mid
        else:
            high = mid - 1
    if low == len(text):
        return text.rstrip()
    head = text[:low]
    if markup == "html":
        head = _outside_tag(head)
    space = max(head.rfind(" "), head.rfind("\n"))
    if markup == "html":
        while space > 0 and _outside_tag(head[:space]) != head[:space]:
            space = max(head.rfind(" ", 0, space), head.rfind("\n", 0, space))
    if space > 0:
        head = head[:space]
    return head.rstrip()


def _outside_tag(head: str) -> str:
    """`head` without a trailing, unfinished ``<tag ...``."""
    start = head.rfind("<")
    return head[:start] if start > head.rfind(">") else head


def _closing_tags(fragment: str) -> str:
    """Closing tags for elements left open in an HTML fragment we generated."""
    stack: list[str] = []
    for closing, name, self_closing in _TAG.findall(fragment):
        name = name.lower()
        if self_closing or name in _VOID:
            continue
        if not closing:
            stack.append(name)
        elif name in stack:
            del stack[len(stack) - 1 - stack[::-1].index(name) :]
    return "".join(f"</{name}>" for name in reversed(stack))

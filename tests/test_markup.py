"""Markups, escaping and size limits (delivery.markup), checked against Apprise itself."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from apprise.plugins.discord import USER_ROLE_DETECTION_RE
from apprise.plugins.slack import NotifySlack

from monitor.delivery.markup import (
    MARKUPS,
    Markup,
    escape,
    escape_title,
    fit,
    fit_title,
    limit_for,
    link_line,
    markup_for,
    measure,
    safe_url,
    shorten,
)

HOSTILE = [
    "<!channel> breaking",
    "<!here|here> news",
    "<!everyone>",
    "hello @everyone and @here and @channel",
    "<http://evil.example|click here>",
    "[x](javascript:alert(1))",
    "![img](http://evil.example/p.png)",
    "</table><script>alert(1)</script>",
    "<@U123ABC> <@123456> <@&987> <#C123>",
    "**bold** _it_ ~strike~ `code` ||spoiler||",
    "# heading",
    "ctrl\x00\x01\x07\x1b[31m\x1f\x7f\x85 end",
    "rtl \u202egnp.exe\u202c and \u2066isolate\u2069",
    "&lt;!channel&gt; entity",
    "!channel|x> legacy",
    "back\\<!here\\> slash",
]
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


# Untyped libraries, used only to check what targets would really see.
markdown: Any = importlib.import_module("markdown")
_commonmark_to_slack: Any = NotifySlack._commonmark_to_slack


def slack_mrkdwn(commonmark: str) -> str:
    """What Apprise sends Slack for a body declared as markdown."""
    return str(_commonmark_to_slack(commonmark))


@pytest.mark.parametrize(
    ("url", "markup"),
    [
        ("slack://T1/B1/abc", "slack"),
        ("https://hooks.slack.com/services/T1/B1/abc", "slack"),
        ("mailto://user:pass@example.com", "html"),
        ("mailtos://example.com?to=a@example.com", "html"),
        ("discord://123/abc", "markdown"),
        ("https://discord.com/api/webhooks/123/abc", "markdown"),
        ("mmost://127.0.0.1:8065/token", "markdown"),
        ("mmosts://chat.example.com/token", "markdown"),
        ("tgram://123:abc/456", "markdown"),
        ("workflows://host:443/a/b", "markdown"),
        ("json://127.0.0.1:9000/hook", "text"),
        ("console://", "text"),
        ("ntfy://127.0.0.1/topic", "text"),
        ("https://example.com/some/hook", "text"),
        ("unknownscheme://x", "text"),
        ("slack://T1/B1/abc?format=text", "text"),
    ],
)
def test_markup_for_picks_the_markup_by_scheme_or_host(url: str, markup: Markup) -> None:
    assert markup_for(url) == markup


@pytest.mark.parametrize(
    ("target", "limit"),
    [
        ("slack", 3000),
        ("slack://T1/B1/abc", 3000),
        ("https://hooks.slack.com/services/T1/B1/abc", 3000),
        ("discord", 2000),
        ("https://discord.com/api/webhooks/1/x", 2000),
        ("tgram://123:abc/456", 4096),
        ("html", 100_000),
        ("mailto://example.com", 100_000),
        ("markdown", 4000),
        ("json://127.0.0.1/x", 4000),
        ("text", 4000),
    ],
)
def test_limit_for_markups_schemes_and_urls(target: str, limit: int) -> None:
    assert limit_for(target) == limit


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("markup", MARKUPS)
def test_escaped_text_has_no_control_characters_or_live_broadcasts(
    text: str, markup: Markup
) -> None:
    out = escape(text, markup)
    assert not CONTROL.search(out)
    for word in ("@everyone", "@here", "@channel"):
        assert word not in out


@pytest.mark.parametrize("text", HOSTILE)
def test_slack_escape_survives_apprise_conversion_as_plain_text(text: str) -> None:
    sent = slack_mrkdwn(escape(text, "slack"))
    assert "<" not in sent
    assert ">" not in sent
    assert "@everyone" not in sent


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_escape_renders_no_links_or_markup(text: str) -> None:
    rendered = markdown.markdown(escape(text, "markdown"))
    inner = rendered.removeprefix("<p>").removesuffix("</p>")
    assert "<" not in inner, rendered
    assert not USER_ROLE_DETECTION_RE.search(escape(text, "markdown"))


@pytest.mark.parametrize("text", HOSTILE)
def test_html_escape_leaves_no_tags_or_quotes(text: str) -> None:
    out = escape(text + " \"quoted\" 'single'", "html")
    assert "<" not in out
    assert '"' not in out
    assert "'" not in out


def test_text_escape_keeps_text_as_is_apart_from_controls() -> None:
    assert (
        escape("<b>a & b</b> *x* [y](z)\x07 a@b.org", "text") == "<b>a & b</b> *x* [y](z) a@b.org"
    )


def test_titles_are_plain_where_apprise_escapes_them_and_escaped_where_folded() -> None:
    hostile = "<!channel> *x* @everyone\x00"
    assert escape_title(hostile, "html") == "<!channel> *x* @\u2060everyone"
    assert escape_title(hostile, "slack") == "<!channel> *x* @\u2060everyone"
    assert escape_title(hostile, "markdown") == r"\<\!channel\> \*x\* @" + "\u2060everyone"


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,<script>", "ftp://x/y", "//evil", "", "http:"]
)
def test_safe_url_refuses_non_http_urls(url: str) -> None:
    assert safe_url(url) == ""


def test_safe_url_encodes_markup_breaking_characters() -> None:
    url = safe_url('https://ex.com/a b/<x>|(y)[z]`\\"?q=1&r=2\n')
    assert url == "https://ex.com/ab/%3Cx%3E%7C%28y%29%5Bz%5D%60%5C%22?q=1&r=2"
    assert safe_url("http://[::1]:8080/p") == "http://[::1]:8080/p"


def test_link_line_per_markup() -> None:
    url = "https://ex.com/a?x=1&y=2"
    assert link_line(url, "slack") == f"<{url}>"
    assert link_line(url, "markdown") == f"<{url}>"
    assert link_line(url, "text") == url
    assert link_line(url, "html") == (
        '<p><a href="https://ex.com/a?x=1&amp;y=2">https://ex.com/a?x=1&amp;y=2</a></p>'
    )
    assert link_line("javascript:alert(1)", "html") == ""


def test_shorten_cuts_at_a_word_boundary() -> None:
    assert shorten("alpha beta gamma", 100) == "alpha beta gamma"
    assert shorten("alpha beta gamma", 12) == "alpha beta…"
    assert shorten("alphabetagamma", 6) == "alpha…"


def test_fit_leaves_short_messages_alone() -> None:
    assert fit(["one", "two"], 100, "https://ex.com") == "one\ntwo"


def test_fit_cuts_at_word_boundary_and_ends_with_the_link() -> None:
    link = "https://ex.com/story"
    words = [f"word{i}" for i in range(500)]
    out = fit(" ".join(words), 300, link)
    assert len(out) <= 300
    assert out.endswith(link)
    head = out.removesuffix(link).rstrip().removesuffix("…").rstrip()
    assert head.split(" ")[-1] in words


def test_fit_for_slack_counts_apprise_entity_expansion() -> None:
    link = link_line("https://ex.com/story", "slack")
    body = escape("Tom & Jerry <b> " * 400, "slack")
    out = fit(body, 3000, link, markup="slack")
    sent = slack_mrkdwn(out)
    assert len(sent) <= 3000
    assert sent.endswith("<https://ex.com/story>")
    assert measure(out, "slack") >= len(sent)


def test_fit_for_markdown_allows_telegram_escaping() -> None:
    body = escape("a.b-c! " * 1000, "markdown")
    out = fit(body, 2000, "<https://ex.com>", markup="markdown")
    assert measure(out, "markdown") <= 2000
    assert out.endswith("<https://ex.com>")


def test_fit_for_html_never_cuts_inside_a_tag_and_closes_open_ones() -> None:
    link = link_line("https://ex.com/s", "html")
    paragraph = '<p class="x y z">' + " ".join(["text"] * 30) + "</p>\n"
    out = fit("<div>" + paragraph * 20 + "</div>", 500, link, markup="html")
    assert len(out) <= 500
    assert out.endswith(link)
    head = out.removesuffix(link)
    assert head.count("<p") == head.count("</p>")
    assert head.count("<div>") == head.count("</div>") == 1
    assert re.search(r"<[^>]*$", head) is None


def test_fit_title_respects_slack_header_limit_after_apprise_escaping() -> None:
    title = fit_title("A & B <x> " * 40, "slack")
    escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert len(escaped) <= 150
    assert title.endswith("…")

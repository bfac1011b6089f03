"""Jinja2 alert templates (delivery.templates): sandboxed, escaped per markup, cut to fit."""

from __future__ import annotations

import importlib
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from apprise.plugins.discord import USER_ROLE_DETECTION_RE
from apprise.plugins.slack import NotifySlack
from jinja2.exceptions import SecurityError

from monitor.delivery.markup import MARKUPS, Markup, limit_for, measure
from monitor.delivery.templates import (
    DEFAULT_BODIES,
    DEFAULT_TITLE,
    AlertContext,
    TemplateError,
    compile_template,
    render_message,
)
from monitor.model import Article

URL = "https://news.example.com/asia/japan-north-korea?id=1&ref=rss"
HOSTILE_TITLE = (
    "<!channel> Summit <!here> @everyone <http://evil.example|click> "
    "[x](javascript:alert(1)) </table><script>alert(1)</script> <@&42>\x00\x07\x1b[2J \u202eevil"
)
HOSTILE_LEDE = "Lede @here <@123> ||spoil|| **bold** `tick` ![i](http://evil.example/i.png)\x1f"
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def hostile_context(**changes: Any) -> AlertContext:
    values: dict[str, Any] = {
        "title": HOSTILE_TITLE,
        "url": URL,
        "source": "Wire <!channel>",
        "rule": "japan-nk",
        "published": datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        "section": ("World", "Asia <b>"),
        "lede": HOSTILE_LEDE,
        "terms": ("Japan", "North Korea"),
        "story_sources": ("Reuters", "@everyone Inc"),
    }
    values.update(changes)
    return AlertContext(**values)


# Untyped libraries, used only to check what targets would really see.
markdown: Any = importlib.import_module("markdown")
_commonmark_to_slack: Any = NotifySlack._commonmark_to_slack
_html_to_text: Any = importlib.import_module("apprise.conversion.format").html_to_text


def slack_mrkdwn(commonmark: str) -> str:
    """What Apprise sends Slack for a body declared as markdown."""
    return str(_commonmark_to_slack(commonmark))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.seen: set[str] = set()
        self.hrefs: list[str] = []
        self.balanced = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)
        self.hrefs += [value or "" for name, value in attrs if name == "href"]
        if tag not in ("meta", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.balanced = self.balanced and bool(self.open) and self.open.pop() == tag


def parse_html(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    parser.close()
    return parser


def test_default_templates_compile() -> None:
    compile_template(DEFAULT_TITLE)
    for markup in MARKUPS:
        compile_template(DEFAULT_BODIES[markup], name=markup)


def test_slack_default_has_no_live_ping_or_foreign_link() -> None:
    message = render_message(hostile_context(), "slack")
    sent = slack_mrkdwn(message.body)
    escaped_url = URL.replace("&", "&amp;")
    links = re.findall(r"<([^>]*)>", sent)
    assert len(links) == 2
    assert links[0].startswith(f"{escaped_url}|") and links[1] == escaped_url
    assert "<!" not in sent
    assert "@everyone" not in sent and "@here" not in sent
    assert not CONTROL.search(sent)
    assert sent.startswith(f"*<{URL.replace('&', '&amp;')}|")
    assert "2024-05-01 09:30 UTC" in sent
    assert "Matched: Japan, North Korea · rule japan-nk" in sent


def test_slack_title_is_plain_text_without_pings_or_controls() -> None:
    title = render_message(hostile_context(), "slack").title
    assert not CONTROL.search(title)
    assert "@everyone" not in title
    assert title.startswith("<!channel> Summit")  # Apprise escapes & < > in Slack titles
    assert title.endswith(("…", "[japan-nk]"))


def test_markdown_default_renders_only_our_links() -> None:
    message = render_message(hostile_context(), "markdown")
    rendered = markdown.markdown(message.body)
    assert re.findall(r'href="([^"]*)"', rendered) == [URL.replace("&", "&amp;")] * 2
    assert "<script" not in rendered and "<img" not in rendered and "<code" not in rendered
    assert "@everyone" not in message.body and "@here" not in message.body
    assert not USER_ROLE_DETECTION_RE.search(message.body)
    assert not CONTROL.search(message.body)


def test_markdown_title_is_escaped_because_plugins_fold_it_into_the_body() -> None:
    title = render_message(hostile_context(), "markdown").title
    rendered = markdown.markdown(title)
    assert "<a" not in rendered and "<script" not in rendered
    assert not USER_ROLE_DETECTION_RE.search(title)


def test_html_default_is_clean_html_with_the_escaped_title() -> None:
    message = render_message(hostile_context(), "html")
    body = message.body
    assert body.startswith("<!DOCTYPE html>")
    tags = parse_html(body)
    assert tags.balanced and not tags.open
    assert tags.seen <= {"html", "head", "meta", "body", "h2", "a", "p"}
    assert tags.hrefs == [URL, URL]
    assert "&lt;/table&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "Asia &lt;b&gt;" in body
    assert not CONTROL.search(body)
    assert message.title.startswith("<!channel> Summit")  # a subject line is plain text


def test_html_email_plain_text_part_keeps_the_link() -> None:
    body = render_message(hostile_context(), "html").body
    text = str(_html_to_text(body))  # what Apprise sends as the text/plain alternative
    assert text.rstrip().endswith(URL)
    assert "</table><script>alert(1)</script>" in text  # shown as text, not markup


def test_text_default_is_plain_and_safe() -> None:
    message = render_message(hostile_context(), "text")
    assert message.body.startswith("<!channel> Summit")
    assert message.body.endswith(URL)
    assert "@everyone" not in message.body + message.title
    assert not CONTROL.search(message.body + message.title)


@pytest.mark.parametrize("markup", MARKUPS)
def test_feed_text_is_never_a_template(markup: Markup) -> None:
    context = hostile_context(title="Result {{ 7*7 }} {% if 1 %}x{% endif %}", lede="{{ lede }}")
    message = render_message(context, markup)
    assert "49" not in message.title and "49" not in message.body
    plain = message.title.replace("\\", "")
    assert "{{ 7*7 }}" in plain and "{% if 1 %}" in plain


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ title.__class__.__base__.__subclasses__() }}",
        "{{ title_link.markup }}",
        "{% set items = [1] %}{{ items.append(2) }}",
        "{{ 'a' * 1000000000 }}",
        "{{ 10 ** 100000000 }}",
    ],
)
def test_sandbox_blocks_internals_mutation_and_bombs(template: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render_message(hostile_context(), "slack", body_template=template)
    assert isinstance(caught.value.__cause__, SecurityError)
    assert "unsafe" in str(caught.value)


@pytest.mark.parametrize("template", ["{{ title_link.format(title) }}", "{{ terms.append(1) }}"])
def test_trusted_links_and_lists_expose_no_methods(template: str) -> None:
    with pytest.raises(TemplateError, match="has no attribute"):
        render_message(hostile_context(), "slack", body_template=template)


@pytest.mark.parametrize("markup", MARKUPS)
def test_template_filters_cannot_unescape(markup: Markup) -> None:
    template = "{{ title | safe }}|{{ title_link | string }}|{{ title | e }}|{{ title ~ '' }}"
    body = render_message(hostile_context(), markup, body_template=template).body
    if markup == "slack":
        assert "<!" not in slack_mrkdwn(body)
        assert "<http" not in slack_mrkdwn(body)
    elif markup == "markdown":
        assert "<a" not in markdown.markdown(body)
    elif markup == "html":
        assert "<" not in body
    assert "@everyone" not in body


def test_custom_templates_get_documented_variables() -> None:
    context = hostile_context(title="Plain title", matched="Japan AND summit")
    message = render_message(
        context,
        "text",
        title_template="[{{ rule }}] {{ title | upper }}",
        body_template=(
            "{{ source }} | {{ published }} | {{ published_at.year }} | "
            "{{ section | join('/') }} | {{ terms | length }} | {{ matched }} | "
            "{{ story_sources | join(', ') }} | {{ kind }} | {{ url }}"
        ),
    )
    assert message.title == "[japan-nk] PLAIN TITLE"
    assert message.body == (
        "Wire <!channel> | 2024-05-01 09:30 UTC | 2024 | World/Asia <b> | 2 | "
        f"Japan AND summit | Reuters, @\u2060everyone Inc | text | {URL}"
    )


@pytest.mark.parametrize("markup", MARKUPS)
def test_the_markup_variable_names_the_targets_markup_as_kind_did(markup: Markup) -> None:
    body = render_message(hostile_context(), markup, body_template="{{ markup }}/{{ kind }}").body
    assert body == f"{markup}/{markup}"


def test_compile_reports_syntax_errors_with_line() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template("line one\n{% if title %}\nno end", name="body_template")
    assert caught.value.line == 3
    assert "body_template" in str(caught.value) and "line 3" in str(caught.value)


def test_compile_reports_unknown_variables_with_line() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template("{{ title }}\n\n{{ titel }}")
    assert caught.value.line == 3
    assert "'titel'" in caught.value.message


def test_compile_reports_unknown_filters() -> None:
    with pytest.raises(TemplateError, match="nofilter"):
        compile_template("{{ title | nofilter }}")


def test_compile_accepts_loop_and_set_variables() -> None:
    compile_template("{% set n = terms | length %}{% for t in terms %}{{ t }}{{ n }}{% endfor %}")


def test_render_errors_name_the_line() -> None:
    with pytest.raises(TemplateError) as caught:
        render_message(hostile_context(), "text", body_template="ok\n{{ title.missing }}")
    assert caught.value.line == 2
    assert "missing" in caught.value.message


def test_render_error_in_a_valid_template_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        render_message(hostile_context(), "text", body_template="{{ 1 // 0 }}")


def test_over_long_slack_body_fits_and_ends_with_the_link() -> None:
    lede = "Tokyo & Pyongyang <talks> continue. " * 400
    message = render_message(hostile_context(lede=lede), "slack")
    sent = slack_mrkdwn(message.body)
    assert len(sent) <= 3000
    assert sent.endswith(f"<{URL.replace('&', '&amp;')}>")
    assert "…" in sent
    assert "Matched: Japan, North Korea · rule japan-nk" in sent  # snippet shrank, not the rest


def test_over_long_template_text_is_cut_and_still_ends_with_the_link() -> None:
    template = "{{ title_link }}\n" + "filler words here " * 400 + "\n{{ link }}"
    body = render_message(hostile_context(), "slack", body_template=template).body
    assert measure(body, "slack") <= 3000
    assert body.endswith(f"<{URL}>")


def test_over_long_custom_template_without_link_gets_the_link() -> None:
    context = hostile_context(lede="word " * 2000)
    body = render_message(context, "text", body_template="{{ title }}\n{{ lede }}").body
    assert len(body) <= 4000
    assert body.endswith(f"…\n\n{URL}")


def test_discord_limit_is_respected() -> None:
    url = "discord://123/abc"
    context = hostile_context(lede="word " * 2000)
    body = render_message(context, "markdown", limit=limit_for(url)).body
    assert len(body) <= 2000
    assert body.endswith(f"<{URL}>")


def test_over_long_html_body_stays_balanced() -> None:
    body = render_message(hostile_context(lede="Long <p> text. " * 200), "html", limit=2000).body
    assert len(body) <= 2000
    tags = parse_html(body)
    assert tags.balanced and not tags.open
    assert tags.hrefs[-1] == URL


def test_slack_title_fits_the_header_block() -> None:
    title = render_message(hostile_context(title="Tom & Jerry <3 " * 30), "slack").title
    escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert len(escaped) <= 150
    assert title.endswith("…")


def test_non_http_article_urls_are_not_linked() -> None:
    message = render_message(hostile_context(url="javascript:alert(1)"), "markdown")
    assert "javascript" not in message.body.replace("javascript:alert", "", 1)
    assert "](" not in message.body
    assert "<a" not in markdown.markdown(message.body)


def test_context_from_article() -> None:
    article = Article(
        id="1",
        url=URL,
        source="bbc-asia",
        title="Japan and North Korea meet",
        published=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        section=("World", "Asia"),
        lede="Leaders met.",
    )
    context = AlertContext.from_article(
        article, "japan-nk", ["Japan"], source="BBC Asia", story_sources=["Reuters"]
    )
    assert context.source == "BBC Asia"
    assert context.snippet == "Leaders met."
    body = render_message(context, "text").body
    assert body.splitlines() == [
        "Japan and North Korea meet",
        "BBC Asia · 2024-05-01 09:30 UTC · World › Asia",
        "",
        "Leaders met.",
        "",
        "Also reported by: Reuters",
        "",
        "Matched: Japan · rule japan-nk",
        URL,
    ]


def test_missing_optional_fields_leave_no_empty_lines_behind() -> None:
    context = AlertContext(title="T", url=URL, source="S", rule="r", terms=("x",))
    assert render_message(context, "text").body == f"T\nS\n\nMatched: x · rule r\n{URL}"


def test_a_template_can_tell_an_untitled_item() -> None:
    untitled = Article(
        id="2",
        url=URL,
        source="wire",
        title="Leaders met in Pyongyang on Monday.",
        title_generated=True,
        lede="Leaders met in Pyongyang on Monday.",
    )
    titled = Article(id="3", url=URL, source="wire", title="Leaders meet")
    template = compile_template("{% if title_generated %}(no title) {% endif %}{{ title }}")
    rendered = [
        render_message(AlertContext.from_article(article, "r", ["leaders"]), "text", template)
        for article in (untitled, titled)
    ]
    assert [message.title for message in rendered] == [
        "(no title) Leaders met in Pyongyang on Monday.",
        "Leaders meet",
    ]

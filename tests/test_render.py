"""Message rendering (delivery.render), on plain data."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.config.schema import Rule, Target, Templates
from monitor.delivery.markup import Markup, measure
from monitor.delivery.render import (
    Folded,
    Message,
    render_alert,
    render_digest,
    render_fold,
    render_follow_up,
    render_source_failure,
    render_test,
    snippet,
)
from monitor.delivery.templates import compile_template
from monitor.matching.intake import Matcher
from monitor.model import Article, Block
from monitor.rules import Document, Explanation, compile_query
from monitor.state import StoryCopy

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def article(id: str, published: datetime | None, **fields: object) -> Article:
    defaults: dict[str, object] = {"url": f"https://example.com/{id}", "source": "s", "title": id}
    return Article(id=id, published=published, **{**defaults, **fields})  # type: ignore[arg-type]


HOSTILE = "<!channel> @everyone see <http://evil.example|here> [x](http://evil) <b>hi</b>"


def _digest_and_notice(markup: Markup) -> list[str]:
    item = article("x", NOW, title=HOSTILE + "\x07\x1b", url="https://e.example/a")
    digest = render_digest("r", [(item, [HOSTILE])], markup)
    notice = render_source_failure(HOSTILE, "https://e.example/f", HOSTILE, timedelta(hours=30),
                                   markup)  # fmt: skip
    return [digest.title, digest.body, notice.title, notice.body]


@pytest.mark.parametrize("markup", ["slack", "markdown"])
def test_untrusted_text_cannot_ping_link_or_inject_markup(markup: Markup) -> None:
    """Digests and failure notices escape as alerts do (delivery.markup), in chat markup.
    (Slack titles are plain text, which Apprise escapes itself.)"""
    texts = _digest_and_notice(markup)
    for safe in texts if markup == "markdown" else texts[1::2]:
        live = re.sub(r"\\.", "", safe)  # what is left once the escaped characters are out
        assert "<!" not in live and "<http://evil" not in live and "<b>" not in live
        assert "@everyone" not in safe
        assert "](" not in live
        assert "\x07" not in safe and "\x1b" not in safe


def test_untrusted_text_stays_text_in_html_digests_and_notices() -> None:
    for safe in _digest_and_notice("html")[1::2]:  # the bodies (Apprise escapes e-mail titles)
        assert "<b>" not in safe and "<!channel>" not in safe and "&lt;b&gt;hi" in safe
        assert "@everyone" not in safe
        assert "\x07" not in safe and "\x1b" not in safe


def test_digests_and_notices_to_a_text_target_are_plain_text() -> None:
    """Before, they were markdown with entities whatever the target: `&amp;`, `\\*`."""
    item = article("x", NOW, title="Tom & Jerry *live* <now>", url="https://e.example/a")

    digest = render_digest("r", [(item, ["desk"])], "text")
    notice = render_source_failure("a_b", "https://e.example/f", "HTTP 500 & <x>",
                                   timedelta(hours=30), "text")  # fmt: skip

    assert "- Tom & Jerry *live* <now>" in digest.body.splitlines()
    assert "  https://e.example/a" in digest.body.splitlines()
    assert notice.body.startswith("a_b has been failing for 30 h.")
    assert "Last result: HTTP 500 & <x>" in notice.body
    assert "&amp;" not in digest.body + notice.body and "\\" not in digest.body + notice.body


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("json://127.0.0.1/x", "\nhttps://example.com/a?b=1"),
        (
            "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#news",
            "(https://example.com/a?b=1)",
        ),
        ("mailto://u:p@example.com", '<a href="https://example.com/a?b=1">'),
    ],
)
def test_alert_has_title_source_time_link_lede_and_rule_in_each_markup(url: str, link: str) -> None:
    item = article(
        "x", NOW, title="Japan, North Korea held meeting", url="https://example.com/a?b=1",
        lede="A South Korean newspaper reported a secret meeting.", section=("World", "Asia"),
    )  # fmt: skip
    rule = Rule("japan-nk", compile_query("Japan"), ("hook",))

    why = Explanation(("Japan", "north korea"))
    message = render_alert(item, rule, why, "asia-dispatch", Target("t", url))

    assert message.title == "Japan, North Korea held meeting [japan-nk]"
    assert "asia-dispatch · 2026-11-28 12:00 UTC · World › Asia" in message.body
    assert "A South Korean newspaper reported a secret meeting." in message.body
    assert link in message.body
    assert "Matched: Japan, north korea · rule japan-nk" in message.body


def test_alerts_say_where_each_term_matched() -> None:
    item = article("x", NOW, title="Japan talks", lede="North Korea.", url="https://e.com/a")
    rule = Rule("r", compile_query("Japan AND North Korea"), ("t",))
    why = Matcher([rule]).match(item)[0][1]

    message = render_alert(item, rule, why, "s", Target("t", "json://x"))

    assert "Matched: Japan (title), north korea (lede) · rule r" in message.body


def test_a_rules_template_wins_over_its_targets() -> None:
    item = article("x", NOW, title="Japan <!channel>", url="https://example.com/a")
    target = Target("t", "json://x", templates=Templates(body=compile_template("T {{ title }}")))
    rule = Rule("r", compile_query("Japan"), ("t",))
    ruled = replace(rule, templates=Templates(body=compile_template("R {{ title }} {{ url }}")))

    why = Explanation(("Japan",))
    assert render_alert(item, rule, why, "s", target).body.startswith("T Japan")
    assert render_alert(item, ruled, why, "s", target).body.startswith("R Japan")


def test_snippet_falls_back_to_the_text_around_the_first_matched_term() -> None:
    words = " ".join(f"word{n}" for n in range(200))
    item = article("x", None, body=(Block("paragraph", f"{words} the abduction issue {words}"),))
    why = compile_query("abduction").explain(Document.from_article(item))
    assert why is not None

    text = snippet(item, why)

    assert "abduction" in text
    assert text.startswith("…")
    assert len(text) <= 282


@pytest.mark.parametrize("markup", ["slack", "markdown", "html"])
def test_follow_up_notes_keep_article_text_inert(markup: Markup) -> None:
    story = StoryCopy("x", "dispatch", "<!channel> @everyone <b>hi</b>", "https://e.com/x")
    copy = StoryCopy("y", "<b>@here</b>", "<!channel> @everyone <b>hi</b>", "https://e.com/a")

    note = render_follow_up(story, [copy], "jnk", markup)

    assert "<!channel>" not in note.body and "@everyone" not in note.body
    assert "@here" not in note.body and "<b>hi</b>" not in note.body
    assert "https://e.com/a" in note.body and "not a new alert" in note.body


@pytest.mark.parametrize("markup", ["slack", "markdown", "html", "text"])
def test_a_follow_up_lists_each_outlet_once_with_its_headline_and_link(markup: Markup) -> None:
    story = StoryCopy("s", "dispatch", "Japan, North Korea met", "https://dispatch.example/s")
    copies = [
        StoryCopy(f"c{n}", f"outlet-{n}", f"Headline {n}", f"https://o{n}.example/c")
        for n in range(4)
    ]

    note = render_follow_up(story, copies, "jnk", markup)

    assert note.title.startswith("Also reported by 4 outlets: Japan, North Korea met")
    assert "outlet-0, outlet-1, outlet-2, outlet-3" in note.body
    for n in range(4):
        assert note.body.count(f"https://o{n}.example/c") == (2 if markup == "html" else 1)
        assert f"Headline {n}" in note.body
    assert "dispatch.example" not in note.body
    assert render_follow_up(story, copies[:1], "jnk", markup).title.startswith(
        "Also reported by 1 outlet: "
    )


def test_a_long_follow_up_is_cut_to_the_limit_and_keeps_its_note() -> None:
    story = StoryCopy("s", "dispatch", "Story", "https://dispatch.example/s")
    copies = [
        StoryCopy(f"c{n}", f"outlet-{n}", "A long headline " * 5, f"https://o{n}.example/c")
        for n in range(40)
    ]

    note = render_follow_up(story, copies, "jnk", "markdown", limit=1000)

    assert measure(note.body, "markdown") <= 1000
    assert note.body.endswith("not a new alert.") and "Also reported by 40 outlets" in note.body


@pytest.mark.parametrize("markup", ["slack", "markdown", "html", "text"])
def test_a_folded_entry_without_a_link_is_listed_by_its_title_alone(markup: Markup) -> None:
    first = Message("First [jnk]", "body")
    rest = [Folded("Also reported by 2 outlets: Story", ""), Folded("B", "https://e.com/b")]

    folded = render_fold(first, rest, markup)

    assert "Also reported by 2 outlets: Story:" not in folded.body
    assert "Also reported by 2 outlets: Story" in folded.body
    assert "B: " in folded.body and "https://e.com/b" in folded.body


def test_an_alerts_snippet_is_where_the_rule_matched_as_monitor_match_shows_it() -> None:
    """One snippet builder (rules.mark_snippet): the alert quotes the body passage that
    matched, not the lede just because there is one (the old builder's choice)."""
    filler = " ".join(f"word{n}" for n in range(80))
    item = article(
        "x", NOW, title="Talks", lede="A standfirst about something else.",
        body=(Block("paragraph", f"{filler} Japan raised the abduction issue. {filler}"),),
    )  # fmt: skip
    rule = Rule("r", compile_query("Japan AND abduction"), ("t",))
    why = Matcher([rule]).match(item)[0][1]

    quoted = snippet(item, why)
    body = render_alert(item, rule, why, "s", Target("t", "json://x")).body

    assert "Japan raised the abduction issue." in quoted and "standfirst" not in quoted
    assert quoted.startswith("…") and quoted.endswith("…") and len(quoted) <= 282
    assert quoted in body


def test_a_title_only_match_quotes_the_start_of_the_text_and_a_bare_item_nothing() -> None:
    rule = Rule("r", compile_query("Japan"), ("t",))
    item = article("x", NOW, title="Japan", lede="A standfirst.", body=(Block("paragraph", "B."),))
    bare = article("y", NOW, title="Japan")

    assert snippet(item, Matcher([rule]).match(item)[0][1]) == "A standfirst."
    assert snippet(bare, Matcher([rule]).match(bare)[0][1]) == ""


@pytest.mark.parametrize(
    ("markup", "first"),
    [
        ("html", "<p><strong>news-monitor test message</strong></p>"),
        ("text", "news-monitor test message"),
        ("markdown", "**news-monitor test message**"),
        ("slack", "**news-monitor test message**"),
    ],
)
def test_the_test_message_is_written_in_each_markup(markup: Markup, first: str) -> None:
    message = render_test("desk", "news-monitor/1 (+https://e.example)", NOW, markup)

    assert message.body.splitlines()[0] == first
    assert "2026-11-28 12:00 UTC" in message.body
    assert message.title == "news-monitor test: desk"

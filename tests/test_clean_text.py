"""The one cleaner of untrusted text (monitor.model.clean_text), on the way in and out."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.delivery.markup import MARKUPS, Markup, escape, safe_url
from monitor.model import clean_text
from monitor.sources.feeds import parse_feed
from monitor.sources.htmltext import html_to_text
from monitor.sources.identity import article_identity

_REMOVED = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e"
    "\u2066-\u2069\ufeff\ufff9-\ufffb]"
)


@given(st.text(alphabet=st.sampled_from("ab é\t\n\x00\x85\xa0\u200b\u202e\u2028\u3000\ufeff")))
def test_text_already_clean_is_kept_and_any_other_cleaned_in_full(text: str) -> None:
    """The shortcut for text already clean (printable, single spaces) changes nothing."""
    assert clean_text(text) == " ".join(_REMOVED.sub("", text).split())


def test_clean_drops_controls_and_bidi_overrides_and_folds_space() -> None:
    assert clean_text("a\x00b\x1b[1m \u202eevil\u202c\n\n\tc\u2028d") == "ab[1m evil c d"


@pytest.mark.parametrize(
    "char",
    [
        "\x00", "\x07", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9f",  # C0, DEL, C1
        "\u061c", "\u200b", "\u200e", "\u200f",  # Arabic letter mark, ZWSP, LRM, RLM
        "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",  # bidi embeddings and overrides
        "\u2066", "\u2067", "\u2068", "\u2069",  # bidi isolates
        "\ufeff", "\ufff9", "\ufffa", "\ufffb",  # BOM, interlinear annotation
    ],
)  # fmt: skip
def test_invisible_and_control_characters_are_removed(char: str) -> None:
    assert clean_text(f"Ja{char}pan") == "Japan"


@pytest.mark.parametrize("char", ["\t", "\n", "\r", "\xa0", "\u2028", "\u2029", "\u3000"])
def test_white_space_and_line_separators_become_one_space(char: str) -> None:
    assert clean_text(f" North{char}{char}Korea{char}") == "North Korea"


@pytest.mark.parametrize("text", ["\u0645\u200c\u06cc", "\U0001f468\u200d\U0001f469", "co\xadop"])
def test_joiners_that_scripts_and_emoji_need_are_kept(text: str) -> None:
    assert clean_text(text) == text


def test_feed_text_and_messages_are_cleaned_alike() -> None:
    """Text read from a feed or page and text written into a message lose the same
    characters (before, a bidi override survived into stored articles)."""
    hostile = "Breaking\u202e gnihton \u2066news\u2069\u2028today"
    feed = (
        '<rss version="2.0"><channel><title>t</title><item><guid>g</guid>'
        f"<title>{hostile}</title><link>https://e.example/a</link>"
        f"<description>{hostile}</description></item></channel></rss>"
    ).encode()

    article = parse_feed(feed, source="s", url="https://e.example/feed").articles[0]

    assert article.title == clean_text(hostile) == "Breaking gnihton news today"
    assert html_to_text(f"<p>{hostile}</p>") == clean_text(hostile)
    assert article.lede == clean_text(hostile) or article.body[0].text == clean_text(hostile)


@pytest.mark.parametrize("markup", MARKUPS)
def test_escaping_cleans_first_in_every_markup(markup: Markup) -> None:
    assert "\u202e" not in escape("a\u202eb", markup)
    assert "\u2028" not in escape("a\u2028b", markup)


def test_urls_lose_controls_and_all_white_space() -> None:
    assert safe_url("https://e.example/a\u202e b\u2028c\x00") == "https://e.example/abc"


def test_text_identity_hashes_the_cleaned_text() -> None:
    plain = article_identity("s", guid="", guid_is_url=False, link="", text="North Korea")
    marked = article_identity("s", guid="", guid_is_url=False, link="", text="North\u200f Korea")
    assert plain == marked

"""Pages to Articles: three layouts of the seed, charsets, link discovery, bounded work."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from monitor.model import Article
from monitor.sources.charset import decode, decode_html, encoding_for
from monitor.sources.feeds import parse_feed
from monitor.sources.pages import (
    MAX_BODY_ELEMENTS,
    MAX_BODY_TEXT_CHARS,
    article_links,
    extract_article,
    feed_links,
    parse_html,
)

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SITE = "https://asiadispatch.example"
PAGE_URL = f"{SITE}/world/asia/japan/japan-north-korea-held-meeting-in-may/"
FRONT_URL = f"{SITE}/world/asia/"
SEED = "japan-north-korea-meeting"
RENDITIONS = [SEED, f"{SEED}.jsonld", f"{SEED}.bare"]
FIELDS = list(Article(id="", url="", source="", title="").to_json())
CHARSETS = ["shift_jis", "euc-kr", "gb18030", "windows-1252"]
CHROME = [
    "November 22",
    "22 November",
    "Home",
    "RELATED ARTICLES",
    "Related articles",
    "Read more",
    "Most Popular",
    "Share",
    "Facebook",
    "Copy link",
    "ADVERTISEMENT",
    "Advertisement",
    "Subscribe",
    "Newsletter",
    "Staff Reporter",
    "Published",
    "Topics",
    "©",
    "Photo:",
    "Abductee families urge",
    "Monsoon floods",
]


@cache
def rendition(name: str) -> dict[str, Any]:
    html = (SEEDS / "pages" / f"{name}.html").read_text(encoding="utf-8")
    url = PAGE_URL + "?utm_source=feed&utm_medium=rss#comments"
    return extract_article(html, url=url, source="asia-dispatch").to_json()


def expected(name: str) -> dict[str, Any]:
    data = json.loads((SEEDS / "expected" / f"{name}.page.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def seed_lines() -> list[str]:
    seed = (SEEDS / "000_52f7a3d0630aa9f2.txt").read_text(encoding="utf-8")
    return [line for line in seed.splitlines() if line.strip()]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("name", RENDITIONS)
def test_each_layout_gives_the_expected_field(name: str, field: str) -> None:
    assert rendition(name)[field] == expected(name)[field]


@pytest.mark.parametrize("name", RENDITIONS)
def test_each_layout_gives_the_seed_article(name: str) -> None:
    article = rendition(name)
    lines = seed_lines()

    assert article["title"] == lines[2]
    assert article["lede"] == lines[3]
    # The bare page shows the lede only as its first paragraph (and its description): it
    # stays in the body there; a standfirst element is the lede alone.
    opening = [lines[3]] if name.endswith(".bare") else []
    assert [block["text"] for block in article["body"]] == opening + lines[4:-2]
    assert [block["kind"] for block in article["body"]].count("heading") == 1
    assert article["url"] == PAGE_URL


@pytest.mark.parametrize("name", RENDITIONS)
def test_no_chrome_leaks_into_the_body(name: str) -> None:
    body = "\n".join(block["text"] for block in rendition(name)["body"])

    leaked = [phrase for phrase in CHROME if phrase in body]

    assert leaked == []


@pytest.mark.parametrize("name", RENDITIONS)
def test_page_and_feed_item_are_the_same_article(name: str) -> None:
    feed = (SEEDS / "feeds" / "asia.rss").read_bytes()
    item = parse_feed(feed, source="asia-dispatch", url=FRONT_URL + "feed/").articles[0]

    assert rendition(name)["id"] == item.id


def test_structured_data_wins_and_is_converted_to_utc() -> None:
    article = rendition("japan-north-korea-meeting.jsonld")

    assert article["published"] == "2024-07-02T09:41:00Z"  # stated as 18:41+09:00
    assert article["authors"] == ["Staff Reporter"]  # a Person referenced by @id
    assert article["language"] == "en"  # en-GB


def test_the_site_date_header_is_never_the_published_date() -> None:
    html = (SEEDS / "pages" / "japan-north-korea-meeting.bare.html").read_text(encoding="utf-8")
    undated = html.replace(" &middot; Published 2 July 2024", "")

    article = extract_article(undated, url=PAGE_URL, source="s")

    assert "November 22, 2024" in undated
    assert article.published is None


def test_a_time_element_in_the_article_dates_it_but_not_one_in_the_header() -> None:
    html = """<html><body><header><time datetime="2024-11-22">Today</time></header>
    <article><h1>A headline for the test page</h1>
    <time datetime="2024-07-02T09:41:00Z">2 July</time>
    <p>Enough words in one paragraph to count as the body of this little test article.</p>
    </article></body></html>"""

    article = extract_article(html, url=PAGE_URL, source="s")

    assert article.to_json()["published"] == "2024-07-02T09:41:00Z"


def test_title_loses_the_site_suffix_and_canonical_its_tracking_parameters() -> None:
    html = f"""<html><head><title>Seoul and Tokyo agree | Asia Dispatch</title>
    <link rel="canonical" href="{PAGE_URL}?utm_source=x&amp;id=7&amp;fbclid=abc"></head>
    <body><p>Enough words in one paragraph to count as the body of a test article.</p>
    </body></html>"""

    article = extract_article(html, url=PAGE_URL, source="s")

    assert article.title == "Seoul and Tokyo agree"
    assert article.url == PAGE_URL + "?id=7"


def charset_page(name: str) -> bytes:
    return (SEEDS / "pages" / f"charset-{name}.html").read_bytes()


def without_meta_charset(content: bytes) -> bytes:
    return re.sub(rb"<meta[^>]*charset[^>]*>", b"", content)


@pytest.mark.parametrize("name", CHARSETS)
def test_charset_pages_decode_from_their_meta_declaration(name: str) -> None:
    html = decode_html(charset_page(name))

    article = extract_article(html, url="https://asiadispatch.example/x/", source="asia-dispatch")

    assert article.to_json() == expected(f"charset-{name}")


@pytest.mark.parametrize("name", CHARSETS)
def test_charset_pages_decode_from_http_or_by_detection(name: str) -> None:
    content = without_meta_charset(charset_page(name))
    want = content.decode({"shift_jis": "cp932", "euc-kr": "cp949"}.get(name, name))
    label = {"shift_jis": "Shift_JIS", "euc-kr": "EUC-KR", "gb18030": "GBK"}.get(name, "latin1")

    assert decode_html(content, f"text/html; charset={label}") == want
    assert decode_html(content) == want


@pytest.mark.parametrize(
    ("name", "characters"),
    [
        ("shift_jis", ["北朝鮮", "拉致", "①", "髙", "～"]),
        ("euc-kr", ["북한", "납치", "똠"]),
        ("gb18030", ["朝鲜", "绑架", "镕", "𠮷", "€"]),
        ("windows-1252", ["Corée", "“une source”", "l’article", "€", "—"]),
    ],
)
def test_labels_are_read_as_their_supersets(name: str, characters: list[str]) -> None:
    text = decode_html(charset_page(name))

    assert [c for c in characters if c not in text] == []


def test_superset_labels() -> None:
    assert encoding_for("GB2312") == "gb18030"
    assert encoding_for("x-sjis") == "cp932"
    assert encoding_for("ks_c_5601-1987") == "cp949"
    assert encoding_for("ISO-8859-1") == "cp1252"
    assert encoding_for("no-such-charset") is None


def with_a_bad_byte(text: str, encoding: str) -> bytes:
    """`text` encoded, "#BAD#" made a byte that is invalid in UTF-8, and in Shift_JIS
    before a space."""
    return text.encode(encoding).replace(b"#BAD#", b"\x81")


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html; charset=utf-8",
        "text/html",
        "text/html; charset=Shift_JIS",
        "text/html; charset=iso-8859-1",
    ],
)
def test_a_bad_byte_in_utf8_is_replaced_and_the_rest_kept(content_type: str) -> None:
    text = "<p>北朝鮮 AND 拉致 #BAD# Corée “du Nord”</p>" * 3

    decoded = decode(with_a_bad_byte(text, "utf-8"), content_type)

    assert (decoded.text, decoded.encoding, decoded.replaced) == (
        text.replace("#BAD#", "\ufffd"),
        "utf-8",
        3,
    )


def test_a_bad_byte_in_a_declared_legacy_charset_is_replaced_and_the_rest_kept() -> None:
    text = charset_page("shift_jis").decode("cp932").replace("北朝鮮", "北朝鮮#BAD# ", 1)

    decoded = decode(with_a_bad_byte(text, "cp932"), "text/html; charset=Shift_JIS")

    assert (decoded.text, decoded.encoding, decoded.replaced) == (
        text.replace("#BAD#", "\ufffd"),
        "cp932",
        1,
    )


def test_legacy_text_labelled_utf8_is_detected_not_replaced() -> None:
    content = without_meta_charset(charset_page("windows-1252"))

    decoded = decode(content, "text/html; charset=utf-8")

    assert (decoded.text, decoded.replaced) == (content.decode("cp1252"), 0)


def test_a_bom_wins_and_utf8_beats_a_latin1_default() -> None:
    text = "<p>Corée “du Nord”</p>"

    assert decode_html(b"\xef\xbb\xbf" + text.encode(), "text/html; charset=windows-1252") == text
    assert decode_html(text.encode(), "text/html; charset=ISO-8859-1") == text
    assert decode_html(text.encode("utf-16"), "text/html; charset=iso-8859-1") == text


def test_article_links_on_a_section_front() -> None:
    html = (SEEDS / "pages" / "asia-section-front.html").read_text(encoding="utf-8")

    assert article_links(html, FRONT_URL) == [
        PAGE_URL,
        f"{SITE}/world/asia/japan/japan-and-south-korea-leaders-agree-to-deepen-ties-at-seoul-summit/",
        f"{SITE}/world/asia/japan/tokyo-protests-north-korean-missile-launch/",
        "https://www.asiadispatch.example/business/thai-rice-exports-rise-on-strong-demand-from-indonesia-philippines/",
        f"{SITE}/2024/07/01/mongolia/",
        f"{SITE}/world/asia/news/48199",
    ]


def test_feed_links_in_document_order() -> None:
    front = (SEEDS / "pages" / "asia-section-front.html").read_text(encoding="utf-8")
    page = (SEEDS / "pages" / "japan-north-korea-meeting.jsonld.html").read_text(encoding="utf-8")

    assert feed_links(front, FRONT_URL) == [
        f"{SITE}/world/asia/feed/",
        f"{SITE}/world/asia/feed/atom/",
        f"{SITE}/world/asia/feed.json",
    ]
    assert feed_links(page, PAGE_URL) == [
        f"{SITE}/world/asia/japan/rss.xml",
        f"{SITE}/world/asia/japan/feed.json",
    ]


def test_deeply_nested_page_is_cut_not_recursed() -> None:
    html = "<html><body>" + "<div>" * 500_000 + "text" + "</div>" * 500_000 + "</body></html>"

    article = extract_article(html, url="https://example.com/a", source="s")

    assert len(html) > 5_000_000
    assert len(article.body_text) < 100


def test_a_page_of_200k_paragraphs_is_extracted_within_the_caps() -> None:
    paragraph = "<p>Paragraph {} holds a sentence of ordinary length for the test.</p>"
    html = "<html><body><article>"
    html += "".join(paragraph.format(i) for i in range(200_000)) + "</article></body></html>"

    article = extract_article(html, url="https://example.com/a", source="s")

    assert 0 < len(article.body) <= MAX_BODY_ELEMENTS
    assert len(article.body_text) <= MAX_BODY_TEXT_CHARS + 2 * len(article.body)


@pytest.mark.parametrize("html", ["", "   ", "<?xml version='1.0' encoding='utf-8'?><html/>"])
def test_empty_or_odd_documents_parse(html: str) -> None:
    assert parse_html(html) is not None
    assert extract_article(html, url="", source="s").body == ()


def _extraction_passes(monkeypatch: pytest.MonkeyPatch, html: str) -> tuple[list[bool], Article]:
    """The trafilatura passes extract_article makes (fast or not), and its Article."""
    from monitor.sources import pages

    passes: list[bool] = []
    real = pages._trafilatura_body

    def counted(page: Any, url: str, *, fast: bool, precision: bool) -> Any:
        passes.append(fast)
        return real(page, url, fast=fast, precision=precision)

    monkeypatch.setattr(pages, "_trafilatura_body", counted)
    return passes, extract_article(html, url="https://x.example/a", source="s")


SENTENCES = " ".join(["Japan and North Korea held talks in Mongolia in May."] * 3)


def test_a_short_body_taken_whole_needs_no_fallback_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    html = f"<html><head><title>T</title></head><body><h1>T</h1><p>{SENTENCES}</p></body></html>"
    passes, article = _extraction_passes(monkeypatch, html)
    assert passes == [True]
    assert [block.text for block in article.body] == [SENTENCES]


def test_the_fallbacks_run_when_the_fast_pass_leaves_most_text_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    boxes = "".join(
        f"<div><span>{SENTENCES} {n}</span><br><span>{SENTENCES}</span></div>" for n in range(12)
    )
    html = f"<html><head><title>T</title></head><body><h1>T</h1>{boxes}</body></html>"
    passes, article = _extraction_passes(monkeypatch, html)
    assert passes == [True, False]
    assert sum(len(block.text) for block in article.body) > 12 * 2 * len(SENTENCES)

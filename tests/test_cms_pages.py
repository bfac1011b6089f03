"""Pages as the common CMSs emit them: every Article field, lede and tags from their markup."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from monitor.model import Article
from monitor.sources.pages import extract_article

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
FAMILIES = sorted(path.stem for path in (SEEDS / "pages").glob("cms-*.html"))
FIELDS = list(Article(id="", url="", source="", title="").to_json())
CHROME = [
    "November 22",
    "November 20",
    "Reader comment",
    "RELATED ARTICLES",
    "Related",
    "Most Popular",
    "Monsoon floods",
    "Abductee families urge",
    "Share",
    "Facebook",
    "Copy link",
    "ADVERTISEMENT",
    "Advertisement",
    "Subscribe",
    "Tags",
    "Staff Reporter",
    "©",
    "Thai rice",
]


@cache
def extracted(name: str) -> dict[str, Any]:
    html = (SEEDS / "pages" / f"{name}.html").read_text(encoding="utf-8")
    url = expected(name)["url"] + "?utm_source=newsletter"
    return extract_article(html, url=url, source="cms").to_json()


@cache
def expected(name: str) -> dict[str, Any]:
    data = json.loads((SEEDS / "expected" / f"{name}.page.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_every_family_has_a_fixture() -> None:
    assert len(FAMILIES) == 11


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("name", FAMILIES)
def test_each_cms_gives_the_expected_field(name: str, field: str) -> None:
    assert extracted(name)[field] == expected(name)[field]


@pytest.mark.parametrize("name", FAMILIES)
def test_no_chrome_leaks_into_a_cms_body(name: str) -> None:
    text = "\n".join(block["text"] for block in extracted(name)["body"])
    leaked = [phrase for phrase in CHROME if phrase in text]
    assert leaked == []


LEDE = "A South Korean newspaper reported Japan and North Korea met secretly in mid-May."
PARAGRAPHS = "".join(
    f"<p>Paragraph {n} of the story says what happened, where, and who said what about it.</p>"
    for n in range(4)
)


def _page(head: str = "", before: str = "", after: str = "") -> str:
    return (
        f"<html><head><title>Talks</title>{head}</head><body><article>"
        f"<h1>Japan and North Korea held talks</h1>{before}{PARAGRAPHS}{after}"
        "</article></body></html>"
    )


@pytest.mark.parametrize(
    ("html", "tags"),
    [
        (
            _page('<meta name="news_keywords" content="Japan, North Korea">'),
            ["Japan", "North Korea"],
        ),
        (_page('<meta property="article:tag" content="Japan">'), ["Japan"]),
        (
            _page(
                '<script type="application/ld+json">{"@type": "NewsArticle",'
                ' "keywords": "Japan, North Korea"}</script>'
            ),
            ["Japan", "North Korea"],
        ),
        (
            _page(
                '<script type="application/ld+json">{"@type": "NewsArticle",'
                ' "keywords": ["Japan", "North Korea"]}</script>'
            ),
            ["Japan", "North Korea"],
        ),
        (_page(after='<p>Filed: <a rel="tag" href="/t/japan">Japan</a></p>'), ["Japan"]),
        (
            _page(after='<div class="topics"><a href="/topic/japan/">Japan</a></div>'),
            ["Japan"],
        ),
        # a tag-page link outside any tag box, and a category link, are not tags
        (_page(after='<p>See <a href="/tag/japan/">Japan</a>.</p>'), []),
        (_page(after='<a rel="category tag" href="/c/asia/">Asia</a>'), []),
    ],
)
def test_generic_tag_signals(html: str, tags: list[str]) -> None:
    assert list(extract_article(html, url="https://x.example/a/", source="s").tags) == tags


@pytest.mark.parametrize(
    "before",
    [
        f'<p class="dek">{LEDE}</p>',
        f'<div class="article__standfirst"><p>{LEDE}</p></div>',
        f'<p class="entry-excerpt">{LEDE}</p>',
        f'<h2 class="post-sub-title">{LEDE}</h2>',
        f"<h2>{LEDE}</h2>",
    ],
)
def test_generic_lede_between_headline_and_body(before: str) -> None:
    head = '<meta name="description" content="An SEO summary that is not the lede.">'
    article = extract_article(_page(head, before), url="https://x.example/a/", source="s")
    assert article.lede == LEDE
    assert all(LEDE not in block.text for block in article.body)


def test_nul_and_control_bytes_in_a_page_do_not_stop_extraction() -> None:
    html = _page(after="<p>Trailing text with a NUL \x00 and a form feed \x0c inside.</p>")
    article = extract_article(html, url="https://x.example/a/", source="s")
    assert any("Trailing text with a NUL" in block.text for block in article.body)


@pytest.mark.parametrize(
    "trap",
    [
        '<div class="top-bar"><span>Friday, November 22, 2024</span></div>',
        '<div class="comment-list"><div class="comment">November 20, 2024 at 8:00 am:'
        " talks never work.</div></div>",
        '<div class="site-info"><p>© 2019–2024 Asia Dispatch. All rights reserved.</p></div>',
    ],
)
def test_today_lines_comment_dates_and_copyright_never_date_a_page(trap: str) -> None:
    text = PARAGRAPHS.replace("<p>", "<p>", 1)
    html = (
        "<html><head><title>Talks</title></head><body>"
        + (trap if "top-bar" in trap else "")
        + f"<div class='story'><h1>Japan and North Korea held talks</h1>{text}</div>"
        + ("" if "top-bar" in trap else trap)
        + "</body></html>"
    )
    article = extract_article(html, url="https://x.example/a/", source="s")
    assert article.published is None


def test_updated_comes_from_the_pages_own_modified_marker() -> None:
    head = (
        '<meta property="article:published_time" content="2024-07-02T09:41:00Z">'
        '<meta property="article:modified_time" content="2024-07-03T08:00:00+02:00">'
    )
    article = extract_article(_page(head), url="https://x.example/a/", source="s")
    assert article.published is not None and article.updated is not None
    assert article.updated.isoformat() == "2024-07-03T06:00:00+00:00"


def test_comment_markers_inside_a_paragraph_keep_its_words() -> None:
    split = "When <!-- -->President<!-- --> <!-- -->Trump’s<!-- --> advisers suggested a deal."
    html = _page(before=f"<p>{split} It went on for a while, longer than most expected.</p>")
    body = " ".join(
        b.text for b in extract_article(html, url="https://x.example/a/", source="s").body
    )
    assert "When President Trump’s advisers suggested a deal." in body

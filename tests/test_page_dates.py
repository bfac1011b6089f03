"""Publication dates of pages: the rules that keep our day level with htmldate's on its
evaluation set (benchmarks/bench_dates.py) without taking a page's "today" line."""

from __future__ import annotations

import pytest

from monitor.sources.pagedates import parse_date
from monitor.sources.pages import extract_article

PARAGRAPHS = "".join(
    f"<p>Paragraph {i}: Japan and North Korea held talks in Mongolia in May, the newspaper"
    " reported, citing several sources close to the matter in both capitals.</p>"
    for i in range(6)
)


def _published(html: str, url: str = "https://x.example/a/") -> str | None:
    article = extract_article(html, url=url, source="s")
    return article.published.isoformat() if article.published else None


def test_a_weekday_top_bar_is_dropped_but_the_rest_above_the_article_still_counts() -> None:
    html = (
        "<html><head><title>Talks</title></head><body>"
        '<div class="top-bar"><span>Friday, November 22, 2024</span></div>'
        '<div class="post-meta"><span class="date">12.03.2024</span></div>'
        f"<div class='story'><h1>Japan and North Korea held talks</h1>{PARAGRAPHS}</div>"
        "</body></html>"
    )
    assert _published(html) == "2024-03-12T00:00:00+00:00"


@pytest.mark.parametrize(
    ("body_class", "header"),
    [
        ("single comments-open", "div"),  # WordPress marks the whole <body> "comments-open"
        ("single", "header"),  # <header class="entry-header"> with h1 and date, no <article>
    ],
)
def test_a_box_holding_the_headline_is_not_chrome_for_the_date(
    body_class: str, header: str
) -> None:
    html = (
        f"<html><head><title>Talks</title></head><body class='{body_class}'>"
        f"<div class='post'><{header} class='entry-header'>"
        "<h1>Japan and North Korea held talks</h1>"
        f"<span class='posted-on'>Posted on 12 March 2024</span></{header}>"
        f"{PARAGRAPHS}</div></body></html>"
    )
    assert _published(html) == "2024-03-12T00:00:00+00:00"


def _stated(value: str) -> str:
    return (
        "<html><head><title>Talks</title>"
        f'<meta property="article:published_time" content="{value}"></head><body><article>'
        f"<h1>Japan and North Korea held talks</h1>{PARAGRAPHS}</article></body></html>"
    )


def test_the_urls_date_wins_over_a_stated_date_years_later() -> None:
    html = _stated("2019-06-17T18:28:00+02:00")
    assert _published(html, "https://x.example/home/2017/7/12/talks") == (
        "2017-07-12T00:00:00+00:00"
    )
    assert _published(html, "https://x.example/news/20170712/talks") == (
        "2017-07-12T00:00:00+00:00"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://x.example/2019/06/18/talks/",  # a day apart: the publisher's time zone
        "https://x.example/2023/10/3-questions-on-talks/",  # "3-..." is a slug, not a day
        "https://x.example/blog/191211_talks/",  # six digits are not a date
    ],
)
def test_the_stated_instant_stays_when_the_url_does_not_contradict_it(url: str) -> None:
    assert _published(_stated("2019-06-17T18:28:00+02:00"), url) == "2019-06-17T16:28:00+00:00"


@pytest.mark.parametrize(
    ("value", "instant"),
    [
        ("2020-09-25T16:02:50CDT", "2020-09-25T21:02:50+00:00"),
        ("2020-09-29T00:30:00PDT", "2020-09-29T07:30:00+00:00"),
        ("2020-01-15T08:00 EST", "2020-01-15T13:00:00+00:00"),
    ],
)
def test_us_zone_abbreviations_after_an_iso_time(value: str, instant: str) -> None:
    parsed = parse_date(value)
    assert parsed is not None and parsed.isoformat() == instant


def test_published_is_stated_in_utc_as_the_article_contract_says() -> None:
    """shared/design.md: "published (ISO 8601 UTC or null)". The publisher's offset is not
    kept: 06:00 at +07:00 on 4 May is 23:00 UTC on 3 May, and the JSON says so."""
    article = extract_article(
        _stated("2020-05-04T06:00:00+07:00"), url="https://x.example/a/", source="s"
    )
    assert article.to_json()["published"] == "2020-05-03T23:00:00Z"


@pytest.mark.parametrize(
    ("value", "published"),
    [
        # exactly local midnight at a non-zero offset: a date the CMS stored without a time
        ("2024-03-12T00:00:00+08:00", "2024-03-12T00:00:00+00:00"),
        ("2024-03-12T00:00+0100", "2024-03-12T00:00:00+00:00"),
        # a real time, even a minute after midnight, keeps its instant
        ("2024-03-12T00:01:00+08:00", "2024-03-11T16:01:00+00:00"),
        ("2024-03-12T00:00:00-05:00", "2024-03-12T00:00:00+00:00"),
    ],
)
def test_a_stated_local_midnight_is_a_date_without_a_time(value: str, published: str) -> None:
    assert _published(_stated(value)) == published


def _two_stated(ld: str, meta: str) -> str:
    return (
        "<html><head><title>Talks</title>"
        '<script type="application/ld+json">{"@type": "NewsArticle",'
        f' "datePublished": "{ld}"}}</script>'
        f'<meta property="article:published_time" content="{meta}"></head><body><article>'
        f"<h1>Japan and North Korea held talks</h1>{PARAGRAPHS}</article></body></html>"
    )


def test_one_wall_clock_with_two_offsets_takes_the_instant_on_the_pages_day() -> None:
    # One of the two offsets is mislabelled; the one on the day the page shows wins.
    html = _two_stated("2024-03-12T04:11:00+05:30", "2024-03-12T04:11:00+00:00")
    assert _published(html) == "2024-03-12T04:11:00+00:00"


def test_a_wall_clock_without_zone_never_replaces_a_stated_instant() -> None:
    html = _two_stated("2024-03-12T02:00:00+03:00", "2024-03-12 02:00:00")
    assert _published(html) == "2024-03-11T23:00:00+00:00"


def test_a_weekday_line_marked_as_the_publication_date_is_not_a_top_bar() -> None:
    html = (
        "<html><head><title>Talks</title></head><body>"
        '<div class="top-bar"><span>Friday, November 22, 2024</span></div>'
        '<div class="meta"><p class="published-date">Tuesday, March 12, 2024</p></div>'
        f"<div class='story'><h1>Japan and North Korea held talks</h1>{PARAGRAPHS}</div>"
        "</body></html>"
    )
    assert _published(html) == "2024-03-12T00:00:00+00:00"


@pytest.mark.parametrize(
    ("inside", "published"),
    [
        # the article's own aside or footer holds its date (a Drupal node footer, a meta box)
        ("<aside class='blog-data'><dl><dt>Date</dt><dd>12.03.2024</dd></dl></aside>",
         "2024-03-12T00:00:00+00:00"),
        ("<footer class='node__meta'><span class='created'>12.03.2024</span></footer>",
         "2024-03-12T00:00:00+00:00"),
        # an <article> inside the article is another story's card (or a comment)
        ("<div class='more'><article class='teaser'><h3>Other talks</h3>"
         "<footer><span class='date'>01.07.2024</span></footer></article></div>", None),
    ],
)  # fmt: skip
def test_the_articles_own_aside_and_footer_date_it_but_nested_articles_do_not(
    inside: str, published: str | None
) -> None:
    html = (
        "<html><head><title>Talks</title></head><body><article>"
        f"<h1>Japan and North Korea held talks</h1>{inside}{PARAGRAPHS}</article>"
        "</body></html>"
    )
    assert _published(html) == published


def test_a_weekday_line_in_the_headlines_own_box_is_its_date_not_a_top_bar() -> None:
    html = (
        "<html><head><title>Talks</title></head><body>"
        '<div class="top-bar"><span>Friday, November 22, 2024</span></div>'
        "<div class='post'><div class='post-header'>"
        "<div class='date-header'><span>Tuesday, March 12, 2024</span></div>"
        f"<h1>Japan and North Korea held talks</h1></div>{PARAGRAPHS}</div>"
        "</body></html>"
    )
    assert _published(html) == "2024-03-12T00:00:00+00:00"


def test_a_marked_date_above_the_headlines_box_beats_a_later_one_in_the_article() -> None:
    html = (
        "<html><head><title>Talks</title></head><body>"
        "<div id='top'><div class='date'>Politics, 12.03.24</div></div>"
        f"<article><h1>Japan and North Korea held talks</h1>{PARAGRAPHS}"
        "<div class='share'><span class='time'>Shared 01.02.2022</span></div></article>"
        "</body></html>"
    )
    assert _published(html) == "2024-03-12T00:00:00+00:00"


def test_a_modified_marker_equal_to_a_local_midnight_published_is_no_update() -> None:
    head = (
        '<meta property="article:published_time" content="2024-03-12T00:00:00+08:00">'
        '<meta property="article:modified_time" content="2024-03-12T00:00:00+08:00">'
    )
    html = (
        f"<html><head><title>Talks</title>{head}</head><body><article>"
        f"<h1>Japan and North Korea held talks</h1>{PARAGRAPHS}</article></body></html>"
    )
    article = extract_article(html, url="https://x.example/a/", source="s")
    assert article.published is not None and article.published.isoformat().startswith("2024-03-12")
    assert article.updated is None


def test_a_modified_marker_before_the_publication_is_no_update() -> None:
    """A local midnight is read as a date without a time (midnight UTC): a modification half
    an hour after it, at +01:00, would fall before it; an update never predates the story."""
    head = (
        '<meta property="article:published_time" content="2024-03-12T00:00:00+01:00">'
        '<meta property="article:modified_time" content="2024-03-12T00:30:00+01:00">'
    )
    html = (
        f"<html><head><title>Talks</title>{head}</head><body><article>"
        f"<h1>Japan and North Korea held talks</h1>{PARAGRAPHS}</article></body></html>"
    )
    article = extract_article(html, url="https://x.example/a/", source="s")
    assert article.to_json()["published"] == "2024-03-12T00:00:00Z"
    assert article.updated is None


def _trackback(about: str, date: str) -> str:
    return (
        f'<rdf:Description rdf:about="{about}" dc:title="Entry" dc:identifier="{about}"'
        f' dc:date="{date}" />'
    )


def test_the_trackback_block_in_a_comment_dates_a_blog_entry() -> None:
    """Movable Type, goo and Hatena blogs state an entry's date only in their trackback
    RDF, inside an HTML comment; a photo's date in the text ("taken 2015/7/21") is not it."""
    html = (
        "<html><head><title>Winners</title></head><body><h1>Winners of the weekend</h1>"
        f"<div class='entry-body'>{PARAGRAPHS}<p>Photo taken 2015/7/21.</p></div><!--"
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        + _trackback("https://blog.example.jp/u/e/52743e", "2020-07-12T22:00:00+09:00")
        + "</rdf:RDF>--></body></html>"
    )
    assert _published(html, "https://blog.example.jp/u/e/52743e") == "2020-07-12T13:00:00+00:00"


def test_on_a_page_listing_several_entries_only_the_pages_own_trackback_counts() -> None:
    entries = _trackback("https://blog.example.jp/u/e/1", "2020-07-01T10:00:00+09:00") + (
        _trackback("https://blog.example.jp/u/e/2", "2020-07-02T10:00:00+09:00")
    )
    html = (
        "<html><head><title>Blog</title></head><body><h1>Entry two</h1>"
        f"<div>{PARAGRAPHS}</div><!--<rdf:RDF>{entries}</rdf:RDF>--></body></html>"
    )
    assert _published(html, "https://blog.example.jp/u/e/2") == "2020-07-02T01:00:00+00:00"
    assert _published(html, "https://blog.example.jp/") is None

"""Feeds and pages normalize into the Article of design.md, compared with expected data."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path

import pytest

from monitor.model import Article, Block, Link
from monitor.sources.feeds import FeedError, document_type, parse_feed, read_feed
from monitor.sources.pages import decode_html, extract_article

FEED_URL = "https://asiadispatch.example/world/asia/feed/"
PAGE_URL = "https://asiadispatch.example/world/asia/japan/japan-north-korea-held-meeting-in-may/"


def expected(seeds: Path, name: str) -> dict[str, object]:
    data = json.loads((seeds / "expected" / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def feed_articles(seeds: Path, name: str) -> tuple[Article, ...]:
    content = (seeds / "feeds" / name).read_bytes()
    return parse_feed(content, source="asia-dispatch", url=FEED_URL).articles


def test_rss_item_equals_the_expected_article(seeds: Path) -> None:
    article = feed_articles(seeds, "asia.rss")[0]

    assert article.to_json() == expected(seeds, "japan-north-korea-meeting.feed.json")


@pytest.mark.parametrize("name", ["asia.atom", "asia.json"])
def test_atom_and_json_feed_give_the_same_article_plus_their_update_time(
    seeds: Path, name: str
) -> None:
    article = feed_articles(seeds, name)[0]

    want = expected(seeds, "japan-north-korea-meeting.feed.json")
    assert article.to_json() == {**want, "updated": "2024-07-02T11:05:00Z"}


def test_page_equals_the_expected_article(seeds: Path) -> None:
    html = (seeds / "pages" / "japan-north-korea-meeting.html").read_text(encoding="utf-8")

    article = extract_article(html, url=PAGE_URL + "?utm_source=feed", source="asia-dispatch")

    assert article.to_json() == expected(seeds, "japan-north-korea-meeting.page.json")


def test_page_and_feed_item_are_the_same_article(seeds: Path) -> None:
    html = (seeds / "pages" / "japan-north-korea-meeting.html").read_text(encoding="utf-8")
    page = extract_article(html, url=PAGE_URL, source="asia-dispatch")

    assert page.id == feed_articles(seeds, "asia.rss")[0].id


def test_expected_article_carries_the_seed_text_and_none_of_its_chrome(seeds: Path) -> None:
    seed = (seeds / "000_52f7a3d0630aa9f2.txt").read_text(encoding="utf-8")
    lines = [line for line in seed.splitlines() if line.strip()]
    page = expected(seeds, "japan-north-korea-meeting.page.json")
    texts = [page["title"], page["lede"], *(b["text"] for b in page["body"])]  # type: ignore[attr-defined]

    assert texts == lines[2:-2]
    assert lines[0] == "Friday, November 22, 2024"
    assert lines[-2:] == ["RELATED ARTICLES", "Most Popular"]
    assert page["section"] == ["World", "Asia", "Japan"]
    assert [b["kind"] for b in page["body"]].count("heading") == 1  # type: ignore[attr-defined]
    assert len(page["related"]) == 3  # type: ignore[arg-type]


def test_near_misses_are_in_the_feed(seeds: Path) -> None:
    titles = [a.title for a in feed_articles(seeds, "asia.rss")]

    assert titles[1].startswith("Japan and South Korea leaders")
    assert titles[2] == "Tokyo protests North Korean missile launch"


def test_identity_survives_reordering_and_redating(seeds: Path) -> None:
    rss = (seeds / "feeds" / "asia.rss").read_text(encoding="utf-8")
    redated = rss.replace("Tue, 02 Jul 2024 09:41:00 GMT", "Wed, 03 Jul 2024 10:00:00 GMT")
    items = redated.split("<item>")
    reordered = items[0] + "<item>" + "<item>".join(reversed(items[1:]))
    reordered = reordered.replace("</channel>", "").replace("</rss>", "") + "</channel></rss>"

    original = {a.id for a in feed_articles(seeds, "asia.rss")}
    again = parse_feed(reordered.encode(), source="asia-dispatch", url=FEED_URL).articles

    assert {a.id for a in again} == original


def test_items_without_guid_or_link_are_identified_by_content() -> None:
    feed = b"""<rss version="2.0"><channel><title>t</title>
    <item><title>One</title><description>first</description></item>
    <item><title>Two</title><description>second</description></item>
    </channel></rss>"""

    first = parse_feed(feed, source="s", url="https://example.com/feed").articles
    second = parse_feed(feed, source="s", url="https://example.com/feed").articles

    assert [a.id for a in first] == [a.id for a in second]
    assert len({a.id for a in first}) == 2


def test_a_broken_feed_is_still_read_and_its_problem_reported(seeds: Path) -> None:
    content = (seeds / "feeds" / "broken.rss").read_bytes()

    feed = parse_feed(content, source="business", url=FEED_URL)

    assert feed.problem and "not well-formed" in feed.problem
    assert feed.articles[0].title.startswith("Japan’s exports rise")
    assert all(a.title for a in feed.articles)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"version": "https://jsonfeed.org/version/1.1"}', b'{"items": []}'],
)
def test_bad_json_feeds_raise_a_clear_error(content: bytes) -> None:
    with pytest.raises(FeedError, match="JSON"):
        parse_feed(content, source="s", url="https://example.com/feed.json")


def test_garbage_is_not_a_feed() -> None:
    with pytest.raises(FeedError, match="not a feed"):
        parse_feed(b"\x00\x01 definitely not xml", source="s", url="https://example.com/x")


def test_document_type_is_told_by_content_before_media_type(seeds: Path) -> None:
    assert document_type((seeds / "feeds" / "asia.rss").read_bytes(), "text/html") == "feed"
    assert document_type((seeds / "feeds" / "asia.atom").read_bytes()) == "feed"
    assert document_type((seeds / "feeds" / "asia.json").read_bytes()) == "json"
    page = (seeds / "pages" / "japan-north-korea-meeting.html").read_bytes()
    assert document_type(page, "application/xml") == "html"


def test_html_is_decoded_with_the_declared_charset() -> None:
    text = "<html><head><meta charset='shift_jis'></head><body><p>北朝鮮</p></body></html>"

    assert "北朝鮮" in decode_html(text.encode("shift_jis"))
    assert "北朝鮮" in decode_html(text.encode("shift_jis"), "text/html; charset=Shift_JIS")
    assert decode_html("café".encode("windows-1252")) == "café"


TITLES = ["北朝鮮、拉致問題で日本と協議", "Corée du Nord : l’enlèvement évoqué", "Ñandú “quoted”"]


def feed_with_a_bad_byte(flavour: str) -> bytes:
    """A UTF-8 feed (RSS 2.0, read by fastfeed, or RSS 0.91, read by feedparser) whose last
    item has one byte that is not UTF-8 (a windows-1252 é pasted into it)."""
    items = "".join(
        f"<item><title>{title}</title><link>https://example.com/{n}</link></item>"
        for n, title in enumerate(TITLES)
    )
    bad = "<item><title>Caf@ bad</title><link>https://example.com/bad</link></item>"
    version = "2.0" if flavour == "rss2" else "0.91"
    document = f'<?xml version="1.0" encoding="utf-8"?><rss version="{version}"><channel>'
    document += f"<title>t</title>{items}{bad}</channel></rss>"
    return document.encode().replace(b"Caf@", b"Caf\xe9")


@pytest.mark.parametrize("flavour", ["rss2", "rss091"])
def test_one_bad_byte_spoils_only_its_own_character(flavour: str) -> None:
    content = feed_with_a_bad_byte(flavour)

    feed = parse_feed(content, source="s", url="https://example.com/feed",
                      headers={"Content-Type": "application/rss+xml; charset=utf-8"})  # fmt: skip

    assert [a.title for a in feed.articles] == [*TITLES, "Caf\ufffd bad"]
    assert feed.problem == "1 byte(s) invalid in utf-8, replaced with U+FFFD"


def test_a_bad_byte_in_a_json_feed_spoils_only_its_own_character() -> None:
    items = [{"id": str(n), "title": title} for n, title in enumerate(TITLES)]
    document = {"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": items}
    content = json.dumps(document, ensure_ascii=False).encode().replace("Ñ".encode(), b"\xd1")

    feed = parse_feed(content, source="s", url="https://example.com/feed.json")

    assert [a.title for a in feed.articles] == [*TITLES[:2], "\ufffdandú “quoted”"]
    assert feed.problem == "1 byte(s) invalid in utf-8, replaced with U+FFFD"


def test_a_feed_in_its_xml_declarations_encoding_not_the_headers_is_read_in_it() -> None:
    text = f'<rss version="2.0"><channel><title>t</title><item><title>{TITLES[0]}</title>'
    content = '<?xml version="1.0" encoding="Shift_JIS"?>' + text + "</item></channel></rss>"

    feed = parse_feed(content.encode("cp932"), source="s", url="https://example.com/f",
                      headers={"Content-Type": "application/rss+xml; charset=utf-8"})  # fmt: skip

    assert [a.title for a in feed.articles] == TITLES[:1]
    assert feed.problem == "not in the HTTP header's charset; read as cp932, the XML declaration's"


def test_a_feed_wholly_in_another_encoding_than_declared_is_left_to_feedparser() -> None:
    text = "".join(
        f"<item><title>{t} numéro {n}</title></item>" for n, t in enumerate(TITLES[1:] * 9)
    )
    content = f'<rss version="2.0"><channel><title>t</title>{text}</channel></rss>'

    feed = parse_feed(content.encode("windows-1252"), source="s", url="https://example.com/f",
                      headers={"Content-Type": "application/rss+xml; charset=utf-8"})  # fmt: skip

    assert feed.articles[0].title == "Corée du Nord : l’enlèvement évoqué numéro 0"
    assert feed.problem and "parsed as windows-1252" in feed.problem


def test_max_items_keeps_a_json_feeds_newest_items_in_document_order() -> None:
    dates = {"b": "2024-07-02T05:00:00Z", "c": "2024-07-02T09:00:00+02:00", "e": None,
             "d": "2024-07-02T01:00:00Z"}  # fmt: skip
    items = [{"id": k, "title": k, "date_published": v} for k, v in dates.items()]
    items.insert(0, {"id": "a", "title": "a", "date_modified": "2024-07-02T08:00:00Z"})
    content = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items})

    feed = read_feed(content.encode(), source="s", url="https://example.com/f", max_items=3)

    assert [a.title for a in feed.articles()] == ["a", "b", "c"]
    assert feed.dropped == 2


def test_article_json_round_trips(seeds: Path) -> None:
    article = feed_articles(seeds, "asia.atom")[0]
    article = replace(article, section=("World", "Asia"))

    assert Article.from_json(article.to_json()) == article


def test_article_pickles_whole_as_worker_processes_send_it(seeds: Path) -> None:
    article = feed_articles(seeds, "asia.atom")[0]
    article = replace(
        article,
        section=("World", "Asia"),
        related=(Link("More", "https://e.example/more"),),
        language="en",
        tags=("japan",),
        title_generated=True,
    )

    copied = pickle.loads(pickle.dumps(article, protocol=pickle.HIGHEST_PROTOCOL))

    assert copied == article
    assert [type(block) for block in copied.body] == [Block] * len(article.body)
    assert copied.published is not None and copied.published == article.published


def test_json_feed_items_sharing_an_id_under_different_urls_are_known_by_their_urls() -> None:
    items = [{"id": "1", "url": f"https://e.example/{n}", "title": f"Story {n}"} for n in range(3)]
    document = {"version": "https://jsonfeed.org/version/1.1", "items": items}

    feed = read_feed(json.dumps(document).encode(), source="e", url=FEED_URL)

    assert len({entry.id for entry in feed.entries}) == 3
    assert feed.collisions == (
        "3 items share the guid '1'; the oldest keeps it, the others are known by their links",
    )


def test_different_items_sharing_a_guid_without_links_stay_one_and_are_reported() -> None:
    items = "".join(
        f"<item><guid isPermaLink='false'>x</guid><title>Story {n}</title></item>" for n in range(2)
    )
    same = "<item><guid>y</guid><title>Again</title><link>https://e.example/a</link></item>" * 2
    content = f"<rss version='2.0'><channel><title>t</title>{items}{same}</channel></rss>"

    feed = read_feed(content.encode(), source="e", url=FEED_URL)

    assert len({entry.id for entry in feed.entries}) == 2
    assert feed.collisions == (
        "2 different items share the guid 'x' and no link tells them apart; only the first counts",
    )

"""The lxml fast path reads feeds exactly as feedparser does, or leaves them to it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from benchmarks.feed_farm import FeedFarm
from monitor.sources import fastfeed
from monitor.sources.feeds import FeedEntries, read_feed, read_feed_with_feedparser

URL = "https://news.example/section/feed/"
XML = {"content-type": "application/rss+xml; charset=utf-8"}


def fast_equals_feedparser(
    content: bytes, headers: Mapping[str, str] = XML, url: str = URL
) -> bool:
    """Both paths give the same feed; True if the fast path took the document."""
    fast = read_feed(content, source="s", url=url, headers=headers)
    slow = read_feed_with_feedparser(content, source="s", url=url, headers=headers)

    assert fast.title == slow.title
    assert [e.id for e in fast.entries] == [e.id for e in slow.entries]
    assert [a.to_json() for a in fast.articles()] == [a.to_json() for a in slow.articles()]
    assert fast.hints == slow.hints
    assert fast.problem == slow.problem
    return fastfeed.read(content, {"content-location": url, **headers}) is not None


@pytest.mark.parametrize("name", ["asia.rss", "asia.atom"])
def test_seed_feeds_take_the_fast_path_with_the_same_result(seeds: Path, name: str) -> None:
    assert fast_equals_feedparser((seeds / "feeds" / name).read_bytes(), {})


def test_a_broken_feed_falls_back_to_feedparser(seeds: Path) -> None:
    content = (seeds / "feeds" / "broken.rss").read_bytes()

    assert not fast_equals_feedparser(content)
    assert read_feed(content, source="s", url=URL).problem


def test_farm_feeds_take_the_fast_path_with_the_same_result() -> None:
    farm = FeedFarm(40)
    for spec in farm.specs[:40:3]:
        assert fast_equals_feedparser(farm.body(spec, 0))
        assert fast_equals_feedparser(farm.body(spec, 1))


def rss(items: str, channel: str = "", root: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<rss version="2.0" {root} xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">'
        f"<channel><title>Feed &amp; more</title>{channel}{items}</channel></rss>"
    ).encode()


ITEM = (
    "<item><title>A &lt;b&gt;bold&lt;/b&gt; move</title>"
    "<link>https://news.example/a?x=1&amp;y=2</link>"
    "<description><![CDATA[<p>First.</p><p>Second paragraph.</p>]]></description>"
    "<pubDate>Tue, 02 Jul 2024 09:41:00 +0200</pubDate><category>World</category>"
    "<category> </category><dc:creator>Jane Roe</dc:creator></item>"
)

VARIANTS = {
    "plain": rss(ITEM),
    "hints": rss(
        ITEM,
        "<ttl>30</ttl><sy:updatePeriod>daily</sy:updatePeriod>"
        "<sy:updateFrequency>4</sy:updateFrequency><language>pt-BR</language>"
        "<skipHours><hour>1</hour><hour>2</hour></skipHours>"
        "<skipDays><day>Sunday</day></skipDays>"
        "<image><url>https://news.example/i.png</url><title>Logo</title>"
        "<link>https://news.example/</link></image>",
    ),
    "permalink guid before link": rss(
        "<item><guid>https://news.example/g/1</guid><title>T</title>"
        "<link>https://news.example/l/1</link></item>"
    ),
    "permalink guid alone": rss(
        "<item><guid>https://news.example/g/2</guid><title>T</title></item>"
    ),
    "relative permalink guid": rss("<item><guid>/g/3</guid><title>T</title></item>"),
    "opaque guid": rss('<item><guid isPermaLink="false">x-1</guid><title>T</title></item>'),
    "relative link": rss("<item><title>T</title><link>/rel/1</link></item>"),
    "content before description": rss(
        "<item><title>T</title><content:encoded>&lt;p&gt;Body&lt;/p&gt;</content:encoded>"
        "<description>Short</description></item>"
    ),
    "content only": rss(
        "<item><title>T</title><content:encoded><![CDATA[<p>Only</p>]]></content:encoded></item>"
    ),
    "no guid or link": rss("<item><title>One</title><description>first</description></item>"),
    "odd dates": rss(
        "<item><title>T</title><link>https://news.example/d</link>"
        "<pubDate>2024-07-02T09:41:00Z</pubDate></item>"
        "<item><title>U</title><link>https://news.example/e</link>"
        "<pubDate>Tue, 2 Jul 24 09:41 EST</pubDate></item>"
        "<item><title>V</title><link>https://news.example/f</link>"
        "<pubDate>not a date</pubDate></item>"
    ),
    "author with e-mail": rss("<item><title>T</title><author>a@b.example (A B)</author></item>"),
    "markup in description": rss(
        "<item><title>T</title><description><p>x</p></description></item>"
    ),
    "unknown element": rss("<item><title>T</title><media:x xmlns:media='urn:m'/></item>"),
    "root xml:lang": rss(ITEM, root='xml:lang="de-AT"'),
    "rss 0.91": rss(ITEM).replace(b'version="2.0"', b'version="0.91"'),
    "cp1252 and mojibake": rss("<item><title>Caf\u00c3\u00a9 \u0080 ok</title></item>"),
    "whitespace": rss("<item><title>\n  T  \n</title><link> https://news.example/w </link></item>"),
    "empty item": rss("<item></item><item><title>T</title></item>"),
    "doctype": rss(ITEM).replace(b"<rss", b"<!DOCTYPE rss [<!ENTITY e 'x'>]><rss", 1),
    "latin-1": rss(ITEM).replace(b"UTF-8", b"ISO-8859-1"),
}

ATOM_ENTRY = (
    "<entry><id>{id}</id><title type='html'>A &amp;lt;i&amp;gt;T&amp;lt;/i&amp;gt;</title>"
    "<link rel='alternate' href='https://news.example/atom/1'/><link rel='self' href='{id}'/>"
    "<published>2024-07-02T09:41:00.250+02:00</published>"
    "<updated>2024-07-02T11:41:00+02:00</updated><author><name>Jo</name></author>"
    "<category term='World'/><category label='Lab'/><summary>S</summary>"
    "<content type='html'>&lt;p&gt;Body&lt;/p&gt;</content></entry>"
)


def atom(entry: str, lang: str = 'xml:lang="en-GB"') -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" {lang}>'
        f"<title>Atom</title><id>urn:x</id><updated>2024-07-02T11:41:00Z</updated>{entry}</feed>"
    ).encode()


ATOM_VARIANTS = {
    "url id": atom(ATOM_ENTRY.format(id="https://news.example/atom/id/1")),
    "tag id": atom(ATOM_ENTRY.format(id="tag:news.example,2024:1")),
    "xhtml": atom(
        "<entry><id>https://news.example/x</id><title>T</title><content type='xhtml'>"
        "<div xmlns='http://www.w3.org/1999/xhtml'><p>x</p></div></content></entry>"
    ),
    "no lang": atom(ATOM_ENTRY.format(id="https://news.example/atom/id/2"), lang=""),
    "equal dates": atom(
        "<entry><id>https://news.example/q</id><title>T</title>"
        "<published>2024-07-02T09:41:00Z</published><updated>2024-07-02T09:41:00Z</updated>"
        "</entry>"
    ),
    "xml:base": atom(
        "<entry xml:base='https://other.example/dir/'><id>urn:b</id><title>T</title>"
        "<link rel='alternate' href='page/1'/></entry>"
    ),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_rss_variants_read_the_same_either_way(name: str) -> None:
    fast_equals_feedparser(VARIANTS[name])


@pytest.mark.parametrize("name", sorted(ATOM_VARIANTS))
def test_atom_variants_read_the_same_either_way(name: str) -> None:
    fast_equals_feedparser(ATOM_VARIANTS[name], {"content-type": "application/atom+xml"})


def test_the_fast_path_takes_common_documents_and_leaves_odd_ones() -> None:
    taken = {name for name, content in VARIANTS.items() if fast_equals_feedparser(content)}

    assert {"plain", "hints", "permalink guid before link", "opaque guid", "relative link"} <= taken
    assert not {"markup in description", "doctype", "rss 0.91", "latin-1"} & taken


def test_content_language_header_is_the_default_language() -> None:
    headers = {**XML, "Content-Language": "fr-CA"}

    assert fast_equals_feedparser(VARIANTS["plain"], headers)
    article = read_feed(VARIANTS["plain"], source="s", url=URL, headers=headers).articles()[0]
    assert article.language == "fr"


def test_xml_base_is_left_to_feedparser() -> None:
    rss_with_base = rss(
        "<item><title>T</title><link>rel/1</link></item>",
        root='xml:base="https://other.example/dir/"',
    )
    assert not fast_equals_feedparser(rss_with_base)
    assert not fast_equals_feedparser(
        ATOM_VARIANTS["xml:base"], {"content-type": "application/atom+xml"}
    )
    [article] = read_feed(rss_with_base, source="s", url=URL, headers=XML).articles()
    assert article.url == "https://other.example/dir/rel/1"


# Items in document order: (title, RSS pubDate or Atom date, Atom element for it).
DATED = [
    ("five", "Tue, 02 Jul 2024 05:00:00 GMT", "published"),
    ("undated", "", ""),
    ("nine", "Tue, 02 Jul 2024 09:00:00 +0000", "updated"),
    ("one", "Tue, 02 Jul 2024 01:00:00 GMT", "published"),
    ("seven", "Tue, 02 Jul 2024 09:00:00 +0200", "published"),  # 07:00 UTC
    ("odd date", "not a date", "published"),
    ("three", "Tue, 02 Jul 2024 03:00:00 GMT", "updated"),
]


def dated_rss() -> bytes:
    return rss("".join(
        f"<item><title>{title}</title><link>https://news.example/{title}</link>"
        + (f"<pubDate>{date}</pubDate>" if date else "") + "</item>"
        for title, date, _ in DATED
    ))  # fmt: skip


def dated_atom() -> bytes:
    def date(text: str, tag: str) -> str:
        if not tag:
            return ""
        iso = text if text == "not a date" else parsedate_to_datetime(text).isoformat()
        return f"<{tag}>{iso}</{tag}>"

    entries = "".join(
        f"<entry><id>urn:{title}</id><title>{title}</title>{date(text, tag)}</entry>"
        for title, text, tag in DATED
    )
    return f'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{entries}</feed>'.encode()


@pytest.mark.parametrize(
    ("content", "headers"),
    [(dated_rss(), XML), (dated_atom(), {"content-type": "application/atom+xml"})],
    ids=["rss", "atom"],
)
def test_max_items_keeps_the_newest_in_document_order_either_way(
    content: bytes, headers: Mapping[str, str]
) -> None:
    def titles(max_items: int, read: Callable[..., FeedEntries]) -> list[str]:
        feed = read(content, source="s", url=URL, headers=headers, max_items=max_items)
        assert feed.dropped == len(DATED) - max_items
        return [a.title for a in feed.articles()]

    for read in (read_feed, read_feed_with_feedparser):
        assert titles(4, read) == ["five", "nine", "seven", "three"]
        assert titles(6, read) == ["five", "undated", "nine", "one", "seven", "three"]
    assert fastfeed.read(content, {"content-location": URL, **headers}, 4) is not None


FILE_URL = "file:///home/user/feeds/feed.xml"


def test_local_files_take_the_fast_path_with_the_same_result(seeds: Path) -> None:
    """As `monitor preview FILE` and `match ... FILE` read them: a file:/// base, where
    feedparser resolves a relative URL to `file://home/...` (a slash lost), so a document
    with one is left to it."""
    taken = {
        name for name, content in VARIANTS.items() if fast_equals_feedparser(content, XML, FILE_URL)
    }
    for content in ATOM_VARIANTS.values():
        fast_equals_feedparser(content, {"content-type": "application/atom+xml"}, FILE_URL)
    farm = FeedFarm(40)
    for spec in farm.specs[:40:3]:
        assert fast_equals_feedparser(farm.body(spec, 0), XML, FILE_URL)
    assert fast_equals_feedparser((seeds / "feeds" / "asia.rss").read_bytes(), {}, FILE_URL)
    assert not fast_equals_feedparser((seeds / "feeds" / "asia.atom").read_bytes(), {}, FILE_URL)
    assert {"plain", "hints", "opaque guid"} <= taken
    assert "relative link" not in taken

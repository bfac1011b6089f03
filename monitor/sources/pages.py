"""HTML pages to Articles, and the links a page offers: its feeds and, on a front, its articles.

The body comes from trafilatura run on the page with its chrome removed first
(navigation, breadcrumbs, share buttons, advertisements, "Related"/"Most Popular" boxes,
bylines and everything above the headline), because trafilatura alone keeps some of it on
news layouts. Everything else comes from structured data and markup (monitor.sources.pagemeta).

Work is bounded whatever the page: at most MAX_HTML_CHARS characters are parsed (lxml
recovers the cut document; libxml2 also stops nesting at depth 256), the metadata is read
from at most MAX_TREE_ELEMENTS elements, and trafilatura sees at most MAX_BODY_ELEMENTS
elements and MAX_BODY_TEXT_CHARS characters of text. Whatever lies beyond a cap is
ignored, so a 5 MB page of nested divs or 200,000 paragraphs is done within about two
seconds (benchmarks/bench_extract.py prints the figures).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urljoin, urlsplit

import lxml.html
from lxml import etree

from monitor.model import Article, Block, BlockKind, article_id
from monitor.sources.charset import decode_html
from monitor.sources.cmsmarkup import class_words_of
from monitor.sources.htmltext import clean_text, html_parser, html_to_blocks
from monitor.sources.identity import article_identity, canonical_url, is_http_url
from monitor.sources.pagedates import trackback_date
from monitor.sources.pagemeta import (
    PageMeta,
    cap_text,
    chrome_heading,
    heading_block,
    read_page_meta,
    truncate,
)

__all__ = [
    "MAX_BODY_ELEMENTS",
    "MAX_BODY_TEXT_CHARS",
    "MAX_HTML_CHARS",
    "MAX_TREE_ELEMENTS",
    "article_links",
    "decode_html",
    "extract_article",
    "feed_links",
    "parse_html",
]

MAX_HTML_CHARS = 4_000_000
MAX_TREE_ELEMENTS = 30_000
MAX_BODY_ELEMENTS = 5_000
MAX_BODY_TEXT_CHARS = 200_000
FALLBACK_BELOW_CHARS = 1_500
_STATED_MIN_CHARS = 400
_STATED_RATIO = 1.5

Element: TypeAlias = lxml.html.HtmlElement

_FEED_TYPES = {
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/rdf+xml",
}
_BODY_TAGS: dict[str, BlockKind] = {
    "p": "paragraph",
    "head": "heading",
    "quote": "quote",
    "row": "paragraph",
}
_CHROME_TAGS = (
    "//nav | //aside | //footer | //header | //form | //button | //figcaption | //noscript"
    " | //template | //iframe | //svg | //script | //style | //select | //textarea | //dialog"
    " | //figure[not(.//blockquote or .//table)] | //*[@hidden] | //*[@aria-hidden='true']"
    " | //*[@role='navigation' or @role='banner' or @role='contentinfo'"
    " or @role='complementary' or @role='search']"
)
_CHROME_WORDS = {
    "ad", "ads", "adslot", "advert", "advertisement", "advertising", "breadcrumb",
    "breadcrumbs", "byline", "comment", "comments", "crumbs", "dateline", "disqus", "kicker",
    "masthead", "meta", "newsletter", "outbrain", "paywall", "popular", "promo", "share",
    "sharing", "skip", "social", "sponsor", "sponsored", "subscribe", "taboola", "tags",
    "toolbar", "topics", "trending",
}  # fmt: skip
_CHROME_PREFIXES = ("advert", "breadcrumb", "related", "share", "social", "newsletter", "popular")
_CHROME_LINE = re.compile(
    r"^(advertisement|sponsored( content)?|related( articles| stories)?|most (popular|read)"
    r"|read more|share( this( article| story)?)?|copy link|skip to content)$",
    re.IGNORECASE,
)
_BYLINE = re.compile(r"^(by|published|updated|posted|last updated|written by)\b", re.IGNORECASE)
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(
    rf"\b(\d{{1,2}} {_MONTH},? \d{{4}}|{_MONTH} \d{{1,2}},? \d{{4}}|\d{{4}}-\d{{2}}-\d{{2}})\b",
    re.IGNORECASE,
)
_LABEL_ONLY = re.compile(r"^[\W\s]*(share( this)?|follow( us)?|tags?|topics?|via)?[\W\s]*$", re.I)
_COPYRIGHT = re.compile(r"^(©|\(c\)|copyright\b)", re.IGNORECASE)
_SHORT_BLOCK = 160
_NON_ARTICLE_SEGMENTS = {
    "tag", "tags", "category", "categories", "author", "authors", "page", "search", "login",
    "signin", "sign-in", "logout", "register", "signup", "sign-up", "subscribe", "account",
    "feed", "feeds", "rss", "topic", "topics", "wp-admin", "wp-login.php", "cart", "newsletter",
}  # fmt: skip
_ASSET_SUFFIXES = (
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".svg", ".ico", ".css", ".js", ".pdf",
    ".zip", ".gz", ".mp3", ".mp4", ".m4a", ".webm", ".mov", ".xml", ".json", ".rss", ".atom",
    ".woff", ".woff2", ".ttf", ".txt", ".csv", ".doc", ".docx", ".xls", ".xlsx",
)  # fmt: skip
_DATE_PATH = re.compile(r"/(19|20)\d{2}/(0?[1-9]|1[0-2])(/|$)")
_ID_SEGMENT = re.compile(r"\d{5,}|^(?=[a-z0-9]*\d)(?=[a-z0-9]*[a-z])[a-z0-9]{8,}$")
# Comments go at parse time: React pages split sentences with <!-- --> and trafilatura
# drops a comment's tail text with it ("When <!-- -->President" kept only "When").
# lxml parsers must not be shared between threads: one per thread.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Compiled once: element.xpath(str) compiles its expression on every call.
_IN_TEXT_BLOCK = etree.XPath("ancestor::p or ancestor::blockquote or ancestor::h2 or ancestor::h3")
_IN_COMPOUND_BLOCK = etree.XPath("ancestor::quote or ancestor::item or ancestor::row")
_CHROME_ELEMENTS = etree.XPath(_CHROME_TAGS)
_PAGE_SUFFIX = re.compile(r"\.(s?html?|php|aspx?|jsp)$")


def extract_article(html: str, *, url: str, source: str, now: datetime | None = None) -> Article:
    """Normalize one article page: title, dates, section path, lede, body, related links.

    `now` (optional) bounds the fallback date search; structured dates are taken as stated.
    """
    tree = parse_html(html)
    meta = read_page_meta(tree, url, now=now, trackback=trackback_date(html, url))
    return Article(
        id=article_id(
            article_identity(source, guid="", guid_is_url=False, link=meta.url, text=meta.title)
        ),
        url=meta.url,
        source=source,
        title=meta.title,
        published=meta.published,
        updated=meta.updated,
        section=meta.section,
        authors=meta.authors,
        lede=meta.lede,
        body=_body(tree, meta, html),
        related=meta.related,
        language=meta.language,
        tags=meta.tags,
    )


def parse_html(html: str) -> Element:
    """A whole-document tree of at most MAX_HTML_CHARS characters and MAX_TREE_ELEMENTS."""
    text = re.sub(r"^\s*<\?xml[^>]*>", "", html[:MAX_HTML_CHARS])
    text = _XML_INVALID.sub("", text)  # lxml refuses NUL and C0 controls in text it is given
    try:
        tree = lxml.html.document_fromstring(text or "<html></html>", parser=html_parser())
    except (etree.ParserError, ValueError):
        tree = lxml.html.document_fromstring("<html></html>")
    truncate(tree, MAX_TREE_ELEMENTS)
    return tree


def feed_links(html: str, base_url: str) -> list[str]:
    """Absolute URLs of the page's <link rel="alternate"> feeds, in document order."""
    tree = parse_html(html)
    base = _base_url(tree, base_url)
    found = [
        urljoin(base, link.get("href", "").strip())
        for link in tree.iter("link")
        if "alternate" in (link.get("rel") or "").lower().split()
        and (link.get("type") or "").strip().lower() in _FEED_TYPES
        and (link.get("href") or "").strip()
    ]
    return list(dict.fromkeys(url for url in found if is_http_url(url)))


def article_links(html: str, base_url: str) -> list[str]:
    """Same-site links that look like articles, outside the page's chrome, in document order.

    An article link has a slug of three or more words, a date path (/2024/07/02/) or an
    id-like segment; tag, category, author, pagination, search, login and feed pages,
    assets, fragments and the page itself are left out. URLs are canonicalized.
    """
    tree = parse_html(html)
    base = _base_url(tree, base_url)
    canonical = tree.xpath(
        '//link[contains(concat(" ", normalize-space(@rel), " "), " canonical ")]'
    )
    pages = {
        canonical_url(base),
        *(canonical_url(urljoin(base, c.get("href", ""))) for c in canonical),
    }
    _drop_all(tree.xpath("//nav | //header | //footer | //aside | //*[@role='navigation']"))
    found: list[str] = []
    for anchor in tree.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href or href.startswith("#"):
            continue
        url = canonical_url(urljoin(base, href))
        if url not in pages and _same_site(url, base) and _looks_like_article(url):
            found.append(url)
    return list(dict.fromkeys(found))


def _base_url(tree: Element, url: str) -> str:
    hrefs = tree.xpath("//base/@href")
    return urljoin(url, str(hrefs[0]).strip()) if hrefs else url


def _same_site(url: str, base: str) -> bool:
    host = (urlsplit(url).hostname or "").removeprefix("www.")
    return is_http_url(url) and host == (urlsplit(base).hostname or "").removeprefix("www.")


def _looks_like_article(url: str) -> bool:
    parts = urlsplit(url)
    path = parts.path.lower()
    segments = [segment for segment in path.split("/") if segment]
    if not segments and not parts.query:
        return False
    if path.endswith(_ASSET_SUFFIXES) or _NON_ARTICLE_SEGMENTS.intersection(segments):
        return False
    query = dict(parse_qsl(parts.query))
    if {"s", "q", "page", "replytocom"} & set(query):
        return False
    last = _PAGE_SUFFIX.sub("", segments[-1]) if segments else ""
    words = [word for word in re.split(r"[-_]+", last) if word]
    return (
        len(words) >= 3
        or bool(_DATE_PATH.search(path))
        or any(_ID_SEGMENT.search(segment) for segment in segments)
        or query.get("p", "").isdigit()
    )


def _body(tree: Element, meta: PageMeta, html: str) -> tuple[Block, ...]:
    """The body from the page without its chrome (`tree` is reduced in place: the metadata
    has been read); if that gives nothing, from the whole page parsed again."""
    page = _without_chrome(tree, meta)
    blocks = _with_headings(_trafilatura_blocks(page, meta.url), page)
    if not blocks:
        bounded = parse_html(html)
        truncate(bounded, MAX_BODY_ELEMENTS)
        blocks = _trafilatura_blocks(bounded, meta.url) or _trafilatura_blocks(
            bounded, meta.url, precision=False
        )
    return tuple(_trimmed(_or_stated_body(blocks, meta, tree), meta))


def _or_stated_body(blocks: list[Block], meta: PageMeta, tree: Element) -> list[Block]:
    """The JSON-LD articleBody's paragraphs when it holds much more text than we found.

    Publishers state the whole text there for search engines; markup extraction falls
    short on some layouts (a body split across boxes, text in script-built widgets).
    Lines that are the page's own subheadings stay headings.
    """
    stated = meta.stated_body
    if len(stated) < _STATED_MIN_CHARS:
        return blocks
    found = sum(len(block.text) for block in blocks)
    if "<" in stated and re.search(r"<(p|div|br|h[1-6])\b", stated, re.IGNORECASE):
        paragraphs = [block.text for block in html_to_blocks(stated)]
    else:
        paragraphs = [clean_text(line) for line in re.split(r"\n+", stated)]
    paragraphs = [text for text in paragraphs if text]
    if sum(map(len, paragraphs)) < found * _STATED_RATIO or len(paragraphs) < 2:
        return blocks
    headings = {
        clean_text(h.text_content()) for h in tree.xpath("//body//h2 | //body//h3 | //body//h4")
    }
    return [Block("heading" if text in headings else "paragraph", text) for text in paragraphs]


def _without_chrome(tree: Element, meta: PageMeta) -> Element:
    """The page reduced to the article, in place: chrome removed, size bounded."""
    page = tree
    _drop_all(_CHROME_ELEMENTS(page))
    truncate(page, MAX_BODY_ELEMENTS)
    cap_text(page, MAX_BODY_TEXT_CHARS)
    keep = _holds_the_article(page)
    _drop_all(e for e in page.iter(etree.Element) if _chrome_box(e) and not keep(e))
    _drop_all(e for e in meta.related_nodes if not keep(e))
    for heading in page.xpath("//h2 | //h3 | //h4 | //h5"):
        if chrome_heading(heading):
            _drop_all(e for e in heading_block(heading) if not keep(e))
    lede = meta.lede_node
    if lede is not None and not keep(lede):
        _drop_all([lede])
    headline = _headline(page, meta.title)
    if headline is not None:
        _drop_all(e for e in _before(headline) if not keep(e))
        _drop_all([headline])
    _drop_all(e for e in page.iter("p", "div", "span", "small", "ul", "li") if _furniture(e))
    return page


def _holds_the_article(page: Element) -> Callable[[Element], bool]:
    """Whether an element holds a third or more of the page's paragraph text.

    One pass over the paragraphs adds each one's length to all its ancestors.
    """
    held: dict[Element, int] = {}
    total = 0
    for paragraph in page.iter("p"):
        size = len(clean_text(paragraph.text_content()))
        total += size
        node: Element | None = paragraph
        while node is not None:
            held[node] = held.get(node, 0) + size
            node = node.getparent()

    def keep(element: Element) -> bool:
        return total > 0 and held.get(element, 0) * 3 >= total

    return keep


def _chrome_box(element: Element) -> bool:
    classes, ident = element.get("class"), element.get("id")
    return (classes is not None or ident is not None) and _chrome_names(classes or "", ident or "")


@lru_cache(maxsize=8192)
def _chrome_names(classes: str, ident: str) -> bool:
    words = class_words_of(classes, ident)
    return bool(_CHROME_WORDS.intersection(words)) or any(
        word.startswith(_CHROME_PREFIXES) for word in words
    )


def _headline(page: Element, title: str) -> Element | None:
    key = _words(title)
    for heading in page.xpath("//h1 | //h2"):
        if key and _words(heading.text_content()) == key:
            return heading
    return None


def _before(element: Element) -> Iterator[Element]:
    """Elements that precede `element` in document order, other than its ancestors."""
    node = element
    while node.getparent() is not None and node.tag != "body":
        yield from node.itersiblings(preceding=True)
        node = node.getparent()


def _furniture(element: Element) -> bool:
    """A short block that is a byline, a dateline, a row of links or a copyright line."""
    if element.find(".//p") is not None:
        return False
    raw = element.text_content()
    if len(raw) > 4 * _SHORT_BLOCK:  # far too long even before white space is folded
        return False
    text = clean_text(raw)
    if not text or len(text) > _SHORT_BLOCK:
        return False
    if _IN_TEXT_BLOCK(element):
        return False
    links = list(element.iter("a"))
    outside_links = text
    for anchor in links:
        outside_links = outside_links.replace(clean_text(anchor.text_content()), " ", 1)
    return (
        bool(_BYLINE.match(text) and len(text) < 100 and (links or _DATE.search(text)))
        or bool(_DATE.search(text) and len(text) < 60 and not text.endswith("."))
        or (len(links) >= 2 and bool(_LABEL_ONLY.match(outside_links)))
        or bool(_COPYRIGHT.match(text))
    )


def _trafilatura_body(page: Element, url: str, *, fast: bool, precision: bool) -> Any:
    """trafilatura's body element (its XML vocabulary: p, head, quote, list/item, table/row/
    cell), from bare_extraction: extract() would also serialize it and fingerprint the text."""
    import trafilatura  # here, not at the top: commands that read no page skip its 0.15 s import

    options = copy.copy(_extractor(fast, precision))
    options.url = options.source = url or None
    document = trafilatura.bare_extraction(page, options=options, as_dict=False)
    return getattr(document, "body", None) if document is not None else None


@lru_cache(maxsize=4)
def _extractor(fast: bool, precision: bool) -> Any:
    """trafilatura's options, built once: its Extractor reads a dozen settings through
    configparser each time it is made (2 ms, a tenth of a small page's extraction)."""
    from trafilatura.settings import Extractor

    return Extractor(
        output_format="python",
        fast=fast,
        precision=precision,
        comments=False,
        tables=True,
        with_metadata=False,
    )


def _trafilatura_blocks(page: Element, url: str, *, precision: bool = True) -> list[Block]:
    """trafilatura's own extraction first; its fallbacks (readability, jusText) only when
    that gives less than FALLBACK_BELOW_CHARS of text and leaves out more than a fifth of
    the page's: they cost as much again and seldom change a full article, and a short one
    taken whole (a brief, dense CJK text) has nothing more to give. trafilatura copies the
    tree it is given, so a second run sees the same page."""
    root = _trafilatura_body(page, url, fast=True, precision=precision)
    found = len("".join(root.itertext())) if root is not None else 0
    if found < FALLBACK_BELOW_CHARS and found * 5 < len(page.text_content()) * 4:
        fuller = _trafilatura_body(page, url, fast=False, precision=precision)
        root = fuller if fuller is not None else root
    if root is None:
        return []
    blocks: list[Block] = []
    for element in root.iter("p", "head", "quote", "item", "row"):
        if element.tag != "row" and _IN_COMPOUND_BLOCK(element):
            continue
        if element.tag == "row":  # a table row: its cells, one paragraph
            cells = (clean_text("".join(cell.itertext())) for cell in element.iter("cell"))
            text = " ".join(cell for cell in cells if cell)
        else:
            text = clean_text("".join(element.itertext()))
        kind: BlockKind = "list" if element.tag == "item" else _BODY_TAGS[element.tag]
        if text:
            blocks.append(Block(kind, text))
    return blocks


def _with_headings(blocks: list[Block], page: Element) -> list[Block]:
    """Put back subheadings trafilatura dropped between two paragraphs it kept.

    trafilatura drops headings that sit directly under <body> (bare pages) even though it
    keeps the paragraphs around them.
    """
    index = {block.text: i for i, block in reversed(list(enumerate(blocks)))}
    inserts: dict[int, list[Block]] = {}
    pending: list[Block] = []
    previous = -2
    for element in page.iter("p", "h2", "h3", "h4", "h5", "h6"):
        text = clean_text(element.text_content())
        if element.tag != "p":
            if text and text not in index:
                pending.append(Block("heading", text))
            continue
        kept = index.get(text)
        if kept is not None and kept == previous + 1 and pending:
            inserts[kept] = pending
        pending = []
        previous = kept if kept is not None else -2
    return [extra for i, block in enumerate(blocks) for extra in [*inserts.get(i, []), block]]


def _trimmed(blocks: list[Block], meta: PageMeta) -> Iterator[Block]:
    """The blocks without a repeated title or standfirst at the start, or chrome labels.

    A lede that is only the meta description stays in the body when the body opens with
    it: publishers copy the first paragraph into the description (WordPress does by
    default), and the body is the article's whole text.
    """
    leading = {_words(meta.title), _words(meta.lede) if meta.lede_in_markup else ""} - {""}
    start = 0
    while start < len(blocks) and _words(blocks[start].text) in leading:
        start += 1
    for block in blocks[start:]:
        if not _CHROME_LINE.match(block.text):
            yield block


def _words(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().casefold()


def _drop_all(elements: Iterable[Element]) -> None:
    """Remove elements (keeping their tail text); already-detached ones are harmless."""
    for element in list(elements):
        if element.getparent() is not None:
            element.drop_tree()

"""What a page says about its article outside the body: structured data first, then markup.

JSON-LD (NewsArticle, BreadcrumbList, Person/Organization by @id, Yoast-style @graph) and
meta tags are what publishers maintain for search engines, so they win over heuristics on
the visible markup. The visible markup is read only where they are silent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeAlias
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from monitor.model import Link
from monitor.sources.cmsmarkup import (
    CHROME_ANCESTORS,
    class_words,
    in_related,
    keyword_tags,
    lede_element,
    tag_links,
)
from monitor.sources.htmltext import clean_text
from monitor.sources.identity import canonical_url, is_http_url
from monitor.sources.pagedates import (
    cap_text,
    first_time,
    htmldate,
    stated_day,
    time_elements,
    truncate,
)

__all__ = [
    "PageMeta",
    "cap_text",
    "chrome_heading",
    "class_words",
    "heading_block",
    "lede_element",
    "read_page_meta",
    "related_containers",
    "truncate",
]

Element: TypeAlias = lxml.html.HtmlElement

_STATED_BODY_CHARS = 200_000
_ARTICLE_TYPES = ("Article", "BlogPosting", "Report")
_HOME = {"home", "homepage", "start", "accueil", "inicio", "startseite", "home page"}
_RELATED_HEADING = re.compile(
    r"^(related|read more|more on this|see also|read next|more about|further reading)", re.I
)
_CHROME_HEADING = re.compile(
    r"^(most (popular|read|viewed|shared)|trending|popular|newsletter|share|follow us"
    r"|advertisement|sponsored|comments?|latest( news)?|top stories|recommended)\b",
    re.I,
)
_CHROME_ANCESTORS = CHROME_ANCESTORS
_TITLE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " · ", " » ")
_DATE_META = (
    "article:published_time",
    "og:published_time",
    "datePublished",
    "pubdate",
    "publish-date",
    "parsely-pub-date",
    "sailthru.date",
    "dc.date.issued",
    "DC.date.issued",
    "date",
)
_URL_DATE = re.compile(  # /2017/7/12/, /2020-06-03-, /20200413/ (a whole path segment)
    r"/(?P<y>(19|20)\d{2})/(?P<m>0?[1-9]|1[0-2])/(?P<d>0?[1-9]|[12]\d|3[01])(/|$)"
    r"|(?<!\d)(?P<y2>(19|20)\d{2})-(?P<m2>0[1-9]|1[0-2])-(?P<d2>0[1-9]|[12]\d|3[01])(?!\d)"
    r"|/(?P<y3>(19|20)\d{2})(?P<m3>0[1-9]|1[0-2])(?P<d3>0[1-9]|[12]\d|3[01])(/|$)"
)
_ZONED = re.compile(r"\d:\d{2}(?::\d{2})?(?:\.\d+)?\s*(?:Z|[+-]\d{2}:?\d{2}|[A-Za-z]{3,4})$")
_URL_DATE_KEYS = (("y", "y2", "y3"), ("m", "m2", "m3"), ("d", "d2", "d3"))
_TITLES = etree.XPath(".//h2 | .//h3 | .//h4")  # compiled once, used per link
_UPDATE_META = ("article:modified_time", "og:updated_time", "dateModified", "last-modified")


@dataclass(frozen=True, slots=True)
class PageMeta:
    """Every Article field of a page except its body and identity."""

    url: str
    title: str
    published: datetime | None
    updated: datetime | None
    section: tuple[str, ...]
    authors: tuple[str, ...]
    lede: str
    related: tuple[Link, ...]
    language: str | None
    tags: tuple[str, ...]
    stated_body: str = ""  # JSON-LD articleBody, as the page states it (text or HTML)
    lede_in_markup: bool = False  # the lede is a standfirst element, not a description
    # The elements the lede and the related links came from (the body leaves them out).
    lede_node: Element | None = field(default=None, compare=False, repr=False)
    related_nodes: tuple[Element, ...] = field(default=(), compare=False, repr=False)


@dataclass(slots=True)
class _LinkedData:
    """The JSON-LD article, its breadcrumb list and the web page, with @id references."""

    article: dict[str, Any]
    breadcrumbs: dict[str, Any]
    webpage: dict[str, Any]
    site_name: str
    index: dict[str, dict[str, Any]]

    def resolve(self, value: object) -> object:
        if isinstance(value, dict) and set(value) == {"@id"}:
            return self.index.get(str(value["@id"]), value)
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    def get(self, key: str) -> object:
        return self.resolve(self.article.get(key) or self.webpage.get(key))


def read_page_meta(
    tree: Element, url: str, *, now: datetime | None = None, trackback: str = ""
) -> PageMeta:
    """Title, dates, section path, authors, lede, related links, language, tags, canonical URL.

    `now` bounds htmldate's date search (it otherwise uses the clock); dates from
    structured data are taken as stated. `trackback` is the dc:date of the page's
    trackback block (pagedates.trackback_date: it is in a comment, which the tree lost).
    """
    try:
        return _read_page_meta(tree, url, now, trackback)
    finally:
        _meta_index.cache_clear()


def _read_page_meta(tree: Element, url: str, now: datetime | None, trackback: str) -> PageMeta:
    data = _linked_data(tree)
    page_url = _canonical(tree, data, url)
    title = _title(tree, data)
    published = _published(tree, data, page_url, now, trackback)
    lede = lede_element(tree)
    updated = first_time(
        _stated_dates(tree, data, "dateModified", _UPDATE_META, ("update", "modif"))
    )
    related = related_containers(tree)
    return PageMeta(
        url=page_url,
        title=title,
        published=published,
        updated=updated if updated and (published is None or updated > published) else None,
        section=tuple(_section(tree, data, title, page_url)),
        authors=tuple(_unique(_authors(tree, data))),
        lede=clean_text(lede.text_content()) if lede is not None else _description(tree, data),
        stated_body=_stated_body(data),
        lede_in_markup=lede is not None,
        lede_node=lede,
        related_nodes=tuple(related),
        related=tuple(_related(related, page_url)),
        language=_language(tree, data),
        tags=tuple(_unique(_tags(tree, data))),
    )


def related_containers(tree: Element) -> list[Element]:
    """Elements holding the "related articles" links: marked by class, or under a heading."""
    marked = [
        element
        for element in _marked(tree.find("body"), ("class", "id"), ("elated", "ELATED"))
        if any(word.startswith("related") for word in class_words(element))
        and not in_related(element.getparent())
        and _mostly_links(element)
    ]
    if marked:
        return marked
    found: list[Element] = []
    for heading in tree.xpath("//h2|//h3|//h4|//h5"):
        if _RELATED_HEADING.match(clean_text(heading.text_content())):
            found.extend(heading_block(heading))
    return found


def chrome_heading(heading: Element) -> bool:
    """A heading that titles page furniture ("Most Popular", "Newsletter", "Share")."""
    return bool(_CHROME_HEADING.match(clean_text(heading.text_content())))


def heading_block(heading: Element) -> list[Element]:
    """A heading with the list it titles: its own box if small, else the heading and list."""
    parent = heading.getparent()
    if parent is not None and parent.tag not in ("body", "main", "article") and len(parent) <= 4:
        box = parent.getparent()
        while (  # a title wrapper ("List-header") without links: the box is one level up
            parent.find(".//a") is None
            and box is not None
            and box.tag not in ("body", "main", "article")
            and len(box) <= 4
        ):
            parent, box = box, box.getparent()
        return [parent]
    following = heading.getnext()
    if following is not None and following.tag in ("ul", "ol", "div"):
        return [heading, following]
    return [heading]


def _mostly_links(element: Element) -> bool:
    text = len(clean_text(element.text_content()))
    linked = sum(len(clean_text(a.text_content())) for a in element.iter("a"))
    return text > 0 and linked * 2 >= text


def _linked_data(tree: Element) -> _LinkedData:
    items = list(_json_ld_items(tree))
    index = {str(item["@id"]): item for item in items if isinstance(item.get("@id"), str)}
    data = _LinkedData({}, {}, {}, "", index)
    for item in items:
        types = [str(name) for name in _as_list(item.get("@type"))]
        if not data.article and any(name.endswith(_ARTICLE_TYPES) for name in types):
            data.article = item
        elif not data.breadcrumbs and "BreadcrumbList" in types:
            data.breadcrumbs = item
        elif not data.webpage and "WebPage" in types:
            data.webpage = item
        elif not data.site_name and "WebSite" in types:
            data.site_name = _text(item.get("name"))
    publisher = data.resolve(data.article.get("publisher"))
    data.site_name = data.site_name or _text(publisher)
    return data


def _json_ld_items(tree: Element) -> Iterator[dict[str, Any]]:
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        try:
            data = json.loads(script.text or "", strict=False)
        except json.JSONDecodeError:
            continue
        stack = _as_list(data)
        while stack:
            item = stack.pop(0)
            if isinstance(item, dict):
                stack.extend(_as_list(item.get("@graph")))
                yield item


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _text(value: object) -> str:
    if isinstance(value, list):
        return _text(value[0]) if value else ""
    if isinstance(value, dict):
        return _text(value.get("name") or value.get("@value"))
    return clean_text(str(value)) if value is not None else ""


def _meta(tree: Element, name: str) -> str:
    values = _meta_all(tree, name)
    return values[0] if values else ""


def _meta_all(tree: Element, name: str) -> list[str]:
    return _meta_index(tree).get(name, [])


@lru_cache(maxsize=1)
def _meta_index(tree: Element) -> dict[str, list[str]]:
    """Every <meta> content by its property, name and itemprop, in document order: one
    pass instead of a document scan per name (read_page_meta clears it when done)."""
    index: dict[str, list[str]] = {}
    for meta in tree.iter("meta"):
        content = clean_text(meta.get("content") or "")
        if not content:
            continue
        for key in {meta.get("property"), meta.get("name"), meta.get("itemprop")} - {None}:
            index.setdefault(str(key), []).append(content)
    return index


def _canonical(tree: Element, data: _LinkedData, url: str) -> str:
    candidates = [
        *tree.xpath(
            '//link[contains(concat(" ", normalize-space(@rel), " "), " canonical ")]/@href'
        ),
        _meta(tree, "og:url"),
        _text(data.article.get("url")),
        _text(data.webpage.get("url")),
    ]
    for href in candidates:
        absolute = urljoin(url, str(href).strip()) if str(href).strip() else ""
        if is_http_url(absolute) and not _points_home(absolute, url):
            return canonical_url(absolute)
    return canonical_url(url) if url else ""


def _points_home(candidate: str, url: str) -> bool:
    """A canonical link to the site root from a deeper page is a template bug, not a URL."""
    return urlsplit(candidate).path in ("", "/") and urlsplit(url).path not in ("", "/")


def _title(tree: Element, data: _LinkedData) -> str:
    site = _meta(tree, "og:site_name") or data.site_name
    for candidate in (
        _text(data.article.get("headline")),
        _meta(tree, "og:title"),
        _meta(tree, "twitter:title"),
        _first_text(tree, "//article//h1"),
        _first_text(tree, "//h1"),
        _first_text(tree, "//title"),
    ):
        if candidate:
            return _strip_site_name(candidate, site)
    return ""


def _strip_site_name(title: str, site: str) -> str:
    site = site.casefold()
    for separator in _TITLE_SEPARATORS:
        head, sep, tail = title.rpartition(separator)
        if sep and head and (tail.casefold() == site or (not site and separator == " | ")):
            return head.strip()
        head, sep, tail = title.partition(separator)
        if sep and tail and site and head.casefold() == site:
            return tail.strip()
    return title


def _first_text(tree: Element, path: str) -> str:
    for element in tree.xpath(path):
        text = clean_text(element.text_content())
        if text:
            return text
    return ""


def _published(
    tree: Element, data: _LinkedData, page_url: str, now: datetime | None, trackback: str
) -> datetime | None:
    """Stated dates (JSON-LD, meta tags, the trackback block, <time> marked "publish",
    then unmarked <time>), else htmldate.

    <time> elements count only when they name at most two days (published and updated):
    more means a list of other stories' dates. When the stated dates disagree on the day,
    the one htmldate's quick search also finds wins (else the first).
    """
    stated = [
        (raw, parsed)
        for raw in (*_stated_dates(tree, data, "datePublished", _DATE_META, ()), trackback)
        if (parsed := stated_day(raw)) is not None
    ]
    for hint in ("publish", ""):
        timed = [
            (raw, t) for raw in time_elements(tree, hint) if (t := stated_day(raw)) is not None
        ]
        if timed and len({t.date() for _, t in timed}) <= 2:
            stated.extend(timed)
        if stated:
            break
    if not stated:
        return htmldate(tree, page_url, now)
    return _not_far_from_url(_agreed(tree, stated, page_url, now), page_url)


def _agreed(
    tree: Element, stated: list[tuple[str, datetime]], page_url: str, now: datetime | None
) -> datetime:
    if len({parsed.date() for _, parsed in stated}) == 1:
        return stated[0][1]
    found = htmldate(tree, page_url, now, extensive=False)
    if found is None:
        return stated[0][1]
    day = found.date()
    # First an instant stated with its zone on htmldate's day ("04:11+05:30" and
    # "04:11+00:00" are one wall clock with two offsets, one of them mislabelled), then
    # any value written on that day (the first: a zone-less wall clock or a bare date
    # never replaces a stated instant).
    for parsed in [p for raw, p in stated if p.date() == day and _ZONED.search(raw)] or [
        p for raw, p in stated if raw.strip()[:10] == day.isoformat()
    ]:
        return parsed
    return stated[0][1]


def _not_far_from_url(published: datetime, page_url: str) -> datetime:
    """The URL's own date (/2017/7/12/, /20200413/, -2020-06-03-) when the stated one is
    more than a day from it: the URL was minted at first publication, and a stated date
    that far off is a later republication or a template's (a day apart is a time zone)."""
    match = _URL_DATE.search(urlsplit(page_url).path)
    if match is None:
        return published
    try:
        y, m, d = (next(v for v in match.group(*keys) if v) for keys in _URL_DATE_KEYS)
        minted = datetime(int(y), int(m), int(d), tzinfo=UTC)
    except ValueError:
        return published
    return minted if abs(published - minted) > timedelta(days=2) else published


def _stated_dates(
    tree: Element, data: _LinkedData, key: str, metas: Iterable[str], hints: Iterable[str]
) -> Iterator[str]:
    """Candidate date strings, best first: JSON-LD, meta tags, then <time> elements."""
    yield _text(data.get(key))
    yield from (_meta(tree, name) for name in metas)
    for hint in hints:
        yield from time_elements(tree, hint)


def _section(tree: Element, data: _LinkedData, title: str, page_url: str) -> list[str]:
    crumbs = _breadcrumb_data(data) or _breadcrumb_markup(tree, page_url)
    crumbs = [name for name in crumbs if name]
    if crumbs and crumbs[0].casefold() in _HOME:
        crumbs = crumbs[1:]
    if crumbs and _same_words(crumbs[-1], title):
        crumbs = crumbs[:-1]
    if crumbs:
        return crumbs
    section = _text(data.article.get("articleSection")) or _meta(tree, "article:section")
    return [section] if section else []


def _breadcrumb_data(data: _LinkedData) -> list[str]:
    entries = [e for e in _as_list(data.breadcrumbs.get("itemListElement")) if isinstance(e, dict)]
    entries.sort(key=lambda e: int(e.get("position", 0) or 0))
    return [_text(e.get("name") or data.resolve(e.get("item"))) for e in entries]


def _breadcrumb_markup(tree: Element, page_url: str) -> list[str]:
    crumbs = _marked(tree, ("class", "id", "aria-label", "itemtype"), ("crumb", "BreadcrumbList"))
    for container in crumbs:
        names = [
            clean_text(a.text_content())
            for a in container.iter("a")
            if canonical_url(urljoin(page_url, a.get("href", ""))) != page_url
        ]
        if names:
            return names
    return []


def _marked(
    tree: Element | None, attributes: tuple[str, ...], needles: tuple[str, ...]
) -> Iterator[Element]:
    """Elements under `tree` with one of `needles` in one of `attributes`, in document
    order (a Python pass: libxml2's XPath contains() on attributes is twice as slow)."""
    for element in tree.iter(etree.Element) if tree is not None else ():
        for attribute in attributes:
            value = element.get(attribute)
            if value and any(needle in value for needle in needles):
                yield element
                break


def _same_words(a: str, b: str) -> bool:
    return re.sub(r"\W+", " ", a).strip().casefold() == re.sub(r"\W+", " ", b).strip().casefold()


def _authors(tree: Element, data: _LinkedData) -> list[str]:
    structured = [_text(a) for a in _as_list(data.get("author")) if _text(a)]
    if structured:
        return structured
    meta = [
        name
        for key in ("author", "article:author", "parsely-author", "byl")
        for name in _meta_all(tree, key)
        if not is_http_url(name)
    ]
    marked = tree.xpath(
        f'(//a[@rel="author"] | //*[@itemprop="author"]'
        f' | //*[contains(concat(" ", normalize-space(@class), " "), " author ")]'
        f' | //*[contains(@class, "author-name") or contains(@class, "field--name-uid")])'
        f"[not({_CHROME_ANCESTORS})]"
    )
    found = meta or [
        clean_text(element.text_content()) for element in marked if not in_related(element)
    ]
    return [_without_by(name) for name in found if 0 < len(name) <= 80]


def _without_by(name: str) -> str:
    return re.sub(r"^by\s+", "", name, flags=re.IGNORECASE).strip()


def _description(tree: Element, data: _LinkedData) -> str:
    return (
        _text(data.article.get("description"))
        or _meta(tree, "og:description")
        or _meta(tree, "description")
        or _meta(tree, "twitter:description")
    )


def _stated_body(data: _LinkedData) -> str:
    body = data.article.get("articleBody")
    if isinstance(body, list):
        body = "\n\n".join(str(part) for part in body if isinstance(part, str))
    return body[:_STATED_BODY_CHARS] if isinstance(body, str) else ""


def _related(containers: list[Element], page_url: str) -> Iterator[Link]:
    seen = {page_url}
    for container in containers:
        for anchor in container.iter("a"):
            href = (anchor.get("href") or "").strip()
            titles = _TITLES(anchor)
            text = clean_text((titles[0] if titles else anchor).text_content())
            url = canonical_url(urljoin(page_url, href)) if href else ""
            if text and is_http_url(url) and url not in seen:
                seen.add(url)
                yield Link(text, url)


def _language(tree: Element, data: _LinkedData) -> str | None:
    value = (
        tree.get("lang")
        or tree.get("{http://www.w3.org/XML/1998/namespace}lang")
        or _text(data.get("inLanguage"))
        or _meta(tree, "og:locale")
        or _first_text_attr(tree, '//meta[@http-equiv="content-language"]/@content')
    )
    primary = re.split(r"[-_,;\s]", value.strip())[0].lower() if value else ""
    return primary or None


def _first_text_attr(tree: Element, path: str) -> str:
    values = tree.xpath(path)
    return str(values[0]) if values else ""


def _tags(tree: Element, data: _LinkedData) -> list[str]:
    """JSON-LD keywords (a comma string or a list), article:tag, tag links, news_keywords."""
    keywords = data.article.get("keywords")
    if isinstance(keywords, str):
        structured = [part.strip() for part in keywords.split(",") if part.strip()]
    else:
        structured = [_text(value) for value in _as_list(keywords) if _text(value)]
    return (
        keyword_tags(structured)
        or _meta_all(tree, "article:tag")
        or tag_links(tree)
        or [part.strip() for part in _meta(tree, "news_keywords").split(",") if part.strip()]
    )


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value))

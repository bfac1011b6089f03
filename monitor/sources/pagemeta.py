"""What a page says about its article outside the body: structured data first, then markup.

JSON-LD (NewsArticle, BreadcrumbList, Person/Organization by @id, Yoast-style @graph) and
meta tags are what publishers maintain for search engines, so they win over heuristics on
the visible markup. The visible markup is read only where they are silent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeAlias
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from monitor.model import Link, parse_time
from monitor.sources.htmltext import clean_text
from monitor.sources.identity import canonical_url, is_http_url

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

_HTMLDATE_ELEMENTS = 5_000
_HTMLDATE_TEXT_CHARS = 100_000
_ARTICLE_TYPES = ("Article", "BlogPosting", "Report")
_HOME = {"home", "homepage", "start", "accueil", "inicio", "startseite", "home page"}
_LEDE_WORDS = {"standfirst", "subtitle", "subheadline", "subhead", "dek", "lede", "strapline"}
_LEDE_PARAGRAPH_WORDS = {"lead", "intro", "summary", "teaser"}
_LEDE_MAX_CHARS = 600
_RELATED_HEADING = re.compile(
    r"^(related|read more|more on this|see also|read next|more about|further reading)", re.I
)
_CHROME_HEADING = re.compile(
    r"^(most (popular|read|viewed|shared)|trending|popular|newsletter|share|follow us"
    r"|advertisement|sponsored|comments?|latest( news)?|top stories|recommended)\b",
    re.I,
)
_CHROME_ANCESTORS = (
    "ancestor-or-self::nav or ancestor-or-self::aside or ancestor-or-self::footer"
    " or ancestor-or-self::header[not(ancestor::article)]"
)
_CHROME_BOXES = "//nav | //aside | //footer | //header[not(ancestor::article)]"
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


def read_page_meta(tree: Element, url: str, *, now: datetime | None = None) -> PageMeta:
    """Title, dates, section path, authors, lede, related links, language, tags, canonical URL.

    `now` bounds htmldate's date search (it otherwise uses the clock); dates from
    structured data are taken as stated.
    """
    data = _linked_data(tree)
    page_url = _canonical(tree, data, url)
    title = _title(tree, data)
    published = _published(tree, data, page_url, now)
    updated = _first_time(
        _stated_dates(tree, data, "dateModified", _UPDATE_META, ("update", "modif"))
    )
    return PageMeta(
        url=page_url,
        title=title,
        published=published,
        updated=updated if updated != published else None,
        section=tuple(_section(tree, data, title, page_url)),
        authors=tuple(_unique(_authors(tree, data))),
        lede=_lede(tree, data),
        related=tuple(_related(tree, page_url)),
        language=_language(tree, data),
        tags=tuple(_unique(_tags(tree, data))),
    )


def class_words(element: Element) -> list[str]:
    """The words of an element's class and id: "story__byline c-ad" -> story, byline, c, ad."""
    names = f"{element.get('class', '')} {element.get('id', '')}"
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", names)
    return [word for word in re.split(r"[\s_\-]+", spaced.lower()) if word]


def lede_element(tree: Element) -> Element | None:
    """The standfirst or subtitle element under the headline, outside page chrome."""
    for element in tree.xpath(f"//body//*[@class][not({_CHROME_ANCESTORS})]"):
        words = set(class_words(element))
        paragraph_words = _LEDE_PARAGRAPH_WORDS if element.tag == "p" else set()
        if not words & (_LEDE_WORDS | paragraph_words):
            continue
        text = clean_text(element.text_content())
        if 20 <= len(text) <= _LEDE_MAX_CHARS and not _in_related(element):
            return element
    return None


def related_containers(tree: Element) -> list[Element]:
    """Elements holding the "related articles" links: marked by class, or under a heading."""
    marked = [
        element
        for element in tree.xpath("//body//*[@class or @id]")
        if any(word.startswith("related") for word in class_words(element))
        and not _in_related(element.getparent())
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
        return [parent]
    following = heading.getnext()
    if following is not None and following.tag in ("ul", "ol", "div"):
        return [heading, following]
    return [heading]


def _mostly_links(element: Element) -> bool:
    text = len(clean_text(element.text_content()))
    linked = sum(len(clean_text(a.text_content())) for a in element.iter("a"))
    return text > 0 and linked * 2 >= text


def _in_related(element: Element | None) -> bool:
    while element is not None:
        if any(word.startswith("related") for word in class_words(element)):
            return True
        element = element.getparent()
    return False


def _linked_data(tree: Element) -> _LinkedData:
    items = list(_json_ld_items(tree))
    index = {str(item["@id"]): item for item in items if isinstance(item.get("@id"), str)}
    data = _LinkedData({}, {}, {}, "", index)
    for item in items:
        kinds = [str(kind) for kind in _as_list(item.get("@type"))]
        if not data.article and any(kind.endswith(_ARTICLE_TYPES) for kind in kinds):
            data.article = item
        elif not data.breadcrumbs and "BreadcrumbList" in kinds:
            data.breadcrumbs = item
        elif not data.webpage and "WebPage" in kinds:
            data.webpage = item
        elif not data.site_name and "WebSite" in kinds:
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
    found = tree.xpath(
        "//meta[@property=$name or @name=$name or @itemprop=$name]/@content", name=name
    )
    return [clean_text(str(value)) for value in found if str(value).strip()]


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
    tree: Element, data: _LinkedData, page_url: str, now: datetime | None
) -> datetime | None:
    stated = _first_time(_stated_dates(tree, data, "datePublished", _DATE_META, ("publish", "")))
    return stated or _htmldate(tree, page_url, now)


def _stated_dates(
    tree: Element, data: _LinkedData, key: str, metas: Iterable[str], hints: Iterable[str]
) -> Iterator[str]:
    """Candidate date strings, best first: JSON-LD, meta tags, then <time> elements."""
    yield _text(data.get(key))
    yield from (_meta(tree, name) for name in metas)
    for hint in hints:
        yield from _time_elements(tree, hint)


def _time_elements(tree: Element, hint: str) -> list[str]:
    """<time datetime> values in the article, not the site's header or footer."""
    hinted = f'[contains(@class, "{hint}") or contains(@itemprop, "{hint}")]' if hint else ""
    return [
        str(value)
        for value in tree.xpath(f"//time{hinted}[not({_CHROME_ANCESTORS})]/@datetime")
        if str(value).strip()
    ]


def _first_time(values: Iterable[str]) -> datetime | None:
    for value in values:
        parsed = _time(value)
        if parsed is not None:
            return parsed
    return None


def _time(value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        pass
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=parsed.tzinfo or UTC).astimezone(UTC)


def _htmldate(tree: Element, page_url: str, now: datetime | None) -> datetime | None:
    """The date htmldate finds in the page minus its chrome; midnight UTC.

    Its extensive search is off: on pages that state no date it guesses from any year in
    the text ("En 2002, ..." gave 2002-01-01) or takes the site's "today" header.
    """
    from htmldate import find_date  # imported on first use, as trafilatura is

    page = _without(tree, _CHROME_BOXES)
    found = find_date(
        page,
        extensive_search=False,
        original_date=True,
        url=page_url or None,
        max_date=now.strftime("%Y-%m-%d") if now else None,
    )
    return _time(found) if found else None


def _without(tree: Element, path: str) -> Element:
    copy = deepcopy(tree)
    truncate(copy, _HTMLDATE_ELEMENTS)
    cap_text(copy, _HTMLDATE_TEXT_CHARS)
    for element in copy.xpath(path):
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)
    return copy


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
    path = (
        '//*[contains(@class, "crumb") or contains(@id, "crumb")'
        ' or contains(@aria-label, "crumb") or contains(@itemtype, "BreadcrumbList")]'
    )
    for container in tree.xpath(path):
        names = [
            clean_text(a.text_content())
            for a in container.iter("a")
            if canonical_url(urljoin(page_url, a.get("href", ""))) != page_url
        ]
        if names:
            return names
    return []


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
        f' | //*[contains(concat(" ", normalize-space(@class), " "), " author ")])'
        f"[not({_CHROME_ANCESTORS})]"
    )
    found = meta or [
        clean_text(element.text_content()) for element in marked if not _in_related(element)
    ]
    return [_without_by(name) for name in found if 0 < len(name) <= 80]


def _without_by(name: str) -> str:
    return re.sub(r"^by\s+", "", name, flags=re.IGNORECASE).strip()


def _lede(tree: Element, data: _LinkedData) -> str:
    element = lede_element(tree)
    if element is not None:
        return clean_text(element.text_content())
    return (
        _text(data.article.get("description"))
        or _meta(tree, "og:description")
        or _meta(tree, "description")
        or _meta(tree, "twitter:description")
    )


def _related(tree: Element, page_url: str) -> Iterator[Link]:
    seen = {page_url}
    for container in related_containers(tree):
        for anchor in container.iter("a"):
            href = (anchor.get("href") or "").strip()
            text = clean_text(anchor.text_content())
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
    keywords = data.article.get("keywords")
    if isinstance(keywords, str):
        return [part.strip() for part in keywords.split(",") if part.strip()]
    structured = [_text(value) for value in _as_list(keywords)]
    return (
        structured
        or _meta_all(tree, "article:tag")
        or [
            clean_text(a.text_content())
            for a in tree.xpath('//a[contains(concat(" ", normalize-space(@rel), " "), " tag ")]')
            if "category" not in (a.get("rel") or "").split()
        ]
        or [part.strip() for part in _meta(tree, "news_keywords").split(",") if part.strip()]
    )


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value))


def truncate(tree: Element, limit: int) -> None:
    """Keep the first `limit` elements in document order; drop the rest."""
    for count, element in enumerate(tree.iter(etree.Element)):
        if count == limit:
            _cut_from(element)
            return


def _cut_from(element: Element) -> None:
    """Remove `element` and everything after it in document order."""
    node = element
    parent = node.getparent()
    if parent is None:
        return
    for sibling in list(node.itersiblings()):
        parent.remove(sibling)
    parent.remove(node)
    node = parent
    while (parent := node.getparent()) is not None:
        for sibling in list(node.itersiblings()):
            parent.remove(sibling)
        node = parent


def cap_text(tree: Element, limit: int) -> None:
    """Cut text nodes once `limit` characters of text have been seen."""
    seen = 0
    for element in tree.iter(etree.Element):
        for attribute in ("text", "tail"):
            value = getattr(element, attribute)
            if value:
                room = max(limit - seen, 0)
                setattr(element, attribute, value[:room])
                seen += min(len(value), room)

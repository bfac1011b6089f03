"""HTML pages to Articles: trafilatura for the body, structured data and markup for the rest."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

import lxml.html
import trafilatura
from lxml import etree

from monitor.htmltext import clean_text
from monitor.identity import article_identity, canonical_url
from monitor.model import Article, Block, BlockKind, Link, article_id, parse_time

__all__ = ["decode_html", "extract_article"]

_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_LEDE_CLASSES = ("standfirst", "subtitle", "subheadline", "dek", "lede", "lead", "excerpt")
_BODY_TAGS: dict[str, BlockKind] = {"p": "paragraph", "head": "heading", "quote": "quote"}
_HOME = {"home", "homepage", "start", "accueil", "inicio", "startseite"}


@dataclass(slots=True)
class _Metadata:
    """Facts about the article found in JSON-LD and meta tags, before fallbacks."""

    title: str = ""
    published: str = ""
    updated: str = ""
    authors: list[str] = field(default_factory=list)
    section: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    description: str = ""
    language: str = ""


def decode_html(content: bytes, content_type: str = "") -> str:
    """Decode with the HTTP charset, else a BOM or <meta charset>, else UTF-8 or windows-1252."""
    candidates = []
    header = re.search(r"charset=([\w.:-]+)", content_type, re.IGNORECASE)
    if header:
        candidates.append(header.group(1))
    if content.startswith(b"\xef\xbb\xbf"):
        candidates.insert(0, "utf-8-sig")
    meta = _CHARSET.search(content[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii"))
    candidates += ["utf-8", "windows-1252"]
    for name in candidates:
        try:
            return content.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return content.decode("utf-8", errors="replace")


def extract_article(html: str, *, url: str, source: str) -> Article:
    """Normalize one article page: title, dates, section path, lede, body, related links."""
    tree = lxml.html.document_fromstring(html or "<html></html>")
    meta = _metadata(tree)
    page_url = _canonical(tree, url)
    title = _title(tree, meta)
    lede = clean_text(_lede(tree) or meta.description)
    body = _body(html, url, lede)
    return Article(
        id=article_id(
            article_identity(source, guid="", guid_is_url=False, link=page_url, text=title)
        ),
        url=page_url,
        source=source,
        title=title,
        published=_time(
            meta.published
            or _meta(tree, "article:published_time")
            or _time_element(tree, "published")
        ),
        updated=_time(meta.updated or _meta(tree, "article:modified_time")),
        section=tuple(_section(tree, meta, title)),
        authors=tuple(_unique(meta.authors or _meta_all(tree, "author"))),
        lede=lede,
        body=body,
        related=tuple(_related(tree, page_url)),
        language=_language(tree, meta),
        tags=tuple(_unique(meta.tags or _meta_all(tree, "article:tag"))),
    )


def _metadata(tree: lxml.html.HtmlElement) -> _Metadata:
    meta = _Metadata()
    for item in _json_ld(tree):
        kinds = item.get("@type", [])
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "BreadcrumbList" in kinds and not meta.section:
            meta.section = _breadcrumb_names(item)
        elif any(str(kind).endswith(("Article", "BlogPosting", "Report")) for kind in kinds):
            meta.title = meta.title or _text(item.get("headline"))
            meta.published = meta.published or _text(item.get("datePublished"))
            meta.updated = meta.updated or _text(item.get("dateModified"))
            meta.authors = meta.authors or _names(item.get("author"))
            meta.tags = meta.tags or _keywords(item.get("keywords"))
            meta.description = meta.description or _text(item.get("description"))
            meta.language = meta.language or _text(item.get("inLanguage"))
    meta.description = (
        meta.description or _meta(tree, "og:description") or _meta(tree, "description")
    )
    return meta


def _json_ld(tree: lxml.html.HtmlElement) -> Iterator[dict[str, Any]]:
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        try:
            data = json.loads(script.text or "")
        except json.JSONDecodeError:
            continue
        stack = data if isinstance(data, list) else [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, dict):
                stack.extend(item.get("@graph", []))
                yield item


def _text(value: object) -> str:
    if isinstance(value, list):
        return _text(value[0]) if value else ""
    if isinstance(value, dict):
        return _text(value.get("name") or value.get("@value"))
    return clean_text(str(value)) if value is not None else ""


def _names(value: object) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [name for name in (_text(v) for v in values if v) if name]


def _keywords(value: object) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return _names(value)


def _breadcrumb_names(item: dict[str, Any]) -> list[str]:
    entries = [e for e in item.get("itemListElement", []) if isinstance(e, dict)]
    entries.sort(key=lambda e: int(e.get("position", 0) or 0))
    return [_text(e.get("name") or e.get("item")) for e in entries]


def _meta(tree: lxml.html.HtmlElement, name: str) -> str:
    values = _meta_all(tree, name)
    return values[0] if values else ""


def _meta_all(tree: lxml.html.HtmlElement, name: str) -> list[str]:
    found = tree.xpath(f'//meta[@property="{name}" or @name="{name}"]/@content')
    return [clean_text(str(value)) for value in found if str(value).strip()]


def _canonical(tree: lxml.html.HtmlElement, url: str) -> str:
    for href in [*tree.xpath('//link[@rel="canonical"]/@href'), _meta(tree, "og:url")]:
        if str(href).strip():
            return canonical_url(urljoin(url, str(href)))
    return canonical_url(url) if url else ""


def _title(tree: lxml.html.HtmlElement, meta: _Metadata) -> str:
    site = _meta(tree, "og:site_name")
    for candidate in (
        meta.title,
        _meta(tree, "og:title"),
        _first_text(tree, "//h1"),
        _first_text(tree, "//title"),
    ):
        if candidate:
            return _strip_site_suffix(candidate, site)
    return ""


def _strip_site_suffix(title: str, site: str) -> str:
    for separator in (" | ", " - ", " – ", " — ", " :: "):
        head, sep, tail = title.rpartition(separator)
        if sep and head and (tail == site or (not site and len(tail) < 40 and separator == " | ")):
            return head.strip()
    return title


def _first_text(tree: lxml.html.HtmlElement, path: str) -> str:
    for element in tree.xpath(path):
        text = clean_text(element.text_content())
        if text:
            return text
    return ""


def _lede(tree: lxml.html.HtmlElement) -> str:
    for name in _LEDE_CLASSES:
        path = f'//*[contains(concat(" ", normalize-space(@class), " "), " {name} ")]'
        text = _first_text(tree, path)
        if text:
            return text
    return ""


def _time_element(tree: lxml.html.HtmlElement, kind: str) -> str:
    for path in (
        f'//article//time[contains(@class, "{kind}")]/@datetime',
        "//article//time/@datetime",
    ):
        values = tree.xpath(path)
        if values:
            return str(values[0])
    return ""


def _time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value.strip())
    except ValueError:
        return None


def _section(tree: lxml.html.HtmlElement, meta: _Metadata, title: str) -> list[str]:
    crumbs = meta.section or _breadcrumb_markup(tree)
    crumbs = [c for c in crumbs if c]
    if crumbs and crumbs[0].lower() in _HOME:
        crumbs = crumbs[1:]
    if crumbs and _same_words(crumbs[-1], title):
        crumbs = crumbs[:-1]
    return crumbs


def _breadcrumb_markup(tree: lxml.html.HtmlElement) -> list[str]:
    path = (
        '//*[contains(@class, "breadcrumb") or contains(@aria-label, "breadcrumb")'
        ' or contains(@id, "breadcrumb")]'
    )
    for container in tree.xpath(path):
        links = [clean_text(a.text_content()) for a in container.iter("a")]
        if links:
            return links
    return []


def _same_words(a: str, b: str) -> bool:
    return re.sub(r"\W+", " ", a).strip().lower() == re.sub(r"\W+", " ", b).strip().lower()


def _related(tree: lxml.html.HtmlElement, page_url: str) -> Iterator[Link]:
    seen = {page_url}
    for container in _related_containers(tree):
        for anchor in container.iter("a"):
            href = anchor.get("href")
            text = clean_text(anchor.text_content())
            if not href or not text:
                continue
            url = canonical_url(urljoin(page_url, href))
            if url not in seen:
                seen.add(url)
                yield Link(text, url)


def _related_containers(tree: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    marked = tree.xpath(
        '//*[contains(@class, "related") or contains(@id, "related")]'
        '[not(ancestor::*[contains(@class, "related")])]'
    )
    if marked:
        return list(marked)
    headings = tree.xpath("//h2|//h3|//h4")
    return [
        h.getparent()
        for h in headings
        if re.match(r"related|read more|see also", clean_text(h.text_content()), re.I)
    ]


def _language(tree: lxml.html.HtmlElement, meta: _Metadata) -> str | None:
    value = tree.get("lang") or meta.language or _meta(tree, "og:locale")
    return value.strip().replace("_", "-").split("-")[0].lower() or None if value else None


def _body(html: str, url: str, lede: str) -> tuple[Block, ...]:
    xml = trafilatura.extract(
        html,
        url=url or None,
        output_format="xml",
        favor_precision=True,
        include_comments=False,
        include_tables=False,
        with_metadata=False,
    )
    if not xml:
        return ()
    root = etree.fromstring(xml.encode("utf-8"))
    blocks: list[Block] = []
    for element in root.iter("p", "head", "quote", "item"):
        text = clean_text("".join(element.itertext()))
        kind: BlockKind = "list" if element.tag == "item" else _BODY_TAGS[element.tag]
        if text and not (element.tag == "p" and element.getparent().tag in ("quote", "item")):
            blocks.append(Block(kind, text))
    if blocks and lede and _same_words(blocks[0].text, lede):
        blocks = blocks[1:]
    return tuple(blocks)


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))

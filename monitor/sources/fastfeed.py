"""A fast reader for plain RSS 2.0 and Atom 1.0 documents, with lxml instead of feedparser.

`read(content, headers)` gives the feed and its items as the same dicts feedparser would
(the keys monitor.sources.feeds reads: title, link, id, guidislink, summary, content, authors,
tags, published_parsed, updated_parsed; feed title, language, ttl, sy_*), so both paths
share one conversion into Articles. Anything outside the well-understood subset (not
well-formed, a DOCTYPE, RSS 0.9x/1.0, xml:base, markup inside text elements, unknown
elements, duplicates, odd encodings, relative permalinks...) gives None: the caller then
uses feedparser. Entities are never expanded and nothing is loaded from the network.
With `max_items`, only the newest items (see monitor.sources.newest) are read into dicts, the others
cost only a look at their date.
"""

from __future__ import annotations

import calendar
import contextlib
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.urls import _urljoin
from lxml import etree

from monitor.sources.identity import is_http_url
from monitor.sources.newest import newest

__all__ = ["FastFeed", "read"]

# the feed, its items (the newest `max_items`), and how many items the document holds
FastFeed = tuple[dict[str, Any], list[dict[str, Any]], int]

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DC = "{http://purl.org/dc/elements/1.1/}"
SY = "{http://purl.org/rss/1.0/modules/syndication/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    remove_comments=True,
    remove_pis=True,
    strip_cdata=True,
)
_DECLARED = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_CHARSET = re.compile(r"charset\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)
_EXTRA_SLASHES = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:///")
_RFC822 = re.compile(
    r"^(?:[A-Z][a-z]{2}, )?\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} (?:GMT|UTC|[+-]\d{4})$"
)
_XML_MEDIA = ("", "application/xml", "application/rss+xml", "application/atom+xml")

# channel children that are read, or that feedparser keeps apart from what we read
_RSS_FEED_TEXT = {"title", "link", "description", "language", "ttl", SY + "updatePeriod",
                  SY + "updateFrequency"}  # fmt: skip
_RSS_FEED_IGNORED = {"lastBuildDate", "pubDate", "generator", "copyright", "docs",
                     "managingEditor", "webMaster", "skipHours", "skipDays", "category",
                     ATOM + "link", "image"}  # fmt: skip
_RSS_ITEM = {"title", "link", "guid", "pubDate", "description", "category",
             CONTENT + "encoded", DC + "creator", "comments", "enclosure"}  # fmt: skip
_ATOM_FEED_IGNORED = {
    ATOM + name
    for name in ("id", "link", "updated", "generator", "subtitle", "rights", "icon", "logo")
}
_ATOM_ENTRY = {ATOM + n for n in ("id", "title", "link", "published", "updated", "author",
                                  "category", "summary", "content")}  # fmt: skip


BASE = "_base"  # an item's base URL while it is read


class _Unsupported(Exception):
    """Not in the subset this reader handles exactly like feedparser."""


def read(
    content: bytes, headers: Mapping[str, str], max_items: int | None = None
) -> FastFeed | None:
    """(feed, items, count) as feedparser would give them, or None to leave the document to
    it; beyond `max_items` items, only the newest are read."""
    if not _plain_utf8(content, headers):
        return None
    try:
        root = etree.fromstring(content, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None
    try:
        return _read_root(root, headers, max_items)
    except _Unsupported:
        return None


def _plain_utf8(content: bytes, headers: Mapping[str, str]) -> bool:
    """UTF-8 by every account (HTTP, BOM, declaration) and no DOCTYPE."""
    media, _, params = headers.get("content-type", "").partition(";")
    if media.strip().lower() not in _XML_MEDIA:
        return False
    charset = _CHARSET.search(params)
    if charset and charset.group(1).lower() not in ("utf-8", "utf8"):
        return False
    head = content.removeprefix(b"\xef\xbb\xbf")[:1024]
    if not head.startswith((b"<?xml", b"<rss", b"<feed")) or b"<!DOCTYPE" in head.upper():
        return False
    declared = _DECLARED.match(head)
    return declared is None or declared.group(1).lower() in (b"utf-8", b"utf8")


def _read_root(root: Any, headers: Mapping[str, str], max_items: int | None) -> FastFeed:
    _no_base_or_lang(root)
    base = headers.get("content-location", "")
    if not _plain_absolute(base):
        raise _Unsupported
    feed: dict[str, Any] = {}
    language = root.get(XML_LANG, root.get("lang"))
    content_language = headers.get("content-language")
    if language or content_language:
        feed["language"] = (language or content_language or "").replace("_", "-")
    if root.tag == "rss" and root.get("version") == "2.0" and len(root) == 1:
        channel = root[0]
        if channel.tag != "channel":
            raise _Unsupported
        elements = _read_rss(channel, feed)
        items = [_rss_item(e, base) for e in newest(elements, max_items, _rss_time)]
        return feed, items, len(elements)
    if root.tag == ATOM + "feed":
        elements = _read_atom(root, feed)
        entries = [_atom_entry(e, base) for e in newest(elements, max_items, _atom_time)]
        return feed, entries, len(elements)
    raise _Unsupported


def _no_base_or_lang(root: Any) -> None:
    if root.get(XML_BASE) is not None:
        raise _Unsupported
    for element in root.iterdescendants():
        attrib = element.attrib
        if XML_BASE in attrib or XML_LANG in attrib or "lang" in attrib:
            raise _Unsupported


def _text(element: Any) -> str:
    """The element's text as feedparser stores it (stripped, cp1252 and UTF-8 fixes)."""
    if len(element):
        raise _Unsupported  # markup inside: feedparser would rebuild it
    output: str = (element.text or "").strip()
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        output = output.encode("iso-8859-1").decode("utf-8")
    return output.translate(_cp1252)


def _once(found: dict[str, Any], key: str, value: object) -> None:
    if key in found:
        raise _Unsupported
    found[key] = value


# -- RSS 2.0 ----------------------------------------------------------------------------------


def _read_rss(channel: Any, feed: dict[str, Any]) -> list[Any]:
    """The channel's values into `feed`; its <item> elements."""
    items = []
    seen: set[str] = set()
    for child in channel:
        tag = child.tag
        if tag == "item":
            items.append(child)
        elif tag in _RSS_FEED_TEXT:
            if tag in seen:
                raise _Unsupported
            seen.add(tag)
            _rss_feed_value(feed, tag, child)
        elif tag not in _RSS_FEED_IGNORED:
            raise _Unsupported
    return items


def _rss_feed_value(feed: dict[str, Any], tag: str, child: Any) -> None:
    keys = {"description": "subtitle", SY + "updatePeriod": "sy_updateperiod",
            SY + "updateFrequency": "sy_updatefrequency"}  # fmt: skip
    value = _text(child)
    feed[keys.get(tag, tag)] = value


def _rss_item(item: Any, base: str) -> dict[str, Any]:
    if item.attrib:
        raise _Unsupported
    entry: dict[str, Any] = {BASE: base}
    for child in item:
        tag = child.tag
        if tag not in _RSS_ITEM:
            raise _Unsupported
        _RSS_HANDLERS.get(tag, _rss_ignored)(entry, child)
    return _finish(entry)


def _finish(entry: dict[str, Any]) -> dict[str, Any]:
    if "summary" not in entry and "content" in entry:
        entry["summary"] = entry["content"][0]["value"]
    del entry[BASE]
    return entry


def _rss_ignored(entry: dict[str, Any], child: Any) -> None:
    if len(child):
        raise _Unsupported


def _rss_title(entry: dict[str, Any], child: Any) -> None:
    _once(entry, "title", _text(child))


def _rss_link(entry: dict[str, Any], child: Any) -> None:
    link = _resolved(entry, _text(child)).replace("&amp;", "&")
    link = re.sub("&([A-Za-z0-9_]+);", r"&\g<1>", link)
    _once(entry, "rss_link", True)
    entry["link"] = link  # also replaces a permalink guid's copy


def _rss_guid(entry: dict[str, Any], child: Any) -> None:
    value = _text(child)
    permalink = child.get("isPermaLink", child.get("ispermalink", "true")) == "true"
    if set(child.attrib) - {"isPermaLink"} or not value:
        raise _Unsupported
    _once(entry, "guid", value)
    if permalink:
        value = _resolved(entry, value)
        entry.setdefault("link", value)
    entry["id"] = value
    entry["guidislink"] = permalink and "rss_link" not in entry


def _resolved(entry: dict[str, Any], url: str) -> str:
    """`url` against the document's base, as feedparser resolves links and permalinks.

    Against a local file's base feedparser's result differs (`file://path`, a slash lost):
    a relative URL there is left to it."""
    if url and entry[BASE].startswith("file:") and not _SCHEME.match(url):
        raise _Unsupported
    return str(_urljoin(entry[BASE], url)) if url else url


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def _plain_absolute(url: str) -> bool:
    """An http(s) URL that feedparser's URL joining leaves as it is, or a local file's
    (`file:///path`, as the CLI reads files: its three slashes are the normal form)."""
    if url.startswith("file:///") and not url.startswith("file:////"):
        return "?" not in url and "#" not in url and urljoin(url, url) == url
    return is_http_url(url) and urljoin(url, url) == url and not _EXTRA_SLASHES.match(url)


def _rss_date(entry: dict[str, Any], child: Any) -> None:
    _once(entry, "published_parsed", _date(_text(child), _rfc822_date))


def _rfc822_date(text: str) -> datetime | None:
    return parsedate_to_datetime(text) if _RFC822.match(text) else None


def _rss_description(entry: dict[str, Any], child: Any) -> None:
    _once(entry, "summary", _text(child))


def _rss_content(entry: dict[str, Any], child: Any) -> None:
    _once(entry, "content", [{"value": _text(child)}])


def _rss_category(entry: dict[str, Any], child: Any) -> None:
    value = _text(child)
    if value:
        entry.setdefault("tags", []).append({"term": value})


def _rss_creator(entry: dict[str, Any], child: Any) -> None:
    _author(entry, _text(child))


def _author(entry: dict[str, Any], name: str) -> None:
    if "@" in name or "(" in name or ")" in name or not name:
        raise _Unsupported  # feedparser splits out e-mail addresses
    _once(entry, "authors", [{"name": name}])
    entry["author"] = name


_RSS_HANDLERS: dict[str, Callable[[dict[str, Any], Any], None]] = {
    "title": _rss_title,
    "link": _rss_link,
    "guid": _rss_guid,
    "pubDate": _rss_date,
    "description": _rss_description,
    CONTENT + "encoded": _rss_content,
    "category": _rss_category,
    DC + "creator": _rss_creator,
}


# -- Atom 1.0 ---------------------------------------------------------------------------------


def _read_atom(root: Any, feed: dict[str, Any]) -> list[Any]:
    """The feed's values into `feed`; its <entry> elements."""
    entries = []
    for child in root:
        tag = child.tag
        if tag == ATOM + "entry":
            entries.append(child)
        elif tag == ATOM + "title":
            _once(feed, "title", _atom_text(child))
        elif tag not in _ATOM_FEED_IGNORED:
            raise _Unsupported
    return entries


def _atom_text(element: Any) -> str:
    if element.get("type", "text") not in ("text", "html") or set(element.attrib) - {"type"}:
        raise _Unsupported
    return _text(element)


def _atom_entry(element: Any, base: str) -> dict[str, Any]:
    if element.attrib:
        raise _Unsupported
    entry: dict[str, Any] = {BASE: base}
    for child in element:
        if child.tag not in _ATOM_ENTRY:
            raise _Unsupported
        _ATOM_HANDLERS[child.tag](entry, child)
    return _finish(entry)


def _atom_id(entry: dict[str, Any], child: Any) -> None:
    value = _text(child)
    if child.attrib or not value:
        raise _Unsupported
    entry["guidislink"] = "link" not in entry
    if entry["guidislink"]:
        value = _resolved(entry, value)
        entry["link"] = value
    _once(entry, "id", value)


def _atom_link(entry: dict[str, Any], child: Any) -> None:
    rel = child.get("rel", "alternate")
    if rel != "alternate":
        if rel in ("self", "enclosure", "related", "replies", "edit", "via"):
            return
        raise _Unsupported
    href = child.get("href")
    if child.get("type", "text/html") != "text/html" or not href:
        raise _Unsupported
    if "alternate" in entry:
        raise _Unsupported
    entry["alternate"] = True
    entry["link"] = _resolved(entry, href)


def _atom_published(entry: dict[str, Any], child: Any) -> None:
    _once(entry, "published_parsed", _date(_text(child), _iso_date))


def _atom_updated(entry: dict[str, Any], child: Any) -> None:
    _once(entry, "updated_parsed", _date(_text(child), _iso_date))


def _atom_title(entry: dict[str, Any], child: Any) -> None:
    _once(entry, "title", _atom_text(child))


def _atom_summary(entry: dict[str, Any], child: Any) -> None:
    _once(entry, "summary", _atom_text(child))


def _atom_content(entry: dict[str, Any], child: Any) -> None:
    _once(entry, "content", [{"value": _atom_text(child)}])


def _atom_category(entry: dict[str, Any], child: Any) -> None:
    if len(child) or (child.text and child.text.strip()):
        raise _Unsupported
    entry.setdefault("tags", []).append({"term": child.get("term"), "label": child.get("label")})


def _atom_author(entry: dict[str, Any], child: Any) -> None:
    if len(child) != 1 or child[0].tag != ATOM + "name" or (child.text or "").strip():
        raise _Unsupported
    _author(entry, _text(child[0]))


_ATOM_HANDLERS: dict[str, Callable[[dict[str, Any], Any], None]] = {
    ATOM + "id": _atom_id,
    ATOM + "link": _atom_link,
    ATOM + "published": _atom_published,
    ATOM + "updated": _atom_updated,
    ATOM + "title": _atom_title,
    ATOM + "summary": _atom_summary,
    ATOM + "content": _atom_content,
    ATOM + "category": _atom_category,
    ATOM + "author": _atom_author,
}


# -- dates ------------------------------------------------------------------------------------


def _rss_time(item: Any) -> float | None:
    """When an <item> was published, as a timestamp (its published_parsed)."""
    return _timestamp(item.find("pubDate"), _rfc822_date)


def _atom_time(entry: Any) -> float | None:
    """When an <entry> was published, else updated, as a timestamp."""
    for tag in ("published", "updated"):
        stamp = _timestamp(entry.find(ATOM + tag), _iso_date)
        if stamp is not None:
            return stamp
    return None


def _timestamp(element: Any, parse: Callable[[str], datetime | None]) -> float | None:
    parsed = None if element is None else _date(_text(element), parse)
    return None if parsed is None else calendar.timegm(parsed)


def _iso_date(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))


def _date(text: str, parse: Callable[[str], datetime | None]) -> time.struct_time | None:
    """A UTC struct_time as feedparser's, by the standard library where it can."""
    try:
        value = parse(text)
    except (ValueError, TypeError, IndexError):
        value = None
    if value is not None and value.tzinfo is not None and value.year >= 1900:
        return value.astimezone(UTC).replace(microsecond=0).timetuple()
    parsed: time.struct_time | None = _parse_date(text)
    return parsed

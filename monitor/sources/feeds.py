"""Feed documents (RSS 0.9x/1.0/2.0, Atom, JSON Feed) to Articles. Pure: bytes in, data out."""

from __future__ import annotations

import calendar
import codecs
import functools
import io
import json
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urljoin

import feedparser

from monitor.errors import MonitorError
from monitor.model import Article, Block, article_id, parse_time
from monitor.sources import fastfeed
from monitor.sources.charset import Decoded, decode_feed, utf8_xml
from monitor.sources.htmltext import clean_text, html_to_blocks, html_to_text
from monitor.sources.identity import article_identity, canonical_url, is_http_url
from monitor.sources.newest import newest
from monitor.state import FeedHints

__all__ = [
    "DocumentType",
    "Entry",
    "FeedEntries",
    "FeedError",
    "ParsedFeed",
    "document_type",
    "parse_feed",
    "read_feed",
    "read_feed_with_feedparser",
]

DocumentType = Literal["feed", "json", "html"]
"""What a fetched document is: an RSS/Atom/RDF feed, a JSON Feed, or an HTML page."""
_FEED_MARKERS = (b"<rss", b"<feed", b"<rdf:rdf", b"<channel")


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    articles: tuple[Article, ...]
    problem: str | None = None
    hints: FeedHints = field(default_factory=FeedHints)


class FeedError(MonitorError, ValueError):
    """The document is not a feed we can read."""


def document_type(content: bytes, content_type: str = "") -> DocumentType:
    """Tell a feed from a JSON Feed from an HTML page by the content, then the media type."""
    head = content[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"{"):
        return "json"
    if any(marker in head for marker in _FEED_MARKERS):
        return "feed"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "html"
    media = content_type.split(";")[0].strip().lower()
    if media.endswith("json"):
        return "json"
    return "html" if media == "text/html" else "feed"


@dataclass(frozen=True, slots=True)
class Entry:
    """A feed item's identity, known before its (costly) conversion into an Article."""

    id: str
    make: Callable[[], Article]


@dataclass(frozen=True, slots=True)
class FeedEntries:
    """A feed's entries; `collisions` says which guids several different items share."""

    title: str
    entries: tuple[Entry, ...]
    problem: str | None = None
    hints: FeedHints = field(default_factory=FeedHints)
    collisions: tuple[str, ...] = ()
    dropped: int = 0  # the oldest items, left out by `max_items`

    def articles(self, skip: Collection[str] = ()) -> tuple[Article, ...]:
        """The items as Articles, leaving out those whose id is in `skip` (already seen)."""
        return tuple(entry.make() for entry in self.entries if entry.id not in skip)


def parse_feed(
    content: bytes, *, source: str, url: str, headers: Mapping[str, str] | None = None
) -> ParsedFeed:
    """Parse an RSS, Atom or JSON Feed document fetched from `url`."""
    feed = read_feed(content, source=source, url=url, headers=headers)
    return ParsedFeed(feed.title, feed.articles(), feed.problem, feed.hints)


def read_feed(
    content: bytes,
    *,
    source: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    max_items: int | None = None,
) -> FeedEntries:
    """A feed's items with their ids (at most the newest `max_items`, see monitor.sources.newest);
    the HTML of each item is only read by `articles()`, so items seen before cost little.

    Plain RSS 2.0 and Atom 1.0 are read by monitor.sources.fastfeed; everything else, and anything
    it is unsure of, by feedparser (`read_feed_with_feedparser`), with the same result.
    """
    if document_type(content, (headers or {}).get("content-type", "")) == "json":
        return _read_json_feed(content, source=source, url=url, max_items=max_items)
    response_headers = _response_headers(headers or {}, url)
    content, repair = _as_declared(content, response_headers)
    fast = fastfeed.read(content, response_headers, max_items)
    if fast is None or not (fast[0] or fast[1]):
        read = _read_xml_feed(content, source=source, url=url, headers=response_headers,
                              max_items=max_items)  # fmt: skip
        return replace(read, problem=_problems(repair, read.problem))
    feed, items, count = fast
    entries = _feed_entries(feed, items, content, source=source, url=url, problem=repair)
    return replace(entries, dropped=count - len(items))


def read_feed_with_feedparser(
    content: bytes,
    *,
    source: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    max_items: int | None = None,
) -> FeedEntries:
    """`read_feed` for XML feeds, always through feedparser (the reference for fastfeed)."""
    response_headers = _response_headers(headers or {}, url)
    return _read_xml_feed(content, source=source, url=url, headers=response_headers,
                          max_items=max_items)  # fmt: skip


def _response_headers(headers: Mapping[str, str], url: str) -> dict[str, str]:
    response_headers = {k.lower(): v for k, v in headers.items()}
    response_headers.setdefault("content-location", url)
    response_headers.setdefault("content-type", "application/xml")
    return response_headers


def _as_declared(content: bytes, headers: dict[str, str]) -> tuple[bytes, str | None]:
    """Bytes that fail the encoding they declare but are readable (a few bad bytes replaced,
    or in the other encoding they declare: see `charset.decode_feed`) as UTF-8 for the
    parsers, `headers` changed to say so, and the problem to report; else as they are.
    feedparser itself would read the whole feed as windows-1252 over one bad byte."""
    decoded = decode_feed(content, headers["content-type"])
    if decoded is None:
        return content, None
    media = headers["content-type"].split(";")[0].strip()
    headers["content-type"] = f"{media}; charset=utf-8"
    return utf8_xml(decoded.text), _charset_problem(decoded)


def _charset_problem(decoded: Decoded) -> str:
    if decoded.replaced:
        return f"{decoded.replaced} byte(s) invalid in {decoded.encoding}, replaced with U+FFFD"
    return f"not in the HTTP header's charset; read as {decoded.encoding}, the XML declaration's"


def _problems(*problems: str | None) -> str | None:
    return "; ".join(p for p in problems if p) or None


def _read_xml_feed(
    content: bytes, *, source: str, url: str, headers: Mapping[str, str], max_items: int | None
) -> FeedEntries:
    parsed = feedparser.parse(
        io.BytesIO(content),
        response_headers=dict(headers),
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    problem = None
    if parsed.get("bozo"):
        problem = str(parsed.get("bozo_exception", "")) or "malformed feed"
    if not parsed.entries and not parsed.feed:
        raise FeedError(f"not a feed: {problem or 'no feed elements found'}")
    items = newest(parsed.entries, max_items, _entry_time)
    entries = _feed_entries(parsed.feed, items, content, source=source, url=url, problem=problem)
    return replace(entries, dropped=len(parsed.entries) - len(items))


def _entry_time(entry: Any) -> float | None:
    """When a feedparser entry was published, else updated (as fastfeed's `_atom_time`)."""
    parsed = entry.get("published_parsed") or dict.get(entry, "updated_parsed")
    return calendar.timegm(parsed) if parsed else None


def _feed_entries(
    feed: Any, items: Any, content: bytes, *, source: str, url: str, problem: str | None
) -> FeedEntries:
    """Feedparser's feed and entries (or fastfeed's dicts shaped like them) as FeedEntries."""
    language = _language(feed.get("language"))
    kept = [
        entry
        for entry in items
        if entry.get("title") or entry.get("link") or entry.get("summary") or entry.get("content")
    ]
    by_link, collisions = _guid_collisions(
        (
            (entry.get("id", ""), entry.get("link", ""), entry.get("title", ""), _entry_time(entry))
            for entry in kept
        ),
        url,
    )
    entries = tuple(
        _xml_entry(entry, source=source, base=url, language=language, by_link=by_link)
        for entry in kept
    )
    title = clean_text(feed.get("title", ""))
    return FeedEntries(title, entries, problem, _hints(feed, content), collisions)


def _guid_collisions(
    items: Iterable[tuple[str, str, str, float | None]], base: str
) -> tuple[frozenset[str], tuple[str, ...]]:
    """Guids that several different items carry, from (guid, link, title, time) tuples in
    document order.

    A guid shared by items with different links stays with the oldest of them (the
    earliest dated, else the last listed), which is the one a past poll stored under it;
    the others are known by their links instead. So an item keeps its id when a newer one
    starts sharing its guid, and a new one never takes the id of one already stored. The
    links returned are the items' that give the guid up. Items that differ but share a
    guid and a link (or have none) stay one article. Either way, a line saying so.
    """
    groups: dict[str, list[tuple[str, str, float | None]]] = {}
    for guid, link, title, when in items:
        if guid.strip():
            groups.setdefault(guid.strip(), []).append((link, title, when))
    by_link: set[str] = set()
    collisions = []
    for guid, shared in groups.items():
        if len(shared) < 2:
            continue
        group = [(_canonical_link(base, link), title, when) for link, title, when in shared]
        links = {link for link, _, _ in group if link}
        if len(links) > 1:
            keeper = _oldest(group)
            by_link.update(_guid_key(guid, link) for link in links - {keeper})
            collisions.append(f"{len(group)} items share the guid {guid!r}; the oldest keeps "
                              "it, the others are known by their links")  # fmt: skip
        elif len({title for _, title, _ in group}) > 1:
            collisions.append(f"{len(group)} different items share the guid {guid!r} and no "
                              "link tells them apart; only the first counts")  # fmt: skip
    return frozenset(by_link), tuple(collisions)


def _oldest(group: Sequence[tuple[str, str, float | None]]) -> str:
    """The link of the group's earliest dated item, else of its last listed."""
    dated = [(when, link) for link, _, when in group if when is not None and link]
    return min(dated)[1] if dated else next(link for link, _, _ in reversed(group) if link)


def _canonical_link(base: str, link: str) -> str:
    return canonical_url(_absolute(base, link)) if link.strip() else ""


def _guid_key(guid: str, link: str) -> str:
    return f"{guid.strip()}\n{canonical_url(link)}"


def _item_guid(guid: str, link: str, by_link: frozenset[str]) -> str:
    """The guid that identifies an item: none when it gave the guid up to an older item
    sharing it under another link."""
    return "" if link and by_link and _guid_key(guid, link) in by_link else guid


def _xml_entry(
    entry: Any, *, source: str, base: str, language: str | None, by_link: frozenset[str]
) -> Entry:
    link = _absolute(base, entry.get("link", ""))
    guid = _item_guid(entry.get("id", ""), link, by_link)
    permalink = entry.get("guidislink", False) or is_http_url(guid)
    raw = "".join(part.get("value", "") for part in entry.get("content") or [])
    identity = article_identity(
        source,
        guid=guid,
        guid_is_url=permalink,
        link=link,
        text=entry.get("title", "") + entry.get("summary", "") + raw,
    )
    make = functools.partial(
        _article_from_entry, entry, identity=identity, source=source, link=link,
        language=language,
    )  # fmt: skip
    return Entry(article_id(identity), make)


def _article_from_entry(
    entry: Any, *, identity: str, source: str, link: str, language: str | None
) -> Article:
    contents = entry.get("content") or []
    content_html = "".join(part.get("value", "") for part in contents)
    summary_html = entry.get("summary", "")
    if content_html == summary_html:
        summary_html = ""
    lede, body = _lede_and_body(summary_html, content_html)
    title = clean_text(html_to_text(entry.get("title", "")))
    generated = not title
    title = title or _fallback_title(lede, body, link or entry.get("id", ""))
    guid = entry.get("id", "")
    permalink = entry.get("guidislink", False) or is_http_url(guid)
    authors = [a.get("name", "") for a in entry.get("authors", []) if a.get("name")]
    if not authors and entry.get("author"):
        authors = [entry["author"]]
    tags = [t.get("term") or t.get("label") or "" for t in entry.get("tags", [])]
    return Article(
        id=article_id(identity),
        url=link or (guid if permalink else ""),
        source=source,
        title=title,
        published=_struct_time(entry.get("published_parsed")),
        updated=_updated(entry),
        authors=tuple(clean_text(a) for a in authors),
        lede=lede,
        body=body,
        language=_language(entry.get("language")) or language,
        tags=tuple(clean_text(t) for t in tags if t.strip()),
        title_generated=generated,
    )


_PERIODS = {"hourly": 1, "daily": 24, "weekly": 168, "monthly": 720, "yearly": 8760}
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SKIP_HOURS = re.compile(rb"<skipHours>(.*?)</skipHours>", re.DOTALL | re.IGNORECASE)
_SKIP_DAYS = re.compile(rb"<skipDays>(.*?)</skipDays>", re.DOTALL | re.IGNORECASE)


def _hints(feed: Any, content: bytes) -> FeedHints:
    """<ttl>, sy:updatePeriod/updateFrequency and skipHours/skipDays.

    feedparser keeps only the last <hour> and <day>, so the skip lists are read from the
    document itself.
    """
    ttl = _positive_int(feed.get("ttl"))
    period_hours = _PERIODS.get(str(feed.get("sy_updateperiod", "")).strip().lower())
    frequency = _positive_int(feed.get("sy_updatefrequency")) or 1
    return FeedHints(
        ttl=timedelta(minutes=ttl) if ttl else None,
        update_period=timedelta(hours=period_hours) / frequency if period_hours else None,
        skip_hours=frozenset(int(h) % 24 for h in _listed(_SKIP_HOURS, rb"hour", content)),
        skip_days=frozenset(
            _DAYS.index(d.lower())
            for d in _listed(_SKIP_DAYS, rb"day", content)
            if d.lower() in _DAYS
        ),
    )


def _listed(block: re.Pattern[bytes], tag: bytes, content: bytes) -> list[str]:
    found = block.search(content)
    if not found:
        return []
    values = re.findall(rb"<" + tag + rb">\s*(\w+)\s*</" + tag + rb">", found.group(1))
    return [v.decode("ascii", "replace") for v in values]


def _positive_int(value: object) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def _lede_and_body(summary_html: str, content_html: str) -> tuple[str, tuple[Block, ...]]:
    """A short summary is the lede; a long one without separate content is the body."""
    summary = html_to_blocks(summary_html)
    body = html_to_blocks(content_html)
    if body:
        return " ".join(b.text for b in summary), body
    if len(summary) > 1:
        return summary[0].text, summary[1:]
    return (summary[0].text if summary else ""), ()


def _read_json_feed(content: bytes, *, source: str, url: str, max_items: int | None) -> FeedEntries:
    content = content.removeprefix(codecs.BOM_UTF8)
    decoded = decode_feed(content, "application/json; charset=utf-8")
    try:
        document = json.loads(content if decoded is None else decoded.text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(f"not valid JSON Feed: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise FeedError("not a JSON Feed: no 'items' list")
    if "jsonfeed.org/version/" not in str(document.get("version", "")):
        raise FeedError("not a JSON Feed: missing or unknown 'version'")
    language = _language(document.get("language"))
    items = [item for item in document["items"] if isinstance(item, dict)]
    kept = newest(items, max_items, _json_item_time)
    by_link, collisions = _guid_collisions(
        ((str(item.get("id") or ""), _json_link(item, url), str(item.get("title") or ""),
          _json_item_time(item))
         for item in kept),
        url,
    )  # fmt: skip
    entries = tuple(
        _json_entry(item, source=source, base=url, language=language, by_link=by_link)
        for item in kept
    )
    problem = None if decoded is None else _charset_problem(decoded)
    title = clean_text(str(document.get("title", "")))
    return FeedEntries(title, entries, problem, collisions=collisions,
                       dropped=len(items) - len(kept))  # fmt: skip


def _json_item_time(item: dict[str, Any]) -> float | None:
    when = _json_time(item.get("date_published")) or _json_time(item.get("date_modified"))
    return when.timestamp() if when else None


def _json_link(item: dict[str, Any], base: str) -> str:
    return _absolute(base, str(item.get("url") or item.get("external_url") or ""))


def _json_entry(
    item: dict[str, Any], *, source: str, base: str, language: str | None, by_link: frozenset[str]
) -> Entry:
    link = _json_link(item, base)
    guid = _item_guid(str(item.get("id") or ""), link, by_link)
    text = "".join(str(item.get(k) or "") for k in ("title", "summary", "content_html",
                                                       "content_text"))  # fmt: skip
    identity = article_identity(
        source, guid=guid, guid_is_url=is_http_url(guid), link=link, text=text
    )
    make = functools.partial(
        _article_from_json_item, item, identity=identity, source=source, link=link,
        language=language,
    )  # fmt: skip
    return Entry(article_id(identity), make)


def _article_from_json_item(
    item: dict[str, Any], *, identity: str, source: str, link: str, language: str | None
) -> Article:
    content_html = str(item.get("content_html") or "")
    content_text = str(item.get("content_text") or "")
    body = html_to_blocks(content_html) if content_html else html_to_blocks(content_text)
    lede = clean_text(str(item.get("summary") or ""))
    title = clean_text(str(item.get("title") or ""))
    generated = not title
    title = title or _fallback_title(lede, body, link)
    raw_authors = item.get("authors") or ([item["author"]] if item.get("author") else [])
    authors = [str(a.get("name")) for a in raw_authors if isinstance(a, dict) and a.get("name")]
    return Article(
        id=article_id(identity),
        url=link,
        source=source,
        title=title,
        published=_json_time(item.get("date_published")),
        updated=_json_time(item.get("date_modified")),
        authors=tuple(authors),
        lede=lede,
        body=body,
        language=_language(item.get("language")) or language,
        tags=tuple(str(t) for t in item.get("tags") or [] if str(t).strip()),
        title_generated=generated,
    )


def _absolute(base: str, link: str) -> str:
    return urljoin(base, link.strip()) if link.strip() else ""


TITLE_WORDS = 12
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s")


def _fallback_title(lede: str, body: tuple[Block, ...], link: str) -> str:
    """A title for an item without one (RSS allows it; alerts must not be blank): its first
    sentence if that has at most TITLE_WORDS words, else its first TITLE_WORDS words and an
    ellipsis; with no text, its link; else "(untitled)". The article is flagged
    `title_generated`, so templates can tell."""
    text = " ".join((lede or next((b.text for b in body if b.text.strip()), "")).split())
    if not text:
        return link or "(untitled)"
    sentence = _SENTENCE_END.split(text, 1)[0]
    words = sentence.split(" ")
    if len(words) <= TITLE_WORDS:
        return sentence if sentence == text or sentence[-1] in ".!?。！？" else sentence + "…"
    return " ".join(words[:TITLE_WORDS]).rstrip(",;:") + "…"


def _struct_time(value: time.struct_time | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)


def _updated(entry: Any) -> datetime | None:
    """Only a time distinct from the published one is an update.

    `dict.get` skips feedparser's deprecated mapping of `updated` onto `published`.
    """
    updated = _struct_time(dict.get(entry, "updated_parsed"))
    return None if updated == _struct_time(entry.get("published_parsed")) else updated


def _json_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _language(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().split("-")[0].split("_")[0].lower()

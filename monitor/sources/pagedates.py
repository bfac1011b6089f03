"""Dates of a page (parsing stated values, htmldate on the page minus its chrome) and the
caps on how much of a tree later passes see (truncate, cap_text).

Read by monitor.sources.pagemeta, which decides which stated date wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from copy import deepcopy
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeAlias
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

from monitor.model import parse_time
from monitor.sources.cmsmarkup import CHROME_ANCESTORS

__all__ = [
    "cap_text",
    "first_time",
    "htmldate",
    "parse_date",
    "stated_day",
    "time_elements",
    "trackback_date",
    "truncate",
]

Element: TypeAlias = lxml.html.HtmlElement

_HTMLDATE_ELEMENTS = 15_000
_HTMLDATE_TEXT_CHARS = 400_000
_WEEKDAY = re.compile(
    r"\b(mon|tues|wednes|thurs|fri|satur|sun)day\b|\b(montag|dienstag|mittwoch|donnerstag"
    r"|freitag|samstag|sonntag|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|lunes"
    r"|martes|miércoles|jueves|viernes|sábado|domingo)\b",
    re.IGNORECASE,
)
# A box that holds the headline is the article's own (a WordPress <body> has the class
# "comments-open"; an <header class="entry-header"> outside <article> holds h1 and date).
_US_OFFSETS = {
    "EST": "-05:00", "EDT": "-04:00", "CST": "-06:00", "CDT": "-05:00",
    "MST": "-07:00", "MDT": "-06:00", "PST": "-08:00", "PDT": "-07:00",
}  # fmt: skip
_US_ZONE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)\s*([ECMP][SD]T)$", re.I)
# "2020-11-27T00:00:00+08:00": a date-only field a CMS serialized as local midnight.
_LOCAL_MIDNIGHT = re.compile(r"^(\d{4}-\d{2}-\d{2})T00:00(?::00(?:\.0+)?)?([+-]\d{2}:?\d{2})$")
# A blog entry's trackback autodiscovery block (Movable Type, TypePad, goo, Hatena), which
# the CMS writes inside an HTML comment: <rdf:Description rdf:about="URL" dc:date="...">.
_TRACKBACK = re.compile(r"<rdf:Description\b[^>]*>")
_TRACKBACK_ABOUT = re.compile(r'\b(?:rdf:about|dc:identifier)\s*=\s*"([^"]*)"')
_TRACKBACK_DATE = re.compile(r'\bdc:date\s*=\s*"([^"]*)"')
_COMMENT_BOXES = (
    " | //body//*[not(.//h1)][contains(@class, 'comment') or contains(@id, 'comment')"
    " or contains(@class, 'copyright') or contains(@id, 'respond') or contains(@class, 'disqus')]"
)
_CHROME_BOXES = (
    "//nav[not(.//h1)] | //aside[not(ancestor::article)][not(.//h1)]"
    " | //footer[not(ancestor::article)][not(.//h1)] | //header[not(ancestor::article)][not(.//h1)]"
    " | //article//article[not(.//h1)]"
)


def time_elements(tree: Element, hint: str) -> list[str]:
    """<time datetime> values in the article, not the site's header or footer."""
    hinted = f'[contains(@class, "{hint}") or contains(@itemprop, "{hint}")]' if hint else ""
    return [
        str(value)
        for value in tree.xpath(f"//time{hinted}[not({CHROME_ANCESTORS})]/@datetime")
        if str(value).strip()
    ]


def trackback_date(html: str, page_url: str) -> str:
    """The dc:date of the page's own trackback RDF block ("" if none): the only entry in
    the page, or the one about the page's URL (a blog's home page lists several)."""
    if "rdf:Description" not in html:  # RDF/XML names are case-sensitive
        return ""
    entries = _TRACKBACK.findall(html)
    if len(entries) > 1:
        path = _path(page_url)
        entries = [e for e in entries if path in map(_path, _TRACKBACK_ABOUT.findall(e))]
    dates = _TRACKBACK_DATE.findall(entries[0]) if len(entries) == 1 else []
    return str(dates[0]) if dates else ""


def _path(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path.rstrip("/") or "/") + (f"?{parts.query}" if parts.query else "")


def first_time(values: Iterable[str]) -> datetime | None:
    """The first value that parses, read as stated_day reads it (so a modified marker
    equal to the published one is the same instant)."""
    for value in values:
        parsed = stated_day(value)
        if parsed is not None:
            return parsed
    return None


def parse_date(value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    zoned = _US_ZONE.match(value)  # "2020-09-25T16:02:50CDT" (Mexican and US sites)
    if zoned:
        value = zoned[1] + _US_OFFSETS[zoned[2].upper()]
    try:
        return parse_time(value)
    except ValueError:
        pass
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=parsed.tzinfo or UTC).astimezone(UTC)


def stated_day(value: str) -> datetime | None:
    """A stated publication value: as parse_date, except that exactly local midnight at a
    non-zero offset ("2020-11-27T00:00:00+08:00") is the date a CMS stored without a
    time, so its day is the stated one: midnight UTC, as for any date without a time."""
    midnight = _LOCAL_MIDNIGHT.match(value.strip())
    if midnight and midnight[2].replace(":", "") not in ("+0000", "-0000"):
        return parse_date(midnight[1])
    return parse_date(value)


def htmldate(
    tree: Element, page_url: str, now: datetime | None, *, extensive: bool = True
) -> datetime | None:
    """The date htmldate finds in the page minus its chrome; midnight UTC.

    Removed first: the site's header, navigation, sidebars and footer (an <aside> or
    <footer> inside <article> is the article's own: its meta box, a Drupal node footer),
    an <article> inside an article (another story's card, a comment), comment sections,
    copyright lines and the weekday lines above the article (a "Friday, November 22,
    2024" top bar is the day the page was seen). htmldate's quick search on that page,
    then (if `extensive`) its extensive one, first on the part from the headline's
    article box on, then on the whole. A bare year's January 1st from the extensive
    search is refused ("En 2002, ...").
    """
    whole = _without(tree, _CHROME_BOXES + _COMMENT_BOXES)
    _drop_weekday_lines(whole)
    limit = now.strftime("%Y-%m-%d") if now else None
    found = _find_date(whole, page_url, limit, extensive=False)
    if found is not None or not extensive:
        return found
    article = deepcopy(whole)
    _drop_above_article(article)
    for page in (article, whole):
        found = _find_date(page, page_url, limit, extensive=True)
        if found is not None:
            return found
    return None


def _find_date(
    page: Element, page_url: str, limit: str | None, *, extensive: bool
) -> datetime | None:
    from htmldate import find_date  # imported on first use, as trafilatura is

    found = find_date(
        page, extensive_search=extensive, original_date=True, url=page_url or None, max_date=limit
    )
    if not found or (extensive and found.endswith("-01-01")):
        return None
    return parse_date(found)


def _above_article(page: Element) -> list[Element]:
    """What precedes the headline's article box (or the headline) in the body."""
    headlines = page.xpath("//body//h1")
    if not headlines:
        return []
    boxes = headlines[0].xpath("ancestor::article | ancestor::main")
    node = boxes[-1] if boxes else headlines[0]
    above: list[Element] = []
    while node.getparent() is not None and node.tag != "body":
        above.extend(node.itersiblings(preceding=True))
        node = node.getparent()
    return above


def _drop_above_article(page: Element) -> None:
    for element in _above_article(page):
        element.getparent().remove(element)


def _drop_weekday_lines(page: Element) -> None:
    """Remove the smallest boxes above the article whose text names a weekday: a
    "Friday, November 22, 2024" top bar is the day the page was seen. A box marked as the
    publication date ("<p class='published-date'>jueves 2 de abril de 2020") stays, and
    so does a line in the headline's own box (Blogger's "date-header" next to the <h1>)."""
    headlines = page.xpath("//body//h1")
    own = None  # the headline's own box, when no <article> or <main> holds it
    if headlines and not headlines[0].xpath("ancestor::article | ancestor::main"):
        own = headlines[0].getparent()
    for box in _above_article(page):
        if not _WEEKDAY.search(box.text_content()) or (
            own is not None and own.tag != "body" and box.getparent() is own
        ):
            continue
        inner = [
            e for e in box.iter(etree.Element) if len(e) == 0 and _WEEKDAY.search(e.text_content())
        ]
        for element in inner or [box]:
            if element.getparent() is not None and not _marked_published(element, box):
                element.getparent().remove(element)


def _marked_published(element: Element, box: Element) -> bool:
    """`element`, or a box around it up to `box`, is marked as the publication date."""
    node: Element | None = element
    while node is not None:
        marks = f"{node.get('class', '')} {node.get('id', '')} {node.get('itemprop', '')}"
        if "publish" in marks.lower() or "pubdate" in marks.lower():
            return True
        node = None if node is box else node.getparent()
    return False


def _without(tree: Element, path: str) -> Element:
    copy = deepcopy(tree)
    truncate(copy, _HTMLDATE_ELEMENTS)
    cap_text(copy, _HTMLDATE_TEXT_CHARS)
    for element in copy.xpath(path):
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)
    return copy


def truncate(tree: Element, limit: int) -> None:
    """Keep the first `limit` elements in document order; drop the rest."""
    if tree.xpath("count(//*)") <= limit:  # counted in C; the loop below is Python
        return
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
    if len(tree.text_content()) <= limit:  # one pass in C; the loop below is Python
        return
    seen = 0
    for element in tree.iter(etree.Element):
        for attribute in ("text", "tail"):
            value = getattr(element, attribute)
            if value:
                room = max(limit - seen, 0)
                setattr(element, attribute, value[:room])
                seen += min(len(value), room)

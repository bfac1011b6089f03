"""What the common CMSs put in their markup around an article: the lede element and tag links.

Read by monitor.sources.pagemeta where structured data is silent. Written from what the
themes and platforms emit: tagDiv Newspaper (`tdb_single_subtitle`, `td-post-sub-title`,
`tdb-tags`), JNews (`jeg_post_subtitle`, `jeg_post_tags`), Jannah (`entry-sub-title`,
`post-bottom-tags`), Soledad (`penci-psub-title`, `post-tags`), GeneratePress/Astra
(`tags-links`), Arc XP (`b-subheadline`, `b-tag-list`), Brightspot (`ArticlePage-subHeadline`,
`TagList`), Drupal (`field--name-field-standfirst`, `field--name-field-tags`), Ghost
(`article-excerpt`), Substack (`h3.subtitle`), Medium (`pw-subtitle-paragraph`). Pure: lxml
trees in, strings out.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TypeAlias
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

from monitor.sources.htmltext import clean_text

__all__ = [
    "CHROME_ANCESTORS",
    "class_words",
    "class_words_of",
    "in_related",
    "keyword_tags",
    "lede_element",
    "tag_links",
]

Element: TypeAlias = lxml.html.HtmlElement

CHROME_ANCESTORS = (
    "ancestor-or-self::nav or ancestor-or-self::aside or ancestor-or-self::footer"
    " or ancestor-or-self::header[not(ancestor::article)]"
)
# Whole class names with "-" and "_" removed contain one of these ("td-post-sub-title",
# "ArticlePage-subHeadline", "penci-psub-title", "field--name-field-standfirst").
_LEDE_JOINED = ("subtitle", "subheadline", "subhead", "standfirst", "strapline", "subheading")
_LEDE_WORDS = {"dek", "deck", "lede", "excerpt", "kicker-lede"}
_LEDE_PARAGRAPH_WORDS = {"lead", "intro", "summary", "teaser"}
_LEDE_MIN_CHARS = 20
_LEDE_MAX_CHARS = 600
_NOT_LEDE = re.compile(r"(caption|credit|video|vjs|player|card|widget|subtitles)")
_TAG_WORDS = {"tag", "tags", "taglist", "topics", "keywords", "tagcloud", "tdb-tags"}
_TAG_PATH = re.compile(
    r"/(tags?|topics?|keywords?|schlagw(o|ö)rter|themen|etiquetas?|taxonomy/term)/[^/]+/?$",
    re.IGNORECASE,
)
_CAMEL = re.compile(r"([a-z])([A-Z])")
_SEPARATORS = re.compile(r"[\s_\-]+")
# Only elements whose class or test id holds one of these can be a lede (a cheap XPath
# filter before the word checks).
_LEDE_HINT = re.compile(
    "sub|dek|deck|lede|excerpt|standfirst|strapline|lead|intro|summary|teaser", re.IGNORECASE
)
_IN_CHROME = etree.XPath(f"boolean({CHROME_ANCESTORS})")  # compiled once, used per element
_KEYED = re.compile(r"^([A-Za-z]+):(.+)$")
_TAG_LABEL = re.compile(r"^(tags?|topics?|keywords?)\s*:?$", re.IGNORECASE)


def class_words(element: Element) -> list[str]:
    """The words of an element's class and id: "story__byline c-ad" -> story, byline, c, ad."""
    return list(class_words_of(element.get("class", ""), element.get("id", "")))


@lru_cache(maxsize=8192)
def class_words_of(classes: str, ident: str) -> tuple[str, ...]:
    spaced = _CAMEL.sub(r"\1 \2", f"{classes} {ident}")
    return tuple(word for word in _SEPARATORS.split(spaced.lower()) if word)


def _joined_names(element: Element) -> list[str]:
    return [
        re.sub(r"[-_]", "", name).lower()
        for name in f"{element.get('class', '')} {element.get('data-testid', '')}".split()
    ]


def in_related(element: Element | None) -> bool:
    while element is not None:
        if any(word.startswith("related") for word in class_words(element)):
            return True
        element = element.getparent()
    return False


def _lede_marked(element: Element) -> bool:
    names = _joined_names(element)
    if any(_NOT_LEDE.search(name) for name in names):
        return False
    words = set(class_words(element))
    paragraph_words = _LEDE_PARAGRAPH_WORDS if element.tag == "p" else set()
    return bool(words & (_LEDE_WORDS | paragraph_words)) or any(
        marker in name for name in names for marker in _LEDE_JOINED
    )


@lru_cache(maxsize=8192)
def _lede_hinted(marks: str) -> bool:  # a page repeats its class names: one search each
    return _LEDE_HINT.search(marks) is not None


def lede_element(tree: Element) -> Element | None:
    """The standfirst / sub-title / dek / excerpt element under the headline, outside chrome.

    Marked by its class (see the module notes), or a long heading right after the <h1>.
    """
    body = tree.find("body")
    for element in body.iter() if body is not None else ():
        marks = element.get("class") or element.get("data-testid")
        if marks is None or not _lede_hinted(marks) or _IN_CHROME(element):
            continue
        if element.tag in ("h1", "a", "img", "time", "script", "style", "figcaption"):
            continue
        if not _lede_marked(element):
            continue
        text = clean_text(element.text_content())
        if _LEDE_MIN_CHARS <= len(text) <= _LEDE_MAX_CHARS and not in_related(element):
            return element
    for heading in tree.xpath(f"//body//h1[not({CHROME_ANCESTORS})]"):
        following = heading.getnext()
        if (
            following is not None
            and following.tag in ("h2", "h3")
            and following.find(".//a") is None
        ):
            text = clean_text(following.text_content())
            if 40 <= len(text) <= _LEDE_MAX_CHARS:
                return following
        break
    return None


def keyword_tags(values: list[str]) -> list[str]:
    """Tags from JSON-LD keywords; Medium's "Tag:X" entries among its "Key:value" flags."""
    keyed = [_KEYED.match(value) for value in values]
    if any(match and match.group(1).lower() == "tag" for match in keyed):
        return [m.group(2).strip() for m in keyed if m and m.group(1).lower() == "tag"]
    return values


def tag_links(tree: Element) -> list[str]:
    """Texts of the article's tag links: rel="tag", or tag-page links in a tag list box."""
    found: list[str] = []
    for anchor in tree.xpath(f"//body//a[@href][not({CHROME_ANCESTORS})]"):
        rel = (anchor.get("rel") or "").lower().split()
        text = clean_text(anchor.text_content())
        if not text or _TAG_LABEL.match(text) or len(text) > 60 or "category" in rel:
            continue
        if "tag" in rel or (_tag_page(anchor.get("href", "")) and _in_tag_box(anchor)):
            found.append(text.lstrip("#").strip())
    return found


def _tag_page(href: str) -> bool:
    return bool(_TAG_PATH.search(urlsplit(href.strip()).path))


def _in_tag_box(anchor: Element) -> bool:
    element: Element | None = anchor.getparent()
    for _ in range(4):
        if element is None:
            return False
        words = set(class_words(element))
        if words & _TAG_WORDS or any(word.startswith("tag") for word in words):
            return True
        element = element.getparent()
    return False

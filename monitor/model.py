"""The normalized article: one structure for every feed item and page."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Literal

__all__ = [
    "Article",
    "Block",
    "BlockKind",
    "Link",
    "article_id",
    "clean_text",
    "format_time",
    "parse_time",
]

BlockKind = Literal["paragraph", "heading", "quote", "list"]
BLOCK_KINDS: tuple[BlockKind, ...] = ("paragraph", "heading", "quote", "list")


@dataclass(frozen=True, slots=True)
class Block:
    kind: BlockKind
    text: str

    def __reduce__(self) -> tuple[type[Block], tuple[Any, ...]]:
        return Block, _block_fields(self)


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    url: str

    def __reduce__(self) -> tuple[type[Link], tuple[Any, ...]]:
        return Link, _link_fields(self)


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    url: str
    source: str
    title: str
    published: datetime | None = None
    updated: datetime | None = None
    section: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    lede: str = ""
    body: tuple[Block, ...] = ()
    related: tuple[Link, ...] = ()
    language: str | None = None
    tags: tuple[str, ...] = field(default=())
    title_generated: bool = False
    """The item had no title: `title` was made from its text (see sources.feeds)."""

    def __reduce__(self) -> tuple[type[Article], tuple[Any, ...]]:
        return Article, _article_fields(self)

    @property
    def body_text(self) -> str:
        return "\n\n".join(block.text for block in self.body)

    def to_json(self) -> dict[str, Any]:
        """The Article JSON of design.md (the keys `monitor preview --json` prints)."""
        return {
            "id": self.id,
            "url": self.url,
            "source": self.source,
            "title": self.title,
            "published": format_time(self.published),
            "updated": format_time(self.updated),
            "section": list(self.section),
            "authors": list(self.authors),
            "lede": self.lede,
            "body": [{"kind": b.kind, "text": b.text} for b in self.body],
            "related": [{"title": link.title, "url": link.url} for link in self.related],
            "language": self.language,
            "tags": list(self.tags),
        } | ({"title_generated": True} if self.title_generated else {})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Article:
        body = []
        for item in data.get("body", []):
            kind = item["kind"]
            if kind not in BLOCK_KINDS:
                raise ValueError(f"unknown body block kind {kind!r}")
            body.append(Block(kind, item["text"]))
        return cls(
            id=data["id"],
            url=data["url"],
            source=data["source"],
            title=data["title"],
            published=parse_time(data.get("published")),
            updated=parse_time(data.get("updated")),
            section=tuple(data.get("section", [])),
            authors=tuple(data.get("authors", [])),
            lede=data.get("lede", ""),
            body=tuple(body),
            related=tuple(Link(r["title"], r["url"]) for r in data.get("related", [])),
            language=data.get("language"),
            tags=tuple(data.get("tags", [])),
            title_generated=bool(data.get("title_generated", False)),
        )


# Pickled as constructor calls, every field in order: the slotted dataclasses' own state
# methods run Python code per object (read-ahead and two-core matching pickle thousands).
_article_fields = attrgetter(*(item.name for item in fields(Article)))
_block_fields = attrgetter(*(item.name for item in fields(Block)))
_link_fields = attrgetter(*(item.name for item in fields(Link)))


# Removed from all text, read or sent: C0 and C1 controls and DEL (tab, line feed and carriage
# return count as white space), the Arabic letter mark, the zero-width space, the left-to-right
# and right-to-left marks, bidi embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069: they can make text display other than it reads), the BOM / zero-width
# no-break space and the interlinear annotation characters. Kept: ZWJ and ZWNJ (U+200D,
# U+200C), which Persian, Indic scripts and emoji need, and the soft hyphen.
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e"
    "\u2066-\u2069\ufeff\ufff9-\ufffb]"
)
# Every white space run (including NBSP and the line and paragraph separators U+2028,
# U+2029) becomes one space.
_SPACE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """`text` on one line: control, bidi-override and invisible characters dropped, white
    space runs collapsed to one space, ends stripped. The one cleaner of untrusted text, on
    the way in (feeds, pages, identity keys) and on the way out (messages, URLs)."""
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        # Already clean, as most text read is: what is printable holds none of the removed
        # characters and no white space but the space (a third of the time on feeds).
        return text
    return " ".join(_CONTROL.sub("", text).split())  # str.split's white space is re's \s


def article_id(identity: str) -> str:
    """A short, stable id derived from an article's identity key."""
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]


def format_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)

"""Why a rule matched: the terms, where they occur, and a marked snippet of the article.

`Query.explain` and `RuleIndex.match` return an `Explanation`: the matched terms (what
`Query.evaluate` returns) and one `Hit` per occurrence, located in the original text of a
field's block. `mark_snippet` quotes the article around its best hits.

Which snippet: the window of at most `width` characters of one block holding the most
distinct matched terms, looked for first in the lede and body (the text a reader wants to
see, and the title is shown beside the snippet anyway), then in the title, then in the
other fields. Ties go to the lede, then the earliest block and position.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from monitor.rules.syntax import FIELDS

if TYPE_CHECKING:
    from monitor.rules.document import Document

__all__ = ["Explanation", "Hit", "mark_snippet"]

SNIPPET_WIDTH = 280
ELLIPSIS = "…"
_SNIPPET_TIERS: tuple[tuple[str, ...], ...] = (
    ("lede", "body"),
    ("title",),
    ("section", "author", "source", "url"),
)
_FIELD_RANK = {name: index for index, name in enumerate(FIELDS)}
_SNAP = 30
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Hit:
    """One occurrence of a matched term.

    `block` indexes the field's blocks (a body paragraph, an author; 0 for title and lede),
    and `start`/`end` are character offsets in that block's original text.
    """

    term: str
    field: str
    block: int
    start: int
    end: int


Located = tuple[str, str, Callable[[], Iterable[Hit]]]
"""A matched term, a field it matched in, and a function returning its hits there."""


class TermSource(Protocol):
    """A term's matcher: where the term occurs in a document and its summary piece
    (kept in `Document.pieces` under `key`)."""

    key: str

    def found(self, doc: Document) -> list[Located]: ...

    def summary(self, doc: Document) -> str: ...


class Explanation:
    """The terms a query matched (as `Query.evaluate` returns them) and their hits.

    `fields(term)` and `summary()` are known at once; `hits` are located in the original
    text on first use (`Query.explain` defers that work, since most matches only need
    their summary).
    """

    __slots__ = (
        "_document",
        "_fields",
        "_found",
        "_hits",
        "_matchers",
        "_summarize",
        "_summary",
        "terms",
    )

    def __init__(self, terms: Sequence[str], hits: Iterable[Hit] = ()) -> None:
        self.terms = tuple(terms)
        self._hits: tuple[Hit, ...] | None = tuple(hits)
        self._found: Sequence[Located] = ()
        self._fields: dict[str, tuple[str, ...]] | None = None
        self._summary: str | None = None
        self._summarize: Callable[[], str] | None = None
        self._matchers: Sequence[TermSource] = ()
        self._document: Document | None = None

    @classmethod
    def deferred(
        cls,
        terms: tuple[str, ...],
        found: Sequence[Located],
        summary: Callable[[], str] | None = None,
    ) -> Explanation:
        """The matched terms, and where: hits are located when first asked for.

        `summary`, if given, computes what `summary()` would (from pieces the evaluator
        shares between the rules of one document)."""
        explanation = cls.__new__(cls)
        explanation.terms = terms
        explanation._hits = None
        explanation._found = found
        explanation._fields = None
        explanation._summary = None
        explanation._summarize = summary
        explanation._matchers = ()
        explanation._document = None
        return explanation

    @classmethod
    def of_terms(
        cls, terms: tuple[str, ...], matchers: Sequence[TermSource], document: Document
    ) -> Explanation:
        """A match of every one of `matchers` (known to occur in `document`): where they
        occur, and the summary, are asked of them only when wanted, from the document's memo
        (one object per match: a backtest of many rules makes millions)."""
        explanation = cls.__new__(cls)
        explanation.terms = terms
        explanation._hits = None
        explanation._found = ()
        explanation._fields = None
        explanation._summary = None
        explanation._summarize = None
        explanation._matchers = matchers
        explanation._document = document
        return explanation

    def _located(self) -> Sequence[Located]:
        if not self._found and self._matchers:
            found: list[Located] = []
            document = self._document
            assert document is not None
            for matcher in self._matchers:
                found += matcher.found(document)
            self._found = found
        return self._found

    @property
    def hits(self) -> tuple[Hit, ...]:
        if self._hits is None:
            self._hits = tuple(hit for _, _, locate in self._located() for hit in locate())
        return self._hits

    def fields(self, term: str) -> tuple[str, ...]:
        """The fields `term` matched in, in the order of `FIELDS`."""
        if self._fields is None:
            if self._located():
                self._fields = _fields_by_term((term, field) for term, field, _ in self._found)
            else:
                self._fields = _fields_by_term((hit.term, hit.field) for hit in self.hits)
        return self._fields.get(term, ())

    def summary(self) -> str:
        """`Japan (title, body), north korea (body)`: each term once, with its fields."""
        if self._summary is None and self._matchers:
            document = self._document
            assert document is not None
            pieces = document.pieces
            self._summary = ", ".join(
                [pieces.get(matcher.key) or matcher.summary(document) for matcher in self._matchers]
            )
        if self._summary is None and self._summarize is not None:
            self._summary = self._summarize()
        if self._summary is None:
            self.fields("")
            assert self._fields is not None
            fields = self._fields
            self._summary = ", ".join([_with_fields(t, fields.get(t, ())) for t in self.terms])
        return self._summary

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Explanation):
            return NotImplemented
        return (self.terms, self.hits) == (other.terms, other.hits)

    def __hash__(self) -> int:
        return hash((self.terms, self.hits))

    def __repr__(self) -> str:
        return f"Explanation(terms={self.terms!r}, hits={self.hits!r})"


def _fields_by_term(pairs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for term, field in pairs:
        fields = found.get(term)
        if fields is None:
            found[term] = [field]
        elif field not in fields:
            fields.append(field)
    rank = _FIELD_RANK.__getitem__
    return {
        term: tuple(fields) if len(fields) == 1 else tuple(sorted(fields, key=rank))
        for term, fields in found.items()
    }


def _with_fields(term: str, fields: Sequence[str]) -> str:
    return f"{term} ({', '.join(fields)})" if fields else term


@dataclass(frozen=True, slots=True)
class _Window:
    field: str
    block: int
    start: int
    end: int
    distinct: int


def mark_snippet(
    doc: Document,
    explanation: Explanation,
    width: int = SNIPPET_WIDTH,
    mark: tuple[str, str] = ("**", "**"),
) -> str:
    """Up to `width` characters around the best hits, matched words wrapped in `mark`.

    Whitespace runs become one space; `…` marks a cut at either end. Without hits (a query
    built without the parser's checks can match on negations alone), the start of the lede,
    body or title.
    """
    window = _best_window(explanation.hits, width)
    if window is None:
        return _plain_snippet(doc, width)
    text = doc.field(window.field).originals[window.block]
    start, end = _frame(text, window, width)
    spans = [
        (hit.start, hit.end)
        for hit in explanation.hits
        if hit.field == window.field
        and hit.block == window.block
        and start <= hit.start
        and hit.end <= end
    ]
    return _render(text, start, end, _merged(spans), mark)


def _best_window(hits: Sequence[Hit], width: int) -> _Window | None:
    for tier in _SNIPPET_TIERS:
        windows = [
            _densest(field, block, found, width)
            for (field, block), found in _by_block(hits, tier).items()
        ]
        if windows:
            rank = {name: index for index, name in enumerate(tier)}
            return min(windows, key=lambda w: (-w.distinct, rank[w.field], w.block, w.start))
    return None


def _by_block(hits: Sequence[Hit], fields: tuple[str, ...]) -> dict[tuple[str, int], list[Hit]]:
    blocks: dict[tuple[str, int], list[Hit]] = {}
    for hit in hits:
        if hit.field in fields:
            blocks.setdefault((hit.field, hit.block), []).append(hit)
    return blocks


def _densest(field: str, block: int, hits: list[Hit], width: int) -> _Window:
    """The run of hits within `width` characters holding the most distinct terms."""
    hits = sorted(hits, key=lambda hit: (hit.start, hit.end))
    best = _Window(field, block, hits[0].start, hits[0].end, 1)
    for first, hit in enumerate(hits):
        terms: set[str] = set()
        end = hit.end
        for other in hits[first:]:
            if other.end - hit.start > width:
                break
            terms.add(other.term)
            end = max(end, other.end)
        if len(terms) > best.distinct:
            best = _Window(field, block, hit.start, end, len(terms))
    return best


def _frame(text: str, window: _Window, width: int) -> tuple[int, int]:
    """Widen the hits' span to `width` characters, centred, cut at spaces where possible."""
    if len(text) <= width:
        return 0, len(text)
    slack = max(0, width - (window.end - window.start))
    start = min(max(0, window.start - slack // 2), max(0, len(text) - width))
    start = min(start, window.start)
    end = max(min(len(text), start + width), window.end)
    if start > 0:
        space = text.find(" ", start, min(window.start, start + _SNAP))
        start = start if space < 0 else space + 1
    if end < len(text):
        space = text.rfind(" ", max(window.end, end - _SNAP), end)
        end = end if space < 0 else space
    return start, end


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _render(
    text: str, start: int, end: int, spans: list[tuple[int, int]], mark: tuple[str, str]
) -> str:
    parts = [ELLIPSIS] if start > 0 else []
    position = start
    for span_start, span_end in spans:
        parts.append(_SPACES.sub(" ", text[position:span_start]))
        parts.append(mark[0] + _SPACES.sub(" ", text[span_start:span_end]) + mark[1])
        position = span_end
    parts.append(_SPACES.sub(" ", text[position:end]))
    if end < len(text):
        parts.append(ELLIPSIS)
    return "".join(parts).strip()


def _plain_snippet(doc: Document, width: int) -> str:
    for name in ("lede", "body", "title"):
        for text in doc.field(name).originals:
            if text.strip():
                cut = _frame(text, _Window(name, 0, 0, 0, 0), width)
                return _render(text, *cut, [], ("", ""))
    return ""

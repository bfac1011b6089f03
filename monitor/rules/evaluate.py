"""Evaluating compiled queries against documents.

A `Document` is built once per article: for every field, the original and normalized text
of each block, its tokens and their set, so that a word lookup is a set hit; a phrase is
checked from the positions of its first word (a token -> positions map built on first use).
Blocks are separated by a boundary token, so neither a phrase nor a proximity spans two
paragraphs (or two authors, two section entries).

`Query.explain` also reports where each matched term occurs, as `Hit`s: character offsets in
the original block text, so that a snippet can quote and mark the article as written.

Terms in scripts written without spaces match as substrings of a block's normalized text;
between the words of such a phrase, any run of spaces and punctuation (or none) is allowed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial

from monitor.rules.document import Document, FieldIndex, Span
from monitor.rules.explain import Explanation, Hit, Located, TermSource
from monitor.rules.syntax import (
    DEFAULT_FIELDS,
    FIELDS,
    And,
    Field,
    Near,
    Node,
    Not,
    Or,
    Term,
    canonical,
    parse,
)
from monitor.rules.text import (
    UNSPACED_CLASS,
    has_unspaced,
)

__all__ = ["Document", "FieldIndex", "Query", "compile_query"]


class _Matcher:
    __slots__ = ()

    def matches(self, doc: Document) -> bool:
        raise NotImplementedError

    def collect(self, doc: Document, out: list[Located]) -> bool:
        """Like `matches`, also appending where the positive terms matched to `out`."""
        raise NotImplementedError


class _TermMatcher(_Matcher):
    """A term; `required` are its plain words, which a document must hold to match it."""

    __slots__ = (
        "default",
        "fields",
        "key",
        "label",
        "needle",
        "pattern",
        "required",
        "words",
    )

    def __init__(self, term: Term, fields: tuple[str, ...]) -> None:
        self.words = term.words
        self.label = term.label
        self.fields = fields
        # Interned: rules that share a term share its keys (memory), and a str caches
        # its hash, so the per-document memo costs one dict lookup.
        self.key = sys.intern(
            "\0".join((type(self).__name__, term.label, *term.words, "", *fields))
        )
        self.default = fields == DEFAULT_FIELDS
        self.pattern = _unspaced_pattern(term.words) if term.unspaced else None
        plain = () if term.unspaced else (word for word in term.words if not word.endswith("*"))
        self.required = frozenset(plain)
        self.needle = None if term.unspaced else _needle(term.words)

    def may_occur(self, doc: Document) -> bool:
        return self.required <= (doc.default_words if self.default else doc.words)

    def matches(self, doc: Document) -> bool:
        if not self.may_occur(doc):
            return False
        for name in self.fields:  # noqa: SIM110 - a loop is faster than any() on a generator
            if self._occurs(doc.field(name)):
                return True
        return False

    def _occurs(self, index: FieldIndex) -> bool:
        if self.pattern is not None:
            return index.search(self.pattern)
        if not self.required <= index.words:
            return False
        if self.needle is not None:
            return self.needle in index.joined
        return index.contains(self.words)

    def collect(self, doc: Document, out: list[Located]) -> bool:
        located: list[Located] | None = doc.located.get(self.key)
        if located is None:
            located = doc.located[self.key] = self._locate(doc)
        if not located:
            return False
        out += located
        return True

    def found(self, doc: Document) -> list[Located]:
        """Where the term occurs in `doc`, per field: computed once per document and term,
        whichever rules hold the term."""
        located: list[Located] | None = doc.located.get(self.key)
        if located is None:
            located = doc.located[self.key] = self._locate(doc)
        return located

    def summary(self, doc: Document) -> str:
        """`label (fields)`, the term's part of a summary, once per document and term."""
        piece = doc.pieces.get(self.key)
        if piece is None:
            piece = doc.pieces[self.key] = f"{self.label} ({', '.join(self._fields_in(doc))})"
        return piece

    def _fields_in(self, doc: Document) -> Iterable[str]:
        """The fields the term occurs in, in the order of `fields`."""
        return dict.fromkeys(field for _, field, _ in self.found(doc))

    def _locate(self, doc: Document) -> list[Located]:
        """Where the term occurs, per field: computed once per document and term, whichever
        rules hold the term."""
        if not self.required <= doc.words:
            return []
        located: list[Located] = []
        for name in self.fields:
            index = doc.field(name)
            if not self._occurs(index):
                continue
            locate = self._hits if self.pattern is None else self._text_hits
            located.append((self.label, name, partial(locate, index, name)))
        return located

    def _hits(self, index: FieldIndex, name: str) -> list[Hit]:
        return [index.token_hit(self.label, name, span) for span in index.spans(self.words)]

    def _text_hits(self, index: FieldIndex, name: str) -> list[Hit]:
        assert self.pattern is not None
        return [
            index.text_hit(self.label, name, block, found.span())
            for block, text in enumerate(index.texts)
            for found in self.pattern.finditer(text)
        ]


class _WordMatcher(_TermMatcher):
    """A single plain word: one set lookup per field."""

    __slots__ = ()

    def matches(self, doc: Document) -> bool:
        word = self.words[0]
        return any(word in doc.field(name).words for name in self.fields)

    def _fields_in(self, doc: Document) -> Iterable[str]:
        # From the word sets alone: a backtest asks this of tens of thousands of terms and
        # articles, most of which never need their hits located.
        word = self.words[0]
        return [name for name in self.fields if word in doc.field(name).words]

    def _locate(self, doc: Document) -> list[Located]:
        word = self.words[0]
        if word not in doc.words:
            return []
        located: list[Located] = []
        for name in self.fields:
            index = doc.field(name)
            if word in index.words:
                located.append((self.label, name, partial(self._hits, index, name)))
        return located


class _DefaultWordMatcher(_WordMatcher):
    """A single plain word in the default fields: one set lookup."""

    __slots__ = ()

    def matches(self, doc: Document) -> bool:
        return self.words[0] in doc.default_words


class _NotMatcher(_Matcher):
    __slots__ = ("child",)

    def __init__(self, child: _Matcher) -> None:
        self.child = child

    def matches(self, doc: Document) -> bool:
        return not self.child.matches(doc)

    def collect(self, doc: Document, out: list[Located]) -> bool:
        return not self.child.matches(doc)


class _AndMatcher(_Matcher):
    """`words` are the single words among its children in the default fields: one subset
    test answers them all, and most documents fail there."""

    __slots__ = ("children", "others", "words")

    def __init__(self, children: tuple[_Matcher, ...]) -> None:
        self.children = children
        words = [c for c in children if type(c) is _DefaultWordMatcher]
        self.words = frozenset(c.words[0] for c in words)
        self.others = tuple(c for c in children if type(c) is not _DefaultWordMatcher)

    def matches(self, doc: Document) -> bool:
        if not self.words <= doc.default_words:
            return False
        for child in self.others:  # noqa: SIM110 - a loop is faster than all() on a generator
            if not child.matches(doc):
                return False
        return True

    def collect(self, doc: Document, out: list[Located]) -> bool:
        mark = len(out)
        for child in self.children:
            if not child.collect(doc, out):
                del out[mark:]
                return False
        return True


class _OrMatcher(_Matcher):
    __slots__ = ("children",)

    def __init__(self, children: tuple[_Matcher, ...]) -> None:
        self.children = children

    def matches(self, doc: Document) -> bool:
        for child in self.children:  # noqa: SIM110 - a loop is faster than any() on a generator
            if child.matches(doc):
                return True
        return False

    def collect(self, doc: Document, out: list[Located]) -> bool:
        found = False
        for child in self.children:
            found = child.collect(doc, out) or found
        return found


class _NearMatcher(_Matcher):
    __slots__ = ("distance", "fields", "left", "ordered", "right")

    def __init__(self, near: Near, fields: tuple[str, ...]) -> None:
        self.left = tuple(_TermMatcher(term, fields) for term in _alternatives(near.left))
        self.right = tuple(_TermMatcher(term, fields) for term in _alternatives(near.right))
        self.distance = near.distance
        self.ordered = near.ordered
        self.fields = fields

    def matches(self, doc: Document) -> bool:
        left = [term for term in self.left if term.may_occur(doc)]
        right = [term for term in self.right if term.may_occur(doc)]
        if not (left and right):
            return False
        for name in self.fields:
            index = doc.field(name)
            right_spans = [index.spans(term.words) for term in right]
            for term in left:
                left_spans = index.spans(term.words)
                for spans in right_spans:
                    if any(self._pairs(index, left_spans, spans)):
                        return True
        return False

    def collect(self, doc: Document, out: list[Located]) -> bool:
        """Where the occurrences near one another are: left terms, then right ones."""
        left: dict[tuple[int, str], set[Span]] = {}
        right: dict[tuple[int, str], set[Span]] = {}
        for name in self.fields:
            index = doc.field(name)
            right_spans = [index.spans(term.words) for term in self.right]
            for left_index, term in enumerate(self.left):
                left_spans = index.spans(term.words)
                for right_index, spans in enumerate(right_spans):
                    for left_span, right_span in self._pairs(index, left_spans, spans):
                        left.setdefault((left_index, name), set()).add(left_span)
                        right.setdefault((right_index, name), set()).add(right_span)
        for terms, found in ((self.left, left), (self.right, right)):
            for term_index, name in sorted(found, key=_field_order):
                label = terms[term_index].label
                spans = sorted(found[term_index, name])
                locate = partial(_token_hits, doc.field(name), label, name, spans)
                out.append((label, name, locate))
        return bool(left)

    def _pairs(
        self, index: FieldIndex, left: list[Span], right: list[Span]
    ) -> Iterator[tuple[Span, Span]]:
        for left_span in left:
            left_start, left_end = left_span
            for right_span in right:
                right_start, right_end = right_span
                if left_end <= right_start:
                    gap = right_start - left_end
                elif right_end <= left_start and not self.ordered:
                    gap = left_start - right_end
                else:
                    continue
                if gap <= self.distance and index.same_block(left_start, right_start):
                    yield left_span, right_span


def _needle(words: tuple[str, ...]) -> str | None:
    """The text a phrase is in `FieldIndex.joined`, if only its last word may be a prefix.

    None for a single plain word too: `FieldIndex.words` answers for it.
    """
    last = words[-1]
    if any(word.endswith("*") for word in words[:-1]) or (words == (last,) and last[-1] != "*"):
        return None
    text = " " + " ".join(words)
    return text[:-1] if last.endswith("*") else text + " "


def _token_hits(index: FieldIndex, term: str, field: str, spans: list[Span]) -> list[Hit]:
    return [index.token_hit(term, field, span) for span in spans]


def _field_order(key: tuple[int, str]) -> tuple[int, int]:
    return key[0], FIELDS.index(key[1])


def _alternatives(node: Node) -> tuple[Term, ...]:
    terms = node.children if isinstance(node, Or) else (node,)
    return tuple(term for term in terms if isinstance(term, Term))


def _unspaced_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    unspaced = UNSPACED_CLASS
    parts: list[str] = []
    previous = ""
    for word in words:
        stem = word.removesuffix("*")
        if previous:
            joint_unspaced = has_unspaced(previous[-1]) or has_unspaced(stem[0])
            parts.append(r"[\W_]*" if joint_unspaced else r"[\W_]+")
        parts.append(re.escape(stem) + (r"[^\W_]*" if word.endswith("*") else ""))
        previous = stem
    first, last = words[0], words[-1]
    if not has_unspaced(first[0]):
        parts.insert(0, rf"(?:(?<![^\W_])|(?<={unspaced}))")
    if not last.endswith("*") and not has_unspaced(last[-1]):
        parts.append(rf"(?:(?![^\W_])|(?={unspaced}))")
    return re.compile("".join(parts))


def _conjunction(matcher: _Matcher) -> tuple[str, ...] | None:
    """The terms of an AND of distinct terms (words, phrases, prefixes), else None."""
    if not isinstance(matcher, _AndMatcher):
        return None
    children = matcher.children
    if not all(isinstance(child, _TermMatcher) for child in children):
        return None
    labels = tuple(child.label for child in children if isinstance(child, _TermMatcher))
    return labels if len(set(labels)) == len(labels) else None


_LEAVES: dict[tuple[tuple[str, ...], str | None, tuple[str, ...]], _TermMatcher] = {}
"""Term matchers by term and fields, shared by every query that holds the term: a term
matcher holds nothing of one query, and thousands of rules share a few thousand terms
(compile time, and memory for the rules)."""
_LEAVES_BOUND = 100_000


def _leaf(node: Term, fields: tuple[str, ...]) -> _TermMatcher:
    key = (node.words, node.spelling, fields)  # a Term's own hash and == are Python code
    matcher = _LEAVES.get(key)
    if matcher is None:
        if len(node.words) > 1 or not node.plain or node.unspaced:
            matcher = _TermMatcher(node, fields)
        elif fields == DEFAULT_FIELDS:
            matcher = _DefaultWordMatcher(node, fields)
        else:
            matcher = _WordMatcher(node, fields)
        if len(_LEAVES) >= _LEAVES_BOUND:
            _LEAVES.clear()
        _LEAVES[key] = matcher
    return matcher


def _compile(node: Node, fields: tuple[str, ...]) -> _Matcher:
    match node:
        case Term():
            return _leaf(node, fields)
        case Not():
            return _NotMatcher(_compile(node.child, fields))
        case And():
            return _AndMatcher(tuple(_compile(child, fields) for child in node.children))
        case Or():
            return _OrMatcher(tuple(_compile(child, fields) for child in node.children))
        case Near():
            return _NearMatcher(node, fields)
        case Field():
            return _compile(node.child, (node.name,))


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed rule query, ready to evaluate against documents."""

    root: Node
    _matcher: _Matcher = field(init=False, repr=False, compare=False)
    _conjunction: tuple[str, ...] | None = field(init=False, repr=False, compare=False)
    _terms: tuple[_TermMatcher, ...] = field(init=False, repr=False, compare=False)
    _words: frozenset[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        matcher = _compile(self.root, DEFAULT_FIELDS)
        object.__setattr__(self, "_matcher", matcher)
        terms = _conjunction(matcher)
        object.__setattr__(self, "_conjunction", terms)
        children = matcher.children if terms is not None else ()  # type: ignore[attr-defined]
        object.__setattr__(self, "_terms", children)
        words = None
        if type(matcher) is _DefaultWordMatcher:
            words = frozenset(matcher.words)
        elif isinstance(matcher, _AndMatcher) and not matcher.others:
            words = matcher.words
        object.__setattr__(self, "_words", words)

    def canonical(self) -> str:
        return canonical(self.root)

    def matches(self, doc: Document) -> bool:
        return self._matcher.matches(doc)

    def evaluate(self, doc: Document) -> tuple[str, ...] | None:
        """None if the query does not match; else the positive terms that matched.

        The terms are in query order, de-duplicated, in display form: a single word as the
        user spelled it, a phrase normalized (`north korea`), a prefix with its `*`.
        """
        explanation = self.explain(doc)
        return None if explanation is None else explanation.terms

    def explain(self, doc: Document) -> Explanation | None:
        """None if the query does not match; else the matched terms and where they occur."""
        found: list[Located] = []
        if self._conjunction is not None:
            return self._explain_conjunction(doc)
        if not self._matcher.collect(doc, found):
            return None
        return Explanation.deferred(tuple(dict.fromkeys([term for term, _, _ in found])), found)

    def _explain_conjunction(self, doc: Document) -> Explanation | None:
        """Every term is required: the terms are known, and where each occurs (and its
        summary) is shared by every rule that holds it."""
        memo = doc.located
        found: list[Located] = []
        for child in self._terms:
            located = memo.get(child.key)
            if located is None:
                located = child.found(doc)
            if not located:
                return None
            found += located
        assert self._conjunction is not None
        return Explanation.deferred(self._conjunction, found, partial(_summary, self._terms, doc))

    def explain_present(self, doc: Document) -> Explanation:
        """The explanation of a match known from `required_words` alone (an AND of words
        in the default fields, all in `doc`): nothing is located until asked for."""
        present = self.present_terms
        assert present is not None
        return Explanation.of_terms(*present, doc)

    @property
    def present_terms(self) -> tuple[tuple[str, ...], tuple[TermSource, ...]] | None:
        """If `required_words` being present is the match: its terms and their matchers,
        what `explain_present` explains it with (`RuleIndex.match` calls that itself)."""
        if self._words is None or self._conjunction is None:
            return None
        return self._conjunction, self._terms

    @property
    def required_words(self) -> frozenset[str] | None:
        """The words (in the default fields) whose presence alone decides a match, if
        the query is an AND of single words or one word; else None."""
        return self._words


def _summary(terms: tuple[_TermMatcher, ...], doc: Document) -> str:
    return ", ".join([term.summary(doc) for term in terms])


def compile_query(text: str) -> Query:
    """Parse and validate a rule query; raises RuleSyntaxError with a 1-based column."""
    return Query(parse(text))

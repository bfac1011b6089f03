"""Evaluating compiled queries against documents.

A `Document` is built once per article: for every field, the normalized text of each block,
its tokens and a token -> positions map, so that a word lookup is a dict hit and a phrase is
checked from the positions of its first word. Blocks are separated by an empty token, so
neither a phrase nor a proximity spans two paragraphs (or two authors, two section entries).

Terms in scripts written without spaces match as substrings of a block's normalized text;
between the words of such a phrase, any run of spaces and punctuation (or none) is allowed.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from monitor.model import Article
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
from monitor.rules.text import UNSPACED_CLASS, has_unspaced, normalize, tokens_of_normalized

__all__ = ["Document", "FieldIndex", "Query", "compile_query"]

_BOUNDARY = ""
Span = tuple[int, int]


@dataclass(frozen=True, slots=True, eq=False)
class FieldIndex:
    """The searchable form of one field: normalized blocks, tokens and their positions."""

    texts: tuple[str, ...]
    tokens: tuple[str, ...]
    positions: Mapping[str, tuple[int, ...]]
    vocabulary: tuple[str, ...]
    block_starts: tuple[int, ...]

    @classmethod
    def build(cls, blocks: Iterable[str]) -> FieldIndex:
        texts = tuple(text for text in map(normalize, blocks) if text)
        tokens: list[str] = []
        starts: list[int] = []
        for text in texts:
            if tokens:
                tokens.append(_BOUNDARY)
            starts.append(len(tokens))
            tokens.extend(tokens_of_normalized(text))
        positions: dict[str, list[int]] = {}
        for position, token in enumerate(tokens):
            if token:
                positions.setdefault(token, []).append(position)
        return cls(
            texts=texts,
            tokens=tuple(tokens),
            positions={token: tuple(found) for token, found in positions.items()},
            vocabulary=tuple(sorted(positions)),
            block_starts=tuple(starts),
        )

    def contains(self, words: tuple[str, ...]) -> bool:
        if len(words) == 1 and not words[0].endswith("*"):
            return words[0] in self.positions
        return any(self._phrase_at(start, words) for start in self._starts(words[0]))

    def spans(self, words: tuple[str, ...]) -> list[Span]:
        """Where the phrase occurs, as (first position, position after the last word)."""
        return [
            (start, start + len(words))
            for start in self._starts(words[0])
            if self._phrase_at(start, words)
        ]

    def search(self, pattern: re.Pattern[str]) -> bool:
        return any(pattern.search(text) for text in self.texts)

    def same_block(self, first: int, second: int) -> bool:
        blocks = self.block_starts
        return bisect.bisect_right(blocks, first) == bisect.bisect_right(blocks, second)

    def _starts(self, word: str) -> Sequence[int]:
        if not word.endswith("*"):
            return self.positions.get(word, ())
        prefix = word[:-1]
        found: list[int] = []
        index = bisect.bisect_left(self.vocabulary, prefix)
        while index < len(self.vocabulary) and self.vocabulary[index].startswith(prefix):
            found.extend(self.positions[self.vocabulary[index]])
            index += 1
        return sorted(found)

    def _phrase_at(self, start: int, words: tuple[str, ...]) -> bool:
        if start + len(words) > len(self.tokens):
            return False
        for offset in range(1, len(words)):
            token, word = self.tokens[start + offset], words[offset]
            if word.endswith("*"):
                if not token.startswith(word[:-1]):
                    return False
            elif token != word:
                return False
        return True


_EMPTY = FieldIndex.build(())


@dataclass(frozen=True, slots=True, eq=False)
class Document:
    """An article prepared for matching; build it once and evaluate many queries on it."""

    fields: Mapping[str, FieldIndex]

    @classmethod
    def from_article(cls, article: Article) -> Document:
        return cls.from_fields(
            {
                "title": (article.title,),
                "lede": (article.lede,),
                "body": tuple(block.text for block in article.body),
                "section": article.section,
                "source": (article.source,),
                "url": (article.url,),
                "author": article.authors,
            }
        )

    @classmethod
    def from_fields(cls, blocks: Mapping[str, Sequence[str]]) -> Document:
        """A document from the text blocks of each field named in `FIELDS`."""
        unknown = set(blocks) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown document fields: {', '.join(sorted(unknown))}")
        return cls({name: FieldIndex.build(blocks.get(name, ())) for name in FIELDS})

    def field(self, name: str) -> FieldIndex:
        return self.fields.get(name, _EMPTY)


class _Matcher:
    __slots__ = ()

    def matches(self, doc: Document) -> bool:
        raise NotImplementedError

    def collect(self, doc: Document, out: list[str]) -> bool:
        """Like `matches`, also appending the positive terms that matched to `out`."""
        raise NotImplementedError


class _TermMatcher(_Matcher):
    __slots__ = ("fields", "label", "pattern", "words")

    def __init__(self, term: Term, fields: tuple[str, ...]) -> None:
        self.words = term.words
        self.label = term.label
        self.fields = fields
        self.pattern = _unspaced_pattern(term.words) if term.unspaced else None

    def matches(self, doc: Document) -> bool:
        for name in self.fields:
            index = doc.field(name)
            if self.pattern is None:
                if index.contains(self.words):
                    return True
            elif index.search(self.pattern):
                return True
        return False

    def collect(self, doc: Document, out: list[str]) -> bool:
        if self.matches(doc):
            out.append(self.label)
            return True
        return False


class _WordMatcher(_TermMatcher):
    """A single plain word: one dict lookup per field."""

    __slots__ = ()

    def matches(self, doc: Document) -> bool:
        word = self.words[0]
        return any(word in doc.field(name).positions for name in self.fields)


class _NotMatcher(_Matcher):
    __slots__ = ("child",)

    def __init__(self, child: _Matcher) -> None:
        self.child = child

    def matches(self, doc: Document) -> bool:
        return not self.child.matches(doc)

    def collect(self, doc: Document, out: list[str]) -> bool:
        return not self.child.matches(doc)


class _AndMatcher(_Matcher):
    __slots__ = ("children",)

    def __init__(self, children: tuple[_Matcher, ...]) -> None:
        self.children = children

    def matches(self, doc: Document) -> bool:
        return all(child.matches(doc) for child in self.children)

    def collect(self, doc: Document, out: list[str]) -> bool:
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
        return any(child.matches(doc) for child in self.children)

    def collect(self, doc: Document, out: list[str]) -> bool:
        found = False
        for child in self.children:
            found = child.collect(doc, out) or found
        return found


class _NearMatcher(_Matcher):
    __slots__ = ("distance", "fields", "left", "ordered", "right")

    def __init__(self, near: Near, fields: tuple[str, ...]) -> None:
        self.left = _alternatives(near.left)
        self.right = _alternatives(near.right)
        self.distance = near.distance
        self.ordered = near.ordered
        self.fields = fields

    def matches(self, doc: Document) -> bool:
        return any(self._pairs(doc.field(name), first_only=True) for name in self.fields)

    def collect(self, doc: Document, out: list[str]) -> bool:
        left: set[int] = set()
        right: set[int] = set()
        for name in self.fields:
            for left_index, right_index in self._pairs(doc.field(name), first_only=False):
                left.add(left_index)
                right.add(right_index)
        out.extend(self.left[index].label for index in sorted(left))
        out.extend(self.right[index].label for index in sorted(right))
        return bool(left)

    def _pairs(self, index: FieldIndex, *, first_only: bool) -> list[tuple[int, int]]:
        """Which (left, right) alternatives occur near each other in this field."""
        found: list[tuple[int, int]] = []
        right_spans = [index.spans(term.words) for term in self.right]
        for left_index, term in enumerate(self.left):
            left_spans = index.spans(term.words)
            for right_index, spans in enumerate(right_spans):
                if left_spans and spans and self._near(index, left_spans, spans):
                    found.append((left_index, right_index))
                    if first_only:
                        return found
        return found

    def _near(self, index: FieldIndex, left: list[Span], right: list[Span]) -> bool:
        for left_start, left_end in left:
            for right_start, right_end in right:
                if left_end <= right_start:
                    gap = right_start - left_end
                elif right_end <= left_start and not self.ordered:
                    gap = left_start - right_end
                else:
                    continue
                if gap <= self.distance and index.same_block(left_start, right_start):
                    return True
        return False


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


def _compile(node: Node, fields: tuple[str, ...]) -> _Matcher:
    match node:
        case Term():
            single_word = len(node.words) == 1 and node.plain and not node.unspaced
            return _WordMatcher(node, fields) if single_word else _TermMatcher(node, fields)
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matcher", _compile(self.root, DEFAULT_FIELDS))

    def canonical(self) -> str:
        return canonical(self.root)

    def matches(self, doc: Document) -> bool:
        return self._matcher.matches(doc)

    def evaluate(self, doc: Document) -> tuple[str, ...] | None:
        """None if the query does not match; else the positive terms that matched.

        The terms are in query order, de-duplicated, in display form: a single word as the
        user spelled it, a phrase normalized (`north korea`), a prefix with its `*`.
        """
        if not self._matcher.matches(doc):
            return None
        out: list[str] = []
        self._matcher.collect(doc, out)
        return tuple(dict.fromkeys(out))


def compile_query(text: str) -> Query:
    """Parse and validate a rule query; raises RuleSyntaxError with a 1-based column."""
    return Query(parse(text))

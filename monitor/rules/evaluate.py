"""Evaluating compiled queries against documents.

A `Document` is built once per article: for every field, the original and normalized text
of each block, its tokens and their set, so that a word lookup is a set hit; a phrase is
checked from the positions of its first word (a token -> positions map built on first use).
Blocks are separated by an empty token, so neither a phrase nor a proximity spans two
paragraphs (or two authors, two section entries).

`Query.explain` also reports where each matched term occurs, as `Hit`s: character offsets in
the original block text, so that a snippet can quote and mark the article as written.

Terms in scripts written without spaces match as substrings of a block's normalized text;
between the words of such a phrase, any run of spaces and punctuation (or none) is allowed.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from monitor.model import Article
from monitor.rules.explain import Explanation, Hit, Located
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
    align,
    has_unspaced,
    normalize,
    token_spans,
    tokens_of_normalized,
)

__all__ = ["Document", "FieldIndex", "Query", "compile_query"]

_BOUNDARY = ""
Span = tuple[int, int]


class FieldIndex:
    """The searchable form of one field: its blocks, normalized, tokenized and indexed.

    `originals` are the blocks as given and `texts` their normalized forms, one per block;
    `tokens` is the token stream of all blocks with an empty token between two blocks, and
    `block_starts` the position of each block's first token. `words` is the set of tokens;
    `positions` (token -> positions) and `vocabulary` (sorted tokens) are built on first use.
    """

    __slots__ = (
        "_joined",
        "_layouts",
        "_positions",
        "_vocabulary",
        "block_starts",
        "originals",
        "texts",
        "tokens",
        "words",
    )

    def __init__(self, originals: tuple[str, ...], texts: tuple[str, ...]) -> None:
        self.originals = originals
        self.texts = texts
        tokens: list[str] = []
        starts: list[int] = []
        for text in texts:
            if starts:
                tokens.append(_BOUNDARY)
            starts.append(len(tokens))
            tokens.extend(tokens_of_normalized(text))
        self.tokens: Sequence[str] = tokens
        self.block_starts = tuple(starts)
        words = frozenset(tokens)
        self.words = words.difference((_BOUNDARY,)) if _BOUNDARY in words else words
        self._positions: dict[str, list[int]] | None = None
        self._vocabulary: list[str] | None = None
        self._layouts: dict[int, _Layout] = {}
        self._joined: str | None = None

    @classmethod
    def build(cls, blocks: Iterable[str]) -> FieldIndex:
        originals = tuple(blocks)
        return cls(originals, tuple(map(normalize, originals)))

    @property
    def positions(self) -> Mapping[str, Sequence[int]]:
        if self._positions is None:
            positions: dict[str, list[int]] = {}
            for position, token in enumerate(self.tokens):
                found = positions.get(token)
                if found is None:
                    positions[token] = [position]
                else:
                    found.append(position)
            positions.pop(_BOUNDARY, None)
            self._positions = positions
        return self._positions

    @property
    def vocabulary(self) -> Sequence[str]:
        if self._vocabulary is None:
            self._vocabulary = sorted(self.words)
        return self._vocabulary

    @property
    def joined(self) -> str:
        """The tokens joined by spaces, with a space at each end and two between blocks."""
        if self._joined is None:
            self._joined = " " + " ".join(self.tokens) + " "
        return self._joined

    def contains(self, words: tuple[str, ...]) -> bool:
        if len(words) == 1:
            word = words[0]
            return self._has_prefix(word[:-1]) if word.endswith("*") else word in self.words
        return any(self._phrase_at(start, words) for start in self._starts(words[0]))

    def _has_prefix(self, prefix: str) -> bool:
        vocabulary = self.vocabulary
        index = bisect.bisect_left(vocabulary, prefix)
        return index < len(vocabulary) and vocabulary[index].startswith(prefix)

    def spans(self, words: tuple[str, ...]) -> list[Span]:
        """Where the phrase occurs, as (first position, position after the last word)."""
        if len(words) == 1:
            return [(start, start + 1) for start in self._starts(words[0])]
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

    def token_hit(self, term: str, field: str, span: Span) -> Hit:
        """The hit of token positions `span`, located in its original block."""
        block = bisect.bisect_right(self.block_starts, span[0]) - 1
        first = self.block_starts[block]
        layout = self._layout(block)
        start = layout.token_spans[span[0] - first][0]
        end = layout.token_spans[span[1] - 1 - first][1]
        return layout.hit(term, field, block, start, end)

    def text_hit(self, term: str, field: str, block: int, span: Span) -> Hit:
        """The hit of characters `span` of normalized block `block`, in its original."""
        return self._layout(block).hit(term, field, block, *span)

    def _layout(self, block: int) -> _Layout:
        layout = self._layouts.get(block)
        if layout is None:
            layout = _Layout(self.originals[block], self.texts[block])
            self._layouts[block] = layout
        return layout

    def _starts(self, word: str) -> Sequence[int]:
        if not word.endswith("*"):
            return self.positions.get(word, ())
        prefix = word[:-1]
        vocabulary = self.vocabulary
        found: list[int] = []
        index = bisect.bisect_left(vocabulary, prefix)
        while index < len(vocabulary) and vocabulary[index].startswith(prefix):
            found.extend(self.positions[vocabulary[index]])
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


class _Layout:
    """Where one block's tokens are, and how its normalized offsets map to the original."""

    __slots__ = ("alignment", "token_spans")

    def __init__(self, original: str, normalized: str) -> None:
        self.token_spans = token_spans(normalized)
        self.alignment = align(original, normalized)

    def hit(self, term: str, field: str, block: int, start: int, end: int) -> Hit:
        if self.alignment is not None:
            starts, ends = self.alignment
            start, end = starts[start], ends[end - 1]
        return Hit(term, field, block, start, end)


_EMPTY = FieldIndex.build(())


class Document:
    """An article prepared for matching; build it once and evaluate many queries on it.

    `default_words` holds the tokens of the default fields (title, lede, body), `words` those
    of every field: one set lookup answers a single-word term.
    """

    __slots__ = ("default_words", "fields", "words")

    def __init__(self, fields: Mapping[str, FieldIndex]) -> None:
        self.fields = fields
        self.default_words = frozenset[str]().union(
            *(fields[name].words for name in DEFAULT_FIELDS if name in fields)
        )
        self.words = self.default_words.union(
            *(index.words for name, index in fields.items() if name not in DEFAULT_FIELDS)
        )

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
        """A document from the text blocks of each field named in `FIELDS`.

        A hit's `block` is the index of its block in the sequence given for its field.
        """
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

    def collect(self, doc: Document, out: list[Located]) -> bool:
        """Like `matches`, also appending where the positive terms matched to `out`."""
        raise NotImplementedError


class _TermMatcher(_Matcher):
    """A term; `required` are its plain words, which a document must hold to match it."""

    __slots__ = ("default", "fields", "label", "needle", "pattern", "required", "words")

    def __init__(self, term: Term, fields: tuple[str, ...]) -> None:
        self.words = term.words
        self.label = term.label
        self.fields = fields
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
        if not self.may_occur(doc):
            return False
        mark = len(out)
        for name in self.fields:
            index = doc.field(name)
            if not self._occurs(index):
                continue
            locate = self._hits if self.pattern is None else self._text_hits
            out.append((self.label, name, partial(locate, index, name)))
        return len(out) > mark

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


class _DefaultWordMatcher(_TermMatcher):
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
    __slots__ = ("children",)

    def __init__(self, children: tuple[_Matcher, ...]) -> None:
        self.children = children

    def matches(self, doc: Document) -> bool:
        for child in self.children:  # noqa: SIM110 - a loop is faster than all() on a generator
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


def _compile(node: Node, fields: tuple[str, ...]) -> _Matcher:
    match node:
        case Term():
            if len(node.words) > 1 or not node.plain or node.unspaced:
                return _TermMatcher(node, fields)
            if fields == DEFAULT_FIELDS:
                return _DefaultWordMatcher(node, fields)
            return _WordMatcher(node, fields)
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
        explanation = self.explain(doc)
        return None if explanation is None else explanation.terms

    def explain(self, doc: Document) -> Explanation | None:
        """None if the query does not match; else the matched terms and where they occur."""
        found: list[Located] = []
        if not self._matcher.collect(doc, found):
            return None
        return Explanation.deferred(tuple(dict.fromkeys([term for term, _, _ in found])), found)


def compile_query(text: str) -> Query:
    """Parse and validate a rule query; raises RuleSyntaxError with a 1-based column."""
    return Query(parse(text))

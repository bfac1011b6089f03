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

import bisect
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter

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

_BOUNDARY = "\x00"
_ASCII_BLOCKS = str.maketrans({code: " " for code in range(1, 128) if not chr(code).isalnum()})
_UNSPACED_RUN = re.compile(UNSPACED_CLASS + "+")
Span = tuple[int, int]


class FieldIndex:
    """The searchable form of one field: its blocks, normalized, tokenized and indexed.

    `originals` are the blocks as given and `texts` their normalized forms, one per block;
    `tokens` is the token stream of all blocks with a boundary token (`"\\x00"`, never a
    word) between two blocks, and `block_starts` the position of each block's first token.
    `words` is the set of tokens; `block_starts`, `positions` (token -> positions) and
    `vocabulary` (sorted tokens) are built on first use.
    """

    __slots__ = (
        "_block_starts",
        "_found",
        "_joined",
        "_layouts",
        "_positions",
        "_vocabulary",
        "originals",
        "texts",
        "tokens",
        "words",
    )

    def __init__(self, originals: tuple[str, ...], texts: tuple[str, ...]) -> None:
        self.originals = originals
        self.texts = texts
        tokens: list[str]
        if len(texts) == 1:
            tokens = tokens_of_normalized(texts[0])
            self.words: AbstractSet[str] = frozenset(tokens)
        else:
            joined = " \x00 ".join(texts)
            if joined.isascii() and joined.count(_BOUNDARY) == len(texts) - 1:
                # One pass over all blocks: the boundaries become tokens of their own.
                tokens = joined.translate(_ASCII_BLOCKS).split()
            else:
                tokens = []
                for number, text in enumerate(texts):
                    if number:
                        tokens.append(_BOUNDARY)
                    tokens.extend(tokens_of_normalized(text))
            words = set(tokens)
            words.discard(_BOUNDARY)
            self.words = words
        self.tokens: Sequence[str] = tokens
        self._block_starts: tuple[int, ...] | None = None
        self._positions: dict[str, list[int]] | None = None
        self._found: dict[str, list[int]] | None = None
        self._vocabulary: list[str] | None = None
        self._layouts: dict[int, _Layout] | None = None
        self._joined: str | None = None

    @property
    def block_starts(self) -> tuple[int, ...]:
        if self._block_starts is None:
            starts = [0] if self.texts else []
            tokens = self.tokens
            position = -1
            for _ in range(len(self.texts) - 1):
                position = tokens.index(_BOUNDARY, position + 1)
                starts.append(position + 1)
            self._block_starts = tuple(starts)
        return self._block_starts

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
        if self._layouts is None:
            self._layouts = {}
        layout = self._layouts.get(block)
        if layout is None:
            layout = _Layout(self.originals[block], self.texts[block])
            self._layouts[block] = layout
        return layout

    def _starts(self, word: str) -> Sequence[int]:
        if not word.endswith("*"):
            return self._occurrences(word)
        prefix = word[:-1]
        vocabulary = self.vocabulary
        found: list[int] = []
        index = bisect.bisect_left(vocabulary, prefix)
        while index < len(vocabulary) and vocabulary[index].startswith(prefix):
            found.extend(self._occurrences(vocabulary[index]))
            index += 1
        return sorted(found)

    def _occurrences(self, word: str) -> Sequence[int]:
        """The positions of a plain word: from `positions` if built, else found by scanning
        the tokens (a few words of an article are looked for, `positions` has them all)."""
        if self._positions is not None:
            return self._positions.get(word, ())
        if word not in self.words:
            return ()
        if self._found is None:
            self._found = {}
        found = self._found.get(word)
        if found is None:
            tokens = self.tokens
            found = [tokens.index(word)]
            for _ in range(tokens.count(word) - 1):
                found.append(tokens.index(word, found[-1] + 1))
            self._found[word] = found
        return found

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

    __slots__ = ("_keys", "_prefixes", "_vocabulary", "default_words", "fields", "words")

    def __init__(self, fields: Mapping[str, FieldIndex]) -> None:
        self.fields = fields
        self.default_words = frozenset[str]().union(
            *(fields[name].words for name in DEFAULT_FIELDS if name in fields)
        )
        self.words = self.default_words.union(
            *(index.words for name, index in fields.items() if name not in DEFAULT_FIELDS)
        )
        self._keys: dict[tuple[tuple[int, ...], bool], frozenset[str]] | None = None
        self._prefixes: dict[int, frozenset[str]] | None = None
        self._vocabulary: list[str] | None = None

    @classmethod
    def from_article(cls, article: Article) -> Document:
        build = FieldIndex.build
        return cls(
            {
                "title": build((article.title,)),
                "lede": build((article.lede,)),
                "body": build([block.text for block in article.body]),
                "section": build(article.section),
                "source": build((article.source,)),
                "url": build((article.url,)),
                "author": build(article.authors),
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

    def keys(self, prefix_lengths: tuple[int, ...] = (), *, grams: bool = False) -> frozenset[str]:
        """What a presearch can look up: `words`, their first `prefix_lengths` letters and,
        with `grams`, the characters and character pairs of runs of unspaced scripts.

        Computed once per document and set of options.
        """
        if not prefix_lengths and not grams:
            return self.words
        option = (prefix_lengths, grams)
        if self._keys is None:
            self._keys = {}
        found = self._keys.get(option)
        if found is None:
            parts: list[Iterable[str]] = [self.prefixes(length) for length in prefix_lengths]
            if grams:
                parts.append(self._grams())
            found = self._keys[option] = self.words.union(*parts)
        return found

    def prefixes(self, length: int) -> frozenset[str]:
        """The first `length` letters of each word (all of a shorter word); computed once."""
        if self._prefixes is None:
            self._prefixes = {}
        found = self._prefixes.get(length)
        if found is None:
            found = self._prefixes[length] = frozenset(map(itemgetter(slice(length)), self.words))
        return found

    def has_prefix(self, stem: str) -> bool:
        """Whether a word of any field begins with `stem`."""
        if self._vocabulary is None:
            self._vocabulary = sorted(self.words)
        vocabulary = self._vocabulary
        index = bisect.bisect_left(vocabulary, stem)
        return index < len(vocabulary) and vocabulary[index].startswith(stem)

    def _grams(self) -> set[str]:
        grams: set[str] = set()
        for index in self.fields.values():
            for text in index.texts:
                if text.isascii():
                    continue
                for run in _UNSPACED_RUN.findall(text):
                    grams.update(run)
                    grams.update(run[i : i + 2] for i in range(len(run) - 1))
        return grams


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
        if not self.required <= doc.words:
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

    def collect(self, doc: Document, out: list[Located]) -> bool:
        word = self.words[0]
        if word not in doc.words:
            return False
        found = False
        for name in self.fields:
            index = doc.field(name)
            if word in index.words:
                out.append((self.label, name, partial(self._hits, index, name)))
                found = True
        return found


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

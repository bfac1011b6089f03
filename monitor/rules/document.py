"""The searchable form of an article: `Document` and its per-field `FieldIndex`.

A `Document` is built once per article: for every field, the original and normalized text
of each block, its tokens and their set, so that a word lookup is a set hit; a phrase is
checked from the positions of its first word (a token -> positions map built on first use).
Blocks are separated by a boundary token, so neither a phrase nor a proximity spans two
paragraphs (or two authors, two section entries).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from operator import itemgetter
from typing import Any

from monitor.model import Article
from monitor.rules.explain import Hit
from monitor.rules.syntax import (
    DEFAULT_FIELDS,
    FIELDS,
)
from monitor.rules.text import (
    UNSPACED_CLASS,
    align,
    normalize,
    token_spans,
    tokens_of_normalized,
)

__all__ = ["Document", "FieldIndex", "Span"]

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

    __slots__ = (
        "_keys",
        "_prefixes",
        "_vocabulary",
        "default_words",
        "fields",
        "located",
        "pieces",
        "words",
    )

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
        self.located: dict[str, Any] = {}
        """Memo of the evaluator, shared by every rule matched on this document: where a
        term occurs (the rules of one index share many terms), keyed by the term."""
        self.pieces: dict[str, str] = {}
        """The same for each term's part of an explanation's summary."""

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

"""The rule language: lexer, recursive-descent parser, syntax tree and canonical printing.

Grammar, loosest binding first::

    query        := expression EOF
    expression   := unary ((AND | OR | NOT | -) unary)*   AND and OR never mixed at one level
    unary        := (NOT | -) unary | proximity
    proximity    := alternatives ((NEAR/n | ONEAR/n) alternatives)?
    alternatives := primary ("|" primary)*
    primary      := field: primary | "(" expression ")" | "quoted phrase" | bare-word+

So precedence, tightest first, is: `field:`, `|`, NEAR/ONEAR, NOT and `-`, AND, OR.

- `A NOT B` and `A -B` mean `A AND NOT B`.
- NEAR sits just above `|`: `a|b NEAR/5 c` is `(a OR b) NEAR/5 c`, and `NOT a NEAR/5 b` is
  `NOT (a NEAR/5 b)`. Its operands are terms, phrases or alternatives of them; a field
  scopes a whole proximity (`title:(a NEAR/5 b)`), and proximities do not chain.
- A field prefix scopes the primary right after it: `title:a|b` is `title:a OR b`, and
  `title:North Korea` scopes the whole phrase.
- Keywords are uppercase only; `and`, `or`, `not` are plain words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, NamedTuple

from monitor.errors import MonitorError
from monitor.rules.text import has_unspaced, normalize, tokens_of_normalized

__all__ = [
    "DEFAULT_FIELDS",
    "FIELDS",
    "And",
    "Field",
    "Near",
    "Node",
    "Not",
    "Or",
    "RuleSyntaxError",
    "Term",
    "canonical",
    "parse",
]

FIELDS: tuple[str, ...] = ("title", "lede", "body", "section", "source", "url", "author")
DEFAULT_FIELDS: tuple[str, ...] = ("title", "lede", "body")
MIN_PREFIX = 3
POINTER_WIDTH = 72
MAX_DEPTH = 50  # parentheses and NOTs inside each other; keeps every tree walk off the stack limit

TokenKind = Literal[
    "WORD", "QUOTED", "AND", "OR", "NOT", "MINUS", "NEAR", "FIELD", "(", ")", "|", "EOF"
]

_QUOTES = '"“”'
_KEYWORDS: dict[str, TokenKind] = {"AND": "AND", "OR": "OR", "NOT": "NOT"}
_SINGLES: dict[str, TokenKind] = {"(": "(", ")": ")", "|": "|"}
_NEARISH = re.compile(r"O?NEAR(?:/|$)")
_NEAR = re.compile(r"(O?)NEAR/(\d+)")
_FIELDISH = re.compile(r"[^\W\d_]+:")
_CHUNK = re.compile(r"\S+")
_LEXEME = re.compile(rf"([()|])|[{_QUOTES}]([^{_QUOTES}]*)([{_QUOTES}]?)|([^\s()|{_QUOTES}]+)")


class RuleSyntaxError(MonitorError, ValueError):
    """A rule that cannot be read; `column` is 1-based within the query text."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message, column)
        self.message = message
        self.column = column

    def __str__(self) -> str:
        return f"{self.message} at column {self.column}"

    def pointer(self, query: str) -> str:
        """The query line holding the column, and a caret under the offending character;
        a line longer than POINTER_WIDTH is cut to the part around the column."""
        offset = self.column - 1
        line_start = query.rfind("\n", 0, offset) + 1
        line_end = query.find("\n", offset)
        line_end = len(query) if line_end < 0 else line_end
        start = max(line_start, offset - POINTER_WIDTH // 2)
        end = min(line_end, start + POINTER_WIDTH)
        before, after = ("…" if start > line_start else ""), ("…" if end < line_end else "")
        return f"{before}{query[start:end]}{after}\n{_padding(before + query[start:offset])}^"


def _padding(text: str) -> str:
    return "".join(
        char if char == "\t" else "  " if unicodedata.east_asian_width(char) in "WF" else " "
        for char in text
    )


@dataclass(frozen=True, slots=True)
class Term:
    """A word or phrase: normalized tokens, a trailing `*` marking a prefix.

    `spelling` is the user's spelling of a single bare word, kept for display.
    """

    words: tuple[str, ...]
    spelling: str | None = None

    @property
    def label(self) -> str:
        return self.spelling if self.spelling is not None else " ".join(self.words)

    @property
    def unspaced(self) -> bool:
        return any(has_unspaced(word) for word in self.words)

    @property
    def plain(self) -> bool:
        return any(not word.endswith("*") for word in self.words)


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Near:
    """`left` and `right` (terms or an Or of terms) with at most `distance` words between."""

    left: Node
    right: Node
    distance: int
    ordered: bool = False


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    child: Node


Node = Term | Not | And | Or | Near | Field


class _Token(NamedTuple):
    kind: TokenKind
    text: str
    start: int
    end: int
    distance: int = 0
    ordered: bool = False

    @property
    def column(self) -> int:
        return self.start + 1


_SIMPLE = re.compile(r"[A-Za-z]+(?: AND [A-Za-z]+)*")
"""The commonest rule, `word AND word AND word` in ASCII letters, read without the lexer."""


def parse(query: str) -> Node:
    """Parse and validate a rule query; raises RuleSyntaxError."""
    if _SIMPLE.fullmatch(query) and (simple := _simple(query)) is not None:
        return simple
    node = _Parser(query).parse()
    if not _positive(node, plain_only=False):
        raise RuleSyntaxError(
            "a rule needs at least one term it requires; NOT and - only exclude", 1
        )
    return node


def _simple(query: str) -> Node | None:
    """The tree `_Parser` gives for a query of `_SIMPLE`, or None to leave it to the
    parser (a keyword or NEAR where a word should be). tests/test_rules.py checks
    that both give equal trees."""
    terms: list[Node] = []
    for word in query.split(" AND "):
        if word in _KEYWORDS or _NEARISH.match(word):
            return None
        words = _chunk_words(word, 0)
        if not words:
            return None
        terms.append(Term(tuple(words), word))
    return terms[0] if len(terms) == 1 else And(tuple(terms))


def _positive(node: Node, *, plain_only: bool) -> bool:
    match node:
        case Term():
            return node.plain or not plain_only
        case Not():
            return False
        case And():
            return any(_positive(child, plain_only=plain_only) for child in node.children)
        case Or():
            return all(_positive(child, plain_only=plain_only) for child in node.children)
        case Near():
            return any(_positive(side, plain_only=plain_only) for side in (node.left, node.right))
        case Field():
            return _positive(node.child, plain_only=plain_only)


def canonical(node: Node) -> str:
    """The canonical text of a query; parsing it gives back an equal tree."""
    match node:
        case Term():
            return node.spelling if node.spelling is not None else f'"{" ".join(node.words)}"'
        case Not():
            return "NOT " + _wrap(node.child, (And, Or))
        case And():
            return " AND ".join(_wrap(child, (Or,)) for child in node.children)
        case Or():
            return " OR ".join(_wrap(child, (And,)) for child in node.children)
        case Near():
            operator = f"{'ONEAR' if node.ordered else 'NEAR'}/{node.distance}"
            return f"{_wrap(node.left, (Or,))} {operator} {_wrap(node.right, (Or,))}"
        case Field():
            child = canonical(node.child)
            return (
                f"{node.name}:{child}" if isinstance(node.child, Term) else f"{node.name}:({child})"
            )


def _wrap(node: Node, loose: tuple[type, ...]) -> str:
    text = canonical(node)
    return f"({text})" if isinstance(node, loose) else text


def _is_plain_word(word: str) -> bool:
    return not (
        word in _KEYWORDS or _NEARISH.match(word) or word.startswith("-") or _FIELDISH.match(word)
    )


class _Lexer:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens: list[_Token] = []

    def run(self) -> list[_Token]:
        for lexeme in _LEXEME.finditer(self.query):
            single, quoted, closing, bare = lexeme.groups()
            start, end = lexeme.span()
            if single is not None:
                self._emit(_SINGLES[single], single, start, end)
            elif bare is not None:
                self._word(start, end, after_field=False)
            elif closing:
                self._emit("QUOTED", quoted, start, end)
            else:
                raise RuleSyntaxError("unterminated quote", start + 1)
        self._emit("EOF", "", len(self.query), len(self.query))
        return self.tokens

    def _emit(self, kind: TokenKind, text: str, start: int, end: int) -> None:
        self.tokens.append(_Token(kind, text, start, end))

    def _word(self, start: int, end: int, *, after_field: bool) -> None:
        while self.query.startswith("-", start) and (end - start > 1 or self._opens_group(end)):
            self._emit("MINUS", "-", start, start + 1)
            start += 1
        if start == end:
            return
        word = self.query[start:end]
        if word in _KEYWORDS:
            self._emit(_KEYWORDS[word], word, start, end)
        elif _NEARISH.match(word):
            self._near(word, start, end)
        elif not after_field and (match := _FIELDISH.match(word)):
            self._field(match.group()[:-1], start, end)
        else:
            self._emit("WORD", word, start, end)

    def _opens_group(self, index: int) -> bool:
        return index < len(self.query) and self.query[index] in "(" + _QUOTES

    def _near(self, word: str, start: int, end: int) -> None:
        match = _NEAR.fullmatch(word)
        if match is None:
            slash = word.find("/")
            if slash < 0:
                raise RuleSyntaxError(f"{word} needs a distance, e.g. {word}/5", start + 1)
            raise RuleSyntaxError(
                f"{word[:slash]}/ needs a number of words, e.g. {word[:slash]}/5",
                start + slash + 2,
            )
        ordered, distance = match.group(1) == "O", int(match.group(2))
        self.tokens.append(_Token("NEAR", word, start, end, distance, ordered))

    def _field(self, name: str, start: int, end: int) -> None:
        field = name.lower()
        if field not in FIELDS:
            raise RuleSyntaxError(
                f"unknown field {name!r} (fields are {', '.join(FIELDS)}; "
                "quote the word to search for it)",
                start + 1,
            )
        colon = start + len(name) + 1
        self._emit("FIELD", field, start, colon)
        if colon < end:
            self._word(colon, end, after_field=True)


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _Lexer(query).run()
        self.index = 0
        self.in_field = False
        self.depth = 0

    def parse(self) -> Node:
        if self._peek().kind == "EOF":
            raise RuleSyntaxError("empty query", 1)
        node = self._expression()
        token = self._peek()
        if token.kind == ")":
            raise RuleSyntaxError("unmatched )", token.column)
        return node

    def _peek(self) -> _Token:
        return self.tokens[self.index]

    def _advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _source(self, token: _Token) -> str:
        return self.query[token.start : token.end]

    def _last_end(self) -> int:
        return self.tokens[self.index - 1].end

    @contextmanager
    def _nested(self, opening: _Token) -> Iterator[None]:
        """One level deeper: a group or a NOT; refused past MAX_DEPTH."""
        if self.depth >= MAX_DEPTH:
            raise RuleSyntaxError(
                f"nested more than {MAX_DEPTH} levels deep (parentheses and NOT)", opening.column
            )
        self.depth += 1
        yield
        self.depth -= 1

    def _expression(self) -> Node:
        start = self._peek().start
        operands = [self._unary()]
        spans = [(start, self._last_end())]
        operators: list[_Token] = []
        while self._peek().kind not in ("EOF", ")"):
            operator = self._advance()
            if operator.kind not in ("AND", "OR", "NOT", "MINUS"):
                raise RuleSyntaxError(
                    f"expected AND, OR or NOT before {self._source(operator)}", operator.column
                )
            start = self._peek().start
            operand = self._unary()
            operands.append(Not(operand) if operator.kind in ("NOT", "MINUS") else operand)
            spans.append((start, self._last_end()))
            operators.append(operator)
        self._check_mixing(operators, spans)
        if not operators:
            return operands[0]
        return _or(operands) if operators[0].kind == "OR" else _and(operands)

    def _check_mixing(self, operators: list[_Token], spans: list[tuple[int, int]]) -> None:
        for index in range(1, len(operators)):
            first, second = operators[index - 1], operators[index]
            if (first.kind == "OR") != (second.kind == "OR"):
                a, b, c = (self.query[s:e] for s, e in spans[index - 1 : index + 2])
                left = _joined(f"({_joined(a, first, b)})", second, c)
                right = _joined(a, first, f"({_joined(b, second, c)})")
                raise RuleSyntaxError(
                    f"mixing AND and OR needs parentheses: write {left} or {right}",
                    second.column,
                )

    def _unary(self) -> Node:
        if self._peek().kind in ("NOT", "MINUS"):
            with self._nested(self._advance()):
                return Not(self._unary())
        return self._proximity()

    def _proximity(self) -> Node:
        left_token = self._peek()
        left = self._alternatives()
        operator = self._peek()
        if operator.kind != "NEAR":
            return left
        self._advance()
        right_token = self._peek()
        right = self._alternatives()
        _check_near_operand(left, left_token)
        _check_near_operand(right, right_token)
        following = self._peek()
        if following.kind == "NEAR":
            raise RuleSyntaxError(
                f"{following.text} cannot follow another proximity; combine them with AND",
                following.column,
            )
        return Near(left, right, operator.distance, operator.ordered)

    def _alternatives(self) -> Node:
        items = [self._primary()]
        while self._peek().kind == "|":
            self._advance()
            items.append(self._primary())
        return items[0] if len(items) == 1 else _or(items)

    def _primary(self) -> Node:
        token = self._peek()
        if token.kind == "FIELD":
            return self._field()
        if token.kind == "(":
            return self._group()
        if token.kind == "QUOTED":
            self._advance()
            return self._quoted_term(token)
        if token.kind == "WORD":
            return self._bare_term()
        raise self._expected_term(token)

    def _expected_term(self, token: _Token) -> RuleSyntaxError:
        after = f" after {self._source(self.tokens[self.index - 1])}" if self.index else ""
        found = "" if token.kind == "EOF" else f", found {self._source(token)}"
        return RuleSyntaxError(f"expected a term{after}{found}", token.column)

    def _field(self) -> Node:
        token = self._advance()
        if self.in_field:
            raise RuleSyntaxError("a field cannot be used inside another field", token.column)
        self.in_field = True
        child = self._primary()
        self.in_field = False
        return Field(token.text, child)

    def _group(self) -> Node:
        opening = self._advance()
        if self._peek().kind == ")":
            raise RuleSyntaxError("empty parentheses", self._peek().column)
        with self._nested(opening):
            node = self._expression()
        if self._peek().kind != ")":
            raise RuleSyntaxError("unclosed (", opening.column)
        self._advance()
        return node

    def _quoted_term(self, token: _Token) -> Term:
        content_start = token.start + 1
        words: list[str] = []
        for chunk in _CHUNK.finditer(token.text):
            words.extend(_chunk_words(chunk.group(), content_start + chunk.start()))
        if not words:
            raise RuleSyntaxError("nothing to search for in this phrase", token.column)
        return Term(tuple(words))

    def _bare_term(self) -> Term:
        run: list[_Token] = []
        while self._peek().kind == "WORD":
            run.append(self._advance())
        words = [word for token in run for word in _chunk_words(token.text, token.start)]
        if not words:
            raise RuleSyntaxError(
                f"nothing to search for in {self.query[run[0].start : run[-1].end]}",
                run[0].column,
            )
        spelling = run[0].text if len(run) == 1 and _is_plain_word(run[0].text) else None
        return Term(tuple(words), spelling)


def _joined(left: str, operator: _Token, right: str) -> str:
    if operator.kind == "MINUS":
        return f"{left} -{right}"
    return f"{left} {operator.text} {right}"


def _and(operands: list[Node]) -> And:
    return And(tuple(c for op in operands for c in (op.children if isinstance(op, And) else (op,))))


def _or(operands: list[Node]) -> Or:
    return Or(tuple(c for op in operands for c in (op.children if isinstance(op, Or) else (op,))))


def _check_near_operand(node: Node, token: _Token) -> None:
    terms = node.children if isinstance(node, Or) else (node,)
    if any(isinstance(term, Field) for term in terms):
        raise RuleSyntaxError(
            "put the field before the whole proximity, e.g. title:(a NEAR/5 b)", token.column
        )
    if not all(isinstance(term, Term) for term in terms):
        raise RuleSyntaxError(
            "NEAR operands must be terms, phrases or alternatives of them", token.column
        )
    if any(isinstance(term, Term) and term.unspaced for term in terms):
        raise RuleSyntaxError(
            "NEAR cannot count words in a script written without spaces", token.column
        )


_CHUNKS: dict[str, tuple[str, ...]] = {}
"""The tokens of query chunks read before (rules files repeat their words): normalizing is
most of the cost of parsing a rule. Only valid chunks are kept (an error needs its column)."""
_CHUNKS_BOUND = 100_000


def _chunk_words(chunk: str, start: int) -> list[str]:
    """The normalized tokens of one whitespace-free piece of query text at offset `start`."""
    words = _CHUNKS.get(chunk)
    if words is None:
        words = tuple(_read_chunk(chunk, start))
        if len(_CHUNKS) >= _CHUNKS_BOUND:
            _CHUNKS.clear()
        _CHUNKS[chunk] = words
    return list(words)


def _read_chunk(chunk: str, start: int) -> list[str]:
    star = chunk.find("*")
    if 0 <= star < len(chunk) - 1:
        raise RuleSyntaxError("* is only allowed at the end of a word", start + star + 1)
    if star < 0:
        return tokens_of_normalized(normalize(chunk))
    stem = normalize(chunk[:-1])
    words = tokens_of_normalized(stem)
    if not words or not stem.endswith(words[-1]) or len(words[-1]) < MIN_PREFIX:
        raise RuleSyntaxError(
            f"a prefix needs at least {MIN_PREFIX} letters before *", start + len(chunk)
        )
    words[-1] += "*"
    return words

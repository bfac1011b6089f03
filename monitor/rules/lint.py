"""Warnings about rules that are valid but slow or probably not what their author meant."""

from __future__ import annotations

from collections.abc import Iterator

from monitor.rules.evaluate import Query
from monitor.rules.index import COMMON_WORDS, Clause, requirements
from monitor.rules.syntax import And, Field, Near, Node, Not, Or, Term

__all__ = ["SHORT_PREFIX", "lint_query"]

SHORT_PREFIX = 3


def lint_query(query: Query) -> list[str]:
    """Warnings for `monitor check`: rules that cannot be indexed or look like mistakes."""
    warnings: list[str] = []
    clauses = requirements(query.root)
    if not clauses:
        warnings.append(
            "this rule cannot be indexed: it needs a term that must occur, so it is "
            "evaluated for every article"
        )
    elif all(_common(clause) for clause in clauses):
        words = sorted({word for clause in clauses for word in _common(clause)})
        warnings.append(
            f"this rule can match on very common words alone ({', '.join(words)}), "
            "so it is evaluated for most articles"
        )
    for word in dict.fromkeys(_prefixes(query.root)):
        common = sorted(w for w in COMMON_WORDS if w.startswith(word[:-1]))
        if len(word) - 1 <= SHORT_PREFIX:
            warnings.append(
                f"{word} has only {len(word) - 1} letters before *: it matches most articles; "
                "add letters or list the words you mean"
            )
        elif common:
            warnings.append(
                f"{word} matches very common words ({', '.join(common)}): it matches most "
                "articles; add letters or list the words you mean"
            )
    return warnings


def _common(clause: Clause) -> list[str]:
    return [text for kind, text in clause.keys if kind == "word" and text in COMMON_WORDS]


def _prefixes(node: Node) -> Iterator[str]:
    match node:
        case Term():
            yield from (w for w in node.words if w.endswith("*"))
        case Not() | Field():
            yield from _prefixes(node.child)
        case And() | Or():
            for child in node.children:
                yield from _prefixes(child)
        case Near():
            yield from _prefixes(node.left)
            yield from _prefixes(node.right)

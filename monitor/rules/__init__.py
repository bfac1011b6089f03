"""The rule language: parse a query once, evaluate it against many documents.

query = compile_query("Japan AND North Korea AND summit|abduction")
query.canonical()   # 'Japan AND "north korea" AND (summit OR abduction)'
query.evaluate(Document.from_article(article))   # None, or the matched terms
"""

from monitor.rules.evaluate import Document, FieldIndex, Query, compile_query
from monitor.rules.syntax import (
    DEFAULT_FIELDS,
    FIELDS,
    And,
    Field,
    Near,
    Node,
    Not,
    Or,
    RuleSyntaxError,
    Term,
    canonical,
    parse,
)
from monitor.rules.text import normalize, tokenize

__all__ = [
    "DEFAULT_FIELDS",
    "FIELDS",
    "And",
    "Document",
    "Field",
    "FieldIndex",
    "Near",
    "Node",
    "Not",
    "Or",
    "Query",
    "RuleSyntaxError",
    "Term",
    "canonical",
    "compile_query",
    "normalize",
    "parse",
    "tokenize",
]

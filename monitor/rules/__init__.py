"""The rule language: parse a query once, evaluate it against many documents.

query = compile_query("Japan AND North Korea AND summit|abduction")
query.canonical()   # 'Japan AND "north korea" AND (summit OR abduction)'
query.evaluate(Document.from_article(article))   # None, or the matched terms
query.explain(doc)  # None, or an Explanation: the terms and where they matched

Many rules at once: `RuleIndex([(name, query), ...]).match(doc)` evaluates only the rules
whose required terms occur in the article; `mark_snippet` quotes the article around a match.

Modules: syntax (parser), text (normalizing, tokens), document (Document, FieldIndex),
evaluate (Query), explain, index (RuleIndex), presearch (+ the C _presearch), lint. Pure;
may import monitor.model and monitor.errors only.
"""

from monitor.rules.document import Document, FieldIndex
from monitor.rules.evaluate import Query, compile_query
from monitor.rules.explain import Explanation, Hit, mark_snippet
from monitor.rules.index import RuleIndex
from monitor.rules.lint import lint_query
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
    "Explanation",
    "Field",
    "FieldIndex",
    "Hit",
    "Near",
    "Node",
    "Not",
    "Or",
    "Query",
    "RuleIndex",
    "RuleSyntaxError",
    "Term",
    "canonical",
    "compile_query",
    "lint_query",
    "mark_snippet",
    "normalize",
    "parse",
    "tokenize",
]

"""Many rules, one matcher: an inverted index from terms to rules, then exact evaluation.

As in Lucene Monitor's presearcher, the index sees which terms a rule requires. A rule's
requirements are clauses, sets of keys of which every matching article holds at least one:

- a word is its own key, and each word of a phrase is a clause;
- a prefix `abduct*` is keyed by its first letters (at most `PREFIX_KEY_LETTERS`), and an
  article offers the same-length beginnings of its words;
- in a script written without spaces, each character pair of a term is a clause (a lone
  character between other scripts, the character), and an article offers the pairs and
  characters of its runs in those scripts;
- AND and NEAR require the clauses of all their children; NOT requires nothing; OR requires
  the union of its children's rarest clauses, and the union of their second rarest;
- fields are ignored: an article offers the keys of all its fields.

Each rule is indexed under its rarest clause and, if it has one, under its second rarest
(Lucene Monitor's multipass presearcher): an article's candidates are the rules it hits in
both, evaluated exactly in entry order; the others cannot match. A prefix clause is not
chosen first if another clause can be (an article would then have to offer the beginnings
of all its words); as a second clause it is looked up among the article's words.
A rule with no clause (only possible for a `Query` built without the parser's checks) is
evaluated for every article: `always_evaluated`.

The lookups themselves are `presearch.py`'s, compiled when the package was built with a C
compiler.

Rarity is estimated: from `frequencies` (word -> share of articles holding it) when given,
else by length, very common English words counting as everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Generic, Literal, NamedTuple, TypeVar

from monitor.rules.document import Document
from monitor.rules.evaluate import Query
from monitor.rules.explain import Explanation
from monitor.rules.presearch import Filed, Presearch, PythonPresearch, build
from monitor.rules.syntax import And, Field, Near, Node, Not, Or, Term
from monitor.rules.text import UNSPACED_CLASS

__all__ = [
    "COMMON_WORDS",
    "PREFIX_KEY_LETTERS",
    "Clause",
    "RuleIndex",
    "estimate_rarity",
    "requirements",
]

K = TypeVar("K", bound=Hashable)

PREFIX_KEY_LETTERS = 5
PASSES = 2

_COMMON = """a about after all also an and are as at be been but by can for from had has have
he her his i in into is it its more new not of on one or our out over said she so than that the
their there they this to two up was we were when which who will with would you"""
COMMON_WORDS = frozenset(_COMMON.split())

_UNSPACED_RUN = re.compile(UNSPACED_CLASS + "+")
_HIRAGANA = re.compile("[\u3040-\u309f]")

KeyKind = Literal["word", "prefix", "gram"]
Key = tuple[KeyKind, str]
Rarity = Callable[[str], float]


class Clause(NamedTuple):
    """Index keys, one of which every matching article holds, and their estimated rarity."""

    keys: frozenset[Key]
    cost: float


def estimate_rarity(word: str) -> float:
    """A guess at the share of articles that hold `word`: shorter words are commoner."""
    if word in COMMON_WORDS:
        return 1.0
    return min(0.9, 4.0 / 2.0 ** len(word))


def requirements(
    node: Node,
    rarity: Rarity = estimate_rarity,
    memo: dict[tuple[str, ...], list[Clause]] | None = None,
) -> list[Clause]:
    """The clauses a query requires, rarest first; none if it requires no positive term.

    `memo` keeps each term's clauses for the next query (with the same `rarity`), by its
    words (a Term's own hash and == are Python code)."""
    clauses = _clauses(node, rarity, {} if memo is None else memo)
    return sorted(dict.fromkeys(clauses), key=lambda clause: clause.cost)


def _clauses(node: Node, rarity: Rarity, memo: dict[tuple[str, ...], list[Clause]]) -> list[Clause]:
    match node:
        case Term():
            clauses = memo.get(node.words)
            if clauses is None:
                clauses = memo[node.words] = _term_clauses(node, rarity)
            return clauses  # shared: never changed by the callers
        case Not():
            return []
        case And():
            return [c for child in node.children for c in _clauses(child, rarity, memo)]
        case Or():
            return _union([_clauses(child, rarity, memo) for child in node.children])
        case Near():
            return _clauses(node.left, rarity, memo) + _clauses(node.right, rarity, memo)
        case Field():
            return _clauses(node.child, rarity, memo)


def _union(alternatives: list[list[Clause]]) -> list[Clause]:
    """Clause i of an OR: the union of each alternative's i-th rarest clause (or its last)."""
    if not all(alternatives):
        return []
    ranked = [sorted(clauses, key=lambda clause: clause.cost) for clauses in alternatives]
    depth = min(PASSES, max(map(len, ranked)))
    return [
        Clause(
            frozenset().union(*(clauses[min(i, len(clauses) - 1)].keys for clauses in ranked)),
            sum(clauses[min(i, len(clauses) - 1)].cost for clauses in ranked),
        )
        for i in range(depth)
    ]


def _term_clauses(term: Term, rarity: Rarity) -> list[Clause]:
    if term.unspaced:
        return _gram_clauses(term)
    clauses: list[Clause] = []
    for word in term.words:
        if word.endswith("*"):
            stem = word[:-1][:PREFIX_KEY_LETTERS]
            cost = min(1.0, 4 * estimate_rarity(stem))
            clauses.append(Clause(frozenset({("prefix", stem)}), cost))
        else:
            clauses.append(Clause(frozenset({("word", word)}), rarity(word)))
    return clauses


def _gram_clauses(term: Term) -> list[Clause]:
    clauses: list[Clause] = []
    for word in term.words:
        for run in _UNSPACED_RUN.findall(word.removesuffix("*")):
            grams = [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
            clauses.extend(
                Clause(frozenset({("gram", gram)}), _gram_rarity(gram)) for gram in grams
            )
    return clauses


def _gram_rarity(gram: str) -> float:
    rarity = 1.0
    for char in gram:
        rarity *= 0.5 if _HIRAGANA.match(char) else 0.2
    return rarity


class RuleIndex(Generic[K]):
    """Compiled rules, matched against an article by presearch and exact evaluation.

    `entries` are (key, query) pairs; keys are returned as given, in entry order.
    """

    __slots__ = (
        "_always",
        "_decide",
        "_grams",
        "_keys",
        "_prefix_lengths",
        "_presearch",
        "_queries",
        "_words",
    )

    def __init__(
        self,
        entries: Iterable[tuple[K, Query]],
        *,
        frequencies: Mapping[str, float] | None = None,
        compiled: bool = True,
    ) -> None:
        """`compiled=False` runs the presearch in Python even if its compiled form is built."""
        rarity = estimate_rarity if frequencies is None else _table_rarity(frequencies)
        self._keys: list[K] = []
        self._queries: list[Query] = []
        for key, query in entries:
            self._keys.append(key)
            self._queries.append(query)
        self._words = [query.required_words for query in self._queries]
        self._decide = [query.present_terms for query in self._queries]
        self._prefix_lengths: tuple[int, ...] = ()
        self._grams = False
        filed = Filed()
        # Rule numbers allocated together stay close in memory, which speeds up the presearch.
        idents = list(range(len(self._queries)))
        memo: dict[tuple[str, ...], list[Clause]] = {}
        for ident, query in zip(idents, self._queries, strict=True):
            self._add(ident, requirements(query.root, rarity, memo), filed)
        self._always = filed.always
        self._presearch: Presearch = build(filed, compiled=compiled)

    def _add(self, ident: int, clauses: list[Clause], filed: Filed) -> None:
        """File rule `ident` under its first clause and, if useful, its second.

        The first is the rarest clause without a prefix (every article would have to offer
        its word beginnings for one), else the rarest; the second, the rarest of the others
        if it is not everywhere. A rule with two clauses is filed under each pair (first
        key, second key); a prefix second key is looked up in the article's vocabulary instead.
        """
        if not clauses:
            filed.always.append(ident)
            return
        first = next((clause for clause in clauses if not _has_prefix(clause)), clauses[0])
        rest = [clause for clause in clauses if clause is not first]
        second = rest[0] if rest and rest[0].cost < 1.0 else None
        for kind, text in first.keys:
            if kind == "prefix" and len(text) not in self._prefix_lengths:
                self._prefix_lengths = tuple(sorted((*self._prefix_lengths, len(text))))
            self._grams = self._grams or kind == "gram"
            if second is None:
                filed.single.setdefault(text, []).append(ident)
                continue
            for second_kind, second_text in second.keys:
                self._grams = self._grams or second_kind == "gram"
                table = filed.stems if second_kind == "prefix" else filed.pairs
                table.setdefault(text, {}).setdefault(second_text, []).append(ident)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def compiled(self) -> bool:
        """Whether the presearch runs compiled."""
        return not isinstance(self._presearch, PythonPresearch)

    @property
    def always_evaluated(self) -> list[K]:
        """The rules that could not be indexed: they are evaluated for every article."""
        return [self._keys[ident] for ident in self._always]

    def candidates(self, doc: Document) -> list[K]:
        """The rules the presearch lets through for `doc`, the only ones evaluated."""
        return [self._keys[ident] for ident in self._candidate_ids(doc)]

    def match(self, doc: Document) -> list[tuple[K, Explanation]]:
        """The rules whose query matches `doc`, in entry order, with their explanations."""
        matched: list[tuple[K, Explanation]] = []
        queries, keys = self._queries, self._keys
        words, default_words = self._words, doc.default_words
        decide, of_terms = self._decide, Explanation.of_terms
        for ident in self._candidate_ids(doc):
            # Most candidates do not match: for an AND of words a subset test turns them
            # down before anything else, and where it lets one through, that is the match.
            required = words[ident]
            if required is not None:
                if not required <= default_words:
                    continue
                present = decide[ident]
                if present is not None:
                    matched.append((keys[ident], of_terms(present[0], present[1], doc)))
                    continue
            explanation = queries[ident].explain(doc)
            if explanation is not None:
                matched.append((keys[ident], explanation))
        return matched

    def _candidate_ids(self, doc: Document) -> list[int]:
        return self._presearch.candidates(self._offered(doc), doc)

    def _offered(self, doc: Document) -> frozenset[str]:
        """The keys an article offers: its words, their beginnings, its character pairs.

        Word keys, prefix keys and character keys share the index: a word equal to the
        beginning of another word only adds a candidate, never loses one.
        """
        if not self._prefix_lengths and not self._grams:
            return doc.words
        return doc.keys(self._prefix_lengths, grams=self._grams)


def _has_prefix(clause: Clause) -> bool:
    return any(kind == "prefix" for kind, _ in clause.keys)


def _table_rarity(frequencies: Mapping[str, float]) -> Rarity:
    def rarity(word: str) -> float:
        return frequencies.get(word, estimate_rarity(word))

    return rarity

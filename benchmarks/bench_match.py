"""Rule matching: the indexed matcher (RuleIndex) against evaluating every rule, same run.

    python benchmarks/bench_match.py                              # 1k, 10k and 100k rules
    python benchmarks/bench_match.py --rules 10000 --articles 500
    python benchmarks/bench_match.py --python-presearch           # as without a C compiler

The corpus is synthetic but shaped like news: a 50,000-word vocabulary drawn with Zipf
frequencies (frequent words short, as in real text), topics that make some rarer words and
people's names cluster in an article, ~600-word bodies in paragraphs, a title and a lede.
Rules are written the way users write them: distinctive (mid-frequency) words and names,
AND of 2-3 clauses, alternatives, NOT, field scopes, ~10% prefixes and ~5% NEAR.

For each rule count: compile time (parse + index), memory held by the compiled rules (RSS
growth) and the process's peak RSS, articles/s through `RuleIndex.match` (building each
`Document` included), candidates per article, and articles/s evaluating every rule
(`Query.matches`, then `Query.explain` for a match) on a smaller sample, whose results must
equal the index's. Speedup is shown end to end and for the matching step alone (the same
`Document` build taken out of both sides). Seeded: every run builds the same corpus and
rules. Times are the process's CPU time, so that other work on a shared machine does not
skew them; on an idle machine wall time is the same.

`--corpus high` (benchmarks/high_match.py, issue #14): a corpus where an article matches
about 1% of the rules, through the daemon's matcher and the `monitor match` command.

Targets (issue #3): >= 1,000 articles/s at 10k rules and >= 50x per-rule evaluation (checked
on the matching step); >= 200 articles/s at 100k rules; 100k rules compiled within 30 s and
1 GB (checked on the process's peak RSS).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from monitor.model import Article, Block
from monitor.rules import Document, RuleIndex, compile_query

T = TypeVar("T")

VOCABULARY_SIZE = 50_000
TOPICS = 300
TOPIC_WORDS = 60
TOPIC_NAMES = 8
SEED = 20240601
BASELINE_WORK = 2_000_000
"""Rule evaluations for the per-rule baseline: articles = this / rules, within 10..200."""

_SYLLABLES = [
    a + b for a in "bdfgklmnprstvz" for b in ("a", "e", "i", "o", "u", "an", "er", "is", "or")
]


@dataclass(frozen=True, slots=True)
class Language:
    """The vocabulary with Zipf weights, topics and people's names."""

    words: list[str]
    cumulative: list[float]
    topics: list[list[str]]
    topic_names: list[list[str]]

    def common(self, rng: random.Random, count: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cumulative, k=count)

    def distinctive(self, rng: random.Random) -> str:
        """A word users would write in a rule: log-uniform over ranks 1,000 and beyond."""
        rank = int(math.exp(rng.uniform(math.log(1000), math.log(len(self.words)))))
        return self.words[rank - 1]


def make_language(rng: random.Random) -> Language:
    words = _make_words(rng, VOCABULARY_SIZE)
    weights = [1.0 / rank for rank in range(1, len(words) + 1)]
    cumulative = list(itertools.accumulate(weights))
    topics = [rng.sample(words[300:], TOPIC_WORDS) for _ in range(TOPICS)]
    names = [[_make_name(rng) for _ in range(TOPIC_NAMES)] for _ in range(TOPICS)]
    return Language(words, cumulative, topics, names)


def _make_words(rng: random.Random, count: int) -> list[str]:
    """Distinct pseudo-words, longer as they get rarer."""
    seen: set[str] = set()
    words: list[str] = []
    while len(words) < count:
        rank = len(words) + 1
        syllables = 1 + int(math.log10(rank) * 0.8) + (rng.random() < 0.3)
        word = "".join(rng.choices(_SYLLABLES, k=syllables))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def _make_name(rng: random.Random) -> str:
    first = "".join(rng.choices(_SYLLABLES, k=2)).capitalize()
    last = "".join(rng.choices(_SYLLABLES, k=rng.choice((2, 3)))).capitalize()
    return f"{first} {last}"


def make_articles(rng: random.Random, language: Language, count: int) -> list[Article]:
    return [_make_article(rng, language, number) for number in range(count)]


def _make_article(rng: random.Random, language: Language, number: int) -> Article:
    topics = rng.sample(range(TOPICS), 2)
    topic_words = [word for topic in topics for word in language.topics[topic]]
    names = [name for topic in topics for name in rng.sample(language.topic_names[topic], 3)]

    def sentence(length: int) -> str:
        words = language.common(rng, length)
        for index in range(length):
            if rng.random() < 0.12:
                words[index] = rng.choice(topic_words)
        if rng.random() < 0.3:
            words[rng.randrange(length)] = rng.choice(names)
        text = " ".join(words)
        return text[0].upper() + text[1:] + rng.choice((".", ".", ".", "?", "!"))

    def paragraph(words: int) -> str:
        parts: list[str] = []
        while words > 0:
            length = min(words, rng.randint(8, 24))
            parts.append(sentence(length))
            words -= length
        return " ".join(parts)

    body = tuple(Block("paragraph", paragraph(rng.randint(50, 100))) for _ in range(8))
    return Article(
        id=str(number),
        url=f"https://news.example.com/{number}/{'-'.join(language.common(rng, 5))}",
        source=rng.choice(("wire", "daily", "herald", "times")),
        title=sentence(rng.randint(8, 14)).rstrip(".?!"),
        lede=paragraph(rng.randint(25, 40)),
        body=body,
        section=("World", rng.choice(("Asia", "Europe", "Americas", "Africa"))),
        authors=(_make_name(rng),),
    )


class RuleWriter:
    """Random rules in the shapes users write."""

    def __init__(self, rng: random.Random, language: Language) -> None:
        self.rng = rng
        self.language = language

    def rule(self) -> str:
        rng = self.rng
        shape = rng.random()
        if shape < 0.10:
            return self.plain()
        if shape < 0.40:
            return f"{self.clause()} AND {self.plain_clause()}"
        if shape < 0.60:
            return f"{self.clause()} AND {self.clause()} AND {self.plain_clause()}"
        if shape < 0.72:
            return f"({self.plain()} AND {self.clause()}) OR ({self.plain()} AND {self.clause()})"
        if shape < 0.87:
            exclude = rng.choice(("NOT ", "-", "AND NOT "))
            return f"{self.plain_clause()} AND {self.clause()} {exclude}{self.term()}"
        if shape < 0.92:
            return f"{self.plain()} NEAR/{rng.randint(2, 10)} {self.plain()}"
        field = rng.choice(("title", "lede", "body"))
        return f"{field}:{self.plain()} AND {self.clause()}"

    def clause(self) -> str:
        if self.rng.random() < 0.25:
            return "|".join(self.term() for _ in range(self.rng.randint(2, 3)))
        return self.term()

    def plain_clause(self) -> str:
        if self.rng.random() < 0.25:
            return "|".join(self.plain() for _ in range(self.rng.randint(2, 3)))
        return self.plain()

    def term(self) -> str:
        if self.rng.random() < 0.12:
            return self.prefix()
        return self.plain()

    def plain(self) -> str:
        rng = self.rng
        if rng.random() < 0.15:
            return f'"{rng.choice(rng.choice(self.language.topic_names))}"'
        if rng.random() < 0.3:
            return rng.choice(rng.choice(self.language.topics))
        return self.language.distinctive(rng)

    def prefix(self) -> str:
        word = self.language.distinctive(self.rng)
        while len(word) < 6:
            word = self.language.distinctive(self.rng)
        return word[: max(4, len(word) - 2)] + "*"


def make_rules(rng: random.Random, language: Language, count: int) -> list[str]:
    writer = RuleWriter(rng, language)
    return [writer.rule() for _ in range(count)]


Matches = list[tuple[int, tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class Result:
    rules: int
    compile_seconds: float
    index_mb: float
    peak_mb: float
    document_ms: float
    indexed_ms: float
    candidates_per_article: float
    matches_per_article: float
    baseline_articles: int
    baseline_ms: float
    identical: bool

    @property
    def articles_per_second(self) -> float:
        return 1000 / self.indexed_ms

    @property
    def baseline_per_second(self) -> float:
        return 1000 / self.baseline_ms

    @property
    def speedup(self) -> float:
        """End to end: building the `Document` included on both sides."""
        return self.baseline_ms / self.indexed_ms

    @property
    def matching_speedup(self) -> float:
        """The matching step alone: the same `Document` build taken out of both sides."""
        return (self.baseline_ms - self.document_ms) / (self.indexed_ms - self.document_ms)


def measure(
    rule_texts: Sequence[str], articles: Sequence[Article], *, compiled: bool = True
) -> Result:
    gc.collect()
    before = _rss_mb()
    started = time.process_time()
    queries = [compile_query(text) for text in rule_texts]
    index = RuleIndex(enumerate(queries), compiled=compiled)
    compile_seconds = time.process_time() - started
    gc.collect()
    index_mb = _rss_mb() - before

    def indexed(doc: Document) -> Matches:
        return [(key, explanation.terms) for key, explanation in index.match(doc)]

    def every_rule(doc: Document) -> Matches:
        return [
            (key, explanation.terms)
            for key, query in enumerate(queries)
            if query.matches(doc) and (explanation := query.explain(doc)) is not None
        ]

    _timed(articles[:20], indexed)
    indexed_seconds, matched = _timed(articles, indexed)
    document_seconds, _ = _timed(articles, _nothing)
    baseline = articles[: max(10, min(200, BASELINE_WORK // len(queries)))]
    baseline_seconds, expected = _timed(baseline, every_rule)
    sample = articles[:200]
    candidates = sum(len(index.candidates(Document.from_article(a))) for a in sample)
    return Result(
        rules=len(queries),
        compile_seconds=compile_seconds,
        index_mb=index_mb,
        peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        document_ms=document_seconds * 1000 / len(articles),
        indexed_ms=indexed_seconds * 1000 / len(articles),
        candidates_per_article=candidates / len(sample),
        matches_per_article=sum(map(len, matched)) / len(articles),
        baseline_articles=len(baseline),
        baseline_ms=baseline_seconds * 1000 / len(baseline),
        identical=matched[: len(baseline)] == expected,
    )


def _nothing(doc: Document) -> None:
    return None


def _timed(articles: Sequence[Article], match: Callable[[Document], T]) -> tuple[float, list[T]]:
    """CPU seconds to build each article's `Document` and match it, and the results."""
    started = time.process_time()
    results = [match(Document.from_article(article)) for article in articles]
    return time.process_time() - started, results


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * resource.getpagesize() / 2**20


def verdicts(result: Result) -> list[str]:
    checks: list[tuple[str, bool]] = []
    if result.rules == 10_000:
        checks += [
            (">=1000 art/s", result.articles_per_second >= 1000),
            (">=50x matching", result.matching_speedup >= 50),
        ]
    if result.rules == 100_000:
        checks += [
            (">=200 art/s", result.articles_per_second >= 200),
            ("<=30 s", result.compile_seconds <= 30),
            ("<=1 GB", result.peak_mb <= 1024),
        ]
    checks.append(("same results", result.identical))
    return [f"{'PASS' if ok else 'FAIL'} {name}" for name, ok in checks]


COLUMNS = (
    "rules",
    "compile s",
    "index MB",
    "peak MB",
    "Document ms",
    "articles/s",
    "candidates/article",
    "matches/article",
    "per-rule articles/s (n)",
    "speedup end to end",
    "speedup matching",
    "targets",
)


def row(result: Result) -> str:
    cells = (
        f"{result.rules:,}",
        f"{result.compile_seconds:.1f}",
        f"{result.index_mb:.0f}",
        f"{result.peak_mb:.0f}",
        f"{result.document_ms:.2f}",
        f"{result.articles_per_second:,.0f}",
        f"{result.candidates_per_article:,.1f}",
        f"{result.matches_per_article:.1f}",
        f"{result.baseline_per_second:,.1f} ({result.baseline_articles})",
        f"{result.speedup:,.0f}x",
        f"{result.matching_speedup:,.0f}x",
        ", ".join(verdicts(result)),
    )
    return "| " + " | ".join(cells) + " |"


def run_low(args: argparse.Namespace) -> bool:
    counts = [int(count) for count in args.rules.split(",")]
    rng = random.Random(SEED)
    language = make_language(rng)
    articles = make_articles(rng, language, args.articles)
    words = sum(len(Document.from_article(a).field("body").tokens) for a in articles[:100]) / 100
    presearch = "Python" if args.python_presearch else "compiled"
    print(f"{len(articles)} articles, ~{words:.0f} body words each; {presearch} presearch\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|---" * len(COLUMNS) + "|")
    failed = False
    for count in sorted(counts):
        rules = make_rules(random.Random(SEED + count), language, count)
        result = measure(rules, articles, compiled=not args.python_presearch)
        print(row(result), flush=True)
        failed = failed or any(v.startswith("FAIL") for v in verdicts(result))
    return failed


def reference_loop_seconds() -> float:
    """The CPU time of a plain loop: how fast this machine runs Python, for comparing runs."""
    started = time.process_time()
    total = 0
    for step in range(10_000_000):
        total += step
    return time.process_time() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rules", default="1000,10000,100000", help="comma-separated counts")
    parser.add_argument("--articles", type=int, default=1000, help="articles to match")
    parser.add_argument(
        "--corpus", default="low,high", help="low (many rules, few matches), high, or both"
    )
    parser.add_argument(
        "--high-rules", default="10000,100000", help="rule counts for the high-match corpus"
    )
    parser.add_argument(
        "--high-articles", type=int, default=1500, help="articles of the high-match corpus"
    )
    parser.add_argument(
        "--python-presearch",
        action="store_true",
        help="run the presearch in Python, as an install without a C compiler does",
    )
    args = parser.parse_args(argv)
    print(
        f"machine: a 10-million-step Python loop takes {reference_loop_seconds():.2f} s of CPU "
        "(compare figures across machines by it)\n"
    )
    corpora = args.corpus.split(",")
    failed = False
    if "low" in corpora:
        failed = run_low(args)
    if "high" in corpora:
        from high_match import run_high  # beside this script (it imports this module)

        high = [int(count) for count in args.high_rules.split(",")]
        failed = run_high(high, args.high_articles) or failed
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The high-match corpus of `bench_match.py --corpus high` (issue #14).

A 20,000-word Zipf vocabulary, ~600-word articles, rules of two or three words of middling
frequency so that an article matches about 1% of the rules. Measured for the daemon's
matcher in this process and for `monitor match --rules FILE feed.xml --json` as a child
process (docs/benchmarks.md). Targets: >= 1,000 articles/s at 10,000 rules and >= 100 at
100,000, for both; the command's peak RSS <= 600 MB.
"""

from __future__ import annotations

import gc
import itertools
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from bench_match import BASELINE_WORK, SEED, Language, _make_words

from monitor.config.schema import Rule
from monitor.matching.intake import Matcher
from monitor.model import Article, Block
from monitor.rules import Document, compile_query

HIGH_VOCABULARY = 20_000
HIGH_TARGET_SHARE = 0.01
"""The share of rules an article should match on the high-match corpus."""


@dataclass(frozen=True, slots=True)
class HighCorpus:
    """A 20,000-word Zipf vocabulary, ~600-word articles, and words banded by how many
    articles hold them: rules of two words from the ~10% band and of three from the ~21%
    band match about 1% of rules each (0.1² and 0.215³), whatever the rule count."""

    language: Language
    pair_words: list[str]
    triple_words: list[str]


def make_high_corpus(rng: random.Random, articles: int) -> tuple[HighCorpus, list[Article]]:
    words = _make_words(rng, HIGH_VOCABULARY)
    weights = [1.0 / rank for rank in range(1, len(words) + 1)]
    language = Language(words, list(itertools.accumulate(weights)), [], [])
    made = [_make_plain_article(rng, language, number) for number in range(articles)]
    held: dict[str, int] = {}
    for article in made[:400]:
        for word in Document.from_article(article).words:
            held[word] = held.get(word, 0) + 1
    sample = min(400, len(made))

    def band(share: float) -> list[str]:
        low, high = share * 0.85, share * 1.15
        return [word for word in words if low <= held.get(word, 0) / sample <= high]

    return HighCorpus(language, band(0.10), band(0.215)), made


def _make_plain_article(rng: random.Random, language: Language, number: int) -> Article:
    """An article of Zipf words only (no topics): ~600 body words, a title and a lede."""

    def sentence(length: int) -> str:
        text = " ".join(language.common(rng, length))
        return text[0].upper() + text[1:] + "."

    def paragraph(words: int) -> str:
        parts: list[str] = []
        while words > 0:
            length = min(words, rng.randint(8, 24))
            parts.append(sentence(length))
            words -= length
        return " ".join(parts)

    body = tuple(Block("paragraph", paragraph(rng.randint(60, 90))) for _ in range(8))
    return Article(
        id=f"h{number}",
        url=f"https://news.example.com/high/{number}",
        source="wire",
        title=sentence(rng.randint(8, 14)).rstrip("."),
        lede=paragraph(rng.randint(25, 40)),
        body=body,
        section=("World",),
    )


def make_high_rules(rng: random.Random, corpus: HighCorpus, count: int) -> list[str]:
    """Half AND of two words, half AND of three, as users write them (`a AND b`)."""
    rules = []
    for _ in range(count):
        if rng.random() < 0.5:
            rules.append(" AND ".join(rng.sample(corpus.pair_words, 2)))
        else:
            rules.append(" AND ".join(rng.sample(corpus.triple_words, 3)))
    return rules


def measure_high(
    corpus: HighCorpus, articles: Sequence[Article], count: int, workdir: Path
) -> dict[str, float]:
    """The daemon's matcher (`Matcher.match` and each match's summary, what a poll stores)
    in this process, then `monitor match --rules FILE feed.xml --json` in a child process."""
    texts = make_high_rules(random.Random(SEED + count), corpus, count)
    rules = [Rule(f"r{n}", compile_query(text), ("console",)) for n, text in enumerate(texts)]
    matcher = Matcher(rules)
    gc.collect()
    started = time.process_time()
    matches = 0
    for article in articles:
        for _rule, why in matcher.match(article):
            why.summary()
            matches += 1
    matcher_seconds = time.process_time() - started
    queries = [rule.query for rule in rules]
    sample = articles[: max(5, min(100, BASELINE_WORK // 4 // count))]
    started = time.process_time()
    for article in sample:
        doc = Document.from_article(article)
        for query in queries:
            if query.matches(doc) and (why := query.explain(doc)) is not None:
                why.summary()
    baseline_seconds = time.process_time() - started
    rules_file = workdir / f"rules-{count}.toml"
    rules_file.write_text(
        "".join(
            f'[[rules]]\nname = "r{n}"\nquery = "{text}"\nnotify = ["console"]\n'
            for n, text in enumerate(texts)
        )
    )
    full = _run_cli(rules_file, workdir / "feed.xml")
    empty = _run_cli(rules_file, workdir / "empty.xml")
    return {
        "rules": count,
        "matches/article": matches / len(articles),
        "matcher art/s": len(articles) / matcher_seconds,
        "per-rule art/s": len(sample) / baseline_seconds,
        "cli s": full["cpu"],
        "cli start+compile s": empty["cpu"],
        "cli art/s": len(articles) / full["cpu"],
        "cli wall art/s": len(articles) / full["wall"],
        "cli matching art/s": len(articles) / max(full["cpu"] - empty["cpu"], 1e-9),
        "cli peak MB": full["peak"],
        "cli lines": full["lines"],
    }


# Runs the command and writes its CPU, wall time and peak RSS (KiB) to argv[1]. A child of
# this benchmark would inherit our peak: Linux keeps the largest RSS across exec, and a
# (v)forked child starts with its parent's memory. This small launcher's child does not.
_LAUNCHER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
subprocess.run(sys.argv[2:], check=False)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as out:
    json.dump([usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss], out)
"""


def _run_cli(rules: Path, feed: Path) -> dict[str, float]:
    """One `monitor match --json` run: its CPU (the worker's included), wall time, peak
    RSS and lines of output."""
    command = [sys.executable, "-m", "monitor", "match", "--rules", str(rules), str(feed)]
    figures = rules.with_suffix(".run.json")
    launched = [sys.executable, "-c", _LAUNCHER, str(figures), *command, "--json"]
    output = subprocess.run(launched, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    cpu, wall, peak = json.loads(figures.read_text())
    return {"cpu": cpu, "wall": wall, "peak": peak / 1024, "lines": output.stdout.count(b"\n")}


def write_feed(path: Path, articles: Sequence[Article]) -> None:
    """An RSS 2.0 feed of `articles`: title, link, guid, and lede and body as HTML."""
    items = []
    for article in articles:
        html = "".join(
            f"<p>{escape(text)}</p>" for text in (article.lede, *article.body_text.split("\n\n"))
        )
        items.append(
            f"<item><title>{escape(article.title)}</title><link>{article.url}</link>"
            f"<guid>{article.url}</guid><description>{escape(html)}</description></item>"
        )
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>high</title>'
        f"<link>https://news.example.com/</link><description>d</description>{''.join(items)}"
        "</channel></rss>",
        encoding="utf-8",
    )


HIGH_TARGETS = {10_000: 1000.0, 100_000: 100.0}
PEAK_TARGET_MB = 600


def high_verdicts(result: dict[str, float]) -> list[str]:
    target = HIGH_TARGETS.get(int(result["rules"]))
    checks: list[tuple[str, bool]] = []
    if target is not None:
        checks += [
            (f"matcher >={target:,.0f} art/s", result["matcher art/s"] >= target),
            (f"cli >={target:,.0f} art/s", result["cli art/s"] >= target),
            (f"cli wall >={target:,.0f} art/s", result["cli wall art/s"] >= target),
        ]
    checks.append((f"cli <={PEAK_TARGET_MB} MB", result["cli peak MB"] <= PEAK_TARGET_MB))
    return [f"{'PASS' if ok else 'FAIL'} {name}" for name, ok in checks]


def run_high(counts: Sequence[int], articles: int) -> bool:
    corpus, made = make_high_corpus(random.Random(SEED), articles)
    print(
        f"\nHigh-match corpus: {len(made)} articles, {HIGH_VOCABULARY:,}-word Zipf vocabulary; "
        f"rules: AND of 2 words from {len(corpus.pair_words)} held by ~10% of articles, "
        f"or of 3 from {len(corpus.triple_words)} held by ~21%\n"
    )
    columns = (
        "rules", "matches/article", "matcher art/s", "per-rule art/s", "cli s",
        "cli start+compile s", "cli art/s", "cli wall art/s", "cli matching art/s",
        "cli peak MB", "cli lines",
    )  # fmt: skip
    print("| " + " | ".join(columns) + " | targets |")
    print("|---" * (len(columns) + 1) + "|")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write_feed(workdir / "feed.xml", made)
        write_feed(workdir / "empty.xml", [])
        for count in counts:
            result = measure_high(corpus, made, count, workdir)
            verdict = high_verdicts(result)
            cells = [
                f"{result[c]:,.1f}" if result[c] < 100 else f"{result[c]:,.0f}" for c in columns
            ]
            print("| " + " | ".join(cells) + " | " + ", ".join(verdict) + " |", flush=True)
            failed = failed or any(v.startswith("FAIL") for v in verdict)
    return failed

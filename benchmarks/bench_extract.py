"""Page extraction: per-field accuracy on our fixtures, body F1, dates, pages/s, in one run.

Run: .venv/bin/python benchmarks/bench_extract.py [--repeat N] [--aeb AEB_CHECKOUT]
     [--htmldate HTMLDATE_CHECKOUT]

Baselines are measured in the same run: trafilatura.extract(html) plain text, the
library's default, scored against the same expected bodies (token F1 and difflib ratio);
with --aeb, body F1 on scrapinghub's article-extraction-benchmark by its own evaluate.py
(benchmarks/bench_body.py) and pages/s of the full Article against plain
trafilatura.extract on those 181 pages, timed page by page in turn so that a busy machine
slows both alike; with --htmldate, the published day on htmldate's 1,000-page evaluation
set served on loopback, beside htmldate's extensive search (benchmarks/bench_dates.py).
Both checkouts are fetched for the run (github:scrapinghub/article-extraction-benchmark,
github:adbar/htmldate) and never committed.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trafilatura

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.sources.pages import decode_html, extract_article  # noqa: E402

SEEDS = ROOT / "seeds"
PAGE_URL = "https://asiadispatch.example/world/asia/japan/japan-north-korea-held-meeting-in-may/"
CASES = {
    "japan-north-korea-meeting": PAGE_URL,
    "japan-north-korea-meeting.jsonld": PAGE_URL,
    "japan-north-korea-meeting.bare": PAGE_URL + "?utm_source=feed&utm_medium=rss#comments",
    "charset-shift_jis": "https://asiadispatch.example/x/",
    "charset-euc-kr": "https://asiadispatch.example/x/",
    "charset-gb18030": "https://asiadispatch.example/x/",
    "charset-windows-1252": "https://asiadispatch.example/x/",
}
CMS = sorted(path.stem for path in (SEEDS / "pages").glob("cms-*.html"))
_NO_SPACE_SCRIPT = "\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_NO_SPACE_SCRIPT}]|[^\W{_NO_SPACE_SCRIPT}]+")


@dataclass(frozen=True, slots=True)
class Page:
    name: str
    url: str
    content: bytes
    expected: dict[str, Any]

    @property
    def html(self) -> str:
        return decode_html(self.content)

    @property
    def expected_body(self) -> str:
        return "\n".join(block["text"] for block in self.expected["body"])


def load_pages() -> list[Page]:
    cases = dict(CASES)
    for name in CMS:
        expected = json.loads((SEEDS / "expected" / f"{name}.page.json").read_text("utf-8"))
        cases[name] = expected["url"]
    return [
        Page(
            name,
            url,
            (SEEDS / "pages" / f"{name}.html").read_bytes(),
            json.loads((SEEDS / "expected" / f"{name}.page.json").read_text(encoding="utf-8")),
        )
        for name, url in cases.items()
    ]


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.casefold())


def token_f1(got: str, want: str) -> float:
    got_tokens, want_tokens = Counter(tokens(got)), Counter(tokens(want))
    overlap = sum((got_tokens & want_tokens).values())
    if not overlap:
        return 0.0
    precision = overlap / sum(got_tokens.values())
    recall = overlap / sum(want_tokens.values())
    return 2 * precision * recall / (precision + recall)


def similarity(got: str, want: str) -> float:
    return difflib.SequenceMatcher(None, got, want, autojunk=False).ratio()


def ours(page: Page) -> dict[str, Any]:
    source = "cms" if page.name.startswith("cms-") else "asia-dispatch"
    return extract_article(page.html, url=page.url, source=source).to_json()


def trafilatura_plain(page: Page) -> str:
    return trafilatura.extract(page.html) or ""


def pages_per_second(
    works: list[Callable[[Page], object]], pages: list[Page], repeat: int
) -> list[float]:
    """Pages/s of each of `works`, each page through all of them in turn (so that a busy
    machine slows them alike)."""
    spent = [0.0] * len(works)
    for _ in range(repeat):
        for page in pages:
            for i, work in enumerate(works):
                start = time.perf_counter()
                work(page)
                spent[i] += time.perf_counter() - start
    return [repeat * len(pages) / seconds for seconds in spent]


def field_accuracy(pages: list[Page]) -> None:
    results = {page.name: ours(page) for page in pages}
    fields = list(pages[0].expected)
    print(f"{'field':<10} accuracy  misses")
    for field in fields:
        misses = [p.name for p in pages if results[p.name][field] != p.expected[field]]
        share = 1 - len(misses) / len(pages)
        print(f"{field:<10} {share:7.0%}   {', '.join(misses) or '-'}")


def body_scores(pages: list[Page]) -> None:
    print(f"\n{'page':<36} {'ours F1':>8} {'ratio':>6} {'trafilatura F1':>15} {'ratio':>6}")
    totals = [0.0, 0.0, 0.0, 0.0]
    for page in pages:
        mine = "\n".join(block["text"] for block in ours(page)["body"])
        theirs = trafilatura_plain(page)
        want = page.expected_body
        scores = [
            token_f1(mine, want),
            similarity(mine, want),
            token_f1(theirs, want),
            similarity(theirs, want),
        ]
        totals = [total + score for total, score in zip(totals, scores, strict=True)]
        print(
            f"{page.name:<36} {scores[0]:8.3f} {scores[1]:6.3f} {scores[2]:15.3f} {scores[3]:6.3f}"
        )
    mean = [total / len(pages) for total in totals]
    print(f"{'mean':<36} {mean[0]:8.3f} {mean[1]:6.3f} {mean[2]:15.3f} {mean[3]:6.3f}")


def pathological() -> None:
    cases = {
        "5 MB of nested divs": "<html><body>" + "<div>" * 500_000 + "x" + "</div>" * 500_000,
        "200k paragraphs": "<html><body><article>"
        + "".join(f"<p>Paragraph {i} holds an ordinary sentence.</p>" for i in range(200_000)),
        "5 MB in one paragraph": "<html><body><p>" + "word " * 1_000_000,
    }
    print()
    for name, html in cases.items():
        start = time.perf_counter()
        extract_article(html, url="https://example.com/a", source="s")
        print(f"{name:<24} {time.perf_counter() - start:6.2f} s")


def interleaved_rates(checkout: Path, repeat: int) -> tuple[float, float]:
    """Pages/s of the full Article and of plain trafilatura.extract on the benchmark pages,
    each page through both in turn (after one warm-up pass)."""
    from bench_body import load_body_pages

    pages = load_body_pages(checkout)
    for page in pages[:3]:
        extract_article(page.html, url=page.url, source="aeb")
        trafilatura.extract(page.html, include_comments=False)
    mine = theirs = 0.0
    for _ in range(repeat):
        for page in pages:
            start = time.perf_counter()
            extract_article(page.html, url=page.url, source="aeb")
            middle = time.perf_counter()
            trafilatura.extract(page.html, include_comments=False)
            mine, theirs = mine + middle - start, theirs + time.perf_counter() - middle
    count = repeat * len(pages)
    return count / mine, count / theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=10, help="passes over the pages for pages/s")
    parser.add_argument("--aeb", type=Path, default=None, help="article-extraction-benchmark")
    parser.add_argument("--htmldate", type=Path, default=None, help="htmldate checkout")
    args = parser.parse_args()
    pages = load_pages()
    field_accuracy(pages)
    body_scores(pages)
    mine, theirs = pages_per_second([ours, trafilatura_plain], pages, args.repeat)
    print(f"\npages/s, each page through both in turn: ours (decode + full Article) {mine:.1f},")
    print(f"  trafilatura.extract plain {theirs:.1f} (ratio {mine / theirs:.2f})")
    if args.aeb is not None:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_body import report as body_report

        body_report(args.aeb)
        mine, theirs = interleaved_rates(args.aeb, max(1, args.repeat // 5))
        print(
            f"pages/s on the benchmark pages, in turn: full Article {mine:.1f},"
            f" trafilatura.extract {theirs:.1f} (ratio {mine / theirs:.2f})"
        )
    if args.htmldate is not None:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_dates import report as dates_report

        dates_report(args.htmldate)
    pathological()


if __name__ == "__main__":
    main()

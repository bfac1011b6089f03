"""Page extraction over the fixture pages: per-field accuracy, pages/s, body vs trafilatura.

Run: /work/venv/bin/python benchmarks/bench_extract.py [--repeat N]

The baseline is measured in the same run: trafilatura.extract(html) plain text, the
library's default, scored against the same expected bodies (token F1 and difflib ratio).
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
    return [
        Page(
            name,
            url,
            (SEEDS / "pages" / f"{name}.html").read_bytes(),
            json.loads((SEEDS / "expected" / f"{name}.page.json").read_text(encoding="utf-8")),
        )
        for name, url in CASES.items()
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
    return extract_article(page.html, url=page.url, source="asia-dispatch").to_json()


def trafilatura_plain(page: Page) -> str:
    return trafilatura.extract(page.html) or ""


def pages_per_second(work: Callable[[Page], object], pages: list[Page], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for page in pages:
            work(page)
    return repeat * len(pages) / (time.perf_counter() - start)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=10, help="passes over the pages for pages/s")
    args = parser.parse_args()
    pages = load_pages()
    field_accuracy(pages)
    body_scores(pages)
    print(
        f"\npages/s ours (decode + full Article): {pages_per_second(ours, pages, args.repeat):.1f}"
    )
    rate = pages_per_second(trafilatura_plain, pages, args.repeat)
    print(f"pages/s trafilatura.extract plain:   {rate:.1f}")
    pathological()


if __name__ == "__main__":
    main()

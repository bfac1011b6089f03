"""Body text on scrapinghub's article-extraction-benchmark, scored by its own evaluate.py.

Run: .venv/bin/python benchmarks/bench_body.py AEB_CHECKOUT [--keep DIR]

AEB_CHECKOUT is a checkout of github:scrapinghub/article-extraction-benchmark (fetched for
the run, never committed): html/*.html.gz (181 pages), ground-truth.json, evaluate.py.
In the same run we write output/ours.json (the Article's body blocks, one per line) and
output/trafilatura.json (plain trafilatura.extract, as the benchmark's own
extractors/run_trafilatura.py calls it) into a scratch directory beside a copy of the
ground truth and run the benchmark's evaluate.py there, unchanged. Printed: its table
(F1, precision, recall, accuracy), pages whose body came out empty, and pages/s.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trafilatura

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.sources.pages import extract_article  # noqa: E402


@dataclass(frozen=True, slots=True)
class BodyPage:
    key: str
    url: str
    html: str


def load_body_pages(checkout: Path) -> list[BodyPage]:
    truth = json.loads((checkout / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for path in sorted((checkout / "html").glob("*.html.gz")):
        key = path.name.split(".")[0]
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            pages.append(BodyPage(key, str(truth.get(key, {}).get("url") or ""), handle.read()))
    return pages


def ours(page: BodyPage) -> str:
    """The Article's body blocks, one a line (the lede is a field of its own)."""
    article = extract_article(page.html, url=page.url, source="aeb")
    return "\n".join(block.text for block in article.body)


def trafilatura_plain(page: BodyPage) -> str:
    return trafilatura.extract(page.html, include_comments=False) or ""


EXTRACTORS: dict[str, Callable[[BodyPage], str]] = {
    "ours": ours,
    "trafilatura": trafilatura_plain,
}


def run(pages: list[BodyPage], work: Callable[[BodyPage], str]) -> tuple[dict[str, str], float]:
    start = time.perf_counter()
    out = {page.key: work(page) for page in pages}
    return out, len(pages) / (time.perf_counter() - start)


def report(checkout: Path, keep: Path | None = None) -> dict[str, float]:
    pages = load_body_pages(checkout)
    scratch = Path(tempfile.mkdtemp(prefix="aeb-"))
    rates: dict[str, float] = {}
    try:
        (scratch / "output").mkdir()
        shutil.copy(checkout / "ground-truth.json", scratch / "ground-truth.json")
        empty: dict[str, list[str]] = {}
        for name, work in EXTRACTORS.items():
            out, rates[name] = run(pages, work)
            empty[name] = [key for key, text in out.items() if not text.strip()]
            data = {key: {"articleBody": text} for key, text in out.items()}
            (scratch / "output" / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
        print(f"\nbody on article-extraction-benchmark ({len(pages)} pages), its evaluate.py:")
        result = subprocess.run(
            [sys.executable, str(checkout / "evaluate.py"), "--output", "metrics.json"],
            cwd=scratch,
            capture_output=True,
            text=True,
            check=True,
        )
        print(result.stdout.rstrip())
        for name in EXTRACTORS:
            keys = ", ".join(empty[name]) or "-"
            print(f"empty pages {name}: {len(empty[name])} {keys}")
            print(f"pages/s {name}: {rates[name]:.1f}")
        metrics = json.loads((scratch / "metrics.json").read_text(encoding="utf-8"))
        if keep is not None:
            shutil.copytree(scratch, keep, dirs_exist_ok=True)
        return {name: float(metrics[name]["f1"]) for name in EXTRACTORS}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("checkout", type=Path, help="a checkout of the benchmark")
    parser.add_argument("--keep", type=Path, default=None, help="copy outputs here")
    args = parser.parse_args()
    report(args.checkout, args.keep)


if __name__ == "__main__":
    main()

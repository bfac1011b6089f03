"""Publication dates on htmldate's evaluation set: our Article.published against htmldate.

Run: .venv/bin/python benchmarks/bench_dates.py HTMLDATE_CHECKOUT [--limit N] [--misses]

HTMLDATE_CHECKOUT is a checkout of github:adbar/htmldate (fetched for the run, never
committed); its tests/eval_default.json and tests/eval_mediacloud_2020.json list 1,000
pages with hand-checked dates, the pages are in tests/{test_set,cache,eval}/. Every page
is served on 127.0.0.1 at its original path and query (so a date in the URL counts as it
would live) and fetched from there; then, on the same bytes and the same URL:

- ours: extract_article(...).published, its day (UTC, as the Article states it);
- htmldate: find_date(html, url=..., original_date=True, extensive_search=True), and the
  same without the URL, as htmldate's own tests/evaluation.py calls it.

A page counts as right when the day equals the reference day. Printed: right, wrong,
none, and pages/s of each.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from htmldate import find_date

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.sources.charset import decode_html  # noqa: E402
from monitor.sources.pages import extract_article  # noqa: E402

EVAL_FILES = ("eval_mediacloud_2020.json", "eval_default.json")
PAGE_DIRS = ("test_set", "cache", "eval")


@dataclass(frozen=True, slots=True)
class DatePage:
    original_url: str
    path: str
    content: bytes
    expected: str | None


@dataclass(frozen=True, slots=True)
class Served:
    page: DatePage
    url: str
    content: bytes
    content_type: str


def load_date_pages(checkout: Path, limit: int | None = None) -> list[DatePage]:
    tests = checkout / "tests" if (checkout / "tests").is_dir() else checkout
    reference: dict[str, dict[str, Any]] = {}
    for name in EVAL_FILES:
        reference.update(json.loads((tests / name).read_text(encoding="utf-8")))
    pages = []
    for url, item in reference.items():
        for directory in PAGE_DIRS:
            path = tests / directory / item["file"]
            if path.is_file():
                parts = urlsplit(url)
                where = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                where = quote(where, safe="/?&=%:+,;@!$*'()~")
                pages.append(DatePage(url, where, path.read_bytes(), item.get("date")))
                break
    return pages[:limit] if limit else pages


def _key(path: str) -> str:
    """The lookup key of a request path (http.server folds a leading "//" into "/")."""
    return "/" + unquote(path).lstrip("/")


def _groups(pages: list[DatePage]) -> Iterator[dict[str, DatePage]]:
    """Pages split so that no two in one group share a path (one server per group)."""
    groups: list[dict[str, DatePage]] = []
    for page in pages:
        for group in groups:
            if _key(page.path) not in group:
                group[_key(page.path)] = page
                break
        else:
            groups.append({_key(page.path): page})
    yield from groups


def _server(group: dict[str, DatePage]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = group.get(_key(self.path))
            if page is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page.content)))
            self.end_headers()
            self.wfile.write(page.content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def fetch_all(pages: list[DatePage]) -> list[Served]:
    """Every page served on loopback at its path and fetched back over HTTP."""
    served: list[Served] = []
    servers = []
    try:
        for group in _groups(pages):
            server = _server(group)
            servers.append(server)
            base = f"http://127.0.0.1:{server.server_address[1]}"
            for page in group.values():
                try:
                    response = urllib.request.urlopen(base + page.path, timeout=30)
                except OSError as error:
                    print(f"  cannot fetch {page.original_url}: {error}", file=sys.stderr)
                    continue
                with response:
                    content = response.read()
                    content_type = response.headers.get("Content-Type", "")
                served.append(Served(page, base + page.path, content, content_type))
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    return served


_STATED = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?"
    r"|(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}"
)


def ours(item: Served, now: datetime) -> str | None:
    html = decode_html(item.content, item.content_type)
    article = extract_article(html, url=item.url, source="eval", now=now)
    return article.published.isoformat() if article.published else None


def local_day(item: Served, instant: str) -> str:
    """The day of `instant` as the page states it (the Article keeps UTC; the reference day
    is the page's own): in the offset of a page datetime naming the same instant (ISO 8601
    or RFC 2822; a non-zero offset before a UTC one, which is a serialization), else in
    the page's wall clock: a datetime without offset showing the instant's minutes and
    seconds at a whole quarter-hour offset within UTC-12..+14 (not for a bare day)."""
    moment = datetime.fromisoformat(instant)
    html = decode_html(item.content, item.content_type)
    zoned: list[datetime] = []
    walls: list[datetime] = []
    for match in _STATED.finditer(html):
        text = match.group(0)
        try:
            if text[0].isalpha():
                stated = parsedate_to_datetime(text)
            else:
                stated = datetime.fromisoformat(text.replace(" ", "T"))
        except (TypeError, ValueError):
            continue
        if stated.tzinfo is not None and stated == moment:
            zoned.append(stated)
        elif stated.tzinfo is None:
            walls.append(stated)
    zoned.sort(key=lambda stated: stated.utcoffset() == timedelta(0))
    if zoned:
        return zoned[0].date().isoformat()
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    for wall in walls if naive.time() != clock.min else ():  # midnight: a day, not a time
        offset = wall - naive
        if (
            offset != timedelta(0)
            and timedelta(hours=-12) <= offset <= timedelta(hours=14)
            and offset % timedelta(minutes=15) == timedelta(0)
        ):
            return wall.date().isoformat()
    return moment.date().isoformat()


def htmldate_with_url(item: Served, now: datetime) -> str | None:
    html = decode_html(item.content, item.content_type)
    return find_date(html, url=item.url, original_date=True, extensive_search=True)


def htmldate_as_its_eval(item: Served, now: datetime) -> str | None:
    html = decode_html(item.content, item.content_type)
    return find_date(html, original_date=True, extensive_search=True)


RUNNERS: dict[str, Callable[[Served, datetime], str | None]] = {
    "ours (Article.published)": ours,
    "htmldate extensive + url": htmldate_with_url,
    "htmldate extensive": htmldate_as_its_eval,
}


def score(
    served: list[Served], now: datetime, runner: Callable[[Served, datetime], str | None]
) -> tuple[dict[str, int], float, dict[str, str | None]]:
    counts = {"right": 0, "wrong": 0, "none": 0}
    zoned = [0]
    found: dict[str, str | None] = {}
    elapsed = 0.0
    for item in served:
        start = time.perf_counter()
        try:
            day = runner(item, now)
        except Exception as error:
            print(f"  error on {item.page.original_url}: {error!r}", file=sys.stderr)
            day = None
        elapsed += time.perf_counter() - start
        if day is not None and len(day) > 10:
            day, stated = day[:10], local_day(item, day)
            zoned[0] += stated == item.page.expected
        elif day is not None:
            zoned[0] += day == item.page.expected
        found[item.page.original_url] = day
        if day is None:
            counts["none"] += 1
        elif day == item.page.expected:
            counts["right"] += 1
        else:
            counts["wrong"] += 1
    counts["right in page zone"] = zoned[0]
    return counts, len(served) / elapsed, found


def report(checkout: Path, limit: int | None = None, misses: bool = False) -> dict[str, int]:
    pages = load_date_pages(checkout, limit)
    served = fetch_all(pages)
    now = datetime.now(UTC)
    print(f"\ndates on htmldate's evaluation set: {len(served)} pages served on 127.0.0.1")
    print(f"{'':<26} {'right':>6} {'wrong':>6} {'none':>6} {'pages/s':>8} {'right, page zone':>17}")
    results: dict[str, dict[str, str | None]] = {}
    rights: dict[str, int] = {}
    for name, runner in RUNNERS.items():
        counts, rate, found = score(served, now, runner)
        results[name] = found
        rights[name] = counts["right"]
        print(
            f"{name:<26} {counts['right']:6d} {counts['wrong']:6d} {counts['none']:6d}"
            f" {rate:8.1f} {counts['right in page zone']:17d}"
        )
    if misses:
        mine, theirs = results["ours (Article.published)"], results["htmldate extensive + url"]
        for item in served:
            key, want = item.page.original_url, item.page.expected
            if mine[key] != want and theirs[key] == want:
                print(f"  lost: {key} want {want} ours {mine[key]} file {item.page.path}")
            elif mine[key] == want and theirs[key] != want:
                print(f"  won:  {key} want {want} htmldate {theirs[key]}")
    return rights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("checkout", type=Path, help="a checkout of adbar/htmldate")
    parser.add_argument("--limit", type=int, default=None, help="only the first N pages")
    parser.add_argument("--misses", action="store_true", help="list pages won and lost")
    args = parser.parse_args()
    report(args.checkout, args.limit, args.misses)


if __name__ == "__main__":
    main()

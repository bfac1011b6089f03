"""One huge feed through the real Service and SqliteStore: a first cycle, then a re-poll.

    python benchmarks/bench_bigfeed.py                      # 200,000 items (~9.9 MB)
    python benchmarks/bench_bigfeed.py --items 20000        # quick
    python benchmarks/bench_bigfeed.py --items 100000 --dated   # items carry a pubDate
    python benchmarks/bench_bigfeed.py --monitor-src DIR    # another checkout's code, e.g.
        git archive main | tar -x -C /tmp/main-src  (then --monitor-src /tmp/main-src)

The feed is plain RSS 2.0 served on 127.0.0.1 without validators, so the re-poll gets the
same body with a 200 (an unchanged feed whose server sends no ETag). Items are as short as
the issue's (a title and a relative link, no date: 200,000 fit under the 10 MiB fetch cap);
one in 500 mentions Japan, which the one rule matches. Each cycle runs in a child process of
its own (`--child`), on one SQLite file: the first cycle against an empty database, the
re-poll after it. A child reports wall time, CPU seconds (user + sys), peak RSS and the
longest stall of its event loop, measured by a ticker task that asks to wake every 10 ms and
records how late it woke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TICK = 0.01


def big_feed(items: int, *, dated: bool = False) -> bytes:
    """RSS 2.0 with `items` short items (a title and a relative link, ~50 bytes each; with
    `dated`, also a pubDate, one a minute back from now, ~90 bytes)."""
    parts = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
             "<title>Big</title><link>http://big.example/</link>"]  # fmt: skip
    now = datetime.now(UTC)
    for n in range(items):
        key = _base36(n)
        title = f"Japan {key}" if n % 500 == 0 else key
        date = ""
        if dated:
            date = f"<pubDate>{format_datetime(now - timedelta(minutes=n), usegmt=True)}</pubDate>"
        parts.append(f"<item><title>{title}</title><link>/{key}</link>{date}</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        n, digit = divmod(n, 36)
        text = digits[digit] + text
        if not n:
            return text


def serve(body: bytes) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/big.rss"


# -- the child: one cycle ---------------------------------------------------------------------


def child(url: str, database: str) -> dict[str, float]:
    from monitor.adapters.fetch import HttpFetcher
    from monitor.adapters.store.sqlite import SqliteStore
    from monitor.config.schema import Config, Rule, Settings, Source, Target
    from monitor.daemon import build_service
    from monitor.rules import compile_query
    from monitor.state import SendResult

    class Quiet:
        def send(self, target: str, title: str, body: str, body_format: str = "m") -> SendResult:
            return SendResult(True)

    settings = Settings(database, (), timedelta(minutes=15), timedelta(hours=24), "bench/1")
    rule = Rule("japan", compile_query("Japan"), ("t",))
    source = Source("big", url, timedelta(minutes=15))
    config = Config("bench", settings, {"t": Target("t", "json://x")}, (source,), (rule,))
    store = SqliteStore(database)
    longest = 0.0

    async def ticker() -> None:
        nonlocal longest
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(TICK)
            longest = max(longest, time.perf_counter() - asked - TICK)

    async def cycle() -> None:
        fetcher = HttpFetcher("bench/1", host_gap=0)
        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        try:
            service = build_service(config, fetcher, store, Quiet())
            reports = await service.poll_all(ignore_interval=True)
            assert all(r.ok for r in reports), reports
            await service.deliver(due_only=False)
        finally:
            ticking.cancel()
            await fetcher.aclose()

    started, cpu_started = time.perf_counter(), time.process_time()
    asyncio.run(cycle())
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    stored = store.db.execute("SELECT count(*) FROM articles").fetchone()[0]
    store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall": wall, "cpu": cpu, "peak_mb": peak, "stall": longest, "stored": stored}


# -- the parent -------------------------------------------------------------------------------


def run_cycle(url: str, database: str, src: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, __file__, "--child", url, database]
    output = subprocess.run(command, env=env, cwd=src, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dated", action="store_true", help="give every item a pubDate")
    parser.add_argument("--monitor-src", type=Path, default=REPO)
    parser.add_argument("--child", nargs=2, metavar=("URL", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    body = big_feed(args.items, dated=args.dated)
    server, url = serve(body)
    dated = ", dated" if args.dated else ""
    print(f"{args.items:,} items{dated}, {len(body) / 1e6:.1f} MB, code from {args.monitor_src}")
    print(f"{'cycle':<8} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'stall s':>8} {'stored':>8}")
    try:
        with tempfile.TemporaryDirectory() as work:
            database = str(Path(work) / "bench.db")
            for name in ("first", "re-poll"):
                r = run_cycle(url, database, args.monitor_src.resolve())
                print(f"{name:<8} {r['wall']:7.2f} {r['cpu']:7.2f} {r['peak_mb']:8.0f}"
                      f" {r['stall']:8.2f} {r['stored']:8,.0f}")  # fmt: skip
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the web server costs, and how fast its pages answer (issue #16 item 6).

    python benchmarks/bench_web.py                     # both parts, defaults below
    python benchmarks/bench_web.py --feeds 2000 --rounds 3
    python benchmarks/bench_web.py --skip-cycle        # only the page timings

Part 1, the fetch cycle with and without [web], in the same run: one cold cycle over the
feed farm (every feed answers 200) made in this process by the daemon's own Service, once
plain and once with the web server in the same event loop, its metrics wrappers on the
fetcher and notifier, and a client scraping /metrics and / every 0.5 s throughout. Rounds
alternate (plain, web, plain, web, ...) so drift hits both; medians of wall and CPU time.

Part 2, page times over a big store: 10,000 sources (10% failing), 100,000 matches of as
many articles, dead and pending deliveries. Each page is asked --requests times over one
keep-alive connection; /healthz (nothing to read) is the baseline. Target: every dashboard
page under 100 ms (median and p95). With --postgres SERVER_URL, part 2 runs over SQLite and
then over PostgreSQL (a throwaway database on that server, dropped after), in the same run.

    python benchmarks/bench_web.py --skip-cycle --postgres postgresql://postgres@127.0.0.1:5432
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feed_farm import start_farm, write_monitor_config

from monitor.adapters.fetch import HttpFetcher
from monitor.adapters.notify import AppriseNotifier
from monitor.adapters.store.select import open_store
from monitor.adapters.store.sqlite import SqliteStore
from monitor.config.files import load_config
from monitor.config.schema import Config
from monitor.daemon import build_service
from monitor.model import Article, Block
from monitor.ports import StoreBackend
from monitor.state import Delivery, MatchRecord, SourceState
from monitor.web.app import WebContext
from monitor.web.metrics import MeasuredFetcher, MeasuredNotifier, Metrics
from monitor.web.server import WebServer

TARGET_MS = 100.0
NOW = datetime.now(UTC)  # the store's times around the real clock: /readyz reads it


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def context_for(config: Config, store: StoreBackend, metrics: Metrics) -> WebContext:
    return WebContext(
        config=config,
        store=store,
        directory=AppriseNotifier({n: t.url for n, t in config.targets.items()}),
        metrics=metrics,
        scheduler_running=lambda: True,
        wake_outbox=lambda: None,
        tester_fetcher=lambda: HttpFetcher("bench", public_only=True),
        started_at=NOW,
    )


# Part 1


def scrape_until(stop: threading.Event, base: str, counts: list[int]) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        while not stop.is_set():
            for path in ("/metrics", "/"):
                client.get(path).raise_for_status()
                counts[0] += 1
            stop.wait(0.5)


async def one_cycle(config: Config, web: bool) -> tuple[float, float, int]:
    store = SqliteStore(config.settings.database)
    fetcher = HttpFetcher(config.settings.user_agent)
    notifier = AppriseNotifier({n: t.url for n, t in config.targets.items()})
    server = None
    stop = threading.Event()
    counts = [0]
    scraper = None
    if web:
        metrics = Metrics(config.targets)
        service = build_service(
            config, MeasuredFetcher(fetcher, metrics), store, MeasuredNotifier(notifier, metrics)
        )
        server = WebServer(context_for(config, store, metrics), "127.0.0.1", 0)
        await server.start()
        base = f"http://127.0.0.1:{server.port}"
        scraper = threading.Thread(target=scrape_until, args=(stop, base, counts), daemon=True)
    else:
        service = build_service(config, fetcher, store, notifier)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if scraper is not None:
        scraper.start()
    reports = await service.poll_all(ignore_interval=True)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    stop.set()
    if scraper is not None:
        await asyncio.to_thread(scraper.join, 30)
    if server is not None:
        await server.stop()
    await fetcher.aclose()
    store.close()
    failed = sum(not r.ok for r in reports)
    if failed:
        print(f"  warning: {failed} of {len(reports)} polls failed")
    return wall, cpu, counts[0]


def part_cycle(feeds: int, rounds: int) -> None:
    port = free_port()
    print(f"fetch cycle: {feeds} feeds, cold (all 200), {rounds} rounds of plain vs web")
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with start_farm(feeds, port=port) as farm, tempfile.TemporaryDirectory() as tmp:
        urls = [farm.url(i) for i in range(feeds)]
        for round_ in range(rounds):
            for web in (False, True):
                farm.control("reset")
                work = Path(tmp) / f"r{round_}-{'web' if web else 'plain'}"
                config = load_config(str(write_monitor_config(work, urls)), env={})
                wall, cpu, scrapes = asyncio.run(one_cycle(config, web))
                results[web].append((wall, cpu))
                extra = f", {scrapes} pages served meanwhile" if web else ""
                print(f"  round {round_ + 1} {'web  ' if web else 'plain'}: wall {wall:6.2f} s,"
                      f" cpu {cpu:6.2f} s{extra}")  # fmt: skip
    for web in (False, True):
        walls = [w for w, _ in results[web]]
        cpus = [c for _, c in results[web]]
        print(f"  median {'web  ' if web else 'plain'}: wall {statistics.median(walls):6.2f} s,"
              f" cpu {statistics.median(cpus):6.2f} s")  # fmt: skip
    plain = statistics.median(w for w, _ in results[False])
    with_web = statistics.median(w for w, _ in results[True])
    print(f"  web / plain wall: {with_web / plain:.3f}")


# Part 2


def fill_big(store: StoreBackend, config: Config, matches: int) -> None:
    for index, source in enumerate(config.sources):
        failing = index % 10 == 0
        store.save_state(
            SourceState(source.name, source.url, last_fetch_at=NOW - timedelta(minutes=3),
                        last_ok_at=None if failing else NOW, error_count=3 if failing else 0,
                        last_result="HTTP 503" if failing else "ok: 2 new",
                        next_fetch_at=NOW + timedelta(minutes=12), items_seen=40)
        )  # fmt: skip
    names = [s.name for s in config.sources]
    batch = 2000
    for start in range(0, matches, batch):
        articles, records, deliveries = [], [], []
        for n in range(start, min(start + batch, matches)):
            source = names[n % len(names)]
            articles.append(Article(
                id=f"a{n}", url=f"https://{source}.example/{n}", source=source,
                title=f"Japan and North Korea hold summit, part {n}",
                lede="Leaders of Japan and North Korea met at a summit on the abduction issue.",
                body=(Block("paragraph", "The summit in Pyongyang lasted two days. " * 8),),
            ))  # fmt: skip
            story = f"a{n - n % 3}"
            records.append(MatchRecord(f"a{n}", "bench", ("Japan", "north korea"),
                                       NOW - timedelta(seconds=matches - n), story,
                                       source=source, explanation="Japan (title)"))  # fmt: skip
            if n % 500 == 0:
                deliveries.append(Delivery(f"d{n}", f"a{n}", "bench", "console", "t", "b",
                                           NOW, next_attempt_at=NOW))  # fmt: skip
        state = store.source_state(names[0])
        assert state is not None
        store.save_poll(state, articles, records, deliveries, NOW)
        for delivery in deliveries[: len(deliveries) // 2]:
            store.mark_dead(delivery.id, "HTTP 500", NOW)


@contextmanager
def postgres_database(server: str) -> Iterator[str]:
    """A throwaway database on `server` (its URL), dropped afterwards."""
    import psycopg

    name = f"nm_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def part_pages(
    sources: int, matches: int, requests: int, database: Callable[[Config], str] | None = None
) -> None:
    backend = "SQLite" if database is None else "PostgreSQL"
    print(f"pages ({backend}): {sources} sources, {matches} matches, {requests} requests a page")
    with tempfile.TemporaryDirectory() as tmp:
        urls = [f"https://feed-{i:05d}.example/rss" for i in range(sources)]
        config = load_config(str(write_monitor_config(Path(tmp), urls)), env={})
        store = open_store(config.settings.database if database is None else database(config))
        started = time.perf_counter()
        fill_big(store, config, matches)
        print(f"  filled the store in {time.perf_counter() - started:.1f} s")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        server = WebServer(context_for(config, store, Metrics(config.targets)), "127.0.0.1", 0)
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
        pages = ["/healthz", "/", "/?show=failing", "/?q=feed-0999", "/?page=50", "/readyz",
                 "/metrics", "/rules/test"]  # fmt: skip
        worst = 0.0
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client:
            for path in pages:
                client.get(path).raise_for_status()  # warm
                times = []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    response = client.get(path)
                    times.append((time.perf_counter() - t0) * 1000)
                    assert response.status_code == 200, (path, response.status_code)
                times.sort()
                p95 = times[max(0, int(len(times) * 0.95) - 1)]
                median = statistics.median(times)
                if path != "/healthz":
                    worst = max(worst, p95)
                size = len(response.content) // 1024
                print(f"  {path:18} median {median:7.1f} ms   p95 {p95:7.1f} ms"
                      f"   max {times[-1]:7.1f} ms   {size} KiB")  # fmt: skip
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        store.close()
        verdict = "OK" if worst < TARGET_MS else "OVER"
        print(f"  worst p95 of the pages: {worst:.1f} ms (target < {TARGET_MS:.0f} ms): {verdict}")


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # the farm's deliberate failures are not news
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--matches", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--skip-cycle", action="store_true")
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--postgres", metavar="SERVER_URL", help="also part 2 on PostgreSQL")
    args = parser.parse_args()
    if not args.skip_cycle:
        part_cycle(args.feeds, args.rounds)
    if not args.skip_pages:
        part_pages(args.sources, args.matches, args.requests)
        if args.postgres:
            with postgres_database(args.postgres.rstrip("/")) as url:
                part_pages(args.sources, args.matches, args.requests, lambda _: url)


if __name__ == "__main__":
    main()

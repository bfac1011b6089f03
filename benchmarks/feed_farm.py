"""A farm of RSS feeds on loopback for fetch benchmarks (issue #5 item 7).

Every feed is deterministic for its index and the seed. A feed belongs to one class:

  unchanged  85%  answers 304 to a request that sends its current validators
  changed    10%  likewise, but `POST /_control/bump` publishes new items (new ETag)
  slow        3%  answers like `unchanged`, after a 2 s delay
  error       2%  answers 500, 404, or resets the connection

A request without validators (or with stale ones) gets 200 and the whole body: valid RSS 2.0
of 5 to 500 KB (log-uniform) of news text, items with guids and titles of their own per feed.
Feeds are spread round-robin over `hosts` loopback addresses (127.0.0.1, 127.0.0.2, ...,
127.0.1.1, ...; all of 127.0.0.0/8 is loopback on Linux) on one port, so per-host limits act
as they would on the real web.

Control endpoints, on the first host only:
  POST /_control/bump   changed feeds publish new items (version + 1)
  POST /_control/reset  every feed back to version 0, counters cleared
  GET  /_control/stats  JSON: requests by status, bytes served, the farm's CPU seconds

Standalone:  python benchmarks/feed_farm.py --feeds 10000 --port 8765
Library:     start_farm(...) runs it in a subprocess; write_monitor_config(...) writes a
             news-monitor config for its feeds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Literal

from aiohttp import web

__all__ = [
    "FarmProcess",
    "FeedFarm",
    "FeedSpec",
    "control",
    "feed_specs",
    "feed_url",
    "start_farm",
    "write_monitor_config",
]

FeedClass = Literal["unchanged", "changed", "slow", "error"]
ErrorKind = Literal["500", "404", "reset"]

CLASS_SHARES: tuple[tuple[FeedClass, float], ...] = (
    ("changed", 0.10),
    ("slow", 0.03),
    ("error", 0.02),
)
MIN_BODY, MAX_BODY = 5_000, 500_000
SLOW_DELAY = 2.0
DEFAULT_PORT = 8765
DEFAULT_HOSTS = 8
DEFAULT_SEED = 7

PARAGRAPHS = (
    "Officials said the talks would resume next week after negotiators failed to agree on a "
    "timetable for the withdrawal of troops from the disputed border region. Both delegations "
    "described the atmosphere as constructive, though neither side offered details on the "
    "sticking points that remain.",
    "The central bank left its benchmark interest rate unchanged on Thursday, citing persistent "
    "uncertainty over energy prices and a labour market that has cooled more slowly than "
    "expected. Analysts had widely anticipated the decision, and markets barely moved.",
    "Rescue teams worked through the night to reach villages cut off by the flooding, which has "
    "displaced more than twelve thousand people across three provinces. The weather service "
    "warned that more heavy rain is expected before the weekend.",
    "The opposition leader called for an independent inquiry into the procurement contracts, "
    "saying the government had failed to explain why several tenders were awarded without "
    "competition. A ministry spokesperson rejected the accusations as politically motivated.",
    "Shares in the carmaker fell sharply after it cut its annual forecast, blaming weaker demand "
    "in Europe and higher costs for batteries. The company said it would delay the launch of "
    "two electric models and review its investment plans for the coming year.",
    "Scientists reported that the glacier had retreated by almost forty metres since the last "
    "survey, a pace they described as alarming. The findings add to a growing body of evidence "
    "that mountain ice in the region is melting faster than models predicted.",
    "North Korea fired a ballistic missile into the sea off its east coast on Tuesday, the "
    "military said, the latest in a series of launches this year. The United Nations Security "
    "Council is expected to discuss the test at a closed-door meeting.",
    "The festival, which drew more than two hundred thousand visitors last year, will return to "
    "its original venue after renovation work on the riverside park was completed ahead of "
    "schedule. Organisers promised a programme with more local performers.",
    "Health authorities urged residents to get vaccinated before the winter season, as hospital "
    "admissions for respiratory infections rose for the third consecutive week. Clinics will "
    "extend their opening hours to cope with demand.",
    "Union representatives said the strike would go ahead unless management improved its offer "
    "on wages and working hours. Commuters were advised to expect severe disruption on the rail "
    "network and to work from home where possible.",
)
MATCH_PARAGRAPH = (
    "Japan and North Korea held rare talks in a third country on the fate of citizens abducted "
    "decades ago, officials in Tokyo said, adding that the discussions were frank but that no "
    "agreement had been reached on a further meeting."
)
HEADLINES = (
    "Talks on border withdrawal to resume next week",
    "Central bank holds rates amid energy uncertainty",
    "Floods cut off villages as rescue teams work through the night",
    "Opposition demands inquiry into procurement contracts",
    "Carmaker shares slide after forecast cut",
    "Glacier retreat accelerates, survey finds",
    "Missile launch prompts Security Council meeting",
    "Riverside festival returns to renovated park",
    "Health officials urge vaccination before winter",
    "Rail strike threatens week of disruption",
)
MATCH_HEADLINE = "Japan and North Korea hold rare talks on abductions"
MATCH_SHARE = 0.01
ITEM_BYTES = 3_000
MIN_ITEMS, MAX_ITEMS = 5, 100


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """What feed `index` (1-based) is and does; all of it follows from the seed."""

    index: int
    klass: FeedClass
    size: int
    items: int
    new_per_bump: int
    step: int  # seconds between two items' publication dates
    error: ErrorKind = "500"


def feed_specs(feeds: int, seed: int = DEFAULT_SEED) -> list[FeedSpec]:
    """The specs of feeds 1..`feeds`: exact class shares, shuffled with `seed`."""
    classes: list[FeedClass] = []
    for klass, share in CLASS_SHARES:
        classes += [klass] * round(feeds * share)
    classes += ["unchanged"] * (feeds - len(classes))
    random.Random(seed).shuffle(classes)
    specs = []
    errors: tuple[ErrorKind, ...] = ("500", "404", "reset")
    for index, klass in enumerate(classes, start=1):
        rng = random.Random(seed * 1_000_003 + index)
        size = int(math.exp(rng.uniform(math.log(MIN_BODY), math.log(MAX_BODY))))
        specs.append(
            FeedSpec(
                index=index,
                klass=klass,
                size=size,
                items=min(MAX_ITEMS, max(MIN_ITEMS, size // ITEM_BYTES)),
                new_per_bump=rng.randint(1, 5),
                step=rng.randint(1, 12) * 3600,
                error=rng.choice(errors),
            )
        )
    return specs


def host_address(host: int) -> str:
    """The loopback address of host number `host` (0-based): 127.0.0.1, 127.0.0.2, ..."""
    return f"127.0.{host // 250}.{1 + host % 250}"


def feed_host(index: int, hosts: int) -> str:
    return host_address(index % hosts)


def feed_url(index: int, port: int, hosts: int = DEFAULT_HOSTS) -> str:
    return f"http://{feed_host(index, hosts)}:{port}/feeds/{index:05d}.xml"


def _http_date(epoch: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(epoch))


@dataclass(slots=True)
class Stats:
    statuses: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    conditional: int = 0


class FeedFarm:
    """The feeds' state and the aiohttp application that serves them."""

    def __init__(
        self,
        feeds: int,
        *,
        port: int = DEFAULT_PORT,
        hosts: int = DEFAULT_HOSTS,
        seed: int = DEFAULT_SEED,
        slow_delay: float = SLOW_DELAY,
    ) -> None:
        self.specs = feed_specs(feeds, seed)
        self.port = port
        self.hosts = hosts
        self.seed = seed
        self.slow_delay = slow_delay
        self.epoch = float(int(time.time()) - 60)
        self.versions = [0] * (feeds + 1)
        self.stats = Stats()
        self._bodies: dict[tuple[int, int], bytes] = {}

    # -- content ------------------------------------------------------------------------------

    def etag(self, spec: FeedSpec, version: int) -> str:
        return f'"f{spec.index}-s{self.seed}-v{version}"'

    def last_modified(self, spec: FeedSpec, version: int) -> float:
        return self.epoch + version

    def _item_date(self, spec: FeedSpec, number: int) -> float:
        # the items of version 0 are spread back in time; later ones are a few seconds apart
        head = spec.items
        if number <= head:
            return self.epoch - (head - number) * spec.step
        return self.epoch + (number - head)

    def _item(self, spec: FeedSpec, number: int, size: int) -> str:
        rng = random.Random((self.seed * 1_000_003 + spec.index) * 10_007 + number)
        matching = rng.random() < MATCH_SHARE
        headline = MATCH_HEADLINE if matching else rng.choice(HEADLINES)
        paragraphs = [MATCH_PARAGRAPH] if matching else []
        length = len(paragraphs[0]) if paragraphs else 0
        while length < size:
            paragraph = rng.choice(PARAGRAPHS)
            paragraphs.append(paragraph)
            length += len(paragraph) + 7
        rng.shuffle(paragraphs)
        html = "".join(f"<p>{p}</p>" for p in paragraphs)
        host = f"news{spec.index % 97}.example.org"
        date = _http_date(self._item_date(spec, number))
        return (
            "<item>"
            f"<title>{headline} ({spec.index}-{number})</title>"
            f"<link>https://{host}/{spec.index}/{number}.html</link>"
            f'<guid isPermaLink="false">urn:farm:{self.seed}:{spec.index}:{number}</guid>'
            f"<pubDate>{date}</pubDate>"
            f"<category>Section {number % 7}</category>"
            f"<description><![CDATA[{html}]]></description>"
            "</item>\n"
        )

    def body(self, spec: FeedSpec, version: int) -> bytes:
        key = (spec.index, version)
        cached = self._bodies.get(key)
        if cached is not None:
            return cached
        newest = spec.items + version * spec.new_per_bump
        numbers = range(newest, newest - spec.items, -1)
        item_size = max(200, spec.size // spec.items - 400)
        items = "".join(self._item(spec, n, item_size) for n in numbers)
        text = (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<rss version="2.0"><channel>\n'
            f"<title>Farm feed {spec.index}</title>\n"
            f"<link>https://news{spec.index % 97}.example.org/</link>\n"
            f"<description>Synthetic news feed {spec.index} ({spec.klass})</description>\n"
            "<language>en</language>\n"
            f"<lastBuildDate>{_http_date(self.last_modified(spec, version))}</lastBuildDate>\n"
            f"{items}</channel></rss>\n"
        )
        data = text.encode("utf-8")
        self._bodies[key] = data
        return data

    def pregenerate(self) -> None:
        """Build every body of versions 0 and 1 up front, so serving costs the farm little."""
        for spec in self.specs:
            if spec.klass == "error":
                continue
            self.body(spec, 0)
            if spec.klass == "changed":
                self.body(spec, 1)

    # -- HTTP ---------------------------------------------------------------------------------

    def _fresh(self, request: web.Request, etag: str, modified: float) -> bool:
        match = request.headers.get("If-None-Match")
        if match is not None:
            self.stats.conditional += 1
            tags = {t.strip().removeprefix("W/") for t in match.split(",")}
            return etag in tags or "*" in tags
        since = request.headers.get("If-Modified-Since")
        if since is not None:
            self.stats.conditional += 1
            try:
                return parsedate_to_datetime(since).timestamp() >= int(modified)
            except (TypeError, ValueError):
                return False
        return False

    async def feed(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        try:
            index = int(name)
            spec = self.specs[index - 1]
        except (ValueError, IndexError):
            self.stats.statuses["404"] += 1
            raise web.HTTPNotFound() from None
        if spec.klass == "slow":
            await asyncio.sleep(self.slow_delay)
        elif spec.klass == "error":
            return self._error(request, spec)
        version = self.versions[index] if spec.klass == "changed" else 0
        etag = self.etag(spec, version)
        modified = self.last_modified(spec, version)
        headers = {"ETag": etag, "Last-Modified": _http_date(modified)}
        if self._fresh(request, etag, modified):
            self.stats.statuses["304"] += 1
            return web.Response(status=304, headers=headers)
        body = self.body(spec, version)
        self.stats.statuses["200"] += 1
        self.stats.bytes += len(body)
        headers["Content-Type"] = "application/rss+xml; charset=utf-8"
        return web.Response(body=body, headers=headers)

    def _error(self, request: web.Request, spec: FeedSpec) -> web.StreamResponse:
        self.stats.statuses[spec.error] += 1
        if spec.error == "404":
            raise web.HTTPNotFound()
        if spec.error == "500":
            raise web.HTTPInternalServerError()
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close() sends RST
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return web.Response(status=500)

    async def bump(self, request: web.Request) -> web.Response:
        changed = 0
        for spec in self.specs:
            if spec.klass == "changed":
                self.versions[spec.index] += 1
                changed += 1
        return web.json_response({"bumped": changed})

    async def reset(self, request: web.Request) -> web.Response:
        self.versions = [0] * len(self.versions)
        self.stats = Stats()
        return web.json_response({"reset": True})

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "feeds": len(self.specs),
                "statuses": dict(self.stats.statuses),
                "bytes": self.stats.bytes,
                "conditional": self.stats.conditional,
                "cpu": time.process_time(),
                "classes": dict(Counter(s.klass for s in self.specs)),
            }
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/feeds/{name}.xml", self.feed)
        app.router.add_post("/_control/bump", self.bump)
        app.router.add_post("/_control/reset", self.reset)
        app.router.add_get("/_control/stats", self.get_stats)
        return app

    def base_urls(self) -> list[str]:
        return [f"http://{host_address(n)}:{self.port}/" for n in range(self.hosts)]

    async def serve(self, stop: asyncio.Event) -> None:
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        for host in range(self.hosts):
            site = web.TCPSite(runner, host_address(host), self.port, backlog=1024)
            await site.start()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()


def control(port: int, action: Literal["bump", "reset", "stats"], timeout: float = 10.0) -> object:
    """Call a control endpoint of a farm on `port`; returns the decoded JSON answer."""
    url = f"http://127.0.0.1:{port}/_control/{action}"
    request = urllib.request.Request(url, method="GET" if action == "stats" else "POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer: object = json.loads(response.read())
        return answer


class FarmProcess:
    """A farm running in a child process; `stop()` (or the context manager) ends it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, feeds: int, hosts: int):
        self.process = process
        self.port = port
        self.feeds = feeds
        self.hosts = hosts

    def url(self, index: int) -> str:
        return feed_url(index, self.port, self.hosts)

    def control(self, action: Literal["bump", "reset", "stats"]) -> object:
        return control(self.port, action)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> FarmProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_farm(
    feeds: int,
    *,
    port: int = DEFAULT_PORT,
    hosts: int = DEFAULT_HOSTS,
    seed: int = DEFAULT_SEED,
    ready_timeout: float = 300.0,
) -> FarmProcess:
    """Start `python feed_farm.py` in a subprocess and wait until it answers (bodies built)."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        f"--feeds={feeds}",
        f"--port={port}",
        f"--hosts={hosts}",
        f"--seed={seed}",
        "--pregenerate",
        "--quiet",
    ]
    process = subprocess.Popen(command)
    farm = FarmProcess(process, port, feeds, hosts)
    deadline = time.monotonic() + ready_timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"feed farm exited with {process.returncode}")
        try:
            farm.control("stats")
            return farm
        except OSError:
            if time.monotonic() > deadline:
                farm.stop()
                raise RuntimeError("feed farm did not start in time") from None
            time.sleep(0.2)


def write_monitor_config(
    directory: Path,
    urls: Sequence[str],
    *,
    query: str = "Japan AND North Korea",
    first: int = 1,
    filename: str = "config.toml",
) -> Path:
    """Write `filename` and rules.toml for news-monitor into `directory`; returns the config.

    Sources are named feed-00001... from `first` on, so configs holding slices of one farm
    can share the database.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rules.toml").write_text(
        f'[[rules]]\nname = "bench"\nquery = {json.dumps(query)}\nnotify = ["console"]\n',
        encoding="utf-8",
    )
    lines = [
        "[monitor]",
        f"database = {json.dumps(str(directory / 'monitor.db'))}",
        'rules = ["rules.toml"]',
        "",
        "[targets]",
        'console = "console://"',
        "",
    ]
    for number, url in enumerate(urls, start=first):
        lines += ["[[sources]]", f'name = "feed-{number:05d}"', f"url = {json.dumps(url)}", ""]
    config = directory / filename
    config.write_text("\n".join(lines), encoding="utf-8")
    return config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--hosts", type=int, default=DEFAULT_HOSTS, help="loopback addresses")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--slow-delay", type=float, default=SLOW_DELAY)
    parser.add_argument("--pregenerate", action="store_true", help="build bodies up front")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    farm = FeedFarm(
        args.feeds, port=args.port, hosts=args.hosts, seed=args.seed, slow_delay=args.slow_delay
    )
    if args.pregenerate:
        started = time.perf_counter()
        farm.pregenerate()
        if not args.quiet:
            print(
                f"built {len(farm._bodies)} bodies in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
    if not args.quiet:
        counts = Counter(s.klass for s in farm.specs)
        print(f"{args.feeds} feeds: {dict(counts)}")
        bases = farm.base_urls()
        for base in bases if len(bases) <= 10 else [*bases[:5], "...", *bases[-2:]]:
            print(base)
        print(f"e.g. {feed_url(1, args.port, args.hosts)}; control on {farm.base_urls()[0]}")
        sys.stdout.flush()

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await farm.serve(stop)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())

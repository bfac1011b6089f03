"""Real `monitor run` processes sharing one PostgreSQL database over a loopback feed farm
and a recording webhook: each feed fetched once per due time across the cluster, each
match delivered once; after `kill -9` of one instance mid-cycle every match still arrives,
at most one repeated; `run --once` beside running daemons."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.servers import FixtureServer, Page, Request, WebhookReceiver
from tests.test_end_to_end import run_once

WORDS = [f"w{n:03d}" for n in range(600)]
NOW = datetime.now(UTC)


class SlowFarm(FixtureServer):
    """Feeds that take `delay` seconds to answer, so a cycle is in flight for a while."""

    delay = 0.0

    def handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        if self.delay:
            time.sleep(self.delay)  # the publisher being slow, not the test waiting
        return super().handle(request)


def farm_feed(feed: int, items: int, rng: random.Random) -> tuple[bytes, list[str]]:
    """An RSS feed whose every item matches `volcano`, each a story of its own."""
    entries, titles = [], []
    for n in range(items):
        title = f"Volcano report F{feed}N{n}Z"
        text = " ".join(rng.sample(WORDS, 40))
        entries.append(
            f"<item><title>{title}</title><link>https://farm{feed}.example/{n}</link>"
            f"<description>volcano {text}</description>"
            f"<pubDate>{format_datetime(NOW - timedelta(minutes=n))}</pubDate></item>"
        )
        titles.append(title)
    body = f'<rss version="2.0"><channel><title>f{feed}</title>{"".join(entries)}</channel></rss>'
    return body.encode(), titles


@pytest.fixture
def farm() -> Iterator[SlowFarm]:
    server = SlowFarm().start()
    yield server
    server.stop()


def write_cluster_config(tmp: Path, database: str, farm: FixtureServer, hook: int,
                         feeds: int, items: int) -> tuple[Path, list[str]]:  # fmt: skip
    rng = random.Random(17)
    sources, titles = [], []
    for feed in range(feeds):
        body, feed_titles = farm_feed(feed, items, rng)
        farm.pages[f"/f{feed}.rss"] = Page(body)
        titles += feed_titles
        sources.append(f'[[sources]]\nname = "f{feed}"\nurl = "{farm.url(f"/f{feed}.rss")}"\n')
    (tmp / "rules.toml").write_text(
        '[[rules]]\nname = "volcano"\nquery = "volcano"\nnotify = ["hook"]\nfollow_up = false\n',
        encoding="utf-8",
    )
    config = tmp / "config.toml"
    config.write_text(
        f'[monitor]\ndatabase = "{database}"\nrules = ["rules.toml"]\nbackfill = "100000d"\n'
        f'interval = "1h"\n\n[targets]\nhook = "json://127.0.0.1:{hook}/alerts"\n\n'
        + "\n".join(sources),
        encoding="utf-8",
    )
    return config, titles


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env=env,
    )


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def delivered(hook: WebhookReceiver, titles: list[str]) -> bool:
    got = " ".join(post["title"] + post["message"] for post in hook.posts)
    return all(title in got for title in titles)


def counts(hook: WebhookReceiver, titles: list[str]) -> dict[str, int]:
    texts = [post["title"] + post["message"] for post in hook.posts]
    return {title: sum(title in text for text in texts) for title in titles}


def test_three_instances_fetch_each_feed_once_and_deliver_each_match_once(
    tmp_path: Path, postgres_url: str, farm: SlowFarm, webhook: WebhookReceiver
) -> None:
    config, titles = write_cluster_config(tmp_path, postgres_url, farm, webhook.port, 12, 2)
    instances = [start(config, tmp_path / f"i{n}.log") for n in range(3)]
    try:
        assert webhook.wait_for(lambda _: delivered(webhook, titles), timeout=90), [
            (tmp_path / f"i{n}.log").read_text()[-2000:] for n in range(3)
        ]
        fetched = {path: len(farm.gets(path)) for path in farm.pages}
        posts = len(webhook.posts)
        status = subprocess.run(
            [sys.executable, "-m", "monitor", "status", "-c", str(config)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        once = run_once(config)  # beside the running daemons
    finally:
        stop(instances)

    assert [p.returncode for p in instances] == [0, 0, 0]
    assert fetched == dict.fromkeys(farm.pages, 1)
    assert sorted(counts(webhook, titles).values()) == [1] * len(titles)
    assert once.returncode == 0, once.stderr
    assert len(webhook.posts) == posts  # it fetched again and found nothing new
    assert "instances:" in status.stdout and status.stdout.count("running") >= 3
    pollers = {line.split()[-1] for line in status.stdout.splitlines() if line.startswith("f")}
    assert len(pollers) >= 2  # the work was shared


def test_after_kill_9_of_one_instance_every_match_arrives_at_most_one_repeated(
    tmp_path: Path, postgres_url: str, farm: SlowFarm, webhook: WebhookReceiver
) -> None:
    config, titles = write_cluster_config(tmp_path, postgres_url, farm, webhook.port, 9, 2)
    farm.delay = 1.5
    instances = [start(config, tmp_path / f"i{n}.log") for n in range(3)]
    try:
        assert farm.wait_for(lambda requests: len(requests) >= 3, timeout=60)
        instances[0].send_signal(signal.SIGKILL)
        assert not delivered(webhook, titles)  # killed mid-cycle
        instances[0].wait(timeout=30)
        assert webhook.wait_for(lambda _: delivered(webhook, titles), timeout=150), [
            (tmp_path / f"i{n}.log").read_text()[-2000:] for n in range(3)
        ]
    finally:
        stop(instances)

    assert instances[0].returncode == -signal.SIGKILL
    assert [p.returncode for p in instances[1:]] == [0, 0]
    repeats = [n for n in counts(webhook, titles).values() if n > 1]
    assert len(repeats) <= 1 and all(n == 2 for n in repeats)

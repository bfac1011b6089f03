"""Push-to-alert latency with WebSub on loopback (issue #18 item 7).

    python benchmarks/bench_websub.py               # 20 pushes
    python benchmarks/bench_websub.py --pushes 50

A real `monitor run` (a process, `[web] public_url` on an ephemeral port) polls one feed
that advertises a loopback hub (tests/websub_hub.py), subscribes, and answers the hub's
verification. Then the hub distributes --pushes signed documents, one at a time, each with
one new item that matches a rule (a different story each time); the latency of each is from
the moment the hub starts its POST to the moment the webhook target receives the alert.
Target: median under 2 s.

Baseline, same run: the polled path, from the daemon's first GET of the feed to the alert
for an item in it (processing only; a polled item also waits for the next poll, on
average half the interval: 7.5 min at the default 15 min).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import FixtureServer, Page, WebhookReceiver, free_port
from tests.webdaemon import start, wait_until
from tests.websub_env import atom
from tests.websub_hub import ThreadedHub

WORDS = [
    "harbor", "lantern", "quartz", "meadow", "copper", "violet", "summit", "glacier", "orchard",
    "falcon", "ember", "cobalt", "willow", "thunder", "saffron", "marble", "canyon", "nebula",
]  # fmt: skip


def story(rng: random.Random, n: int) -> str:
    return f"Alert {n}: " + " ".join(rng.sample(WORDS, 8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pushes", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(18)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        feeds, hook, threaded = FixtureServer().start(), WebhookReceiver().start(), ThreadedHub()
        hub = threaded.hub
        topic = feeds.url("/feed")
        entries = [("first", story(rng, 0))]
        feeds.pages["/feed"] = Page(atom(hub.url, topic, entries), "application/atom+xml")
        port = free_port()
        (tmp / "rules.toml").write_text(
            '[[rules]]\nname = "a"\nquery = "alert"\nnotify = ["hook"]\n'
        )
        (tmp / "config.toml").write_text(
            f'[monitor]\ndatabase = "m.db"\nrules = ["rules.toml"]\n'
            f'[web]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n'
            f'[targets]\nhook = "json://127.0.0.1:{hook.port}/alerts"\n'
            f'[[sources]]\nname = "wire"\nurl = "{topic}"\n'
        )
        daemon = start(tmp / "config.toml")
        try:
            threaded.call(lambda: hub.wait(lambda h: bool(h.subscriptions), timeout=60))
            assert wait_until(lambda: len(hook.posts) == 1, timeout=60), "".join(daemon.log)
            polled = hook.requests[0].arrived_at - feeds.gets("/feed")[0].arrived_at
            latencies = []
            for n in range(1, args.pushes + 1):
                entries = [(f"item-{n}", story(rng, n)), *entries][:20]
                body = atom(hub.url, topic, entries, datetime.now(UTC))
                began = time.monotonic()
                assert threaded.call(lambda body=body: hub.publish(topic, body)) == [202]
                assert wait_until(lambda n=n: len(hook.posts) == n + 1, timeout=30, every=0.002)
                latencies.append(hook.requests[-1].arrived_at - began)
        finally:
            daemon.stop()
            threaded.stop()
            feeds.stop()
            hook.stop()
    latencies.sort()
    p90 = latencies[max(0, int(len(latencies) * 0.9) - 1)]
    print(f"pushes: {len(latencies)}")
    median = statistics.median(latencies)
    print(f"push to alert: median {median * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms,"
          f" max {latencies[-1] * 1000:.0f} ms (target: median < 2 s)")  # fmt: skip
    print(f"baseline, polled: fetch to alert {polled * 1000:.0f} ms, plus the wait for the "
          "next poll (7.5 min on average at the default 15 min interval)")  # fmt: skip


if __name__ == "__main__":
    main()

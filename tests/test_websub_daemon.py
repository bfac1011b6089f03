"""`monitor run` with `[web] public_url` against a loopback hub: it subscribes after its
first poll, answers the hub's verification, and a signed push reaches the webhook."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from monitor.cli import main
from tests.servers import FixtureServer, Page, WebhookReceiver, free_port
from tests.webdaemon import start, wait_until
from tests.websub_env import atom
from tests.websub_hub import ThreadedHub

STORY = "Japan and North Korea hold summit on abduction issue"


@pytest.fixture
def hub() -> Iterator[ThreadedHub]:
    threaded = ThreadedHub()
    yield threaded
    threaded.stop()


def write_config(tmp: Path, feeds: FixtureServer, hook: WebhookReceiver, port: int) -> Path:
    (tmp / "rules.toml").write_text(
        '[[rules]]\nname = "jnk"\nquery = "Japan AND North Korea AND summit"\nnotify = ["hook"]\n'
    )
    config = tmp / "config.toml"
    config.write_text(
        f"""
[monitor]
database = "monitor.db"
rules = ["rules.toml"]

[web]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"

[targets]
hook = "json://127.0.0.1:{hook.port}/alerts"

[[sources]]
name = "asia"
url = "{feeds.url("/feed")}"
"""
    )
    return config


def test_monitor_run_subscribes_and_a_push_alerts(
    tmp_path: Path,
    feed_server: FixtureServer,
    webhook: WebhookReceiver,
    hub: ThreadedHub,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = feed_server.url("/feed")
    feed_server.pages["/feed"] = Page(
        atom(hub.hub.url, topic, [("w", "Weather")]), "application/atom+xml"
    )
    port = free_port()
    daemon = start(write_config(tmp_path, feed_server, webhook, port))
    try:
        hub.call(lambda: hub.hub.wait(lambda h: bool(h.subscriptions), timeout=30))
        assert wait_until(lambda: "active until" in httpx.get(daemon.url("/")).text)
        capsys.readouterr()
        assert main(["status", "--json", "-c", str(tmp_path / "config.toml")]) == 0
        assert json.loads(capsys.readouterr().out)["push"].startswith("active until ")
        now = datetime.now(UTC)
        body = atom(hub.hub.url, topic, [("s1", STORY), ("w", "Weather")], now)
        assert hub.call(lambda: hub.hub.publish(topic, body)) == [202]
        assert wait_until(lambda: len(webhook.posts) == 1, timeout=20), "".join(daemon.log)
        assert STORY in webhook.posts[0]["title"]
    finally:
        assert daemon.stop() == 0

"""`monitor run` on PostgreSQL with [web]: health, metrics and the dashboard read the shared
database, and the dashboard lists the cluster's instances."""

from __future__ import annotations

import html as markup
import os
import re
import socket
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from monitor.adapters.store.postgres import PostgresStore
from tests.servers import FixtureServer, WebhookReceiver
from tests.webdaemon import metric, start, wait_until, write_config


def instance_rows(page: str) -> list[str]:
    section = page[page.index('id="instances"') :]
    section = section[: section.index("</section>")]
    cells = (markup.unescape(re.sub(r"<[^>]+>", " ", row)) for row in section.split("<tr>")[1:])
    return [" ".join(cell.split()) + " " for cell in cells]


def test_the_daemon_on_postgresql_serves_ready_metrics_and_its_instance(
    tmp_path: Path, postgres_url: str, feed_server: FixtureServer, webhook: WebhookReceiver
) -> None:
    config = write_config(tmp_path, feed_server, webhook)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('"state/monitor.db"', f'"{postgres_url}"'), encoding="utf-8")
    # Another instance of the cluster, stopped: listed too, as stopped.
    other = PostgresStore(postgres_url, instance=True)
    other.close()

    daemon = start(config)
    try:
        assert wait_until(
            lambda: (
                metric(daemon, "news_monitor_deliveries_total", target="hook", result="sent") >= 2
            )
        ), "".join(daemon.log)
        ready = httpx.get(daemon.url("/readyz"))
        assert ready.status_code == 200, ready.text
        families = {f.name for f in text_string_to_metric_families(httpx.get(
            daemon.url("/metrics")).text)}  # fmt: skip
        assert {"news_monitor_sources", "news_monitor_outbox_pending"} <= families
        assert wait_until(lambda: metric(daemon, "news_monitor_sources", state="failing") == 1)

        page = httpx.get(daemon.url("/")).text
        assert "broken-wire" in page and "HTTP 500" in page  # sources read from PostgreSQL
        assert "<script>window.__pwned" not in page
        rows = instance_rows(page)
        assert len(rows) == 2, rows
        mine = next(row for row in rows if f"pid {daemon.process.pid} " in row)
        assert f"host {socket.gethostname()} " in mine
        assert "state running" in mine
        assert re.search(r"last heartbeat \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", mine), mine
        assert re.search(r"leases \d+ ", mine), mine
        stopped = next(row for row in rows if f"pid {os.getpid()} " in row)
        assert "state stopped" in stopped
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.log)

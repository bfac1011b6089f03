"""[web] inside `monitor run`: config checks, the measured fetcher and notifier, the
daemon's own server on an ephemeral port, and `monitor healthcheck`."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from monitor.adapters.fetch import FetchError, HttpFetcher
from monitor.adapters.notify import AppriseNotifier
from monitor.cli import main
from monitor.config.files import load_config
from monitor.errors import ConfigError
from monitor.web.metrics import MeasuredFetcher, MeasuredNotifier, Metrics
from tests.servers import FixtureServer, Page, WebhookReceiver, free_port
from tests.webapp import TOKEN, start_web
from tests.webdaemon import metric, start, wait_until, write_config


def web_config(tmp_path: Path, web: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\nrules = []\n[web]\n{web}\n[targets]\nc = "console://"\n')
    return config


@pytest.mark.parametrize("listen", ["0.0.0.0:8421", "192.0.2.7:80", "[::]:8421", "example.org:1"])
def test_a_non_loopback_listen_without_a_token_is_refused_naming_the_key(
    tmp_path: Path, listen: str
) -> None:
    config = web_config(tmp_path, f'listen = "{listen}"')
    with pytest.raises(ConfigError) as caught:
        load_config(str(config), env={})
    assert caught.value.key == "web.auth_token"
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "-c", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "web.auth_token" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("listen", ["127.0.0.1:8421", "localhost:0", "[::1]:9000"])
def test_loopback_needs_no_token(tmp_path: Path, listen: str) -> None:
    web = load_config(str(web_config(tmp_path, f'listen = "{listen}"')), env={}).web
    assert web is not None and web.loopback and web.auth_token is None


def test_a_token_from_the_environment_allows_any_address(tmp_path: Path) -> None:
    config = web_config(tmp_path, 'listen = "0.0.0.0:8421"\nauth_token = "${WEB_TOKEN}"')
    web = load_config(str(config), env={"WEB_TOKEN": TOKEN}).web
    assert web is not None
    assert (web.host, web.port, web.auth_token) == ("0.0.0.0", 8421, TOKEN)
    assert TOKEN not in repr(web)


@pytest.mark.parametrize(
    ("web", "key"),
    [
        ('listen = "8421"', "web.listen"),
        ('listen = "127.0.0.1:99999"', "web.listen"),
        ('listen = "127.0.0.1:8421"\nauth_token = "short"', "web.auth_token"),
        ('listen = "127.0.0.1:8421"\nport = 1', "web.port"),
    ],
)
def test_bad_web_settings_name_their_key(tmp_path: Path, web: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(str(web_config(tmp_path, web)), env={})
    assert caught.value.key == key


def test_the_example_config_enables_the_dashboard_on_loopback() -> None:
    root = Path(__file__).resolve().parent.parent
    web = load_config(str(root / "config.example.toml"), env={}).web
    assert web is not None
    assert (web.host, web.port) == ("127.0.0.1", 8421)


def test_measured_fetcher_counts_results_and_times_each_fetch() -> None:
    server = FixtureServer(
        {"/ok": Page(b"<rss/>", etag='"e"'), "/gone": Page(b"", status=404)}
    ).start()
    metrics = Metrics(["hook"])

    async def fetch_all() -> None:
        fetcher = MeasuredFetcher(HttpFetcher("test", host_gap=0), metrics)
        try:
            await fetcher.fetch(server.url("/ok"))
            await fetcher.fetch(server.url("/ok"), etag='"e"')
            await fetcher.fetch(server.url("/gone"))
            with pytest.raises(FetchError):
                await fetcher.fetch(f"http://127.0.0.1:{free_port()}/closed")
        finally:
            await fetcher.aclose()

    try:
        asyncio.run(fetch_all())
    finally:
        server.stop()
    fetches = metrics.fetches
    assert fetches.labels("ok")._value.get() == 1
    assert fetches.labels("not_modified")._value.get() == 1
    assert fetches.labels("client_error")._value.get() == 1
    assert fetches.labels("error")._value.get() == 1
    text = metrics.exposition().decode()
    assert "news_monitor_fetch_duration_seconds_count 4.0" in text


def test_measured_notifier_counts_by_target_and_result(webhook: WebhookReceiver) -> None:
    metrics = Metrics(["hook", "down"])
    urls = {"hook": webhook.url("/x").replace("http://", "json://"),
            "down": f"json://127.0.0.1:{free_port()}/x"}  # fmt: skip
    notifier = MeasuredNotifier(AppriseNotifier(urls), metrics)
    assert notifier.send("hook", "t", "b").ok
    assert not notifier.send("down", "t", "b").ok
    assert metrics.deliveries.labels("hook", "sent")._value.get() == 1
    assert metrics.deliveries.labels("down", "failed")._value.get() == 1
    assert metrics.deliveries.labels("hook", "failed")._value.get() == 0


def test_the_daemon_serves_its_web_on_an_ephemeral_port_and_counts_its_work(
    tmp_path: Path, feed_server: FixtureServer, webhook: WebhookReceiver
) -> None:
    daemon = start(write_config(tmp_path, feed_server, webhook))
    try:
        assert httpx.get(daemon.url("/healthz")).status_code == 200
        assert wait_until(lambda: metric(daemon, "news_monitor_articles_total") >= 3)
        assert wait_until(
            lambda: (
                metric(daemon, "news_monitor_deliveries_total", target="hook", result="sent") >= 2
            )
        ), "".join(daemon.log)
        assert metric(daemon, "news_monitor_matches_total") == 2
        assert metric(daemon, "news_monitor_fetches_total", result="ok") >= 1
        assert wait_until(lambda: metric(daemon, "news_monitor_sources", state="failing") == 1)
        assert metric(daemon, "news_monitor_fetches_total", result="server_error") >= 1
        assert metric(daemon, "news_monitor_config_last_reload_successful") == 1
        assert metric(daemon, "news_monitor_fetch_duration_seconds_count") >= 2
        ready = httpx.get(daemon.url("/readyz"))
        assert ready.status_code == 200, ready.text
        assert main(["healthcheck", "--url", daemon.url("/readyz")]) == 0
        html = httpx.get(daemon.url("/")).text
        assert "broken-wire" in html and "HTTP 500" in html
        assert "<script>window.__pwned" not in html
        assert "alerts-secret-path" not in html
        assert 'id="instances"' not in html  # SQLite: one process, no cluster to list
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.log)
    assert main(["healthcheck", "--url", daemon.url("/readyz"), "--timeout", "2"]) == 1


def test_healthcheck_reads_the_address_and_token_from_the_config(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    web = start_web(tmp_path / "a", token=TOKEN)
    try:
        config = tmp_path / "health.toml"
        config.write_text(
            f'[monitor]\nrules = []\n[web]\nlisten = "127.0.0.1:{web.server.port}"\n'
            f'auth_token = "{TOKEN}"\n'
        )
        assert main(["healthcheck", "-c", str(config)]) == 0
        web.running[0] = False
        assert main(["healthcheck", "-c", str(config)]) == 1
        config.write_text(
            f'[monitor]\nrules = []\n[web]\nlisten = "127.0.0.1:{web.server.port}"\n'
            f'auth_token = "{"x" * 20}"\n'
        )
        assert main(["healthcheck", "-c", str(config)]) == 1
    finally:
        web.stop()


def test_healthcheck_without_web_or_with_port_0_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[monitor]\nrules = []\n")
    assert main(["healthcheck", "-c", str(config)]) == 2
    config.write_text('[monitor]\nrules = []\n[web]\nlisten = "127.0.0.1:0"\n')
    assert main(["healthcheck", "-c", str(config)]) == 2
    assert "--url" in capsys.readouterr().err


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    web = start_web(tmp_path)
    try:
        config = tmp_path / "busy.toml"
        config.write_text(
            f'[monitor]\nrules = []\ndatabase = "busy.db"\n[web]\n'
            f'listen = "127.0.0.1:{web.server.port}"\n'
        )
        result = subprocess.run(
            [sys.executable, "-m", "monitor", "run", "-c", str(config)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 2
        assert "cannot listen" in result.stderr and "Traceback" not in result.stderr
    finally:
        web.stop()


def test_only_the_web_imports_the_http_server_side_of_aiohttp() -> None:
    """import-linter sees `aiohttp` as one package; `aiohttp.web` is checked here."""
    import ast

    package = Path(__file__).resolve().parent.parent / "monitor"
    importers = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if any(name == "aiohttp.web" or name.startswith("aiohttp.web.") for name in names):
                importers.add(path.relative_to(package).parts[0])
    assert importers == {"web"}


def test_a_sighup_reload_sets_the_reload_metrics(
    tmp_path: Path, feed_server: FixtureServer, webhook: WebhookReceiver
) -> None:
    daemon = start(write_config(tmp_path, feed_server, webhook))
    try:
        assert metric(daemon, "news_monitor_config_last_reload_successful") == 1
        started = metric(daemon, "news_monitor_config_last_reload_success_timestamp_seconds")
        rules = tmp_path / "rules.toml"
        rules.write_text('[[rules]]\nname = "broken"\nquery = "Japan AND ("\n', encoding="utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        assert wait_until(
            lambda: metric(daemon, "news_monitor_config_last_reload_successful") == 0
        ), "".join(daemon.log)
        rules.write_text(
            '[[rules]]\nname = "weather-watch"\nquery = "weather"\nnotify = ["hook"]\n',
            encoding="utf-8",
        )
        daemon.process.send_signal(signal.SIGHUP)
        assert wait_until(
            lambda: metric(daemon, "news_monitor_config_last_reload_successful") == 1
        ), "".join(daemon.log)
        reloaded = metric(daemon, "news_monitor_config_last_reload_success_timestamp_seconds")
        assert reloaded > started
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.log)

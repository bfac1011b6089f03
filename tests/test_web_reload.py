"""A reload's effect on the web (a real daemon): a new auth_token ends the old one and its
sessions, the per-target delivery series follow the targets; and `monitor healthcheck`
reads only [web], so a broken rules file on disk does not make a healthy daemon unhealthy."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.cli import main
from tests.servers import FixtureServer, WebhookReceiver
from tests.webapp import TOKEN, start_web
from tests.webdaemon import Daemon, start, wait_until, write_config

NEW_TOKEN = "the-reloaded-token-0987654321"


def delivery_targets(daemon: Daemon, token: str) -> set[str]:
    response = httpx.get(daemon.url("/metrics"), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return {
        sample.labels["target"]
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "news_monitor_deliveries_total"
    }


def status(daemon: Daemon, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    return httpx.get(daemon.url("/metrics"), headers=headers).status_code


def test_a_reload_applies_a_new_token_and_the_new_targets_series(
    tmp_path: Path,
    feed_server: FixtureServer,
    webhook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NM_TEST_NEW_TOKEN", NEW_TOKEN)
    config = write_config(tmp_path, feed_server, webhook, extra=f'auth_token = "{TOKEN}"')
    daemon = start(config)
    try:
        with httpx.Client(base_url=daemon.base) as browser:
            browser.post("/login", data={"token": TOKEN, "next": "/"})
            assert browser.get("/").status_code == 200
            assert delivery_targets(daemon, TOKEN) == {"hook"}

            text = config.read_text(encoding="utf-8")
            text = text.replace(f'auth_token = "{TOKEN}"', 'auth_token = "${NM_TEST_NEW_TOKEN}"')
            text = text.replace("hook = ", "pager = ")
            config.write_text(text, encoding="utf-8")
            rules = tmp_path / "rules.toml"
            rules.write_text(
                rules.read_text(encoding="utf-8").replace('"hook"', '"pager"'), encoding="utf-8"
            )
            daemon.process.send_signal(signal.SIGHUP)

            assert wait_until(lambda: status(daemon, NEW_TOKEN) == 200), "".join(daemon.log)
            assert status(daemon, TOKEN) == 401
            assert browser.get("/", headers={"Accept": "application/json"}).status_code == 401
            assert delivery_targets(daemon, NEW_TOKEN) == {"pager"}

            # A mistake in the rules on disk: the daemon keeps its rules and stays ready.
            rules.write_text('[[rules]]\nname = "x"\nquery = "Japan AND ("\n', encoding="utf-8")
            readyz = daemon.url("/readyz")
            assert main(["healthcheck", "-c", str(config), "--url", readyz]) == 0
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.log)
    assert NEW_TOKEN not in "".join(daemon.log)


def test_healthcheck_ignores_broken_rules_and_sources_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    web = start_web(tmp_path / "a", token=TOKEN)
    try:
        monkeypatch.setenv("NM_TEST_TOKEN", TOKEN)
        (tmp_path / "rules.toml").write_text('[[rules]]\nname = "x"\nquery = "a AND ("\n')
        (tmp_path / "feeds.toml").write_text("[[sources]]\nname = \n")
        config = tmp_path / "health.toml"
        config.write_text(
            '[monitor]\nrules = ["rules.toml"]\nsources = ["feeds.toml"]\n'
            'failures_to = "nowhere"\n'
            f'[web]\nlisten = "127.0.0.1:{web.server.port}"\nauth_token = "${{NM_TEST_TOKEN}}"\n'
        )
        assert main(["healthcheck", "-c", str(config)]) == 0
        web.running[0] = False
        assert main(["healthcheck", "-c", str(config)]) == 1
    finally:
        web.stop()


def test_healthcheck_still_names_a_mistake_in_web(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[monitor]\nrules = []\n[web]\nlisten = "nowhere"\n')
    assert main(["healthcheck", "-c", str(config)]) == 2
    assert "listen" in capsys.readouterr().err

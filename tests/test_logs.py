"""Log setup: JSON lines with context, text as before, secrets masked in both."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.service import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    logs.set_secrets([])
    for handler in list(logging.getLogger().handlers):
        if getattr(handler, "_monitor", False):
            logging.getLogger().removeHandler(handler)


def test_json_lines_carry_time_level_logger_message_and_task_context(
    stream: io.StringIO,
) -> None:
    logs.configure("json", "INFO", instance="host:1", stream=stream)
    log = logging.getLogger("monitor.test")

    async def poll(name: str) -> None:
        with logs.log_context(source=name):
            await asyncio.sleep(0)
            await asyncio.to_thread(log.info, "%s: 2 new", name)

    async def both() -> None:
        await asyncio.gather(poll("a"), poll("b"))
        with logs.log_context(target="hook", delivery="d1", rule="r"):
            log.warning("hook: failed", extra={"line": 3})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("oops")

    asyncio.run(both())
    records = [json.loads(line) for line in stream.getvalue().splitlines()]

    assert {(r.get("source"), r["message"]) for r in records[:2]} == {
        ("a", "a: 2 new"), ("b", "b: 2 new")
    }  # fmt: skip
    assert records[2] | {"time": "t"} == {
        "time": "t", "level": "warning", "logger": "monitor.test", "message": "hook: failed",
        "target": "hook", "delivery": "d1", "rule": "r", "instance": "host:1", "line": 3,
    }  # fmt: skip
    assert records[2]["time"].endswith("Z") and "T" in records[2]["time"]
    assert "ValueError: boom" in records[3]["exception"] and "source" not in records[3]


def test_text_lines_keep_their_format_and_secrets_are_masked(stream: io.StringIO) -> None:
    logs.configure("text", "INFO", stream=stream)
    url = "json://user:hunter22@127.0.0.1:9/hooks/abcdef123456?token=zyxwvu987"
    logs.set_secrets(logs.secrets_of_urls([url, "ntfy://my-private-topic"]))
    log = logging.getLogger("monitor.test")

    log.error("failed to send to %s", url)
    log.error("topic my-private-topic said no; password hunter22")
    lines = stream.getvalue().splitlines()

    assert lines[0].split(" ", 3)[2:] == ["ERROR", "monitor.test: failed to send to ***"]
    assert "my-private-topic" not in lines[1] and "hunter22" not in lines[1]


def test_a_database_url_loses_its_password_but_common_words_stay(stream: io.StringIO) -> None:
    logs.configure("json", "INFO", stream=stream)
    database = "postgresql://monitor:pa55word@db.internal/monitor"
    logs.set_secrets(logs.secrets_of_urls([database], paths=False))

    logging.getLogger("monitor.test").error("monitor cannot reach %s (pa55word)", database)
    (record,) = [json.loads(line) for line in stream.getvalue().splitlines()]

    assert record["message"] == "monitor cannot reach *** (***)"


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("pbul://o.gk3TOKENpushbullet01", "o.gk3TOKENpushbullet01"),
        ("prowl://PROWLKEY0123456789abcdef", "PROWLKEY0123456789abcdef"),
        ("join://JOINAPIKEY42abc/phone", "JOINAPIKEY42abc"),
        ("tgram://123456:BOTTOKENxyz/987", "123456:BOTTOKENxyz"),
        ("mailto://mailbox:pw1234@mail.example.org", "mail.example.org"),
        ("mailto://mailbox:pw1234@mail.example.org", "mailbox"),
    ],
)
def test_secrets_in_the_host_of_apprise_urls_are_masked(
    stream: io.StringIO, url: str, secret: str
) -> None:
    logs.configure("text", "INFO", stream=stream)
    logs.set_secrets(logs.secrets_of_urls([url]))

    logging.getLogger("monitor.test").error("the service refused %s; ask again", secret)

    assert secret not in stream.getvalue()
    assert "the service refused ***; ask again" in stream.getvalue()


def test_loopback_hosts_and_http_hosts_stay_readable(stream: io.StringIO) -> None:
    logs.configure("text", "INFO", stream=stream)
    logs.set_secrets(
        logs.secrets_of_urls(["json://127.0.0.1:9/hook-path", "https://hooks.example.com/x1y2"])
    )

    logging.getLogger("monitor.test").error("127.0.0.1 and hooks.example.com answered")

    assert "127.0.0.1 and hooks.example.com answered" in stream.getvalue()


def test_json_context_fields_are_masked(stream: io.StringIO) -> None:
    logs.configure("json", "INFO", stream=stream)
    logs.set_secrets(logs.secrets_of_urls(["pbul://o.gk3TOKENpushbullet01"]))

    with logs.log_context(target="pbul://o.gk3TOKENpushbullet01"):
        logging.getLogger("monitor.test").error("x", extra={"key": "o.gk3TOKENpushbullet01"})

    (record,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert record["target"] == "***" and record["key"] == "***"


def test_the_web_auth_token_is_masked(stream: io.StringIO, tmp_path: Path) -> None:
    from monitor import daemon
    from monitor.config.files import load_config

    token = "web-token-never-in-logs-123"
    config_file = tmp_path / "c.toml"
    config_file.write_text(
        f'[monitor]\nrules = []\n[web]\nlisten = "127.0.0.1:0"\nauth_token = "{token}"\n'
    )
    daemon.configure_logging(load_config(str(config_file), {}))
    logs.configure("text", "INFO", stream=stream)  # same secrets, this test's stream

    logging.getLogger("monitor.test").warning("GET /?token=%s", token)

    assert token not in stream.getvalue() and "GET /?token=***" in stream.getvalue()

"""Log setup: text lines (as always) or one JSON object a line, with context and no secrets.

Context (source, rule, target, delivery, instance) rides on a ContextVar: `log_context()`
around a poll or a send puts it on every record logged inside, in that task only (asyncio
tasks and `asyncio.to_thread` copy the context). A call may also pass it as `extra=`.
Known secrets (target URLs and their credentials, the web's auth_token, given by the
daemon) are masked in every record's message, context fields and traceback, whatever the
format.

Imports nothing of monitor: any layer may use it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import unquote, urlsplit

__all__ = [
    "CONTEXT_KEYS",
    "JsonFormatter",
    "configure",
    "current_format",
    "default_instance",
    "emit_json",
    "log_context",
    "secrets_of_urls",
    "set_secrets",
]

CONTEXT_KEYS = ("source", "rule", "target", "delivery", "instance", "file", "key", "line")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"
_context: ContextVar[dict[str, object] | None] = ContextVar("monitor_log_context", default=None)
_secrets: list[str] = []
_format = ["text"]  # what the last configure() set up


def current_format() -> str:
    return _format[0]


def emit_json(level: str, logger: str, message: str, extra: Mapping[str, object]) -> None:
    """One JSON log line straight to stderr (for an error after logging has stopped)."""
    record = logging.LogRecord(logger, logging.getLevelName(level.upper()), "", 0,
                               _mask(message), None, None)  # fmt: skip
    for key, value in extra.items():
        if value is not None:
            setattr(record, key, value)
    sys.stderr.write(JsonFormatter().format(record) + "\n")


@contextlib.contextmanager
def log_context(**values: object) -> Iterator[None]:
    """Records logged inside carry these keys (None values are left out)."""
    current = dict(_context.get() or {})
    current.update({k: v for k, v in values.items() if v is not None})
    token = _context.set(current)
    try:
        yield
    finally:
        _context.reset(token)


def default_instance() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def secrets_of_urls(urls: Iterable[str], *, paths: bool = True) -> list[str]:
    """What of each URL could be a secret: the whole URL, its password, a long user name,
    and (not with `paths=False`, for a database URL whose path is only its name) its whole
    path and query (a webhook's path or token). A URL of any scheme but http(s) (Apprise's
    `pbul://TOKEN`, `prowl://KEY`, `join://APIKEY/device`, `ntfy://topic`) may carry a
    secret anywhere: its host and user name count too (an IP address or `localhost` is
    no secret). Whole pieces only, so common words in log lines stay readable."""
    found: list[str] = []
    for url in urls:
        found.append(url)
        try:
            parts = urlsplit(url)
            pieces = [parts.password]
            if parts.username and len(parts.username) >= 8:
                pieces.append(parts.username)
            if paths:
                pieces += [parts.path.strip("/"), parts.query]
                if parts.scheme.lower() not in ("http", "https"):
                    pieces.append(parts.username)
                    if parts.hostname and not _plain_host(parts.hostname):
                        # As written too: hostname is lowercased, a token may not be.
                        pieces += [parts.hostname, parts.netloc.rpartition("@")[2]]
        except ValueError:
            continue
        for piece in pieces:
            if piece and len(piece) >= 4:
                found += [piece, unquote(piece)]
    return found


def _plain_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def set_secrets(secrets: Iterable[str]) -> None:
    """Strings masked in every log record from now on (longest first)."""
    unique = {s for s in secrets if s and len(s) >= 4}
    _secrets[:] = sorted(unique, key=len, reverse=True)


def _mask(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class _Redact(logging.Filter):
    """Masks secrets in the message (formatted here, once) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            try:
                message = record.getMessage()
            except Exception:  # bad arguments: logging reports it when it formats
                return True
            masked = _mask(message)
            if masked != message:
                record.msg, record.args = masked, None
        return True


class _Context(logging.Filter):
    """Puts the task's log context on the record (an explicit `extra=` wins)."""

    def __init__(self, instance: str | None) -> None:
        super().__init__()
        self.instance = instance

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if self.instance and not hasattr(record, "instance"):
            record.instance = self.instance
        return True


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (a test's capture, a redirect)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, context."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value if isinstance(value, int | float | bool) else _mask(str(value))
        if record.exc_info:
            line["exception"] = _mask(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = _mask(record.exc_text)
        return json.dumps(line, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def formatException(self, ei: object) -> str:
        return _mask(super().formatException(ei))  # type: ignore[arg-type]


def configure(
    log_format: str = "text",
    level: int | str = logging.INFO,
    *,
    instance: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Send every log record to stderr (or `stream`) in `log_format`, replacing a handler
    an earlier call installed (a reload can switch formats)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_monitor", False):
            root.removeHandler(old)
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler._monitor = True  # type: ignore[attr-defined]
    handler.addFilter(_Context(instance))
    handler.addFilter(_Redact())
    _format[0] = log_format
    logging.captureWarnings(True)  # a library's warning is a log line too (JSON in JSON)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    # Apprise logs request URLs and headers (tokens) at DEBUG: never let those through.
    logging.getLogger("apprise").setLevel(max(logging.INFO, root.level))

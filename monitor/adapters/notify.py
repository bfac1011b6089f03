"""Delivery through Apprise, plus the built-in `console://` target. Calls here block."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import apprise
from apprise.decorators import notify as apprise_notify

from monitor.state import SendResult

__all__ = ["AppriseNotifier"]

log = logging.getLogger(__name__)
_FORMATS = {
    "markdown": apprise.NotifyFormat.MARKDOWN,
    "html": apprise.NotifyFormat.HTML,
    "text": apprise.NotifyFormat.TEXT,
}
_MASK = "****"
logging.getLogger("apprise").setLevel(logging.WARNING)


@apprise_notify(on="console", name="news-monitor console")  # type: ignore[untyped-decorator, no-untyped-call]
def _print_to_console(body: str, title: str, *args: Any, **kwargs: Any) -> bool:
    """Print an alert to standard output (the built-in target: no credentials needed)."""
    sys.stdout.write(f"\n=== {title}\n{body}\n")
    sys.stdout.flush()
    return True


class AppriseNotifier:
    """One Apprise plugin per configured target, built once and reused."""

    def __init__(self, targets: Mapping[str, str], *, min_gap: float | None = None) -> None:
        self._urls = dict(targets)
        self._plugins: dict[str, Any] = {}
        self._min_gap = min_gap

    def problems(self) -> dict[str, str]:
        """Targets whose URL Apprise does not understand, by name (URLs are never shown)."""
        return {
            name: "Apprise does not recognise this URL (check the scheme and its fields)"
            for name in self._urls
            if self._plugin(name) is None
        }

    def describe(self, name: str) -> str:
        """The target's scheme and host, safe to print.

        Apprise's private form masks passwords and tokens but shows paths, topics and query
        arguments, which can be the secret (an ntfy.sh topic, a webhook path, a header):
        those are masked too.
        """
        plugin = self._plugin(name)
        if plugin is None:
            return "(invalid URL)"
        return _masked(str(plugin.url(privacy=True)), str(getattr(plugin, "host", "") or ""))

    def _plugin(self, name: str) -> Any:
        if name not in self._plugins:
            plugin = apprise.Apprise.instantiate(self._urls[name], suppress_exceptions=True)
            if plugin is not None and self._min_gap is not None:
                plugin.request_rate_per_sec = self._min_gap
            self._plugins[name] = plugin
        return self._plugins[name]

    def send(self, target: str, title: str, body: str, body_format: str = "markdown") -> SendResult:
        if target not in self._urls:
            return SendResult(False, f"unknown target {target!r}")
        plugin = self._plugin(target)
        if plugin is None:
            return SendResult(False, f"target {target!r} has an invalid Apprise URL")
        sender = apprise.Apprise()
        sender.add(plugin)
        try:
            result = sender.notify(body=body, title=title, body_format=_FORMATS[body_format])
        except Exception as exc:  # a plugin bug must not stop the daemon
            log.exception("target %s: Apprise raised %s", target, type(exc).__name__)
            return SendResult(False, f"Apprise raised {type(exc).__name__}")
        if bool(result):
            return SendResult(True)
        return SendResult(False, f"delivery to {target} failed ({_status(result)})")


def _masked(url: str, host: str) -> str:
    """`url` without its path and query; its host too unless it is the plugin's real host
    (ntfy's cloud mode puts the topic where the host goes)."""
    parts = urlsplit(url)
    netloc = parts.netloc if parts.hostname == host.lower() or not parts.netloc else _MASK
    hidden = f"/{_MASK}" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{netloc}{hidden}"


def _status(result: Any) -> str:
    status = getattr(result, "status", None)
    return getattr(status, "name", "failure").lower()

"""Start and stop the HTTP server inside the running event loop (no second process)."""

from __future__ import annotations

import logging

from aiohttp import web

from monitor.errors import MonitorError
from monitor.web.app import GUARD, WebContext, make_app

__all__ = ["WebServer"]

log = logging.getLogger(__name__)


class WebServer:
    """aiohttp's AppRunner and one TCPSite on `[web] listen`; `port` is the bound one
    (port 0 in the config: any free port)."""

    def __init__(self, context: WebContext, host: str, port: int) -> None:
        self.context = context
        self.host = host
        self.requested_port = port
        self.port = port
        self._runner: web.AppRunner | None = None
        self.app = make_app(context)

    @property
    def token(self) -> str | None:
        return self.app[GUARD].token

    def set_token(self, token: str) -> None:
        """A reload's new auth_token: from now on, and every session made with the old one
        ends. (Dropping the token needs a restart: the server may listen beyond loopback.)"""
        self.app[GUARD].set_token(token)

    async def start(self) -> None:
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.requested_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            where = f"{self.host}:{self.requested_port}"
            raise MonitorError(
                f"[web] listen {where}: cannot listen: {exc.strerror or exc}"
            ) from None
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break
        log.info("web: dashboard at http://%s:%d/", _display(self.host), self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _display(host: str) -> str:
    return f"[{host}]" if ":" in host else host

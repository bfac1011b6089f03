"""A WebSub hub on 127.0.0.1 for tests, following the W3C Recommendation's hub side (the
role websub.rocks plays for its subscriber tests): it takes form-encoded subscription
requests (answering 202, or a 307/308 to another endpoint), verifies intent with a GET to
the callback (a wrong topic on request: test 205), and distributes content signed with
X-Hub-Signature (any method; a wrong or missing signature on request: tests 301, 302).
It runs in the test's event loop (aiohttp.web)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp
from aiohttp import web

from monitor.sources.websub import sign

_T = TypeVar("_T")


@dataclass
class HubSubscription:
    callback: str
    topic: str
    secret: str | None
    lease_seconds: int | None
    verified: bool = False
    answer: tuple[int, str] | None = None
    """The callback's answer to the verification (status, body)."""


@dataclass
class LoopbackHub:
    redirect: int | None = None
    """Answer the first subscription request with this redirect (307, 308) to /hub-moved."""
    verify_topic: str | None = None
    """Verify with this topic instead of the one asked for (websub.rocks 205)."""
    lease_seconds: int | None = 3600
    requests: list[dict[str, str]] = field(default_factory=list)
    """Each subscription request's form, in order (with "path": the endpoint it came to)."""
    subscriptions: list[HubSubscription] = field(default_factory=list)
    verifications: list[tuple[str, dict[str, str], int, str]] = field(default_factory=list)
    """(callback, query sent, status, body) of each verification of intent."""
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    port: int = 0
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub"

    async def start(self) -> LoopbackHub:
        app = web.Application()
        app.add_routes([web.post("/hub", self._hub), web.post("/hub-moved", self._hub)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hub(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        async with self.changed:
            self.requests.append({**form, "path": request.path})
            self.changed.notify_all()
        if self.redirect and request.path == "/hub":
            raise (
                web.HTTPTemporaryRedirect("/hub-moved")
                if self.redirect == 307
                else (web.HTTPPermanentRedirect("/hub-moved"))
            )
        mode = form.get("hub.mode")
        if mode not in ("subscribe", "unsubscribe") or not form.get("hub.callback"):
            return web.Response(status=400, text="bad request")
        asyncio.get_running_loop().create_task(self._verify(form))
        return web.Response(status=202)

    async def _verify(self, form: dict[str, str]) -> None:
        assert self._session is not None
        challenge = secrets.token_hex(16)
        query = {
            "hub.mode": form["hub.mode"],
            "hub.topic": self.verify_topic or form["hub.topic"],
            "hub.challenge": challenge,
        }
        if form["hub.mode"] == "subscribe" and self.lease_seconds is not None:
            query["hub.lease_seconds"] = str(self.lease_seconds)
        async with self._session.get(form["hub.callback"], params=query) as response:
            status, body = response.status, await response.text()
        ok = 200 <= status < 300 and body == challenge
        async with self.changed:
            self.verifications.append((form["hub.callback"], query, status, body))
            if ok and form["hub.mode"] == "subscribe":
                self.subscriptions.append(
                    HubSubscription(form["hub.callback"], form["hub.topic"],
                                    form.get("hub.secret"), self.lease_seconds, True,
                                    (status, body))
                )  # fmt: skip
            if ok and form["hub.mode"] == "unsubscribe":
                self.subscriptions = [
                    s for s in self.subscriptions if s.callback != form["hub.callback"]
                ]
            self.changed.notify_all()

    async def deny(self, callback: str, topic: str, reason: str) -> int:
        assert self._session is not None
        params = {"hub.mode": "denied", "hub.topic": topic, "hub.reason": reason}
        async with self._session.get(callback, params=params) as response:
            return response.status

    async def wait(self, condition: object, timeout: float = 10) -> None:
        """Until `condition(self)` holds (a callable), or fail after `timeout` seconds."""
        assert callable(condition)
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: condition(self)), timeout)

    async def publish(
        self,
        topic: str,
        body: bytes,
        content_type: str = "application/atom+xml",
        *,
        method: str = "sha256",
        signature: str | None = "valid",
    ) -> list[int]:
        """Distribute `body` to every verified subscriber of `topic`; `signature` "valid",
        "invalid" or None (missing). Returns the callbacks' statuses."""
        assert self._session is not None
        statuses = []
        for sub in self.subscriptions:
            if sub.topic != topic:
                continue
            headers = {"Content-Type": content_type, "Link": f'<{self.url}>; rel="hub", '
                       f'<{topic}>; rel="self"'}  # fmt: skip
            if signature is not None and sub.secret:
                secret = sub.secret if signature == "valid" else "not-the-secret"
                headers["X-Hub-Signature"] = sign(secret, body, method)
            async with self._session.post(sub.callback, data=body, headers=headers) as response:
                statuses.append(response.status)
        return statuses


class ThreadedHub:
    """A LoopbackHub in its own event loop in a thread, for tests that run `monitor run`
    as a process (and for benchmarks/bench_websub.py)."""

    def __init__(self, hub: LoopbackHub | None = None) -> None:
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.hub = self.call(lambda: (hub or LoopbackHub()).start())

    def call(self, make: Callable[[], Awaitable[_T]], timeout: float = 30) -> _T:
        async def run() -> _T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self) -> None:
        self.call(self.hub.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

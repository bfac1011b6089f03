"""The WebSub callbacks, `GET|POST /websub/{subscription}` (monitor.service.websub holds
the logic): a GET is a hub's verification of intent, a POST its content distribution."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from monitor.service.websub import Subscriber
from monitor.web.metrics import Metrics

__all__ = ["SUBSCRIBER", "add_routes"]

log = logging.getLogger(__name__)
SUBSCRIBER = web.AppKey("websub", Subscriber)
METRICS = web.AppKey("websub_metrics", Metrics)
MAX_PUSH = 8 * 1024 * 1024


def add_routes(app: web.Application, subscriber: Subscriber, metrics: Metrics) -> None:
    app[SUBSCRIBER], app[METRICS] = subscriber, metrics
    app.add_routes(
        [web.get("/websub/{subscription}", verify), web.post("/websub/{subscription}", receive)]
    )


async def verify(request: web.Request) -> web.StreamResponse:
    subscriber = request.app[SUBSCRIBER]
    query = dict(request.query.items())
    answer = await asyncio.to_thread(subscriber.verify, request.match_info["subscription"], query)
    if answer is None:
        return web.Response(status=404, text="no such subscription\n")
    return web.Response(text=answer, content_type="text/plain")


async def receive(request: web.Request) -> web.StreamResponse:
    subscriber = request.app[SUBSCRIBER]
    if request.content_length is not None and request.content_length > MAX_PUSH:
        return web.Response(status=413, text="too large\n")
    body = await request.content.read(MAX_PUSH + 1)
    if len(body) > MAX_PUSH:
        return web.Response(status=413, text="too large\n")
    status, sub = await asyncio.to_thread(
        subscriber.check_delivery,
        request.match_info["subscription"],
        request.headers.get("X-Hub-Signature"),
        body,
    )
    result = "gone" if status == 410 else "accepted" if sub is not None else "rejected"
    request.app[METRICS].websub_pushes.labels(result).inc()
    if sub is not None:  # acknowledged at once; read after the answer
        content_type = request.headers.get("Content-Type", "")
        subscriber.spawn(subscriber.take(sub, body, content_type))
    return web.Response(status=status, text="gone\n" if status == 410 else "")

"""The routes: health, readiness, metrics, the dashboard, "retry now" and the rule tester.

Every read goes through monitor.service.dashboard in a worker thread (the store is
synchronous), so a page never holds up the daemon's polls on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from monitor.config.schema import Config
from monitor.errors import MonitorError
from monitor.model import Article
from monitor.ports import Clock, ClosingFetcher, DashboardStore, TargetDirectory, utc_now
from monitor.service import dashboard as views
from monitor.service.websub import Subscriber, push_states
from monitor.web import websub
from monitor.web.metrics import CONTENT_TYPE, Metrics
from monitor.web.security import CSRF_FIELD, Guard, safe_next, see_other

__all__ = ["CONTEXT", "WebContext", "make_app"]

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
SOURCES_PER_PAGE = 100
RECENT_MATCHES = 30
STORIES = 15
OUTBOX_ROWS = 30
MAX_QUERY = 2000
MAX_TEXT = 200_000
TESTER_TIMEOUT = 20.0


@dataclass
class WebContext:
    """What the web needs from the daemon (daemon.py builds it)."""

    config: Config
    store: DashboardStore
    directory: TargetDirectory
    metrics: Metrics
    scheduler_running: Callable[[], bool]
    wake_outbox: Callable[[], None]
    tester_fetcher: Callable[[], ClosingFetcher]
    """A fetcher for the rule tester's URLs (the daemon's makes public addresses only)."""
    started_at: datetime = field(default_factory=utc_now)
    clock: Clock = utc_now
    instances: Callable[[], Sequence[Mapping[str, object]]] | None = None
    """The cluster's instances, when there is a cluster (None: the section is hidden)."""
    subscriber: Subscriber | None = None
    """WebSub (with `[web] public_url`): its callbacks are served at /websub/{id}."""


CONTEXT = web.AppKey("context", WebContext)
GUARD = web.AppKey("guard", Guard)
TEMPLATES = web.AppKey("templates", jinja2.Environment)


def make_app(context: WebContext) -> web.Application:
    guard = Guard(context.config.web.auth_token if context.config.web else None)
    app = web.Application(middlewares=[guard.middleware], client_max_size=1024 * 1024)
    app[CONTEXT] = context
    app[GUARD] = guard
    app[TEMPLATES] = _environment()
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/favicon.ico", no_icon),
            web.get("/readyz", readyz),
            web.get("/metrics", metrics),
            web.get("/", dashboard),
            web.post("/outbox/{delivery}/retry", retry),
            web.get("/rules/test", rule_tester),
            web.post("/rules/test", rule_tester),
            web.get("/login", login),
            web.post("/login", login),
            web.post("/logout", logout),
            web.static("/static", HERE / "static", append_version=False),
        ]
    )
    if context.subscriber is not None:
        websub.add_routes(app, context.subscriber, context.metrics)
    return app


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = _when
    env.filters["snippet"] = _snippet_html
    env.filters["href"] = _href
    env.filters["masked"] = _without_credentials
    return env


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "—"
    seconds = (now - value).total_seconds()
    if abs(seconds) < 1:
        return "now"
    future, seconds = seconds < 0, abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            text = f"{int(seconds // size)} {unit}"
            break
    else:
        text = f"{int(seconds)} s"
    return f"in {text}" if future else f"{text} ago"


def _snippet_html(snippet: str) -> Markup:
    """The snippet escaped, then its MARKed words wrapped in <mark>."""
    start, end = views.MARK
    escaped = str(escape(snippet))
    return Markup(escaped.replace(start, "<mark>").replace(end, "</mark>"))  # noqa: S704


def _href(url: str) -> str:
    """A link target only for http(s) URLs: a feed's `javascript:` link becomes no link."""
    return url if url.lower().startswith(("http://", "https://")) else ""


def _without_credentials(url: str) -> str:
    """A source URL to show: its user name and password (if any) masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def _render(request: web.Request, name: str, status: int = 200, **values: Any) -> web.Response:
    context = request.app[CONTEXT]
    guard = request.app[GUARD]
    now = context.clock()
    html = (
        request.app[TEMPLATES]
        .get_template(name)
        .render(
            csrf=guard.csrf_token(request),
            csrf_field=CSRF_FIELD,
            auth=guard.token is not None and guard.authenticated(request),
            now=now,
            ago=lambda value: _ago(value, now),
            path=request.path,
            **values,
        )
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


async def healthz(request: web.Request) -> web.Response:
    """Alive while the process and its event loop are: answering proves both."""
    return web.json_response({"status": "ok"})


async def no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def readyz(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    result = await asyncio.to_thread(
        views.readiness,
        context.store,
        context.config,
        scheduler_running=context.scheduler_running(),
        started_at=context.started_at,
        now=context.clock(),
    )
    if result.ready:
        return web.json_response({"status": "ready"})
    return web.json_response(
        {"status": "not ready", "reason": "; ".join(result.reasons), "reasons": result.reasons},
        status=503,
    )


async def metrics(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]

    def refresh() -> bytes:
        context.metrics.record_store(
            context.config, context.store.source_ranks(), context.store.outbox_counts()
        )
        return context.metrics.exposition()

    try:
        body = await asyncio.to_thread(refresh)
    except MonitorError as exc:  # the store is down: serve the counters we have
        log.warning("metrics: store gauges not refreshed: %s", exc)
        body = context.metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def dashboard(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    text = request.query.get("q", "")[:200]
    show = request.query.get("show", "all")
    show = show if show in views.SHOW else "all"
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1

    def read() -> dict[str, Any]:
        return {
            "sources": views.source_page(
                context.store, context.config, text=text, show=show, page=page,
                per_page=SOURCES_PER_PAGE,
            ),
            "matches": views.match_rows(context.store, context.config, RECENT_MATCHES),
            "stories": views.story_rows(context.store, STORIES),
            "outbox": views.outbox_view(
                context.store, context.directory, context.config, OUTBOX_ROWS
            ),
            "pushes": None if context.subscriber is None
            else push_states(context.subscriber.store, context.clock()),
        }  # fmt: skip

    data = await asyncio.to_thread(read)
    instances = None
    if context.instances is not None:
        instances = await asyncio.to_thread(context.instances)
    return _render(
        request,
        "dashboard.html",
        q=text,
        show=show,
        shows=views.SHOW,
        instances=instances,
        retried=request.query.get("retried"),
        **data,
    )


async def retry(request: web.Request) -> web.StreamResponse:
    context = request.app[CONTEXT]
    delivery = request.match_info["delivery"]
    ok = await asyncio.to_thread(views.retry_delivery, context.store, delivery, context.clock())
    if not ok:
        return web.json_response({"error": "no dead delivery with that id"}, status=404)
    context.wake_outbox()
    return see_other("/?retried=1#outbox")


async def rule_tester(request: web.Request) -> web.Response:
    if request.method == "GET":
        return _render(request, "rules_test.html", query="", text="", url="", result=None,
                       problem="")  # fmt: skip
    form = await request.post()
    query = str(form.get("query", ""))[:MAX_QUERY]
    text = str(form.get("text", ""))[:MAX_TEXT]
    url = str(form.get("url", "")).strip()
    problem = ""
    articles: list[Article] = []
    if not query.strip():
        problem = "write a query to test"
    elif url:
        articles, problem = await _fetch_for_tester(request.app[CONTEXT], url)
    elif text.strip():
        articles = [views.text_article(text)]
    result = await asyncio.to_thread(views.try_rule, query, articles) if query.strip() else None
    status = 400 if result is not None and result.error else 200
    return _render(request, "rules_test.html", status=status, query=query, text=text, url=url,
                   result=result, problem=problem)  # fmt: skip


async def _fetch_for_tester(context: WebContext, url: str) -> tuple[list[Article], str]:
    if not url.lower().startswith(("http://", "https://")):
        return [], "the URL must start with http:// or https://"
    fetcher = context.tester_fetcher()
    try:
        articles = await asyncio.wait_for(views.fetch_articles(fetcher, url), TESTER_TIMEOUT)
    except (MonitorError, OSError, TimeoutError, ValueError) as exc:
        return [], f"could not read {url}: {exc}"
    finally:
        await fetcher.aclose()
    if not articles:
        return [], f"{url}: no articles found"
    return articles, ""


async def login(request: web.Request) -> web.StreamResponse:
    guard = request.app[GUARD]
    if guard.token is None:
        return see_other("/")
    if request.method == "GET":
        return _render(request, "login.html", next=safe_next(request.query.get("next")),
                       error="")  # fmt: skip
    form = await request.post()
    target = safe_next(str(form.get("next", "/")))
    offered = form.get("token")
    if not isinstance(offered, str) or not guard.token_ok(offered.strip()):
        return _render(request, "login.html", status=401, next=target, error="wrong token")
    response = see_other(target)
    guard.log_in(response, request)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    response = see_other("/login")
    request.app[GUARD].log_out(response, request)
    return response

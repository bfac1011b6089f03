"""Real servers on 127.0.0.1 for tests: a fixture HTTP server, a webhook receiver, SMTP."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Page:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    arrived_at: float = field(default_factory=time.monotonic)


class _Server:
    """A ThreadingHTTPServer run in a thread; `handle` answers each request."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.requests: list[Request] = []
        self.arrived = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner._serve(self, "GET")

            def do_POST(self) -> None:
                owner._serve(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        request = Request(
            method,
            handler.path,
            {k.lower(): v for k, v in handler.headers.items()},
            handler.rfile.read(length) if length else b"",
        )
        status, headers, body = self.handle(request)
        with self.arrived:
            self.requests.append(request)
            self.arrived.notify_all()
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def wait_for(self, condition: Callable[[list[Request]], bool], timeout: float = 20) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: condition(self.requests), timeout)

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"


class FixtureServer(_Server):
    """Serves pages by path, answering 304 when the request's If-None-Match matches."""

    def __init__(self, pages: dict[str, Page] | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(host=host)
        self.pages = pages or {}

    def handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        page = self.pages.get(request.path)
        if page is None:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        headers = {"Content-Type": page.content_type, **page.headers}
        if page.etag:
            headers["ETag"] = page.etag
            if request.headers.get("if-none-match") == page.etag:
                return 304, headers, b""
        return page.status, headers, page.body

    def gets(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


class WebhookReceiver(_Server):
    """Accepts Apprise `json://` posts and keeps their JSON bodies."""

    def handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, b'{"ok": true}'

    @property
    def posts(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.requests if r.method == "POST"]


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


class SmtpServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""

    def __init__(self) -> None:
        self.inbox = _Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[EmailMessage]:
        return self.inbox.messages

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def text_of(message: EmailMessage) -> str:
    """Subject and every text part of an email, decoded."""
    parts = [str(message["subject"])]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)

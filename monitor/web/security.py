"""Who may see and do what: the token (Bearer header, login cookie or ?token= once), CSRF
tokens for POSTs, a Host check against DNS rebinding, and the response headers (CSP).

Comparisons of secrets are constant-time (hmac.compare_digest, on bytes: a non-ASCII offer
is simply wrong). The cookie holds a random session id made at login, never the token; the
ids live in memory with their expiry (at most MAX_SESSIONS), so logging out, changing
auth_token (a reload rebuilds the sessions) or restarting revokes them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from aiohttp import web

__all__ = [
    "COOKIE",
    "CSP",
    "Guard",
    "safe_next",
    "see_other",
]

COOKIE = "monitor_session"
CSRF_FIELD = "csrf"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
OPEN_PATHS = frozenset({"/healthz", "/login", "/favicon.ico"})
CALLBACK_PREFIX = "/websub/"
OPEN_PREFIX = "/static/"  # the stylesheet and script: the login page needs them, they hold nothing
COOKIE_MAX_AGE = 30 * 24 * 3600

MAX_SESSIONS = 1000
log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _digest(key: bytes, message: str) -> str:
    return hmac.new(key, _bytes(message), hashlib.sha256).hexdigest()


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _same(offered: str, expected: str) -> bool:
    return hmac.compare_digest(_bytes(offered), _bytes(expected))


def safe_next(target: str | None) -> str:
    """A local path to go back to after login (never another site): no whitespace or control
    characters (browsers drop tabs and newlines: "/\t/evil" is "//evil"), no backslash, no
    scheme or host, one leading slash."""
    if not target or "\\" in target:
        return "/"
    if any(c.isspace() or unicodedata.category(c).startswith("C") for c in target):
        return "/"
    try:
        parts = urlsplit(target)
    except ValueError:
        return "/"
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return "/"
    if parts.path.startswith("//"):
        return "/"
    return target


def _forwarded_https(request: web.Request) -> bool:
    """Behind a TLS-terminating proxy that says so; a client that lies only gets a cookie
    its browser will not send back over plain HTTP."""
    proto = request.headers.get("X-Forwarded-Proto", "")
    return proto.split(",", 1)[0].strip().lower() == "https"


def _loopback_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.removeprefix("[").removesuffix("]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Guard:
    """The access rules of one server: with `token`, every page and action needs it; without
    (a loopback address only), requests must name a loopback host (DNS rebinding)."""

    def __init__(self, token: str | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.token: str | None = None
        self._key = b""
        self._sessions: dict[str, float] = {}  # session id -> when it expires
        self.set_token(token)

    def set_token(self, token: str | None) -> None:
        """Use `token` from now on; a different one ends every session (a reload)."""
        if self._key and token == self.token:
            return
        self.token = token
        self._key = secrets.token_bytes(32)
        self._sessions.clear()

    def token_ok(self, offered: str | None) -> bool:
        if self.token is None or offered is None:
            return False
        return _same(offered, self.token)

    def session_ok(self, request: web.Request) -> bool:
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return False
        expires = self._sessions.get(cookie)
        if expires is None:
            # Constant-time is moot for a dict lookup of a 256-bit random id.
            return False
        if expires <= self.clock():
            del self._sessions[cookie]
            return False
        return True

    def authenticated(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.token_ok(credentials.strip()):
            return True
        return self.session_ok(request)

    def csrf_token(self, request: web.Request) -> str:
        """The CSRF token pages put in their forms (bound to the session)."""
        return _digest(self._key, "csrf:" + (request.cookies.get(COOKIE) or ""))

    def csrf_ok(self, request: web.Request, offered: str | None) -> bool:
        return offered is not None and _same(offered, self.csrf_token(request))

    def log_in(self, response: web.StreamResponse, request: web.Request) -> None:
        now = self.clock()
        for sid, expires in list(self._sessions.items()):
            if expires <= now:
                del self._sessions[sid]
        while len(self._sessions) >= MAX_SESSIONS:  # the oldest login goes first
            del self._sessions[next(iter(self._sessions))]
        session = secrets.token_urlsafe(32)
        self._sessions[session] = now + COOKIE_MAX_AGE
        response.set_cookie(
            COOKIE, session, max_age=COOKIE_MAX_AGE, path="/", httponly=True,
            samesite="Strict", secure=request.secure or _forwarded_https(request),
        )  # fmt: skip

    def log_out(self, response: web.StreamResponse, request: web.Request) -> None:
        cookie = request.cookies.get(COOKIE)
        if cookie:
            self._sessions.pop(cookie, None)
        response.del_cookie(COOKIE, path="/")

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await self._check(request, handler)
        except web.HTTPException as exc:  # aiohttp's own (404, 405): same headers
            _secure_headers(request, exc)
            raise
        except Exception as exc:  # a bug: one log line, a plain 500 with the same headers
            log.error("%s %s failed: %s: %s", request.method, request.path,
                      type(exc).__name__, exc)  # fmt: skip
            log.debug("traceback", exc_info=True)
            response = _json_error(500, "internal error")
        _secure_headers(request, response)
        return response

    async def _check(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CALLBACK_PREFIX):
            # WebSub hubs reach these through `public_url`: each callback is its own
            # unguessable id, and content must carry the subscription's HMAC signature.
            return await handler(request)
        if self.token is None and not _loopback_host(request.host):
            return _json_error(421, "this server answers only to a loopback host name")
        open_path = request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIX)
        if self.token is not None and not open_path:
            offered = request.query.get("token")
            if request.method == "GET" and offered is not None and self.token_ok(offered):
                rest = {k: v for k, v in request.query.items() if k != "token"}
                location = safe_next(request.path + ("?" + urlencode(rest) if rest else ""))
                response = see_other(location)
                self.log_in(response, request)
                return response
            if not self.authenticated(request):
                return self._refuse(request)
        if request.method == "POST" and request.path != "/login":
            form = await request.post()
            offered_csrf = form.get(CSRF_FIELD)
            if not isinstance(offered_csrf, str) or not self.csrf_ok(request, offered_csrf):
                return _json_error(403, "missing or wrong CSRF token: reload the page")
        return await handler(request)

    def _refuse(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
            return see_other("/login?" + urlencode({"next": request.path_qs}))
        response = _json_error(401, "authentication required: Bearer token or log in")
        response.headers["WWW-Authenticate"] = 'Bearer realm="news-monitor"'
        return response


def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "max-age=3600"


def see_other(location: str) -> web.Response:
    """A 303 to `location` (a response, not aiohttp's exception, so headers can be added)."""
    return web.Response(status=303, headers={"Location": location})


def _json_error(status: int, reason: str) -> web.Response:
    return web.Response(
        status=status, text=json.dumps({"error": reason}), content_type="application/json"
    )

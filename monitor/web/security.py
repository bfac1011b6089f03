"""Who may see and do what: the token (Bearer header, login cookie or ?token= once), CSRF
tokens for POSTs, a Host check against DNS rebinding, and the response headers (CSP).

Comparisons of secrets are constant-time (hmac.compare_digest). The cookie holds an HMAC
of the token, never the token itself.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

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

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _digest(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def safe_next(target: str | None) -> str:
    """A local path to go back to after login (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


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

    def __init__(self, token: str | None) -> None:
        self.token = token
        key = token.encode("utf-8") if token else secrets.token_bytes(32)
        self._key = key
        self._session = _digest(key, "news-monitor session") if token else ""

    def token_ok(self, offered: str | None) -> bool:
        if self.token is None or offered is None:
            return False
        return hmac.compare_digest(offered.encode("utf-8"), self.token.encode("utf-8"))

    def session_ok(self, request: web.Request) -> bool:
        cookie = request.cookies.get(COOKIE)
        return cookie is not None and hmac.compare_digest(cookie, self._session)

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
        return offered is not None and hmac.compare_digest(offered, self.csrf_token(request))

    def log_in(self, response: web.StreamResponse, request: web.Request) -> None:
        response.set_cookie(
            COOKIE, self._session, max_age=COOKIE_MAX_AGE, path="/", httponly=True,
            samesite="Strict", secure=request.secure,
        )  # fmt: skip

    def log_out(self, response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE, path="/")

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await self._check(request, handler)
        except web.HTTPException as exc:  # aiohttp's own (404, 405): same headers
            _secure_headers(request, exc)
            raise
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
                location = request.path + ("?" + urlencode(rest) if rest else "")
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

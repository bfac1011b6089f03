"""HTTP fetching with httpx: conditional GET, bounded concurrency, capped bodies, no cookies."""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy

import httpx

from monitor.errors import MonitorError
from monitor.state import FetchResponse

__all__ = ["DEFAULT_MAX_BYTES", "FetchError", "HttpFetcher"]

log = logging.getLogger(__name__)
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5


class FetchError(MonitorError):
    """The request failed before an HTTP response arrived (DNS, connect, timeout, TLS...)."""


class _RefuseAllCookies(DefaultCookiePolicy):
    def set_ok(self, cookie: Cookie, request: urllib.request.Request) -> bool:
        return False

    def return_ok(self, cookie: Cookie, request: urllib.request.Request) -> bool:
        return False


def _refusing_cookie_jar() -> CookieJar:
    return CookieJar(policy=_RefuseAllCookies())


class HttpFetcher:
    """One shared async client; at most `concurrency` requests in flight."""

    def __init__(
        self,
        user_agent: str,
        *,
        concurrency: int = 20,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.total_timeout = timeout * 2
        self._slots = asyncio.Semaphore(concurrency)
        self._client = httpx.AsyncClient(
            headers={
                "User-Agent": user_agent,
                "Accept": "application/rss+xml, application/atom+xml, application/feed+json,"
                " application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.8, */*;q=0.5",
            },
            cookies=_refusing_cookie_jar(),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            transport=transport,
        )

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResponse:
        """GET `url`, sending the stored validators exactly as the server gave them."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        async with self._slots:
            try:
                return await asyncio.wait_for(self._get(url, headers), self.total_timeout)
            except TimeoutError:
                raise FetchError(
                    f"no complete response within {self.total_timeout:.0f} s"
                ) from None
            except httpx.TooManyRedirects:
                raise FetchError(f"more than {MAX_REDIRECTS} redirects") from None
            except httpx.HTTPError as exc:
                raise FetchError(
                    f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                ) from None

    async def _get(self, url: str, headers: dict[str, str]) -> FetchResponse:
        async with self._client.stream("GET", url, headers=headers) as response:
            chunks: list[bytes] = []
            size = 0
            truncated = False
            if response.status_code == 200:
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > self.max_bytes:
                        truncated = True
                        log.warning("%s: response over %d bytes, cut off", url, self.max_bytes)
                        break
            content = b"".join(chunks)[: self.max_bytes]
            return FetchResponse(
                url=str(response.url),
                status=response.status_code,
                headers={k.lower(): v for k, v in response.headers.items()},
                content=content,
                truncated=truncated,
            )

    async def aclose(self) -> None:
        await self._client.aclose()

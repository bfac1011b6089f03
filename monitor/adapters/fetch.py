"""HTTP fetching with httpx over aiohttp: conditional GET, per-host manners, capped bodies,
no cookies."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import ssl
import time
import urllib.request
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import aiohttp.abc
import brotli
import httpx
from httpx_aiohttp import AiohttpTransport, HttpxAiohttpClient

from monitor.errors import MonitorError
from monitor.ports import HostTurns
from monitor.sources.identity import site_host
from monitor.state import FetchResponse

__all__ = ["DEFAULT_MAX_BYTES", "FetchError", "HttpFetcher"]

log = logging.getLogger(__name__)
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
REDIRECT_CODES = (301, 302, 303, 307, 308)
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9,"
    " text/xml;q=0.9, text/html;q=0.8, */*;q=0.5"
)


class FetchError(MonitorError):
    """The request failed before a usable HTTP response arrived."""


class _RefuseAllCookies(DefaultCookiePolicy):
    def set_ok(self, cookie: Cookie, request: urllib.request.Request) -> bool:
        return False

    def return_ok(self, cookie: Cookie, request: urllib.request.Request) -> bool:
        return False


@dataclass
class _HostGate:
    """At most `slots` requests in flight to one host, starts at least `gap` seconds apart."""

    slots: asyncio.Semaphore
    gap: float
    next_start: float = 0.0
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def wait_turn(self) -> None:
        async with self.turn:
            delay = self.next_start - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.next_start = time.monotonic() + self.gap


class _BoundedDecoder:
    """Decompresses gzip, deflate or brotli without ever producing more than `limit` bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding.strip().lower()
        self.limit = limit
        self._zlib: zlib._Decompress | None = None
        self._brotli: brotli.Decompressor | None = None
        if self.encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.encoding == "deflate":
            self._zlib = zlib.decompressobj()
        elif self.encoding == "br":
            self._brotli = brotli.Decompressor()
        elif self.encoding not in ("", "identity"):
            raise FetchError(f"unsupported Content-Encoding {encoding!r}")

    def decode(self, data: bytes, budget: int) -> bytes:
        try:
            if self._zlib is not None:
                return self._zlib.decompress(data, budget + 1)
            if self._brotli is not None:
                return bytes(self._brotli.process(data, output_buffer_limit=budget + 1))
        except (zlib.error, brotli.error) as exc:
            raise FetchError(f"bad {self.encoding} body: {exc}") from None
        return data


class HttpFetcher:
    """One shared async client with a global and a per-host bound on requests in flight."""

    def __init__(
        self,
        user_agent: str,
        *,
        concurrency: int = 100,
        per_host: int = 2,
        host_gap: float = 0.5,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
        public_only: bool = False,
        host_turns: HostTurns | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        # Every hop must resolve to public addresses (the web's rule tester fetches URLs
        # a visitor typed: never the daemon's own network).
        self.public_only = public_only
        self.host_turns = host_turns
        self.total_timeout = timeout * 2
        self.per_host = per_host
        self.host_gap = host_gap
        self._slots = asyncio.Semaphore(concurrency)
        self._hosts: dict[str, _HostGate] = {}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

        def client(public: bool) -> _AiohttpClient:
            return _AiohttpClient(
                headers={"User-Agent": user_agent, "Accept": ACCEPT},
                cookies=CookieJar(policy=_RefuseAllCookies()),
                timeout=httpx.Timeout(timeout, connect=connect_timeout),
                limits=limits,
                follow_redirects=False,
                # No proxy from the environment: a proxy would resolve the name itself.
                trust_env=not public,
                transport=transport
                or (_aiohttp_transport(limits, public=True) if public else None),
            )

        # Hops that must be public go through their own pool whose resolver refuses
        # non-public addresses: the address checked is the address connected to (no second
        # lookup a rebinding DNS server could answer differently), and no connection opened
        # to a trusted source's private host is reused for them.
        self._public_client = client(public=True)
        self._client = self._public_client if public_only else client(public=False)

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        discovered_on: str | None = None,
    ) -> FetchResponse:
        """GET `url`, echoing the stored validators exactly as the server gave them.

        Redirects are followed by hand (at most 5, loops refused) so every hop's status is
        known. A link `discovered_on` a configured source's URL is trusted on that source's
        host only: every hop to any other host must resolve to public addresses.
        """
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            return await self._follow(url, headers, discovered_on)
        except TimeoutError:
            raise FetchError(f"no complete response within {self.total_timeout:.0f} s") from None
        except (httpx.HTTPError, httpx.InvalidURL, aiohttp.ClientError) as exc:
            raise FetchError(_failure(exc)) from None

    async def _follow(
        self, url: str, headers: dict[str, str], discovered_on: str | None
    ) -> FetchResponse:
        seen = {url}
        hops: list[int] = []
        while True:
            public = self.public_only or (
                discovered_on is not None and site_host(url) != site_host(discovered_on)
            )
            if public:
                _require_public_literal(url)
            response = await self._get(url, headers, public)
            if response.status not in REDIRECT_CODES or "location" not in response.headers:
                return FetchResponse(
                    response.url, response.status, response.headers, response.content,
                    response.truncated, tuple(hops),
                )  # fmt: skip
            hops.append(response.status)
            url = urljoin(url, response.headers["location"])
            if url in seen:
                raise FetchError(f"redirect loop at {url}")
            if len(hops) > MAX_REDIRECTS:
                raise FetchError(f"more than {MAX_REDIRECTS} redirects")
            seen.add(url)

    def _gate(self, url: str) -> _HostGate:
        host = urlsplit(url).netloc.lower()
        gate = self._hosts.get(host)
        if gate is None:
            gate = self._hosts[host] = _HostGate(asyncio.Semaphore(self.per_host), self.host_gap)
        return gate

    async def _get(self, url: str, headers: dict[str, str], public: bool) -> FetchResponse:
        gate = self._gate(url)
        client = self._public_client if public else self._client
        async with gate.slots:
            await gate.wait_turn()
            async with self._cluster_turn(url), self._slots:
                return await asyncio.wait_for(self._send(client, url, headers), self.total_timeout)

    @contextlib.asynccontextmanager
    async def _cluster_turn(self, url: str) -> AsyncIterator[None]:
        """With `host_turns` (instances sharing a PostgreSQL database), the host's manners
        hold across all of them: wait for a cluster-wide turn, free it when done."""
        turns = self.host_turns
        if turns is None:
            yield
            return
        host = urlsplit(url).netloc.lower()
        while True:
            turn, wait = await asyncio.to_thread(turns.try_start, host, self.per_host,
                                                 self.host_gap)  # fmt: skip
            if turn is not None:
                break
            await asyncio.sleep(min(wait, 1.0))
        try:
            yield
        finally:
            with contextlib.suppress(MonitorError):  # expires by itself (TURN_HELD)
                await asyncio.to_thread(turns.finish, host, turn)

    async def _send(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str]
    ) -> FetchResponse:
        """One request; its deadline starts here, not while it waited for a slot."""
        async with client.stream("GET", url, headers=headers) as response:
            content, truncated = b"", False
            if response.status_code == 200:
                content, truncated = await self._read(response)
                if truncated:
                    log.warning("%s: response over %d bytes, cut off", url, self.max_bytes)
            return FetchResponse(
                url=url,
                status=response.status_code,
                headers={k.lower(): v for k, v in response.headers.items()},
                content=content,
                truncated=truncated,
            )

    async def _read(self, response: httpx.Response) -> tuple[bytes, bool]:
        """The decoded body, stopping once it exceeds the cap (bombs stop early)."""
        decoder = _BoundedDecoder(response.headers.get("content-encoding", ""), self.max_bytes)
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            chunk = decoder.decode(raw, self.max_bytes - size)
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_bytes:
                return b"".join(chunks)[: self.max_bytes], True
        return b"".join(chunks), False

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._public_client is not self._client:
            await self._public_client.aclose()


_UNLIMITED = httpx.Limits()


class _AiohttpClient(HttpxAiohttpClient):
    """httpx over aiohttp: far less CPU per request than httpcore.

    httpx reads the proxy settings (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY) once and
    mounts a proxied transport per pattern (HTTP proxies only: aiohttp has no SOCKS).
    aiohttp's own `trust_env` is left off: it would look the environment and ~/.netrc up
    again in a thread on every request, and send netrc credentials to feed hosts. Sessions
    keep no cookies and leave bodies encoded (`_BoundedDecoder` decodes them).
    """

    def _init_transport(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: str | tuple[str, str] | tuple[str, str, str] | None = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = _UNLIMITED,
        transport: httpx.AsyncBaseTransport | None = None,
        **kwargs: Any,
    ) -> httpx.AsyncBaseTransport:
        return transport or _aiohttp_transport(limits)

    def _init_proxy_transport(
        self,
        proxy: httpx.Proxy,
        verify: ssl.SSLContext | str | bool = True,
        cert: str | tuple[str, str] | tuple[str, str, str] | None = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = _UNLIMITED,
        **kwargs: Any,
    ) -> httpx.AsyncBaseTransport:
        if proxy.url.scheme not in ("http", "https"):
            # aiohttp speaks HTTP to proxies only; the URL may hold credentials: not logged.
            log.warning("a %s proxy from the environment is not supported; connecting "
                        "directly instead", proxy.url.scheme.upper())  # fmt: skip
            return _aiohttp_transport(limits)
        return _aiohttp_transport(limits, proxy)


def _aiohttp_transport(
    limits: httpx.Limits, proxy: httpx.Proxy | None = None, *, public: bool = False
) -> httpx.AsyncBaseTransport:
    def session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=limits.max_connections or 0,
                ssl=httpx.create_ssl_context(),
                resolver=_PublicResolver() if public else None,
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
        )

    return AiohttpTransport(client=session, proxy=proxy)


def _failure(exc: Exception) -> str:
    """What went wrong, by name: httpx-aiohttp turns every aiohttp connection error into
    httpx.ConnectTimeout, a refused connection and a failed DNS lookup included."""
    cause = exc.__cause__
    if (
        isinstance(exc, httpx.ConnectTimeout)
        and isinstance(cause, aiohttp.ClientError)
        and not isinstance(cause, TimeoutError)
    ):
        exc = cause
    if isinstance(exc, aiohttp.ClientConnectorDNSError) and isinstance(exc.os_error, _NonPublic):
        return str(exc.os_error)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"DNS lookup failed for {exc.host}: {_reason(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(
        exc, aiohttp.ClientSSLError
    ):
        return f"cannot connect to {exc.host}:{exc.port}: {_reason(exc.os_error)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _reason(error: OSError) -> str:
    if error.errno is not None and error.errno > 0:
        return os.strerror(error.errno)
    return error.strerror or str(error)


class _NonPublic(OSError):
    """A name that resolves to an address the daemon must not connect to."""

    def __init__(self, host: str) -> None:
        super().__init__(f"{host} resolves to a non-public address; not fetched")

    def __str__(self) -> str:
        return str(self.args[0])


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global


class _PublicResolver(aiohttp.abc.AbstractResolver):
    """aiohttp's resolver, refusing names with any non-global address.

    The connector connects to exactly the addresses this returns, so a DNS server that
    answers a public address to one lookup and 127.0.0.1 to the next gains nothing.
    """

    def __init__(self) -> None:
        self._inner = aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not results or not all(_is_public(result["host"]) for result in results):
            raise _NonPublic(host)
        return results

    async def close(self) -> None:
        await self._inner.close()


def _require_public_literal(url: str) -> None:
    """Refuse a URL whose host is a non-public IP address written out (aiohttp connects to
    those without asking the resolver); names are checked by `_PublicResolver`."""
    host = urlsplit(url).hostname or ""
    try:
        public = _is_public(host)
    except ValueError:
        return  # a name
    if not public:
        raise FetchError(str(_NonPublic(host)))

"""The WebSub subscriber's requests to hubs (`ports.HubClient`), over httpx."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import httpx

from monitor.errors import MonitorError

__all__ = ["HttpHubClient"]

MAX_REDIRECTS = 5
MAX_ANSWER = 1024


class HttpHubClient:
    """Form POSTs to hubs. A 307 or 308 is followed with the same POST (the spec's hub
    redirects); any other redirect ends the request with its status."""

    def __init__(self, user_agent: str, timeout: float = 30.0) -> None:
        self._client = httpx.AsyncClient(
            headers={"User-Agent": user_agent}, timeout=timeout, follow_redirects=False
        )

    async def post_form(self, url: str, form: dict[str, str]) -> tuple[int, str]:
        seen = {url}
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = await self._client.post(url, data=form)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise MonitorError(f"hub {_host(url)}: {type(exc).__name__}: {exc}") from None
            location = response.headers.get("location")
            if response.status_code not in (307, 308) or not location:
                return response.status_code, response.text[:MAX_ANSWER]
            url = urljoin(url, location)
            if url in seen:
                raise MonitorError(f"hub {_host(url)}: redirect loop")
            seen.add(url)
        raise MonitorError(f"hub {_host(url)}: more than {MAX_REDIRECTS} redirects")

    async def aclose(self) -> None:
        await self._client.aclose()


def _host(url: str) -> str:
    return urlsplit(url).netloc or url

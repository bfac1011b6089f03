"""`monitor healthcheck`: ask a running daemon's /readyz whether it is ready."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from monitor.config.schema import WebSettings

__all__ = ["probe", "readyz_url"]


def readyz_url(web: WebSettings) -> str:
    """Where the daemon of this `[web]` answers: a wildcard address is asked on loopback."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(web.host, web.host)  # noqa: S104
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{web.port}/readyz"


def probe(url: str, token: str | None, timeout: float = 5.0) -> tuple[bool, str]:
    """(ready, why): ready only on a 200 whose JSON says "ready"."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(65536)
            status = response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(65536), exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url}: cannot connect: {reason}"
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {}
    reason = answer.get("reason") if isinstance(answer, dict) else None
    if status == 200 and isinstance(answer, dict) and answer.get("status") == "ready":
        return True, "ready"
    return False, f"{url}: HTTP {status}: {reason or 'not ready'}"

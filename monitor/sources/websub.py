"""WebSub (W3C Recommendation, 2018) as pure functions: discovery of a topic's hubs and self
URL, the X-Hub-Signature check, and the lease arithmetic. No I/O; `now` is passed in.

Discovery follows the spec's order (section 4): the HTTP `Link` headers of the topic's
response first; only when they name no hub, the document's own links: Atom `<link
rel="hub">`/`rel="self"`, RSS `<atom:link>`, HTML `<link>` in the head. The topic is the
discovered `self` URL, else the URL the document was finally fetched from (after redirects).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urljoin, urlsplit

__all__ = [
    "DEFAULT_LEASE",
    "Discovery",
    "discover",
    "fallback_interval",
    "hub_allowed",
    "link_header",
    "new_callback_id",
    "new_secret",
    "renew_at",
    "sign",
    "signature_ok",
]

DEFAULT_LEASE = timedelta(days=10)
"""The lease asked of the hub (it may grant another; a hub that names none gets this)."""
RENEW_AT = 0.8  # of the granted lease
FALLBACK_FACTOR = 4
FALLBACK_MAX = timedelta(hours=24)
_SCAN = 256 * 1024  # discovery reads the document's head, never a whole large body
_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
            "sha512": hashlib.sha512}  # fmt: skip
_LINK_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?link\b([^>]*)>", re.IGNORECASE)
_ATTR = re.compile(rb"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_BODY_START = re.compile(rb"<(?:[\w.-]+:)?(?:entry|item)\b|</head\s*>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Discovery:
    hubs: tuple[str, ...]
    topic: str
    """The self URL (the fetched URL when none is advertised)."""


def link_header(value: str) -> list[tuple[str, set[str]]]:
    """RFC 8288 `Link` values as (target, rel values); several headers come comma-joined."""
    links: list[tuple[str, set[str]]] = []
    for match in re.finditer(r"<([^>]*)>((?:\s*;\s*[^,;<]+(?:\"[^\"]*\")?)*)", value):
        rels: set[str] = set()
        for param in match.group(2).split(";"):
            name, _, raw = param.partition("=")
            if name.strip().lower() == "rel":
                rels.update(raw.strip().strip('"').lower().split())
        links.append((match.group(1).strip(), rels))
    return links


def _document_links(content: bytes) -> list[tuple[str, set[str]]]:
    head = content[:_SCAN]
    end = _BODY_START.search(head)
    if end is not None:
        head = head[: end.start()]
    links = []
    for tag in _LINK_TAG.finditer(head):
        attrs: dict[str, str] = {}
        for attr in _ATTR.finditer(tag.group(1)):
            raw = attr.group(2) or attr.group(3) or attr.group(4) or b""
            attrs[attr.group(1).decode("ascii", "replace").lower()] = html.unescape(
                raw.decode("utf-8", "replace")
            )
        if "href" in attrs and "rel" in attrs:
            links.append((attrs["href"].strip(), set(attrs["rel"].lower().split())))
    return links


def _pick(links: list[tuple[str, set[str]]], base: str) -> tuple[list[str], str | None]:
    hubs: list[str] = []
    own: str | None = None
    for target, rels in links:
        url = urljoin(base, target)
        if urlsplit(url).scheme not in ("http", "https"):
            continue
        if "hub" in rels and url not in hubs:
            hubs.append(url)
        if "self" in rels and own is None:
            own = url
    return hubs, own


def discover(url: str, headers: Mapping[str, str], content: bytes) -> Discovery | None:
    """The hubs and topic a fetched document advertises (None: no hub, no push).

    `url` is the URL the document came from after redirects; `headers` lower-cased."""
    hubs, own = _pick(link_header(headers.get("link", "")), url)
    if not hubs:
        hubs, doc_self = _pick(_document_links(content), url)
        own = own or doc_self
    elif own is None:
        own = _pick(_document_links(content), url)[1]
    if not hubs:
        return None
    return Discovery(tuple(hubs), own or url)


def hub_allowed(hub: str, fetched_from: str) -> bool:
    """Whether to POST to an advertised hub: a feed may not point us at a private, loopback
    or link-local address (or "localhost") unless it was itself fetched from one."""
    return _private(fetched_from) or not _private(hub)


def _private(url: str) -> bool:
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def new_callback_id() -> str:
    """An unguessable path segment for one subscription's callback (256 bits)."""
    return secrets.token_urlsafe(32)


def new_secret() -> str:
    """A fresh hub.secret (the spec caps it at 200 bytes)."""
    return secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, method: str = "sha256") -> str:
    """The X-Hub-Signature value a hub sends for `body` (tests, and the hub test server)."""
    digest = hmac.new(secret.encode(), body, _DIGESTS[method]).hexdigest()
    return f"{method}={digest}"


def signature_ok(secret: str, header: str | None, body: bytes) -> bool:
    """Whether `X-Hub-Signature: method=hex` is the HMAC of `body` under `secret` (sha1,
    sha256, sha384 or sha512), compared in constant time."""
    if not header:
        return False
    method, _, given = header.strip().partition("=")
    digest = _DIGESTS.get(method.strip().lower())
    if digest is None or not given:
        return False
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())


def renew_at(verified_at: datetime, lease: timedelta) -> datetime:
    """When to renew a lease granted at `verified_at`: at 80% of it."""
    return verified_at + lease * RENEW_AT


def fallback_interval(interval: timedelta) -> timedelta:
    """The safety-net poll interval of a pushed source: 4x its own, at most 24 h (never
    shorter than its own)."""
    return max(interval, min(interval * FALLBACK_FACTOR, FALLBACK_MAX))

"""What makes two items the same article: canonical URLs and identity keys."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monitor.model import article_id, clean_text

__all__ = [
    "article_identity",
    "canonical_url",
    "is_http_url",
    "link_id",
    "site_host",
    "url_identity",
]

_TRACKING = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid", "ocid", "cmpid", "_ga", "igshid")


def canonical_url(url: str) -> str:
    """Lowercase scheme and host, no fragment, no tracking parameters such as utm_*."""
    parts = urlsplit(url.strip())
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not key.lower().startswith(_TRACKING)
    ]
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", urlencode(query), "")
    )


def is_http_url(value: str) -> bool:
    parts = urlsplit(value.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def site_host(url: str) -> str:
    """The URL's host, lowercased, without a leading "www." (one site, either way)."""
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def article_identity(source: str, *, guid: str, guid_is_url: bool, link: str, text: str) -> str:
    """The key that says two items are the same article, whatever their order or dates.

    A URL (a permalink guid, else the link) identifies an article across sources, so the
    same story in two section feeds of one site is one article. An opaque guid only means
    something within its own feed; with neither, the content decides.
    """
    if guid and guid_is_url:
        return url_identity(guid)
    if guid:
        return f"guid:{source}:{guid.strip()}"
    if link:
        return url_identity(link)
    digest = hashlib.sha256(clean_text(text).encode("utf-8")).hexdigest()
    return f"hash:{source}:{digest}"


def url_identity(url: str) -> str:
    """The identity key of whatever article lives at `url` (its canonical form)."""
    return "url:" + canonical_url(url)


def link_id(url: str) -> str:
    """The id an article found at `url` has (unless it names another canonical URL): what a
    front page's link is looked up by before it is fetched."""
    return article_id(url_identity(url))

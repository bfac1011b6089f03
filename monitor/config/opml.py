"""OPML in and out (pure): subscription lists to `[[sources]]` tables and back.

Reading is two-step. A strict XML parse (lxml, no DTD, no entities, no network) reads
well-formed files; when it fails, as it does on most real exports (an unescaped `&`, raw
quotes or markup inside attribute values, a missing close tag), the outlines are read
leniently by a small tokenizer that only looks for `<outline ...>` and `</outline>`.
Either way every outline that is not imported is reported with the reason.

Grouping: the folders an outline sits in (nested folders joined by "/"), else its first
`category` path, become the source's `group`; the group's slug prefixes the source name
(`tech.ars-technica`), so a rule's `sources = ["tech.*"]` glob selects a folder.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import urlsplit, urlunsplit

from lxml import etree

from monitor.config.durations import format_duration
from monitor.config.schema import Settings, Source, source_setting_error

__all__ = [
    "NAMESPACE",
    "ExportSource",
    "Imported",
    "OpmlRead",
    "Skipped",
    "Subscription",
    "export_opml",
    "export_sources",
    "plan_import",
    "read_opml",
    "sources_toml",
    "url_key",
]

NAMESPACE = "https://github.com/news-monitor/news-monitor/opml"
PREFIX = "monitor"
MAX_NAME = 48
# Attributes of ours that carry a source's settings through an export and back.
OWN_KEYS = ("name", "interval", "kind", "enabled", "full_text", "max_items")
_LIST_TYPES = {"link", "include", "source"}


@dataclass(frozen=True, slots=True)
class Subscription:
    """One feed outline as read: its title, URL and where it sat."""

    title: str
    url: str
    folders: tuple[str, ...] = ()
    categories: tuple[tuple[str, ...], ...] = ()
    line: int | None = None
    own: Mapping[str, str] = field(default_factory=dict)  # our namespaced attributes

    @property
    def group(self) -> str | None:
        if self.folders:
            return "/".join(self.folders)
        return "/".join(self.categories[0]) if self.categories else None


@dataclass(frozen=True, slots=True)
class Skipped:
    where: str  # "line 12" or "outline 7"
    title: str
    reason: str

    def __str__(self) -> str:
        title = f" ({self.title})" if self.title else ""
        return f"{self.where}{title}: {self.reason}"


@dataclass(slots=True)
class OpmlRead:
    subscriptions: list[Subscription] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    lenient: str | None = None  # why the strict parse failed, when the lenient one was used


@dataclass(frozen=True, slots=True)
class Imported:
    """A subscription to write as a `[[sources]]` table."""

    name: str
    url: str
    title: str
    group: str | None
    settings: Mapping[str, str | bool | int] = field(default_factory=dict)


# -- reading -----------------------------------------------------------------------------


class _NotOpml(Exception):
    """Well-formed XML whose root is not <opml>."""


def read_opml(data: bytes) -> OpmlRead:
    """The feed outlines of an OPML document, strictly if it is well-formed XML, else
    leniently; never raises on bad input (a file with no outlines reads as empty)."""
    try:
        result = _read_strict(data)
    except (etree.XMLSyntaxError, _NotOpml) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reason = re.sub(r"\s*\(<string>, line \d+\)$", "", reason)
        kind = "not well-formed XML" if isinstance(exc, etree.XMLSyntaxError) else "not OPML"
        reason = f"{kind}: {reason}"
    else:
        if result.subscriptions or result.skipped:
            return result
        reason = "no outlines found by the XML parse"
    lenient = _read_lenient(_decode(data))
    if not (lenient.subscriptions or lenient.skipped) and reason.startswith("no outlines"):
        return lenient  # well-formed and empty: nothing was read leniently
    return _with(lenient, reason)


def _with(result: OpmlRead, reason: str) -> OpmlRead:
    result.lenient = reason
    return result


def _local(element: etree._Element) -> str:
    """An element's name without its namespace (<opml xmlns="http://opml.org/spec2">)."""
    if not isinstance(element.tag, str):
        return ""
    return str(etree.QName(element).localname).lower()


def _read_strict(data: bytes) -> OpmlRead:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    root = etree.fromstring(data, parser)
    if _local(root) != "opml":
        raise _NotOpml("the root element is not <opml>")
    reader = _Reader()
    body = [c for c in root if _local(c) == "body"]
    for element in body[0] if body else ():
        _walk(element, reader, ())
    return reader.result


def _walk(element: etree._Element, reader: _Reader, folders: tuple[str, ...]) -> None:
    if _local(element) != "outline":
        return
    attrs = {_attr_name(k): (v or "") for k, v in element.attrib.items()}
    children = [c for c in element if _local(c) == "outline"]
    inner = reader.outline(attrs, folders, element.sourceline, has_children=bool(children))
    for child in children:
        _walk(child, reader, inner)


def _attr_name(key: str | bytes) -> str:
    text = key.decode() if isinstance(key, bytes) else key
    if text.startswith("{"):
        namespace, _, local = text[1:].partition("}")
        return f"{PREFIX}:{local.lower()}" if namespace == NAMESPACE else local.lower()
    return text.lower()


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    declared = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)", data)
    for encoding in ([declared.group(1).decode()] if declared else []) + ["utf-8"]:
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("windows-1252", "replace")


_TAG = re.compile(r"<(/?)outline\b", re.IGNORECASE)
_SKIP = re.compile(r"<!--.*?(?:-->|\Z)|<!\[CDATA\[.*?(?:\]\]>|\Z)", re.DOTALL)
_ATTR_NAME = re.compile(r"""[^\s=/<>"']+""")
_EQUALS = re.compile(r"\s*=\s*")
_VALUE_END = re.compile(r"""\s+[^\s=/>"']+\s*=|\s*/?>|\s*\Z""")


def _read_lenient(text: str) -> OpmlRead:
    """Outlines from text that is not XML: `<outline` tags with attributes read so that a
    quote ends a value only where a new attribute or the tag's end follows."""
    reader = _Reader()
    stack: list[tuple[str, ...]] = []  # the folders inside each open outline
    folders: tuple[str, ...] = ()
    text = _SKIP.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)  # lines stay put
    lines = _LineIndex(text)
    position = 0
    while match := _TAG.search(text, position):
        if match.group(1):  # </outline>
            end = text.find(">", match.end())
            position = len(text) if end < 0 else end + 1
            if stack:
                folders = stack.pop()
            continue
        attrs, closed, position = _attributes(text, match.end())
        line = lines.line_of(match.start())
        if closed:
            reader.outline(attrs, folders, line, has_children=False)
            continue
        following = _TAG.search(text, position)
        has_children = following is not None and not following.group(1)
        inner = reader.outline(attrs, folders, line, has_children=has_children)
        stack.append(folders)
        folders = inner
    return reader.result


def _attributes(text: str, position: int) -> tuple[dict[str, str], bool, int]:
    """The attributes from `position` to the tag's end, whether it closed itself (`/>`,
    or never closed before the next tag), and where reading stopped."""
    attrs: dict[str, str] = {}
    length = len(text)
    while True:
        while position < length and text[position].isspace():
            position += 1
        if position >= length:
            return attrs, True, length
        if text.startswith("/>", position):
            return attrs, True, position + 2
        if text[position] == ">":
            return attrs, False, position + 1
        if text[position] == "<":  # a new tag: this one was never closed
            return attrs, True, position
        name = _ATTR_NAME.match(text, position)
        if name is None:  # a stray quote, '=' or '/'
            position += 1
            continue
        key = name.group(0).lower()
        position = name.end()
        equals = _EQUALS.match(text, position)
        if equals is None:
            attrs.setdefault(key, "")
            continue
        value, position = _value(text, equals.end())
        attrs.setdefault(key, html.unescape(value))


def _value(text: str, position: int) -> tuple[str, int]:
    quote = text[position:position + 1]  # fmt: skip
    if quote not in ("'", '"'):
        bare = re.match(r"[^\s>]*", text[position:])
        raw = bare.group(0) if bare else ""
        if raw.endswith("/") and text.startswith(">", position + len(raw)):
            raw = raw[:-1]
        return raw, position + len(raw)
    start = position + 1
    search = start
    while True:
        end = text.find(quote, search)
        if end < 0:
            tag_end = text.find(">", start)
            stop = len(text) if tag_end < 0 else tag_end
            return text[start:stop], stop
        if _VALUE_END.match(text, end + 1):
            return text[start:end], end + 1
        search = end + 1


class _LineIndex:
    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(self, offset: int) -> int:
        low, high = 0, len(self.starts)
        while high - low > 1:
            middle = (low + high) // 2
            if self.starts[middle] <= offset:
                low = middle
            else:
                high = middle
        return low + 1


class _Reader:
    """Turns each outline's attributes into a subscription, a folder, or a skip."""

    def __init__(self) -> None:
        self.result = OpmlRead()
        self.count = 0
        self.seen: dict[str, str] = {}  # URL key -> where first seen

    def outline(
        self, attrs: Mapping[str, str], folders: tuple[str, ...], line: int | None,
        *, has_children: bool,
    ) -> tuple[str, ...]:  # fmt: skip
        """Record one outline; return the folders its children sit in."""
        self.count += 1
        where = f"line {line}" if line else f"outline {self.count}"
        title = _clean_title(attrs.get("text", "")) or _clean_title(attrs.get("title", ""))
        kind = attrs.get("type", "").strip().lower()
        url = attrs.get("xmlurl", "").strip()
        if not url:
            if has_children:
                return (*folders, title) if title else folders
            if kind in _LIST_TYPES and attrs.get("url", "").strip():
                self.skip(where, title, f"a link to another list (type={kind}), not a feed")
            elif attrs.get("htmlurl", "").strip():
                self.skip(where, title, "no xmlUrl (only a web page link)")
            elif title and not kind:
                pass  # an empty folder or a note: nothing to import, nothing lost
            else:
                self.skip(where, title, "no xmlUrl")
            return (*folders, title) if title else folders
        if kind == "source":
            self.skip(where, title, "a link to another subscription list (type=source)")
            return folders
        try:
            fixed = _http_url(url)
        except ValueError:
            self.skip(where, title, f"invalid URL: {_short(url)}")
            return folders
        if fixed is None:
            self.skip(where, title, f"not an http(s) URL: {_short(url)}")
            return folders
        key = url_key(fixed)
        if key in self.seen:
            self.skip(where, title, f"duplicate of the feed at {self.seen[key]}")
            return folders
        self.seen[key] = where
        own = {k.partition(":")[2]: v for k, v in attrs.items() if k.startswith(f"{PREFIX}:")}
        self.result.subscriptions.append(
            Subscription(title, fixed, folders, _categories(attrs.get("category", "")), line, own)
        )
        return folders

    def skip(self, where: str, title: str, reason: str) -> None:
        self.result.skipped.append(Skipped(where, title, reason))


def _clean_title(text: str) -> str:
    """Readable text: markup and control characters out, whitespace collapsed."""
    text = re.sub(r"<[^>]*>", "", html.unescape(text))
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(text.split())[:200]


def _short(text: str) -> str:
    text = "".join(ch for ch in text if ch.isprintable())
    return text if len(text) <= 80 else text[:77] + "..."


def _categories(text: str) -> tuple[tuple[str, ...], ...]:
    paths = []
    for part in text.split(","):
        path = tuple(p.strip() for p in part.split("/") if p.strip())
        if path and path not in paths:
            paths.append(path)
    return tuple(paths)


def _http_url(url: str) -> str | None:
    """The URL if it is http(s); `feed:` forms are rewritten; anything else is None.
    ValueError for a URL that cannot be taken apart (a bad port, an unclosed `[`)."""
    url = "".join(url.split())
    lowered = url.lower()
    if lowered.startswith("feed:"):
        rest = url[5:]
        url = rest if rest.lower().startswith(("http://", "https://")) else "http:" + rest
        if not url.lower().startswith(("http://", "https://")):
            url = "http://" + url.removeprefix("http:").lstrip("/")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    _ = parts.port  # ValueError: "example.com:abc", a port over 65535
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path, parts.query, ""))


def url_key(url: str) -> str:
    """What makes two feed URLs the same subscription: scheme and host case, default
    ports, a trailing slash and the fragment do not count. A URL that cannot be taken
    apart is its own key."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port if parts.port not in (None, 80, 443) else None
    except ValueError:
        return url.strip()
    host = (parts.hostname or "").lower()
    netloc = f"{host}:{port}" if port else host
    path = parts.path.rstrip("/") or ""
    return urlunsplit(("http", netloc, path, parts.query, ""))


# -- planning and writing ------------------------------------------------------------------


def slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text)
    ascii_text = folded.encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z0-9]+", ascii_text)
    return "-".join(words)[:MAX_NAME].strip("-")


def _base_name(sub: Subscription) -> str:
    own = sub.own.get("name", "").strip()
    if own and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", own):
        return own
    name = slug(sub.title)
    if not name:
        parts = urlsplit(sub.url)
        name = slug(f"{(parts.hostname or '').removeprefix('www.')} {parts.path}") or "feed"
    group = sub.group
    if group:
        prefix = ".".join(filter(None, (slug(p) for p in group.split("/"))))
        if prefix and not name.startswith(prefix + "."):
            name = f"{prefix}.{name}"
    return name


def plan_import(
    read: OpmlRead, existing_names: Iterable[str], existing_urls: Iterable[str]
) -> tuple[list[Imported], list[Skipped]]:
    """The sources to write (unique names, URLs not already configured) and what is
    skipped on top of what reading skipped."""
    taken = set(existing_names)
    configured = {url_key(u) for u in existing_urls}
    imported: list[Imported] = []
    skipped: list[Skipped] = []
    for index, sub in enumerate(read.subscriptions, 1):
        where = f"line {sub.line}" if sub.line else f"feed {index}"
        if url_key(sub.url) in configured:
            skipped.append(Skipped(where, sub.title, "already configured"))
            continue
        base = _base_name(sub)
        name, number = base, 2
        while name in taken:
            name, number = f"{base}-{number}", number + 1
        taken.add(name)
        group = sub.group
        if len(sub.categories) > (0 if sub.folders else 1):
            kept = sub.categories if sub.folders else sub.categories[1:]
            dropped = ", ".join("/".join(path) for path in kept)
            skipped.append(
                Skipped(where, sub.title, f"imported; categories not kept as its group: {dropped}")
            )
        settings, problems = _own_settings(sub.own)
        skipped += [Skipped(where, sub.title, problem) for problem in problems]
        imported.append(Imported(name, sub.url, sub.title, group, settings))
    return imported, skipped


def _own_settings(own: Mapping[str, str]) -> tuple[dict[str, str | bool | int], list[str]]:
    """Our `monitor:` attributes as source settings, each checked by the config's own
    parser (an imported file must pass `monitor check`); the refused ones, reported."""
    settings: dict[str, str | bool | int] = {}
    problems: list[str] = []
    for key in ("interval", "kind", "enabled", "full_text", "max_items"):
        raw = own.get(key, "").strip()
        if not raw:
            continue
        value: str | bool | int = raw
        if key in ("enabled", "full_text") and raw in ("true", "false"):
            value = raw == "true"
        elif key == "max_items" and raw.isdigit():
            value = int(raw)
        error = source_setting_error(key, value)
        if error is None:
            settings[key] = value
        else:
            problems.append(f"imported without {PREFIX}:{key}={_short(raw)!r}: {error}")
    return settings, problems


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def sources_toml(imported: Sequence[Imported], origin: str = "") -> str:
    """`[[sources]]` tables, one per imported subscription, each headed by its title."""
    lines = [f"# Imported from {_comment(origin)}\n"] if origin else []
    for item in imported:
        lines.append("\n")
        if item.title and item.title != item.name:
            lines.append(f"# {_comment(item.title)}\n")
        lines.append("[[sources]]\n")
        lines.append(f"name = {_toml_string(item.name)}\n")
        lines.append(f"url = {_toml_string(item.url)}\n")
        if item.group:
            lines.append(f"group = {_toml_string(item.group)}\n")
        for key, value in item.settings.items():
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}\n")
            elif isinstance(value, int):
                lines.append(f"{key} = {value}\n")
            else:
                lines.append(f"{key} = {_toml_string(value)}\n")
    return "".join(lines)


def _comment(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text)


@dataclass(frozen=True, slots=True)
class ExportSource:
    """What an export needs of a configured source."""

    name: str
    url: str
    group: str | None = None
    settings: Mapping[str, str] = field(default_factory=dict)  # our attributes, as text


def export_opml(sources: Sequence[ExportSource], now: datetime, title: str) -> bytes:
    """OPML 2.0: folders from each source's group, our settings in our namespace."""
    root = etree.Element("opml", version="2.0", nsmap={PREFIX: NAMESPACE})
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    body = etree.SubElement(root, "body")
    folders: dict[tuple[str, ...], etree._Element] = {(): body}
    for source in sources:
        path = tuple(p for p in (source.group or "").split("/") if p.strip())
        parent = _folder(folders, path)
        outline = etree.SubElement(parent, "outline")
        outline.set("type", "rss")
        outline.set("text", source.name)
        outline.set("title", source.name)
        outline.set("xmlUrl", source.url)
        outline.set(f"{{{NAMESPACE}}}name", source.name)
        for key, value in source.settings.items():
            outline.set(f"{{{NAMESPACE}}}{key}", value)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return out


def _folder(
    folders: dict[tuple[str, ...], etree._Element], path: tuple[str, ...]
) -> etree._Element:
    if path in folders:
        return folders[path]
    parent = _folder(folders, path[:-1])
    element = etree.SubElement(parent, "outline", text=path[-1], title=path[-1])
    folders[path] = element
    return element


def export_sources(sources: Sequence[Source], settings: Settings) -> list[ExportSource]:
    """The configured sources as an export writes them: a setting only where it differs
    from what an import into the same config would give by default."""
    exported = []
    for source in sources:
        own: dict[str, str] = {}
        if source.interval != settings.interval:
            own["interval"] = format_duration(source.interval)
        if source.read_as != "auto":
            own["kind"] = source.read_as
        if not source.enabled:
            own["enabled"] = "false"
        if source.full_text:
            own["full_text"] = "true"
        if source.max_items != settings.max_items:
            own["max_items"] = str(source.max_items)
        exported.append(ExportSource(source.name, source.url, source.group, own))
    return exported

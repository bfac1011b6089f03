"""Bytes of an HTML page to text: byte order mark, HTTP charset, <meta>, else detection.

Order (as browsers do it): a BOM is certain and wins; then the HTTP Content-Type charset;
then a <meta charset> / http-equiv / XML declaration in the first 8 KiB; then detection
(valid UTF-8 first, else charset_normalizer given at least 40 non-ASCII bytes, else
windows-1252: a guess from fewer bytes is noise). Declared labels are read the way the WHATWG
Encoding Standard reads them, which means supersets: GB2312/GBK are decoded as GB18030,
Shift_JIS as cp932 (adds NEC/IBM extensions such as ① and 髙, and maps 0x8160 to ～ as
Windows does), EUC-KR as cp949 (all 11,172 Hangul syllables), ISO-8859-1 and ASCII as
windows-1252 (curly quotes in 0x80-0x9F). A Latin-1 family label, often a server default,
is not trusted over bytes that are valid multi-byte UTF-8.

A few bad bytes do not discredit a declaration. When no declared encoding decodes the bytes,
UTF-8 and then each declared one is tried again, and the first that fails on at most a
quarter of the non-ASCII bytes decodes the document, its invalid sequences replaced by
U+FFFD (`Decoded.replaced` counts their bytes). UTF-8 comes first because text in another
encoding almost never passes for it (legacy pages fail on two thirds to all of their
non-ASCII bytes), while single- and double-byte codecs accept much of any input. Only when
all fail that broadly is the charset detected.
"""

from __future__ import annotations

import codecs
import re
import threading
from dataclasses import dataclass

__all__ = ["Decoded", "decode", "decode_feed", "decode_html", "encoding_for", "utf8_xml"]

_SNIFF_BYTES = 8192
_DETECT_BYTES = 200_000
_MIN_DETECT_BYTES = 40
_MAX_INVALID_SHARE = 0.25  # invalid sequences per non-ASCII byte a declaration survives
_ASCII = bytes(range(0x80))
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""", re.IGNORECASE)
_XML_DECLARED = re.compile(r"""^(\s*<\?xml[^>]+encoding\s*=\s*["'])[\w.:-]+""", re.IGNORECASE)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "shift_jis_2004": "cp932",
    "shift_jisx0213": "cp932",
    "euc_kr": "cp949",
    "windows-949": "cp949",
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "iso8859-9": "cp1254",
    "tis-620": "cp874",
    "iso8859-11": "cp874",
    "big5": "big5hkscs",
}
_LATIN1_FAMILY = {"cp1252"}


@dataclass(frozen=True, slots=True)
class Decoded:
    """A document's text, the codec that gave it, and how many invalid bytes in it were
    replaced by U+FFFD (0 unless the chosen encoding failed on a few bytes)."""

    text: str
    encoding: str
    replaced: int = 0


def decode_html(content: bytes, content_type: str = "") -> str:
    """The page's text, decoded with the first trustworthy charset (see the module notes)."""
    return decode(content, content_type).text


def decode(content: bytes, content_type: str = "") -> Decoded:
    """`decode_html` with the encoding used and the count of bytes it could not decode."""
    for bom, encoding in _BOMS:
        if content.startswith(bom):
            return _with_replacements(content, encoding)
    declared = [
        encoding
        for encoding in (_header_encoding(content_type), _document_encoding(content))
        if encoding and not _utf8_despite_latin1_label(encoding, content)
    ]
    return _decoded(content, declared)


def decode_feed(content: bytes, content_type: str) -> Decoded | None:
    """A feed's text when its bytes fail the encoding they declare (the HTTP charset, else
    the XML declaration, else UTF-8) but decode in another declared one or with a few bad
    bytes replaced. None when they start with a BOM or decode as declared, and when they fail
    broadly: then feedparser's own fallback (windows-1252) reads them, as it always has
    (charset_normalizer guesses worse on short Latin text)."""
    if any(content.startswith(bom) for bom, _ in _BOMS):
        return None
    declared = [
        encoding
        for encoding in (_header_encoding(content_type), _xml_encoding(content))
        if encoding
    ] or ["utf-8"]
    try:
        content.decode(declared[0])
    except UnicodeDecodeError:
        return _strictly(content, declared[1:]) or _repaired(content, ["utf-8", *declared])
    return None


def utf8_xml(text: str) -> bytes:
    """An XML document's text as UTF-8 bytes, its declaration (if any) saying so."""
    return _XML_DECLARED.sub(r"\g<1>utf-8", text, count=1).encode("utf-8")


def _decoded(content: bytes, declared: list[str]) -> Decoded:
    return (
        _strictly(content, declared)
        or _repaired(content, ["utf-8", *declared])
        or _detected(content, fallback=declared[0] if declared else "cp1252")
    )


def _strictly(content: bytes, encodings: list[str]) -> Decoded | None:
    for encoding in encodings:
        try:
            return Decoded(content.decode(encoding), encoding)
        except UnicodeDecodeError:
            continue
    return None


def _repaired(content: bytes, encodings: list[str]) -> Decoded | None:
    """Decoded with the first encoding whose invalid bytes are a small share of the non-ASCII
    ones; None when every one fails broadly."""
    non_ascii = len(content.translate(None, _ASCII))
    for encoding in dict.fromkeys(encodings):
        decoded = _with_replacements(content, encoding)
        if decoded.replaced <= non_ascii * _MAX_INVALID_SHARE:
            return decoded
    return None


def _with_replacements(content: bytes, encoding: str) -> Decoded:
    _invalid.bytes = 0
    text = content.decode(encoding, errors=_COUNTING)
    return Decoded(text, encoding, _invalid.bytes)


def _replace_counting(error: UnicodeError) -> tuple[str, int]:
    """Like errors="replace", counting the bytes replaced (in this thread's `_invalid`)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    _invalid.bytes += error.end - error.start
    return "\ufffd", error.end


_invalid = threading.local()
_COUNTING = "news-monitor-count"
codecs.register_error(_COUNTING, _replace_counting)


def encoding_for(label: str) -> str | None:
    """The Python codec for a charset label, upgraded to its superset; None if unknown."""
    key = label.strip().strip("\"'").lower()
    if key in _SUPERSETS:
        return _SUPERSETS[key]
    try:
        name = codecs.lookup(key).name
    except LookupError:
        return None
    if name.startswith(("utf-16", "utf-32")):
        return "utf-8"  # a UTF-16 label on an ASCII-compatible document (WHATWG)
    return _SUPERSETS.get(name, name)


def _header_encoding(content_type: str) -> str | None:
    match = _HEADER_CHARSET.search(content_type)
    return encoding_for(match.group(1)) if match else None


def _document_encoding(content: bytes) -> str | None:
    head = content[:_SNIFF_BYTES]
    match = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
    return encoding_for(match.group(1).decode("ascii")) if match else None


def _xml_encoding(content: bytes) -> str | None:
    match = _XML_ENCODING.search(content[:_SNIFF_BYTES])
    return encoding_for(match.group(1).decode("ascii")) if match else None


def _utf8_despite_latin1_label(encoding: str, content: bytes) -> bool:
    """Bytes that are UTF-8 (but for a few bad ones) under a Latin-1 family label."""
    return (
        encoding in _LATIN1_FAMILY
        and not content.isascii()
        and (_is_utf8(content) or _repaired(content, ["utf-8"]) is not None)
    )


def _is_utf8(content: bytes) -> bool:
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _detected(content: bytes, *, fallback: str) -> Decoded:
    if sum(byte >= 0x80 for byte in content[:_DETECT_BYTES]) < _MIN_DETECT_BYTES:
        return _with_replacements(content, fallback)
    from charset_normalizer import from_bytes  # only here: most documents never need it

    best = from_bytes(content[:_DETECT_BYTES]).best()
    guesses = [] if best is None else [encoding_for(best.encoding), best.encoding]
    for encoding in guesses:
        try:
            return Decoded(content.decode(encoding or fallback), encoding or fallback)
        except (LookupError, UnicodeDecodeError):
            continue
    return _with_replacements(content, fallback)

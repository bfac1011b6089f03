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
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

__all__ = ["decode_html", "encoding_for"]

_SNIFF_BYTES = 8192
_DETECT_BYTES = 200_000
_MIN_DETECT_BYTES = 40
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""", re.IGNORECASE)
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


def decode_html(content: bytes, content_type: str = "") -> str:
    """The page's text, decoded with the first trustworthy charset (see the module notes)."""
    for bom, encoding in _BOMS:
        if content.startswith(bom):
            return content.decode(encoding, errors="replace")
    declared = [
        encoding
        for encoding in (_header_encoding(content_type), _document_encoding(content))
        if encoding and not _utf8_despite_latin1_label(encoding, content)
    ]
    for encoding in declared:
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return _detected(content, fallback=declared[0] if declared else "cp1252")


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


def _utf8_despite_latin1_label(encoding: str, content: bytes) -> bool:
    return encoding in _LATIN1_FAMILY and not content.isascii() and _is_utf8(content)


def _is_utf8(content: bytes) -> bool:
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _detected(content: bytes, *, fallback: str) -> str:
    if _is_utf8(content):
        return content.decode("utf-8")
    if sum(byte >= 0x80 for byte in content[:_DETECT_BYTES]) < _MIN_DETECT_BYTES:
        return content.decode(fallback, errors="replace")
    best = from_bytes(content[:_DETECT_BYTES]).best()
    guesses = [] if best is None else [encoding_for(best.encoding), best.encoding]
    for encoding in guesses:
        try:
            return content.decode(encoding or fallback)
        except (LookupError, UnicodeDecodeError):
            continue
    return content.decode(fallback, errors="replace")

"""Text normalization and tokenization shared by rules and the documents they match.

`normalize` applies NFKC, casefolds and removes diacritics: the combining marks of the
Combining Diacritical Marks blocks and the Hebrew and Arabic vowel points. Marks that carry
meaning in their script (kana voicing marks, Indic and Thai vowel signs) are kept, so
`が` does not become `か`.

`tokenize` splits normalized text into runs of letters, digits and combining marks;
everything else (spaces, punctuation, apostrophes, underscores) separates tokens.

Scripts written without spaces between words (Han, Hiragana, Katakana, Thai, Lao, Khmer,
Myanmar, Tibetan...) cannot be matched by tokens; `has_unspaced` tells when a text uses one.
"""

from __future__ import annotations

import re
import unicodedata

from monitor.rules.marks import mark_ranges

__all__ = [
    "UNSPACED_CLASS",
    "Alignment",
    "align",
    "has_unspaced",
    "normalize",
    "token_spans",
    "tokenize",
    "tokens_of_normalized",
]

_DIACRITIC_BLOCKS = (
    (0x0300, 0x036F),
    (0x0591, 0x05C7),
    (0x0610, 0x061A),
    (0x064B, 0x065F),
    (0x0670, 0x0670),
    (0x06D6, 0x06ED),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x20D0, 0x20FF),
    (0xFE20, 0xFE2F),
)

_UNSPACED_RANGES = (
    (0x0E00, 0x0EFF),
    (0x0F00, 0x0FFF),
    (0x1000, 0x109F),
    (0x1780, 0x17FF),
    (0x19E0, 0x19FF),
    (0x2E80, 0x2FDF),
    (0x3005, 0x3007),
    (0x3021, 0x3029),
    (0x3031, 0x3035),
    (0x3038, 0x303C),
    (0x3040, 0x30FF),
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xA9E0, 0xA9FF),
    (0xAA60, 0xAA7F),
    (0xF900, 0xFAFF),
    (0xFF66, 0xFF9F),
    (0x20000, 0x3134F),
)


def _char_class(ranges: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> str:
    parts = []
    for start, end in ranges:
        parts.append(re.escape(chr(start)))
        if end > start:
            parts.append("-" + re.escape(chr(end)))
    return "".join(parts)


_DIACRITICS: dict[int, None] = {
    code: None
    for start, end in _DIACRITIC_BLOCKS
    for code in range(start, end + 1)
    if unicodedata.category(chr(code)) == "Mn"
}

UNSPACED_CLASS = "[" + _char_class(_UNSPACED_RANGES) + "]"
"""A regular-expression class matching one character of a script written without spaces."""

_UNSPACED = re.compile(UNSPACED_CLASS)
_TOKEN = re.compile(r"(?:[^\W_]|[" + _char_class(mark_ranges()) + "])+")
_ASCII_SEPARATORS = str.maketrans({code: " " for code in range(128) if not chr(code).isalnum()})
_PIECE = re.compile(r"\s+|\S+")
_JOINING_KANA_MARKS = frozenset("\u3099\u309a\uff9e\uff9f")


def normalize(text: str) -> str:
    """NFKC, casefold, then drop diacritics (see the module docstring)."""
    if text.isascii():
        return text.lower()
    folded = unicodedata.normalize("NFKC", text).casefold()
    stripped = unicodedata.normalize("NFD", folded).translate(_DIACRITICS)
    return unicodedata.normalize("NFC", stripped)


def tokenize(text: str) -> list[str]:
    """The word tokens of `text` after normalization: `"Japan’s"` -> `["japan", "s"]`."""
    return _TOKEN.findall(normalize(text))


def tokens_of_normalized(text: str) -> list[str]:
    """Like `tokenize` for text that `normalize` has already been applied to."""
    if text.isascii():
        return text.translate(_ASCII_SEPARATORS).split()
    return _TOKEN.findall(text)


def token_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the tokens of already normalized text."""
    return [match.span() for match in _TOKEN.finditer(text)]


Alignment = tuple[list[int], list[int]] | None
"""For each character of a normalized text, the start and end of the original text it came
from; None when the two are the same length and correspond character by character."""


def align(original: str, normalized: str) -> Alignment:
    """Map offsets in `normalize(original)` back to `original`.

    Each character is normalized with the marks that follow it (so `ｶﾞ` -> `ガ` stays
    exact); if that does not reproduce `normalized`, whitespace-separated pieces are used,
    and as a last resort every character maps to the whole original.
    """
    if original.isascii():
        return None
    for pieces in (_clusters(original), [m.span() for m in _PIECE.finditer(original)]):
        starts: list[int] = []
        ends: list[int] = []
        parts: list[str] = []
        for start, end in pieces:
            part = normalize(original[start:end])
            parts.append(part)
            starts.extend([start] * len(part))
            ends.extend([end] * len(part))
        if "".join(parts) == normalized:
            return starts, ends
    return [0] * len(normalized), [len(original)] * len(normalized)


def _clusters(text: str) -> list[tuple[int, int]]:
    clusters: list[tuple[int, int]] = []
    for index, char in enumerate(text):
        joins = unicodedata.combining(char) or char in _JOINING_KANA_MARKS
        if clusters and joins:
            clusters[-1] = (clusters[-1][0], index + 1)
        else:
            clusters.append((index, index + 1))
    return clusters


def has_unspaced(text: str) -> bool:
    """Whether `text` contains a character of a script written without spaces."""
    return _UNSPACED.search(text) is not None

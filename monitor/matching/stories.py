"""Story grouping: recognise copies of one news story across sources.

An article's fingerprint is a MinHash signature of its 5-word shingles (lede and body; the
title too when the text is short) plus the number of distinct shingles. Two fingerprints
are the same story when their resemblance reaches `THRESHOLD`. Resemblance is the larger
of the estimated Jaccard similarity and the estimated containment |A∩B| / min(|A|, |B|),
so truncated copies and copies with a paragraph added still match.

Containment is derived from the Jaccard estimate and the set sizes, and is only trusted
when the estimate rests on enough agreeing hash values (`CONTAINMENT_MIN_JACCARD`) and
both texts have at least `SHORT_SHINGLES` shingles. Shorter texts (headline-only feed
items) compare by Jaccard alone against the stricter `SHORT_THRESHOLD`.

Boilerplate is text a source repeats under different headlines (a site blurb standing in
for a description, a newsletter plug): shingles of the source's recent items found under at
least `BOILERPLATE_TITLES` distinct titles (`boilerplate`). Their words are dropped before
fingerprinting, so they cannot make different stories one; an item left with no text
compares by its title alone (the headline-only path).

Thresholds were tuned on seeds/stories/cases.json (see seeds/README.md).
"""

from __future__ import annotations

import struct
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from itertools import chain
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from monitor.model import Article
from monitor.rules import tokenize

__all__ = [
    "BOILERPLATE_TITLES",
    "CONTAINMENT_MIN_JACCARD",
    "SHORT_SHINGLES",
    "SHORT_THRESHOLD",
    "THRESHOLD",
    "Fingerprint",
    "boilerplate",
    "find_story",
    "fingerprint",
    "resemblance",
    "same_story",
]

K = TypeVar("K")

NUM_PERM = 128
SEED = 1
SHINGLE_WORDS = 5
TITLE_BELOW_TOKENS = 40
"""The title joins the shingled text when lede and body have fewer tokens than this."""

THRESHOLD = 0.6
SHORT_SHINGLES = 20
SHORT_THRESHOLD = 0.9
CONTAINMENT_MIN_JACCARD = 0.1
BOILERPLATE_TITLES = 3
SHORT_BOILERPLATE_TITLES = 2

_FORMAT_VERSION = 1
_HEADER = struct.Struct("<BI")
_SIGNATURE_DTYPE = np.dtype("<u4")
_SIGNATURE_BYTES = NUM_PERM * _SIGNATURE_DTYPE.itemsize
_TEMPLATES: list[Any] = []


def _template() -> Any:
    """The empty MinHash every fingerprint copies; datasketch is imported on first use, since
    its package import pulls in scipy (0.9 s), which commands that never group stories
    (`monitor --help`, `check`, `match`) need not pay."""
    if not _TEMPLATES:
        from datasketch import MinHash  # type: ignore[import-untyped, unused-ignore]

        _TEMPLATES.append(MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32"))
    return _TEMPLATES[0]


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    signature: bytes
    """The MinHash hash values: NUM_PERM little-endian uint32 (datasketch scheme affine32)."""
    shingles: int
    """The number of distinct shingles the signature summarizes."""

    def to_bytes(self) -> bytes:
        return _HEADER.pack(_FORMAT_VERSION, self.shingles) + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        if len(data) != _HEADER.size + _SIGNATURE_BYTES:
            raise ValueError(f"a fingerprint is {_HEADER.size + _SIGNATURE_BYTES} bytes")
        version, shingles = _HEADER.unpack_from(data)
        if version != _FORMAT_VERSION:
            raise ValueError(f"unknown fingerprint format {version}")
        return cls(bytes(data[_HEADER.size :]), shingles)


def boilerplate(items: Iterable[Article]) -> frozenset[str]:
    """The shingles of lede and body that one source's `items` carry under at least
    `BOILERPLATE_TITLES` different titles, or under two where the items' text is short
    (a blurb standing in for a description: already on a source's second item, it must
    not make the first two one story)."""
    by_title: defaultdict[str, set[str]] = defaultdict(set)
    short_by_title: defaultdict[str, set[str]] = defaultdict(set)
    for item in items:
        title = " ".join(tokenize(item.title))
        tokens = _text_tokens(item)
        shingles = _shingles(tokens)
        by_title[title] |= shingles
        if len(tokens) < TITLE_BELOW_TOKENS:
            short_by_title[title] |= shingles
    titles = Counter(chain.from_iterable(by_title.values()))
    short_titles = Counter(chain.from_iterable(short_by_title.values()))
    return frozenset(
        shingle
        for shingle, count in titles.items()
        if count >= BOILERPLATE_TITLES or short_titles[shingle] >= SHORT_BOILERPLATE_TITLES
    )


def fingerprint(article: Article, repeated: Set[str] = frozenset()) -> Fingerprint:
    """`repeated`: the boilerplate shingles of the article's source, left out."""
    shingles = _story_shingles(article, repeated)
    minhash = _template().copy()
    minhash.update_batch([shingle.encode("utf-8") for shingle in shingles])
    signature = minhash.hashvalues.astype(_SIGNATURE_DTYPE).tobytes()
    return Fingerprint(signature, len(shingles))


def resemblance(a: Fingerprint, b: Fingerprint) -> float:
    """Estimated Jaccard similarity or containment, whichever is larger and trusted."""
    return float(_resemblances(a, _signatures([b]), _sizes([b]))[0])


def same_story(a: Fingerprint, b: Fingerprint) -> bool:
    return bool(_matches(a, _signatures([b]), _sizes([b]))[0])


def find_story(new: Fingerprint, candidates: Sequence[tuple[K, Fingerprint]]) -> K | None:
    """The key of the candidate most resembling `new` among those of the same story."""
    if not candidates:
        return None
    prints = [fp for _, fp in candidates]
    signatures, sizes = _signatures(prints), _sizes(prints)
    scores = np.where(_matches(new, signatures, sizes), _resemblances(new, signatures, sizes), -1)
    best = int(np.argmax(scores))
    return candidates[best][0] if scores[best] >= 0 else None


def _text_tokens(article: Article) -> list[str]:
    return tokenize(article.lede) + tokenize(article.body_text)


def _story_shingles(article: Article, repeated: Set[str]) -> set[str]:
    """The shingles of the text outside `repeated` shingles, in runs shingled apart; the
    title leads the first run when the text is short."""
    runs = _outside(_text_tokens(article), repeated)
    if sum(len(run) for run in runs) < TITLE_BELOW_TOKENS:
        title = tokenize(article.title)
        runs = [title + runs[0], *runs[1:]] if runs else [title]
    return set().union(*(_shingles(run) for run in runs))


def _outside(tokens: list[str], repeated: Set[str]) -> list[list[str]]:
    """The runs of `tokens` that no `repeated` shingle covers."""
    if not repeated or not tokens:
        return [tokens] if tokens else []
    covered = [False] * len(tokens)
    width = min(SHINGLE_WORDS, len(tokens))
    for start in range(len(tokens) - width + 1):
        if " ".join(tokens[start : start + width]) in repeated:
            covered[start : start + width] = [True] * width
    runs: list[list[str]] = [[]]
    for token, dropped in zip(tokens, covered, strict=True):
        if not dropped:
            runs[-1].append(token)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def _shingles(tokens: list[str]) -> set[str]:
    if len(tokens) <= SHINGLE_WORDS:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + SHINGLE_WORDS]) for i in range(len(tokens) - SHINGLE_WORDS + 1)}


def _signatures(prints: Sequence[Fingerprint]) -> npt.NDArray[np.uint32]:
    joined = b"".join(fp.signature for fp in prints)
    return np.frombuffer(joined, dtype=_SIGNATURE_DTYPE).reshape(len(prints), NUM_PERM)


def _sizes(prints: Sequence[Fingerprint]) -> IntArray:
    return np.fromiter((fp.shingles for fp in prints), dtype=np.int64, count=len(prints))


def _jaccards(new: Fingerprint, signatures: npt.NDArray[np.uint32]) -> FloatArray:
    own = np.frombuffer(new.signature, dtype=_SIGNATURE_DTYPE)
    agreeing: FloatArray = np.count_nonzero(signatures == own, axis=1).astype(np.float64)
    return agreeing / NUM_PERM


def _resemblances(
    new: Fingerprint, signatures: npt.NDArray[np.uint32], sizes: IntArray
) -> FloatArray:
    jaccard = _jaccards(new, signatures)
    smaller = np.minimum(sizes, new.shingles)
    # |A∩B| = J·|A∪B| and |A∪B| = |A| + |B| − |A∩B|, so |A∩B| = J(|A| + |B|) / (1 + J).
    overlap = jaccard * (sizes + new.shingles) / (1 + jaccard)
    containment = np.minimum(overlap / np.maximum(smaller, 1), 1.0)
    trusted = (jaccard >= CONTAINMENT_MIN_JACCARD) & (smaller >= SHORT_SHINGLES)
    scores: FloatArray = np.where(trusted, np.maximum(jaccard, containment), jaccard)
    return np.where((sizes == 0) | (new.shingles == 0), 0.0, scores)


def _matches(
    new: Fingerprint, signatures: npt.NDArray[np.uint32], sizes: IntArray
) -> npt.NDArray[np.bool_]:
    short = np.minimum(sizes, new.shingles) < SHORT_SHINGLES
    thresholds = np.where(short, SHORT_THRESHOLD, THRESHOLD)
    matches: npt.NDArray[np.bool_] = _resemblances(new, signatures, sizes) >= thresholds
    return matches

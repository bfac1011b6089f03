"""The presearch of `RuleIndex`: which rules an article's keys let through.

`RuleIndex` files each rule under a first key and, optionally, a second key (a word or
character key looked up among the article's keys) or a stem (a prefix looked up among the
article's words). `Filed` holds that filing; a presearch turns it into lookup tables once
and answers, for each article, the sorted numbers of the rules it lets through.

`CompiledPresearch` runs `_presearch.c`, built when the package is installed with a C
compiler; `PythonPresearch` is the same presearch in Python, for installs without one. On
10,000 rules the compiled one takes 0.04 ms an article, the Python one 0.10 ms
(docs/benchmarks.md): it runs interpreter code for each first key an article holds and
sorts the article's words to answer stems.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain, filterfalse
from typing import Protocol

from monitor.rules.document import Document

try:
    from monitor.rules import _presearch
except ImportError:  # installed without a C compiler
    _presearch = None  # type: ignore[assignment]

__all__ = ["COMPILED", "CompiledPresearch", "Filed", "Presearch", "PythonPresearch", "build"]

COMPILED = _presearch is not None
"""Whether the compiled presearch was built."""


@dataclass(slots=True)
class Filed:
    """Rule numbers by first key: alone, by second key, by stem; and rules with no key."""

    single: dict[str, list[int]] = field(default_factory=dict)
    pairs: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    stems: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    always: list[int] = field(default_factory=list)


class Presearch(Protocol):
    def candidates(self, keys: frozenset[str], doc: Document) -> list[int]:
        """Sorted numbers of the rules filed under `keys` (and `doc`'s words for stems)."""
        ...


def build(filed: Filed, *, compiled: bool = True) -> Presearch:
    """The compiled presearch if asked for and built, else the Python one."""
    if compiled and COMPILED:
        return CompiledPresearch(filed)
    return PythonPresearch(filed)


class CompiledPresearch:
    """One dict lookup per article key; entries packed so that a hit touches few objects.

    An entry is `(packed, *second keys, *stems)`, `packed` an int32 array: the count and
    numbers of the rules filed alone, the number of second keys, then for each second key
    and each stem, in the entry's order, a count and its rules.
    """

    __slots__ = ("_always", "_firsts")

    def __init__(self, filed: Filed) -> None:
        if array("i").itemsize != 4:
            raise RuntimeError("the compiled presearch reads 32-bit ints")
        self._always = tuple(filed.always)
        self._firsts: dict[str, tuple[bytes | str, ...]] = {}
        for first in chain(filed.single, filed.pairs, filed.stems):
            if first in self._firsts:
                continue
            seconds = filed.pairs.get(first, {})
            stems = filed.stems.get(first, {})
            packed = array("i", _counted(filed.single.get(first, ())))
            packed.append(len(seconds))
            for idents in chain(seconds.values(), stems.values()):
                packed.extend(_counted(idents))
            self._firsts[first] = (packed.tobytes(), *seconds, *stems)

    def candidates(self, keys: frozenset[str], doc: Document) -> list[int]:
        return _presearch.candidates(self._firsts, keys, doc.words, self._always)


class PythonPresearch:
    """Set operations in C where CPython offers them, a Python loop where it does not."""

    __slots__ = (
        "_always",
        "_pair_keys",
        "_pairs",
        "_single",
        "_single_keys",
        "_stem_keys",
        "_stems",
    )

    def __init__(self, filed: Filed) -> None:
        self._always = tuple(filed.always)
        self._single = {first: tuple(idents) for first, idents in filed.single.items()}
        self._single_keys = frozenset(filed.single)
        self._pairs = {first: _Seconds(seconds) for first, seconds in filed.pairs.items()}
        self._pair_keys = frozenset(filed.pairs)
        self._stems = {
            first: tuple((stem, tuple(idents)) for stem, idents in seconds.items())
            for first, seconds in filed.stems.items()
        }
        self._stem_keys = frozenset(filed.stems)

    def candidates(self, keys: frozenset[str], doc: Document) -> list[int]:
        found = list(self._always)
        found.extend(chain.from_iterable(map(self._single.__getitem__, self._single_keys & keys)))
        # Most first keys an article holds file no rule whose second key it holds too: the
        # C-level isdisjoint() passes over those without running Python code.
        hit = filterfalse(keys.isdisjoint, map(self._pairs.__getitem__, self._pair_keys & keys))
        for seconds in hit:
            ids = seconds.ids
            for second in seconds.intersection(keys):
                found += ids[second]
        stems = self._stems
        for first in self._stem_keys & keys:
            for stem, idents in stems[first]:
                if doc.has_prefix(stem):
                    found += idents
        return sorted(set(found))


class _Seconds(frozenset[str]):
    """The second keys filed under a first key, and the rules filed under each pair."""

    ids: dict[str, tuple[int, ...]]

    def __new__(cls, seconds: Mapping[str, Iterable[int]]) -> _Seconds:
        self = super().__new__(cls, seconds)
        self.ids = {second: tuple(idents) for second, idents in seconds.items()}
        return self


def _counted(idents: Iterable[int]) -> list[int]:
    numbers = list(idents)
    return [len(numbers), *numbers]

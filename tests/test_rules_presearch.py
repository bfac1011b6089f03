"""The compiled presearch against the Python one, and its handling of bad tables.

On random rules and articles both are checked against direct evaluation in
tests/test_rules_index.py."""

import pytest

from monitor.rules import Document, RuleIndex, compile_query
from monitor.rules.presearch import COMPILED, CompiledPresearch, Filed, PythonPresearch
from tests.test_rules_index import article_doc

needs_compiled = pytest.mark.skipif(not COMPILED, reason="built without a C compiler")


def _filed() -> Filed:
    return Filed(
        single={"japan": [3, 1]},
        pairs={"korea": {"summit": [4], "talks": [2, 4]}},
        stems={"korea": {"abduc": [5]}, "tokyo": {"москв": [6], "a" * 20: [7], "": [8]}},
        always=[0],
    )


@pytest.mark.parametrize("words", ["", "japan", "korea talks", "korea summit abductees"])
@needs_compiled
def test_both_presearches_read_the_same_filing(words: str) -> None:
    doc = article_doc(words)
    keys = doc.words
    assert CompiledPresearch(_filed()).candidates(keys, doc) == PythonPresearch(
        _filed()
    ).candidates(keys, doc)


@needs_compiled
def test_compiled_stems_of_any_script_and_length() -> None:
    presearch = CompiledPresearch(_filed())
    assert presearch.candidates(*_keyed("tokyo Москва")) == [0, 6, 8]
    assert presearch.candidates(*_keyed("tokyo " + "a" * 25)) == [0, 7, 8]
    assert presearch.candidates(*_keyed("tokyo москит")) == [0, 8]
    assert presearch.candidates(*_keyed("korea abdu")) == [0]
    assert presearch.candidates(*_keyed("korea abducted talks")) == [0, 2, 4, 5]


def _keyed(text: str) -> tuple[frozenset[str], Document]:
    doc = article_doc(text)
    return doc.words, doc


@needs_compiled
def test_compiled_walks_whichever_side_is_smaller() -> None:
    """Many rules and a short article, a few rules and a long article: the same answer."""
    many = [(n, compile_query(f"word{n} AND other{n % 7}")) for n in range(300)]
    few = many[:3]
    long_doc = article_doc(" ".join(f"word{n} other{n % 7}" for n in range(0, 400, 2)))
    short_doc = article_doc("word2 other2 word5")
    for rules in (many, few):
        for doc in (long_doc, short_doc):
            compiled = RuleIndex(rules).candidates(doc)
            assert compiled == RuleIndex(rules, compiled=False).candidates(doc)
    assert RuleIndex(few).candidates(short_doc) == [2]


@needs_compiled
def test_malformed_tables_raise_instead_of_reading_past_them() -> None:
    from monitor.rules import _presearch

    words = frozenset({"japan", "korea"})
    bad_entries: list[tuple[bytes | str, ...]] = [
        (b"",),
        (b"\x05\x00\x00\x00",),  # five rules announced, none there
        (b"\x00\x00\x00\x00\x02\x00\x00\x00", "korea"),  # two second keys, one given
        ("not bytes",),
        (b"\x00\x00\x00\x00\x00",),  # not whole int32s
    ]
    for entry in bad_entries:
        with pytest.raises((ValueError, TypeError)):
            _presearch.candidates({"japan": entry}, words, words, ())
    with pytest.raises(TypeError):
        _presearch.candidates({}, ["japan"], words, ())  # type: ignore[arg-type]


@needs_compiled
def test_compiled_accepts_mutable_sets() -> None:
    from monitor.rules import _presearch

    presearch = CompiledPresearch(_filed())
    firsts = presearch._firsts
    words = {"korea", "abducted", "talks"}
    assert _presearch.candidates(firsts, set(words), words, (0,)) == [0, 2, 4, 5]

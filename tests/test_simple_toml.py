"""The fast reader of rules files (config/simple_toml.py) against tomllib."""

from __future__ import annotations

import tomllib

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config.simple_toml import read_simple
from monitor.config.toml import load_toml

_KEYS = st.sampled_from(["name", "query", "notify", "rules", "a-b", "x_1", "bad key", "a.b"])
_TEXT = st.text(
    alphabet=st.sampled_from(
        ["a", "Z", " ", '"', "\\", "\t", "\r", "#", "é", "*", "\x01", "[", "]"]
    ),
    max_size=6,
)
_VALUES = st.one_of(
    _TEXT.map(lambda text: f'"{text}"'),
    st.sampled_from(["true", "false", "True", "1", "[]", '["a", "b"]', '["a",]', '"a" # c']),
    st.lists(_TEXT, max_size=3).map(lambda items: "[" + ", ".join(f'"{i}"' for i in items) + "]"),
)
_LINES = st.one_of(
    st.tuples(_KEYS, _VALUES).map(lambda pair: f"{pair[0]} = {pair[1]}"),
    st.sampled_from(
        ["[[rules]]", "[[other]]", "[rules]", "[[rules.x]]", "", "# note", "  [[rules]]"]
    ),
)


def _tomllib(text: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return "error"


@settings(max_examples=500)
@given(st.lists(_LINES, max_size=12), st.sampled_from(["\n", "\r\n"]))
def test_what_it_reads_it_reads_as_tomllib(lines: list[str], newline: str) -> None:
    text = newline.join(lines)
    simple = read_simple(text)
    if simple is not None:
        assert simple == _tomllib(text)


def test_a_rules_file_takes_the_fast_path() -> None:
    text = "".join(
        f'[[rules]]\nname = "r{n}"\nquery = "japan AND summit*"\nnotify = ["console", "mail"]\n'
        f"follow_up = false\n\n# rule {n}\n"
        for n in range(50)
    )
    simple = read_simple(text)
    assert simple is not None
    assert simple == tomllib.loads(text)
    assert load_toml(text, "rules.toml") == simple


def test_anything_else_goes_to_tomllib() -> None:
    for text in (
        '[[rules]]\nname = "a\\tb"\n',  # an escape
        '[[rules]]\nname = "a" # a comment\n',
        '[settings]\nx = "y"\n',
        '[[rules]]\nname = "a"\nname = "b"\n',  # a duplicate: tomllib's error
        'rules = ["a"]\n[[rules]]\n',
    ):
        assert read_simple(text) is None

import pytest

from monitor.rules import normalize, tokenize
from monitor.rules.text import has_unspaced


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Japan", "japan"),
        ("Café", "cafe"),
        ("CAFÉ", "cafe"),
        ("Straße", "strasse"),
        ("Ｔｏｋｙｏ", "tokyo"),
        ("ﬁnance", "finance"),
        ("Ångström naïve Łódź", "angstrom naive łodz"),
        ("Ελληνικά", "ελληνικα"),
        ("がんばって", "がんばって"),
        ("ｶﾞﾝﾊﾞﾙ", "ガンバル"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Japan’s leader", ["japan", "s", "leader"]),
        ("Japan's", ["japan", "s"]),
        ("North-Korea, U.S.", ["north", "korea", "u", "s"]),
        ("snake_case", ["snake", "case"]),
        ("Café au lait!", ["cafe", "au", "lait"]),
        ("हिंदी समाचार", ["हिंदी", "समाचार"]),
        ("1,000 people", ["1", "000", "people"]),
        ("  ", []),
    ],
)
def test_tokenize(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_has_unspaced() -> None:
    assert has_unspaced("北朝鮮")
    assert has_unspaced("ข่าว")
    assert not has_unspaced("Korea 한국")


def test_the_recorded_combining_marks_are_the_ones_unicode_gives() -> None:
    from monitor.rules import marks

    assert marks.mark_ranges() == marks.computed_mark_ranges()
    assert (0x0300, 0x036F) in marks.mark_ranges()
    assert tokenize("re\u0301sume\u0301 \u0915\u093f\u0924\u093e\u092c") == ["resume", "किताब"]

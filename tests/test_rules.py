import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.model import Article, Block
from monitor.rules import (
    And,
    Document,
    Field,
    Near,
    Not,
    Or,
    RuleSyntaxError,
    Term,
    compile_query,
    parse,
    syntax,
)

USER_QUERY = "Japan AND North Korea AND summit|abduction"

NORTH_KOREA_STORY = Article(
    id="x",
    url="https://example.com/a",
    source="test",
    title="Japan, North Korea held meeting in May – S Korean newspaper",
    lede="A South Korean newspaper reported Japan and North Korea met secretly in mid-May.",
    body=(
        Block(
            "paragraph",
            "Japanese Prime Minister Fumio Kishida pledged to hold a summit with North Korean "
            "leader Kim Jong Un.",
        ),
        Block(
            "paragraph",
            "Japan and North Korea have no formal diplomatic relations. Tokyo wants progress on "
            "the abduction issue.",
        ),
    ),
)

SOUTH_KOREA_STORY = Article(
    id="x",
    url="https://example.com/b",
    source="test",
    title="Japan and South Korea hold summit in Seoul",
    body=(
        Block(
            "paragraph",
            "The leaders of Japan and South Korea met for a summit and discussed the abduction "
            "issue and trade.",
        ),
    ),
)

NORTH_KOREAN_ONLY_STORY = Article(
    id="x",
    url="https://example.com/c",
    source="test",
    title="Japan plans summit",
    body=(Block("paragraph", "Japan wants a summit with the North Korean leader."),),
)


def article(
    title: str = "",
    body: tuple[str, ...] = (),
    lede: str = "",
    **extra: tuple[str, ...] | str,
) -> Article:
    blocks = tuple(Block("paragraph", text) for text in body)
    return Article(
        id="x",
        url=str(extra.get("url", "https://example.com/a")),
        source=str(extra.get("source", "test")),
        title=title,
        lede=lede,
        body=blocks,
        section=tuple(extra.get("section", ())),
        authors=tuple(extra.get("authors", ())),
    )


def evaluate(query: str, doc: Article) -> tuple[str, ...] | None:
    return compile_query(query).evaluate(Document.from_article(doc))


def matches(query: str, **fields: str | tuple[str, ...]) -> bool:
    body = fields.pop("body", ())
    title = str(fields.pop("title", ""))
    lede = str(fields.pop("lede", ""))
    blocks = (body,) if isinstance(body, str) else body
    return evaluate(query, article(title, blocks, lede, **fields)) is not None


def test_user_example_matches_the_north_korea_story() -> None:
    assert evaluate(USER_QUERY, NORTH_KOREA_STORY) == (
        "Japan",
        "north korea",
        "summit",
        "abduction",
    )


def test_user_example_ignores_a_japan_south_korea_summit() -> None:
    assert evaluate(USER_QUERY, SOUTH_KOREA_STORY) is None


def test_user_example_ignores_a_story_that_only_says_north_korean() -> None:
    assert evaluate(USER_QUERY, NORTH_KOREAN_ONLY_STORY) is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (USER_QUERY, 'Japan AND "north korea" AND (summit OR abduction)'),
        ("North Korea|DPRK", '"north korea" OR DPRK'),
        ('"North  Korea"', '"north korea"'),
        ('"Japan"', '"japan"'),
        ("Trinidad and Tobago", '"trinidad and tobago"'),
        ("japan NEAR/5 korea", "japan NEAR/5 korea"),
        ("japan ONEAR/0 korea", "japan ONEAR/0 korea"),
        ("a|b NEAR/3 c", "(a OR b) NEAR/3 c"),
        ("NOT a NEAR/3 b AND c", "NOT a NEAR/3 b AND c"),
        ("Japan NOT Korea", "Japan AND NOT Korea"),
        ("Japan -Korea", "Japan AND NOT Korea"),
        ("Japan AND -(Korea OR China)", "Japan AND NOT (Korea OR China)"),
        ('Japan -"South Korea"', 'Japan AND NOT "south korea"'),
        ("(a AND b) OR c", "(a AND b) OR c"),
        ("a AND (b OR c) AND d", "a AND (b OR c) AND d"),
        ("((a AND b)) AND c", "a AND b AND c"),
        ("a OR (b OR c)|d", "a OR b OR c OR d"),
        ("title:(Japan OR Tokyo) AND x", "title:(Japan OR Tokyo) AND x"),
        ('Title:"North Korea"', 'title:"north korea"'),
        ("title:North Korea", 'title:"north korea"'),
        ("title:a|b", "title:a OR b"),
        ("body:(a NEAR/2 b)", "body:(a NEAR/2 b)"),
        ("url:example.com", "url:example.com"),
        ("url:https://example.com/x", 'url:"https example com x"'),
        ("Japan AND abduct*", "Japan AND abduct*"),
        ('x AND "North Kor*"', 'x AND "north kor*"'),
        ("Japan's", "Japan's"),
        ("“North Korea”", '"north korea"'),
        ("北朝鮮 AND 拉致", "北朝鮮 AND 拉致"),
        ("Café", "Café"),
    ],
)
def test_canonical(query: str, expected: str) -> None:
    canonical = compile_query(query).canonical()
    assert canonical == expected
    assert compile_query(canonical) == compile_query(query)


def test_tree_of_the_user_example() -> None:
    assert parse(USER_QUERY) == And(
        (
            Term(("japan",), "Japan"),
            Term(("north", "korea")),
            Or((Term(("summit",), "summit"), Term(("abduction",), "abduction"))),
        )
    )


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        ("", "empty query", 1),
        ("   ", "empty query", 1),
        ("(Japan", "unclosed (", 1),
        ("x AND (Japan OR (b)", "unclosed (", 7),
        ("Japan)", "unmatched )", 6),
        ("Japan AND", "expected a term after AND", 10),
        ("AND Japan", "expected a term, found AND", 1),
        ("Japan AND AND Korea", "expected a term after AND, found AND", 11),
        ("Japan OR", "expected a term after OR", 9),
        ("Japan|", "expected a term after |", 7),
        ("Japan AND ()", "empty parentheses", 12),
        ('Japan "Korea"', "expected AND, OR or NOT before", 7),
        ("Japan (Korea)", "expected AND, OR or NOT before", 7),
        ('Japan AND "North Korea', "unterminated quote", 11),
        ("Japan AND a NEAR/x b", "needs a number of words", 18),
        ("Japan AND a NEAR/ b", "needs a number of words", 18),
        ("Japan AND a NEAR b", "NEAR needs a distance", 13),
        ("a ONEAR b", "ONEAR needs a distance", 3),
        ("a NEAR/3 b NEAR/3 c", "cannot follow another proximity", 12),
        ("a NEAR/3 (b AND c)", "NEAR operands", 10),
        ("title:a NEAR/3 b", "put the field before", 1),
        ("a NEAR/3 北朝鮮", "without spaces", 10),
        ("Japan AND ab*", "at least 3 letters", 13),
        ("Japan AND *abc", "only allowed at the end", 11),
        ("Japan AND ab*c", "only allowed at the end", 13),
        ('Japan AND "north k*"', "at least 3 letters", 19),
        ("Japan AND abc.*", "at least 3 letters", 15),
        ("Japan AND foo:bar", "unknown field 'foo'", 11),
        ("Japan AND title:(body:x)", "inside another field", 18),
        ("Japan AND title:", "expected a term after title:", 17),
        ("Japan AND title:-x", "expected a term after title:", 17),
        ("Japan AND &", "nothing to search for in &", 11),
        ('Japan AND ""', "nothing to search for", 11),
        ("NOT Japan", "at least one term it requires", 1),
        ("-Japan", "at least one term it requires", 1),
        ("NOT a OR NOT b", "at least one term it requires", 1),
        ("Japan OR NOT Korea", "at least one term it requires", 1),
        ("a AND b OR c", "mixing AND and OR needs parentheses", 9),
        ("a OR b AND c", "mixing AND and OR needs parentheses", 8),
        ("a OR b NOT c", "mixing AND and OR needs parentheses", 8),
        ("a OR b -c", "mixing AND and OR needs parentheses", 8),
        ("(a AND b OR c) AND d", "mixing AND and OR needs parentheses", 10),
    ],
)
def test_syntax_errors(query: str, message: str, column: int) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        compile_query(query)
    assert message in caught.value.message
    assert caught.value.column == column


def test_mixing_error_suggests_parentheses_with_the_users_operands() -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        compile_query("Japan AND Korea OR China")
    assert caught.value.message == (
        "mixing AND and OR needs parentheses: "
        "write (Japan AND Korea) OR China or Japan AND (Korea OR China)"
    )


def test_syntax_error_text_and_pointer() -> None:
    error = RuleSyntaxError("unmatched )", 6)
    assert isinstance(error, ValueError)
    assert str(error) == "unmatched ) at column 6"
    assert error.pointer("Japan)") == "Japan)\n     ^"
    assert RuleSyntaxError("x", 3).pointer("北朝鮮") == "北朝鮮\n    ^"
    assert RuleSyntaxError("x", 5).pointer("a\nb OR") == "b OR\n  ^"


def test_the_pointer_into_a_long_query_shows_the_part_around_the_column() -> None:
    query = "a" * 100 + ")" + "b" * 100

    line, caret = RuleSyntaxError("unmatched )", 101).pointer(query).split("\n")

    assert line == "…" + "a" * 36 + ")" + "b" * 35 + "…"
    assert caret == " " * 37 + "^"


def test_syntax_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(RuleSyntaxError("unmatched )", 6)))
    assert (error.message, error.column) == ("unmatched )", 6)


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("NOT a AND b", And((Not(Term(("a",), "a")), Term(("b",), "b")))),
        ("a NOT b", And((Term(("a",), "a"), Not(Term(("b",), "b"))))),
        ("a -b", And((Term(("a",), "a"), Not(Term(("b",), "b"))))),
        ("a AND NOT NOT b", And((Term(("a",), "a"), Not(Not(Term(("b",), "b")))))),
        (
            "x AND NOT a|b",
            And((Term(("x",), "x"), Not(Or((Term(("a",), "a"), Term(("b",), "b")))))),
        ),
        (
            "a|b NEAR/2 c",
            Near(Or((Term(("a",), "a"), Term(("b",), "b"))), Term(("c",), "c"), 2),
        ),
        ("title:a|b", Or((Field("title", Term(("a",), "a")), Term(("b",), "b")))),
        ("a OR b OR c", Or((Term(("a",), "a"), Term(("b",), "b"), Term(("c",), "c")))),
    ],
)
def test_precedence(query: str, tree: object) -> None:
    assert parse(query) == tree


def test_lowercase_keywords_are_plain_words() -> None:
    assert matches("Trinidad and Tobago", body="Trinidad and Tobago won.")
    assert not matches("Trinidad and Tobago", body="Trinidad won, and Tobago too.")
    assert matches("to be or not to be", body="To be, or not to be.")


def test_a_run_of_bare_words_is_a_phrase() -> None:
    assert matches("North Korea", body="Talks with North Korea resumed.")
    assert not matches("North Korea", body="Korea, North and South.")
    assert not matches("North Korea", body="North Korean talks.")


def test_tokens_not_substrings() -> None:
    assert not matches("Japan", body="The Japanese delegation.")
    assert matches("Japan", body="Japan’s prime minister.")
    assert matches("U.S.", body="The U.S. Navy")
    assert not matches("Korea", body="Koreas")


def test_case_and_accent_insensitive() -> None:
    assert matches("cafe", body="A Café in Paris.")
    assert matches("CAFÉ", body="a cafe in paris")
    assert matches("Zurich", body="Zürich")
    assert matches("strasse", body="Die Straße")
    assert matches("ＴＯＫＹＯ", body="Tokyo")


def test_negation() -> None:
    assert matches("Japan -Korea", body="Japan wins.")
    assert not matches("Japan -Korea", body="Japan and Korea.")
    assert not matches("Japan NOT Korea", body="Japan and Korea.")
    assert not matches("Japan AND -(Korea OR China)", body="Japan and China.")
    assert matches('Japan -"South Korea"', body="Japan and North Korea.")
    assert not matches('Japan -"South Korea"', body="Japan and South Korea.")


def test_or_and_groups() -> None:
    query = "(Japan AND Korea) OR China"
    assert matches(query, body="China")
    assert matches(query, body="Japan, Korea")
    assert not matches(query, body="Japan")
    assert matches("Japan AND (Korea OR China)", body="Japan, China")
    assert not matches("Japan AND (Korea OR China)", body="Japan, India")


def test_prefix() -> None:
    assert matches("Japan AND abduct*", body="Japan abductees")
    assert matches("Japan AND abduct*", body="Japan abduct")
    assert not matches("Japan AND abduct*", body="Japan abdication")
    assert matches('Japan AND "north kor*"', body="Japan, North Korean leader")
    assert not matches('Japan AND "north kor*"', body="Japan, North Carolina")
    assert matches('Japan AND "nor* korea"', body="Japan, North Korea")


def test_prefix_does_not_reach_across_blocks() -> None:
    assert not matches('Japan AND "north kor*"', body=("Japan North", "Korea"))


def test_fields() -> None:
    assert matches("title:Japan", title="Japan wins", body="nothing")
    assert not matches("title:Japan", title="nothing", body="Japan wins")
    assert matches("lede:Japan", lede="Japan wins")
    assert matches("body:Japan", body="Japan wins")
    assert not matches("body:Japan", title="Japan wins", lede="Japan wins")
    assert matches("title:(Japan OR Tokyo)", title="Tokyo news")
    assert matches('title:"north korea"', title="North Korea news")
    assert not matches('title:"north korea"', title="North", body="Korea")
    assert matches("section:Asia", section=("World", "Asia"))
    assert not matches('section:"world asia"', section=("World", "Asia"))
    assert matches("source:Reuters", source="Reuters")
    assert matches("url:example.com", url="https://example.com/x")
    assert matches("url:north-korea", url="https://example.com/north-korea-talks")
    assert matches("author:Kim", authors=("Kim Tong-Hyung",))
    assert not matches('author:"Smith Kim"', authors=("Jane Smith", "Kim Tong-Hyung"))


def test_default_fields_are_title_lede_and_body() -> None:
    for field in ("section", "source", "url", "authors"):
        assert not matches("Reuters", **{field: ("Reuters",) if field != "url" else "Reuters"})
    assert matches("Reuters", title="Reuters")
    assert matches("Reuters", lede="Reuters")
    assert matches("Reuters", body="Reuters")


def test_phrase_does_not_cross_fields_or_blocks() -> None:
    assert not matches("North Korea", title="North", lede="Korea")
    assert not matches("North Korea", body=("Talks in the North", "Korea said"))
    assert matches("North Korea", body=("Talks in the North", "North Korea said"))


@pytest.mark.parametrize(
    ("query", "body", "expected"),
    [
        ("japan NEAR/2 korea", "japan one two korea", True),
        ("japan NEAR/2 korea", "japan one two three korea", False),
        ("japan NEAR/2 korea", "korea one two japan", True),
        ("japan NEAR/2 korea", "korea one two three japan", False),
        ("japan NEAR/0 korea", "japan korea", True),
        ("japan NEAR/0 korea", "japan, the korea", False),
        ("japan ONEAR/2 korea", "japan one two korea", True),
        ("japan ONEAR/2 korea", "korea one two japan", False),
        ("japan ONEAR/2 korea", "korea japan one two three korea", False),
        ("japan ONEAR/2 korea", "korea japan one two korea", True),
        ('"prime minister" NEAR/1 kishida', "prime minister fumio kishida", True),
        ('"prime minister" NEAR/1 kishida', "kishida the prime minister", True),
        ('"prime minister" NEAR/1 kishida', "kishida is the prime minister", False),
        ("tokyo|japan NEAR/1 pyongyang|dprk", "a japan b dprk", True),
        ("(tokyo OR japan) NEAR/1 summit", "tokyo a b summit", False),
        ("abduct* NEAR/1 japan", "abductees of japan", True),
        ("korea NEAR/3 korea", "korea", False),
        ("korea NEAR/3 korea", "korea and korea", True),
    ],
)
def test_proximity(query: str, body: str, expected: bool) -> None:
    assert matches(query, body=body) is expected


def test_proximity_stays_in_one_field_and_block() -> None:
    assert not matches("japan NEAR/5 korea", title="japan", body="korea")
    assert not matches("japan NEAR/5 korea", body=("about japan", "korea"))
    assert matches("title:(japan NEAR/5 korea)", title="japan and korea")
    assert not matches("title:(japan NEAR/5 korea)", body="japan and korea")


def test_unspaced_scripts_match_as_substrings() -> None:
    body = "政府は北朝鮮による日本人拉致問題の解決を目指す。"
    assert matches("北朝鮮 AND 拉致", body=body)
    assert matches('"北朝鮮 日本人"', body="北朝鮮、日本人")
    assert not matches("北朝鮮 AND 拉致", body="北朝鮮のミサイル発射")
    assert matches("ガンバル", body="ｶﾞﾝﾊﾞﾙ")
    assert not matches("がんばる", body="かんはる")
    assert matches("ข่าว", body="อ่านข่าววันนี้")


def test_mixed_script_terms_respect_latin_word_edges() -> None:
    assert matches("iPhone発売", body="新型iPhone発売へ")
    assert not matches("Phone発売", body="新型iPhone発売へ")


def test_evaluate_reports_matched_positive_terms_in_query_order() -> None:
    doc = article("Tokyo and Japan", ("abduction summit",))
    assert evaluate("Japan AND (summit OR abduction OR talks)", doc) == (
        "Japan",
        "summit",
        "abduction",
    )
    assert evaluate("Japan AND NOT Korea", doc) == ("Japan",)
    assert evaluate("(Japan AND Korea) OR Tokyo", doc) == ("Tokyo",)
    assert evaluate("Japan OR japan OR title:Japan", doc) == ("Japan", "japan")
    assert evaluate("Japan AND abduct*", doc) == ("Japan", "abduct*")
    assert evaluate("Japan AND (Tokyo|Seoul NEAR/3 japan)", doc) == ("Japan", "Tokyo", "japan")


def test_query_is_reusable_and_hashable() -> None:
    query = compile_query(USER_QUERY)
    doc = Document.from_article(NORTH_KOREA_STORY)
    assert query.evaluate(doc) == query.evaluate(doc)
    assert query.matches(doc)
    assert hash(query) == hash(compile_query(USER_QUERY))
    assert query != compile_query("Japan")


def test_document_from_fields() -> None:
    doc = Document.from_fields({"title": ("Japan",), "body": ("North", "Korea")})
    assert compile_query("Japan").evaluate(doc) == ("Japan",)
    assert compile_query("North Korea").evaluate(doc) is None
    with pytest.raises(ValueError, match="unknown document fields"):
        Document.from_fields({"tags": ("x",)})


LATIN_WORDS = [
    "Japan",
    "korea",
    "Café",
    "and",
    "or",
    "not",
    "U.S.",
    "Japan's",
    "abduct*",
    "kor*",
    "x-ray",
    "ＴＯＫＹＯ",
    "near",
    "2024",
]
WORDS = st.sampled_from([*LATIN_WORDS, "北朝鮮", "iPhone発売"])
FIELD_NAMES = st.sampled_from(["", "", "", "title:", "body:", "url:", "author:"])


def _bare(words: list[str]) -> str:
    return " ".join(words)


def _quoted(words: list[str]) -> str:
    return '"' + " ".join(words) + '"'


def _terms(words: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(words, min_size=1, max_size=3).map(_bare),
        st.lists(words, min_size=1, max_size=3).map(_quoted),
    )


PRIMARIES = st.builds(lambda field, term: field + term, FIELD_NAMES, _terms(WORDS))
ALTERNATIVES = st.lists(PRIMARIES, min_size=1, max_size=3).map("|".join)
NEAR_OPERANDS = st.lists(_terms(st.sampled_from(LATIN_WORDS)), min_size=1, max_size=2)
PROXIMITIES = st.builds(
    lambda left, op, n, right: f"{left} {op}{n} {right}",
    NEAR_OPERANDS.map("|".join),
    st.sampled_from(["NEAR/", "ONEAR/"]),
    st.integers(0, 12),
    NEAR_OPERANDS.map("|".join),
)
OPERATORS = st.sampled_from([" AND ", " AND ", " OR ", " OR ", " NOT ", " -", " AND -"])


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, op, b: a + op + b, inner, OPERATORS, inner),
        st.builds(lambda a, op, b: f"({a}){op}({b})", inner, OPERATORS, inner),
        st.builds(lambda field, a: f"{field}({a})", FIELD_NAMES, inner),
    )


QUERIES = st.recursive(st.one_of(ALTERNATIVES, PROXIMITIES), _extend, max_leaves=8)


@settings(max_examples=400)
@given(QUERIES)
def test_canonical_round_trips(query: str) -> None:
    try:
        tree = parse(query)
    except RuleSyntaxError as error:
        assert 1 <= error.column <= len(query) + 1
        return
    canonical = compile_query(query).canonical()
    assert parse(canonical) == tree
    assert compile_query(canonical).canonical() == canonical


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list('ab é*:-|()"“ ANDORTNEAR/5北title')), max_size=30))
def test_any_text_parses_or_raises_a_located_error(query: str) -> None:
    try:
        canonical = compile_query(query).canonical()
    except RuleSyntaxError as error:
        assert 1 <= error.column <= len(query) + 1
        return
    assert parse(canonical) == parse(query)


_SIMPLE_WORDS = st.sampled_from(
    ["Japan", "summit", "AND", "OR", "NOT", "NEAR", "ONEAR", "and", "Or", "x", "Near", "KOREA"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_SIMPLE_WORDS, min_size=1, max_size=4))
def test_the_fast_path_for_and_of_words_gives_the_parsers_tree(words: list[str]) -> None:
    """`word AND word` queries skip the lexer (syntax._simple): same tree, or same error."""
    query = " AND ".join(words)
    try:
        expected: object = syntax._Parser(query).parse()
    except RuleSyntaxError as exc:
        expected = (exc.message, exc.column)
    try:
        got: object = parse(query)
    except RuleSyntaxError as exc:
        got = (exc.message, exc.column)
    assert got == expected

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.rules import (
    Document,
    Not,
    Query,
    RuleIndex,
    RuleSyntaxError,
    Term,
    compile_query,
    lint_query,
)
from monitor.rules.index import requirements
from monitor.rules.presearch import COMPILED

QUERY_WORDS = [
    "Japan",
    "korea",
    "North",
    "south",
    "summit",
    "abduction",
    "talks",
    "the",
    "Tōkyō",
    "kim",
    "abduct*",
    "kor*",
    "sou*",
    "talk*",
    "北朝鮮",
    "拉致",
    "日本",
    "iPhone発売",
]
NEAR_WORDS = [word for word in QUERY_WORDS if word.isascii()]
TEXT_WORDS = [
    "Japan",
    "Japanese",
    "Korea",
    "Korean",
    "north",
    "North",
    "South",
    "summit",
    "summits",
    "abduction",
    "abductees",
    "talks",
    "talk",
    "the",
    "Tokyo",
    "Kim",
    "and",
    ",",
    ".",
    "北朝鮮による拉致",
    "日本人",
    "新型iPhone発売へ",
    "朝鮮",
]
FIELD_NAMES = st.sampled_from(["", "", "", "title:", "lede:", "body:", "url:", "author:"])


PHRASES = st.lists(st.sampled_from(QUERY_WORDS), min_size=1, max_size=2).map(" ".join)
TERMS = st.one_of(PHRASES, PHRASES.map(lambda phrase: f'"{phrase}"'))
PRIMARIES = st.builds(lambda field, term: field + term, FIELD_NAMES, TERMS)
ALTERNATIVES = st.lists(PRIMARIES, min_size=1, max_size=3).map("|".join)
NEAR_SIDES = st.lists(st.sampled_from(NEAR_WORDS), min_size=1, max_size=2).map("|".join)
PROXIMITIES = st.builds(
    lambda left, op, n, right: f"{left} {op}{n} {right}",
    NEAR_SIDES,
    st.sampled_from(["NEAR/", "ONEAR/"]),
    st.integers(0, 4),
    NEAR_SIDES,
)
OPERATORS = st.sampled_from([" AND ", " AND ", " OR ", " NOT ", " -"])


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, op, b: f"({a}){op}({b})", inner, OPERATORS, inner),
        st.builds(lambda field, a: f"{field}({a})", FIELD_NAMES, inner),
    )


QUERY_TEXTS = st.recursive(st.one_of(ALTERNATIVES, PROXIMITIES), _extend, max_leaves=6)


def _compiled(text: str) -> Query | None:
    try:
        return compile_query(text)
    except RuleSyntaxError:
        return None


QUERIES = QUERY_TEXTS.map(_compiled).filter(lambda query: query is not None)
TEXTS = st.lists(st.sampled_from(TEXT_WORDS), max_size=8).map(" ".join)
DOCUMENTS = st.builds(
    lambda title, lede, body, url, authors: Document.from_fields(
        {
            "title": (title,),
            "lede": (lede,),
            "body": body,
            "url": ("https://example.com/" + url.replace(" ", "-"),),
            "author": authors,
        }
    ),
    TEXTS,
    TEXTS,
    st.lists(TEXTS, max_size=3),
    TEXTS,
    st.lists(TEXTS, max_size=2),
)


@settings(max_examples=250, deadline=None)
@given(st.lists(QUERIES, min_size=1, max_size=12), st.lists(DOCUMENTS, min_size=1, max_size=3))
def test_index_matches_exactly_what_direct_evaluation_matches(
    queries: list[Query], docs: list[Document]
) -> None:
    """Whichever presearch runs: the compiled one (when built) and the Python one let the
    same rules through, and match what evaluating every rule matches."""
    indexes = [RuleIndex(enumerate(queries)), RuleIndex(enumerate(queries), compiled=False)]
    assert indexes[0].compiled == COMPILED and not indexes[1].compiled
    for doc in docs:
        expected = [(key, q.evaluate(doc)) for key, q in enumerate(queries) if q.evaluate(doc)]
        for index in indexes:
            found = index.match(doc)
            assert [(key, explanation.terms) for key, explanation in found] == expected
            assert {key for key, _ in expected} <= set(index.candidates(doc))
        assert indexes[0].candidates(doc) == indexes[1].candidates(doc)


def article_doc(title: str = "", body: tuple[str, ...] = (), **fields: tuple[str, ...]) -> Document:
    return Document.from_fields({"title": (title,), "body": body, **fields})


def test_only_rules_whose_required_terms_occur_are_candidates() -> None:
    index = RuleIndex(
        [
            ("user", compile_query("Japan AND North Korea AND summit|abduction")),
            ("tokyo", compile_query("Tokyo AND NOT Osaka")),
            ("prefix", compile_query("Japan AND abduct*")),
            ("cjk", compile_query("北朝鮮 AND 拉致")),
            ("either", compile_query("(Seoul AND talks) OR (Beijing AND summit)")),
        ]
    )
    doc = article_doc("Japan and North Korea", ("A summit on the abductees.",))
    assert index.candidates(doc) == ["user", "prefix"]
    assert [key for key, _ in index.match(doc)] == ["user", "prefix"]
    assert index.candidates(article_doc("北朝鮮による拉致")) == ["cjk"]
    assert index.candidates(article_doc("Seoul talks", ("Beijing summit",))) == ["either"]
    assert index.candidates(article_doc("Seoul and Beijing")) == []


def test_match_keeps_entry_order_and_duplicate_keys() -> None:
    index = RuleIndex(
        [
            ("b", compile_query("Japan")),
            ("a", compile_query("japan")),
            ("b", compile_query("JAPAN")),
        ]
    )
    assert [key for key, _ in index.match(article_doc("Japan"))] == ["b", "a", "b"]
    assert len(index) == 3


def test_fields_are_ignored_by_the_presearch_but_not_by_the_match() -> None:
    index = RuleIndex([("title", compile_query("title:Japan"))])
    doc = article_doc("Tokyo", ("Japan",))
    assert index.candidates(doc) == ["title"]
    assert index.match(doc) == []


def test_a_rule_without_a_required_term_is_always_evaluated() -> None:
    negative = Query(Not(Term(("korea",), "Korea")))
    index = RuleIndex([("plain", compile_query("Japan")), ("negative", negative)])
    assert index.always_evaluated == ["negative"]
    assert [key for key, _ in index.match(article_doc("Tokyo"))] == ["negative"]
    assert index.match(article_doc("Korea")) == []


def test_the_rarer_words_of_an_and_are_indexed() -> None:
    clauses = requirements(compile_query("the AND abduction AND Japan").root)
    assert [sorted(clause.keys) for clause in clauses] == [
        [("word", "abduction")],
        [("word", "japan")],
        [("word", "the")],
    ]
    frequencies = {"abduction": 0.5, "japan": 0.01}
    rarity = lambda word: frequencies.get(word, 1.0)  # noqa: E731
    assert sorted(requirements(compile_query("Japan AND abduction").root, rarity)[0].keys) == [
        ("word", "japan")
    ]


def test_requirements_of_or_near_prefix_and_unspaced_terms() -> None:
    def keys(query: str) -> list[list[tuple[str, str]]]:
        return [sorted(clause.keys) for clause in requirements(compile_query(query).root)]

    assert keys("Seoul|Tokyo") == [[("word", "seoul"), ("word", "tokyo")]]
    assert keys("abduction NEAR/3 Japan") == [[("word", "abduction")], [("word", "japan")]]
    assert keys("Japan AND abductions*") == [[("word", "japan")], [("prefix", "abduc")]]
    assert keys("北朝鮮") == [[("gram", "北朝")], [("gram", "朝鮮")]]
    assert keys("Japan AND NOT Korea") == [[("word", "japan")]]


def test_index_accepts_a_frequency_table() -> None:
    index = RuleIndex([("r", compile_query("Japan AND abduction"))], frequencies={"japan": 0.9})
    assert index.candidates(article_doc("abduction Japan")) == ["r"]
    assert index.candidates(article_doc("Japan")) == []


def test_lint_warns_about_short_prefixes_and_common_words() -> None:
    assert lint_query(compile_query("Japan AND abduct*")) == []
    assert lint_query(compile_query("Japan AND con*")) == [
        "con* has only 3 letters before *: it matches most articles; "
        "add letters or list the words you mean"
    ]
    assert lint_query(compile_query('"to be or not to be"')) == [
        "this rule can match on very common words alone (be, not, or, to), "
        "so it is evaluated for most articles"
    ]
    assert lint_query(compile_query("the AND Japan")) == []
    assert lint_query(compile_query("the OR Japan")) == [
        "this rule can match on very common words alone (the), so it is evaluated for most articles"
    ]


def test_lint_warns_about_rules_that_cannot_be_indexed() -> None:
    assert lint_query(Query(Not(Term(("korea",), "Korea")))) == [
        "this rule cannot be indexed: it needs a term that must occur, so it is "
        "evaluated for every article"
    ]


def test_a_prefix_second_clause_is_checked_in_the_article_text() -> None:
    index = RuleIndex([("r", compile_query("Japan AND abduct*"))])
    assert index.candidates(article_doc("Japan")) == []
    assert index.candidates(article_doc("Japan", ("The abductees",))) == ["r"]
    assert index.candidates(article_doc("Japan", section=("abduction",))) == ["r"]


def test_blocks_stay_apart_whatever_characters_they_hold() -> None:
    query = compile_query('"north korea"')
    for body in (("North", "Korea"), ("North\x00", "Korea"), ("Nörth", "Korea")):
        doc = article_doc("", body)
        assert query.evaluate(doc) is None
        assert RuleIndex([("r", query)]).match(doc) == []
    doc = article_doc("", ("x\x00y North", "Korea North Korea"))
    assert doc.field("body").block_starts == (0, 4)
    explanation = query.explain(doc)
    assert explanation is not None
    assert [(hit.block, hit.start, hit.end) for hit in explanation.hits] == [(1, 6, 17)]


PREFIX_WORDS = ["abduct*", "kor*", "sou*", "talk*", "jap*", "summ*", "nor*", "tok*"]
PREFIX_ONLY = st.lists(
    st.one_of(
        st.sampled_from(PREFIX_WORDS),
        st.builds(lambda field, word: field + word, FIELD_NAMES, st.sampled_from(PREFIX_WORDS)),
        st.sampled_from(["summit", "abduction", '"north kor*"']),
    ),
    min_size=1,
    max_size=3,
).map(" OR ".join)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(PREFIX_ONLY, QUERY_TEXTS), min_size=1, max_size=10),
    st.lists(DOCUMENTS, min_size=1, max_size=3),
)
def test_prefix_only_rules_are_indexed_by_stem_and_match_as_evaluated(
    texts: list[str], docs: list[Document]
) -> None:
    """`jap*`, `tal* OR abduction`, `(summer OR mongoli*)`: a prefix alone or as an OR
    branch is indexed by its stem (never evaluated for every article), and both presearches
    let through what evaluating each rule matches."""
    queries = [query for text in texts if (query := _compiled(text)) is not None]
    if not queries:
        return
    indexes = [RuleIndex(enumerate(queries)), RuleIndex(enumerate(queries), compiled=False)]
    assert indexes[0].always_evaluated == []
    for doc in docs:
        expected = [(key, q.evaluate(doc)) for key, q in enumerate(queries) if q.evaluate(doc)]
        for index in indexes:
            assert [(key, why.terms) for key, why in index.match(doc)] == expected
        assert indexes[0].candidates(doc) == indexes[1].candidates(doc)


def test_prefix_only_operands_are_accepted_and_a_negative_rule_is_not() -> None:
    doc = Document.from_fields({"title": ("Japanese talks in Mongolia",)})
    queries = [compile_query(q) for q in ("jap*", "tal* OR abduction", "(summer OR mongoli*)")]
    index = RuleIndex(enumerate(queries))
    assert [why.terms for _, why in index.match(doc)] == [("jap*",), ("tal*",), ("mongoli*",)]
    assert index.match(Document.from_fields({"title": ("Jazz in summer",)}))[0][0] == 2
    for refused in ("NOT jap*", "-tal*", "ja*"):
        try:
            compile_query(refused)
        except RuleSyntaxError:
            continue
        raise AssertionError(f"{refused} was accepted")

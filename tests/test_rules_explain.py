from hypothesis import given, settings

from monitor.rules import Document, Explanation, Hit, Query, compile_query, mark_snippet, tokenize
from monitor.rules.text import has_unspaced
from tests.test_rules import NORTH_KOREA_STORY, USER_QUERY
from tests.test_rules_index import DOCUMENTS, QUERIES


def explain(query: str, doc: Document) -> Explanation:
    explanation = compile_query(query).explain(doc)
    assert explanation is not None
    return explanation


def text_of(doc: Document, hit: Hit) -> str:
    return doc.field(hit.field).originals[hit.block][hit.start : hit.end]


def test_summary_names_each_term_once_with_its_fields() -> None:
    doc = Document.from_article(NORTH_KOREA_STORY)
    explanation = explain(USER_QUERY, doc)
    assert explanation.terms == compile_query(USER_QUERY).evaluate(doc)
    assert explanation.summary() == (
        "Japan (title, lede, body), north korea (title, lede, body), summit (body), "
        "abduction (body)"
    )
    assert explanation.fields("summit") == ("body",)


def test_hits_locate_each_occurrence_in_the_original_text() -> None:
    doc = Document.from_fields(
        {"title": ("Japan’s view",), "body": ("", "Talks with NORTH  Korea; japan waits.")}
    )
    hits = explain('Japan AND "north korea"', doc).hits
    assert hits == (
        Hit("Japan", "title", 0, 0, 5),
        Hit("Japan", "body", 1, 25, 30),
        Hit("north korea", "body", 1, 11, 23),
    )
    assert [text_of(doc, hit) for hit in hits] == ["Japan", "japan", "NORTH  Korea"]


def test_hits_in_text_that_normalization_changes() -> None:
    doc = Document.from_fields(
        {"body": ("Die Straße in Zu\u0308rich: ｶﾞﾝﾊﾞﾙ, ﬁnance", "政府は北朝鮮による拉致問題")}
    )
    hits = explain("strasse AND zurich AND ガンバル AND finance AND 拉致", doc).hits
    assert [text_of(doc, hit) for hit in hits] == [
        "Straße",
        "Zu\u0308rich",
        "ｶﾞﾝﾊﾞﾙ",
        "ﬁnance",
        "拉致",
    ]


def test_hits_of_proximity_and_prefix_terms() -> None:
    doc = Document.from_fields(
        {"body": ("Korea said little. Weeks later Japan and Korea met over abductees.",)}
    )
    explanation = explain("Japan NEAR/2 Korea AND abduct*", doc)
    assert explanation.terms == ("Japan", "Korea", "abduct*")
    assert [text_of(doc, hit) for hit in explanation.hits] == ["Japan", "Korea", "abductees"]


def test_explanation_built_from_hits() -> None:
    hit = Hit("Japan", "title", 0, 0, 5)
    explanation = Explanation(("Japan",), (hit,))
    assert explanation.hits == (hit,)
    assert explanation.summary() == "Japan (title)"
    assert explanation == Explanation(["Japan"], [hit])
    assert explanation != Explanation(("Japan",), ())
    assert hash(explanation) == hash(Explanation(("Japan",), (hit,)))


def test_snippet_quotes_the_block_with_most_distinct_terms() -> None:
    doc = Document.from_article(NORTH_KOREA_STORY)
    assert mark_snippet(doc, explain(USER_QUERY, doc)) == (
        "**Japan** and **North Korea** have no formal diplomatic relations. Tokyo wants "
        "progress on the **abduction** issue."
    )


def test_snippet_cuts_at_spaces_with_ellipses() -> None:
    body = " ".join(f"word{n}" for n in range(100)) + " Japan " + " ".join(["x"] * 100)
    doc = Document.from_fields({"body": (body,)})
    snippet = mark_snippet(doc, explain("Japan", doc), width=40, mark=("<b>", "</b>"))
    assert snippet == "…word98 word99 <b>Japan</b> x x x x x x x x…"


def test_snippet_falls_back_to_the_title_and_collapses_whitespace() -> None:
    doc = Document.from_fields({"title": ("Japan\n  wins",), "body": ("Nothing here.",)})
    assert mark_snippet(doc, explain("Japan", doc)) == "**Japan** wins"


def test_snippet_prefers_lede_and_body_over_the_title() -> None:
    doc = Document.from_fields({"title": ("Japan and Korea",), "lede": ("Japan acts.",)})
    assert mark_snippet(doc, explain("Japan AND Korea", doc)) == "**Japan** acts."


def test_snippet_without_hits_quotes_the_start_of_the_article() -> None:
    doc = Document.from_fields({"title": ("Title",), "body": ("Body text.",)})
    assert mark_snippet(doc, Explanation((), ())) == "Body text."


@settings(max_examples=150, deadline=None)
@given(QUERIES, DOCUMENTS)
def test_hits_hold_their_terms(query: Query, doc: Document) -> None:
    explanation = query.explain(doc)
    if explanation is None:
        return
    assert explanation.terms == query.evaluate(doc)
    assert {hit.term for hit in explanation.hits} == set(explanation.terms)
    for hit in explanation.hits:
        found = tokenize(text_of(doc, hit))
        wanted = tokenize(hit.term.replace("*", ""))
        if has_unspaced(hit.term):
            assert found
        elif "*" in hit.term:
            assert len(found) == len(wanted)
            assert all(token.startswith(word) for token, word in zip(found, wanted, strict=True))
        else:
            assert found == wanted
    assert mark_snippet(doc, explanation).count("**") >= 2


def _general(query: Query) -> Query:
    """The same query with the shortcuts for an AND of terms turned off."""
    general = Query(query.root)
    object.__setattr__(general, "_conjunction", None)
    object.__setattr__(general, "_words", None)
    return general


@settings(max_examples=300, deadline=None)
@given(QUERIES, DOCUMENTS)
def test_shortcuts_for_an_and_of_terms_explain_as_the_general_path(
    query: Query, doc: Document
) -> None:
    """The memo shared by the rules of one document, the summaries built from it and the
    subset test of required words give what the general evaluation gives."""
    general = _general(query)
    fast, slow = query.explain(doc), general.explain(doc)
    assert (fast is None) == (slow is None) == (not general.matches(doc))
    if query.required_words is not None:
        assert (query.required_words <= doc.default_words) == general.matches(doc)
    if fast is not None and slow is not None:
        assert (fast.terms, fast.summary(), fast.hits) == (slow.terms, slow.summary(), slow.hits)


def test_terms_shared_by_rules_are_located_once_per_document() -> None:
    doc = Document.from_fields({"title": ("Japan and Korea",), "body": ("Korea talks",)})
    first = explain("Japan AND Korea", doc)
    second = explain("Korea AND talks", doc)
    assert first.summary() == "Japan (title), Korea (title, body)"
    assert second.summary() == "Korea (title, body), talks (body)"
    assert first.hits[1:] == second.hits[:2]


@given(QUERIES, DOCUMENTS)
def test_a_summary_names_the_fields_its_hits_are_in(query: Query, doc: Document) -> None:
    """Summaries come from per-term shortcuts (a word's fields from the word sets alone),
    asked before any hit is located: they say what the hits say."""
    explanation = query.explain(doc)
    if explanation is None:
        return
    summary = explanation.summary()
    assert summary == Explanation(explanation.terms, explanation.hits).summary()

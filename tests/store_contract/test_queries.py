"""Store contract: stories (fingerprints, copies) and what the CLI's queries read."""

from __future__ import annotations

from datetime import timedelta

from monitor.ports import StoreBackend
from monitor.state import SourceState, StoryCopy
from tests.store_contract.helpers import NOW, article, match


def test_story_fingerprints_are_the_rules_since_a_time(store: StoreBackend) -> None:
    items = [article(f"a{n}") for n in range(4)]
    fingerprint = bytes(range(256)) + b"\x00\xff"
    store.save_poll(
        SourceState("s", "u"),
        items,
        [
            match("a0", at=NOW - timedelta(days=3), story_id="a0", fingerprint=b"old"),
            match("a1", at=NOW, story_id="a1", fingerprint=fingerprint),
            match("a2", at=NOW + timedelta(minutes=1), story_id="a1", fingerprint=b"copy"),
            match("a3", rule="other", at=NOW, story_id="a3", fingerprint=b"x"),
        ],
        [],
        NOW,
    )

    assert store.story_fingerprints("rule", NOW - timedelta(days=1)) == [
        ("a1", fingerprint),
        ("a1", b"copy"),
    ]


def test_a_match_without_a_fingerprint_is_its_own_story_and_has_none(
    store: StoreBackend,
) -> None:
    store.save_poll(SourceState("s", "u"), [article("a1")], [match("a1")], [], NOW)

    assert store.story_fingerprints("rule", NOW - timedelta(days=1)) == []
    [(record, _, _)] = store.recent_matches()
    assert record.story_id == "a1" and record.fingerprint == b""


def test_story_copies_come_in_the_order_they_were_seen(store: StoreBackend) -> None:
    items = [article("a1", source="wire"), article("a2", source="paper", title="B"),
             article("a3", source="blog")]  # fmt: skip
    store.save_poll(
        SourceState("s", "u"),
        items,
        [
            match("a2", at=NOW + timedelta(minutes=1), story_id="a1", source="paper"),
            match("a1", at=NOW, story_id="a1", source="wire"),
            match("a3", at=NOW, story_id="a3", source="blog"),
        ],
        [],
        NOW,
    )

    assert store.story_copies("rule", "a1") == [
        StoryCopy("a1", "wire", "A", "https://example.com/a1"),
        StoryCopy("a2", "paper", "B", "https://example.com/a2"),
    ]
    assert store.story_copies("other", "a1") == []


def test_a_match_comes_back_whole_newest_first_with_its_article(store: StoreBackend) -> None:
    items = [article("a1", title="One"), article("a2", title="Two")]
    full = match("a2", at=NOW + timedelta(minutes=1), story_id="a1", fingerprint=b"fp",
                 source="s", explanation="matched 'A' in title")  # fmt: skip
    store.save_poll(SourceState("s", "u"), items, [match("a1", story_id="a1"), full], [], NOW)

    got = store.recent_matches()
    assert got[0] == (full, "Two", "https://example.com/a2")
    assert [m.article_id for m, _, _ in got] == ["a2", "a1"]
    assert len(store.recent_matches(limit=1)) == 1


def test_a_match_recorded_twice_keeps_the_first(store: StoreBackend) -> None:
    state = SourceState("s", "u")
    store.save_poll(state, [article("a1")], [match("a1", explanation="first")], [], NOW)
    store.save_poll(state, [], [match("a1", explanation="second")], [], NOW)

    assert [m.explanation for m, _, _ in store.recent_matches()] == ["first"]


def test_matches_made_at_one_time_come_newest_recorded_first(store: StoreBackend) -> None:
    items = [article(f"a{n}") for n in range(3)]
    store.save_poll(SourceState("s", "u"), items, [match(f"a{n}") for n in (2, 0, 1)], [], NOW)

    assert [m.article_id for m, _, _ in store.recent_matches()] == ["a1", "a0", "a2"]

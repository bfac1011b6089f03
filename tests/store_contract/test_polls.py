"""Store contract: a poll's one atomic record, source state, seen articles and links."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.model import Article
from monitor.ports import StoreBackend
from monitor.state import FeedHints, MatchRecord, SourceState
from tests.store_contract.conftest import Backend
from tests.store_contract.helpers import NOW, article, delivery


def test_a_poll_is_recorded_at_once_and_survives_reopening(backend: Backend) -> None:
    store = backend.open()
    state = SourceState("s", "https://example.com/f", etag='W/"1"', last_ok_at=NOW)
    item = Article(id="a1", url="https://example.com/a", source="s", title="A", published=NOW)

    store.save_poll(state, [item], [MatchRecord("a1", "rule", ("A",), NOW)], [delivery("d1")], NOW)
    store.close()
    reopened = backend.open()

    assert reopened.source_state("s") == state
    assert reopened.known_ids(["a1", "zz"]) == {"a1"}
    assert [d.id for d in reopened.pending_deliveries(NOW)] == ["d1"]
    assert list(reopened.articles_since(NOW - timedelta(days=1))) == [item]
    assert reopened.recent_matches()[0][0].terms == ("A",)


def test_a_failed_poll_record_leaves_nothing_behind(backend: Backend) -> None:
    store = backend.open()
    item = Article(id="a1", url="u", source="s", title="A")
    broken = MatchRecord("missing-article", "rule", (), NOW)

    with pytest.raises(backend.integrity_error):
        store.save_poll(SourceState("s", "u"), [item], [broken], [], NOW)

    assert store.source_state("s") is None
    assert store.known_ids(["a1"]) == set()


def test_every_field_of_a_source_state_comes_back(store: StoreBackend) -> None:
    state = SourceState(
        "s", "https://example.com/f", etag='"e"', last_modified="Tue, 01 Dec 2026 10:00:00 GMT",
        last_fetch_at=NOW, last_ok_at=NOW - timedelta(hours=1), last_result="HTTP 503",
        error_count=3, next_fetch_at=NOW + timedelta(minutes=15), items_seen=42,
        fetch_url="https://example.com/moved", not_before=NOW + timedelta(minutes=5),
        failing_since=NOW - timedelta(hours=2), failure_reported=True, disabled="HTTP 410",
        hints=FeedHints(timedelta(minutes=30), timedelta(hours=1), frozenset({0, 23}),
                        frozenset({5, 6})),
    )  # fmt: skip

    store.save_state(state)

    assert store.source_state("s") == state
    assert store.source_state("other") is None


def test_saving_a_state_again_replaces_it_and_states_come_by_name(store: StoreBackend) -> None:
    store.save_state(SourceState("b", "https://b.example/", error_count=1))
    store.save_state(SourceState("a", "https://a.example/"))
    store.save_poll(SourceState("b", "https://b.example/", etag="x"), [], [], [], NOW)

    assert store.source_states() == [
        SourceState("a", "https://a.example/"),
        SourceState("b", "https://b.example/", etag="x"),
    ]


def test_times_come_back_aware_in_utc_whatever_zone_they_went_in(store: StoreBackend) -> None:
    from datetime import timezone

    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    store.save_state(SourceState("s", "u", last_fetch_at=tokyo))

    got = store.source_state("s")
    assert got is not None and got.last_fetch_at == NOW
    assert got.last_fetch_at.utcoffset() == timedelta(0)


def test_an_article_seen_again_keeps_its_first_record(store: StoreBackend) -> None:
    store.save_poll(SourceState("s", "u"), [article("a1", title="First")], [], [], NOW)
    later = NOW + timedelta(hours=1)
    store.save_poll(SourceState("s", "u"), [article("a1", title="Edited")], [], [], later)

    assert [a.title for a in store.articles_since(NOW - timedelta(days=1))] == ["First"]
    assert store.count_articles_since(NOW + timedelta(minutes=1)) == 0


def test_known_ids_are_answered_for_many_ids_at_once(store: StoreBackend) -> None:
    stored = [article(f"a{n}") for n in range(0, 1300, 2)]
    store.save_poll(SourceState("s", "u"), stored, [], [], NOW)

    asked = [f"a{n}" for n in range(1300)]
    assert store.known_ids(asked) == {a.id for a in stored}
    assert store.known_ids([]) == set()


def test_settled_links_need_no_fetch_until_their_recheck_time(store: StoreBackend) -> None:
    store.save_poll(
        SourceState("s", "u"), [article("a1")], [], [], NOW,
        settled_links=[("l1", NOW + timedelta(days=1)), ("l2", NOW + timedelta(hours=1))],
    )  # fmt: skip

    assert store.known_links(["a1", "l1", "l2", "zz"], NOW) == {"a1", "l1", "l2"}
    assert store.known_links(["a1", "l1", "l2"], NOW + timedelta(hours=2)) == {"a1", "l1"}
    assert store.known_ids(["l1"]) == set()  # a settled link is not an article


def test_a_link_settled_again_takes_the_new_recheck_time(store: StoreBackend) -> None:
    state = SourceState("s", "u")
    store.save_poll(state, [], [], [], NOW, settled_links=[("l1", NOW + timedelta(hours=1))])
    store.save_poll(state, [], [], [], NOW, settled_links=[("l1", NOW + timedelta(days=2))])

    assert store.known_links(["l1"], NOW + timedelta(days=1)) == {"l1"}


def test_feed_text_is_stored_as_data(store: StoreBackend) -> None:
    nasty = "Robert'); DROP TABLE articles;-- \u202e\U0001f600 ? $1 %s {marks} \\x00"
    item = Article(id="a1", url="https://example.com/?q='x'", source="s", title=nasty)
    store.save_poll(SourceState("s'--", "u"), [item], [], [], NOW)

    assert list(store.articles_since(NOW - timedelta(days=1))) == [item]
    assert store.source_state("s'--") is not None


def test_recent_articles_are_the_sources_newest_with_text(store: StoreBackend) -> None:
    state = SourceState("s", "u")
    for n in range(5):
        store.save_poll(state, [article(f"a{n}")], [], [], NOW + timedelta(minutes=n))
    store.save_poll(SourceState("t", "u"), [article("t1", source="t")], [], [], NOW)

    got = store.recent_articles("s", NOW + timedelta(minutes=1), limit=3)
    assert [a.id for a in got] == ["a4", "a3", "a2"]
    store.prune_text(NOW + timedelta(minutes=4))
    assert [a.id for a in store.recent_articles("s", NOW, limit=10)] == ["a4"]


def test_pruned_text_is_gone_but_the_article_stays_known(store: StoreBackend) -> None:
    state = SourceState("s", "u")
    store.save_poll(state, [article("old")], [], [], NOW - timedelta(days=40))
    store.save_poll(state, [article("new")], [], [], NOW)

    assert store.prune_text(NOW - timedelta(days=30)) == 1
    assert store.prune_text(NOW - timedelta(days=30)) == 0
    assert [a.id for a in store.articles_since(NOW - timedelta(days=90))] == ["new"]
    assert store.count_articles_since(NOW - timedelta(days=90)) == 1
    assert store.known_ids(["old", "new"]) == {"old", "new"}


def test_articles_since_come_oldest_first(store: StoreBackend) -> None:
    state = SourceState("s", "u")
    for n in (3, 1, 2):
        store.save_poll(state, [article(f"a{n}")], [], [], NOW + timedelta(minutes=n))

    assert [a.id for a in store.articles_since(NOW)] == ["a1", "a2", "a3"]
    assert store.count_articles_since(NOW + timedelta(minutes=2)) == 2


def test_the_store_takes_writes_and_reads_from_many_threads_at_once(
    store: StoreBackend,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def save(n: int) -> set[str]:
        ids = [f"{n}-{i}" for i in range(100)]
        items = [article(i, source=f"s{n}") for i in ids]
        store.save_poll(SourceState(f"s{n}", "https://x.example/"), items, [], [], NOW)
        return store.known_ids(ids)

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(save, range(16)))

    assert [len(ids) for ids in found] == [100] * 16
    assert store.count_articles_since(NOW) == 1600
    assert len(store.source_states()) == 16


def test_a_fresh_store_passes_its_integrity_check(store: StoreBackend) -> None:
    store.check_integrity()


def test_two_stores_on_one_database_see_each_others_writes(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    first.save_poll(SourceState("s", "u"), [article("a1")], [], [delivery("d1")], NOW)

    assert second.known_ids(["a1"]) == {"a1"}
    second.mark_delivered("d1", NOW)
    assert first.pending_deliveries(NOW, due_only=False) == []

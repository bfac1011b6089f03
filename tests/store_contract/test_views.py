"""Store contract: the dashboard's, health checks' and metrics' reads (DashboardStore) and
its one write, "retry now"."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config.files import load_config
from monitor.ports import StoreBackend
from monitor.service import dashboard
from monitor.state import SourceState, StoryCopy
from tests.store_contract.helpers import NOW, article, delivery, match
from tests.webapp import fill, write_config


def test_ping_answers_on_an_open_store(store: StoreBackend) -> None:
    store.ping()  # raises StoreError when the database does not answer


def test_source_ranks_carry_streak_disabled_fetched_and_hit(store: StoreBackend) -> None:
    store.save_state(SourceState("Alpha", "https://a.example/feed", error_count=3,
                                 last_result="HTTP 500", last_fetch_at=NOW))  # fmt: skip
    store.save_state(SourceState("beta", "https://b.example/feed", disabled="gone (HTTP 410)"))
    moved = "https://moved.example/NEW"
    store.save_state(SourceState("gamma", "https://c.example/feed", fetch_url=moved,
                                 last_result="ok"))  # fmt: skip

    assert sorted(store.source_ranks()) == [
        ("Alpha", 3, 0, 1, 1),
        ("beta", 0, 1, 0, 1),
        ("gamma", 0, 0, 0, 1),
    ]
    hits = {name: hit for name, *_, hit in store.source_ranks("ALPHA")}
    assert hits == {"Alpha": 1, "beta": 0, "gamma": 0}
    # The URL polled (fetch_url over url) and the result (disabled over last_result) count.
    assert {n for n, *_, h in store.source_ranks("moved.example/new") if h} == {"gamma"}
    assert {n for n, *_, h in store.source_ranks("c.example") if h} == set()
    assert {n for n, *_, h in store.source_ranks("410") if h} == {"beta"}
    assert {n for n, *_, h in store.source_ranks("http 500") if h} == {"Alpha"}


def test_source_ranks_fold_ascii_letters_only(store: StoreBackend) -> None:
    store.save_state(SourceState("Ünïcode Wire", "https://u.example/feed"))

    assert {n for n, *_, h in store.source_ranks("wire") if h} == {"Ünïcode Wire"}
    assert {n for n, *_, h in store.source_ranks("Ünï") if h} == {"Ünïcode Wire"}
    assert {n for n, *_, h in store.source_ranks("ünï") if h} == set()


def test_source_ranks_take_text_as_data(store: StoreBackend) -> None:
    store.save_state(SourceState("it's 100%_sure", "https://p.example/feed"))
    store.save_state(SourceState("plain", "https://q.example/feed"))

    for text in ("%", "_", "'", "100%_"):
        assert {n for n, *_, h in store.source_ranks(text) if h} == {"it's 100%_sure"}


def test_overdue_sources_are_the_enabled_ones_due_and_past_the_floor(
    store: StoreBackend,
) -> None:
    late = NOW - timedelta(minutes=20)
    store.save_state(SourceState("late", "u", next_fetch_at=late))
    store.save_state(SourceState("on-time", "u", next_fetch_at=NOW + timedelta(minutes=5)))
    store.save_state(SourceState("off", "u", next_fetch_at=late, disabled="gone"))
    store.save_state(SourceState("held", "u", next_fetch_at=late, not_before=NOW))
    store.save_state(SourceState("held-past", "u", next_fetch_at=late, not_before=late))
    store.save_state(SourceState("never-scheduled", "u"))

    assert sorted(store.overdue_sources(NOW - timedelta(minutes=10))) == ["held-past", "late"]
    assert store.overdue_sources(late) == []


def test_source_states_named_are_the_stored_ones_among_the_names(store: StoreBackend) -> None:
    states = [SourceState(f"s{n:04d}", f"https://{n}.example/", error_count=n) for n in range(600)]
    for state in states:
        store.save_state(state)

    found = store.source_states_named(
        ["s0003", "nope", "s0599", *[f"s{n:04d}" for n in range(510)]]
    )
    assert sorted(found, key=lambda s: s.name) == [*states[:510], states[599]]
    assert store.source_states_named([]) == []


def test_outbox_counts_pending_and_dead(store: StoreBackend) -> None:
    assert store.outbox_counts() == (0, 0)
    store.save_poll(SourceState("s", "u"), [article("a1")], [],
                    [delivery(f"d{n}") for n in range(4)], NOW)  # fmt: skip
    store.mark_delivered("d0", NOW)
    store.mark_dead("d1", "HTTP 404", NOW)
    store.mark_failed("d2", "timeout", NOW + timedelta(minutes=5))  # still pending

    assert store.outbox_counts() == (2, 1)


def test_pending_page_is_the_oldest_waiting_first_with_the_article(store: StoreBackend) -> None:
    items = [article("a1", title="First"), article("a2", title="Second")]
    deliveries = [
        replace(delivery("d-new", article_id="a1"), created_at=NOW + timedelta(minutes=1)),
        replace(delivery("d-tie-1", article_id="a2"), created_at=NOW),
        replace(delivery("d-tie-2", article_id="a1"), created_at=NOW),
        replace(delivery("d-sent", article_id="a1"), created_at=NOW - timedelta(hours=1)),
        replace(delivery("d-gone", article_id="gone"), created_at=NOW + timedelta(minutes=2)),
    ]
    store.save_poll(SourceState("s", "u"), items, [], deliveries, NOW)
    store.mark_delivered("d-sent", NOW)

    page = store.pending_page(10)
    assert [d.id for d in page] == ["d-tie-1", "d-tie-2", "d-new", "d-gone"]
    assert (page[0].url, page[0].article_title) == ("https://example.com/a2", "Second")
    assert (page[-1].url, page[-1].article_title) == ("", "")  # its article is not stored
    assert [d.id for d in store.pending_page(2)] == ["d-tie-1", "d-tie-2"]


def test_retry_dead_queues_only_a_dead_delivery_again(store: StoreBackend) -> None:
    store.save_poll(SourceState("s", "u"), [article("a1")], [],
                    [delivery("dead"), delivery("sent"), delivery("waiting")], NOW)  # fmt: skip
    store.mark_dead("dead", "HTTP 404", NOW)
    store.mark_delivered("sent", NOW)
    later = NOW + timedelta(hours=1)

    assert store.retry_dead("dead", later)
    assert not store.retry_dead("dead", later)  # no longer dead
    assert not store.retry_dead("sent", later)
    assert not store.retry_dead("waiting", later)
    assert not store.retry_dead("unknown", later)
    assert store.outbox_counts() == (2, 0)
    [again] = [d for d in store.pending_deliveries(later) if d.id == "dead"]
    assert again.next_attempt_at == later and again.attempts == 1
    assert store.dead_deliveries() == []


def test_recent_match_articles_newest_first_ties_newest_written_first(
    store: StoreBackend,
) -> None:
    items = [article(f"a{n}", title=f"T{n}") for n in range(4)]
    store.save_poll(SourceState("s", "u"), items, [
        match("a0", at=NOW - timedelta(minutes=1), explanation="T0 (title)"),
        match("a1", at=NOW),
        match("a2", at=NOW),
        match("a3", at=NOW - timedelta(minutes=1), rule="other"),
    ], [], NOW)  # fmt: skip

    got = store.recent_match_articles(10)
    assert [(rule, a.id if a else None) for rule, _, _, a in got] == [
        ("rule", "a2"), ("rule", "a1"), ("other", "a3"), ("rule", "a0"),
    ]  # fmt: skip
    assert got[1][2] == NOW and got[1][2].utcoffset() == timedelta(0)
    assert got[3][1] == "T0 (title)" and got[0][1] == ""
    assert got[0][3] == items[2]
    assert [a.id for _, _, _, a in store.recent_match_articles(2) if a] == ["a2", "a1"]


def test_recent_match_articles_mask_pruned_text(store: StoreBackend) -> None:
    store.save_poll(SourceState("s", "u"), [article("a1")], [match("a1")], [],
                    NOW - timedelta(days=40))  # fmt: skip
    store.prune_text(NOW - timedelta(days=30))

    [(rule, _, at, pruned)] = store.recent_match_articles(5)
    assert (rule, at, pruned) == ("rule", NOW, None)


def test_recent_stories_newest_first_with_every_copy_in_order(store: StoreBackend) -> None:
    items = [article("a1", source="wire"), article("a2", source="paper", title="B"),
             article("a3", source="blog", title="C"),
             article("a4", source="wire", title="D")]  # fmt: skip
    store.save_poll(SourceState("s", "u"), items, [
        match("a1", at=NOW, story_id="a1", source="wire"),
        match("a2", at=NOW + timedelta(minutes=2), story_id="a1", source="paper"),
        match("a3", at=NOW + timedelta(minutes=1), story_id="a3", source="blog"),
        match("a1", rule="other", at=NOW + timedelta(minutes=1), story_id="a1", source="wire"),
        match("a4", at=NOW - timedelta(hours=1), story_id="a4", source="wire"),
    ], [], NOW)  # fmt: skip

    stories = store.recent_stories(10)
    assert stories == [
        ("rule", [StoryCopy("a1", "wire", "A", "https://example.com/a1"),
                  StoryCopy("a2", "paper", "B", "https://example.com/a2")]),
        ("other", [StoryCopy("a1", "wire", "A", "https://example.com/a1")]),
        ("rule", [StoryCopy("a3", "blog", "C", "https://example.com/a3")]),
        ("rule", [StoryCopy("a4", "wire", "D", "https://example.com/a4")]),
    ]  # fmt: skip
    # The tie at +1 min: "other" was written after "a3", so it is newer.
    assert [rule for rule, _ in store.recent_stories(2)] == ["rule", "other"]
    # Only the newest `scan` matches are looked at, but each story comes whole.
    assert store.recent_stories(10, scan=1) == stories[:1]


def test_recent_stories_of_an_empty_store(store: StoreBackend) -> None:
    assert store.recent_stories(5) == []
    assert store.recent_match_articles(5) == []
    assert store.pending_page(5) == []


# The dashboard's source list over each backend (moved from tests/test_web.py, whose HTTP
# tests show the same over SQLite).


@pytest.mark.parametrize(
    ("text", "show", "expected"),
    [
        ("broken", "all", ["broken-feed"]),
        ("", "failing", ["broken-feed"]),
        ("", "ok", ["asia-dispatch", "quiet-wire"]),
        ("QUIET", "all", ["quiet-wire"]),
        ("nothing-like-this", "all", []),
    ],
)
def test_source_filter(
    store: StoreBackend, tmp_path: Path, text: str, show: str, expected: list[str]
) -> None:
    config = load_config(str(write_config(tmp_path)))
    fill(store, config)

    page = dashboard.source_page(store, config, text=text, show=show)
    assert [row.name for row in page.rows] == expected


def test_dashboard_lists_failing_sources_first_with_result_next_check_and_streak(
    store: StoreBackend, tmp_path: Path
) -> None:
    config = load_config(str(write_config(tmp_path)))
    fill(store, config)

    rows = dashboard.source_rows(store, config)
    assert rows[0].name == "broken-feed" and rows[0].failing
    assert {row.name for row in rows} == {"broken-feed", "asia-dispatch", "quiet-wire"}
    assert rows[0].result == "HTTP 500" and rows[0].errors == 4

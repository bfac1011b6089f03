"""Store contract: the outbox (queue, retries, dead letters, folding, rate counts), digests
and follow-ups."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from monitor.ports import StoreBackend
from monitor.state import Delivery, FollowUp, SourceState
from tests.store_contract.helpers import NOW, article, delivery, match


def test_enqueueing_the_same_delivery_twice_keeps_one(store: StoreBackend) -> None:
    state = SourceState("s", "u")
    store.save_poll(state, [], [], [delivery("d1")], NOW)
    store.save_poll(state, [], [], [delivery("d1")], NOW)

    assert len(store.pending_deliveries(NOW)) == 1


def test_failed_deliveries_wait_for_their_retry_time_unless_asked(store: StoreBackend) -> None:
    store.save_poll(SourceState("s", "u"), [], [], [delivery("d1"), delivery("d2")], NOW)

    store.mark_failed("d1", "down", NOW + timedelta(minutes=1))
    store.mark_delivered("d2", NOW)

    assert store.pending_deliveries(NOW) == []
    retried = store.pending_deliveries(NOW, due_only=False)
    assert [(d.id, d.attempts, d.last_error) for d in retried] == [("d1", 1, "down")]
    assert [d.id for d in store.pending_deliveries(NOW + timedelta(minutes=1))] == ["d1"]


def test_dead_deliveries_leave_the_queue_but_stay_visible(store: StoreBackend) -> None:
    store.save_poll(SourceState("s", "u"), [], [], [delivery("d1"), delivery("d2")], NOW)

    store.mark_dead("d1", "HTTP 400", NOW)

    assert [d.id for d in store.pending_deliveries(NOW, due_only=False)] == ["d2"]
    assert [(d.id, d.last_error) for d in store.dead_deliveries()] == [("d1", "HTTP 400")]


def test_a_delivery_comes_back_whole_with_its_articles_link(store: StoreBackend) -> None:
    queued = Delivery(
        "d1", "a1", "rule", "hook", "Title 'x'", "Body\n\u00e9", NOW - timedelta(minutes=1),
        next_attempt_at=NOW, body_format="html",
    )  # fmt: skip
    store.save_poll(SourceState("s", "u"), [article("a1", title="Art")], [], [queued], NOW)

    [got] = store.pending_deliveries(NOW)
    assert got == replace(queued, url="https://example.com/a1", article_title="Art")


def test_pending_deliveries_come_oldest_first(store: StoreBackend) -> None:
    queued = [replace(delivery(f"d{n}"), created_at=NOW - timedelta(minutes=n)) for n in (2, 5, 1)]
    store.save_poll(SourceState("s", "u"), [], [], queued, NOW)

    assert [d.id for d in store.pending_deliveries(NOW)] == ["d5", "d2", "d1"]


def test_a_delivery_queued_to_retry_later_is_not_due_before(store: StoreBackend) -> None:
    later = replace(delivery("d1"), next_attempt_at=NOW + timedelta(hours=1))
    store.save_poll(SourceState("s", "u"), [], [], [later], NOW)

    assert store.pending_deliveries(NOW) == []
    assert [d.id for d in store.pending_deliveries(NOW + timedelta(hours=1))] == ["d1"]


def test_messages_sent_count_per_target_since_a_time_folded_ones_not(
    store: StoreBackend,
) -> None:
    queued = [delivery(f"d{n}") for n in range(4)] + [delivery("o1", target="other")]
    store.save_poll(SourceState("s", "u"), [], [], queued, NOW)

    store.mark_delivered("d0", NOW - timedelta(hours=2))
    store.mark_delivered("d1", NOW)
    store.mark_folded(["d2", "d3"], "d1", NOW)
    store.mark_delivered("o1", NOW)

    assert store.messages_sent("hook", NOW - timedelta(hours=1)) == 1
    assert store.messages_sent("hook", NOW - timedelta(hours=3)) == 2
    assert store.messages_sent("other", NOW) == 1
    assert store.pending_deliveries(NOW, due_only=False) == []


def test_sent_bodies_are_pruned_but_pending_ones_kept(store: StoreBackend) -> None:
    store.save_poll(
        SourceState("s", "u"), [], [], [delivery("d1"), delivery("d2"), delivery("d3")], NOW
    )
    store.mark_delivered("d1", NOW - timedelta(days=40))
    store.mark_dead("d2", "HTTP 400", NOW - timedelta(days=40))

    assert store.prune_sent_bodies(NOW - timedelta(days=30)) == 2
    assert store.prune_sent_bodies(NOW - timedelta(days=30)) == 0
    assert [(d.id, d.body) for d in store.pending_deliveries(NOW)] == [("d3", "body")]
    assert [d.body for d in store.dead_deliveries()] == [""]
    assert store.messages_sent("hook", NOW - timedelta(days=41)) == 1


def test_dead_deliveries_come_newest_first_up_to_the_limit(store: StoreBackend) -> None:
    store.save_poll(SourceState("s", "u"), [], [], [delivery(f"d{n}") for n in range(3)], NOW)
    for n in range(3):
        store.mark_dead(f"d{n}", f"e{n}", NOW + timedelta(minutes=n))

    assert [d.id for d in store.dead_deliveries(limit=2)] == ["d2", "d1"]
    assert [d.attempts for d in store.dead_deliveries()] == [1, 1, 1]


def test_a_digest_queues_its_messages_and_moves_its_period_at_once(store: StoreBackend) -> None:
    assert store.digest_covered_until("rule") is None

    store.save_digest("rule", NOW, [delivery("g1")])
    store.save_digest("rule", NOW + timedelta(days=1), [delivery("g1"), delivery("g2")])

    assert store.digest_covered_until("rule") == NOW + timedelta(days=1)
    assert store.digest_covered_until("other") is None
    assert [d.id for d in store.pending_deliveries(NOW)] == ["g1", "g2"]


def test_matches_between_are_the_rules_in_the_period_with_their_articles(
    store: StoreBackend,
) -> None:
    items = [article(f"a{n}") for n in range(4)]
    matches = [
        match("a0", at=NOW - timedelta(hours=1)),
        match("a1", at=NOW),
        match("a2", at=NOW + timedelta(hours=1)),
        match("a3", rule="other", at=NOW),
    ]
    store.save_poll(SourceState("s", "u"), items, matches, [], NOW)

    got = store.matches_between("rule", NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    assert [(m.article_id, a.title) for m, a in got] == [("a1", "A"), ("a2", "A")]
    assert got[0][0] == replace(matches[1], story_id="a1")  # no story id: its own story
    assert store.matches_between("rule", NOW + timedelta(hours=1), NOW + timedelta(days=1)) == []


def test_a_follow_up_is_put_off_by_each_copy_and_queued_once(store: StoreBackend) -> None:
    state = SourceState("s", "https://example.com/f")
    later = FollowUp("rule", "story", "hook", NOW + timedelta(minutes=40))
    store.save_poll(state, [], [], [], NOW, follow_ups=[replace(later, due_at=NOW)])
    store.save_poll(state, [], [], [], NOW, follow_ups=[later])
    store.save_poll(state, [], [], [], NOW, follow_ups=[replace(later, due_at=NOW)])

    assert store.due_follow_ups(NOW + timedelta(minutes=39)) == []
    assert store.due_follow_ups(later.due_at) == [later]
    queued_at = later.due_at
    assert store.queue_follow_up(later, delivery("f1"), queued_at)
    assert not store.queue_follow_up(later, delivery("f2"), queued_at)
    store.save_poll(state, [], [], [], NOW, follow_ups=[later])

    assert store.due_follow_ups(NOW + timedelta(days=1)) == []
    assert [d.id for d in store.pending_deliveries(queued_at)] == ["f1"]


def test_a_follow_up_put_off_after_it_was_read_is_not_queued_early(store: StoreBackend) -> None:
    state = SourceState("s", "https://example.com/f")
    due = FollowUp("rule", "story", "hook", NOW)
    store.save_poll(state, [], [], [], NOW, follow_ups=[due])
    [read] = store.due_follow_ups(NOW)
    store.save_poll(
        state, [], [], [], NOW, follow_ups=[replace(due, due_at=NOW + timedelta(hours=1))]
    )

    assert not store.queue_follow_up(read, delivery("f1"), NOW)
    store.drop_follow_up(read)
    assert store.due_follow_ups(NOW + timedelta(days=1)) == []
    assert store.pending_deliveries(NOW, due_only=False) == []


def test_a_follow_up_settled_with_nothing_to_send_queues_nothing(store: StoreBackend) -> None:
    due = FollowUp("rule", "story", "hook", NOW)
    other = FollowUp("rule", "story", "other", NOW + timedelta(minutes=1))
    store.save_poll(SourceState("s", "u"), [], [], [], NOW, follow_ups=[due, other])

    assert store.due_follow_ups(NOW + timedelta(minutes=1)) == [due, other]
    assert store.queue_follow_up(due, None, NOW)
    assert store.due_follow_ups(NOW + timedelta(minutes=1)) == [other]
    assert store.pending_deliveries(NOW, due_only=False) == []


def test_deliveries_given_up_at_one_time_come_newest_queued_first(store: StoreBackend) -> None:
    store.save_poll(SourceState("s", "u"), [], [], [delivery(f"d{n}") for n in range(3)], NOW)
    for n in (2, 0, 1):
        store.mark_dead(f"d{n}", "HTTP 400", NOW)

    assert [d.id for d in store.dead_deliveries()] == ["d2", "d1", "d0"]

"""Store contract: what a polling process asks of the store that several processes may
share: poll claims, delivery claims, digests closed once, the story lock, heartbeats.
Single-process backends grant every claim; tests/test_cluster.py checks what PostgreSQL
does when several processes share one database."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

from monitor.ports import StoreBackend
from monitor.state import SourceState
from tests.store_contract.conftest import Backend
from tests.store_contract.helpers import NOW, article, delivery


def test_a_claimed_poll_is_saved_and_released_and_claimed_again(store: StoreBackend) -> None:
    assert store.claim_poll("s", "https://example.com/f", NOW)
    store.save_poll(SourceState("s", "https://example.com/f", etag="1"), [article("a1")], [],
                    [], NOW)  # fmt: skip
    store.save_state(SourceState("s", "https://example.com/f", etag="2"))
    store.release_poll("s")

    assert store.claim_poll("s", "https://example.com/f", NOW, due_only=False)
    store.release_poll("s")
    state = store.source_state("s")
    assert state is not None and state.etag == "2"
    assert store.known_ids(["a1"]) == {"a1"}


def test_a_claim_on_a_new_source_leaves_it_never_polled(store: StoreBackend) -> None:
    assert store.claim_poll("new", "https://example.com/new", NOW)
    store.release_poll("new")

    state = store.source_state("new")
    assert state is None or (state.never_fetched and state.next_fetch_at is None)


def test_claimed_deliveries_are_the_pending_ones(store: StoreBackend) -> None:
    later = replace(delivery("d3"), next_attempt_at=NOW + timedelta(hours=1))
    store.save_poll(SourceState("s", "u"), [article("a1")], [], [delivery("d1"),
                    delivery("d2"), later], NOW)  # fmt: skip
    store.mark_delivered("d2", NOW)

    assert store.claim_deliveries(NOW) == store.pending_deliveries(NOW)
    assert [d.id for d in store.claim_deliveries(NOW)] == ["d1"]
    assert [d.id for d in store.claim_deliveries(NOW, due_only=False)] == ["d1", "d3"]
    store.mark_failed("d1", "down", NOW + timedelta(minutes=5))
    assert store.claim_deliveries(NOW) == []


def test_a_digest_period_is_closed_once(store: StoreBackend) -> None:
    assert store.save_digest("rule", NOW, [], expected=None, check=True)
    assert not store.save_digest("rule", NOW, [delivery("x")], expected=None, check=True)

    end = NOW + timedelta(days=1)
    assert store.save_digest("rule", end, [delivery("g1")], expected=NOW, check=True)
    assert not store.save_digest("rule", end, [delivery("g2")], expected=NOW, check=True)
    assert store.digest_covered_until("rule") == end
    assert [d.id for d in store.pending_deliveries(end)] == ["g1"]


def test_the_story_lock_is_taken_and_left_from_different_threads(store: StoreBackend) -> None:
    lock = store.story_lock()
    entered = threading.Thread(target=lock.__enter__)
    entered.start()
    entered.join()
    left = threading.Thread(target=lock.__exit__, args=(None, None, None))
    left.start()
    left.join()

    with store.story_lock():  # free again
        store.save_poll(SourceState("s", "u"), [article("a1")], [], [], NOW)
    assert store.known_ids(["a1"]) == {"a1"}


def test_a_store_that_is_not_an_instance_lists_none_and_beats_harmlessly(
    backend: Backend,
) -> None:
    store = backend.open()  # as `monitor status` opens it
    store.heartbeat(NOW)
    store.save_state(SourceState("s", "u"))

    assert store.instances() == []
    assert store.polled_by() == {}

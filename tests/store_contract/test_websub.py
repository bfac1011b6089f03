"""Store contract: WebSub subscriptions (monitor.service.websub keeps them in the store so
any instance, after any restart, answers a hub's callbacks)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from monitor.ports import StoreBackend
from monitor.state import Subscription
from tests.store_contract.conftest import Backend
from tests.store_contract.helpers import NOW


def _subscription(id: str, source: str = "s", requested: int = 0) -> Subscription:
    return Subscription(
        id,
        source,
        "https://example.com/feed",
        "https://hub.example/",
        "s3cret-\u00e9",
        requested_at=NOW + timedelta(minutes=requested),
    )


def test_a_subscription_round_trips_every_field(store: StoreBackend) -> None:
    full = replace(
        _subscription("cb1"),
        state="active",
        verified_at=NOW + timedelta(seconds=1),
        expires_at=NOW + timedelta(days=10),
        renew_at=NOW + timedelta(days=8),
        error=None,
        pushed_at=NOW + timedelta(hours=1),
        pushes=3,
    )
    store.save_subscription(full)

    assert store.subscription("cb1") == full
    assert store.subscription("missing") is None


def test_saving_again_replaces_by_id(store: StoreBackend) -> None:
    store.save_subscription(_subscription("cb1"))
    denied = replace(_subscription("cb1"), state="denied", error="hub said no <b>")
    store.save_subscription(denied)

    assert store.subscriptions() == [denied]


def test_subscriptions_are_newest_request_first_and_filter_by_source(
    store: StoreBackend,
) -> None:
    old, new, other = (
        _subscription("b", requested=0),
        _subscription("a", requested=5),
        (_subscription("c", source="t", requested=9)),
    )
    unrequested = replace(_subscription("d"), requested_at=None)
    for subscription in (old, unrequested, other, new):
        store.save_subscription(subscription)

    assert [s.id for s in store.subscriptions()] == ["c", "a", "b", "d"]
    assert store.subscriptions("s") == [new, old, unrequested]
    assert store.subscriptions("nobody") == []


def test_a_deleted_subscription_is_gone(store: StoreBackend) -> None:
    store.save_subscription(_subscription("cb1"))
    store.save_subscription(_subscription("cb2"))
    store.delete_subscription("cb1")
    store.delete_subscription("never-there")

    assert [s.id for s in store.subscriptions()] == ["cb2"]


def test_the_upkeep_stays_with_its_holder_and_passes_on_when_it_runs_out(
    backend: Backend,
) -> None:
    first, second = backend.open(), backend.open()
    held = timedelta(minutes=5)

    assert first.take_upkeep("websub", held)
    assert first.take_upkeep("websub", held)  # the holder keeps it
    if backend.name == "sqlite":  # one process per database: no one to share it with
        assert second.take_upkeep("websub", held)
        return
    assert not second.take_upkeep("websub", held)
    assert second.take_upkeep("other-job", held)  # each job has its own holder

    assert first.take_upkeep("expiring", timedelta(0))
    assert second.take_upkeep("expiring", held)  # run out: taken over
    assert not first.take_upkeep("expiring", held)

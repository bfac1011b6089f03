"""WebSub, subscriber side, against a loopback hub (tests/websub_hub.py) playing the
websub.rocks subscriber tests: 100-104 discovery, 200-205 subscription, 300-302 delivery."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from monitor.service.websub import Subscriber, push_state
from monitor.sources.websub import (
    discover,
    fallback_interval,
    hub_allowed,
    link_header,
    renew_at,
    sign,
    signature_ok,
)
from tests.servers import FixtureServer, Page
from tests.websub_env import Env, atom, html_page, rss, subscriber_env
from tests.websub_hub import LoopbackHub

STORY = "Japan and North Korea hold summit on abduction issue"
ATOM = "application/atom+xml"


@pytest.fixture
def feeds() -> Iterator[FixtureServer]:
    server = FixtureServer().start()
    yield server
    server.stop()


def run(
    tmp: Path, feeds: FixtureServer, scenario: Callable[[Env], Awaitable[None]], **kw: object
) -> None:
    async def main() -> None:
        async with subscriber_env(tmp, feeds, **kw) as env:  # type: ignore[arg-type]
            await scenario(env)

    asyncio.run(main())


async def subscribed(env: Env, topic: str) -> None:
    """Poll the source; wait until the hub has verified the subscription."""
    await env.service.poll(env.source)
    await env.hub.wait(lambda h: any(s.topic == topic for s in h.subscriptions))


def active(env: Env) -> list[str]:
    return [s.topic for s in env.store.subscriptions("asia") if s.state == "active"]


# Discovery: websub.rocks 100-104 -------------------------------------------------------


def test_100_discovery_by_http_link_header(tmp_path: Path, feeds: FixtureServer) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/topic-100")
        feeds.pages["/feed"] = Page(
            atom(None, None),
            ATOM,
            headers={"Link": f'<{env.hub.url}>; rel="hub", <{topic}>; rel="self"'},
        )
        await subscribed(env, topic)
        form = env.hub.requests[0]
        public = env.config.web.public_url.rstrip("/")  # type: ignore[union-attr]
        assert form["hub.mode"] == "subscribe" and form["hub.topic"] == topic
        assert form["hub.callback"].startswith(public + "/websub/")
        assert len(urlsplit(form["hub.callback"]).path.rsplit("/", 1)[1]) >= 40  # unguessable
        assert len(form["hub.secret"]) >= 32 and int(form["hub.lease_seconds"]) > 0
        _, query, status, body = env.hub.verifications[0]
        assert (status, body) == (200, query["hub.challenge"])
        assert active(env) == [topic]

    run(tmp_path, feeds, scenario)


def test_101_discovery_by_html_link_tags(tmp_path: Path, feeds: FixtureServer) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/page-101")
        feeds.pages["/feed"] = Page(html_page(env.hub.url, topic), "text/html; charset=utf-8")
        await subscribed(env, topic)
        assert env.hub.requests[0]["hub.topic"] == topic and active(env) == [topic]

    run(tmp_path, feeds, scenario)


def test_102_discovery_in_an_atom_feed(tmp_path: Path, feeds: FixtureServer) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/atom-102")
        feeds.pages["/feed"] = Page(atom(env.hub.url, topic), ATOM)
        await subscribed(env, topic)
        assert env.hub.requests[0]["hub.topic"] == topic

    run(tmp_path, feeds, scenario)


def test_103_discovery_in_an_rss_feed(tmp_path: Path, feeds: FixtureServer) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/rss-103")
        feeds.pages["/feed"] = Page(rss(env.hub.url, topic), "application/rss+xml")
        await subscribed(env, topic)
        assert env.hub.requests[0]["hub.topic"] == topic

    run(tmp_path, feeds, scenario)


def test_104_link_headers_take_priority_over_the_document(
    tmp_path: Path, feeds: FixtureServer
) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/header-topic")
        body = atom("http://127.0.0.1:9/wrong-hub", feeds.url("/document-topic"))
        link = f'<{env.hub.url}>; rel="hub", <{topic}>; rel="self"'
        feeds.pages["/feed"] = Page(body, ATOM, headers={"Link": link})
        await subscribed(env, topic)
        assert [r["hub.topic"] for r in env.hub.requests] == [topic]

    run(tmp_path, feeds, scenario)


def test_discovery_parses_links_in_the_spec_order() -> None:
    base = "https://news.example/feed"
    assert link_header('<https://hub.example/>; rel="hub", </self>; rel=self') == [
        ("https://hub.example/", {"hub"}),
        ("/self", {"self"}),
    ]
    found = discover(base, {"link": '</h>; rel="hub"'}, atom("https://other/hub", "/s"))
    assert found is not None and found.hubs == ("https://news.example/h",)
    assert found.topic == "https://news.example/s"  # the header named no self: the document's
    # Entries' links are not the feed's; no hub: no push; non-http hubs are ignored.
    entry_only = b'<feed><entry><link rel="hub" href="https://h/"/></entry></feed>'
    assert discover(base, {}, entry_only) is None
    assert discover(base, {"link": '<javascript:x>; rel="hub"'}, b"") is None
    # No self anywhere: the URL fetched (after redirects) is the topic.
    found = discover(base, {}, b'<rss><channel><atom:link rel="hub" href="https://h/"/>')
    assert found is not None and found.topic == base


# Subscription: websub.rocks 200-205 ----------------------------------------------------


def test_200_topic_is_the_self_url_not_the_fetched_one(
    tmp_path: Path, feeds: FixtureServer
) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/canonical-200")
        feeds.pages["/feed"] = Page(atom(env.hub.url, topic), ATOM)
        await subscribed(env, topic)
        assert env.hub.requests[0]["hub.topic"] == topic != env.source.url

    run(tmp_path, feeds, scenario)


@pytest.mark.parametrize("code", [302, 301], ids=["201-temporary", "202-permanent"])
def test_201_202_topic_redirects(tmp_path: Path, feeds: FixtureServer, code: int) -> None:
    async def scenario(env: Env) -> None:
        final = feeds.url("/moved")
        feeds.pages["/feed"] = Page(b"", status=code, headers={"Location": final})
        feeds.pages["/moved"] = Page(atom(env.hub.url, None), ATOM)
        await subscribed(env, final)
        assert env.hub.requests[0]["hub.topic"] == final

    run(tmp_path, feeds, scenario)


@pytest.mark.parametrize("code", [307, 308], ids=["203-temporary", "204-permanent"])
def test_203_204_hub_redirects_are_followed_with_the_same_post(
    tmp_path: Path, feeds: FixtureServer, code: int
) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/topic")
        feeds.pages["/feed"] = Page(atom(env.hub.url, topic), ATOM)
        await subscribed(env, topic)
        first, second = env.hub.requests
        assert (first["path"], second["path"]) == ("/hub", "/hub-moved")
        assert {**first, "path": ""} == {**second, "path": ""}
        assert active(env) == [topic]

    run(tmp_path, feeds, scenario, hub=LoopbackHub(redirect=code))


def test_205_verification_with_another_topic_is_refused(
    tmp_path: Path, feeds: FixtureServer
) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/topic")
        feeds.pages["/feed"] = Page(atom(env.hub.url, topic), ATOM)
        await env.service.poll(env.source)
        await env.hub.wait(lambda h: bool(h.verifications))
        assert env.hub.verifications[0][2] == 404
        assert env.hub.subscriptions == []
        assert [s.state for s in env.store.subscriptions("asia")] == ["pending"]

    run(tmp_path, feeds, scenario, hub=LoopbackHub(verify_topic="http://127.0.0.1:9/other"))


def test_verification_needs_a_known_callback_and_the_asked_mode(
    tmp_path: Path, feeds: FixtureServer
) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/topic")
        feeds.pages["/feed"] = Page(atom(env.hub.url, topic), ATOM)
        await subscribed(env, topic)
        sub = env.store.subscriptions("asia")[0]
        ask = {"hub.topic": topic, "hub.challenge": "c"}
        assert env.subscriber.verify(sub.id, {**ask, "hub.mode": "unsubscribe"}) is None
        assert env.subscriber.verify("no-such-callback", {**ask, "hub.mode": "subscribe"}) is None
        assert env.subscriber.verify(sub.id, {**ask, "hub.mode": "subscribe"}) == "c"
        # After a restart (a new subscriber over the same store) the callback still answers.
        fresh = Subscriber(env.config, env.store, env.subscriber.hub, env.service)
        assert fresh.verify(sub.id, {**ask, "hub.mode": "subscribe"}) == "c"

    run(tmp_path, feeds, scenario)


def test_a_denial_is_recorded_and_shown(tmp_path: Path, feeds: FixtureServer) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/topic")
        feeds.pages["/feed"] = Page(atom(env.hub.url, topic), ATOM)
        await subscribed(env, topic)
        callback = env.hub.subscriptions[0].callback
        assert await env.hub.deny(callback, topic, "publisher said no") == 200
        subs = env.store.subscriptions("asia")
        assert subs[0].state == "denied"
        assert push_state(subs, env.clock()) == "denied (publisher said no)"

    run(tmp_path, feeds, scenario)


# Content distribution: websub.rocks 300-302 --------------------------------------------


@pytest.mark.parametrize("method", ["sha1", "sha256", "sha384", "sha512"])
def test_300_signed_content_alerts_once_even_when_polled_later(
    tmp_path: Path, feeds: FixtureServer, method: str
) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/topic")
        feeds.pages["/feed"] = Page(atom(env.hub.url, topic, [("old", "Weather")]), ATOM)
        await subscribed(env, topic)
        pushed = atom(env.hub.url, topic, [("s1", STORY), ("old", "Weather")])
        assert await env.hub.publish(topic, pushed, method=method) == [202]
        await wait_for(lambda: not env.subscriber.tasks)
        await env.service.deliver(due_only=False)
        assert env.notifier.sent == [("a", f"{STORY} [jnk]")]
        # The same item, polled later, is known: no second alert.
        feeds.pages["/feed"] = Page(pushed, ATOM)
        report = await env.service.poll(env.source)
        await env.service.deliver(due_only=False)
        assert report.ok and report.new == 0 and env.notifier.sent == [("a", f"{STORY} [jnk]")]
        assert env.store.subscriptions("asia")[0].pushes == 1

    run(tmp_path, feeds, scenario)


@pytest.mark.parametrize("signature", ["invalid", None], ids=["301-invalid", "302-missing"])
def test_301_302_content_without_a_valid_signature_is_ignored(
    tmp_path: Path, feeds: FixtureServer, signature: str | None
) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/topic")
        feeds.pages["/feed"] = Page(atom(env.hub.url, topic), ATOM)
        await subscribed(env, topic)
        pushed = atom(env.hub.url, topic, [("s1", STORY)])
        statuses = await env.hub.publish(topic, pushed, signature=signature)
        assert statuses == [202]  # acknowledged (a hub would retry an error forever)
        assert env.subscriber.rejected == 1
        scrape = await asyncio.to_thread(env.server.context.metrics.exposition)
        assert b'news_monitor_websub_pushes_total{result="rejected"} 1.0' in scrape
        assert not env.subscriber.tasks
        assert env.service.state_of(env.source).items_seen == 0
        await env.service.deliver(due_only=False)
        assert env.notifier.sent == []

    run(tmp_path, feeds, scenario)


def test_content_for_an_unknown_callback_is_gone(tmp_path: Path, feeds: FixtureServer) -> None:
    async def scenario(env: Env) -> None:
        status, sub = env.subscriber.check_delivery("nope", None, b"")
        assert (status, sub) == (410, None)

    run(tmp_path, feeds, scenario)


def test_signature_check() -> None:
    body = b"<feed/>"
    for method in ("sha1", "sha256", "sha384", "sha512"):
        assert signature_ok("k", sign("k", body, method), body)
        assert not signature_ok("other", sign("k", body, method), body)
    assert not signature_ok("k", sign("k", body), body + b" ")
    assert not signature_ok("k", "md5=abc", body)
    assert not signature_ok("k", None, body) and not signature_ok("k", "sha256=", body)


# Leases, unsubscribing, fallback polling ------------------------------------------------


def test_lease_is_renewed_at_80_percent_with_a_new_callback(
    tmp_path: Path, feeds: FixtureServer
) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/topic")
        feeds.pages["/feed"] = Page(atom(env.hub.url, topic), ATOM)
        await subscribed(env, topic)
        first = env.store.subscriptions("asia")[0]
        assert first.verified_at and first.renew_at == renew_at(
            first.verified_at, timedelta(hours=1)
        )
        env.clock.ahead = timedelta(minutes=47)  # before 80% of the 1 h lease: nothing
        await env.subscriber.maintain()
        assert len(env.hub.requests) == 1
        env.clock.ahead = timedelta(minutes=49)
        await env.subscriber.maintain()
        await env.hub.wait(lambda h: len(h.subscriptions) == 2)
        second = env.hub.requests[1]
        assert second["hub.callback"] != env.hub.requests[0]["hub.callback"]
        assert second["hub.secret"] != env.hub.requests[0]["hub.secret"]
        states = {s.id: s.state for s in env.store.subscriptions("asia")}
        assert states[first.id] == "retired" and sorted(states.values()) == ["active", "retired"]

    run(tmp_path, feeds, scenario)


@pytest.mark.parametrize("how", ["removed", "disabled", "websub-off"])
def test_unsubscribe_when_the_source_goes(tmp_path: Path, feeds: FixtureServer, how: str) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/topic")
        feeds.pages["/feed"] = Page(atom(env.hub.url, topic), ATOM)
        await subscribed(env, topic)
        if how == "removed":
            env.reconfigure(lambda c: replace(c, sources=()))
        else:
            off = env.source
            off = replace(off, enabled=False) if how == "disabled" else replace(off, websub=False)
            env.reconfigure(lambda c: replace(c, sources=(off,)))
        await env.subscriber.maintain()
        await env.hub.wait(lambda h: not h.subscriptions)
        assert env.hub.requests[-1]["hub.mode"] == "unsubscribe"
        assert env.store.subscriptions("asia") == []

    run(tmp_path, feeds, scenario)


def test_pushed_sources_poll_slower_and_resubscribe_on_missed_items(
    tmp_path: Path, feeds: FixtureServer
) -> None:
    async def scenario(env: Env) -> None:
        topic = feeds.url("/topic")
        feeds.pages["/feed"] = Page(atom(env.hub.url, topic), ATOM)
        env.clock.ahead = -timedelta(minutes=10)  # subscribed 10 minutes ago
        await subscribed(env, topic)
        await env.service.poll(env.source)
        state = env.service.state_of(env.source)
        assert state.next_fetch_at and state.last_fetch_at
        assert state.next_fetch_at - state.last_fetch_at >= timedelta(minutes=60)
        # A poll finds an item published after the subscription that the hub never pushed.
        later = datetime.now(UTC) - timedelta(minutes=4)
        env.clock.ahead = timedelta()
        feeds.pages["/feed"] = Page(atom(env.hub.url, topic, [("m1", "Missed")], later), ATOM)
        await env.service.poll(env.source)
        await env.hub.wait(lambda h: len(h.subscriptions) == 2)
        assert [r["hub.mode"] for r in env.hub.requests] == ["subscribe", "subscribe"]

    run(tmp_path, feeds, scenario)


def test_a_feed_cannot_point_the_subscriber_at_private_hubs() -> None:
    assert not hub_allowed("http://127.0.0.1:8080/hub", "https://news.example/feed")
    assert not hub_allowed("http://10.0.0.5/hub", "https://news.example/feed")
    assert not hub_allowed("http://localhost/hub", "https://news.example/feed")
    assert hub_allowed("https://pubsubhubbub.appspot.com/", "https://news.example/feed")
    assert hub_allowed("http://127.0.0.1:8080/hub", "http://127.0.0.1:9000/feed")


def test_fallback_interval_and_push_state() -> None:
    assert fallback_interval(timedelta(minutes=15)) == timedelta(hours=1)
    assert fallback_interval(timedelta(hours=10)) == timedelta(hours=24)
    assert fallback_interval(timedelta(hours=30)) == timedelta(hours=30)
    assert push_state([], datetime.now(UTC)) == "none"


async def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)

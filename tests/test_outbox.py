"""Rate limits, quiet hours and digests, delivered through Apprise to a real webhook receiver."""

from __future__ import annotations

import asyncio
import html
import json
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from monitor.adapters.fetch import HttpFetcher
from monitor.adapters.notify import AppriseNotifier
from monitor.adapters.store.sqlite import SqliteStore
from monitor.config.schema import Config, Digest, QuietHours, Rule, Settings, Source, Target
from monitor.daemon import build_service
from monitor.delivery.policy import plan_sends
from monitor.rules import compile_query
from monitor.service.poll import Service
from monitor.state import Delivery
from tests.servers import FixtureServer, Page, SmtpServer, WebhookReceiver

START = datetime(2026, 11, 28, 21, 0, tzinfo=UTC)


def wire(count: int, start: int = 0) -> bytes:
    items = "".join(
        f"<item><guid>s{n}</guid><title>Japan North Korea summit {n}</title>"
        f"<link>https://wire.example/{n}</link>"
        "<pubDate>Sat, 28 Nov 2026 20:00:00 GMT</pubDate></item>"
        for n in range(start, start + count)
    )
    return f'<rss version="2.0"><channel><title>w</title>{items}</channel></rss>'.encode()


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Bench:
    """A service wired to a real Apprise json:// target, with a clock the test moves."""

    def __init__(self, store: SqliteStore, server: FixtureServer, hook: WebhookReceiver,
                 target: Target, digest: Digest | None = None) -> None:  # fmt: skip
        settings = Settings(":memory:", (), timedelta(minutes=15), timedelta(days=1), "t/1")
        rule = Rule("jnk", compile_query("Japan AND North Korea"), ("hook",), digest=digest)
        source = Source("wire", server.url("/wire.rss"), timedelta(minutes=15))
        self.target = replace(target, url=f"json://127.0.0.1:{hook.port}/alerts")
        self.config = Config("c", settings, {"hook": self.target}, (source,), (rule,))
        self.rule = rule
        self.store = store
        self.clock = Clock()

    def service(self, fetcher: HttpFetcher) -> Service:
        urls = {name: target.url for name, target in self.config.targets.items()}
        notifier = AppriseNotifier(urls, min_gap=0)
        return build_service(self.config, fetcher, self.store, notifier, self.clock)

    def cycle(self, *, digest: bool = False) -> None:
        async def run() -> None:
            fetcher = HttpFetcher("t/1", host_gap=0)
            service = self.service(fetcher)
            try:
                await service.poll_all(ignore_interval=True)
                if digest:
                    service.outbox.queue_digest(self.rule)
                await service.deliver(due_only=False)
            finally:
                await fetcher.aclose()

        asyncio.run(run())


def test_beyond_max_per_hour_alerts_fold_into_the_last_allowed_message(
    store: SqliteStore, feed_server: FixtureServer, webhook: WebhookReceiver
) -> None:
    feed_server.pages["/wire.rss"] = Page(wire(6))
    bench = Bench(store, feed_server, webhook, Target("hook", "", max_per_hour=3))

    bench.cycle()
    feed_server.pages["/wire.rss"] = Page(wire(8))
    bench.clock.now += timedelta(minutes=30)
    bench.cycle()
    held_back = len(webhook.posts)
    bench.clock.now += timedelta(minutes=31)
    bench.cycle()

    titles = [post["title"] for post in webhook.posts]
    assert titles[:3] == [
        "Japan North Korea summit 0 [jnk]",
        "Japan North Korea summit 1 [jnk]",
        "Japan North Korea summit 2 [jnk] (and 3 more)",
    ]
    assert all(f"summit {n}" in webhook.posts[2]["message"] for n in (3, 4, 5))
    assert held_back == 3
    assert titles[3:] == ["Japan North Korea summit 6 [jnk]", "Japan North Korea summit 7 [jnk]"]
    assert store.pending_deliveries(bench.clock.now, due_only=False) == []


def test_alerts_in_quiet_hours_wait_and_leave_as_one_message(
    store: SqliteStore, feed_server: FixtureServer, webhook: WebhookReceiver
) -> None:
    feed_server.pages["/wire.rss"] = Page(wire(4))
    quiet = QuietHours(time(20, 30), time(7, 0), "UTC")
    bench = Bench(store, feed_server, webhook, Target("hook", "", quiet_hours=quiet))

    bench.cycle()
    during = list(webhook.posts)
    bench.clock.now = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    bench.cycle()

    assert during == []
    assert [post["title"] for post in webhook.posts] == [
        "Japan North Korea summit 0 [jnk] (and 3 more)"
    ]


def test_a_digest_lists_the_periods_matches_once_and_nothing_when_empty(
    store: SqliteStore, feed_server: FixtureServer, webhook: WebhookReceiver
) -> None:
    feed_server.pages["/wire.rss"] = Page(wire(3))
    bench = Bench(store, feed_server, webhook, Target("hook", ""), Digest("0 8 * * *"))
    asyncio.run(_start_digest(bench))

    bench.clock.now += timedelta(minutes=1)
    bench.cycle()
    immediate = len(webhook.posts)
    bench.clock.now += timedelta(hours=11)
    bench.cycle(digest=True)
    bench.clock.now += timedelta(days=1)
    bench.cycle(digest=True)

    assert immediate == 0
    assert [post["title"] for post in webhook.posts] == ["3 stories for jnk"]
    assert all(f"summit {n}" in webhook.posts[0]["message"] for n in range(3))


async def _start_digest(bench: Bench) -> None:
    fetcher = HttpFetcher("t/1")
    try:
        bench.service(fetcher).outbox.start_digest(bench.rule)
    finally:
        await fetcher.aclose()


def delivery(n: int, minute: int) -> Delivery:
    return Delivery(f"d{n}", "a", "r", "t", f"T{n}", "b", START + timedelta(minutes=minute))


def test_plan_sends_keeps_order_and_never_drops() -> None:
    queue = [delivery(n, n) for n in range(5)]
    quiet = QuietHours(time(21, 1), time(21, 3), "UTC")
    now = START + timedelta(minutes=10)

    assert [[d.id for d in g] for g in plan_sends(queue, now=now, allowance=None, quiet=None)] == [
        ["d0"],
        ["d1"],
        ["d2"],
        ["d3"],
        ["d4"],
    ]
    assert [[d.id for d in g] for g in plan_sends(queue, now=now, allowance=2, quiet=None)] == [
        ["d0"],
        ["d1", "d2", "d3", "d4"],
    ]
    assert [[d.id for d in g] for g in plan_sends(queue, now=now, allowance=None, quiet=quiet)] == [
        ["d0"],
        ["d1", "d2"],
        ["d3"],
        ["d4"],
    ]
    assert plan_sends(queue, now=START + timedelta(minutes=2), allowance=None, quiet=quiet) == []
    assert plan_sends(queue, now=now, allowance=0, quiet=None) == []


def feed_of(*names: str, seeds: Path) -> bytes:
    """An RSS feed carrying story fixtures (Article JSON) with their full text."""
    items = []
    for name in names:
        article = json.loads((seeds / "stories" / f"{name}.json").read_text(encoding="utf-8"))
        body = "".join(f"<p>{html.escape(b['text'])}</p>" for b in article["body"])
        items.append(
            f"<item><title>{html.escape(article['title'])}</title><link>{article['url']}</link>"
            f"<guid>{article['url']}</guid><pubDate>Sat, 28 Nov 2026 20:00:00 GMT</pubDate>"
            f"<description>{html.escape(article['lede'])}</description>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded></item>"
        )
    return (
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>t</title>{''.join(items)}</channel></rss>"
    ).encode()


def story_title(seeds: Path, name: str) -> str:
    article = json.loads((seeds / "stories" / f"{name}.json").read_text(encoding="utf-8"))
    return str(article["title"])


def two_sources(store: SqliteStore, server: FixtureServer, hook: WebhookReceiver,
                digest: Digest | None = None) -> Bench:  # fmt: skip
    bench = Bench(store, server, hook, Target("hook", ""), digest)
    sources = tuple(
        Source(name, server.url(f"/{name}.rss"), timedelta(minutes=15))
        for name in ("dispatch", "ledger")
    )
    bench.config = replace(bench.config, sources=sources)
    return bench


def test_copies_of_one_story_alert_once_and_leave_one_note_once_quiet(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer, webhook: WebhookReceiver
) -> None:
    """Was one note per outlet, sent at once: now one note per story, after 30 quiet minutes."""
    feed_server.pages["/dispatch.rss"] = Page(feed_of("seed", seeds=seeds))
    feed_server.pages["/ledger.rss"] = Page(feed_of("neg-missile", seeds=seeds))
    bench = two_sources(store, feed_server, webhook)
    bench.cycle()
    feed_server.pages["/ledger.rss"] = Page(
        feed_of("republished", "truncated", "syndicated", "neg-missile", "neg-follow-up",
                seeds=seeds)
    )  # fmt: skip
    bench.clock.now += timedelta(hours=5)

    bench.cycle()
    notes_at_once = notes(webhook)
    bench.clock.now += timedelta(minutes=30)
    bench.cycle()

    alerts = sorted(p["title"].split(" [")[0] for p in webhook.posts if " [jnk]" in p["title"])
    expected = [story_title(seeds, name) for name in ("seed", "neg-missile", "neg-follow-up")]
    assert alerts == sorted(expected)
    assert notes_at_once == []
    [note] = notes(webhook)
    assert note["title"] == f"Also reported by 1 outlet: {story_title(seeds, 'seed')}"
    assert note["message"].startswith("Also reported by 1 outlet: ledger\n")
    assert note["message"].count("- ledger — ") == 1 and "not a new alert" in note["message"]


def notes(webhook: WebhookReceiver, path: str = "") -> list[dict[str, Any]]:
    """The "also reported by" posts (to one target's path, if given)."""
    return [
        json.loads(r.body)
        for r in webhook.requests
        if r.method == "POST" and r.path.startswith(path)
        and json.loads(r.body)["title"].startswith("Also reported by")
    ]  # fmt: skip


BLURBS = ["missile", "summit", "abductees", "kim-yo-jong", "football", "fishing", "drills",
          "sanctions"]  # fmt: skip


def test_headlines_sharing_only_a_site_blurb_alert_as_different_stories(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer, webhook: WebhookReceiver
) -> None:
    """Eight stories whose only text is the site's blurb: five in one poll, then one and two
    more in later polls (the blurb is known from the stored items)."""
    names = [f"blurb-{name}" for name in BLURBS]
    bench = Bench(store, feed_server, webhook, Target("hook", ""))
    for count in (5, 6, 8):
        feed_server.pages["/wire.rss"] = Page(feed_of(*names[:count], seeds=seeds))
        bench.cycle()
        bench.clock.now += timedelta(minutes=15)
    bench.clock.now += timedelta(hours=1)
    bench.cycle()

    titles = sorted(post["title"] for post in webhook.posts)
    assert titles == sorted(f"{story_title(seeds, name)} [jnk]" for name in names)
    assert notes(webhook) == []


WIRE_COPIES = ["seed", "syndicated", "republished", "truncated", "paragraph-added", "edited"]
OUTLETS = ["dispatch", "ledger", "herald", "courier", "gazette", "late"]


def six_outlets(store: SqliteStore, server: FixtureServer, hook: WebhookReceiver,
                follow_up: bool = True) -> Bench:  # fmt: skip
    """Six sources and two targets (the receiver's /alerts and /desk paths)."""
    bench = Bench(store, server, hook, Target("hook", ""))
    desk = Target("desk", f"json://127.0.0.1:{hook.port}/desk")
    bench.rule = replace(bench.rule, notify=("hook", "desk"), follow_up=follow_up)
    sources = tuple(
        Source(name, server.url(f"/{name}.rss"), timedelta(minutes=15)) for name in OUTLETS
    )
    bench.config = replace(
        bench.config, targets={"hook": bench.target, "desk": desk}, sources=sources,
        rules=(bench.rule,),
    )  # fmt: skip
    return bench


def carry(server: FixtureServer, seeds: Path, count: int) -> None:
    """The first `count` outlets each carry their copy of the wire story, the rest nothing."""
    for n, (outlet, copy) in enumerate(zip(OUTLETS, WIRE_COPIES, strict=True)):
        server.pages[f"/{outlet}.rss"] = Page(feed_of(*[copy][: int(n < count)], seeds=seeds))


def test_five_outlets_with_one_wire_story_give_one_alert_and_one_follow_up_per_target(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer, webhook: WebhookReceiver
) -> None:
    """Copies at minutes 10 and 25 put the follow-up off to minute 55; one more copy after
    it was sent sends nothing."""
    bench = six_outlets(store, feed_server, webhook)
    sent: list[int] = []
    for count, wait in ((1, 10), (3, 15), (5, 29), (5, 1), (5, 60), (6, 60), (6, 0)):
        carry(feed_server, seeds, count)
        bench.cycle()
        sent.append(len(notes(webhook)))
        bench.clock.now += timedelta(minutes=wait)

    alerts = [post for post in webhook.posts if post["title"].endswith(" [jnk]")]
    assert [post["title"] for post in alerts] == [f"{story_title(seeds, 'seed')} [jnk]"] * 2
    assert sent == [0, 0, 0, 0, 2, 2, 2]
    for path in ("/alerts", "/desk"):
        [note] = notes(webhook, path)
        assert note["title"] == f"Also reported by 4 outlets: {story_title(seeds, 'seed')}"
        # Outlets in the order they were matched; copies from one cycle's concurrent polls
        # (ledger and herald, then courier and gazette) may come in either order.
        heading = note["message"].split("\n")[0].removeprefix("Also reported by 4 outlets: ")
        named = heading.split(", ")
        assert sorted(named[:2]) == ["herald", "ledger"]
        assert sorted(named[2:]) == ["courier", "gazette"]
        assert note["message"].count("\n- ") == 4
        for outlet, copy in zip(OUTLETS[1:5], WIRE_COPIES[1:5], strict=True):
            assert note["message"].count(f"- {outlet} — {story_title(seeds, copy)}: ") == 1
    assert len(webhook.posts) == 4


def test_a_rule_with_follow_up_false_sends_no_follow_up(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer, webhook: WebhookReceiver
) -> None:
    bench = six_outlets(store, feed_server, webhook, follow_up=False)
    carry(feed_server, seeds, 5)
    bench.cycle()
    bench.clock.now += timedelta(hours=1)
    bench.cycle()

    titles = [post["title"] for post in webhook.posts]
    assert len(titles) == 2 and titles[0] == titles[1]  # one alert (whichever copy came first)
    assert notes(webhook) == []


def test_a_digest_lists_each_story_once_with_every_source(
    seeds: Path, store: SqliteStore, feed_server: FixtureServer, webhook: WebhookReceiver
) -> None:
    feed_server.pages["/dispatch.rss"] = Page(feed_of("seed", seeds=seeds))
    feed_server.pages["/ledger.rss"] = Page(feed_of("republished", "neg-missile", seeds=seeds))
    bench = two_sources(store, feed_server, webhook, Digest("0 8 * * *"))
    asyncio.run(_start_digest(bench))
    bench.clock.now += timedelta(minutes=1)

    bench.cycle(digest=True)

    assert [post["title"] for post in webhook.posts] == ["2 stories for jnk"]
    lines = webhook.posts[0]["message"].splitlines()
    assert (
        sum(line.strip().startswith(("dispatch, ledger", "ledger, dispatch")) for line in lines)
        == 1
    )
    assert sum(line.strip().startswith("ledger ·") for line in lines) == 1


def test_a_digest_reaches_each_target_in_its_own_markup(
    store: SqliteStore, feed_server: FixtureServer, webhook: WebhookReceiver, smtp: SmtpServer
) -> None:
    """Digests were queued as markdown whatever the target: a json:// (text) target got
    `**Japan &amp; North Korea \\*summit\\* \\[live\\]**`, an e-mail the same markdown."""
    items = "".join(
        f"<item><guid>s{n}</guid><title>Japan &amp; North Korea *summit* [live] {n}</title>"
        f"<link>https://wire.example/{n}</link>"
        "<pubDate>Sat, 28 Nov 2026 20:00:00 GMT</pubDate></item>"
        for n in range(2)
    )
    feed_server.pages["/wire.rss"] = Page(
        f'<rss version="2.0"><channel><title>w</title>{items}</channel></rss>'.encode()
    )
    bench = Bench(store, feed_server, webhook, Target("hook", ""), Digest("0 8 * * *"))
    desk = Target("desk", f"mailto://127.0.0.1:{smtp.port}?from=m@example.com&to=d@example.com")
    bench.rule = replace(bench.rule, notify=("hook", "desk"))
    targets = {**bench.config.targets, "desk": desk}
    bench.config = replace(bench.config, targets=targets, rules=(bench.rule,))
    asyncio.run(_start_digest(bench))
    bench.clock.now += timedelta(minutes=1)

    bench.cycle(digest=True)

    [post] = webhook.posts
    assert post["title"] == "2 stories for jnk"
    lines = post["message"].splitlines()
    assert "- Japan & North Korea *summit* [live] 0" in lines
    assert "  https://wire.example/1" in lines
    [mail] = smtp.messages
    html_part = next(p for p in mail.walk() if p.get_content_type() == "text/html")
    sent = html_part.get_content()
    assert "<li><strong>Japan &amp; North Korea *summit* [live] 0</strong>" in sent
    assert '<a href="https://wire.example/1">' in sent
    assert "**" not in sent and "&amp;amp;" not in sent
    assert store.pending_deliveries(bench.clock.now, due_only=False) == []

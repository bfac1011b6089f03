"""`monitor run` against a fixture feed over HTTP, a real SMTP server and a webhook receiver."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from tests.servers import (
    FixtureServer,
    Page,
    Request,
    SmtpServer,
    WebhookReceiver,
    free_port,
    text_of,
)
from tests.test_outbox import BLURBS, feed_of, story_title

SEED_TITLE = "Japan, North Korea held meeting in May – S Korean newspaper"
SEED_URL = "https://asiadispatch.example/world/asia/japan/japan-north-korea-held-meeting-in-may/"
NEAR_MISSES = ("Japan and South Korea leaders", "Tokyo protests North Korean missile launch")
RULES = """
[[rules]]
name = "japan-north-korea"
query = "Japan AND North Korea AND summit|abduction"
notify = ["email", "hook"]
"""


def write_config(
    tmp: Path, feed_url: str, smtp_port: int, hook_port: int, backfill: str = "100000d"
) -> Path:
    (tmp / "rules.toml").write_text(RULES, encoding="utf-8")
    config = tmp / "config.toml"
    config.write_text(
        f"""
[monitor]
database = "state/monitor.db"
rules = ["rules.toml"]
backfill = "{backfill}"

[targets]
email = "mailto://127.0.0.1:{smtp_port}?from=monitor@example.com&to=desk@example.com"
hook = "json://127.0.0.1:{hook_port}/alerts"

[[sources]]
name = "asia-dispatch"
url = "{feed_url}"
""",
        encoding="utf-8",
    )
    return config


def run_once(config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def start_daemon(config: Path) -> subprocess.Popen[str]:
    """`monitor run` in the background; its stderr (the log) is kept for assertions."""
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def serve_feed(server: FixtureServer, seeds: Path) -> str:
    body = (seeds / "feeds" / "asia.rss").read_bytes()
    server.pages["/asia.rss"] = Page(body, etag='W/"asia-1"')
    return server.url("/asia.rss")


def test_one_email_and_one_post_for_the_matching_item_and_nothing_more(
    tmp_path: Path,
    seeds: Path,
    feed_server: FixtureServer,
    smtp: SmtpServer,
    webhook: WebhookReceiver,
) -> None:
    config = write_config(tmp_path, serve_feed(feed_server, seeds), smtp.port, webhook.port)

    first = run_once(config)

    assert first.returncode == 0, first.stderr
    assert len(smtp.messages) == 1
    assert len(webhook.posts) == 1
    parts = {part.get_content_type() for part in smtp.messages[0].walk()}
    assert {"text/html", "text/plain"} <= parts
    email = text_of(smtp.messages[0])
    post = webhook.posts[0]
    for text in (email, post["title"] + post["message"]):
        assert SEED_TITLE in text
        assert (
            "https://asiadispatch.example/world/asia/japan/japan-north-korea-held-meeting-in-may/"
            in text
        )
        assert "japan-north-korea" in text
        assert "Japan (title" in text and "abduction (body)" in text
        assert not any(miss in text for miss in NEAR_MISSES)

    second = run_once(config)

    assert second.returncode == 0, second.stderr
    assert len(smtp.messages) == 1
    assert len(webhook.posts) == 1
    conditional = feed_server.gets("/asia.rss")[-1]
    assert conditional.headers.get("if-none-match") == 'W/"asia-1"'


def test_a_target_that_was_down_gets_exactly_one_delivery_on_the_next_run(
    tmp_path: Path, seeds: Path, feed_server: FixtureServer, smtp: SmtpServer
) -> None:
    hook_port = free_port()
    config = write_config(tmp_path, serve_feed(feed_server, seeds), smtp.port, hook_port)

    during_outage = run_once(config)

    assert during_outage.returncode == 1
    assert len(smtp.messages) == 1
    assert "hook" in during_outage.stderr
    receiver = WebhookReceiver(hook_port).start()
    try:
        after_outage = run_once(config)
        again = run_once(config)
    finally:
        receiver.stop()

    assert after_outage.returncode == 0, after_outage.stderr
    assert again.returncode == 0, again.stderr
    assert len(receiver.posts) == 1
    assert SEED_TITLE in receiver.posts[0]["title"]
    assert len(smtp.messages) == 1


def test_first_fetch_records_old_items_silently_and_alerts_later_ones(
    tmp_path: Path,
    seeds: Path,
    feed_server: FixtureServer,
    smtp: SmtpServer,
    webhook: WebhookReceiver,
) -> None:
    feed = (seeds / "feeds" / "asia.rss").read_text(encoding="utf-8")
    feed_server.pages["/asia.rss"] = Page(feed.encode())
    config = write_config(
        tmp_path, feed_server.url("/asia.rss"), smtp.port, webhook.port, backfill="24h"
    )

    backfilled = run_once(config)

    assert backfilled.returncode == 0, backfilled.stderr
    assert smtp.messages == []
    assert webhook.posts == []

    fresh = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    link = "https://asiadispatch.example/world/asia/japan/summit-on-abductions/"
    item = (
        "<item><title>Japan and North Korea to hold summit on abduction issue</title>"
        f"<link>{link}</link><guid>{link}</guid><pubDate>{fresh}</pubDate>"
        "<description>Japan and North Korea agreed to a summit on abductions.</description>"
        "</item>"
    )
    new_item = feed.replace("<item>", item + "<item>", 1)
    feed_server.pages["/asia.rss"] = Page(new_item.encode())

    later = run_once(config)

    assert later.returncode == 0, later.stderr
    assert len(smtp.messages) == 1
    assert [p["title"] for p in webhook.posts] == [
        "Japan and North Korea to hold summit on abduction issue [japan-north-korea]"
    ]


def test_the_daemon_polls_delivers_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
    seeds: Path,
    feed_server: FixtureServer,
    smtp: SmtpServer,
    webhook: WebhookReceiver,
) -> None:
    config = write_config(tmp_path, serve_feed(feed_server, seeds), smtp.port, webhook.port)
    daemon = start_daemon(config)
    try:
        delivered = webhook.wait_for(lambda requests: len(requests) >= 1, timeout=60)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
    finally:
        daemon.kill()

    assert delivered
    assert daemon.returncode == 0, stderr
    assert "stopping" in stderr
    assert "Traceback" not in stderr
    assert len(webhook.posts) == 1


class SlowWebhook(WebhookReceiver):
    """Answers each post after a tenth of a second, so a kill lands mid-delivery."""

    def handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        threading.Event().wait(0.1)
        return super().handle(request)


def many_matching_items(count: int) -> bytes:
    now = format_datetime(datetime.now(UTC), usegmt=True)
    items = "".join(
        f"<item><guid>story-{n}</guid><title>Japan and North Korea summit, part {n}</title>"
        f"<pubDate>{now}</pubDate><description>Talks on the abduction issue.</description>"
        "</item>"
        for n in range(count)
    )
    return f'<rss version="2.0"><channel><title>wire</title>{items}</channel></rss>'.encode()


def test_kill_9_mid_delivery_loses_nothing_and_repeats_at_most_one(
    tmp_path: Path, feed_server: FixtureServer, smtp: SmtpServer
) -> None:
    feed_server.pages["/wire.rss"] = Page(many_matching_items(15))
    hook = SlowWebhook().start()
    config = write_config(tmp_path, feed_server.url("/wire.rss"), smtp.port, hook.port)
    (tmp_path / "rules.toml").write_text(RULES.replace('["email", "hook"]', '["hook"]'))
    daemon = start_daemon(config)
    try:
        started = hook.wait_for(lambda requests: len(requests) >= 4, timeout=60)
        daemon.kill()
        daemon.wait(timeout=30)
        delivered_before_kill = len(hook.posts)
        rest = run_once(config)
        titles = [post["title"] for post in hook.posts]
    finally:
        daemon.kill()
        hook.stop()

    assert started and 4 <= delivered_before_kill < 15
    assert rest.returncode == 0, rest.stderr
    assert {t.split(" [")[0] for t in titles} == {
        f"Japan and North Korea summit, part {n}" for n in range(15)
    }
    assert len(titles) <= 16


def test_a_digest_missed_while_stopped_is_sent_by_the_next_run(
    tmp_path: Path, feed_server: FixtureServer, smtp: SmtpServer, webhook: WebhookReceiver
) -> None:
    feed_server.pages["/wire.rss"] = Page(many_matching_items(3))
    config = write_config(tmp_path, feed_server.url("/wire.rss"), smtp.port, webhook.port)
    digest_rule = RULES.replace('["email", "hook"]', '["hook"]')
    digest_rule += 'delivery = "digest"\nschedule = "0 8 * * *"\ntimezone = "Asia/Tokyo"\n'
    (tmp_path / "rules.toml").write_text(digest_rule, encoding="utf-8")

    collected = run_once(config)
    with sqlite3.connect(tmp_path / "state" / "monitor.db") as db:
        db.execute("UPDATE digests SET covered_until = '2020-01-01T00:00:00+00:00'")
        db.execute("UPDATE matches SET matched_at = '2020-01-01T01:00:00+00:00'")
    caught_up = run_once(config)
    again = run_once(config)

    assert collected.returncode == caught_up.returncode == again.returncode == 0
    assert [post["title"] for post in webhook.posts] == ["3 stories for japan-north-korea"]


def test_run_once_keeps_blurb_stories_apart_and_sends_one_follow_up_once_quiet(
    tmp_path: Path, seeds: Path, feed_server: FixtureServer, smtp: SmtpServer,
    webhook: WebhookReceiver,
) -> None:  # fmt: skip
    """Eight headlines whose only text is their site's blurb are eight alerts; a copy of
    the seed story from another outlet sends nothing until the story has been quiet for
    30 minutes (moved into the past in the database), then one note, and never another."""
    blurbs = [f"blurb-{name}" for name in BLURBS]
    feed_server.pages["/ledger.rss"] = Page(feed_of(*blurbs, seeds=seeds))
    feed_server.pages["/dispatch.rss"] = Page(feed_of("seed", seeds=seeds))
    feed_server.pages["/wire.rss"] = Page(feed_of(seeds=seeds))
    config = write_config(tmp_path, feed_server.url("/dispatch.rss"), smtp.port, webhook.port)
    with config.open("a", encoding="utf-8") as out:
        for name in ("ledger", "wire"):
            out.write(
                f'\n[[sources]]\nname = "{name}"\nurl = "{feed_server.url(f"/{name}.rss")}"\n'
            )
    rules = RULES.replace('["email", "hook"]', '["hook"]').replace(" AND summit|abduction", "")
    (tmp_path / "rules.toml").write_text(rules, encoding="utf-8")

    first = run_once(config)
    feed_server.pages["/wire.rss"] = Page(feed_of("syndicated", seeds=seeds))
    copied = run_once(config)
    titles = [post["title"] for post in webhook.posts]
    expected = {f"{story_title(seeds, name)} [japan-north-korea]" for name in [*blurbs, "seed"]}
    assert len(titles) == 9 and set(titles) == expected, titles
    with sqlite3.connect(tmp_path / "state" / "monitor.db") as db:
        db.execute("UPDATE follow_ups SET due_at = '2020-01-01T00:00:00+00:00'")
    quiet = run_once(config)
    feed_server.pages["/ledger.rss"] = Page(feed_of(*blurbs, "republished", seeds=seeds))
    again = run_once(config)

    assert [r.returncode for r in (first, copied, quiet, again)] == [0, 0, 0, 0], again.stderr
    titles = [post["title"] for post in webhook.posts]
    assert titles[9:] == [f"Also reported by 1 outlet: {SEED_TITLE}"]
    assert webhook.posts[9]["message"].startswith("Also reported by 1 outlet: wire\n")

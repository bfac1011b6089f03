"""`monitor store copy FROM TO`: SQLite to PostgreSQL and back, after which a poll of the
same feed alerts nothing old; a non-empty destination is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from monitor.adapters.store.select import open_store
from monitor.state import FollowUp, SourceState
from tests.servers import FixtureServer, SmtpServer, WebhookReceiver
from tests.store_contract.helpers import NOW, article, delivery, match
from tests.test_end_to_end import run_once, serve_feed, write_config


def with_database(config: Path, database: str) -> Path:
    text = config.read_text(encoding="utf-8").replace('"state/monitor.db"', f'"{database}"')
    moved = config.with_name(f"config-{abs(hash(database))}.toml")
    moved.write_text(text, encoding="utf-8")
    return moved


def store_copy(source: str, destination: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "store", "copy", source, destination],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_copy_to_postgresql_and_back_alerts_nothing_old(
    tmp_path: Path,
    seeds: Path,
    postgres_url: str,
    feed_server: FixtureServer,
    smtp: SmtpServer,
    webhook: WebhookReceiver,
) -> None:
    config = write_config(tmp_path, serve_feed(feed_server, seeds), smtp.port, webhook.port)
    assert run_once(config).returncode == 0
    assert len(webhook.posts) == 1
    feed_server.pages["/asia.rss"].etag = None  # every poll reads the whole feed again

    there = store_copy(str(tmp_path / "state" / "monitor.db"), postgres_url)
    assert there.returncode == 0, there.stderr
    on_postgres = run_once(with_database(config, postgres_url))
    back = store_copy(postgres_url, str(tmp_path / "back.db"))
    assert back.returncode == 0, back.stderr
    on_sqlite = run_once(with_database(config, str(tmp_path / "back.db")))

    assert (on_postgres.returncode, on_sqlite.returncode) == (0, 0), on_postgres.stderr
    assert len(webhook.posts) == 1 and len(smtp.messages) == 1
    assert "0 matches" in on_postgres.stderr and "0 matches" in on_sqlite.stderr
    assert "copied 1 sources" in there.stdout


def test_every_row_survives_the_round_trip(tmp_path: Path, postgres_url: str) -> None:
    first = open_store(str(tmp_path / "a.db"))
    state = SourceState("s", "u", etag="e", last_ok_at=NOW, failure_reported=True)
    first.save_poll(
        state, [article("a1"), article("a2")],
        [match("a1", story_id="a1", fingerprint=b"\x00\x01", explanation="why"),
         match("a2", story_id="a1")],
        [delivery("d1"), delivery("d2")], NOW,
        settled_links=[("l1", NOW)], follow_ups=[FollowUp("rule", "a1", "hook", NOW)],
    )  # fmt: skip
    first.mark_dead("d2", "HTTP 400", NOW)
    first.save_digest("rule", NOW, [])
    expected = (
        first.source_states(), first.recent_matches(), first.pending_deliveries(NOW),
        first.dead_deliveries(), first.due_follow_ups(NOW), first.digest_covered_until("rule"),
        first.story_copies("rule", "a1"), list(first.articles_since(NOW)),
    )  # fmt: skip
    first.close()

    for source, destination in ((str(tmp_path / "a.db"), postgres_url),
                                (postgres_url, str(tmp_path / "b.db"))):  # fmt: skip
        assert store_copy(source, destination).returncode == 0
        copied = open_store(destination)
        got = (
            copied.source_states(), copied.recent_matches(), copied.pending_deliveries(NOW),
            copied.dead_deliveries(), copied.due_follow_ups(NOW),
            copied.digest_covered_until("rule"), copied.story_copies("rule", "a1"),
            list(copied.articles_since(NOW)),
        )  # fmt: skip
        copied.close()
        assert got == expected


def test_a_copy_into_a_database_in_use_is_refused_and_changes_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    source = open_store(str(tmp_path / "a.db"))
    source.save_state(SourceState("s", "u"))
    source.close()
    target = open_store(postgres_url)
    target.save_state(SourceState("other", "u"))
    target.close()

    refused = store_copy(str(tmp_path / "a.db"), postgres_url)

    assert refused.returncode == 2 and "not empty" in refused.stderr
    check = open_store(postgres_url)
    assert [s.name for s in check.source_states()] == ["other"]
    check.close()

"""Several instances on one PostgreSQL database, in one test process: poll leases with
expiry and fencing, delivery claims, the story lock, instances and their heartbeats,
migrations run once. tests/test_cluster_processes.py does it with real `monitor run`s."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from monitor.adapters.fetch import HttpFetcher
from monitor.adapters.store.postgres import SCHEMA_VERSION, PostgresStore
from monitor.errors import LeaseLost, StoreError
from monitor.state import Delivery, SourceState
from tests.servers import FixtureServer, Page, Request

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def sql(url: str, statement: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as db:
        cursor = db.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def delivery(id: str) -> Delivery:
    return Delivery(id, "a1", "rule", "hook", "title", "body", NOW)


def test_a_due_source_is_claimed_by_one_instance(
    postgres_pair: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = postgres_pair

    assert first.claim_poll("s", "https://e.example/f", NOW)
    assert not second.claim_poll("s", "https://e.example/f", NOW)
    assert not second.claim_poll("s", "https://e.example/f", NOW, due_only=False)

    first.save_state(
        SourceState("s", "https://e.example/f", next_fetch_at=NOW + timedelta(minutes=15))
    )
    first.release_poll("s")
    assert not second.claim_poll("s", "https://e.example/f", NOW)  # polled since: not due
    assert second.claim_poll("s", "https://e.example/f", NOW, due_only=False)  # run --once
    assert second.polled_by() == {"s": first.instance_name}


def test_an_expired_lease_is_taken_over_and_the_old_holders_write_refused(
    postgres_pair: tuple[PostgresStore, PostgresStore], postgres_url: str
) -> None:
    first, second = postgres_pair
    assert first.claim_poll("s", "u", NOW)
    sql(postgres_url, "UPDATE sources SET lease_until = clock_timestamp() - interval '1 second'")

    assert second.claim_poll("s", "u", NOW)
    second.save_state(SourceState("s", "u", etag="newer"))
    with pytest.raises(LeaseLost):
        first.save_poll(SourceState("s", "u", etag="stale"), [], [], [delivery("d1")], NOW)
    second.release_poll("s")

    state = second.source_state("s")
    assert state is not None and state.etag == "newer"
    assert second.pending_deliveries(NOW) == []
    assert second.polled_by() == {"s": second.instance_name}


def test_a_heartbeat_renews_leases_and_a_clean_stop_gives_them_back(
    postgres_pair: tuple[PostgresStore, PostgresStore], postgres_url: str
) -> None:
    first, second = postgres_pair
    assert first.claim_poll("s", "u", NOW)
    sql(postgres_url, "UPDATE sources SET lease_until = clock_timestamp() + interval '1 second'")

    first.heartbeat(NOW)
    [(until,)] = sql(postgres_url, "SELECT lease_until - clock_timestamp() FROM sources")
    assert isinstance(until, timedelta) and until > timedelta(seconds=30)
    assert {i.name: i.leases for i in second.instances()}[first.instance_name] == 1

    first.close()
    assert second.claim_poll("s", "u", NOW)
    stopped = {i.name: i.stopped_at for i in second.instances()}
    assert stopped[first.instance_name] is not None and stopped[second.instance_name] is None


def test_instances_are_listed_with_host_pid_and_heartbeat(
    postgres_pair: tuple[PostgresStore, PostgresStore],
) -> None:
    import os
    import socket

    first, second = postgres_pair
    listed = {i.name: i for i in first.instances()}

    assert set(listed) == {first.instance_name, second.instance_name}
    for info in listed.values():
        assert (info.host, info.pid) == (socket.gethostname(), os.getpid())
        assert info.heartbeat_at.tzinfo is not None and info.leases == 0


def test_each_delivery_is_claimed_by_one_instance_until_its_claim_expires(
    postgres_pair: tuple[PostgresStore, PostgresStore], postgres_url: str
) -> None:
    first, second = postgres_pair
    first.save_poll(SourceState("s", "u"), [], [], [delivery("d1"), delivery("d2")], NOW)

    assert [d.id for d in first.claim_deliveries(NOW)] == ["d1", "d2"]
    assert second.claim_deliveries(NOW) == []
    first.mark_delivered("d1", NOW)
    sql(postgres_url, "UPDATE outbox SET claim_until = clock_timestamp() - interval '1 second'")

    assert [d.id for d in second.claim_deliveries(NOW)] == ["d2"]  # the dead one's, taken over
    assert first.claim_deliveries(NOW) == []


def test_the_story_lock_holds_off_another_instance(
    postgres_pair: tuple[PostgresStore, PostgresStore], postgres_url: str
) -> None:
    first, second = postgres_pair
    entered = threading.Event()

    def group_on_second() -> None:
        with second.story_lock():
            entered.set()

    with first.story_lock():
        waiter = threading.Thread(target=group_on_second)
        waiter.start()
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while not sql(
            postgres_url,
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        ):
            assert datetime.now(UTC) < deadline, "the second instance never waited"
        assert not entered.is_set()
    waiter.join(timeout=20)
    assert entered.is_set()


def test_a_digest_period_is_closed_by_one_of_two_instances_closing_it_at_once(
    postgres_pair: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = postgres_pair
    first.save_digest("rule", NOW, [], expected=None, check=True)
    end = NOW + timedelta(days=1)
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def close(store: PostgresStore, id: str) -> None:
        barrier.wait()
        results.append(store.save_digest("rule", end, [delivery(id)], expected=NOW, check=True))

    threads = [
        threading.Thread(target=close, args=(s, i)) for s, i in ((first, "g1"), (second, "g2"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False, True]
    assert len(first.pending_deliveries(end)) == 1


MIGRATE = "from monitor.adapters.store.postgres import PostgresStore; PostgresStore({!r}).close()"


def test_instances_starting_at_once_migrate_once(postgres_url: str) -> None:
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE.format(postgres_url)], stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=60)[1] for p in starts]

    assert [p.returncode for p in starts] == [0, 0, 0, 0], errors
    rows = sql(
        postgres_url,
        "SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version",
    )
    assert rows == [(v, 1) for v in range(1, SCHEMA_VERSION + 1)]


def test_a_database_from_a_newer_version_is_refused(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    sql(postgres_url, "INSERT INTO schema_migrations (version, applied_by) VALUES (%s, 'x')",
        SCHEMA_VERSION + 1)  # fmt: skip

    with pytest.raises(StoreError, match="newer"):
        PostgresStore(postgres_url)


def test_an_unreachable_server_is_one_clear_error_without_the_password() -> None:
    from tests.servers import free_port

    url = f"postgresql://monitor:s3cret@127.0.0.1:{free_port()}/monitor"
    with pytest.raises(StoreError) as caught:
        PostgresStore(url, pool_timeout=2)

    assert "s3cret" not in str(caught.value)
    assert "postgresql://monitor@127.0.0.1:" in str(caught.value)


class CountingServer(FixtureServer):
    """Answers after `delay`, noting the most requests it had in flight at once."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay, self.in_flight, self.most = delay, 0, 0
        self.lock = threading.Lock()

    def handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(self.delay)  # a slow publisher, not the test waiting
        with self.lock:
            self.in_flight -= 1
        return super().handle(request)


def _record_host_grants(url: str) -> None:
    """Log every grant of a host turn (`host_starts.next_start` moved on) with the
    database's own clock, so gaps are measured where they are decided."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE TABLE granted (next_start timestamptz NOT NULL)")
        db.execute(
            "CREATE FUNCTION log_grant() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN INSERT INTO granted VALUES (NEW.next_start); RETURN NEW; END $$"
        )
        db.execute(
            "CREATE TRIGGER log_grant AFTER UPDATE ON host_starts FOR EACH ROW"
            " WHEN (NEW.next_start IS DISTINCT FROM OLD.next_start)"
            " EXECUTE FUNCTION log_grant()"
        )


def _host_grants(url: str) -> list[datetime]:
    with psycopg.connect(url) as db:
        return [row[0] for row in db.execute("SELECT next_start FROM granted ORDER BY 1")]


def test_per_host_manners_hold_across_instances(
    postgres_pair: tuple[PostgresStore, PostgresStore], postgres_url: str
) -> None:
    server = CountingServer(delay=0.3).start()
    for n in range(6):
        server.pages[f"/{n}"] = Page(b"<rss/>")
    _record_host_grants(postgres_url)

    async def both() -> None:
        fetchers = [HttpFetcher("t/1", host_turns=store.host_turns()) for store in postgres_pair]
        try:
            await asyncio.gather(*(f.fetch(server.url(f"/{n}")) for f in fetchers
                                   for n in range(6)))  # fmt: skip
        finally:
            for fetcher in fetchers:
                await fetcher.aclose()

    try:
        asyncio.run(both())
    finally:
        server.stop()

    assert len(server.requests) == 12
    assert server.most <= 2
    # Starts are granted 0.5 s apart across both instances, by the database's clock (the
    # arrival times at the server add each send's own delay on a busy machine).
    grants = _host_grants(postgres_url)
    assert len(grants) == 12
    assert min(b - a for a, b in itertools.pairwise(grants)) >= timedelta(seconds=0.5)


def test_run_once_leaves_a_source_another_fetched_since_it_began(
    postgres_pair: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = postgres_pair
    began = NOW - timedelta(seconds=5)
    assert first.claim_poll("s", "u", NOW, due_only=False, unpolled_since=began)
    first.save_state(
        SourceState("s", "u", last_fetch_at=NOW, next_fetch_at=NOW + timedelta(hours=1))
    )
    first.release_poll("s")

    assert not second.claim_poll("s", "u", NOW, due_only=False, unpolled_since=began)
    assert second.claim_poll(
        "s", "u", NOW, due_only=False, unpolled_since=NOW + timedelta(seconds=1)
    )


def test_status_lists_the_instances_and_who_polled_each_source(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import os

    from monitor.cli import main

    (tmp_path / "config.toml").write_text(
        f'[monitor]\ndatabase = "{postgres_url}"\n\n[targets]\nhook = "json://127.0.0.1:9/x"\n\n'
        '[[sources]]\nname = "wire"\nurl = "https://wire.example/feed"\n\n'
        '[[sources]]\nname = "paper"\nurl = "https://paper.example/feed"\n',
        encoding="utf-8",
    )
    worker = PostgresStore(postgres_url, instance=True)
    assert worker.claim_poll("wire", "https://wire.example/feed", NOW)
    worker.save_state(SourceState("wire", "https://wire.example/feed", last_result="ok"))
    worker.release_poll("wire")
    try:
        assert main(["status", "-c", str(tmp_path / "config.toml"), "--json"]) == 0
        rows = {r["source"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
        assert main(["status", "-c", str(tmp_path / "config.toml")]) == 0
        table = capsys.readouterr().out
    finally:
        worker.close()

    assert rows["paper"]["polled_by"] is None
    polled = rows["wire"]["polled_by"]
    assert polled["instance"] == worker.instance_name and polled["pid"] == os.getpid()
    assert polled["running"] is True and polled["leases"] == 0 and polled["last_heartbeat"]
    assert "instances:" in table and worker.instance_name in table
    assert table.splitlines()[0].split()[-1] == "polled_by"


def test_two_instances_seeing_copies_of_one_story_at_once_alert_once(
    postgres_url: str, feed_server: FixtureServer
) -> None:
    from email.utils import format_datetime

    from monitor.config.schema import Config, Rule, Settings, Source, Target
    from monitor.daemon import build_service
    from monitor.rules import compile_query
    from tests.test_intake import Recorder

    text = " ".join(
        f"Japan and North Korea held talk number {n} in Ulaanbaatar." for n in range(12)
    )
    for name in ("wire", "paper"):
        feed_server.pages[f"/{name}"] = Page(
            f'<rss version="2.0"><channel><title>{name}</title><item><title>Talks {name}</title>'
            f"<link>https://{name}.example/talks</link><description>{text}</description>"
            f"<pubDate>{format_datetime(NOW)}</pubDate></item></channel></rss>".encode()
        )
    settings = Settings(":memory:", (), timedelta(minutes=15), timedelta(days=3650), "t/1")
    rule = Rule("r", compile_query("Japan"), ("hook",))
    sources = [
        Source(n, feed_server.url(f"/{n}"), timedelta(minutes=15)) for n in ("wire", "paper")
    ]
    config = Config("c", settings, {"hook": Target("hook", "json://x")}, tuple(sources), (rule,))
    stores = [PostgresStore(postgres_url, instance=True) for _ in range(2)]
    recorders = [Recorder(), Recorder()]

    async def both() -> None:
        fetchers = [HttpFetcher("t/1", host_gap=0) for _ in stores]
        services = [build_service(config, f, s, r, clock=lambda: NOW)
                    for f, s, r in zip(fetchers, stores, recorders, strict=True)]  # fmt: skip
        try:
            await asyncio.gather(services[0].poll(sources[0]), services[1].poll(sources[1]))
            await asyncio.gather(*(s.deliver(due_only=False) for s in services))
        finally:
            for fetcher in fetchers:
                await fetcher.aclose()

    try:
        asyncio.run(both())
    finally:
        for store in stores:
            store.close()

    assert len(recorders[0].titles) + len(recorders[1].titles) == 1

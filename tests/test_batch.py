"""Batch commands: `preview` and `match` over many locations, some unreadable."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from monitor.cli import main
from monitor.service import batch as batch_module
from tests.servers import FixtureServer, Page

QUERY = "Japan AND North Korea AND summit|abduction"
T = TypeVar("T")
NOT_A_FEED = b"<html><body><p>nothing</p></body></html>"


def batch(tmp_path: Path, seeds: Path) -> list[str]:
    """Readable feeds around broken files: missing, binary, plain text, a directory."""
    (tmp_path / "notes.txt").write_text("just some notes, not a feed\n")
    (tmp_path / "random.bin").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "empty.xml").write_bytes(b"")
    (tmp_path / "folder").mkdir()
    feeds = seeds / "feeds"
    return [
        str(feeds / "asia.rss"),
        str(tmp_path / "missing.rss"),
        str(tmp_path / "notes.txt"),
        str(feeds / "asia.atom"),
        str(tmp_path / "random.bin"),
        str(tmp_path / "empty.xml"),
        str(tmp_path / "folder"),
        str(feeds / "asia.json"),
    ]


def test_preview_reads_every_readable_location_and_names_the_others(
    tmp_path: Path, seeds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locations = batch(tmp_path, seeds)
    code = main(["preview", "--json", *locations])
    out, err = capsys.readouterr()
    articles = [json.loads(line) for line in out.splitlines()]
    sources = {article["source"] for article in articles}
    assert code == 0
    assert sources == {"asia.rss", "asia.atom", "asia.json"}
    errors = err.splitlines()
    assert [line.split(": ", 1)[0] for line in errors] == [
        locations[1], locations[2], locations[4], locations[5], locations[6]
    ]  # fmt: skip
    assert errors[0] == f"{locations[1]}: no such file"
    assert errors[4] == f"{locations[6]}: is a directory"
    assert "Traceback" not in err


def test_preview_exits_2_only_when_nothing_could_be_read(
    tmp_path: Path, seeds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = [location for n, location in enumerate(batch(tmp_path, seeds)) if n in {1, 2, 4, 5, 6}]
    assert main(["preview", *broken]) == 2
    assert len(capsys.readouterr().err.splitlines()) == len(broken)


def test_match_goes_on_past_unreadable_locations(
    tmp_path: Path, seeds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locations = batch(tmp_path, seeds)
    code = main(["match", QUERY, *locations, "--json"])
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert len(lines) == 3  # the story, once in each readable feed
    assert {line["source"] for line in lines} == {"asia.rss", "asia.atom", "asia.json"}
    assert all("snippet" not in line and line["matched"] for line in lines)
    assert len(err.splitlines()) == 5

    assert main(["match", QUERY, *locations[1:3]]) == 2
    assert main(["match", "Brazil", *locations[:3]]) == 1


def test_urls_that_fail_are_reported_and_the_rest_are_read(
    seeds: Path, feed_server: FixtureServer, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = (seeds / "feeds" / "asia.rss").read_bytes()
    feed_server.pages = {
        **{f"/ok{n}.rss": Page(feed) for n in range(3)},
        "/gone.rss": Page(b"gone", status=410),
        "/page.html": Page(NOT_A_FEED, content_type="text/html"),
        "/error.rss": Page(b"oops", status=500),
    }
    paths = ["/ok0.rss", "/missing1.rss", "/gone.rss", "/ok1.rss", "/error.rss", "/ok2.rss"]
    urls = [feed_server.url(path) for path in paths]
    code = main(["preview", "--json", *urls])
    out, err = capsys.readouterr()
    assert code == 0
    assert len(out.splitlines()) == 3 * len(out.splitlines()) // 3 > 0
    assert err.splitlines() == [
        f"{urls[1]}: HTTP 404",
        f"{urls[2]}: HTTP 410",
        f"{urls[4]}: HTTP 500",
    ]
    assert [r.path for r in feed_server.requests] == paths


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_for_many_locations_on_a_terminal_only(
    tmp_path: Path, seeds: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    locations = batch(tmp_path, seeds)
    main(["preview", *locations])
    assert "[#" not in capsys.readouterr().err

    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    main(["preview", *locations])
    shown = terminal.getvalue()
    assert f"\r[{'#' * 30}] 8/8 locations\n" in shown
    assert f"{locations[1]}: no such file\n" in shown


def test_preview_streams_one_location_at_a_time(
    tmp_path: Path, seeds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each location's articles are written (and flushed) before the next is read."""
    from monitor.service import batch

    events: list[str] = []
    real = batch._read_location

    async def reading(location: str, *args: object) -> object:
        events.append(f"read {Path(location).name}")
        return await real(location, *args)  # type: ignore[arg-type]

    class Out(io.StringIO):
        def flush(self) -> None:
            events.append("flush")

    monkeypatch.setattr(batch, "_read_location", reading)
    monkeypatch.setattr("sys.stdout", Out())
    feeds = seeds / "feeds"
    main(["preview", "--json", str(feeds / "asia.rss"), str(feeds / "asia.atom")])
    assert events[0] == "read asia.rss" and events[-1] == "flush"
    assert events.index("read asia.atom") > events.index("flush")


UNTITLED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<link>https://e.com/</link><description>d</description>
<item><description>Leaders met in Tokyo on Monday. They talked for hours.</description>
<link>https://e.com/1</link></item>
<item><description>&lt;p&gt;One two three four five six seven eight nine ten eleven twelve
thirteen fourteen&lt;/p&gt;</description><link>https://e.com/2</link></item>
<item><link>https://e.com/3</link></item>
<item><title>A real title</title><link>https://e.com/4</link></item>
</channel></rss>"""


@pytest.mark.parametrize("suffix", [".rss", ".json"])
def test_an_item_without_a_title_gets_one_from_its_text_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    feed = tmp_path / f"untitled{suffix}"
    if suffix == ".rss":
        feed.write_bytes(UNTITLED)
    else:
        items = [
            {"id": "1", "url": "https://e.com/1", "content_text": "Leaders met in Tokyo on "
             "Monday. They talked for hours."},
            {"id": "2", "url": "https://e.com/2", "content_html": "<p>One two three four "
             "five six seven eight nine ten eleven twelve thirteen fourteen</p>"},
            {"id": "3", "url": "https://e.com/3"},
            {"id": "4", "url": "https://e.com/4", "title": "A real title"},
        ]  # fmt: skip
        feed.write_text(json.dumps({"version": "https://jsonfeed.org/version/1.1",
                                    "title": "t", "items": items}))  # fmt: skip
    assert main(["preview", "--json", str(feed)]) == 0
    articles = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(a["title"], a.get("title_generated", False)) for a in articles] == [
        ("Leaders met in Tokyo on Monday.", True),
        ("One two three four five six seven eight nine ten eleven twelve…", True),
        ("https://e.com/3", True),
        ("A real title", False),
    ]


def test_a_backtest_reads_the_store_in_chunks_and_misses_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """960 articles since the cut, 500 a chunk, hundreds sharing one first_seen: each read once."""
    from datetime import UTC, datetime, timedelta

    from monitor.adapters.store import sqlite
    from monitor.model import Article
    from monitor.state import SourceState

    store = sqlite.SqliteStore(str(tmp_path / "m.db"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for batch_number in range(4):
        articles = [
            Article(id=f"a{batch_number}-{n}", url=f"https://e.com/{batch_number}/{n}",
                    source="s", title=f"t {n}")
            for n in range(300 + batch_number * 10)
        ]  # fmt: skip
        seen = start + timedelta(hours=batch_number)
        store.save_poll(SourceState("s", "https://e.com/f"), articles, [], [], seen)
    queries_made: list[str] = []
    store.db.set_trace_callback(queries_made.append)
    read = [article.id for article in store.articles_since(start + timedelta(minutes=30))]
    store.close()
    expected = [f"a{b}-{n}" for b in range(1, 4) for n in range(300 + b * 10)]
    assert sorted(read) == sorted(expected) and len(read) == len(set(read)) == 960
    assert sum("LIMIT" in q for q in queries_made) == 2


def _read_in_child(location: str, source: str | None, saved_from: str | None) -> list[Any]:
    """`batch._file_articles` in the worker: the articles, their source the reading pid;
    a file named `crash.rss` kills the worker."""
    from dataclasses import replace

    if location.endswith("crash.rss"):
        os._exit(3)
    articles = _REAL_FILE_ARTICLES(location, source, saved_from)
    return [replace(article, source=f"pid {os.getpid()}") for article in articles]


_REAL_FILE_ARTICLES = batch_module._file_articles


def test_files_are_read_ahead_in_a_worker_process_in_order(
    tmp_path: Path, seeds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "_file_articles", _read_in_child)  # forked as it is
    locations = batch(tmp_path, seeds)
    pulled: list[str] = []

    def offered() -> Iterator[str]:
        for location in locations:
            pulled.append(location)
            yield location

    with batch_module.read_locations(offered(), ahead=2) as reading:
        first = next(reading)
        assert len(pulled) == 3  # the one taken, and 2 beyond it
        items = [first, *reading]
    assert [item.location for item in items] == locations
    read = [item for item in items if isinstance(item, batch_module.LocationRead)]
    assert [Path(item.location).name for item in read] == ["asia.rss", "asia.atom", "asia.json"]
    sources = {article.source for item in read for article in item.articles}
    assert len(sources) == 1 and sources != {f"pid {os.getpid()}"}
    failed = [item for item in items if isinstance(item, batch_module.Unreadable)]
    assert len(failed) == 5 and failed[0].reason == "no such file"


def test_a_worker_that_dies_costs_its_one_file_and_the_rest_are_read(
    tmp_path: Path, seeds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "_file_articles", _read_in_child)
    feeds = seeds / "feeds"
    crash = tmp_path / "crash.rss"
    crash.write_bytes((feeds / "asia.rss").read_bytes())
    locations = [
        str(feeds / "asia.rss"),
        str(crash),
        str(feeds / "asia.atom"),
        str(feeds / "asia.json"),
    ]
    with batch_module.read_locations(locations, ahead=2) as reading:
        items = list(reading)
    assert [item.location for item in items] == locations
    assert items[1] == batch_module.Unreadable(
        str(crash), "cannot be read: the process reading it died"
    )
    read = [item for item in items if isinstance(item, batch_module.LocationRead)]
    assert len(read) == 3 and all(item.articles for item in read)
    assert read[-1].articles[0].source == f"pid {os.getpid()}"  # read here, after the crash


def test_match_output_is_the_same_with_and_without_reading_ahead(
    tmp_path: Path, seeds: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    locations = batch(tmp_path, seeds)
    assert main(["match", QUERY, *locations, "--json"]) == 0
    ahead = capsys.readouterr()
    monkeypatch.setattr(batch_module, "_worker", lambda: (None, None))  # all read here
    assert main(["match", QUERY, *locations, "--json"]) == 0
    assert capsys.readouterr() == ahead


def test_a_rule_error_ends_the_worker_without_waiting_for_its_file(
    tmp_path: Path, seeds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The worker is reading a feed that never ends (a FIFO nobody writes to): `match` with
    a bad rule still exits at once, with the rule's error."""
    fifo = tmp_path / "endless.rss"
    os.mkfifo(fifo)
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nname = "bad"\nquery = "Japan AND ("\nnotify = ["console"]\n')
    assert main(["match", "--rules", str(rules), str(fifo)]) == 2
    assert "rules[0].query" in capsys.readouterr().err


def test_match_stops_quietly_when_its_reader_goes_away(tmp_path: Path) -> None:
    """`monitor match ... | head -1`: no "Broken pipe" message, the SIGPIPE exit status."""
    feed = tmp_path / "many.rss"
    feed.write_bytes(japan_stories(3000))
    command = [sys.executable, "-m", "monitor", "match", "Japan", str(feed), "--json"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.read(100).startswith(b'{"rule": "query"')
        process.stdout.close()
        assert process.stderr.read() == b""
        assert process.wait(timeout=120) == 128 + signal.SIGPIPE


def test_a_worker_killed_between_files_costs_nothing(
    tmp_path: Path, seeds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed while it waits (the OOM killer, an operator), the worker's files are read here."""
    feeds = seeds / "feeds"
    locations = [str(feeds / name) for name in ("asia.rss", "asia.atom", "asia.json")] * 2
    with batch_module.read_locations(locations, ahead=1) as reading:
        first = next(reading)
        _wait_for(lambda: all(future.done() for _, future, _ in reading._window if future))
        worker = _children(os.getpid())  # now idle: the file sent ahead is read
        assert len(worker) == 1
        os.kill(worker[0], signal.SIGKILL)
        _wait_for(lambda: not _alive(worker[0]))
        rest = list(reading)
    items = [first, *rest]
    assert [item.location for item in items] == locations
    assert all(isinstance(item, batch_module.LocationRead) for item in items)


def test_what_the_worker_logs_is_logged_here_in_the_order_of_the_files(
    seeds: Path, caplog: pytest.LogCaptureFixture
) -> None:
    feeds = seeds / "feeds"
    locations = [str(feeds / "asia.rss"), str(feeds / "broken.rss"), str(feeds / "asia.atom")]
    seen: list[str] = []
    with (
        caplog.at_level(logging.WARNING),
        batch_module.read_locations(locations, ahead=2) as reading,
    ):
        for item in reading:
            seen.append(Path(item.location).name)
            seen += [record.getMessage().split(":")[0] for record in caplog.records]
            caplog.clear()
    assert seen == ["asia.rss", "broken.rss", "broken.rss", "asia.atom"]


def test_the_worker_ends_with_match_even_when_match_is_killed(tmp_path: Path) -> None:
    fifo = tmp_path / "endless.rss"
    os.mkfifo(fifo)  # the worker blocks opening it
    command = [sys.executable, "-m", "monitor", "match", "Japan", str(fifo)]
    with subprocess.Popen(command, stderr=subprocess.DEVNULL) as process:
        worker = _wait_for(lambda: _children(process.pid))
        process.kill()
    assert _wait_for(lambda: not _alive(worker[0]))


def japan_stories(count: int) -> bytes:
    """An RSS feed of `count` items titled "Japan story N"."""
    items = "".join(
        f"<item><title>Japan story {n}</title><link>https://news.example.com/{n}</link></item>"
        for n in range(count)
    )
    return f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone, or going while read
        return False


def _wait_for(condition: Callable[[], T], timeout: float = 30.0) -> T:
    """Polls until `condition` is truthy (the worker is another process: there is no event
    to wait on)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)
    return result

"""`on_two_cores`: work split between this process and one forked worker, in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.service import workers
from tests.servers import FixtureServer, Page
from tests.test_batch import _alive, _children, _wait_for, japan_stories

pytestmark = pytest.mark.skipif(
    not workers.can_fork() or len(os.sched_getaffinity(0)) < 2, reason="needs fork and 2 cores"
)


def _where(item: int) -> tuple[int, int]:
    return item, os.getpid()


def test_results_come_in_order_every_other_one_from_a_worker() -> None:
    results = list(workers.on_two_cores(_where, range(40)))
    assert [item for item, _ in results] == list(range(40))
    here = os.getpid()
    assert all(pid == here for _, pid in results[::2])
    worker = {pid for _, pid in results[1::2]}
    assert len(worker) == 1 and here not in worker


def test_results_larger_than_a_pipe_holds_come_whole() -> None:
    def large(item: int) -> str:
        return str(item) * 2_000_000

    assert list(workers.on_two_cores(large, range(7))) == [str(n) * 2_000_000 for n in range(7)]


def test_no_descriptor_is_left_open_done_or_stopped_early() -> None:
    before = sorted(os.listdir("/proc/self/fd"))
    assert len(list(workers.on_two_cores(_where, range(9)))) == 9
    results = workers.on_two_cores(_where, range(9))
    next(results), next(results)
    results.close()
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_one_item_is_computed_here_without_a_worker() -> None:
    assert list(workers.on_two_cores(_where, [7])) == [(7, os.getpid())]
    assert list(workers.on_two_cores(_where, [])) == []


def test_a_worker_that_dies_costs_nothing_its_items_are_computed_here() -> None:
    def kill_the_worker_at_5(item: int) -> tuple[int, int]:
        if item == 5 and os.getpid() != here:
            os.kill(os.getpid(), signal.SIGKILL)
        return item, os.getpid()

    here = os.getpid()
    results = list(workers.on_two_cores(kill_the_worker_at_5, range(20)))
    assert [item for item, _ in results] == list(range(20))
    assert all(pid == here for _, pid in results[5:])


def test_a_result_the_worker_cannot_send_back_is_computed_here() -> None:
    here = os.getpid()

    def unpicklable_in_the_worker(item: int) -> tuple[int, object]:
        return item, (lambda: item) if os.getpid() != here else here

    results = list(workers.on_two_cores(unpicklable_in_the_worker, range(10)))
    assert results == [(item, here) for item in range(10)]


def test_an_item_that_cannot_be_sent_is_computed_here() -> None:
    """The worker starts on the second item, which it inherits; the others are pickled."""
    here = os.getpid()
    items = [lambda n=n: (n, os.getpid()) for n in range(6)]  # local lambdas: unpicklable

    results = list(workers.on_two_cores(lambda item: item(), items))
    assert [item for item, _ in results] == list(range(6))
    assert results[1][1] != here
    assert all(pid == here for _, pid in results[3::2])


def test_without_memory_files_everything_is_computed_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(_: str) -> int:
        raise PermissionError("memfd_create: refused by a sandbox")

    monkeypatch.setattr(os, "memfd_create", refused)
    assert list(workers.on_two_cores(_where, range(6))) == [(n, os.getpid()) for n in range(6)]


def test_an_item_that_cannot_be_written_ends_the_worker_and_the_rest_is_computed_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A write that fails here (a file size limit, no memory) while the worker lives:
    the worker is stopped, not waited on, and every item still comes, in order."""
    here = os.getpid()
    real = os.pwrite
    writes = [0]

    def failing_here_on_the_third(fd: int, data: bytes | memoryview, offset: int) -> int:
        if os.getpid() == here:
            writes[0] += 1
            if writes[0] == 3:
                raise OSError(27, "File too large")
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", failing_here_on_the_third)
    results = list(workers.on_two_cores(_where, range(12)))
    assert [item for item, _ in results] == list(range(12))
    assert all(pid == here for _, pid in results[6:])
    assert _children_of(here) == []


def test_with_sigchld_ignored_the_worker_ends_without_an_error() -> None:
    """Whoever started us may ignore SIGCHLD (it survives exec): the system reaps the
    worker itself, and waiting for it must not fail."""
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        results = list(workers.on_two_cores(_where, range(10)))
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert [item for item, _ in results] == list(range(10))


def test_an_os_error_in_the_function_in_the_worker_does_not_end_it() -> None:
    here = os.getpid()

    def missing_file_at_3(item: int) -> tuple[int, int]:
        if item == 3 and os.getpid() != here:
            raise FileNotFoundError("gone")
        return item, os.getpid()

    results = list(workers.on_two_cores(missing_file_at_3, range(12)))
    assert [item for item, _ in results] == list(range(12))
    assert results[3][1] == here
    assert {pid for _, pid in results[5::2]} != {here}


def _children_of(pid: int) -> list[str]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return path.read_text().split() if path.exists() else []


def test_an_error_in_the_function_is_raised_here() -> None:
    def fails_at_3(item: int) -> int:
        if item == 3:
            raise ValueError(f"bad item {item}")
        return item

    with pytest.raises(ValueError, match="bad item 3"):
        list(workers.on_two_cores(fails_at_3, range(10)))
    assert _wait_for(lambda: not _children(os.getpid()))


def test_the_worker_ends_when_the_caller_stops_reading() -> None:
    def items() -> Iterator[int]:
        yield from range(1000)

    results = workers.on_two_cores(_where, items())
    assert next(results) == (0, os.getpid())
    _, worker = next(results)
    results.close()  # the worker finishes the item it has, then exits
    assert _wait_for(lambda: not _alive(worker))


def test_match_output_is_the_same_on_two_cores_and_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A feed of many chunks, matched on both cores and then all here: the same lines in
    the same order, and the same exit status."""
    items = "".join(
        f"<item><title>Story {n} from Japan</title><link>https://news.example.com/{n}</link>"
        f"<description>{'Talks in Tokyo. ' * (n % 3)}Seoul {n}</description></item>"
        for n in range(300)
    )
    feed = tmp_path / "many.rss"
    feed.write_text(f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>')
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "".join(
            f'[[rules]]\nname = "r{n}"\nquery = "{query}"\nnotify = ["console"]\n'
            for n, query in enumerate(["Japan", "Tokyo AND talks", "seoul AND NOT tokyo", "stor*"])
        )
    )
    command = ["match", "--rules", str(rules), str(feed), "--json"]
    assert main(command) == 0
    both = capsys.readouterr()
    assert len(both.out.splitlines()) > 600
    monkeypatch.setattr(workers, "can_fork", lambda: False)
    assert main(command) == 0
    assert capsys.readouterr() == both


def test_the_matching_worker_ends_with_match_even_when_match_is_killed(tmp_path: Path) -> None:
    """`match` blocked writing (nobody reads its output) while both cores match, then killed:
    its workers end with it."""
    feed = tmp_path / "many.rss"
    feed.write_bytes(japan_stories(3000))
    command = [sys.executable, "-m", "monitor", "match", "Japan", str(feed), "--json"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        children = _wait_for(lambda: _two(_children(process.pid)))
        process.kill()
        process.wait()
    assert _wait_for(lambda: not any(map(_alive, children)))


def _two(children: list[int]) -> list[int]:
    """The children once there are two (the reading worker, the matching one)."""
    return children if len(children) == 2 else []


def _one_core_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: object) -> None:
        raise AssertionError("matched on two cores")

    monkeypatch.setattr(workers, "on_two_cores", refused)


def test_urls_are_matched_here_and_written_as_each_is_read(
    feed_server: FixtureServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A URL's matches would otherwise wait for the next URL's fetch (a chunk is handed out
    one ahead)."""
    feed_server.pages = {f"/{n}.rss": Page(japan_stories(100)) for n in range(2)}
    _one_core_only(monkeypatch)
    urls = [feed_server.url(f"/{n}.rss") for n in range(2)]
    assert main(["match", "Japan", *urls, "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 200


def test_a_large_process_matches_on_one_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The worker would copy the pages it touches (100k rules: hundreds of MB)."""
    feed = tmp_path / "many.rss"
    feed.write_bytes(japan_stories(100))
    _one_core_only(monkeypatch)
    monkeypatch.setattr(workers, "resident_mb", lambda: 10_000.0)
    assert main(["match", "Japan", str(feed), "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 100

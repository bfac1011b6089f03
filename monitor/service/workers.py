"""Worker processes forked for batch commands, and work split over two cores.

`forked_pool` forks one worker that shares what this process built (compiled rules),
ends with its parent (even on SIGKILL: Linux's parent-death signal), leaves Ctrl-C to the
parent, and keeps the collector off what it inherited. `stop` ends it at once.
`on_two_cores` maps a function over items in order, every other item in a worker started
the same way but forked by hand, talking through `channel.py` (no pool, no thread here).
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from monitor.service import channel

__all__ = ["can_fork", "forked_pool", "on_two_cores", "resident_mb", "stop"]

T = TypeVar("T")
R = TypeVar("R")

_PR_SET_PDEATHSIG = 1  # prctl(2)


def can_fork() -> bool:
    """Whether workers can be forked (Linux: the parent-death signal keeps none behind)."""
    return sys.platform == "linux"


def resident_mb() -> float:
    """This process's resident memory (Linux), what a worker forked now would come to copy:
    `gc.freeze` keeps the collector off inherited objects, but reference counts still write
    to the pages of every object the worker touches."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def forked_pool(
    initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    """A pool of one worker, forked now; `initializer(*initargs)` runs in it first."""
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=context,
        initializer=_started,
        initargs=(os.getpid(), initializer, initargs),
    )
    pool.submit(os.getpid)  # the fork happens at the first task
    return pool


def stop(pool: ProcessPoolExecutor) -> None:
    """End the worker now, not after its task: Python 3.14's `terminate_workers`, else each
    process by hand."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    processes: dict[int, multiprocessing.process.BaseProcess] | None
    processes = getattr(pool, "_processes", None)  # None once shut down
    for process in list((processes or {}).values()):
        process.terminate()


def _started(
    parent: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> None:
    import ctypes

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it ended before the signal was asked for
        os._exit(1)
    gc.freeze()  # what it inherited lives to its end: the collector need not walk it
    if initializer is not None:
        initializer(*initargs)


def on_two_cores(function: Callable[[T], R], items: Iterable[T]) -> Generator[R, None, None]:
    """`function(item)` for each item, in order: the first here, then every other item in a
    worker forked at the second (so that it shares all this process built) while this
    process computes the ones between; close the generator to stop early.
    `function` must not depend on state changed after the fork. An item the worker fails
    on (it died, raised, or its result could not be pickled) is computed here, and so are
    the items after it if the worker is gone.

    Without fork or memory files, or with one core, everything runs here."""
    items = iter(items)
    first = next(items, _END)
    if first is _END:
        return
    yield function(first)
    sent = next(items, _END)
    if sent is _END:
        return
    if not can_fork() or not channel.can_open() or len(os.sched_getaffinity(0)) < 2:
        yield function(sent)
        yield from map(function, items)
        return
    try:
        worker = _Worker(function, sent)
    except OSError:  # no memory files or no process to be had: all here
        yield function(sent)
        yield from map(function, items)
        return
    try:
        pending: T | Any = sent
        while pending is not _END:
            here = next(items, _END)
            after = next(items, _END) if here is not _END else _END
            if after is not _END:
                worker.submit(after)
            computed = function(here) if here is not _END else None
            yield worker.result(function, pending)
            if here is not _END:
                yield computed  # type: ignore[misc]
            pending = after
    finally:
        worker.stop()


class _Worker:
    """The forked worker of `on_two_cores`: it starts on the item it inherits, then takes
    the items sent to it, in order, and sends back each result (or that it has none).

    No thread runs here for it: items and results travel through memory files
    (`channel.py`), read only when wanted."""

    __slots__ = ("_items", "_pid", "_results")

    def __init__(self, function: Callable[[Any], Any], first: Any) -> None:
        self._items = channel.Channel()
        try:
            self._results = channel.Channel()
        except OSError:
            self._items.close()
            raise
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError:
            self._items.close()
            self._results.close()
            raise
        if pid == 0:
            _serve(parent, function, first, self._items, self._results)
        self._pid: int | None = pid
        self._items.keep_sending()
        self._results.keep_receiving()

    def submit(self, item: Any) -> None:
        if self._pid is None:
            return
        try:
            self._items.send(item)  # not picklable: computed here when its result is asked
        except OSError:  # the worker is gone, or the item cannot be written: all here now
            self._end()

    def result(self, function: Callable[[T], R], item: T) -> R:
        """The worker's result for `item` (the oldest it was given), else computed here: a
        real error in `function` is raised here (the worker only says it has no result)."""
        result: Any = self._received() if self._pid is not None else channel.FAILED
        if result is channel.FAILED:
            return function(item)
        return result  # type: ignore[no-any-return]

    def stop(self) -> None:
        """End the worker at once, done or not: it holds nothing another process waits on."""
        try:
            if self._pid is not None:
                self._end()
        finally:
            self._items.close()
            self._results.close()

    def _received(self) -> Any:
        try:
            return self._results.receive()
        except (EOFError, OSError):  # the worker died, or its result cannot be read
            self._end()
            return channel.FAILED
        except Exception:  # what it sent cannot be unpickled here
            return channel.FAILED

    def _end(self) -> None:
        """Kill the worker (it may be alive: a write or read here failed) and reap it, if
        the system has not already (SIGCHLD ignored by whoever started us)."""
        assert self._pid is not None
        pid, self._pid = self._pid, None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _serve(
    parent: int,
    function: Callable[[Any], Any],
    item: Any,
    items: channel.Channel,
    results: channel.Channel,
) -> NoReturn:
    """The worker's life: never returns, never runs its parent's exit handlers or flushes
    its buffers (`os._exit`)."""
    try:
        items.keep_receiving()
        results.keep_sending()
        _started(parent, None, ())
        while True:
            result: Any = channel.FAILED
            if item is not channel.FAILED:
                with contextlib.suppress(Exception):  # raised again where it is recomputed
                    result = function(item)
            try:
                if result is channel.FAILED:
                    results.send_failure()
                else:
                    results.send(result)  # not picklable: recomputed there
            except OSError:  # the parent is gone
                break
            try:
                item = items.receive()
            except EOFError:  # no more items
                break
    finally:
        os._exit(0)


_END: Any = object()

"""Worker processes forked for batch commands, and work split over two cores.

`forked_pool` forks one worker that shares what this process built (compiled rules),
ends with its parent (even on SIGKILL: Linux's parent-death signal), leaves Ctrl-C to the
parent, and keeps the collector off what it inherited. `stop` ends it at once.
`on_two_cores` maps a function over items in order, every other item in such a worker.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

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


_TASK: Callable[[Any], Any] | None = None  # in a worker of `on_two_cores`: its function


def _run(item: Any) -> Any:
    assert _TASK is not None
    return _TASK(item)


def _set_task(function: Callable[[Any], Any]) -> None:
    global _TASK
    _TASK = function


def on_two_cores(function: Callable[[T], R], items: Iterable[T]) -> Generator[R, None, None]:
    """`function(item)` for each item, in order: the first here, then every other item in a
    worker forked at the second (so that it shares all this process built) while this
    process computes the ones between; close the generator to stop early.
    `function` must not depend on state changed after the fork. An item the worker fails
    on (it died, or its result could not be sent back) is computed here, and so are the
    items after it if the worker is gone.

    Without fork, or with one core, everything runs here."""
    items = iter(items)
    first = next(items, _END)
    if first is _END:
        return
    yield function(first)
    sent = next(items, _END)
    if sent is _END:
        return
    if not can_fork() or len(os.sched_getaffinity(0)) < 2:
        yield function(sent)
        yield from map(function, items)
        return
    pool = forked_pool(_set_task, (function,))
    finished = False
    try:
        pending: tuple[T, Future[R] | None] | None = (sent, _submit(pool, sent))
        while pending is not None:
            sent, future = pending
            here = next(items, _END)
            after = next(items, _END) if here is not _END else _END
            pending = None if after is _END else (after, _submit(pool, after))
            computed = function(here) if here is not _END else None
            yield _result(function, sent, future)
            if here is not _END:
                yield computed  # type: ignore[misc]
        finished = True
    finally:
        # Stopped early (an error, a closed pipe, Ctrl-C): the worker finishes the chunk it
        # has and exits. Terminating it mid-result could leave the pool's thread waiting
        # for the rest of a message that never comes.
        pool.shutdown(wait=finished, cancel_futures=True)


_END: Any = object()


def _submit(pool: ProcessPoolExecutor, item: Any) -> Future[Any] | None:
    try:
        return pool.submit(_run, item)
    except (BrokenProcessPool, RuntimeError):  # the worker is gone
        return None


def _result(function: Callable[[T], R], item: T, future: Future[R] | None) -> R:
    if future is not None:
        # A failure there is computed here: a real error in `function` is raised here (the
        # worker's exception only says which, a dead worker or an unpicklable result, not).
        with contextlib.suppress(Exception):
            return future.result()
    return function(item)

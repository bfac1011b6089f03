"""The locations a batch command names (feed and page files, Article JSON Lines, http(s)
URLs), read in order, one `LocationRead` or `Unreadable` each; with `ahead`, files are read
in a worker process while the caller works on the ones before (`preview`, `match`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitor.errors import MonitorError
from monitor.model import Article
from monitor.ports import ClosingFetcher, Fetcher
from monitor.service import workers
from monitor.service.collect import read_document
from monitor.sources.feeds import FeedError
from monitor.sources.identity import is_http_url
from monitor.state import FetchResponse

__all__ = [
    "LocationRead",
    "LocationReading",
    "Unreadable",
    "load_articles",
    "names_urls",
    "read_locations",
]

_MEDIA_TYPES = {".html": "text/html", ".htm": "text/html", ".json": "application/feed+json"}
_FEED_MARKS = (b"<rss", b"<feed", b"<rdf:rdf", b"<rdf", b"<channel", b"jsonfeed.org")


@dataclass(frozen=True, slots=True)
class LocationRead:
    """The articles of one location (none for an empty feed)."""

    location: str
    articles: list[Article]


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A location that could not be read, and why (one line, no traceback)."""

    location: str
    reason: str


def load_articles(
    locations: Iterable[str],
    *,
    source: str | None = None,
    saved_from: str | None = None,
    fetcher_factory: Callable[[], ClosingFetcher] | None = None,
) -> list[Article]:
    """Articles from files (feeds, pages, Article JSON Lines) and http(s) URLs, as a list;
    raises OSError at the first location that cannot be read (see `read_locations`)."""
    articles: list[Article] = []
    reading = read_locations(
        locations, source=source, saved_from=saved_from, fetcher_factory=fetcher_factory
    )
    with reading:
        for item in reading:
            if isinstance(item, Unreadable):
                raise OSError(f"{item.location}: {item.reason}")
            articles.extend(item.articles)
    return articles


def names_urls(locations: Iterable[str]) -> bool:
    """Whether some of `locations` are http(s) URLs (fetched here, one after another)."""
    return any(map(is_http_url, locations))


def read_locations(
    locations: Iterable[str],
    *,
    source: str | None = None,
    saved_from: str | None = None,
    fetcher_factory: Callable[[], ClosingFetcher] | None = None,
    ahead: int = 0,
) -> LocationReading:
    """The articles of each location in turn, as soon as it is read, or an `Unreadable`
    for a location that cannot be (missing file, HTTP error, not a feed or page): the
    others are read all the same.

    Each article's `source` is `source`, else the file's name or the URL's host. A saved
    file is read as if fetched from `saved_from` (for its links and page URL). URLs are
    fetched with a fetcher from `fetcher_factory` (made on the first URL, closed at the end).

    With `ahead` > 0 (and `fork`, so on Linux), files are read in a worker process forked
    by this call, up to `ahead` of them beyond the one the caller has: reading a feed is
    CPU-bound, and compiling rules or matching need not wait for it. At most `ahead` + 1
    locations' articles are in memory at a time; one, without `ahead`. What the worker logs
    is logged here when its file is taken, in the order the files are.
    """
    return LocationReading(iter(locations), source, saved_from, fetcher_factory, ahead)


class LocationReading:
    """`read_locations`' iterator; close it (or use it in a `with`) when not read to the end."""

    def __init__(
        self,
        locations: Iterator[str],
        source: str | None,
        saved_from: str | None,
        fetcher_factory: Callable[[], ClosingFetcher] | None,
        ahead: int,
    ) -> None:
        self._locations, self._ahead = locations, ahead
        self._source, self._saved_from, self._fetcher_factory = source, saved_from, fetcher_factory
        # each location with the worker's future for it and its number, if it was sent
        self._window: deque[tuple[str, Future[_WorkerRead] | None, int]] = deque()
        self._sent = 0  # files sent to the worker; it notes the number of the one it reads
        worker = _worker() if ahead > 0 and workers.can_fork() else (None, None)
        self._pool: ProcessPoolExecutor | None = worker[0]
        self._reading: Any = worker[1]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fetcher: ClosingFetcher | None = None
        self._fill()

    def __iter__(self) -> LocationReading:
        return self

    def __next__(self) -> LocationRead | Unreadable:
        if not self._window:
            self.close()
            raise StopIteration
        location, future, number = self._window.popleft()
        self._fill()
        if future is None:
            return _outcome(location, lambda: self._read_here(location))
        try:
            read = future.result()
        except BrokenProcessPool:
            # The worker died (killed, out of memory, a crash in a parser): on this file if
            # it had begun it (then not again here: it may be what kills), else between
            # files. The files after it were not read; they are read here.
            died_on_it = self._reading.value == number
            self._without_worker()
            if died_on_it:
                return Unreadable(location, "cannot be read: the process reading it died")
            return _outcome(location, lambda: self._read_here(location))
        except Exception as exc:  # what it read could not be sent back
            return _unexpected(location, exc)
        for record in read.records:
            logging.getLogger(record.name).handle(record)
        return read.outcome

    def __enter__(self) -> LocationReading:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker (at once if locations are left unread) and close the fetcher."""
        if self._pool is not None:
            if self._window:
                workers.stop(self._pool)
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._loop is not None:
            if self._fetcher is not None:
                self._loop.run_until_complete(self._fetcher.aclose())
                self._fetcher = None
            self._loop.close()
            self._loop = None

    def _without_worker(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._window = deque((location, None, 0) for location, _, _ in self._window)

    def _fill(self) -> None:
        """The next location in the window; with a worker, `ahead` of them, the files sent
        to it to read."""
        while len(self._window) < max(self._ahead, 1):
            location = next(self._locations, None)
            if location is None:
                return
            future = self._offload(location)  # may replace the window
            self._window.append((location, future, self._sent))

    def _offload(self, location: str) -> Future[_WorkerRead] | None:
        if self._pool is None or is_http_url(location):
            return None
        self._sent += 1
        try:
            future = self._pool.submit(
                _read_file, location, self._source, self._saved_from, self._sent
            )
        except (BrokenProcessPool, RuntimeError):  # the worker died between files
            self._without_worker()
            return None
        return future

    def _read_here(self, location: str) -> list[Article]:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        fetcher_needed = is_http_url(location) and self._fetcher is None
        if fetcher_needed and self._fetcher_factory is not None:
            self._fetcher = self._fetcher_factory()
        reading = _read_location(location, self._source, self._saved_from, self._fetcher)
        return self._loop.run_until_complete(reading)


def _worker() -> tuple[ProcessPoolExecutor, Any]:
    """The worker, forked now (before any thread of ours exists), and the shared number of
    the file it is reading."""
    reading = multiprocessing.get_context("fork").RawValue("q", 0)
    return workers.forked_pool(_worker_started, (reading,)), reading


@dataclass(frozen=True, slots=True)
class _WorkerRead:
    """What the worker read of one file, and what it logged meanwhile."""

    outcome: LocationRead | Unreadable
    records: list[logging.LogRecord]


class _Records(logging.Handler):
    """The worker's one log handler: records kept, to be logged by the parent."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """The record as plain values, so that it can always be sent back."""
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        fields = {
            name: value
            for name, value in vars(record).items()
            if isinstance(value, str | int | float | bool | None)
        }
        fields.update(msg=record.getMessage(), args=None, exc_info=None)
        self.records.append(logging.makeLogRecord(fields))


_RECORDS = _Records()
_READING: Any = None  # in the worker: the shared number of the file it reads


def _worker_started(reading: Any) -> None:
    """In the worker: it logs into `_RECORDS`, and notes in `reading` (shared memory) the
    number of the file it is reading."""
    global _READING
    _READING = reading
    logging.getLogger().handlers = [_RECORDS]


def _read_file(
    location: str, source: str | None, saved_from: str | None, number: int
) -> _WorkerRead:
    """One file, in the worker process."""
    if _READING is not None:
        _READING.value = number
    _RECORDS.records = []
    outcome = _outcome(location, lambda: _file_articles(location, source, saved_from))
    return _WorkerRead(outcome, _RECORDS.records)


def _outcome(location: str, read: Callable[[], list[Article]]) -> LocationRead | Unreadable:
    try:
        return LocationRead(location, read())
    except (OSError, MonitorError, FeedError, UnicodeDecodeError) as exc:
        return Unreadable(location, _reason(location, exc))
    except Exception as exc:  # untrusted input: one bad file, never the whole batch
        return _unexpected(location, exc)


def _unexpected(location: str, exc: Exception) -> Unreadable:
    return Unreadable(location, f"cannot be read: {type(exc).__name__}: {exc}")


def _reason(location: str, exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    text = str(exc)
    if text.startswith(location + ": "):
        text = text[len(location) + 2 :]
    return text or type(exc).__name__


async def _read_location(
    location: str,
    source_name: str | None,
    saved_from: str | None,
    fetcher: ClosingFetcher | None,
) -> list[Article]:
    if not is_http_url(location):
        return _file_articles(location, source_name, saved_from)
    if fetcher is None:
        raise OSError(f"{location}: no fetcher to read URLs with")
    response = await _fetch_document(fetcher, location)
    source = source_name or urlsplit(location).hostname or location
    return await asyncio.to_thread(_document_articles, location, response, source)


def _file_articles(location: str, source_name: str | None, saved_from: str | None) -> list[Article]:
    response = _file_response(location, saved_from)
    if _is_article_json_lines(response.content):
        return _article_json_lines(response.content)
    return _document_articles(location, response, source_name or Path(location).name)


def _document_articles(location: str, response: FetchResponse, source: str) -> list[Article]:
    reading = read_document(response, source)
    if not reading.articles and not _looks_like_feed(response.content):
        raise OSError(f"{location}: not a feed or an article page")
    return reading.articles


async def _fetch_document(fetcher: Fetcher, url: str) -> FetchResponse:
    response = await fetcher.fetch(url)
    if response.status != 200:
        raise OSError(f"{url}: HTTP {response.status}")
    return response


def _looks_like_feed(content: bytes) -> bool:
    """Whether a document that gave no items is an (empty) feed rather than something else."""
    head = content[:4096].lower()
    return any(mark in head for mark in _FEED_MARKS)


def _file_response(path: str, saved_from: str | None) -> FetchResponse:
    file = Path(path)
    content_type = _MEDIA_TYPES.get(file.suffix.lower(), "")
    return FetchResponse(
        url=saved_from or file.resolve().as_uri(),
        status=200,
        headers={"content-type": content_type} if content_type else {},
        content=file.read_bytes(),
    )


def _is_article_json_lines(content: bytes) -> bool:
    head = content.lstrip()[:2000]
    return head.startswith(b"{") and b'"body"' in head and b'"section"' in head


def _article_json_lines(content: bytes) -> list[Article]:
    return [
        Article.from_json(json.loads(line))
        for line in content.decode("utf-8").splitlines()
        if line.strip()
    ]

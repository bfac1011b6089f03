"""Pickled values one way between a process and a worker it forked, without threads.

A value goes into one of two memory files (memfd) and its length through a pipe: sending
never waits for the other side to read, as long as at most two values are unread, which
`on_two_cores` ensures (it sends an item only after the result of the one two before).
Both ends count what passed, so that each knows which file holds the next value.
"""

from __future__ import annotations

import os
import pickle
import struct
from typing import Any, Final

__all__ = ["FAILED", "Channel", "can_open"]

_LENGTH = struct.Struct("q")
_FAILED_LENGTH = -1


class _Failed:
    def __repr__(self) -> str:
        return "FAILED"


FAILED: Final = _Failed()
"""What `receive` returns for a `send_failure`: the sender has no value for this turn."""


def can_open() -> bool:
    """Whether this system has memory files (Linux)."""
    return hasattr(os, "memfd_create")


class Channel:
    """Open it before the fork; then one process keeps the sending end and the other the
    receiving one (`keep_sending`, `keep_receiving`), and both `close` it at the end."""

    __slots__ = ("_files", "_reader", "_turn", "_writer")

    def __init__(self) -> None:
        self._reader: int | None
        self._writer: int | None
        self._reader, self._writer = os.pipe()
        self._files: tuple[int, ...] = ()
        self._turn = 0
        try:
            self._files = (os.memfd_create("value"),)
            self._files += (os.memfd_create("value"),)
        except OSError:  # refused (a sandbox), or out of descriptors
            self.close()
            raise

    def keep_sending(self) -> None:
        self._close_reader()

    def keep_receiving(self) -> None:
        self._close_writer()

    def send(self, value: object) -> None:
        """Send `value`, or a failure if it cannot be pickled; OSError if the receiver is
        gone or the file cannot take it."""
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            self.send_failure()
            return
        file = self._files[self._turn % 2]
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            offset += os.pwrite(file, view[offset:], offset)
        self._tell(len(data))

    def send_failure(self) -> None:
        self._tell(_FAILED_LENGTH)

    def receive(self) -> Any:
        """The next value, or `FAILED`; EOFError if the sender is gone before sending it."""
        assert self._reader is not None
        (length,) = _LENGTH.unpack(_read_exactly(self._reader, _LENGTH.size))
        file = self._next_file()
        if length == _FAILED_LENGTH:
            return FAILED
        parts = []
        offset = 0
        while offset < length:
            part = os.pread(file, length - offset, offset)
            if not part:
                raise EOFError("the value is shorter than sent")
            parts.append(part)
            offset += len(part)
        return pickle.loads(b"".join(parts))  # noqa: S301 - from a process of our own

    def close(self) -> None:
        self._close_reader()
        self._close_writer()
        for file in self._files:
            os.close(file)
        self._files = ()

    def _next_file(self) -> int:
        file = self._files[self._turn % 2]
        self._turn += 1
        return file

    def _tell(self, length: int) -> None:
        """The turn is over once its length is out (a failed write leaves it to retry)."""
        assert self._writer is not None
        os.write(self._writer, _LENGTH.pack(length))  # less than PIPE_BUF: written whole
        self._turn += 1

    def _close_reader(self) -> None:
        if self._reader is not None:
            os.close(self._reader)
            self._reader = None

    def _close_writer(self) -> None:
        if self._writer is not None:
            os.close(self._writer)
            self._writer = None


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        part = os.read(fd, size - len(data))
        if not part:
            raise EOFError("the sender is gone")
        data += part
    return data

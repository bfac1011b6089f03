"""Errors a user sees as one clear message (never a traceback)."""

from __future__ import annotations

__all__ = ["ConfigError", "LeaseLost", "MonitorError", "StoreError", "StoreUnavailable"]


class MonitorError(Exception):
    """An error with a message meant for the user."""


class StoreError(MonitorError):
    """The database cannot be opened, read or written (the message names it and the cause)."""


class LeaseLost(StoreError):
    """A poll's write refused because the poll's lease passed to another instance (its
    fencing counter moved on): that instance's newer result stands."""


class StoreUnavailable(StoreError):
    """The database server cannot be reached for now (down, restarting, network): worth
    waiting for, unlike a full disk or a damaged file."""


class ConfigError(MonitorError):
    """A problem in a config or rules file, located by file, key path and line."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        line: int | None = None,
        column: int | None = None,
        detail: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.key = key
        self.line = line
        self.column = column
        self.detail = detail
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.line is not None:
            where.append(f"line {self.line}" + (f", column {self.column}" if self.column else ""))
        head = ": ".join(filter(None, [", ".join(where), self.key]))
        text = f"{head}: {self.message}" if head else self.message
        if self.detail:
            text += "\n" + self.detail
        return text

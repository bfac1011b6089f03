"""Reading TOML tables key by key, with errors located by file, key path and line."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from monitor.config.durations import parse_duration
from monitor.config.simple_toml import read_simple
from monitor.errors import ConfigError

__all__ = ["TomlContext", "TomlTable", "load_toml"]

T = TypeVar("T")
_TYPE_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a table",
}


class _Locator:
    """Finds the line of a key path such as `sources[2].url` in TOML text."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line_of(self, key: str) -> int | None:
        parts = re.findall(r"([^.\[\]]+)(?:\[(\d+)\])?", key)
        start, end = 0, len(self.lines)
        header = self._dotted_header(parts)
        if header is not None:
            found, used = header
            if used == len(parts):
                return found + 1
            parts, start, end = parts[used:], found + 1, self._table_end(found)
            return self._walk(parts, start, end, top=False) or found + 1
        return self._walk(parts, start, end, top=True)

    def _dotted_header(self, parts: list[tuple[str, str]]) -> tuple[int, int] | None:
        """A `[a.b]` table header for the longest dotted prefix of the key, if there is one."""
        for used in range(len(parts), 1, -1):
            if any(index for _, index in parts[:used]):
                continue
            names = r"\s*\.\s*".join(re.escape(name) for name, _ in parts[:used])
            pattern = re.compile(rf"\s*\[\s*{names}\s*\]")
            for number, line in enumerate(self.lines):
                if pattern.match(line):
                    return number, used
        return None

    def _walk(self, parts: list[tuple[str, str]], start: int, end: int, *, top: bool) -> int | None:
        found: int | None = None
        for depth, (name, index) in enumerate(parts):
            hit = self._find(name, int(index) if index else None, start, end, top=top and not depth)
            if hit is None:
                break
            found = hit
            start, end = hit + 1, self._table_end(hit)
        return None if found is None else found + 1

    def _find(self, name: str, index: int | None, start: int, end: int, *, top: bool) -> int | None:
        key = re.escape(name)
        array = re.compile(rf"\s*\[\[\s*{key}\s*\]\]")
        table = re.compile(rf"\s*\[\s*{key}\s*\]")
        assignment = re.compile(rf"\s*\"?{key}\"?\s*=")
        count = 0
        for number in range(start, end):
            line = self.lines[number]
            if assignment.match(line) or (top and table.match(line)):
                return number
            if top and array.match(line):
                if index is None or count == index:
                    return number
                count += 1
        return None

    def _table_end(self, line: int) -> int:
        if not re.match(r"\s*\[", self.lines[line]):
            return line + 1
        for number in range(line + 1, len(self.lines)):
            if re.match(r"\s*\[", self.lines[number]):
                return number
        return len(self.lines)


class TomlContext:
    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.locator = _Locator(text)

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, key=key, line=self.locator.line_of(key))


class TomlTable:
    """A TOML table read key by key; keys left unread at `finish()` are typos."""

    def __init__(self, data: Any, key: str, context: TomlContext) -> None:
        if not isinstance(data, dict):
            raise context.error(key, f"must be a table, not {_type_name(data)}")
        self.data: dict[str, Any] = dict(data)
        self.key = key
        self.context = context
        self.allowed: list[str] = []

    def path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def error(self, name: str, message: str) -> ConfigError:
        return self.context.error(self.path(name), message)

    def get(self, name: str, expected: type[T], default: T | None = None) -> T:
        self.allowed.append(name)
        if name not in self.data:
            if default is None:
                raise self.error(name, "is required")
            return default
        value = self.data.pop(name)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise self.error(name, f"must be {_type_label(expected)}, not {_type_name(value)}")
        return value

    def string(self, name: str, default: str | None = None) -> str:
        value = self.get(name, str, default)
        if not value.strip():
            raise self.error(name, "must not be empty")
        return value

    def strings(self, name: str, default: Sequence[str] | None = None) -> tuple[str, ...]:
        value = self.get(name, list, None if default is None else list(default))
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                key = f"{self.path(name)}[{index}]"
                raise self.context.error(key, "must be a non-empty string")
        return tuple(value)

    def duration(self, name: str, default: timedelta | None = None) -> timedelta:
        self.allowed.append(name)
        if name not in self.data:
            if default is None:
                raise self.error(name, "is required")
            return default
        return self.convert(name, parse_duration, self.get(name, str))

    def convert(self, name: str, parse: Callable[[str], T], value: str) -> T:
        try:
            return parse(value)
        except ValueError as exc:
            raise self.error(name, str(exc)) from None

    def finish(self) -> None:
        for name in self.data:
            hint = f" (known keys: {', '.join(sorted(set(self.allowed)))})" if self.allowed else ""
            raise self.error(name, f"unknown key{hint}")


def _type_name(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _type_label(expected: type) -> str:
    return _TYPE_NAMES.get(expected, expected.__name__)


def load_toml(text: str, file: str) -> dict[str, Any]:
    simple = read_simple(text)
    if simple is not None:
        return simple
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        line = int(match.group(1)) if match else None
        column = int(match.group(2)) if match else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        raise ConfigError(
            f"not valid TOML: {message}", file=file, line=line, column=column
        ) from None

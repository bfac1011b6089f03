"""What a reload changes (pure): two configs compared, and the daemon's reload outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from monitor.config.schema import Config, Rule, Source, Target

__all__ = ["ConfigChanges", "ReloadStatus", "diff_configs"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Changed:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self, noun: str) -> str:
        parts = []
        for sign, names in (("+", self.added), ("-", self.removed), ("~", self.changed)):
            if names:
                shown = ", ".join(names[:5]) + (f", ... ({len(names)})" if len(names) > 5 else "")
                parts.append(f"{sign}{len(names)} ({shown})")
        return f"{noun} " + " ".join(parts) if parts else ""


@dataclass(frozen=True, slots=True)
class ConfigChanges:
    sources: Changed
    rules: Changed
    targets: Changed
    settings: tuple[str, ...]  # names of [monitor] keys whose value changed

    def summary(self) -> str:
        parts = [
            self.sources.describe("sources"),
            self.rules.describe("rules"),
            self.targets.describe("targets"),
        ]
        if self.settings:
            parts.append("settings ~" + ", ".join(self.settings))
        text = "; ".join(p for p in parts if p)
        return text or "no changes"


def _compare(old: Mapping[str, T], new: Mapping[str, T], same: Callable[[T, T], bool]) -> Changed:
    return Changed(
        added=tuple(n for n in new if n not in old),
        removed=tuple(n for n in old if n not in new),
        changed=tuple(n for n in new if n in old and not same(old[n], new[n])),
    )


def _same_rule(a: Rule, b: Rule) -> bool:
    return (
        a.query.canonical() == b.query.canonical()
        and (a.notify, a.sources, a.languages, a.digest, a.follow_up, a.file)
        == (b.notify, b.sources, b.languages, b.digest, b.follow_up, b.file)
        and a.templates == b.templates
    )


def _same_target(a: Target, b: Target) -> bool:
    return (a.url, a.max_per_hour, a.quiet_hours, a.markup) == (
        b.url, b.max_per_hour, b.quiet_hours, b.markup
    ) and a.templates == b.templates  # fmt: skip


def _same_source(a: Source, b: Source) -> bool:
    return a == b


def diff_configs(old: Config, new: Config) -> ConfigChanges:
    settings = tuple(
        name
        for name in old.settings.__slots__
        if getattr(old.settings, name) != getattr(new.settings, name)
    )
    return ConfigChanges(
        sources=_compare(
            {s.name: s for s in old.sources}, {s.name: s for s in new.sources}, _same_source
        ),
        rules=_compare({r.name: r for r in old.rules}, {r.name: r for r in new.rules}, _same_rule),
        targets=_compare(dict(old.targets), dict(new.targets), _same_target),
        settings=settings,
    )


@dataclass
class ReloadStatus:
    """The outcome of the last reload, owned by the running daemon: `ok` (None before any
    reload), when, what changed or why it failed. Listeners (the metrics) are called with
    (ok, at) after each reload; one that raises is logged and the others still run."""

    ok: bool | None = None
    at: datetime | None = None
    summary: str = ""
    error: str | None = None
    count: int = 0
    listeners: list[Callable[[bool, datetime], None]] = field(default_factory=list)

    def on_reload(self, callback: Callable[[bool, datetime], None]) -> None:
        self.listeners.append(callback)

    def record(self, ok: bool, at: datetime, summary: str = "", error: str | None = None) -> None:
        self.ok, self.at, self.summary, self.error = ok, at, summary, error
        self.count += 1
        for listener in list(self.listeners):
            try:
                listener(ok, at)
            except Exception:
                log.exception("a reload listener failed")

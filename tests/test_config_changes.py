"""What a reload changes (pure), the reload outcome, and a changed interval's due time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from monitor.config.changes import ReloadStatus, diff_configs
from monitor.config.files import load_config
from monitor.runtime.reloading import Reloader
from monitor.state import SourceState

MAIN = """
[monitor]
rules = ["rules.toml"]
{extra}
[targets]
hook = "json://127.0.0.1:9/{path}"
other = "json://127.0.0.1:9/other"

[[sources]]
name = "a"
url = "https://a.example/rss"
interval = "{interval}"

[[sources]]
name = "{second}"
url = "https://b.example/rss"
"""
RULES = '[[rules]]\nname = "r"\nquery = "{query}"\nnotify = ["hook"]\n'


def config(tmp: Path, **values: str) -> Any:
    fields = {"extra": "", "path": "x", "interval": "15m", "second": "b", "query": "Japan"}
    fields.update(values)
    (tmp / "config.toml").write_text(MAIN.format(**fields), encoding="utf-8")
    (tmp / "rules.toml").write_text(RULES.format(**fields), encoding="utf-8")
    return load_config(str(tmp / "config.toml"), {})


def test_the_summary_names_what_was_added_removed_and_changed(tmp_path: Path) -> None:
    old = config(tmp_path)
    same = config(tmp_path)
    new = config(tmp_path, interval="1h", second="c", query="Japan OR Korea", path="y",
                 extra='log_format = "json"')  # fmt: skip

    assert diff_configs(old, same).summary() == "no changes"
    assert diff_configs(old, new).summary() == (
        "sources +1 (c) -1 (b) ~1 (a); rules ~1 (r); targets ~1 (hook); settings ~log_format"
    )


def test_reload_status_calls_every_listener_even_after_one_fails() -> None:
    status = ReloadStatus()
    seen: list[tuple[bool, datetime]] = []

    def broken(ok: bool, at: datetime) -> None:
        raise RuntimeError("metrics down")

    status.on_reload(broken)
    status.on_reload(lambda ok, at: seen.append((ok, at)))
    at = datetime(2026, 12, 2, tzinfo=UTC)
    status.record(False, at, error="bad")
    status.record(True, at, "sources +1 (c)")

    assert seen == [(False, at), (True, at)]
    assert (status.ok, status.summary, status.error, status.count) == (True, "sources +1 (c)",
                                                                       None, 2)  # fmt: skip


def test_a_shorter_interval_counts_from_the_last_fetch_not_the_old_schedule(
    tmp_path: Path,
) -> None:
    loaded = config(tmp_path, interval="1h")
    old = loaded.sources[0]
    new = replace(old, interval=timedelta(minutes=10))
    last = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    state = SourceState("a", old.url, last_fetch_at=last, next_fetch_at=last + old.interval)
    service = SimpleNamespace(state_of=lambda s: state, next_due=lambda s: state.next_fetch_at)
    fake = SimpleNamespace(runner=SimpleNamespace(service=service))

    assert Reloader._due_after_change(fake, old, new) == last + timedelta(minutes=10)  # type: ignore[arg-type]
    backing_off = replace(state, error_count=2)
    service.state_of = lambda s: backing_off
    assert Reloader._due_after_change(fake, old, new) == last + old.interval  # type: ignore[arg-type]
    floor = replace(state, not_before=last + timedelta(minutes=30))
    service.state_of = lambda s: floor
    assert Reloader._due_after_change(fake, old, new) == last + timedelta(minutes=30)  # type: ignore[arg-type]

"""`monitor status`: each source's health, failing and disabled first, dead deliveries,
recent matches and, on a cluster, the instances and who polled each source."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import TYPE_CHECKING

from monitor.cli.common import EXIT_OK, config_of

if TYPE_CHECKING:
    from monitor.config.schema import Config, Source
    from monitor.ports import QueryStore
    from monitor.state import InstanceInfo, SourceState

__all__ = ["status"]


def status(args: argparse.Namespace) -> int:
    from monitor import daemon

    config = config_of(args)
    with contextlib.closing(daemon.open_store(config)) as store:
        from monitor.ports import utc_now
        from monitor.service.websub import push_states

        return _print_status(args, config, store, push_states(store, utc_now()))


def _print_status(
    args: argparse.Namespace, config: Config, store: QueryStore, pushes: dict[str, str]
) -> int:
    from monitor.model import format_time
    from monitor.service import queries

    states = {state.name: state for state in queries.source_states(store)}
    pairs = [(source, states.get(source.name)) for source in config.sources]
    pairs.sort(key=lambda pair: (_health_rank(pair[1]), pair[0].name))
    rows = [{**_status_row(s, st), "push": pushes.get(s.name, "none")} for s, st in pairs]
    instances = store.instances()
    _add_pollers(rows, store.polled_by(), instances)
    if args.json:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return EXIT_OK
    columns: tuple[str, ...] = ("source", "last_fetch", "result", "next_check", "errors",
                                "items_seen")  # fmt: skip
    if pushes or (config.web and config.web.public_url):  # WebSub in use
        columns += ("push",)
    if any(row["polled_by"] for row in rows):
        columns += ("polled_by",)
    table = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in table)]) for i, c in enumerate(columns)]
    for line in [list(columns), *table]:
        sys.stdout.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) + "\n")
    if instances:
        _print_instances(instances)
    dead = queries.dead_deliveries(store)
    if dead:
        sys.stdout.write("\nundelivered (gave up):\n")
        for delivery in dead:
            sys.stdout.write(
                f"  {delivery.target}: {delivery.title}\n    {delivery.last_error}"
                f" after {delivery.attempts} attempts\n"
            )
    recent = queries.recent_matches(store)
    if recent:
        sys.stdout.write("\nrecent matches:\n")
        for record, title, url in recent:
            when = format_time(record.matched_at)
            sys.stdout.write(f"  {when}  {record.rule}: {title}\n    {url}\n")
    return EXIT_OK


def _add_pollers(
    rows: list[dict[str, object]], polled_by: dict[str, str], instances: list[InstanceInfo]
) -> None:
    """Each source's row names the instance that polled it last (a cluster on PostgreSQL;
    None on SQLite), with that instance's host, pid, heartbeat and leases."""
    from monitor.model import format_time

    known = {i.name: i for i in instances}
    for row in rows:
        name = polled_by.get(str(row["source"]))
        info = known.get(name) if name else None
        row["polled_by"] = None if name is None else {
            "instance": name,
            "host": info.host if info else None,
            "pid": info.pid if info else None,
            "last_heartbeat": format_time(info.heartbeat_at) if info else None,
            "leases": info.leases if info else None,
            "running": info is not None and info.stopped_at is None,
        }  # fmt: skip


def _cell(value: object) -> str:
    if isinstance(value, dict):
        return str(value["instance"])
    return "-" if value is None else str(value)


def _print_instances(instances: list[InstanceInfo]) -> None:
    from monitor.model import format_time

    sys.stdout.write("\ninstances:\n")
    columns = ("instance", "host", "pid", "last_heartbeat", "leases", "state")
    table = [
        [i.name, i.host, str(i.pid), format_time(i.heartbeat_at) or "-", str(i.leases),
         "stopped" if i.stopped_at else "running"]
        for i in instances
    ]  # fmt: skip
    widths = [max([len(c), *(len(r[n]) for r in table)]) for n, c in enumerate(columns)]
    for line in [list(columns), *table]:
        sys.stdout.write("  " + "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True))
                         + "\n")  # fmt: skip


def _health_rank(state: SourceState | None) -> tuple[int, int]:
    """Disabled sources first, then by consecutive errors, most first."""
    if state is None:
        return (1, 0)
    return (0 if state.disabled else 1, -state.error_count)


def _status_row(source: Source, state: SourceState | None) -> dict[str, object]:
    from monitor.model import format_time
    from monitor.state import SourceState

    state = state or SourceState(source.name, source.url, last_result="never fetched")
    due = [t for t in (state.next_fetch_at, state.not_before) if t is not None]
    return {
        "source": source.name,
        "url": state.fetch_url or source.url,
        "enabled": source.enabled and not state.disabled,
        "last_fetch": format_time(state.last_fetch_at),
        "last_ok": format_time(state.last_ok_at),
        "result": state.disabled or state.last_result,
        "next_check": None
        if state.disabled or not source.enabled
        else format_time(max(due, default=None)),
        "errors": state.error_count,
        "failing_since": format_time(state.failing_since),
        "items_seen": state.items_seen,
    }

"""The `monitor` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from monitor import __version__, daemon
from monitor.config.durations import format_duration, parse_duration
from monitor.config.files import default_config_path, load_config, load_rules_file
from monitor.config.schema import Config, Rule, Source
from monitor.errors import ConfigError, MonitorError
from monitor.model import Article, format_time
from monitor.ports import QueryStore, utc_now
from monitor.rules import RuleSyntaxError, compile_query
from monitor.rules.presearch import COMPILED as PRESEARCH_COMPILED
from monitor.service import queries
from monitor.state import InstanceInfo, SourceState

__all__ = ["main"]

EXIT_OK, EXIT_NOTHING, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor", description="Watch news feeds and pages; alert on rule matches."
    )
    parser.add_argument("--version", action="version", version=f"news-monitor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "-c", "--config", help="config file (default: $MONITOR_CONFIG, else ./config.toml)"
        )
        return sub

    run = with_config(commands.add_parser("run", help="run the daemon in the foreground"))
    run.add_argument("--once", action="store_true", help="one full cycle, then exit")
    with_config(commands.add_parser("check", help="validate config and rules"))
    match = with_config(commands.add_parser("match", help="test a query or rules on articles"))
    match.add_argument("query", nargs="?", help="a rule query, e.g. 'Japan AND North Korea'")
    match.add_argument("--rules", metavar="FILE", help="a rules file instead of a QUERY")
    match.add_argument("locations", nargs="*", metavar="PATH|URL", help="feeds, pages, URLs")
    match.add_argument("--since", metavar="DURATION", help="also match stored articles this recent")
    match.add_argument("--json", action="store_true", help="one JSON object per match")
    preview = commands.add_parser("preview", help="print the normalized articles")
    preview.add_argument("locations", nargs="+", metavar="PATH|URL")
    preview.add_argument("--json", action="store_true", help="one JSON object a line")
    preview.add_argument("--source", help="the source name to give the articles")
    preview.add_argument("--saved-from", metavar="URL", help="the URL saved files came from")
    test = with_config(commands.add_parser("notify-test", help="send a test message"))
    test.add_argument("target", help="a target name from [targets]")
    status = with_config(commands.add_parser("status", help="sources' health, recent matches"))
    status.add_argument("--json", action="store_true", help="one JSON object a source")
    store = commands.add_parser("store", help="move state between databases")
    store_commands = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    copy = store_commands.add_parser(
        "copy", help="copy all state FROM a database TO a new one (SQLite file or postgresql://)"
    )
    copy.add_argument("source", metavar="FROM", help="a SQLite path or a postgresql:// URL")
    copy.add_argument("destination", metavar="TO", help="an empty or new database")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"monitor: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (MonitorError, OSError) as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config or default_config_path(os.environ))


def _run(args: argparse.Namespace) -> int:
    config = _config(args)
    daemon.validate(config)
    return daemon.run(config, once=args.once)


def _check(args: argparse.Namespace) -> int:
    config = _config(args)
    daemon.validate(config)
    out = sys.stdout
    out.write(f"{config.file}: OK\n")
    out.write(f"database: {config.settings.database}\n")
    out.write(f"sources ({len(config.sources)}):\n")
    for source in config.sources:
        state = "" if source.enabled else " (disabled)"
        out.write(
            f"  {source.name}: {source.url} every {format_duration(source.interval)}{state}\n"
        )
    out.write(f"targets ({len(config.targets)}):\n")
    for name, described in queries.describe_targets(daemon.notifier(config), config).items():
        out.write(f"  {name}: {described}\n")
    out.write(f"rules ({len(config.rules)}):\n")
    for rule in config.rules:
        out.write(f"  {rule.name}: {rule.query.canonical()}\n")
        out.write(f"    -> {', '.join(rule.notify)}  ({rule.file})\n")
    for name, warning in queries.rule_warnings(config):
        sys.stderr.write(f"warning: rule {name}: {warning}\n")
    if not PRESEARCH_COMPILED:
        sys.stderr.write(
            "note: installed without a C compiler, so the rule presearch runs in Python: "
            "matching thousands of rules is slower (docs/benchmarks.md)\n"
        )
    return EXIT_OK


def _match(args: argparse.Namespace) -> int:
    rules = _rules_for_match(args)
    if not args.locations and not args.since:
        raise ConfigError("give PATH or URL arguments, or --since to match stored articles")
    articles = _load(args.locations) if args.locations else []
    found = queries.match_articles(articles, rules)
    total = len(articles)
    if args.since:
        since = parse_duration(args.since)
        with contextlib.closing(daemon.open_store(_config(args))) as store:
            count, stored = queries.stored_articles(store, since, utc_now())
            progress = _Progress(count, sys.stderr) if sys.stderr.isatty() else None
            found += queries.match_articles(stored, rules, progress)
            total += count
            if progress is not None:
                progress.done()
    for match in found:
        sys.stdout.write(_match_json(match) if args.json else _match_text(match))
    if not args.json:
        sys.stderr.write(f"{len(found)} matches in {total} articles\n")
    return EXIT_OK if found else EXIT_NOTHING


def _match_json(match: queries.MatchFound) -> str:
    line = {
        "rule": match.rule,
        "url": match.article.url,
        "title": match.article.title,
        "terms": list(match.terms),
        "matched": match.matched,
        "snippet": match.snippet,
        "source": match.article.source,
        "published": format_time(match.article.published),
        "id": match.article.id,
    }
    return json.dumps(line, ensure_ascii=False) + "\n"


def _match_text(match: queries.MatchFound) -> str:
    return (
        f"{match.rule}: {match.article.title}\n  {match.article.url}\n"
        f"  matched: {match.matched}\n  {match.snippet}\n"
    )


class _Progress:
    """A one-line progress count on a terminal for backtests over many stored articles."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total = max(total, 1)
        self.out = out

    def __call__(self, count: int) -> None:
        if count % 200 == 0 or count == self.total:
            width = 30
            filled = width * count // self.total
            bar = "#" * filled + "." * (width - filled)
            self.out.write(f"\r[{bar}] {count}/{self.total} articles")
            self.out.flush()

    def done(self) -> None:
        self.out.write("\n")


def _rules_for_match(args: argparse.Namespace) -> list[Rule]:
    if args.rules:
        if args.query:
            args.locations.insert(0, args.query)
        return load_rules_file(args.rules)
    if not args.query:
        raise ConfigError("give a QUERY or --rules FILE")
    try:
        query = compile_query(args.query)
    except RuleSyntaxError as exc:
        raise ConfigError(exc.message, key="query", detail=exc.pointer(args.query)) from None
    return [Rule("query", query, ())]


def _load(
    locations: list[str], *, source: str | None = None, saved_from: str | None = None
) -> list[Article]:
    return queries.load_articles(
        locations, source=source, saved_from=saved_from, fetcher_factory=daemon.new_fetcher
    )


def _preview(args: argparse.Namespace) -> int:
    articles = _load(args.locations, source=args.source, saved_from=args.saved_from)
    for article in articles:
        if args.json:
            sys.stdout.write(json.dumps(article.to_json(), ensure_ascii=False) + "\n")
        else:
            _print_article(article, sys.stdout)
    return EXIT_OK


def _print_article(article: Article, out: TextIO) -> None:
    out.write(f"# {article.title}\n")
    facts = {
        "url": article.url,
        "source": article.source,
        "published": format_time(article.published) or "",
        "updated": format_time(article.updated) or "",
        "section": " › ".join(article.section),
        "authors": ", ".join(article.authors),
        "language": article.language or "",
        "tags": ", ".join(article.tags),
    }
    for key, value in facts.items():
        if value:
            out.write(f"{key}: {value}\n")
    if article.lede:
        out.write(f"\n{article.lede}\n")
    for block in article.body:
        prefix = {"heading": "## ", "quote": "> ", "list": "- "}.get(block.kind, "")
        out.write(f"\n{prefix}{block.text}\n")
    for link in article.related:
        out.write(f"related: {link.title} <{link.url}>\n")
    out.write("\n")


def _notify_test(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.target not in config.targets:
        known = ", ".join(sorted(config.targets)) or "none"
        raise ConfigError(f"unknown target {args.target!r} (targets: {known})", file=config.file)
    result = queries.send_test(daemon.notifier(config), args.target, utc_now())
    if result.ok:
        print(f"sent a test message to {args.target}")
        return EXIT_OK
    print(f"monitor: {result.error}", file=sys.stderr)
    return EXIT_NOTHING


def _status(args: argparse.Namespace) -> int:
    config = _config(args)
    with contextlib.closing(daemon.open_store(config)) as store:
        return _print_status(args, config, store)


def _print_status(args: argparse.Namespace, config: Config, store: QueryStore) -> int:
    states = {state.name: state for state in queries.source_states(store)}
    pairs = [(source, states.get(source.name)) for source in config.sources]
    pairs.sort(key=lambda pair: (_health_rank(pair[1]), pair[0].name))
    rows = [_status_row(source, state) for source, state in pairs]
    instances = store.instances()
    _add_pollers(rows, store.polled_by(), instances)
    if args.json:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return EXIT_OK
    columns: tuple[str, ...] = ("source", "last_fetch", "result", "next_check", "errors",
                                "items_seen")  # fmt: skip
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


def _store(args: argparse.Namespace) -> int:
    """`monitor store copy FROM TO`."""
    copied = daemon.copy_store(args.source, args.destination)
    rows = ", ".join(f"{count} {table}" for table, count in copied.items())
    print(f"copied {rows}")
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _run,
    "check": _check,
    "match": _match,
    "preview": _preview,
    "notify-test": _notify_test,
    "status": _status,
    "store": _store,
}

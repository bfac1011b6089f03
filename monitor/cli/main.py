"""The `monitor` command line: the parser, the dispatch, and the commands that read and
match articles (`run`, `check`, `match`, `preview`, `notify-test`)."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TextIO

from monitor import __version__
from monitor.cli import admin
from monitor.cli.common import EXIT_NOTHING, EXIT_OK, EXIT_USAGE
from monitor.cli.common import config_of as _config
from monitor.cli.status import status
from monitor.errors import ConfigError, MonitorError

if TYPE_CHECKING:
    from monitor.config.schema import Rule
    from monitor.model import Article
    from monitor.ports import ClosingFetcher
    from monitor.rules import Document, Explanation
    from monitor.service.batch import LocationReading

# Each command imports what it uses when it runs (docs/benchmarks.md, "Start-up"): `--help`
# needs none of the libraries, `check` and `match` not the daemon's scheduler and story
# grouping.

__all__ = ["main"]

_MATCH_CHUNK = 32
"""Articles `match` hands to a core at a time."""
_FORK_LIMIT_MB = 200
"""`match` matches on two cores while its own memory is at most this when it forks."""


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
    run.add_argument("--log-format", choices=("text", "json"), help="default: [monitor] log_format")
    run.add_argument("--log-level", type=_log_level, metavar="LEVEL",
                     help="debug, info (default), warning, error")  # fmt: skip
    with_config(commands.add_parser("check", help="validate config and rules"))
    match = with_config(commands.add_parser("match", help="test a query or rules on articles"))
    match.add_argument("query", nargs="?", help="a rule query, e.g. 'Japan AND North Korea'")
    match.add_argument("--rules", metavar="FILE", help="a rules file instead of a QUERY")
    match.add_argument("locations", nargs="*", metavar="PATH|URL", help="feeds, pages, URLs")
    match.add_argument("--since", metavar="DURATION", help="also match stored articles this recent")
    match.add_argument("--json", action="store_true", help="one JSON object per match")
    match.add_argument(
        "--snippets", action="store_true", help="with --json: add each match's marked snippet"
    )
    preview = commands.add_parser("preview", help="print the normalized articles")
    preview.add_argument("locations", nargs="+", metavar="PATH|URL")
    preview.add_argument("--json", action="store_true", help="one JSON object a line")
    preview.add_argument("--source", help="the source name to give the articles")
    preview.add_argument("--saved-from", metavar="URL", help="the URL saved files came from")
    test = with_config(commands.add_parser("notify-test", help="send a test message"))
    test.add_argument("target", help="a target name from [targets]")
    status = with_config(commands.add_parser("status", help="sources' health, recent matches"))
    status.add_argument("--json", action="store_true", help="one JSON object a source")
    _opml_parser(commands, with_config)
    health = with_config(
        commands.add_parser("healthcheck", help="exit 0 if the running daemon is ready")
    )
    health.add_argument("--url", help="the daemon's /readyz (default: from [web] listen)")
    health.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    store = commands.add_parser("store", help="move state between databases")
    store_commands = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    copy = store_commands.add_parser(
        "copy", help="copy all state FROM a database TO a new one (SQLite file or postgresql://)"
    )
    copy.add_argument("source", metavar="FROM", help="a SQLite path or a postgresql:// URL")
    copy.add_argument("destination", metavar="TO", help="an empty or new database")
    return parser


def _opml_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
) -> None:
    opml = commands.add_parser("opml", help="import or export OPML subscription lists")
    actions = opml.add_subparsers(dest="opml_command", required=True, metavar="ACTION")
    into = with_config(actions.add_parser("import", help="OPML to [[sources]] TOML"))
    into.add_argument("file", metavar="FILE", help="an OPML export of a feed reader")
    into.add_argument("-o", "--output", metavar="OUT.toml", help="append to this file")
    with_config(actions.add_parser("export", help="the configured sources as OPML 2.0"))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:
        # The reader went away (`monitor match ... | head`): stop quietly, as a tool killed
        # by SIGPIPE would, and let nothing more reach the closed pipe at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + signal.SIGPIPE
    except ConfigError as exc:
        _fail(args, f"config error: {exc}", exc)
        return EXIT_USAGE
    except (MonitorError, OSError) as exc:
        _fail(args, str(exc), exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _fail(args: argparse.Namespace, text: str, exc: Exception) -> None:
    """The one line an error gives: a JSON log line when `run` logs JSON, else text."""
    from monitor.service import logs

    if args.command == "run" and (
        getattr(args, "log_format", None) == "json" or logs.current_format() == "json"
    ):
        extra = {}
        if isinstance(exc, ConfigError):
            extra = {"file": exc.file, "key": exc.key, "line": exc.line}
        logs.emit_json("error", "monitor", text, extra)
        return
    print(f"monitor: {text}", file=sys.stderr)


def _log_level(text: str) -> str:
    if text.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a log level (debug, info, warning, error)"
        )
    return text.upper()


def _run(args: argparse.Namespace) -> int:
    from monitor import daemon
    from monitor.config.files import default_config_path, load_config

    path = args.config or default_config_path(os.environ)
    config = load_config(path)
    daemon.validate(config)
    options = daemon.LogOptions(args.log_format, args.log_level)
    return daemon.run(config, once=args.once, path=path, log_options=options)


def _check(args: argparse.Namespace) -> int:
    from monitor.config.durations import format_duration
    from monitor.rules import presearch
    from monitor.runtime import checks
    from monitor.service import queries

    config = _config(args)
    checks.validate(config)
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
    for name, described in queries.describe_targets(checks.notifier(config), config).items():
        out.write(f"  {name}: {described}\n")
    out.write(f"rules ({len(config.rules)}):\n")
    for rule in config.rules:
        out.write(f"  {rule.name}: {rule.query.canonical()}\n")
        out.write(f"    -> {', '.join(rule.notify)}  ({rule.file})\n")
    for name, warning in queries.rule_warnings(config):
        sys.stderr.write(f"warning: rule {name}: {warning}\n")
    if not presearch.COMPILED:
        sys.stderr.write(
            "note: installed without a C compiler, so the rule presearch runs in Python: "
            "matching thousands of rules is slower (docs/benchmarks.md)\n"
        )
    return EXIT_OK


def _match(args: argparse.Namespace) -> int:
    # An article's matches (a thousand explanations at 100k rules) live while they are
    # written: a young collection every 700 allocations would walk them again and again
    # (7% of matching at 100k rules). Refcounting frees them; cycles are rare here.
    threshold = gc.get_threshold()
    gc.set_threshold(50_000, *threshold[1:])
    try:
        return _match_batch(args)
    finally:
        gc.set_threshold(*threshold)


def _match_batch(args: argparse.Namespace) -> int:
    from monitor.config.durations import parse_duration
    from monitor.matching.intake import Matcher
    from monitor.ports import utc_now
    from monitor.service import batch, queries, workers

    if args.rules and args.query:
        args.locations.insert(0, args.query)
    if not args.locations and not args.since:
        _rules_for_match(args)  # its errors first, as when there are locations
        raise ConfigError("give PATH or URL arguments, or --since to match stored articles")
    # Files are read in a worker process from now on, while the rules compile.
    reading = batch.read_locations(
        args.locations, fetcher_factory=_new_fetcher, ahead=2 if args.locations else 0
    )
    with reading:
        # Compiling rules makes millions of objects that all live to the end: the collector
        # would walk them again and again as they pile up (a fifth of the compile time at
        # 100k rules), then at every collection while matching. It is off while they are
        # made, and they are frozen out of its sight after.
        gc.disable()
        try:
            matcher = Matcher(_rules_for_match(args))
        finally:
            gc.freeze()
            gc.enable()
        out = sys.stdout
        write = _JsonLines(snippets=args.snippets).lines if args.json else _text_lines
        tally = _Tally()

        def lines_of(articles: list[Article]) -> tuple[str, int]:
            groups = list(queries.match_groups(articles, matcher))
            return "".join([write(*group) for group in groups]), sum(len(g[2]) for g in groups)

        # Matching takes both cores (every other chunk in a worker forked now, sharing the
        # compiled rules) for files, which are read ahead: a URL's matches are written as
        # soon as it is read, not after the next one is. The worker comes to copy what it
        # touches of this process, so not when that is large (100k rules).
        two_cores = (
            workers.can_fork()
            and workers.resident_mb() <= _FORK_LIMIT_MB
            and not batch.names_urls(args.locations)
        )
        size = _MATCH_CHUNK if two_cores else 1
        chunks = _chunks_of(reading, len(args.locations), tally, size)
        results = (
            workers.on_two_cores(lines_of, chunks)
            if two_cores
            else (lines_of(chunk) for chunk in chunks)
        )
        with contextlib.closing(results) as lines_and_counts:
            for lines, matches in lines_and_counts:
                tally.matches += matches
                out.write(lines)
                out.flush()
    if args.since:
        from monitor import daemon

        since = parse_duration(args.since)
        with contextlib.closing(daemon.open_store(_config(args))) as store:
            count, stored = queries.stored_articles(store, since, utc_now())
            progress = _Progress(count, sys.stderr) if sys.stderr.isatty() else None
            counted = _counted(stored, tally)
            for article, document, found in queries.match_groups(counted, matcher, progress):
                tally.matches += len(found)
                out.write(write(article, document, found))
                out.flush()
            if progress is not None:
                progress.done()
    if not args.json:
        sys.stderr.write(f"{tally.matches} matches in {tally.articles} articles\n")
    if args.locations and not tally.read and not args.since:
        return EXIT_USAGE
    return EXIT_OK if tally.matches else EXIT_NOTHING


class _Tally:
    """What a batch read: articles, matches, locations read and not."""

    __slots__ = ("articles", "failed", "matches", "read")

    def __init__(self) -> None:
        self.articles = self.matches = self.read = self.failed = 0


def _counted(articles: Iterable[Article], tally: _Tally) -> Iterator[Article]:
    for article in articles:
        tally.articles += 1
        yield article


def _read(
    locations: list[str], tally: _Tally, *, source: str | None, saved_from: str | None
) -> Iterator[Article]:
    from monitor.service import batch

    reading = batch.read_locations(
        locations, source=source, saved_from=saved_from, fetcher_factory=_new_fetcher
    )
    return _articles_of(reading, len(locations), tally)


def _articles_of(reading: LocationReading, count: int, tally: _Tally) -> Iterator[Article]:
    """The articles of each location as it is read (see `_chunks_of`)."""
    for chunk in _chunks_of(reading, count, tally, sys.maxsize):
        yield from chunk


def _chunks_of(
    reading: LocationReading, count: int, tally: _Tally, size: int
) -> Iterator[list[Article]]:
    """The articles of each location as it is read, in lists of at most `size`; an
    unreadable one is one line on stderr (`LOCATION: reason`), and a progress bar shows on a
    terminal for many locations."""
    from monitor.service.batch import Unreadable

    progress = (
        _Progress(count, sys.stderr, "locations") if count > 1 and sys.stderr.isatty() else None
    )
    with reading:
        for done, item in enumerate(reading, 1):
            if isinstance(item, Unreadable):
                tally.failed += 1
                if progress is not None:
                    progress.clear()
                sys.stderr.write(f"{item.location}: {item.reason}\n")
            else:
                tally.read += 1
                tally.articles += len(item.articles)
                for start in range(0, len(item.articles), size):
                    yield item.articles[start : start + size]
            if progress is not None:
                progress(done)
    if progress is not None:
        progress.done()


def _new_fetcher() -> ClosingFetcher:
    """The daemon's fetcher, for URLs (the daemon module is imported only then)."""
    from monitor import daemon

    return daemon.new_fetcher()


class _JsonLines:
    """`match --json` lines, the article's part encoded once for all its matches, each
    rule's name and each list of terms once for the run (strings go straight to the C
    string encoder json.dumps ends in)."""

    def __init__(self, *, snippets: bool) -> None:
        from json.encoder import encode_basestring

        from monitor.model import format_time
        from monitor.rules import mark_snippet

        self._format_time = format_time
        self._string = encode_basestring
        self.snippets = snippets
        self._mark = mark_snippet
        self._rules: dict[str, str] = {}
        self._terms: dict[tuple[str, ...], str] = {}

    def lines(
        self, article: Article, document: Document, found: list[tuple[str, Explanation]]
    ) -> str:
        """The lines of one article's matches."""
        string = self._string
        tail = (
            f', "url": {string(article.url)}, "title": {string(article.title)}'
            f', "source": {string(article.source)}'
            f', "published": {_json(self._format_time(article.published))}'
            f', "id": {string(article.id)}'
            + (', "title_generated": true' if article.title_generated else "")
            + ', "terms": '
        )
        rules, terms_json = self._rules, self._terms
        lines = []
        for name, why in found:
            rule = rules.get(name)
            if rule is None:
                rule = rules[name] = '{"rule": ' + string(name)
            terms = terms_json.get(why.terms)
            if terms is None:
                if len(terms_json) >= 250_000:
                    terms_json.clear()
                listed = ", ".join([string(term) for term in why.terms])
                terms = terms_json[why.terms] = f"[{listed}], " + '"matched": '
            if self.snippets:
                snippet = string(self._mark(document, why))
                matched = string(why.summary())
                lines.append(f'{rule}{tail}{terms}{matched}, "snippet": {snippet}}}\n')
            else:
                lines.append(f"{rule}{tail}{terms}{string(why.summary())}}}\n")
        return "".join(lines)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _text_lines(article: Article, document: Document, found: list[tuple[str, Explanation]]) -> str:
    from monitor.rules import mark_snippet

    return "".join(
        f"{name}: {article.title}\n  {article.url}\n"
        f"  matched: {why.summary()}\n  {mark_snippet(document, why)}\n"
        for name, why in found
    )


class _Progress:
    """A one-line progress bar on a terminal for batches: stored articles, many locations."""

    def __init__(self, total: int, out: TextIO, unit: str = "articles") -> None:
        self.total = max(total, 1)
        self.out = out
        self.unit = unit
        self.every = 200 if unit == "articles" else 1

    def __call__(self, count: int) -> None:
        if count % self.every == 0 or count == self.total:
            width = 30
            filled = width * min(count, self.total) // self.total
            bar = "#" * filled + "." * (width - filled)
            self.out.write(f"\r[{bar}] {count}/{self.total} {self.unit}")
            self.out.flush()

    def clear(self) -> None:
        """Blank the bar's line, so that a message can take it."""
        self.out.write("\r\x1b[K")

    def done(self) -> None:
        self.out.write("\n")


def _rules_for_match(args: argparse.Namespace) -> list[Rule]:
    from monitor.config.files import load_rules_file
    from monitor.config.schema import Rule
    from monitor.rules import RuleSyntaxError, compile_query

    if args.rules:
        return load_rules_file(args.rules)
    if not args.query:
        raise ConfigError("give a QUERY or --rules FILE")
    try:
        query = compile_query(args.query)
    except RuleSyntaxError as exc:
        raise ConfigError(exc.message, key="query", detail=exc.pointer(args.query)) from None
    return [Rule("query", query, ())]


def _preview(args: argparse.Namespace) -> int:
    tally = _Tally()
    out = sys.stdout
    for article in _read(args.locations, tally, source=args.source, saved_from=args.saved_from):
        if args.json:
            out.write(json.dumps(article.to_json(), ensure_ascii=False) + "\n")
        else:
            _print_article(article, out)
        out.flush()
    return EXIT_OK if tally.read or not tally.failed else EXIT_USAGE


def _print_article(article: Article, out: TextIO) -> None:
    from monitor.model import format_time

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
    from monitor.ports import utc_now
    from monitor.runtime import checks
    from monitor.service import queries

    config = _config(args)
    if args.target not in config.targets:
        known = ", ".join(sorted(config.targets)) or "none"
        raise ConfigError(f"unknown target {args.target!r} (targets: {known})", file=config.file)
    result = queries.send_test(checks.notifier(config), config.targets[args.target], utc_now())
    if result.ok:
        print(f"sent a test message to {args.target}")
        return EXIT_OK
    print(f"monitor: {result.error}", file=sys.stderr)
    return EXIT_NOTHING


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _run,
    "check": _check,
    "match": _match,
    "preview": _preview,
    "notify-test": _notify_test,
    "status": status,
    "opml": admin.opml,
    "healthcheck": admin.healthcheck,
    "store": admin.store,
}

"""The service-keeping commands: `opml import|export`, `healthcheck`, `store copy`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from monitor.cli.common import EXIT_NOTHING, EXIT_OK, config_of
from monitor.errors import ConfigError

__all__ = ["healthcheck", "opml", "store"]


def opml(args: argparse.Namespace) -> int:
    from monitor.config import opml
    from monitor.ports import utc_now

    if args.opml_command == "export":
        config = config_of(args)
        sources = opml.export_sources(config.sources, config.settings)
        sys.stdout.buffer.write(opml.export_opml(sources, utc_now(), "news-monitor sources"))
        return EXIT_OK
    return _opml_import(args)


def _opml_import(args: argparse.Namespace) -> int:
    from monitor.config import opml
    from monitor.config.files import append_text, existing_sources

    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=args.file) from None
    read = opml.read_opml(data)
    if read.lenient:
        sys.stderr.write(f"{args.file}: {read.lenient}; outlines read leniently\n")
    names, urls = existing_sources(args.config, os.environ, args.output)
    imported, skipped = opml.plan_import(read, names, urls)
    for item in [*read.skipped, *skipped]:
        sys.stderr.write(f"{args.file}: {item}\n")
    if not imported:
        empty = not read.subscriptions and not read.skipped
        why = " (no <outline> elements: is it an OPML file?)" if empty else ""
        sys.stderr.write(f"{args.file}: nothing to import{why}\n")
        return EXIT_NOTHING
    text = opml.sources_toml(imported, Path(args.file).name)
    if args.output:
        append_text(args.output, text)
    else:
        sys.stdout.write(text)
    where = f" to {args.output}" if args.output else ""
    sys.stderr.write(f"imported {len(imported)} sources{where}\n")
    return EXIT_OK


def healthcheck(args: argparse.Namespace) -> int:
    """Exit 0 when the daemon's /readyz says ready, 1 when not (or unreachable). With --url
    and no config file, no token is sent."""
    from monitor.config.files import default_config_path, load_web
    from monitor.web.probe import probe, readyz_url

    path = args.config or default_config_path(os.environ)
    if args.url is not None and args.config is None and not Path(path).exists():
        ready, why = probe(args.url, None, args.timeout)
    else:
        # Only [web]: a rules file with a mistake is the next reload's problem; the running
        # daemon still has its last good rules and is healthy.
        web = load_web(path)
        if web is None:
            raise ConfigError("no [web] section: the daemon serves no /readyz", file=path)
        if args.url is None and web.port == 0:
            raise ConfigError("listen has port 0: give --url", file=path, key="web.listen")
        url = args.url or readyz_url(web)
        ready, why = probe(url, web.auth_token, args.timeout)
    if not ready:
        print(f"monitor: not ready: {why}", file=sys.stderr)
        return EXIT_NOTHING
    return EXIT_OK


def store(args: argparse.Namespace) -> int:
    """`monitor store copy FROM TO`."""
    from monitor import daemon

    copied = daemon.copy_store(args.source, args.destination)
    rows = ", ".join(f"{count} {table}" for table, count in copied.items())
    print(f"copied {rows}")
    return EXIT_OK

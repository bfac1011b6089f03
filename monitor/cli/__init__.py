"""The `monitor` command line: main (the parser, the dispatch and the article commands: run,
check, match, preview, notify-test), status, admin (opml, healthcheck, store copy), common
(exit codes, reading the config). Each command imports what it uses when it runs, so
`monitor --help` loads none of the libraries.

The top layer: may import anything in monitor; nothing imports it.
"""

from monitor.cli.main import main

__all__ = ["main"]

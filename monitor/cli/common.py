"""What every command shares: exit codes and reading the config a command names."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.config.schema import Config

__all__ = ["EXIT_NOTHING", "EXIT_OK", "EXIT_USAGE", "config_of"]

EXIT_OK, EXIT_NOTHING, EXIT_USAGE = 0, 1, 2


def config_of(args: argparse.Namespace) -> Config:
    """The config `-c` names, else $MONITOR_CONFIG, else ./config.toml."""
    from monitor.config.files import default_config_path, load_config

    return load_config(args.config or default_config_path(os.environ))

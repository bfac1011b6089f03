"""Reading the config file and the rule files it names."""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from pathlib import Path

from monitor.config.schema import Config, Rule, Target, build_config, parse_main, parse_rules
from monitor.errors import ConfigError

__all__ = ["default_config_path", "load_config", "load_rules_file"]


def default_config_path(env: Mapping[str, str]) -> str:
    return env.get("MONITOR_CONFIG") or "config.toml"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=path) from None


def load_config(path: str, env: Mapping[str, str] | None = None) -> Config:
    """Load the main config and every rules file its `rules` globs name."""
    environment = os.environ if env is None else env
    base_dir = str(Path(path).parent)
    main = parse_main(_read(path), path, environment, base_dir)
    rules: list[Rule] = []
    for pattern in main.settings.rules:
        for rule_file in sorted(glob.glob(pattern)):
            rules.extend(parse_rules(_read(rule_file), rule_file, main.targets))
    return build_config(main, rules)


def load_rules_file(path: str, targets: Mapping[str, Target] | None = None) -> list[Rule]:
    """A rules file on its own (`monitor match --rules`); targets are checked when given."""
    return parse_rules(_read(path), path, targets)

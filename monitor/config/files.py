"""Reading the config file and the rule files it names."""

from __future__ import annotations

import glob
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from monitor.config.schema import (
    Config,
    Rule,
    Source,
    Target,
    WebSettings,
    build_config,
    parse_main,
    parse_rules,
    parse_sources,
    parse_web_only,
)
from monitor.errors import ConfigError

__all__ = [
    "append_text",
    "config_files",
    "default_config_path",
    "existing_sources",
    "load_config",
    "load_rules_file",
    "load_web",
]


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
    """Load the main config, every rules file its `rules` globs name and every sources
    file its `sources` globs name."""
    environment = os.environ if env is None else env
    base_dir = str(Path(path).parent)
    main = parse_main(_read(path), path, environment, base_dir)
    rules: list[Rule] = []
    for rule_file in config_files(main.settings.rules):
        rules.extend(parse_rules(_read(rule_file), rule_file, main.targets))
    taken = {source.name: path for source in main.sources}
    sources: list[Source] = []
    for source_file in config_files(main.settings.source_files):
        if Path(source_file).resolve() == Path(path).resolve():
            continue  # a glob that also matches the main file: its sources are read already
        found = parse_sources(_read(source_file), source_file, main.settings, taken)
        taken.update((source.name, source_file) for source in found)
        sources.extend(found)
    return build_config(main, rules, sources)


def load_web(path: str, env: Mapping[str, str] | None = None) -> WebSettings | None:
    """The main file's `[web]` table only (its listen and auth_token, ${VAR} expanded):
    no rules compiled, no other file read."""
    return parse_web_only(_read(path), path, os.environ if env is None else env)


def config_files(patterns: Sequence[str]) -> list[str]:
    """The files some globs name, each once, in sorted order per glob."""
    files: list[str] = []
    for pattern in patterns:
        for name in sorted(glob.glob(pattern)):
            if name not in files:
                files.append(name)
    return files


def load_rules_file(path: str, targets: Mapping[str, Target] | None = None) -> list[Rule]:
    """A rules file on its own (`monitor match --rules`); targets are checked when given."""
    return parse_rules(_read(path), path, targets)


def existing_sources(
    config: str | None, env: Mapping[str, str], output: str | None
) -> tuple[list[str], list[str]]:
    """Names and URLs already taken, for an OPML import: those of the config (`config`,
    else $MONITOR_CONFIG or ./config.toml if that exists) and of the file written to."""
    names: list[str] = []
    urls: list[str] = []
    path = config or default_config_path(env)
    if config or Path(path).exists():
        loaded = load_config(path, _AnyVariable(env))
        names += [source.name for source in loaded.sources]
        urls += [source.url for source in loaded.sources]
    if output and Path(output).exists():
        try:
            data = tomllib.loads(_read(output))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not TOML: {exc}", file=output) from None
        for table in data.get("sources", []):
            if isinstance(table, dict):
                names.append(str(table.get("name", "")))
                urls.append(str(table.get("url", "")))
    return names, urls


class _AnyVariable(Mapping[str, str]):
    """The environment, with a stand-in for any variable it lacks: an import only needs
    the config's sources, not the secrets its targets take from the environment."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def __getitem__(self, name: str) -> str:
        return self.env.get(name) or f"unset://{name}"

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)


def append_text(path: str, text: str) -> None:
    """Add text at the end of a file (made if missing), never overwriting what is there."""
    target = Path(path)
    existing = target.read_text(encoding="utf-8") if target.exists() else ""
    with target.open("a", encoding="utf-8") as out:
        if existing and not existing.endswith("\n"):
            out.write("\n")
        out.write(text)

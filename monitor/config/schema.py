"""Config and rule files: TOML text in, typed and validated objects out (no I/O)."""

from __future__ import annotations

import functools
import ipaddress
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor import __version__
from monitor.config.toml import TomlContext, TomlTable, load_toml
from monitor.delivery.markup import MARKUPS, Markup, markup_for
from monitor.errors import ConfigError
from monitor.rules import Query, RuleSyntaxError, compile_query

if TYPE_CHECKING:
    from monitor.delivery.templates import CompiledTemplate

__all__ = [
    "HOMEPAGE",
    "Config",
    "MainConfig",
    "ReadAs",
    "Rule",
    "Settings",
    "Source",
    "Target",
    "WebSettings",
    "build_config",
    "default_user_agent",
    "parse_main",
    "parse_rules",
    "parse_sources",
    "parse_web_only",
    "source_setting_error",
]

HOMEPAGE = "https://github.com/news-monitor/news-monitor"
ReadAs = Literal["auto", "feed", "page"]
"""How a source is read (its `kind` key): by its content, as a feed, or as a front page."""
READ_AS: tuple[ReadAs, ...] = ("auto", "feed", "page")
MIN_INTERVAL = timedelta(minutes=1)
MAX_ITEMS = 1000  # a feed's items read per poll, the newest, unless `max_items` says otherwise
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def default_user_agent() -> str:
    return f"news-monitor/{__version__} (+{HOMEPAGE})"


@dataclass(frozen=True, slots=True)
class Settings:
    database: str
    rules: tuple[str, ...]
    interval: timedelta
    backfill: timedelta
    user_agent: str
    failures_to: str | None = None
    failure_threshold: timedelta = timedelta(hours=24)
    give_up_after: timedelta = timedelta(hours=24)
    story_window: timedelta = timedelta(hours=48)
    retention: timedelta = timedelta(days=30)
    max_items: int = MAX_ITEMS
    source_files: tuple[str, ...] = ()
    """`sources`: globs of more files of `[[sources]]` tables, relative to the config."""
    log_format: str = "text"
    watch: bool = False
    """Reload when a config, rules or sources file changes (as SIGHUP does)."""


LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window, e.g. 22:00-07:00, in a time zone; it may wrap past midnight."""

    start: time
    end: time
    zone: str = "UTC"

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.zone)).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, moment: datetime) -> datetime:
        """The first moment after `moment` outside the window."""
        local = moment.astimezone(ZoneInfo(self.zone))
        end = datetime.combine(local.date(), self.end, tzinfo=local.tzinfo)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Templates:
    """A rule's or target's own title and body templates (None: the default)."""

    title: CompiledTemplate | None = None
    body: CompiledTemplate | None = None


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    url: str = field(repr=False)
    max_per_hour: int | None = None
    quiet_hours: QuietHours | None = None
    templates: Templates = field(default_factory=Templates)
    markup_override: Markup | None = None  # the `markup` key; None: by the URL's scheme

    @property
    def markup(self) -> Markup:
        """The markup this target's messages are written in (the `markup` key, else by its
        Apprise scheme)."""
        return self.markup_override or markup_for(self.url)


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    url: str
    interval: timedelta
    read_as: ReadAs = "auto"  # the `kind` key
    enabled: bool = True
    full_text: bool = False
    max_items: int = MAX_ITEMS
    group: str | None = None
    """The folder it came from (an OPML import's folders, "News/Asia"); OPML export uses it."""
    websub: bool = True
    """Subscribe to the hub the feed advertises (with `[web] public_url` set)."""


@dataclass(frozen=True, slots=True)
class Digest:
    """A rule delivered as one message per period: a cron `schedule` in `zone`."""

    schedule: str
    zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    query: Query
    notify: tuple[str, ...]
    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    file: str = ""
    digest: Digest | None = None
    templates: Templates = field(default_factory=Templates)
    follow_up: bool = True
    """Immediate rules: one coalesced "also reported by" message per story and target."""

    def applies_to(self, source: str, language: str | None) -> bool:
        if self.sources and not any(fnmatchcase(source, glob) for glob in self.sources):
            return False
        if self.languages and language is not None:
            primary = language.split("-")[0].lower()
            return primary in self.languages
        return True


@dataclass(frozen=True, slots=True)
class WebSettings:
    """`[web]`: the daemon's HTTP server (health, metrics, dashboard)."""

    host: str
    port: int
    auth_token: str | None = field(default=None, repr=False)
    public_url: str | None = None

    @property
    def loopback(self) -> bool:
        return _is_loopback(self.host)


@dataclass(frozen=True, slots=True)
class MainConfig:
    file: str
    settings: Settings
    targets: Mapping[str, Target]
    sources: tuple[Source, ...]
    web: WebSettings | None = None


@dataclass(frozen=True, slots=True)
class Config:
    file: str
    settings: Settings
    targets: Mapping[str, Target]
    sources: tuple[Source, ...]
    rules: tuple[Rule, ...]
    web: WebSettings | None = None


def expand_env(value: str, env: Mapping[str, str], where: Callable[[str], ConfigError]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise where(f"environment variable {name} is not set")
        return env[name]

    return _ENV_VAR.sub(replace, value)


def _check_name(table: TomlTable, name: str, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise table.error(name, f"{value!r} is not a valid name (letters, digits, - _ .)")
    return value


def _check_http_url(table: TomlTable, name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise table.error(name, f"{value!r} is not an http(s) URL")
    return value


def parse_main(text: str, file: str, env: Mapping[str, str], base_dir: str = ".") -> MainConfig:
    """Parse the main config file (`[monitor]`, `[targets]`, `[[sources]]`)."""
    context = TomlContext(file, text)
    root = TomlTable(load_toml(text, file), "", context)
    settings = _parse_settings(root.get("monitor", dict, {}), context, env, base_dir)
    targets = _parse_targets(root.get("targets", dict, {}), context, env)
    if settings.failures_to is not None and settings.failures_to not in targets:
        known = ", ".join(sorted(targets)) or "none configured"
        message = f"unknown target {settings.failures_to!r} (targets: {known})"
        raise context.error("monitor.failures_to", message)
    raw_sources = root.get("sources", list, [])
    sources = tuple(
        _parse_source(raw, f"sources[{index}]", context, settings)
        for index, raw in enumerate(raw_sources)
    )
    _reject_duplicates((s.name for s in sources), "sources[{}].name", context)
    web = _parse_web(root.get("web", dict), context, env) if "web" in root.data else None
    root.finish()
    return MainConfig(file=file, settings=settings, targets=targets, sources=sources, web=web)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_web_only(text: str, file: str, env: Mapping[str, str]) -> WebSettings | None:
    """Only the `[web]` table of a main config file (for `monitor healthcheck`, which must
    not fail on a rules or sources mistake the running daemon does not have)."""
    context = TomlContext(file, text)
    root = TomlTable(load_toml(text, file), "", context)
    return _parse_web(root.get("web", dict), context, env) if "web" in root.data else None


def _parse_web(raw: object, context: TomlContext, env: Mapping[str, str]) -> WebSettings:
    """`listen = "host:port"` (port 0: any free port); a non-loopback address needs a token."""
    table = TomlTable(raw, "web", context)
    listen = table.string("listen", "127.0.0.1:8421")
    host, _, port_text = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port_text.isdigit() or int(port_text) > 65535:
        raise table.error("listen", f"{listen!r} is not host:port (e.g. 127.0.0.1:8421)")
    token = None
    if "auth_token" in table.data:
        token = expand_env(
            table.string("auth_token"), env, functools.partial(table.error, "auth_token")
        )
        if len(token) < 16:
            raise table.error("auth_token", "must be at least 16 characters")
    public_url = None
    if "public_url" in table.data:
        public_url = _check_http_url(table, "public_url", table.string("public_url"))
    table.finish()
    web = WebSettings(host, int(port_text), token, public_url)
    if token is None and not web.loopback:
        raise table.error(
            "auth_token",
            f"required: listen {listen!r} is not a loopback address (set auth_token, or"
            " listen on 127.0.0.1)",
        )
    return web


def _parse_settings(
    raw: object, context: TomlContext, env: Mapping[str, str], base_dir: str
) -> Settings:
    table = TomlTable(raw, "monitor", context)
    database = table.string("database", "monitor.db")
    database = expand_env(database, env, functools.partial(table.error, "database"))
    if "://" not in database:
        database = posixpath.normpath(posixpath.join(base_dir, database))
    rules = tuple(
        posixpath.normpath(posixpath.join(base_dir, glob))
        for glob in table.strings("rules", ["rules/*.toml"])
    )
    interval = table.duration("interval", timedelta(minutes=15))
    if interval < MIN_INTERVAL:
        raise table.error("interval", "must be at least 1m (be polite to publishers)")
    backfill = table.duration("backfill", timedelta(hours=24))
    user_agent = table.string("user_agent", default_user_agent())
    failures_to = table.string("failures_to", "") if "failures_to" in table.data else None
    failure_threshold = table.duration("failure_threshold", timedelta(hours=24))
    give_up_after = table.duration("give_up_after", timedelta(hours=24))
    story_window = table.duration("story_window", timedelta(hours=48))
    retention = table.duration("retention", timedelta(days=30))
    max_items = _max_items(table, MAX_ITEMS)
    source_files = tuple(
        posixpath.normpath(posixpath.join(base_dir, glob)) for glob in table.strings("sources", [])
    )
    log_format = table.string("log_format", "text")
    if log_format not in LOG_FORMATS:
        raise table.error("log_format", f"must be text or json, not {log_format!r}")
    watch = table.get("watch", bool, False)
    table.finish()
    return Settings(
        database,
        rules,
        interval,
        backfill,
        user_agent,
        failures_to,
        failure_threshold,
        give_up_after,
        story_window,
        retention,
        max_items,
        source_files,
        log_format,
        watch,
    )


def _max_items(table: TomlTable, default: int) -> int:
    max_items = table.get("max_items", int, default)
    if max_items < 1:
        raise table.error("max_items", "must be at least 1")
    return max_items


def _parse_targets(raw: object, context: TomlContext, env: Mapping[str, str]) -> dict[str, Target]:
    table = TomlTable(raw, "targets", context)
    targets: dict[str, Target] = {}
    for name in list(table.data):
        _check_name(table, name, name)
        if isinstance(table.data[name], dict):
            targets[name] = _parse_target_table(table.get(name, dict), name, context, env)
            continue
        url = expand_env(table.string(name), env, functools.partial(table.error, name))
        targets[name] = Target(name, _check_apprise_url(table, name, url))
    table.finish()
    return targets


def _check_apprise_url(table: TomlTable, name: str, url: str) -> str:
    if "://" not in url:
        raise table.error(name, "must be an Apprise URL such as slack://... or mailto://...")
    return url


def _parse_target_table(
    raw: object, name: str, context: TomlContext, env: Mapping[str, str]
) -> Target:
    table = TomlTable(raw, f"targets.{name}", context)
    url = expand_env(table.string("url"), env, functools.partial(table.error, "url"))
    max_per_hour = table.get("max_per_hour", int) if "max_per_hour" in table.data else None
    if max_per_hour is not None and max_per_hour < 1:
        raise table.error("max_per_hour", "must be at least 1")
    zone = _zone(table, table.string("timezone", "UTC"))
    quiet = None
    if "quiet_hours" in table.data:
        window = table.convert("quiet_hours", _time_window, table.get("quiet_hours", str))
        quiet = QuietHours(window[0], window[1], zone)
    templates = _templates(table)
    markup = table.string("markup", "") if "markup" in table.data else None
    if markup is not None and markup not in MARKUPS:
        raise table.error("markup", f"must be one of {', '.join(MARKUPS)}, not {markup!r}")
    table.finish()
    url = _check_apprise_url(table, "url", url)
    return Target(name, url, max_per_hour, quiet, templates, markup)


def _templates(table: TomlTable) -> Templates:
    """`title_template` / `body_template`: Jinja2 text, checked now so mistakes show at load
    (Jinja2 is imported only for a table that has one)."""
    compiled: dict[str, CompiledTemplate] = {}
    for key in ("title_template", "body_template"):
        if key in table.data:
            from monitor.delivery.templates import TemplateError, compile_template

            text = table.get(key, str)
            try:
                compiled[key] = compile_template(text, name=table.path(key))
            except TemplateError as exc:
                error = table.error(key, exc.message.removeprefix(f"{table.path(key)}: "))
                if error.line and exc.line:
                    error.line += exc.line - 1
                raise error from None
    return Templates(compiled.get("title_template"), compiled.get("body_template"))


def _time_window(text: str) -> tuple[time, time]:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a time window (use e.g. 22:00-07:00)")
    hours = (int(match.group(1)), int(match.group(3)))
    minutes = (int(match.group(2)), int(match.group(4)))
    if max(hours) > 23 or max(minutes) > 59 or (hours[0], minutes[0]) == (hours[1], minutes[1]):
        raise ValueError(f"{text!r} is not a time window (use e.g. 22:00-07:00)")
    return time(hours[0], minutes[0]), time(hours[1], minutes[1])


def _zone(table: TomlTable, name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise table.error(
            "timezone", f"unknown time zone {name!r} (use e.g. Europe/London)"
        ) from None
    return name


def _parse_source(raw: object, key: str, context: TomlContext, settings: Settings) -> Source:
    table = TomlTable(raw, key, context)
    name = _check_name(table, "name", table.string("name"))
    url = _check_http_url(table, "url", table.string("url"))
    own_interval = table.duration("interval", settings.interval)
    if own_interval < MIN_INTERVAL:
        raise table.error("interval", "must be at least 1m (be polite to publishers)")
    read_as = table.string("kind", "auto")
    if read_as not in READ_AS:
        raise table.error("kind", f"must be one of {', '.join(READ_AS)}, not {read_as!r}")
    enabled = table.get("enabled", bool, True)
    full_text = table.get("full_text", bool, False)
    max_items = _max_items(table, settings.max_items)
    group = table.string("group", "") if "group" in table.data else None
    websub = table.get("websub", bool, True)
    table.finish()
    return Source(name, url, own_interval, read_as, enabled, full_text, max_items, group, websub)


def source_setting_error(key: str, value: object) -> str | None:
    """Why `key = value` in a `[[sources]]` table would be refused, by the very parser that
    reads the table (None: it would be accepted). For settings read from elsewhere (OPML)."""
    placeholder = Settings("", (), timedelta(minutes=15), timedelta(0), "")
    raw = {"name": "x", "url": "https://example.org/", key: value}
    try:
        _parse_source(raw, "source", TomlContext("", ""), placeholder)
    except ConfigError as exc:
        return exc.message
    return None


def parse_sources(
    text: str, file: str, settings: Settings, taken: Mapping[str, str] | None = None
) -> list[Source]:
    """One file of `[[sources]]` tables (`[monitor] sources`), read like the main file's;
    `taken` maps names already configured to their file (a clash is an error)."""
    context = TomlContext(file, text)
    root = TomlTable(load_toml(text, file), "", context)
    raw_sources = root.get("sources", list, [])
    root.finish()
    sources = [
        _parse_source(raw, f"sources[{index}]", context, settings)
        for index, raw in enumerate(raw_sources)
    ]
    _reject_duplicates((s.name for s in sources), "sources[{}].name", context)
    for index, source in enumerate(sources):
        if taken and source.name in taken:
            message = f"duplicate source name {source.name!r} (also in {taken[source.name]})"
            raise context.error(f"sources[{index}].name", message)
    return sources


def parse_rules(text: str, file: str, targets: Mapping[str, Target] | None) -> list[Rule]:
    """Parse one rules file (`[[rules]]` tables); with `targets`, `notify` must name them."""
    context = TomlContext(file, text)
    root = TomlTable(load_toml(text, file), "", context)
    raw_rules = root.get("rules", list, [])
    root.finish()
    rules = [
        _plain_rule(raw, context.file, targets)
        or _parse_rule(raw, f"rules[{index}]", context, targets)
        for index, raw in enumerate(raw_rules)
    ]
    _reject_duplicates((r.name for r in rules), "rules[{}].name", context)
    return rules


_PLAIN_RULE = frozenset({"name", "query", "notify"})
_NO_TEMPLATES = Templates()


def _plain_rule(raw: object, file: str, targets: Mapping[str, Target] | None) -> Rule | None:
    """The rule of a table of a valid `name`, `query` and `notify` only, the shape of the
    rules of a large file, checked at once rather than key by key (a quarter of the time
    of 10,000 rules); None for any other table, or any mistake: `_parse_rule` reports it."""
    if not isinstance(raw, dict) or raw.keys() != _PLAIN_RULE:
        return None
    name, text, notify = raw["name"], raw["query"], raw["notify"]
    if not (isinstance(name, str) and _NAME.fullmatch(name) and isinstance(text, str)):
        return None
    if not (text.strip() and isinstance(notify, list) and notify):
        return None
    for target in notify:
        if not isinstance(target, str) or not target.strip():
            return None
        if targets is not None and target not in targets:
            return None
    try:
        query = compile_query(text)
    except RuleSyntaxError:
        return None
    return Rule(name, query, tuple(notify), file=file, templates=_NO_TEMPLATES)


def _parse_rule(
    raw: object, key: str, context: TomlContext, targets: Mapping[str, Target] | None
) -> Rule:
    table = TomlTable(raw, key, context)
    name = _check_name(table, "name", table.string("name"))
    text = table.string("query")
    try:
        query = compile_query(text)
    except RuleSyntaxError as exc:
        error = table.error("query", exc.message)
        error.detail = exc.pointer(text)
        raise error from None
    notify = table.strings("notify")
    if not notify:
        raise table.error("notify", "must name at least one target")
    for index, target in enumerate(notify):
        if targets is not None and target not in targets:
            known = ", ".join(sorted(targets)) or "none configured"
            message = f"unknown target {target!r} (targets: {known})"
            raise context.error(f"{key}.notify[{index}]", message)
    sources = table.strings("sources", [])
    languages = tuple(lang.lower() for lang in table.strings("languages", []))
    digest = _parse_delivery(table)
    templates = _templates(table)
    follow_up = table.get("follow_up", bool, True)
    table.finish()
    return Rule(name, query, notify, sources, languages, context.file, digest, templates, follow_up)


def _parse_delivery(table: TomlTable) -> Digest | None:
    """`delivery = "digest"` needs a cron `schedule`; `timezone` applies to it."""
    delivery = table.string("delivery", "immediate")
    if delivery not in ("immediate", "digest"):
        raise table.error("delivery", f"must be immediate or digest, not {delivery!r}")
    zone = _zone(table, table.string("timezone", "UTC"))
    if delivery == "immediate":
        if "schedule" in table.data:
            raise table.error("schedule", 'only applies with delivery = "digest"')
        return None
    schedule = table.string("schedule")
    if len(schedule.split()) != 5:
        raise table.error("schedule", f"{schedule!r} is not a cron expression (e.g. 0 8 * * *)")
    return Digest(schedule, zone)


def _reject_duplicates(names: Iterable[str], key: str, context: TomlContext) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise context.error(key.format(index), f"duplicate name {name!r}")
        seen.add(name)


def build_config(
    main: MainConfig, rules: Sequence[Rule], more_sources: Sequence[Source] = ()
) -> Config:
    """Join the main config with the rules of every rules file and the sources of every
    sources file (`parse_sources` has checked their names)."""
    sources = [*main.sources, *more_sources]
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.name in seen:
            raise ConfigError(
                f"duplicate rule name {rule.name!r} (also in {seen[rule.name]})",
                file=rule.file,
                key="rules",
            )
        seen[rule.name] = rule.file
    return Config(main.file, main.settings, main.targets, tuple(sources), tuple(rules), main.web)

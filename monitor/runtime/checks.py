"""What `monitor check` refuses, and `run` before it starts: a digest schedule cron cannot
read, a target URL Apprise cannot read; and the notifier over the configured targets.

Only APScheduler's cron trigger and the notifier adapter are imported, so that `check` and
`notify-test` load no fetcher, store, scheduler or web server (docs/benchmarks.md, "Start-up").
"""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger

from monitor.adapters.notify import AppriseNotifier
from monitor.config.schema import Config, Rule
from monitor.errors import ConfigError

__all__ = ["digest_triggers", "notifier", "validate"]


def validate(config: Config) -> None:
    """A ConfigError for the first bad digest schedule or target (naming it, not its URL)."""
    digest_triggers(config)
    problems = notifier(config).problems()
    if problems:
        name, problem = next(iter(problems.items()))
        raise ConfigError(problem, file=config.file, key=f"targets.{name}")


def notifier(config: Config) -> AppriseNotifier:
    """The notifier over the configured targets (also their directory, for `check`)."""
    return AppriseNotifier({n: t.url for n, t in config.targets.items()})


def digest_triggers(config: Config) -> list[tuple[Rule, CronTrigger]]:
    """A cron trigger per digest rule; a bad schedule is a config error naming the rule."""
    triggers = []
    for rule in config.rules:
        if rule.digest is None:
            continue
        try:
            trigger = CronTrigger.from_crontab(rule.digest.schedule, timezone=rule.digest.zone)
        except ValueError as exc:
            raise ConfigError(
                f"schedule {rule.digest.schedule!r}: {exc}", file=rule.file, key="rules.schedule"
            ) from None
        triggers.append((rule, trigger))
    return triggers

"""Config and rule files: typed values, and one clear located message for each mistake."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import schema
from monitor.config.durations import format_duration, parse_duration
from monitor.config.files import load_config
from monitor.config.schema import parse_main, parse_rules
from monitor.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
[monitor]
database = "data/monitor.db"
interval = "10m"

[targets]
console = "console://"
hook = "json://127.0.0.1:9/${HOOK_PATH}"

[[sources]]
name = "one"
url = "https://example.com/one.xml"

[[sources]]
name = "two"
url = "https://example.com/two.xml"
interval = "1h"
kind = "feed"
"""


def error_of(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_main(text, "config.toml", env if env is not None else {"HOOK_PATH": "x"})
    return caught.value


def test_example_config_loads_without_environment_variables() -> None:
    config = load_config(str(ROOT / "config.example.toml"), env={})

    assert [s.name for s in config.sources][:1] == ["bbc-asia"]
    assert "console" in config.targets
    assert config.rules[0].query.canonical() == (
        'Japan AND "north korea" AND (summit OR abduction)'
    )
    assert config.settings.backfill == timedelta(hours=24)
    assert config.settings.database == str(ROOT / "monitor.db")


def test_good_config_is_typed_and_resolved() -> None:
    main = parse_main(GOOD, "/etc/monitor/config.toml", {"HOOK_PATH": "alerts"}, "/etc/monitor")

    assert main.settings.database == "/etc/monitor/data/monitor.db"
    assert main.settings.rules == ("/etc/monitor/rules/*.toml",)
    assert main.settings.user_agent.startswith("news-monitor/")
    assert main.targets["hook"].url == "json://127.0.0.1:9/alerts"
    assert [s.interval for s in main.sources] == [timedelta(minutes=10), timedelta(hours=1)]
    assert main.sources[1].read_as == "feed"


def test_max_items_defaults_to_1000_and_a_source_may_set_its_own() -> None:
    assert [s.max_items for s in parse_main(GOOD, "c.toml", {"HOOK_PATH": "x"}).sources] == [
        1000,
        1000,
    ]
    text = GOOD.replace('interval = "10m"', 'interval = "10m"\nmax_items = 200')
    text = text.replace('kind = "feed"', 'kind = "feed"\nmax_items = 50000')

    main = parse_main(text, "c.toml", {"HOOK_PATH": "x"})

    assert main.settings.max_items == 200
    assert [s.max_items for s in main.sources] == [200, 50000]


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (('interval = "10m"', 'interval = "10m"\nmax_items = 0'), "monitor.max_items",
         "at least 1"),
        (('kind = "feed"', 'kind = "feed"\nmax_items = "all"'), "sources[1].max_items",
         "must be an integer"),
    ],
)  # fmt: skip
def test_a_bad_max_items_is_one_clear_error(change: tuple[str, str], key: str, words: str) -> None:
    error = error_of(GOOD.replace(*change))

    assert error.key == key
    assert words in str(error)


def test_target_secrets_stay_out_of_repr() -> None:
    main = parse_main(GOOD, "c.toml", {"HOOK_PATH": "s3cr3t-token"})

    assert "s3cr3t-token" not in repr(main)


@pytest.mark.parametrize(
    ("change", "key", "line", "words"),
    [
        (('kind = "feed"', 'knd = "feed"'), "sources[1].knd", 17, "unknown key"),
        (('interval = "1h"', 'interval = "an hour"'), "sources[1].interval", 16, "duration"),
        (('interval = "1h"', 'interval = "10s"'), "sources[1].interval", 16, "at least 1m"),
        (
            ('url = "https://example.com/two.xml"', 'url = "ftp://x"'),
            "sources[1].url",
            15,
            "http(s) URL",
        ),
        (('kind = "feed"', 'kind = "podcast"'), "sources[1].kind", 17, "auto, feed, page"),
        (('name = "two"', 'name = "one"'), "sources[1].name", 14, "duplicate"),
        (('interval = "10m"', "interval = 10"), "monitor.interval", 3, "must be a string"),
        (("[monitor]", "[monitr]"), "monitr", 1, "unknown key"),
    ],
)
def test_mistakes_name_the_file_key_and_line(
    change: tuple[str, str], key: str, line: int, words: str
) -> None:
    error = error_of(GOOD.replace(*change))

    assert error.file == "config.toml"
    assert error.key == key
    assert error.line == line
    assert words in str(error)
    assert str(error).startswith(f"config.toml, line {line}: {key}: ")


def test_missing_environment_variable_is_named() -> None:
    error = error_of(GOOD, env={})

    assert error.key == "targets.hook"
    assert "HOOK_PATH is not set" in str(error)


def test_toml_syntax_errors_give_line_and_column() -> None:
    error = error_of('[monitor]\ninterval = "15m\n')

    assert error.line == 2
    assert "not valid TOML" in str(error)


RULES = """\
[[rules]]
name = "ok"
query = "Japan AND North Korea AND summit|abduction"
notify = ["console"]

[[rules]]
name = "second"
query = "Japan AND Korea"
notify = ["console"]
"""


def rules_error(text: str) -> ConfigError:
    main = parse_main(GOOD, "config.toml", {"HOOK_PATH": "x"})
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, "rules/a.toml", main.targets)
    return caught.value


def test_rule_naming_an_unknown_target_is_refused() -> None:
    error = rules_error(RULES.replace('notify = ["console"]\n\n', 'notify = ["slack"]\n\n'))

    assert error.key == "rules[0].notify[0]"
    assert error.line == 4
    assert "unknown target 'slack'" in str(error)


def test_bad_query_points_at_its_column() -> None:
    error = rules_error(RULES.replace('"Japan AND Korea"', '"Japan AND (Korea OR"'))

    assert error.key == "rules[1].query"
    assert error.line == 8
    assert error.detail is not None
    assert error.detail.splitlines()[1].index("^") >= len("Japan AND (Korea ")


def test_mixed_and_or_is_refused_with_a_hint() -> None:
    error = rules_error(RULES.replace('"Japan AND Korea"', '"Japan AND Korea OR China"'))

    assert "parentheses" in str(error)


def test_unknown_rule_key_is_a_typo() -> None:
    error = rules_error(RULES.replace('name = "second"', 'name = "second"\nnotfy = []'))

    assert error.key == "rules[1].notfy"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "15", "m15", "1.5h", "15 minutes", "-1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_cli_reports_config_errors_in_one_line_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(GOOD.replace('kind = "feed"', 'kind = "podcast"'), encoding="utf-8")

    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "-c", str(config)],
        capture_output=True,
        text=True,
        env={"HOOK_PATH": "x", "PATH": ""},
        check=False,
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{config}, line 17: sources[1].kind: must be one of" in result.stderr


def test_failures_to_must_name_a_target() -> None:
    text = GOOD.replace('interval = "10m"', 'interval = "10m"\nfailures_to = "pager"')

    error = error_of(text)
    main = parse_main(
        GOOD.replace('interval = "10m"', 'failures_to = "console"'), "c", {"HOOK_PATH": "x"}
    )

    assert error.key == "monitor.failures_to" and "unknown target 'pager'" in str(error)
    assert main.settings.failures_to == "console"
    assert main.settings.failure_threshold == timedelta(hours=24)


def test_target_tables_carry_limits_quiet_hours_and_templates() -> None:
    text = (
        GOOD
        + """
[targets.desk]
url = "mailto://u:p@example.com"
max_per_hour = 5
quiet_hours = "22:00-07:00"
timezone = "Europe/London"
body_template = "{{ title }} {{ url }}"
"""
    )

    desk = parse_main(text, "c.toml", {"HOOK_PATH": "x"}).targets["desk"]

    assert desk.max_per_hour == 5 and desk.markup == "html"
    assert desk.quiet_hours is not None and desk.quiet_hours.zone == "Europe/London"
    assert desk.templates.body is not None and desk.templates.title is None


@pytest.mark.parametrize(
    ("line", "key", "words"),
    [
        ('body_template = "{{ title "', "targets.desk.body_template", "template"),
        ('body_template = "{{ secret }}"', "targets.desk.body_template", "secret"),
        ('quiet_hours = "25:00-07:00"', "targets.desk.quiet_hours", "time window"),
        ('timezone = "Mars/Olympus"', "targets.desk.timezone", "unknown time zone"),
        ('markup = "rtf"', "targets.desk.markup", "must be one of"),
        ("max_per_hour = 0", "targets.desk.max_per_hour", "at least 1"),
    ],
)
def test_bad_target_tables_are_located(line: str, key: str, words: str) -> None:
    text = GOOD + f'\n[targets.desk]\nurl = "json://127.0.0.1/x"\n{line}\n'

    error = error_of(text)

    assert error.key == key and words in str(error)
    assert error.line == 21


def test_digest_rules_need_a_cron_schedule() -> None:
    digest = RULES.replace('name = "second"', 'name = "second"\ndelivery = "digest"')

    assert "is required" in str(rules_error(digest))
    assert "cron" in str(
        rules_error(
            digest.replace('delivery = "digest"', 'delivery = "digest"\nschedule = "daily"')
        )
    )


def test_plain_rules_read_at_once_are_the_rules_read_key_by_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tables of only name, query and notify skip the key-by-key reading: the same rules."""
    main = parse_main(GOOD, "config.toml", {"HOOK_PATH": "x"})
    text = RULES + '[[rules]]\nname = "third"\nquery = "Tokyo"\nnotify = ["console"]\n'
    fast = parse_rules(text, "rules/a.toml", main.targets)
    monkeypatch.setattr(schema, "_plain_rule", lambda *_: None)

    assert fast == parse_rules(text, "rules/a.toml", main.targets)
    assert [rule.name for rule in fast] == ["ok", "second", "third"]


@pytest.mark.parametrize(
    ("mistake", "key", "says"),
    [
        (('name = "second"', 'name = "sec ond"'), "rules[1].name", "not a valid name"),
        (('name = "second"', 'name = " "'), "rules[1].name", "must not be empty"),
        (('"Japan AND Korea"', '"Japan AND"'), "rules[1].query", ""),
        (('"Japan AND Korea"', '" "'), "rules[1].query", "must not be empty"),
        (('notify = ["console"]\n', "notify = []\n"), "rules[1].notify", "at least one"),
        (('notify = ["console"]\n', 'notify = [""]\n'), "rules[1].notify[0]", "non-empty"),
    ],
)
def test_a_mistake_in_a_plain_rule_is_reported_as_in_any_rule(
    mistake: tuple[str, str], key: str, says: str
) -> None:
    head, second = RULES.split('[[rules]]\nname = "second"')
    error = rules_error(head + ('[[rules]]\nname = "second"' + second).replace(*mistake))

    assert error.key == key
    assert says in str(error)


def test_follow_up_is_on_unless_a_rule_turns_it_off() -> None:
    main = parse_main(GOOD, "config.toml", {"HOOK_PATH": "x"})
    off = RULES.replace('name = "second"', 'name = "second"\nfollow_up = false')

    rules = parse_rules(off, "rules/a.toml", main.targets)

    assert [rule.follow_up for rule in rules] == [True, False]
    error = rules_error(off.replace("follow_up = false", 'follow_up = "no"'))
    assert error.key == "rules[1].follow_up" and error.line == 8

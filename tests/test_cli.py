"""The command line: exit codes, output formats, and secrets kept out of sight."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.adapters.store.sqlite import SqliteStore
from monitor.cli import main
from monitor.service.batch import load_articles
from monitor.state import Delivery, SourceState
from tests.servers import WebhookReceiver, free_port

ROOT = Path(__file__).resolve().parent.parent
QUERY = "Japan AND North Korea AND summit|abduction"
SEED_URL = "https://asiadispatch.example/world/asia/japan/japan-north-korea-held-meeting-in-may/"


def write_config(tmp_path: Path, hook: str) -> Path:
    (tmp_path / "rules.toml").write_text(
        f'[[rules]]\nname = "jnk"\nquery = "{QUERY}"\nnotify = ["hook"]\n', encoding="utf-8"
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[monitor]\nrules = ["rules.toml"]\n\n[targets]\nhook = "{hook}"\n', encoding="utf-8"
    )
    return config


def test_check_prints_each_rule_in_canonical_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", str(ROOT / "config.example.toml")]) == 0

    out = capsys.readouterr().out
    assert 'japan-north-korea: Japan AND "north korea" AND (summit OR abduction)' in out
    assert "console: console://" in out


def test_check_masks_target_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "json://user:hunter2secret@127.0.0.1:9/path")

    assert main(["check", "-c", str(config)]) == 0

    assert "hunter2secret" not in capsys.readouterr().out


def test_check_masks_webhook_paths_headers_and_ntfy_topics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "json://127.0.0.1:9/hooks/pathsecret1?+X-Token=hdrsecret2")
    with config.open("a", encoding="utf-8") as file:
        file.write('cloud = "ntfy://topicsecret3"\n')
        file.write('own = "ntfys://user:pwsecret4@ntfy.example.org/topicsecret5"\n')

    assert main(["check", "-c", str(config)]) == 0

    out = capsys.readouterr().out
    for secret in ("pathsecret1", "hdrsecret2", "topicsecret3", "pwsecret4", "topicsecret5"):
        assert secret not in out
    assert "hook: json://127.0.0.1:9/****" in out
    assert "cloud: ntfys://****" in out
    assert "own: ntfys://user:****@ntfy.example.org/****" in out


def test_check_refuses_a_target_apprise_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "nosuchscheme://whatever")

    assert main(["check", "-c", str(config)]) == 2
    assert "targets.hook" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["check"], ["run", "--once"], ["run"]])
def test_run_refuses_at_start_a_target_check_refuses(tmp_path: Path, command: list[str]) -> None:
    config = write_config(tmp_path, "json://127.0.0.1:9/x?token=crlfsecret\\r\\nX-Evil: 1")
    with config.open("a", encoding="utf-8") as file:
        file.write('\n[[sources]]\nname = "one"\nurl = "http://127.0.0.1:9/feed"\n')

    result = subprocess.run(
        [sys.executable, "-m", "monitor", *command, "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"monitor: config error: {config}: targets.hook: Apprise does not recognise this URL"
        " (check the scheme and its fields)"
    ]
    assert not (tmp_path / "monitor.db").exists()


def test_match_json_prints_one_object_per_match(
    seeds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["match", QUERY, str(seeds / "feeds" / "asia.rss"), "--json"])

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [(m["rule"], m["url"]) for m in lines] == [("query", SEED_URL)]
    assert lines[0]["title"].startswith("Japan, North Korea held meeting")
    assert lines[0]["terms"] == ["Japan", "north korea", "summit", "abduction"]


def test_match_with_a_rules_file_over_several_documents(
    seeds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = [str(seeds / "feeds" / n) for n in ("asia.rss", "asia.atom", "asia.json")]
    documents.append(str(seeds / "pages" / "japan-north-korea-meeting.html"))

    code = main(
        ["match", "--rules", str(ROOT / "rules" / "japan-north-korea.toml"), *documents, "--json"]
    )

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert {(m["rule"], m["url"]) for m in lines if m["rule"] == "japan-north-korea"} == {
        ("japan-north-korea", SEED_URL)
    }
    assert sum(m["rule"] == "japan-north-korea" for m in lines) == 4


def test_match_exits_1_when_nothing_matches_and_2_on_a_bad_query(
    seeds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = str(seeds / "feeds" / "asia.rss")

    assert main(["match", "Japan AND Mongolia AND Brazil", feed]) == 1
    assert main(["match", "Japan AND (Korea", feed]) == 2
    err = capsys.readouterr().err
    assert "Japan AND (Korea\n" in err and "^" in err


def run_monitor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], capture_output=True, text=True, check=False
    )


def test_deeply_nested_queries_are_refused_in_one_line_naming_the_limit(
    tmp_path: Path, seeds: Path
) -> None:
    config = write_config(tmp_path, "json://127.0.0.1:9/x")
    parens = "(" * 1000 + "Japan" + ")" * 1000
    (tmp_path / "rules.toml").write_text(
        f'[[rules]]\nname = "deep"\nquery = "{parens}"\nnotify = ["hook"]\n', encoding="utf-8"
    )
    feed = str(seeds / "feeds" / "asia.rss")

    checked = run_monitor("check", "-c", str(config))
    nots = run_monitor("match", "Japan AND " + "NOT " * 10_000 + "Brazil", feed)
    minuses = run_monitor("match", "Japan AND " + "-" * 10_000 + "Brazil", feed)

    for result in (checked, nots, minuses):
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert "nested more than 50 levels deep" in result.stderr
    assert f"{tmp_path / 'rules.toml'}, line 3: rules[0].query:" in checked.stderr


def test_a_query_nested_to_the_limit_is_checked_matched_and_explained(seeds: Path) -> None:
    nested = "Japan AND " + "(Korea OR (Japan AND " * 24 + "Korea" + "))" * 24
    assert nested.count("(") == 48

    result = run_monitor(
        "match", nested + " AND NOT (NOT Japan)", str(seeds / "feeds" / "asia.rss")
    )

    assert result.returncode == 0, result.stderr
    assert SEED_URL in result.stdout


def test_preview_json_prints_the_article_keys(
    seeds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "preview",
            "--json",
            str(seeds / "pages" / "japan-north-korea-meeting.html"),
            str(seeds / "feeds" / "asia.atom"),
        ]
    )

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert len(lines) == 6
    assert set(lines[0]) == {
        "id",
        "url",
        "source",
        "title",
        "published",
        "updated",
        "section",
        "authors",
        "lede",
        "body",
        "related",
        "language",
        "tags",
    }
    assert lines[0]["section"] == ["World", "Asia", "Japan"]


def test_preview_output_can_be_matched_again(
    tmp_path: Path, seeds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["preview", "--json", str(seeds / "feeds" / "asia.rss")])
    saved = tmp_path / "articles.jsonl"
    saved.write_text(capsys.readouterr().out, encoding="utf-8")

    assert main(["match", QUERY, str(saved), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["url"] == SEED_URL


def test_notify_test_reaches_the_target(
    tmp_path: Path, webhook: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, f"json://127.0.0.1:{webhook.port}/alerts")

    assert main(["notify-test", "hook", "-c", str(config)]) == 0
    assert webhook.posts[0]["title"] == "news-monitor test: hook"


def test_notify_test_is_written_in_the_targets_markup(
    tmp_path: Path, webhook: WebhookReceiver
) -> None:
    """It was markdown whatever the target; a json:// target reads plain text."""
    config = write_config(tmp_path, f"json://127.0.0.1:{webhook.port}/alerts")

    assert main(["notify-test", "hook", "-c", str(config)]) == 0
    message = webhook.posts[0]["message"]
    assert message.startswith("news-monitor test message\n\nIf you can read this")
    assert "**" not in message


def test_notify_test_failure_exits_1_without_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path, f"json://bot:t0psecret@127.0.0.1:{free_port()}/alerts")

    assert main(["notify-test", "hook", "-c", str(config)]) == 1

    captured = capsys.readouterr()
    assert "hook" in captured.err
    assert "t0psecret" not in captured.err + captured.out + caplog.text


def test_unknown_target_and_missing_config_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "json://127.0.0.1:9/x")

    assert main(["notify-test", "slack", "-c", str(config)]) == 2
    assert main(["check", "-c", str(tmp_path / "absent.toml")]) == 2
    err = capsys.readouterr().err
    assert "unknown target 'slack'" in err
    assert "absent.toml: file not found" in err


def test_status_lists_sources_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "json://127.0.0.1:9/x")
    with config.open("a", encoding="utf-8") as file:
        file.write('\n[[sources]]\nname = "one"\nurl = "https://example.com/feed"\n')

    assert main(["status", "-c", str(config), "--json"]) == 0

    row = json.loads(capsys.readouterr().out)
    assert row["source"] == "one" and row["result"] == "never fetched"


def test_status_without_sources_prints_an_empty_table(tmp_path: Path) -> None:
    config = write_config(tmp_path, "json://127.0.0.1:9/x")

    table = run_monitor("status", "-c", str(config))
    rows = run_monitor("status", "-c", str(config), "--json")

    assert (table.returncode, table.stderr) == (0, "")
    assert table.stdout.split() == [
        "source",
        "last_fetch",
        "result",
        "next_check",
        "errors",
        "items_seen",
    ]
    assert (rows.returncode, rows.stdout, rows.stderr) == (0, "", "")


def test_status_shows_failing_sources_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "json://127.0.0.1:9/x")
    with config.open("a", encoding="utf-8") as file:
        for name in ("fine", "broken", "gone"):
            file.write(f'\n[[sources]]\nname = "{name}"\nurl = "https://example.com/{name}"\n')
    when = datetime(2026, 11, 28, 12, tzinfo=UTC)
    store = SqliteStore(str(tmp_path / "monitor.db"))
    store.save_state(
        SourceState(
            "fine",
            "https://example.com/fine",
            last_ok_at=when,
            last_result="ok",
            items_seen=12,
            next_fetch_at=when,
        )
    )
    store.save_state(
        SourceState(
            "broken",
            "https://example.com/broken",
            last_result="HTTP 500",
            error_count=3,
            failing_since=when,
        )
    )
    store.save_state(SourceState("gone", "https://example.com/gone", disabled="410 Gone"))
    store.close()

    assert main(["status", "-c", str(config), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["source"] for r in rows] == ["gone", "broken", "fine"]
    assert rows[0]["enabled"] is False and rows[0]["next_check"] is None
    assert rows[1]["errors"] == 3 and rows[1]["failing_since"] == "2026-11-28T12:00:00Z"
    assert rows[2]["items_seen"] == 12

    assert main(["status", "-c", str(config)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "source",
        "last_fetch",
        "result",
        "next_check",
        "errors",
        "items_seen",
    ]
    assert table[1].startswith("gone")


def stored(tmp_path: Path, seeds: Path, first_seen: datetime) -> Path:
    config = write_config(tmp_path, "json://127.0.0.1:9/x")
    store = SqliteStore(str(tmp_path / "monitor.db"))
    articles = load_articles([str(seeds / "feeds" / "asia.rss")])
    store.save_poll(SourceState("asia", "https://e.com/f"), articles, [], [], first_seen)
    store.close()
    return config


def test_backtest_matches_articles_the_daemon_stored(
    tmp_path: Path, seeds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = stored(tmp_path, seeds, datetime.now(UTC) - timedelta(days=2))

    recent = main(["match", QUERY, "--since", "7d", "-c", str(config), "--json", "--snippets"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    too_old = main(["match", QUERY, "--since", "1d", "-c", str(config)])

    assert recent == 0 and too_old == 1
    assert [m["url"] for m in lines] == [SEED_URL]
    assert lines[0]["matched"].startswith("Japan (title")
    assert "**summit**" in lines[0]["snippet"] or "**abduction**" in lines[0]["snippet"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_backtest_shows_progress_on_a_terminal_only(
    tmp_path: Path, seeds: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = stored(tmp_path, seeds, datetime.now(UTC) - timedelta(days=2))
    assert main(["match", QUERY, "--since", "7d", "-c", str(config)]) == 0
    assert "[#" not in capsys.readouterr().err

    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["match", QUERY, "--since", "7d", "-c", str(config)]) == 0
    count = len(load_articles([str(seeds / "feeds" / "asia.rss")]))
    assert f"\r[{'#' * 30}] {count}/{count} articles\n" in terminal.getvalue()


def test_pruned_article_text_is_not_backtested_but_still_known(tmp_path: Path, seeds: Path) -> None:
    config = stored(tmp_path, seeds, datetime.now(UTC) - timedelta(days=40))
    store = SqliteStore(str(tmp_path / "monitor.db"))

    pruned = store.prune_text(datetime.now(UTC) - timedelta(days=30))
    ids = [a.id for a in store.articles_since(datetime.now(UTC) - timedelta(days=90))]
    known = store.known_ids(["96169d3683eeefc7"])
    store.close()

    assert pruned == 5 and ids == [] and known == {"96169d3683eeefc7"}
    assert main(["match", QUERY, "--since", "90d", "-c", str(config)]) == 1


def test_run_prunes_the_bodies_of_messages_sent_before_the_retention(tmp_path: Path) -> None:
    config = write_config(tmp_path, "json://127.0.0.1:9/x")
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=1)
    store = SqliteStore(str(tmp_path / "monitor.db"))
    store.save_poll(
        SourceState("asia", "https://e.com/f"),
        [],
        [],
        [Delivery(name, "a1", "jnk", "hook", "title", f"body of {name}", old)
         for name in ("sent-old", "dead-old", "sent-recent", "pending-old")],
        old,
    )  # fmt: skip
    store.mark_delivered("sent-old", old)
    store.mark_dead("dead-old", "HTTP 500", old)
    store.mark_delivered("sent-recent", recent)
    store.close()

    run_monitor("run", "--once", "-c", str(config))

    store = SqliteStore(str(tmp_path / "monitor.db"))
    bodies = dict(store.db.execute("SELECT id, body FROM outbox").fetchall())
    store.close()
    assert bodies == {
        "sent-old": "",
        "dead-old": "",
        "sent-recent": "body of sent-recent",
        "pending-old": "body of pending-old",
    }


def test_check_warns_about_rules_that_look_like_mistakes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "json://127.0.0.1:9/x")
    (tmp_path / "rules.toml").write_text(
        '[[rules]]\nname = "wide"\nquery = "gov* AND Japan"\nnotify = ["hook"]\n',
        encoding="utf-8",
    )

    assert main(["check", "-c", str(config)]) == 0
    err = capsys.readouterr().err
    assert "warning: rule wide:" in err and "gov*" in err


def test_check_warns_about_a_rule_whose_sources_match_no_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "json://127.0.0.1:9/x")
    with config.open("a", encoding="utf-8") as file:
        file.write('\n[[sources]]\nname = "nhk-world"\nurl = "https://example.com/feed"\n')
    (tmp_path / "rules.toml").write_text(
        '[[rules]]\nname = "typo"\nquery = "Japan"\nnotify = ["hook"]\n'
        'sources = ["nkh-*", "kyodo"]\n\n'
        '[[rules]]\nname = "fine"\nquery = "Japan"\nnotify = ["hook"]\nsources = ["nhk-*"]\n',
        encoding="utf-8",
    )

    assert main(["check", "-c", str(config)]) == 0

    err = capsys.readouterr().err
    assert "warning: rule typo: sources nkh-*, kyodo match no source: it never applies" in err
    assert "rule fine" not in err


@pytest.mark.parametrize("layout", ["", ".jsonld", ".bare"])
def test_preview_json_of_each_seed_rendition_equals_its_expected_article(
    seeds: Path, layout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    page = seeds / "pages" / f"japan-north-korea-meeting{layout}.html"
    expected = json.loads(
        (seeds / "expected" / f"japan-north-korea-meeting{layout}.page.json").read_text()
    )

    code = main(["preview", "--json", "--source", "asia-dispatch", "--saved-from",
                 SEED_URL + "?utm_source=rss", str(page)])  # fmt: skip

    assert code == 0
    article = json.loads(capsys.readouterr().out)
    for field, value in expected.items():
        assert article[field] == value, field
    assert set(article) == set(expected)


def test_check_notes_a_presearch_built_without_a_c_compiler(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["check", "-c", str(ROOT / "config.example.toml")]) == 0
    assert "C compiler" not in capsys.readouterr().err

    monkeypatch.setattr("monitor.rules.presearch.COMPILED", False)
    assert main(["check", "-c", str(ROOT / "config.example.toml")]) == 0
    assert "without a C compiler" in capsys.readouterr().err

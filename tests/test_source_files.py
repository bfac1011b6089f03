"""`[monitor] sources = ["sources/*.toml"]`: sources in several files, validated like rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config.files import load_config
from monitor.errors import ConfigError

MAIN = """
[monitor]
rules = []
sources = ["sources/*.toml"]
interval = "30m"

[[sources]]
name = "main-one"
url = "https://main.example/rss"
"""


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "sources").mkdir()
    (tmp_path / "config.toml").write_text(MAIN, encoding="utf-8")
    for name, text in files.items():
        (tmp_path / "sources" / name).write_text(text, encoding="utf-8")
    return tmp_path / "config.toml"


def test_sources_come_from_every_file_in_order_with_the_main_defaults(tmp_path: Path) -> None:
    config = write(tmp_path, {
        "b.toml": '[[sources]]\nname = "b"\nurl = "https://b.example/rss"\ngroup = "News"\n',
        "a.toml": '[[sources]]\nname = "a"\nurl = "https://a.example/rss"\ninterval = "5m"\n',
    })  # fmt: skip
    loaded = load_config(str(config), {})
    assert [(s.name, s.interval.total_seconds(), s.group) for s in loaded.sources] == [
        ("main-one", 1800, None), ("a", 300, None), ("b", 1800, "News")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[sources]]\nname = "x"\nurl = "ftp://x.example/"\n',
         "b.toml, line 3: sources[0].url: 'ftp://x.example/' is not an http(s) URL"),
        ('[[sources]]\nname = "x"\nurl = "https://x.example/"\ncolour = "red"\n',
         "b.toml, line 4: sources[0].colour: unknown key"),
        ('[[rules]]\nname = "x"\n', "b.toml, line 1: rules: unknown key"),
        ('\n[[sources]]\nname = "main-one"\nurl = "https://x.example/"\n',
         "b.toml, line 3: sources[0].name: duplicate source name 'main-one' (also in "),
        ('[[sources]]\nname = "x"\nurl = "https://x.example/"\n[[sources]]\n', "b.toml"),
    ],
)  # fmt: skip
def test_an_error_in_a_sources_file_names_that_file_key_and_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    config = write(tmp_path, {"a.toml": "", "b.toml": text})
    with pytest.raises(ConfigError) as caught:
        load_config(str(config), {})
    assert str(caught.value).startswith(f"{tmp_path}/sources/{expected}"), str(caught.value)


def test_a_duplicate_across_two_sources_files_names_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = '[[sources]]\nname = "twin"\nurl = "https://t.example/rss"\n'
    config = write(tmp_path, {"a.toml": same, "b.toml": same})

    code = main(["check", "-c", str(config)])
    err = capsys.readouterr().err

    assert code == 2
    assert f"{tmp_path}/sources/b.toml, line 2: sources[0].name: duplicate source name" in err
    assert f"(also in {tmp_path}/sources/a.toml)" in err

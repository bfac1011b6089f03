"""OPML import and export: real exporters' shapes, broken files, the round trip, the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config.files import load_config
from monitor.config.opml import export_opml, export_sources, plan_import, read_opml, sources_toml
from monitor.config.schema import parse_sources

OPML = Path(__file__).resolve().parent.parent / "seeds" / "opml"

EXPECTED: dict[str, list[tuple[str, str, str | None]]] = {
    "feedly.opml": [
        ("tech.ars-technica", "https://feeds.arstechnica.com/arstechnica/index", "Tech"),
        ("tech.the-verge-all-posts", "https://www.theverge.com/rss/index.xml", "Tech"),
        ("world-news.bbc-news-asia", "https://feeds.bbci.co.uk/news/world/asia/rss.xml",
         "World News"),
        ("world-news.nhk-world-japan", "https://www3.nhk.or.jp/nhkworld/en/news/feeds/",
         "World News"),
    ],
    "inoreader.xml": [
        ("asia.japan-times", "https://www.japantimes.co.jp/feed/", "Asia"),
        ("asia.yonhap-news-agency", "https://en.yna.co.kr/RSS/news.xml", "Asia"),
        ("economy-markets.ft-world", "https://www.ft.com/world?format=rss", "Economy & Markets"),
        ("hacker-news", "https://news.ycombinator.com/rss", None),
    ],
    "netnewswire.opml": [
        ("daring-fireball", "https://daringfireball.net/feeds/main", None),
        ("blogs.inessential", "https://inessential.com/feed.json", "Blogs"),
        ("blogs.six-colors", "https://feedpress.me/sixcolors", "Blogs"),
    ],
    "thunderbird.opml": [
        ("news.reuters-world-news", "http://feeds.reuters.com/Reuters/worldNews", "News"),
        ("news.al-jazeera-english", "https://www.aljazeera.com/xml/rss/all.xml", "News"),
    ],
    "miniflux.opml": [
        ("all.asia-dispatch", "https://asiadispatch.example/rss/world/asia.xml", "All"),
        ("all.feeds-example-org-untitled-xml", "https://feeds.example.org/untitled.xml", "All"),
        ("korea.korea-herald", "https://www.koreaherald.com/common/rss_xml.php?ct=102", "Korea"),
    ],
    "freshrss.opml.xml": [
        ("uncategorized.freshrss-releases", "https://github.com/FreshRSS/FreshRSS/releases.atom",
         "Uncategorized"),
        ("politics.tagesschau", "https://www.tagesschau.de/xml/rss2/", "Politics"),
        ("politics.le-monde-international", "https://www.lemonde.fr/international/rss_full.xml",
         "Politics"),
        ("politics.press-releases-page", "https://gov.example/press/", "Politics"),
    ],
    "hand-edited.opml": [
        ("news-politics.guardian-world", "https://www.theguardian.com/world/rss",
         "News & Politics"),
        ("news-politics.search-north-korea-summit",
         "https://news.example.com/rss/search?q=north+korea&hl=en&gl=US", "News & Politics"),
        ("news-politics.bold-blog", "https://bold.example.net/atom.xml", "News & Politics"),
        ("misc.old-style", "http://old.example.org/index.rdf", "Misc"),
        ("misc.blog-example-jp-feed", "https://blog.example.jp/feed", "Misc"),
    ],
}  # fmt: skip
SKIPPED = {
    "feedly.opml": ["line 17 (Ars Technica): duplicate of the feed at line 9"],
    "thunderbird.opml": [
        "line 13 (Local feed): not an http(s) URL: file:///home/jane/feeds/local.xml"
    ],
    "hand-edited.opml": [
        "line 11 (A bookmark): no xmlUrl (only a web page link)",
        "line 12: duplicate of the feed at line 6",
        "line 13 (Podcast): not an http(s) URL: itpc://podcasts.example.com/feed",
        "line 16 (Other list): a link to another list (type=include), not a feed",
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_exporters_file_gives_its_sources_and_reports_every_skip(name: str) -> None:
    read = read_opml((OPML / name).read_bytes())
    imported, notes = plan_import(read, [], [])

    assert [(i.name, i.url, i.group) for i in imported] == EXPECTED[name]
    assert [str(s) for s in read.skipped] == SKIPPED.get(name, [])
    assert (read.lenient is not None) == (name == "hand-edited.opml")
    if name == "freshrss.opml.xml":
        assert [str(n) for n in notes] == [
            "line 13 (Le Monde – International): imported; categories not kept as its "
            "group: Europe/France, wire"
        ]


def test_names_stay_unique_and_configured_urls_are_skipped() -> None:
    read = read_opml((OPML / "feedly.opml").read_bytes())
    imported, skipped = plan_import(
        read, ["tech.ars-technica"], ["HTTPS://WWW.THEVERGE.COM/rss/index.xml#x"]
    )

    assert [i.name for i in imported] == [
        "tech.ars-technica-2", "world-news.bbc-news-asia", "world-news.nhk-world-japan"
    ]  # fmt: skip
    assert [s.reason for s in skipped] == ["already configured"]


def test_a_category_gives_the_group_when_there_is_no_folder() -> None:
    data = b"""<opml version="2.0"><body>
      <outline text="Wire" type="rss" xmlUrl="https://wire.example/rss" category="/World/Asia"/>
    </body></opml>"""
    imported, _ = plan_import(read_opml(data), [], [])
    assert [(i.name, i.group) for i in imported] == [("world.asia.wire", "World/Asia")]


@pytest.mark.parametrize(
    "text",
    [
        # raw quotes and markup inside values, a bare &, upper-case names, no close tags
        '<opml><body><outline TEXT="Say "hi" & <i>bye</i>" TYPE="RSS" '
        'XMLURL="https://a.example/f?x=1&y=2">',
        "<opml><body><outline text='Say \"hi\" & <i>bye</i>' type=rss "
        "xmlUrl=https://a.example/f?x=1&y=2 />",
        '<?xml version="1.0" encoding="windows-1252"?><opml><body>'
        '<!-- <outline xmlUrl="https://no.example/"/> -->'
        '<outline text="Say &quot;hi&quot; &amp; bye" xmlUrl="https://a.example/f?x=1&amp;y=2">'
        "</outline></outline></body>",
    ],
)  # fmt: skip
def test_broken_files_are_read_leniently(text: str) -> None:
    read = read_opml(text.encode("cp1252"))
    assert [(s.url, s.title.replace("&", "").split()) for s in read.subscriptions] == [
        ("https://a.example/f?x=1&y=2", ["Say", '"hi"', "bye"])
    ]


def test_nothing_in_a_non_opml_file_and_no_exception_on_garbage() -> None:
    assert read_opml(b"").subscriptions == []
    assert read_opml(b"\x00\xff<<<>>>\"'=").subscriptions == []
    assert read_opml(b"<html><body><p>hello</p></body></html>").subscriptions == []


def test_export_then_import_gives_the_same_sources(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        """
[monitor]
rules = []
interval = "20m"

[[sources]]
name = "asia.nhk"
url = "https://www3.nhk.or.jp/nhkworld/en/news/feeds/"
group = "News/Asia"
interval = "1h30m"
kind = "feed"
full_text = true

[[sources]]
name = "hn"
url = "https://news.ycombinator.com/rss?a=1&b=2"
enabled = false
max_items = 50

[[sources]]
name = "ledger"
url = "https://ledger.example/rss"
group = "News & \\"Quotes\\""
""",
        encoding="utf-8",
    )
    loaded = load_config(str(config), {})
    exported = export_opml(
        export_sources(loaded.sources, loaded.settings), datetime(2026, 12, 2, tzinfo=UTC), "t"
    )
    read = read_opml(exported)
    imported, skipped = plan_import(read, [], [])

    again = parse_sources(sources_toml(imported), "again.toml", loaded.settings)

    assert read.lenient is None and not read.skipped and not skipped
    assert again == list(loaded.sources)
    assert b"<opml xmlns:monitor=" in exported and b'version="2.0"' in exported


def test_cli_import_writes_valid_sources_and_reports_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    out = tmp_path / "sources" / "imported.toml"
    out.parent.mkdir()
    (tmp_path / "config.toml").write_text(
        '[monitor]\nrules = []\nsources = ["sources/*.toml"]\n\n'
        '[targets]\nslack = "${NOT_SET_HERE_SLACK_URL}"\n\n[[sources]]\n'
        'name = "guardian"\nurl = "https://www.theguardian.com/world/rss"\n',
        encoding="utf-8",
    )

    code = main(["opml", "import", str(OPML / "hand-edited.opml"), "-o", str(out)])
    err = capsys.readouterr().err
    again = main(["opml", "import", str(OPML / "hand-edited.opml"), "-o", str(out)])
    err_again = capsys.readouterr().err
    config = load_config("config.toml", {"NOT_SET_HERE_SLACK_URL": "slack://a/b/c"})

    assert code == 0, err
    assert "not well-formed XML" in err and "line 6 (Guardian World): already configured" in err
    assert "line 13 (Podcast): not an http(s) URL" in err
    assert [s.name for s in config.sources] == [
        "guardian",
        "news-politics.search-north-korea-summit",
        "news-politics.bold-blog",
        "misc.old-style",
        "misc.blog-example-jp-feed",
    ]
    assert again == 1 and "nothing to import" in err_again
    assert err_again.count("already configured") == 5


def test_cli_export_is_opml_20_of_the_configured_sources(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[monitor]\nrules = []\n\n[[sources]]\nname = "a"\nurl = "https://a.example/rss"\n'
        'group = "News"\n',
        encoding="utf-8",
    )
    code = main(["opml", "export", "-c", str(config)])
    out = capsysbinary.readouterr().out

    assert code == 0
    read = read_opml(out)
    assert [(s.url, s.group) for s in read.subscriptions] == [("https://a.example/rss", "News")]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com:abc/feed",
        "http://example.com:99999/feed",
        "http://[::1/feed",
    ],
)
def test_an_outline_with_an_invalid_url_is_skipped_and_the_rest_imported(url: str) -> None:
    for strict in (True, False):  # well-formed, and read leniently (a stray `&`)
        head = "<head><title>A & B</title></head>" if not strict else ""
        data = (
            f'<opml version="2.0">{head}<body>'
            f'<outline text="Bad" type="rss" xmlUrl="{url}"/>'
            '<outline text="Good" type="rss" xmlUrl="https://good.example/feed"/>'
            "</body></opml>"
        ).encode()

        read = read_opml(data)

        assert (read.lenient is None) is strict
        assert [s.url for s in read.subscriptions] == ["https://good.example/feed"]
        assert [(s.title, s.reason.split(":")[0]) for s in read.skipped] == [("Bad", "invalid URL")]
        imported, _ = plan_import(read, [], [url])  # a configured URL alike: no crash
        assert [i.url for i in imported] == ["https://good.example/feed"]


def test_an_opml_file_in_a_default_namespace_is_imported() -> None:
    data = (
        b'<?xml version="1.0"?>\n<opml version="2.0" xmlns="http://opml.org/spec2">'
        b"<head><title>x</title></head><body>"
        b'<outline text="Asia"><outline text="A" type="rss" xmlUrl="https://a.example/feed"/>'
        b"</outline></body></opml>"
    )

    read = read_opml(data)

    assert read.lenient is None
    assert [(s.title, s.url, s.group) for s in read.subscriptions] == [
        ("A", "https://a.example/feed", "Asia")
    ]


def test_an_xml_file_whose_outlines_the_strict_parse_misses_is_read_leniently() -> None:
    data = (
        b'<opml version="2.0"><bodyx><outline text="A" type="rss" '
        b'xmlUrl="https://a.example/feed"/></bodyx></opml>'
    )

    read = read_opml(data)

    assert [s.url for s in read.subscriptions] == ["https://a.example/feed"]
    assert read.lenient == "no outlines found by the XML parse"


def test_our_own_attributes_are_checked_like_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    (tmp_path / "config.toml").write_text(
        '[monitor]\nrules = []\nsources = ["imported.toml"]\n', encoding="utf-8"
    )
    opml = tmp_path / "own.opml"
    opml.write_text(
        '<?xml version="1.0"?>\n<opml version="2.0" '
        'xmlns:monitor="https://github.com/news-monitor/news-monitor/opml"><body>\n'
        '<outline text="X" type="rss" xmlUrl="https://x.example/feed" monitor:name="x" '
        'monitor:interval="banana" monitor:kind="weird" monitor:enabled="maybe" '
        'monitor:max_items="0" monitor:full_text="true"/>\n'
        '<outline text="Y" type="rss" xmlUrl="https://y.example/feed" monitor:name="y" '
        'monitor:interval="30s"/>\n'
        '<outline text="Z" type="rss" xmlUrl="https://z.example/feed" monitor:name="z" '
        'monitor:interval="2h" monitor:kind="page" monitor:max_items="7"/>\n'
        "</body></opml>\n",
        encoding="utf-8",
    )

    code = main(["opml", "import", str(opml), "-o", "imported.toml"])
    err = capsys.readouterr().err

    assert code == 0, err
    assert main(["check"]) == 0, capsys.readouterr().err
    sources = {s.name: s for s in load_config("config.toml", {}).sources}
    assert sources["x"].read_as == "auto" and sources["x"].full_text
    assert sources["x"].enabled and sources["x"].max_items == 1000
    assert sources["z"].interval.total_seconds() == 7200 and sources["z"].read_as == "page"
    assert sources["z"].max_items == 7
    for refused in (
        "monitor:interval='banana'",
        "monitor:kind='weird'",
        "monitor:enabled='maybe'",
        "monitor:max_items='0'",
        "monitor:interval='30s': must be at least 1m",
    ):
        assert refused in err

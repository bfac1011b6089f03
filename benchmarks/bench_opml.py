"""Our OPML reader against listparser on the same files: which feeds each finds.

    python benchmarks/bench_opml.py                         # seeds/opml and their broken variants
    python benchmarks/bench_opml.py DIR ...                 # also every *.opml / *.xml under DIR
        (e.g. listparser's tests/files/opml, extracted from a git mirror)

For each well-formed file the expected feeds are what a strict XML parse finds; each such
file is also broken the ways real exports are (an unescaped `&`, raw quotes and markup in
`text`, `type` upper-cased, a lost `</outline>`), and each variant must still give the
original's feeds. A file that is not well-formed to begin with is only counted (feeds
found, exceptions). Prints, per reader: files read without an exception, variants whose
feed set matches, feeds found/missed/extra, and the time to read everything.
`pip install -e ".[bench]"` first (listparser is only a benchmark dependency).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from monitor.config.opml import read_opml, url_key

ROOT = Path(__file__).resolve().parent.parent


def ours(data: bytes) -> set[str]:
    return {url_key(s.url) for s in read_opml(data).subscriptions}


def theirs(data: bytes) -> set[str]:
    import listparser  # type: ignore[import-not-found,unused-ignore]

    result = listparser.parse(data)
    urls = set()
    for feed in result.feeds:
        url = feed.url
        if url.lower().startswith("feed:"):
            url = "http:" + url[5:].removeprefix("//").removeprefix("http:")
        if url.lower().startswith(("http://", "https://")):
            urls.add(url_key(url))
    return urls


def variants(text: str) -> dict[str, str]:
    out = {
        "bare-ampersand": text.replace("&amp;", "&").replace('text="', 'text="A & B ', 1),
        "raw-quotes": re.sub(r'text="([^"]*)"', r'text="\1 "quoted" word"', text, count=2),
        "markup": re.sub(r'text="([^"]*)"', r'text="<b>\1</b>"', text, count=2),
        "type-case": text.replace('type="rss"', 'type="RSS"'),
    }
    if text.count("</outline>"):
        out["lost-close"] = text.replace("</outline>", "", 1)
    out["extra-close"] = re.sub(r"(<body[^>]*>)", r"\1</outline>", text, count=1)
    out["html-entity"] = text.replace('text="', 'text="&nbsp;&eacute;', 1)
    out["unquoted"] = re.sub(r'type="(\w+)"', r"type=\1", text)
    return out


def main(dirs: list[str]) -> int:
    files = sorted((ROOT / "seeds" / "opml").iterdir())
    for folder in dirs:
        files += sorted(p for p in Path(folder).rglob("*") if p.suffix in (".opml", ".xml"))
    readers: dict[str, Callable[[bytes], set[str]]] = {"ours": ours, "listparser": theirs}
    cases: list[tuple[str, bytes, set[str] | None]] = []
    for path in files:
        data = path.read_bytes()
        read = read_opml(data)
        if read.lenient is not None:
            cases.append((path.name, data, None))
            continue
        wanted = {url_key(s.url) for s in read.subscriptions}
        cases.append((path.name, data, wanted))
        text = data.decode("utf-8", "replace")
        for name, variant in variants(text).items():
            cases.append((f"{path.name}:{name}", variant.encode(), wanted))
        cases.append((f"{path.name}:utf-16", text.encode("utf-16"), wanted))
    print(f"{len(files)} files, {len(cases)} cases ({sum(c[2] is None for c in cases)} "
          "not well-formed, counted only)")  # fmt: skip
    for label, reader in readers.items():
        errors = matched = scored = found = missed = extra = 0
        failures: list[str] = []
        started = time.perf_counter()
        for name, data, expected in cases:
            try:
                got = reader(data)
            except Exception as exc:
                errors += 1
                failures.append(f"{name}: {type(exc).__name__}")
                continue
            if expected is None:
                found += len(got)
                continue
            scored += 1
            found += len(got & expected)
            missed += len(expected - got)
            extra += len(got - expected)
            if got == expected:
                matched += 1
            else:
                failures.append(
                    f"{name}: missed {len(expected - got)}, extra {len(got - expected)}"
                )
        elapsed = time.perf_counter() - started
        print(f"{label:>10}: {len(cases) - errors}/{len(cases)} read without exception, "
              f"{matched}/{scored} feed sets exact, found {found}, missed {missed}, "
              f"extra {extra}, {elapsed * 1000:.0f} ms")  # fmt: skip
        for failure in failures[:12]:
            print(f"{'':>12}{failure}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

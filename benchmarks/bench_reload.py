"""What a reload costs the event loop: loading N rules and sources in a worker thread (as
the daemon does) against loading them on the loop (the baseline) and in a thread without
the daemon's hold on the garbage collector, each in a fresh process, in the same run.

    python benchmarks/bench_reload.py                  # 5,000 rules, 2,000 sources
    python benchmarks/bench_reload.py --rules 20000 --sources 500

A ticker task asks to wake every 10 ms and records how late it woke; the longest delay is
the loop's stall (what a poll, a delivery or a /healthz answer would wait). Prints the
wall time of each load and that stall.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from monitor.config.files import load_config
from monitor.daemon import _load_for_reload

WORDS = ["japan", "korea", "summit", "election", "typhoon", "tariff", "ministry", "court"]


def write_config(folder: Path, rules: int, sources: int) -> Path:
    (folder / "rules").mkdir()
    (folder / "sources").mkdir()
    lines = []
    for n in range(rules):
        a, b = WORDS[n % len(WORDS)], WORDS[(n // len(WORDS)) % len(WORDS)]
        lines.append(
            f'[[rules]]\nname = "r{n}"\nquery = "{a}{n} AND {b}|word{n} AND NOT x{n}"\n'
            'notify = ["console"]\n'
        )
    (folder / "rules" / "all.toml").write_text("\n".join(lines), encoding="utf-8")
    feeds = "".join(
        f'[[sources]]\nname = "s{n}"\nurl = "https://host{n % 97}.example/feed/{n}"\n'
        for n in range(sources)
    )
    (folder / "sources" / "all.toml").write_text(feeds, encoding="utf-8")
    config = folder / "config.toml"
    config.write_text(
        '[monitor]\nrules = ["rules/*.toml"]\nsources = ["sources/*.toml"]\n\n'
        '[targets]\nconsole = "console://"\n',
        encoding="utf-8",
    )
    return config


def _plain_load(path: str, old: object) -> object:
    """The same load without holding the collector off (what the daemon did first)."""
    from monitor.daemon import notifier, validate
    from monitor.matching.intake import Matcher

    config = load_config(path)
    validate(config)
    return config, Matcher(config.rules), notifier(config)


def _frozen_load(path: str, old: object) -> object:
    """What the daemon did before: the collector held off, then everything alive frozen."""
    import gc

    from monitor.daemon import notifier, validate
    from monitor.matching.intake import Matcher

    gc.disable()
    try:
        config = load_config(path)
        validate(config)
        loaded = config, Matcher(config.rules), notifier(config)
        gc.freeze()
        return loaded
    finally:
        gc.enable()


async def measure(path: str, mode: str) -> tuple[float, float]:
    old = load_config(path)
    worst = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        kept: list[object] = []
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - before - 0.01)
            # The loop's own work allocates (parsed feeds, responses): a collection the
            # load left due happens here, on the loop, and counts as its stall.
            kept = [[n] for n in range(2000)] if len(kept) < 1 else []

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    if mode == "thread":
        await asyncio.to_thread(_load_for_reload, path, old)
    elif mode == "thread-plain":
        await asyncio.to_thread(_plain_load, path, old)
    elif mode == "thread-frozen":
        await asyncio.to_thread(_frozen_load, path, old)
    else:
        _load_for_reload(path, old)
    wall = time.perf_counter() - started
    await asyncio.sleep(1.0)  # what the load left to collect, collected on the loop
    done.set()
    await tick
    return wall, worst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, default=5000)
    parser.add_argument("--sources", type=int, default=2000)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        wall, stall = asyncio.run(measure(args.child[1], args.child[0]))
        print(f"{wall} {stall}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = str(write_config(Path(tmp), args.rules, args.sources))
        print(f"{args.rules} rules, {args.sources} sources")
        modes = (
            ("loop", "on the loop (baseline)"),
            ("thread-plain", "thread, collector free"),
            ("thread-frozen", "thread, held off + freeze"),
            ("thread", "thread, as the daemon"),
        )
        for mode, label in modes:
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, path],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            wall, stall = (float(x) for x in out.split())
            print(f"  {label:>26}: load {wall:.2f} s, longest event-loop stall {stall:.3f} s")


if __name__ == "__main__":
    main()

"""Start-up: CPU time of whole `monitor` processes, median of 5 runs each.

    python benchmarks/bench_startup.py
    python -X importtime -m monitor check -c config.example.toml 2>&1 | sort -t'|' -k2 -n | tail

Measured: `monitor --help`, `monitor check -c config.example.toml`, `monitor match` of one
query on a seed feed, and as the baseline of the same run the bare interpreter
(`python -c pass`) and the interpreter importing every library the daemon uses (what each
command paid before its imports were made lazy). CPU time is user + system of the child
process (getrusage), so other work on a shared machine skews it little.

Targets (issue #14): `--help` <= 0.3 s, `check` <= 1.0 s.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
EVERYTHING = "import monitor.daemon, monitor.matching.stories, datasketch, trafilatura, htmldate"
COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "every library imported (before)": [sys.executable, "-c", EVERYTHING],
    "monitor --help": [sys.executable, "-m", "monitor", "--help"],
    "monitor check -c config.example.toml": [
        sys.executable, "-m", "monitor", "check", "-c", str(ROOT / "config.example.toml")
    ],
    "monitor match QUERY seeds/feeds/asia.rss": [
        sys.executable, "-m", "monitor", "match", "Japan AND summit",
        str(ROOT / "seeds" / "feeds" / "asia.rss"),
    ],
}  # fmt: skip
TARGETS = {"monitor --help": 0.3, "monitor check -c config.example.toml": 1.0}


def cpu_seconds(command: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    print("| command | median CPU s | min | max | target |")
    print("|---|---|---|---|---|")
    failed = False
    for name, command in COMMANDS.items():
        times = [cpu_seconds(command) for _ in range(RUNS)]
        median = statistics.median(times)
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            ok = median <= target
            failed = failed or not ok
            verdict = f"{'PASS' if ok else 'FAIL'} <= {target} s"
        print(f"| {name} | {median:.2f} | {min(times):.2f} | {max(times):.2f} | {verdict} |")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One fetch cycle of news-monitor against lemon24's reader, over the same feed farm.

    python benchmarks/bench_fetch.py --feeds 1000       # quick
    python benchmarks/bench_fetch.py --feeds 10000      # the issue #5 targets
    python benchmarks/bench_fetch.py --feeds 10000 --profile /tmp/prof   # + py-spy top-N

Each tool runs as a child process per cycle; wall time, CPU seconds (user + sys) and peak RSS
come from os.wait4. Per tool:

  cold   the first cycle: no validators, every feed answers 200 with its body
  warm   after `bump` (10% of feeds publish new items): the validators echo 304 for the rest

news-monitor runs `python -m monitor run --once -c CONFIG` (stdout to /dev/null, stderr kept
in the work directory). reader runs `update_feeds_iter(workers=16, scheduled=False)` (the
same work as `update_feeds`, with per-feed results counted; `scheduled=False` because the
warm cycle comes well before reader's own update interval). The farm is reset between the
tools, so both see the same bodies and versions.

Targets (issue #5 item 7): ours warm at 10,000 feeds within 30 s and 300 MB, and reader's
warm wall time at least 3x ours.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster_runs import bench_cluster, cluster_table
from feed_farm import DEFAULT_PORT, FarmProcess, start_farm, write_monitor_config

REPO = Path(__file__).resolve().parent.parent
MONITOR_SRC = REPO  # --monitor-src: a snapshot (e.g. `git archive HEAD`) to measure instead
TARGET_WALL = 30.0
TARGET_PEAK_MB = 300.0
TARGET_RATIO = 3.0
TARGET_FEEDS = 10_000
TOOLS = {"news-monitor": "skip_monitor", "reader": "skip_reader"}


@dataclass
class Run:
    tool: str
    cycle: str
    wall: float
    cpu: float
    peak_mb: float
    exit_code: int
    farm: dict[str, int] = field(default_factory=dict)
    farm_cpu: float = 0.0
    detail: str = ""


def run_child(
    command: Sequence[str],
    *,
    stdout: int | Any = subprocess.DEVNULL,
    stderr: Any = None,
    cwd: Path = REPO,
    env: Mapping[str, str] | None = None,
) -> tuple[float, float, float, int]:
    """Run `command`; (wall s, user+sys CPU s, peak RSS MB, exit code) from os.wait4."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=cwd, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, process.returncode


def farm_stats(farm: FarmProcess) -> tuple[dict[str, int], float]:
    stats = farm.control("stats")
    assert isinstance(stats, dict)
    return dict(stats["statuses"]), float(stats["cpu"])


def measured(farm: FarmProcess, tool: str, cycle: str, command: Sequence[str], **kw: Any) -> Run:
    before, cpu_before = farm_stats(farm)
    wall, cpu, peak, code = run_child(command, **kw)
    after, cpu_after = farm_stats(farm)
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
    return Run(tool, cycle, wall, cpu, peak, code, delta, cpu_after - cpu_before)


# -- news-monitor --------------------------------------------------------------------------


def monitor_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "monitor", "run", "--once", "-c", str(config)]


_CYCLE_DONE = re.compile(r"cycle done: .*")


def monitor_detail(log: Path) -> str:
    text = log.read_text(encoding="utf-8", errors="replace")
    found = _CYCLE_DONE.findall(text)
    tracebacks = text.count("Traceback")
    detail = found[-1] if found else "no 'cycle done' line"
    return detail + (f"; {tracebacks} tracebacks in {log}" if tracebacks else "")


def run_monitor(
    farm: FarmProcess,
    work: Path,
    cycle: str,
    profile: Path | None,
    config_name: str = "config.toml",
) -> Run:
    config = work / config_name
    log = work / f"monitor-{cycle}.log"
    command = monitor_command(config)
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        raw = profile / f"monitor-{cycle}.txt"
        command = [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--nonblocking",
            "--rate=200",
            "--format=raw",
            f"--output={raw}",
            "--",
            *command,
        ]
    env = {**os.environ, "PYTHONPATH": str(MONITOR_SRC)}
    with log.open("wb") as err:
        run = measured(farm, "news-monitor", cycle, command, stderr=err, cwd=MONITOR_SRC, env=env)
    run.detail = monitor_detail(log)
    return run


def run_monitor_sliced(farm: FarmProcess, work: Path, urls: Sequence[str], slices: int) -> Run:
    """The cold cycle as `slices` runs over parts of the sources, sharing one database.

    A workaround, not a figure to compare: a single cold run at 10,000 feeds counts queueing
    into each fetch's total timeout, so thousands of sources fail and back off for 15 min,
    and the warm cycle after it would poll only the rest.
    """
    size = -(-len(urls) // slices)
    parts: list[Run] = []
    for number, start in enumerate(range(0, len(urls), size), start=1):
        name = f"config-slice{number}.toml"
        write_monitor_config(work, urls[start : start + size], first=start + 1, filename=name)
        parts.append(run_monitor(farm, work, f"cold{number}", None, name))
        print(f"    slice {number}: {parts[-1].wall:.1f} s; {parts[-1].detail}", flush=True)
    farm_answers: Counter[str] = Counter()
    for part in parts:
        farm_answers.update(part.farm)
    return Run(
        "news-monitor",
        f"cold/{slices}",
        sum(p.wall for p in parts),
        sum(p.cpu for p in parts),
        max(p.peak_mb for p in parts),
        max(p.exit_code for p in parts),
        dict(farm_answers),
        sum(p.farm_cpu for p in parts),
        f"{slices} slices of {size} sources: sums of wall and CPU, max of peaks",
    )


# -- reader ---------------------------------------------------------------------------------


def reader_child(db: str, urls_file: str, workers: int, add: bool) -> int:
    """Runs in the child: one update_feeds cycle of reader; prints its counts as JSON."""
    from reader import make_reader

    started = time.perf_counter()
    reader = make_reader(db)
    if add:
        for url in Path(urls_file).read_text(encoding="utf-8").split():
            reader.add_feed(url, exist_ok=True)
    added = time.perf_counter()
    results: Counter[str] = Counter()
    new = modified = 0
    for result in reader.update_feeds_iter(workers=workers, scheduled=False):
        value = result.value
        if isinstance(value, Exception):
            results["error"] += 1
        elif value is None:
            results["not modified"] += 1
        else:
            results["updated"] += 1
            new += value.new
            modified += value.modified
    done = time.perf_counter()
    reader.close()
    summary = {
        "setup": round(added - started, 2),
        "update": round(done - added, 2),
        "results": dict(results),
        "new": new,
        "modified": modified,
    }
    print(json.dumps(summary))
    return 0


def run_reader(farm: FarmProcess, work: Path, cycle: str, workers: int) -> Run:
    out = work / f"reader-{cycle}.json"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--reader-child",
        f"--db={work / 'reader.sqlite'}",
        f"--urls={work / 'urls.txt'}",
        f"--workers={workers}",
    ]
    if cycle == "cold":
        command.append("--add")
    with out.open("wb") as stdout, (work / f"reader-{cycle}.log").open("wb") as err:
        run = measured(farm, "reader", cycle, command, stdout=stdout, stderr=err)
    text = out.read_text(encoding="utf-8").strip()
    run.detail = text.splitlines()[-1] if text else "no summary"
    return run


# -- profile --------------------------------------------------------------------------------


def _frame_name(frame: str) -> str:
    """'func (path/to/module.py:123)' -> 'func (module.py)' with the package for libraries."""
    match = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not match:
        return frame
    func, path = match.groups()
    return f"{func} ({_package(path)})"


def _package(path: str) -> str:
    if "site-packages/" in path:
        rest = path.split("site-packages/", 1)[1]
        parts = rest.split("/")
        return "/".join(parts[:2]) if len(parts) > 1 else parts[0]
    if "/monitor/" in path:
        return "monitor/" + path.rsplit("/monitor/", 1)[1]
    if "/lib/python" in path:
        rest = path.split("/lib/python", 1)[1].split("/", 1)[-1]
        return "stdlib:" + rest
    return path


def _package_group(path_label: str) -> str:
    label = path_label.split(" (", 1)[-1].rstrip(")")
    if label.startswith("stdlib:"):
        module = label.removeprefix("stdlib:")
        return "stdlib:" + module.split("/")[0].removesuffix(".py")
    return label.split("/")[0].removesuffix(".py") if "/" in label else label


def profile_report(raw: Path, top: int = 20) -> str:
    """Top-N of a py-spy raw (collapsed) profile: inclusive and self, by function and library."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    by_library: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(f) for f in stack.split(";")[1:]]  # the first is the thread
        if not frames:
            continue
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
        by_library[_package_group(frames[-1])] += count
    if not total:
        return f"{raw}: no samples\n"
    lines = [f"{raw.name}: {total} samples (CPU-active threads)"]
    for title, counter in (
        ("self time by library", by_library),
        ("self time by function", own),
        ("inclusive time by function", inclusive),
    ):
        lines.append(f"  {title}:")
        for name, count in counter.most_common(top):
            lines.append(f"    {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines) + "\n"


# -- report ---------------------------------------------------------------------------------


def table(runs: Sequence[Run], feeds: int) -> str:
    rows = [
        f"{'tool':<13} {'cycle':<7} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'exit':>4}"
        f"  {'farm CPU s':>10}  farm answers"
    ]
    for run in runs:
        answers = ", ".join(f"{k}:{v}" for k, v in sorted(run.farm.items()))
        rows.append(
            f"{run.tool:<13} {run.cycle:<7} {run.wall:7.2f} {run.cpu:7.2f} {run.peak_mb:8.1f} "
            f"{run.exit_code:4d}  {run.farm_cpu:10.2f}  {answers}"
        )
    rows.append("")
    for run in runs:
        rows.append(f"{run.tool} {run.cycle}: {run.detail}")
    rows.append("")
    by_key = {(r.tool, r.cycle.split("/")[0]): r for r in runs}
    ours = by_key.get(("news-monitor", "warm"))
    scale = "" if feeds == TARGET_FEEDS else f" (targets are for {TARGET_FEEDS} feeds)"
    if ours is not None:
        verdict = "PASS" if ours.wall <= TARGET_WALL else "FAIL"
        rows.append(f"{verdict}  ours warm wall {ours.wall:.1f} s <= {TARGET_WALL:.0f} s{scale}")
        verdict = "PASS" if ours.peak_mb <= TARGET_PEAK_MB else "FAIL"
        rows.append(
            f"{verdict}  ours warm peak {ours.peak_mb:.0f} MB <= {TARGET_PEAK_MB:.0f} MB{scale}"
        )
    for cycle in ("cold", "warm"):
        mine, theirs = by_key.get(("news-monitor", cycle)), by_key.get(("reader", cycle))
        if mine is None or theirs is None:
            continue
        ratio = theirs.wall / mine.wall
        cpu_ratio = theirs.cpu / mine.cpu if mine.cpu else float("inf")
        verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
        if cycle == "cold":
            verdict = "info"
        rows.append(
            f"{verdict}  {cycle}: reader wall / ours wall = {ratio:.2f} "
            f"(target >= {TARGET_RATIO:.0f} on warm); CPU ratio {cpu_ratio:.2f}"
        )
    return "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="news-monitor vs reader, one fetch cycle")
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--feeds-per-host", type=int, default=10, help="feeds per loopback host (default 10)"
    )
    parser.add_argument("--workers", type=int, default=16, help="reader's update workers")
    parser.add_argument(
        "--cold-slices",
        type=int,
        default=1,
        help="prime news-monitor in this many runs over parts of the sources (see the doc)",
    )
    parser.add_argument(
        "--monitor-src",
        metavar="DIR",
        help="run the monitor package found in DIR (e.g. a `git archive HEAD` snapshot)",
    )
    parser.add_argument("--skip-reader", action="store_true")
    parser.add_argument("--skip-monitor", action="store_true")
    parser.add_argument("--workdir", help="keep configs, DBs and logs here (default: temp dir)")
    parser.add_argument(
        "--profile", metavar="DIR", help="run news-monitor under py-spy; write profiles to DIR"
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="run the cluster benchmark on this PostgreSQL database instead (cluster_runs.py)",
    )
    parser.add_argument(
        "--instances", default="1,2,3", help="instance counts on PostgreSQL (default 1,2,3)"
    )
    parser.add_argument("--reader-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    parser.add_argument("--add", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reader_child:
        return reader_child(args.db, args.urls, args.workers, args.add)
    if args.monitor_src:
        global MONITOR_SRC
        MONITOR_SRC = Path(args.monitor_src).resolve()

    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as temp:
        work = Path(args.workdir or temp)
        work.mkdir(parents=True, exist_ok=True)
        for stale in ("monitor.db", "monitor.db-wal", "monitor.db-shm", "reader.sqlite"):
            (work / stale).unlink(missing_ok=True)
        profile = Path(args.profile) if args.profile else None
        started = time.perf_counter()
        print(f"starting the farm: {args.feeds} feeds, port {args.port}...", flush=True)
        runs: list[Run] = []
        hosts = max(1, -(-args.feeds // args.feeds_per_host))
        with start_farm(args.feeds, port=args.port, hosts=hosts) as farm:
            print(
                f"farm ready in {time.perf_counter() - started:.1f} s: {hosts} hosts; "
                f"work dir {work}"
            )
            urls = [farm.url(i) for i in range(1, args.feeds + 1)]
            (work / "urls.txt").write_text("\n".join(urls) + "\n", encoding="utf-8")
            write_monitor_config(work, urls)
            if args.store:
                counts = [int(n) for n in args.instances.split(",")]
                slices = max(args.cold_slices, 1)
                cluster = bench_cluster(farm, work, urls, args.store, counts, slices, MONITOR_SRC)
                print()
                print(cluster_table(cluster))
                return 0
            tools = [t for t, skip in TOOLS.items() if not getattr(args, skip)]
            for tool in tools:
                farm.control("reset")
                for cycle in ("cold", "warm"):
                    if cycle == "warm":
                        farm.control("bump")
                    if tool == "reader":
                        run = run_reader(farm, work, cycle, args.workers)
                    elif cycle == "cold" and args.cold_slices > 1:
                        run = run_monitor_sliced(farm, work, urls, args.cold_slices)
                    else:
                        run = run_monitor(farm, work, cycle, profile)
                    runs.append(run)
                    print(
                        f"  {tool} {cycle}: {run.wall:.2f} s wall, {run.cpu:.2f} s CPU, "
                        f"{run.peak_mb:.0f} MB, exit {run.exit_code}",
                        flush=True,
                    )
        print()
        print(table(runs, args.feeds))
        if profile is not None:
            for cycle in ("cold", "warm"):
                raw = profile / f"monitor-{cycle}.txt"
                if raw.exists():
                    print(profile_report(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())

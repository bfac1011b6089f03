"""`bench_fetch.py --store postgresql://... --instances 1,2,3`: the warm cycle of the feed
farm with N `monitor run --once` processes sharing one PostgreSQL database, beside one on
SQLite, in the same run.

Each store is primed first (a cold cycle in slices, as bench_fetch's --cold-slices), then
for each N: the farm publishes (`bump`, 10% of feeds) and N instances start at once; wall
time is until the last exits, CPU the sum of theirs (os.wait4). Statements come from each
instance's closing log line, polls per instance from the `sources.polled_by` column. The
benchmark works in a schema of its own (bench_...) of the database it is given, dropped at
the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from feed_farm import FarmProcess, write_monitor_config

TARGET_RATIO = 1.2  # 2 instances on PostgreSQL within 1.2x of one SQLite instance's wall
TARGET_SHARE = (0.40, 0.60)  # each of 2 instances does 50% +- 10% of the polls
_STATEMENTS = re.compile(r"database .*: (\d+) statements from this instance")
_CYCLE = re.compile(r"cycle done: (.*)")


@dataclass
class ClusterRun:
    store: str
    instances: int
    wall: float
    cpu: float
    peak_mb: float
    polls: list[int]
    statements: int
    exits: list[int]
    detail: str = ""

    @property
    def per_poll(self) -> float:
        return self.statements / sum(self.polls) if sum(self.polls) else 0.0


def _config(work: Path, urls: Sequence[str], database: str, name: str, first: int = 1) -> Path:
    config = write_monitor_config(work, urls, first=first, filename=name)
    text = re.sub(r"^database = .*$", f'database = "{database}"', config.read_text(), flags=re.M)
    config.write_text(text, encoding="utf-8")
    return config


def _start(config: Path, log: Path, src: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--once", "-c", str(config)],
            stdout=subprocess.DEVNULL, stderr=err, cwd=src, env=env,
        )  # fmt: skip


def run_cycle(work: Path, config: Path, store: str, n: int, label: str, src: Path) -> ClusterRun:
    """N `run --once` at once on `config`; measured until the last exits."""
    logs = [work / f"{label}-{i}.log" for i in range(n)]
    started = time.perf_counter()
    processes = [_start(config, log, src) for log in logs]
    cpu = peak = 0.0
    exits = []
    for process in processes:
        _, status, usage = os.wait4(process.pid, 0)
        cpu += usage.ru_utime + usage.ru_stime
        peak = max(peak, usage.ru_maxrss / 1024)
        exits.append(os.waitstatus_to_exitcode(status))
    wall = time.perf_counter() - started
    texts = [log.read_text(errors="replace") for log in logs]
    statements = sum(int(m) for t in texts for m in _STATEMENTS.findall(t))
    cycles = [(_CYCLE.findall(t) or ["no 'cycle done' line"])[-1] for t in texts]
    return ClusterRun(store, n, wall, cpu, peak, [], statements, exits, "; ".join(cycles))


def polls_by_instance(url: str) -> list[int]:
    import psycopg

    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT count(*) FROM sources WHERE polled_by IS NOT NULL GROUP BY polled_by"
            " ORDER BY 1 DESC"
        ).fetchall()
    return [int(row[0]) for row in rows]


def prime(work: Path, urls: Sequence[str], database: str, slices: int, src: Path, tag: str) -> None:
    size = -(-len(urls) // slices)
    for number, start in enumerate(range(0, len(urls), size), start=1):
        config = _config(work, urls[start : start + size], database, f"{tag}-prime{number}.toml",
                         first=start + 1)  # fmt: skip
        run = run_cycle(work, config, tag, 1, f"{tag}-prime{number}", src)
        print(f"    prime {tag} {number}/{slices}: {run.wall:.1f} s; {run.detail}", flush=True)


def bench_cluster(
    farm: FarmProcess,
    work: Path,
    urls: Sequence[str],
    server_url: str,
    counts: Sequence[int],
    slices: int,
    src: Path,
) -> list[ClusterRun]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as db:
        db.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in server_url else "?"
    url = f"{server_url}{sep}options={quote(f'-csearch_path={schema}')}"
    runs: list[ClusterRun] = []
    try:
        farm.control("reset")
        sqlite = str(work / "cluster-sqlite.db")
        prime(work, urls, sqlite, slices, src, "sqlite")
        prime(work, urls, url, slices, src, "postgresql")
        for store, database, n in [
            ("sqlite", sqlite, 1),
            *(("postgresql", url, n) for n in counts),
        ]:
            farm.control("bump")
            if store == "postgresql":
                with psycopg.connect(url, autocommit=True) as db:
                    db.execute("UPDATE sources SET polled_by = NULL")
            config = _config(work, urls, database, f"cluster-{store}-{n}.toml")
            run = run_cycle(work, config, store, n, f"{store}-{n}", src)
            run.polls = polls_by_instance(url) if store == "postgresql" else [len(urls)]
            runs.append(run)
            print(f"  {store} x{n}: {run.wall:.2f} s wall, {run.cpu:.2f} s CPU, polls {run.polls},"
                  f" {run.per_poll:.1f} statements/poll", flush=True)  # fmt: skip
    finally:
        with psycopg.connect(server_url, autocommit=True) as db:
            db.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return runs


def cluster_table(runs: Sequence[ClusterRun]) -> str:
    rows = [
        f"{'store':<11} {'inst':>4} {'wall s':>7} {'CPU s':>7} {'peak MB':>8}"
        f" {'stmts/poll':>10}  polls per instance (share)"
    ]
    for r in runs:
        total = sum(r.polls) or 1
        shares = ", ".join(f"{p} ({p / total:.0%})" for p in r.polls)
        rows.append(
            f"{r.store:<11} {r.instances:>4} {r.wall:7.2f} {r.cpu:7.2f} {r.peak_mb:8.1f}"
            f" {r.per_poll:10.1f}  {shares}   exits {r.exits}"
        )
    rows.append("")
    rows += [f"{r.store} x{r.instances}: {r.detail}" for r in runs]
    base = next((r for r in runs if r.store == "sqlite"), None)
    two = next((r for r in runs if r.store == "postgresql" and r.instances == 2), None)
    if base and two:
        ratio = two.wall / base.wall
        verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
        rows.append(f"{verdict}  2 instances on PostgreSQL / 1 on SQLite, wall = {ratio:.2f}"
                    f" (target <= {TARGET_RATIO})")  # fmt: skip
        total = sum(two.polls) or 1
        even = len(two.polls) == 2 and all(
            TARGET_SHARE[0] <= p / total <= TARGET_SHARE[1] for p in two.polls
        )
        rows.append(f"{'PASS' if even else 'FAIL'}  2 instances' shares of the polls:"
                    f" {[f'{p / total:.0%}' for p in two.polls]} (target 50% +- 10%)")  # fmt: skip
    return "\n".join(rows) + "\n"

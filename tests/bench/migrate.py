"""Benchmark of the cutover: `just migrate` of a generated production-sized installation, then its checks.

    uv run python -m tests.bench.migrate [--scale 1] [--batch-size 2000] [--keep]

Builds a legacy `conference` database with tests/legacy.py's generator (``--scale 1``: about 112k links, 29k
rooms, 27k data-log rows, 100k usage rows, with users, chats, cases and records; ``--scale 10``: ten times that),
starts its own copy of the suite (free ports, private NATS and Redis, its own databases), and times each step
of the runbook as separate processes: the copy with the read-model rebuild, ``--verify``, a ``--catch-up`` with
nothing changed, the final catch-up (``--final``) after changes, and ``--verify`` after it (its table printed:
the final check of the cutover). Prints per-table rows/s (the command's own table) and one table of the steps with
seconds, rows/s and the peak memory of the migrate process. Not a test: figures only (a step that fails, the last
``--verify`` included, stops it with the command's output).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.instances import private_suite
from tests.legacy import Dsn, drop_source

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str]) -> tuple[float, int, str, str]:
    """Seconds, peak RSS (MiB) of the child, stdout and stderr of one command; stops the benchmark when it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        child = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage (RUSAGE_CHILDREN keeps only a maximum)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ... failed ({child.returncode}):\n{stdout}\n{stderr}")
    return seconds, usage.ru_maxrss // 1024, stdout, stderr


def rows_of(table_text: str) -> int:
    match = re.search(r"^([\d,]+) rows in", table_text, flags=re.M)
    return int(match.group(1).replace(",", "")) if match else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep the legacy source database")
    args = parser.parse_args(argv)

    source = Dsn.parse(f"mysql://root@127.0.0.1:3306/bench{uuid.uuid4().hex[:6]}_legacy")
    seconds, _, out, _ = run([sys.executable, "-m", "tests.legacy", "--dsn", str(source), "--scale", str(args.scale)])
    counts = json.loads(out)["counts"]
    total = sum(counts.values())
    print(f"legacy source: {total:,} rows in {len(counts)} tables, generated in {seconds:.1f} s", file=sys.stderr)
    steps: list[tuple[str, float, int, int]] = []
    try:
        # no sweeps, as the runbook says: one closing a room between steps would make the guard refuse the catch-up
        services = ["auth", "conference", "link", "telemetry", "recording", "realtime"]
        with private_suite(services, {"SCHEDULED_JOBS": "false"}, label="bench-migrate") as suite:
            base = [sys.executable, "-m", "deploy.migrate", "--source", str(source), "--db-prefix", suite.db_prefix,
                    "--nats-url", suite.nats_url, "--batch-size", str(args.batch_size)]  # fmt: skip
            seconds, peak, out, err = run(base)
            print(out)
            rebuilt = re.findall(r"^rebuilt .*$", err, flags=re.M)
            print("\n".join(rebuilt), file=sys.stderr)
            steps.append(("copy + rebuild read models", seconds, rows_of(out), peak))
            seconds, peak, out, _ = run([*base, "--verify"])
            steps.append(("--verify", seconds, total, peak))
            seconds, peak, out, _ = run([*base, "--catch-up", "--no-rebuild"])
            steps.append(("--catch-up, nothing changed", seconds, rows_of(out), peak))
            added = asyncio.run(_change_source(source))
            seconds, peak, out, _ = run([*base, "--catch-up", "--final"])
            steps.append(("--catch-up --final after 1,000 changes + rebuild", seconds, rows_of(out), peak))
            seconds, peak, out, _ = run([*base, "--verify"])
            print(out)
            steps.append(("--verify after the final catch-up", seconds, total + added, peak))
    finally:
        if not args.keep:
            asyncio.run(drop_source(source))
    print(f"\nscale {args.scale:g}: {total:,} source rows; batch {args.batch_size}\n")
    print("| step | seconds | rows/s | peak RSS of migrate (MiB) |\n|---|---:|---:|---:|")
    for name, seconds, rows, peak in steps:
        print(f"| {name} | {seconds:.1f} | {rows / seconds:,.0f} | {peak} |")
    return 0


async def _change_source(source: Dsn) -> int:
    """What an old gateway still serving does in a few minutes: links changed, new usage rows (returned: how many)."""
    conn = await source.connect()
    try:
        async with conn.cursor() as cur:
            await cur.execute("UPDATE link_connect SET enabled = 0 ORDER BY id DESC LIMIT 500")
            return await cur.execute(
                "INSERT INTO usage_status_log (linkID, room, status, dtmCreated) "
                "SELECT linkID, room, 'catch-up', NOW() FROM link_connect ORDER BY id DESC LIMIT 500"
            )
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())

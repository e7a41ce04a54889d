"""Socket.IO benchmark: many official socket.io-client connections through the edge, in rooms of 10; in every
room one client emits ``case-data`` once a second and every member (sender included, as the original's
namespace broadcast) records the delivery delay. Prints delivery p50/p99, connections held, and the realtime
processes' CPU and memory during the emitting phase.

    uv run python -m tests.bench.sockets [--clients 1000] [--room-size 10] [--seconds 30] [--baseline] [--direct]

It starts its own copy of the services the path needs (conference, realtime; private NATS and Redis, databases
prefixed ``bench_``, the fake LiveKit), creates the rooms over NATS, and signs one participant token per client.
``--direct`` also runs the load against the realtime port (no edge); ``--baseline`` against a Node process with
the original's socket layer (socket.io 4.8, namespace per room, the same relay: tests/js/bench-baseline.mjs).
Not a test: no thresholds, just figures (target: p99 < 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import nats

from contracts.conference import RPC_ROOM_ENSURE
from deploy.local import DEFAULT_ENV, LocalSuite, free_port, start_private_brokers, wait_http
from tests.fakes.livekit import FakeLiveKit

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "js"
SERVICES = ["conference", "realtime"]
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


# ---- process figures from /proc (the process and its children: granian's workers) -------------------------
def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _TICKS


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
        except OSError:
            continue
    return total / 1e6


class Sampler:
    """CPU (% of one core) and peak RSS of a process tree while a load runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_rss = max(self.peak_rss, _rss_mb(_tree(self.pid)))

    def __enter__(self) -> Sampler:
        self.start_cpu, self.start_time = _cpu_seconds(_tree(self.pid)), time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.cpu_percent = (
            100 * (_cpu_seconds(_tree(self.pid)) - self.start_cpu) / max(0.001, time.monotonic() - self.start_time)
        )
        self._stop.set()
        self._thread.join()


# ---- set-up ----------------------------------------------------------------------------------------------------
def participant_token(room: str, index: int) -> str:
    now = int(time.time())
    metadata = json.dumps({"userName": f"bench{index}", "userType": "user" if index % 10 else "admin"})
    claims = {
        "iss": DEFAULT_ENV["LIVEKIT_API_KEY"], "sub": f"b{index:05d}", "name": f"bench{index}", "metadata": metadata,
        "video": {"room": room, "roomJoin": True}, "nbf": now - 5, "exp": now + 7200,
    }  # fmt: skip
    return jwt.encode(claims, DEFAULT_ENV["LIVEKIT_API_SECRET"], "HS256")


async def create_rooms(nats_url: str, count: int) -> list[str]:
    nc = await nats.connect(nats_url)
    rooms = []
    try:
        for i in range(count):
            room = "Bench" + "".join(chr(97 + (i // 26**k) % 26) for k in range(3))
            reply = json.loads((await nc.request(RPC_ROOM_ENSURE, json.dumps({"room": room}).encode(), 10)).data)
            assert reply.get("ok"), reply
            rooms.append(room)
    finally:
        await nc.close()
    return rooms


async def wait_registered(edge: str, rooms: list[str]) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=10) as client:
        deadline = time.monotonic() + 30
        while True:
            known = set((await client.get(f"{edge}/namespace")).json())
            if all(f"/{r}" in known for r in rooms):
                return
            assert time.monotonic() < deadline, "rooms not registered in realtime"
            await asyncio.sleep(0.2)


def run_load(url: str, plan: Path, args: argparse.Namespace) -> dict[str, Any]:
    argv = [
        "node", str(JS_DIR / "bench.mjs"), "--url", url, "--plan", str(plan), "--seconds", str(args.seconds),
        "--transport", args.transport, "--connect-batch", str(args.connect_batch),
    ]  # fmt: skip
    output = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=JS_DIR).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--room-size", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--transport", default="websocket", choices=["websocket", "polling", "both"])
    parser.add_argument("--connect-batch", type=int, default=50)
    parser.add_argument("--direct", action="store_true", help="also load the realtime port directly (no edge)")
    parser.add_argument("--baseline", action="store_true", help="also load the original's socket layer (Node)")
    args = parser.parse_args()

    if not (JS_DIR / "node_modules" / "socket.io").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, capture_output=True)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-sockets-"))
    helpers, nats_url, redis_url = start_private_brokers(run_dir)
    livekit = FakeLiveKit(DEFAULT_ENV["LIVEKIT_API_KEY"], DEFAULT_ENV["LIVEKIT_API_SECRET"]).start()
    db_prefix = f"bench_{uuid.uuid4().hex[:6]}_"
    suite = LocalSuite(
        edge_port=free_port(),
        service_ports={s: free_port() for s in SERVICES},
        db_prefix=db_prefix,
        nats_url=nats_url,
        redis_url=redis_url,
        extra_env={"LIVEKIT_HOST": livekit.url, "LOG_LEVEL": "WARNING"},
        run_dir=run_dir,
    )
    baseline = None
    results: list[tuple[str, dict[str, Any], Sampler]] = []
    try:
        time.sleep(0.5)
        suite.start(SERVICES)
        rooms = asyncio.run(create_rooms(suite.nats_url, max(1, args.clients // args.room_size)))
        asyncio.run(wait_registered(suite.edge, rooms))
        plan_rooms, index = [], 0
        for room in rooms:
            tokens = [participant_token(room, index + k) for k in range(args.room_size)]
            index += args.room_size
            plan_rooms.append({"room": room, "tokens": tokens})
        plan = run_dir / "plan.json"
        plan.write_text(json.dumps({"runId": uuid.uuid4().hex, "rooms": plan_rooms}))
        realtime_pid = suite.processes["realtime"].pid
        targets = [("suite (edge)", suite.edge)]
        if args.direct:
            targets.append(("suite (direct)", suite.url("realtime")))
        for name, url in targets:
            with Sampler(realtime_pid) as sampler:
                figures = run_load(url, plan, args)
            results.append((name, figures, sampler))
        if args.baseline:
            port = free_port()
            baseline = subprocess.Popen(
                ["node", str(JS_DIR / "bench-baseline.mjs"), "--port", str(port), "--rooms", ",".join(rooms)],
                cwd=JS_DIR, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            wait_http(f"http://127.0.0.1:{port}/ready", 15, baseline)
            with Sampler(baseline.pid) as sampler:
                figures = run_load(f"http://127.0.0.1:{port}", plan, args)
            results.append(("original (socket.io)", figures, sampler))
    finally:
        if baseline is not None:
            baseline.terminate()
        suite.stop()
        livekit.stop()
        for helper in helpers:
            helper.terminate()
        drop = ";".join(f"DROP DATABASE IF EXISTS `{db_prefix}{s}`" for s in SERVICES)
        subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-e", drop], check=False)
        shutil.rmtree(run_dir, ignore_errors=True)

    print(
        f"\n{args.clients} socket.io-client connections ({args.transport}), rooms of {args.room_size}, one case-data "
        f"emit per room per second for {args.seconds}s, {os.cpu_count()} cores (load generator on the same box)"
    )
    header = f"{'target':<22} {'held':>6} {'failed':>6} {'recv/exp':>13} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}"
    print(header + f" {'max ms':>7} {'cpu %':>6} {'rss MB':>7} {'connect s':>9}")
    for name, f, s in results:
        print(
            f"{name:<22} {f['held']:>6} {f['failed']:>6} {f['received']:>6}/{f['expected']:<6} {f['p50']:>7} "
            f"{f['p90']:>7} {f['p99']:>7} {f['max']:>7} {s.cpu_percent:>6.0f} {s.peak_rss:>7.0f} "
            f"{f['connectSeconds']:>9.1f}"
        )
    print("cpu % / rss: the realtime process tree (granian + worker) or the baseline node process; 100% = 1 core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import nats

from contracts.conference import RPC_ROOM_ENSURE
from deploy.local import DEFAULT_ENV, LocalSuite, free_port, start_private_brokers, wait_http
from tests.bench.procs import CpuMeter, MemoryWatch, cpu_seconds, rss_mb, tree
from tests.bench.run import MemoryRow, memory_rows, suite_pids
from tests.fakes.livekit import FakeLiveKit

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "js"
SERVICES = ["conference", "realtime"]


# ---- process figures from /proc (the process and its children, if any) -------------------------
_tree, _cpu_seconds, _rss_mb = tree, cpu_seconds, rss_mb  # the names positions.py imports


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


def run_load(
    url: str, plan: Path, seconds: int, transport: str = "websocket", connect_batch: int = 50
) -> dict[str, Any]:
    argv = [
        "node", str(JS_DIR / "bench.mjs"), "--url", url, "--plan", str(plan), "--seconds", str(seconds),
        "--transport", transport, "--connect-batch", str(connect_batch),
    ]  # fmt: skip
    output = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=JS_DIR).stdout
    return json.loads(output.strip().splitlines()[-1])


@dataclass
class SocketResult:
    target: str
    figures: dict[str, Any]  # bench.mjs's: held, failed, received, expected, p50, p90, p99, max, connectSeconds
    seconds: int  # of emitting
    cpu_seconds: dict[str, float]  # per process tree over the whole load (connecting included)
    realtime_cpu_percent: float  # the socket server's (realtime or the original's node), % of one core
    realtime_peak_mb: float

    @property
    def deliveries_per_second(self) -> float:
        return self.figures["received"] / max(1, self.seconds)

    @property
    def cpu_ms(self) -> float:
        """CPU of every process of the target per delivered message (connecting included)."""
        return 1000 * sum(self.cpu_seconds.values()) / max(1, self.figures["received"])


@dataclass
class SocketsRun:
    results: list[SocketResult]
    memory: list[MemoryRow]
    setting: str


def scenario(
    *,
    clients: int = 1000,
    room_size: int = 10,
    seconds: int = 30,
    transport: str = "websocket",
    connect_batch: int = 50,
    direct: bool = False,
    baseline: bool = False,
) -> SocketsRun:
    """``clients`` socket.io-client connections through the edge (and straight at realtime with ``direct``, at the
    original's socket layer with ``baseline``); CPU of every process of the target (suite: conference, realtime,
    edge, NATS, Redis; original: its node process) and memory idle / peak."""
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
    baseline_process = None
    results: list[SocketResult] = []
    load = {"seconds": seconds, "transport": transport, "connect_batch": connect_batch}
    try:
        time.sleep(0.5)
        suite.start(SERVICES)
        rooms = asyncio.run(create_rooms(suite.nats_url, max(1, clients // room_size)))
        asyncio.run(wait_registered(suite.edge, rooms))
        plan_rooms, index = [], 0
        for room in rooms:
            tokens = [participant_token(room, index + k) for k in range(room_size)]
            index += room_size
            plan_rooms.append({"room": room, "tokens": tokens})
        plan = run_dir / "plan.json"
        plan.write_text(json.dumps({"runId": uuid.uuid4().hex, "rooms": plan_rooms}))
        ours = suite_pids(suite, helpers)
        watch = MemoryWatch(ours)
        watch.idle()
        targets = [("suite (edge)", suite.edge)]
        if direct:
            targets.append(("suite (direct)", suite.url("realtime")))
        for name, url in targets:
            with watch, CpuMeter(ours) as meter, Sampler(ours["realtime"]) as sampler:
                figures = run_load(url, plan, **load)
            results.append(SocketResult(name, figures, seconds, meter.used, sampler.cpu_percent, sampler.peak_rss))
        if baseline:
            port = free_port()
            baseline_process = subprocess.Popen(
                ["node", str(JS_DIR / "bench-baseline.mjs"), "--port", str(port), "--rooms", ",".join(rooms)],
                cwd=JS_DIR, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            wait_http(f"http://127.0.0.1:{port}/ready", 15, baseline_process)
            theirs = {"original (socket.io)": baseline_process.pid}
            original = MemoryWatch(theirs)
            original.idle()
            with original, CpuMeter(theirs) as meter, Sampler(baseline_process.pid) as sampler:
                figures = run_load(f"http://127.0.0.1:{port}", plan, **load)
            results.append(
                SocketResult(
                    "original (socket.io)", figures, seconds, meter.used, sampler.cpu_percent, sampler.peak_rss
                )
            )
    finally:
        if baseline_process is not None:
            baseline_process.terminate()
        suite.stop()
        livekit.stop()
        for helper in helpers:
            helper.terminate()
        drop = ";".join(f"DROP DATABASE IF EXISTS `{db_prefix}{s}`" for s in SERVICES)
        subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-e", drop], check=False)
        shutil.rmtree(run_dir, ignore_errors=True)
    memory = memory_rows(watch, f"{clients} sockets")
    if baseline:
        memory += memory_rows(original, f"{clients} sockets", ("original (socket.io)",))
    setting = (
        f"{clients} socket.io-client connections ({transport}), rooms of {room_size}, one case-data emit per room per"
        f" second for {seconds}s"
    )
    return SocketsRun(results, memory, setting)


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
    run = scenario(
        clients=args.clients,
        room_size=args.room_size,
        seconds=args.seconds,
        transport=args.transport,
        connect_batch=args.connect_batch,
        direct=args.direct,
        baseline=args.baseline,
    )
    print(f"\n{run.setting}, {os.cpu_count()} cores (load generator on the same box)")
    header = f"{'target':<22} {'held':>6} {'failed':>6} {'recv/exp':>13} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}"
    print(header + f" {'max ms':>7} {'cpu %':>6} {'rss MB':>7} {'connect s':>9} {'cpu ms/msg':>10}")
    for r in run.results:
        f = r.figures
        print(
            f"{r.target:<22} {f['held']:>6} {f['failed']:>6} {f['received']:>6}/{f['expected']:<6} {f['p50']:>7} "
            f"{f['p90']:>7} {f['p99']:>7} {f['max']:>7} {r.realtime_cpu_percent:>6.0f} {r.realtime_peak_mb:>7.0f} "
            f"{f['connectSeconds']:>9.1f} {r.cpu_ms:>10.3f}"
        )
    print("cpu % / rss: the realtime process or the baseline node process; 100% = 1 core")
    print("cpu ms/msg: CPU of every process of the target (suite: conference, realtime, edge, NATS, Redis) per")
    print("delivered message, connecting included")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

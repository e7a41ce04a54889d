"""Ambulance positions benchmark (issue 6): many simulated ambulances, each with its task in its own room, send
their position once a second through the edge as the crew app does (official socket.io-client on ``/mobile``,
``location`` events; realtime hands each to telemetry, RPC_TASK_LOCATION), and an agent's socket.io-client on
each watched room namespace receives the ``car-position`` telemetry publishes (CAR_POSITION_UPDATED, relayed
by realtime). Prints accepted updates/s (acknowledged ``received location``), p50/p99 from the emit to the
agent's client, and telemetry's CPU and memory (its process tree, from /proc) while the load runs.

    uv run python -m tests.bench.positions [--ambulances 500] [--watched 500] [--seconds 60]

It starts its own copy of the services the path needs (telemetry, realtime, conference; private NATS and Redis,
databases prefixed ``bench_``, the fake LiveKit), opens the rooms over NATS, creates one task per room with
POST /car/task through the edge, then runs tests/js/bench-positions.mjs. The load generator runs on the same
machine: figures are for comparing runs on one box, not capacities. Not a test: no thresholds, just figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import nats

from contracts.telemetry import CAR_POSITION_UPDATED
from deploy.local import DEFAULT_ENV, LocalSuite, free_port, start_private_brokers
from servicekit.bus import stream_name
from tests.bench.procs import CpuMeter, MemoryWatch
from tests.bench.run import MemoryRow, memory_rows, suite_pids
from tests.bench.sockets import JS_DIR, Sampler, _cpu_seconds, _tree, create_rooms, wait_registered
from tests.fakes.livekit import FakeLiveKit

SERVICES = ["conference", "realtime", "telemetry"]


class MachineLoad:
    """The whole box while a load runs: CPU busy (% of all cores, /proc/stat) and the 1-minute load average. On a
    shared machine these say whether the figures measure the suite or the neighbours."""

    @staticmethod
    def _ticks() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    def __enter__(self) -> MachineLoad:
        self.start = self._ticks()
        return self

    def __exit__(self, *_: Any) -> None:
        busy, total = self._ticks()
        self.busy_percent = 100 * (busy - self.start[0]) / max(1, total - self.start[1])
        self.load_average = os.getloadavg()[0]


class ProcessLoad(Sampler):
    """Sampler (CPU % and peak RSS of a process tree during the load) that also tells the CPU seconds used since
    it started, backlog included."""

    def cpu_seconds(self) -> float:
        return _cpu_seconds(_tree(self.pid)) - self.start_cpu


def _token(**claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": DEFAULT_ENV["LIVEKIT_API_KEY"], "name": "agent", "nbf": now - 5, "exp": now + 7200, **claims}
    return jwt.encode(payload, DEFAULT_ENV["LIVEKIT_API_SECRET"], "HS256")


def agent_room_token(room: str, index: int) -> str:
    """An agent console's participant token for ``room`` (an admin, as the console joins its case rooms)."""
    metadata = json.dumps({"userName": f"agent{index}", "userType": "admin", "color": "#123456"})
    return _token(sub=f"agent{index:05d}", metadata=metadata, video={"room": room, "roomJoin": True})


async def create_tasks(edge: str, rooms: list[str]) -> list[dict[str, str]]:
    """One task per room through the edge (POST /car/task, the agent console's bearer token)."""
    headers = {"Authorization": f"Bearer {_token(sub='bench', video={'roomJoin': False})}"}
    tasks = []
    async with httpx.AsyncClient(base_url=edge, headers=headers, timeout=30) as client:
        for i, room in enumerate(rooms):
            answer = await client.post("/car/task", json={"room": room, "mobile": f"08{i:08d}"})
            answer.raise_for_status()
            tasks.append({"uid": answer.json()["data"]["uid"], "room": room})
    return tasks


async def wait_for_relay(nats_url: str) -> None:
    """Realtime's durable consumer of telemetry's events must exist before positions flow (it gets only events
    published after it is created)."""
    nc = await nats.connect(nats_url)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                await nc.jetstream().consumer_info(stream_name("telemetry"), "realtime-telemetry")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await nc.close()


def _mysql(sql: str) -> list[list[str]]:
    output = subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-N", "-e", sql], capture_output=True, text=True)
    return [line.split("\t") for line in output.stdout.splitlines() if line.strip()]


def stored_positions(database: str) -> dict[str, Any]:
    """Positions telemetry stored, from the CAR_POSITION_UPDATED rows its transactions wrote to the outbox: how
    many, over how long (first to last commit), and how long each waited in the outbox before the relay
    published it (ms)."""
    where = f"FROM `{database}`.outbox WHERE subject = '{CAR_POSITION_UPDATED}'"
    span = _mysql(f"SELECT COUNT(*), TIMESTAMPDIFF(MICROSECOND, MIN(created_at), MAX(created_at)) {where}")  # noqa: S608 (our names)
    lags = sorted(
        int(row[0]) / 1000
        for row in _mysql(f"SELECT TIMESTAMPDIFF(MICROSECOND, created_at, published_at) {where}")  # noqa: S608
        if row[0] != "NULL"
    )

    def pct(p: float) -> float | None:
        return round(lags[min(len(lags) - 1, int(p / 100 * len(lags)))], 1) if lags else None

    count, micros = int(span[0][0]), int(span[0][1]) if span[0][1] != "NULL" else 0
    return {"count": count, "seconds": micros / 1e6, "lagP50": pct(50), "lagP99": pct(99)}


def wait_drained(database: str, timeout: float = 60.0) -> None:
    """Until telemetry has worked off the requests still queued when the load stopped (the count stops growing)."""
    where = f"FROM `{database}`.outbox WHERE subject = '{CAR_POSITION_UPDATED}'"
    last, deadline = -1, time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = int(_mysql(f"SELECT COUNT(*) {where}")[0][0])  # noqa: S608 (our names)
        if count == last:
            return
        last = count
        time.sleep(2)


def run_load(url: str, plan: Path, seconds: int, transport: str = "websocket", connect_batch: int = 50) -> dict:
    argv = [
        "node", str(JS_DIR / "bench-positions.mjs"), "--url", url, "--plan", str(plan), "--seconds", str(seconds),
        "--transport", transport, "--connect-batch", str(connect_batch),
    ]  # fmt: skip
    output = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=JS_DIR).stdout
    return json.loads(output.strip().splitlines()[-1])


@dataclass
class PositionsRun:
    figures: dict[str, Any]  # bench-positions.mjs's: crews, sent, acked, delivered, p50/p90/p99, ackP50/ackP99, ...
    stored: dict[str, Any]  # count, seconds (first to last commit), lagP50/lagP99 (outbox to NATS)
    telemetry_cpu_percent: float
    telemetry_cpu_seconds: float  # backlog after the load included
    telemetry_peak_mb: float
    realtime_cpu_percent: float
    realtime_cpu_seconds: float
    realtime_peak_mb: float
    cpu_seconds: dict[str, float]  # every process of the suite, backlog after the load included
    busy_percent: float
    load_average: float
    memory: list[MemoryRow]
    setting: str

    @property
    def stored_per_second(self) -> float:
        return self.stored["count"] / max(self.stored["seconds"], 0.001)


def scenario(
    *,
    ambulances: int = 500,
    watched: int = 500,
    seconds: int = 60,
    transport: str = "websocket",
    connect_batch: int = 50,
    db_pool: int = 0,
) -> PositionsRun:
    if not (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, capture_output=True)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-positions-"))
    helpers, nats_url, redis_url = start_private_brokers(run_dir)
    livekit = FakeLiveKit(DEFAULT_ENV["LIVEKIT_API_KEY"], DEFAULT_ENV["LIVEKIT_API_SECRET"]).start()
    db_prefix = f"bench_{uuid.uuid4().hex[:6]}_"
    suite = LocalSuite(
        edge_port=free_port(),
        service_ports={s: free_port() for s in SERVICES},
        db_prefix=db_prefix,
        nats_url=nats_url,
        redis_url=redis_url,
        extra_env={
            "LIVEKIT_HOST": livekit.url,
            "LOG_LEVEL": "WARNING",
            **({"MYSQL_POOL_SIZE": str(db_pool)} if db_pool else {}),
        },
        run_dir=run_dir,
    )
    try:
        time.sleep(0.5)
        suite.start(SERVICES)
        asyncio.run(wait_for_relay(suite.nats_url))
        ours = suite_pids(suite, helpers)
        watch = MemoryWatch(ours)
        watch.idle()
        rooms = asyncio.run(create_rooms(suite.nats_url, ambulances))
        asyncio.run(wait_registered(suite.edge, rooms))
        tasks = asyncio.run(create_tasks(suite.edge, rooms))
        agents = [{"room": room, "token": agent_room_token(room, i)} for i, room in enumerate(rooms[:watched])]
        plan = run_dir / "plan.json"
        plan.write_text(json.dumps({"tasks": tasks, "agents": agents}))
        meter = CpuMeter(ours)
        with (
            watch,
            ProcessLoad(suite.processes["telemetry"].pid) as telemetry,
            ProcessLoad(suite.processes["realtime"].pid) as realtime,
            MachineLoad() as machine,
        ):
            meter.start()
            figures = run_load(suite.edge, plan, seconds, transport, connect_batch)
        wait_drained(f"{db_prefix}telemetry")
        telemetry_cpu = telemetry.cpu_seconds()  # includes working off the backlog after the load stopped
        realtime_cpu = realtime.cpu_seconds()
        meter.stop()
        stored = stored_positions(f"{db_prefix}telemetry")
    finally:
        suite.stop()
        livekit.stop()
        for helper in helpers:
            helper.terminate()
        drop = ";".join(f"DROP DATABASE IF EXISTS `{db_prefix}{s}`" for s in SERVICES if s != "realtime")
        subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-e", drop], check=False)
        shutil.rmtree(run_dir, ignore_errors=True)
    setting = (
        f"{figures['crews']} ambulances on /mobile ({transport}), one `location` a second each for"
        f" {figures['sendSeconds']}s; {figures['agents']} agent clients on room namespaces"
    )
    return PositionsRun(
        figures, stored, telemetry.cpu_percent, telemetry_cpu, telemetry.peak_rss, realtime.cpu_percent,
        realtime_cpu, realtime.peak_rss, meter.used, machine.busy_percent, machine.load_average,
        memory_rows(watch, f"{ambulances} ambulances"), setting,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ambulances", type=int, default=500)
    parser.add_argument("--watched", type=int, default=500, help="rooms with an agent client (of --ambulances)")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--transport", default="websocket", choices=["websocket", "polling", "both"])
    parser.add_argument("--connect-batch", type=int, default=50)
    parser.add_argument("--db-pool", type=int, default=0, help="MYSQL_POOL_SIZE of the services (0: their default)")
    args = parser.parse_args()
    r = scenario(
        ambulances=args.ambulances,
        watched=args.watched,
        seconds=args.seconds,
        transport=args.transport,
        connect_batch=args.connect_batch,
        db_pool=args.db_pool,
    )
    f, stored = r.figures, r.stored
    print(f"\n{r.setting}; {os.cpu_count()} cores (load generator on the same box)")
    print(
        f"connect failures {f['failed']}, disconnects {f['disconnectsDuringRun']}, connect {f['connectSeconds']:.1f}s"
    )
    print(f"sent {f['sent']} ({f['sent'] / f['sendSeconds']:.0f}/s)")
    print(
        f"accepted: stored by telemetry {stored['count']} in {stored['seconds']:.0f}s = {r.stored_per_second:.0f}"
        f" updates/s; acknowledged to the crew in time {f['acked']} ({f['acked'] / f['sendSeconds']:.0f}/s)"
    )
    print(f"acknowledgement to the crew: p50 {f['ackP50']} ms, p99 {f['ackP99']} ms")
    print(
        f"car-position at the agent: {f['delivered']}/{f['expected']} delivered (unmatched {f['unmatched']});"
        f" p50 {f['p50']} ms, p90 {f['p90']} ms, p99 {f['p99']} ms, max {f['max']} ms"
    )
    print(f"outbox to NATS (telemetry's relay): p50 {stored['lagP50']} ms, p99 {stored['lagP99']} ms")
    per_update = 1000 / max(stored["count"], 1)
    print(
        f"telemetry: cpu {r.telemetry_cpu_percent:.0f}% of one core, {r.telemetry_cpu_seconds * per_update:.2f} cpu ms"
        f" per stored update, peak rss {r.telemetry_peak_mb:.0f} MB"
    )
    print(
        f"realtime:  cpu {r.realtime_cpu_percent:.0f}% of one core, {r.realtime_cpu_seconds * per_update:.2f} cpu ms"
        f" per stored update, peak rss {r.realtime_peak_mb:.0f} MB"
    )
    print(f"all suite processes: {sum(r.cpu_seconds.values()) * per_update:.2f} cpu ms per stored update")
    print(f"machine:   cpu busy {r.busy_percent:.0f}% of all cores, load average {r.load_average:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

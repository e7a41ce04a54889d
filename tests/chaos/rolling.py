"""Rolling restarts under load: every service restarted one instance at a time, the way Kubernetes rolls a
Deployment (SIGTERM, drain, a new instance ready), while a steady mixed load goes through the edge; then checked:
no request failed, nothing acknowledged lost, nothing applied twice, every Socket.IO client back on its own.

    uv run python -m tests.chaos.rolling [--services auth,conference,...] [--rate 50] [--sockets 8]

It starts its own suite (free ports on 127.0.0.1, a private NATS and Redis, ``roll_`` databases on this machine's
MariaDB, dropped afterwards) with two instances of every service behind the nginx edge's upstream, realtime
included. Realtime's upstream is sticky (``hash $remote_addr``: Engine.IO's long-polling needs every request of a
session on one instance), so from 127.0.0.1 every socket sits on one of its two instances; the second one still
matters: when the sockets' instance stops they reconnect, and the edge, failing to connect to the stopped one,
sends them to the other, which is what a roll of a Deployment does to them too. Their time to reconnect (from
each socket's disconnect to its next connect) is measured.

Load: tests/chaos/run.py's (positions, link creation with an agent token, signed LiveKit webhooks), plus reads
that reach the services the writes do not (GET /auth/create, /room/detail, /stats/summary), plus ``--sockets``
official socket.io-clients (tests/js/reconnect.mjs, reconnecting on their own) on realtime's ``/queue``.

Per service: SIGTERM its first instance, wait for it to exit (its drain: "longest drain s"), start it again and
wait for /ready; the same for the second; a short pause before the next service. Every request sent meanwhile
counts for that service. Then tests/chaos/run.py's database checks over those writes (stored, published once,
consumed), every non-2xx answer counted by kind and status. Prints a markdown table; exit 1 on any failed request,
lost write, duplicate effect, socket that did not reconnect, or drain that had to be killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

from deploy.local import LocalSuite, wait_http
from tests.bench.run import agent_token
from tests.chaos.run import Chaos, Row, Sent, chaos_suite
from tests.sockets import JS_DIR, NODE

SERVICES = ["auth", "conference", "link", "telemetry", "recording", "realtime"]
START_TIMEOUT = 180.0  # s for an instance to answer /ready 200
DRAIN_LIMIT = 30.0  # s a SIGTERMed instance may take to exit before it is killed (and the run fails)
# What each read asks, per service the writes do not reach through the edge.
READS = {"auth": "/auth/create", "conference": "/room/detail?room=rollingroom", "telemetry": "/stats/summary"}


@dataclass
class Roll:
    service: str
    instances: int = 0
    drains: list[float] = field(default_factory=list)
    killed: int = 0  # instances that did not exit within DRAIN_LIMIT
    sockets: str = "n/a"
    reconnect_s: float = 0.0
    row: Row | None = None


class Sockets:
    """The reconnecting clients (reconnect.mjs): each socket's connects and disconnects, with their times."""

    def __init__(self, proc: asyncio.subprocess.Process, count: int) -> None:
        self.proc, self.count = proc, count
        self.events: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            self.events.append(json.loads(raw))

    def connected(self) -> set[int]:
        state: dict[int, bool] = {}
        for e in self.events:
            if e["type"] in ("connect", "disconnect"):
                state[e["i"]] = e["type"] == "connect"
        return {i for i, up in state.items() if up}

    async def all_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.connected()) < self.count:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    def since(self, t_ms: float) -> tuple[int, int, float]:
        """Of the disconnects after ``t_ms``: (disconnects, of those followed by a connect of the same socket, the
        longest time from a disconnect to that socket's next connect, s)."""
        down: dict[int, float] = {}
        waits: list[float] = []
        disconnects = 0
        for e in self.events:
            if e["t"] < t_ms:
                continue
            if e["type"] == "disconnect":
                disconnects += 1
                down[e["i"]] = e["t"]
            elif e["type"] == "connect" and e["i"] in down:
                waits.append((e["t"] - down.pop(e["i"])) / 1000)
        return disconnects, len(waits), max(waits, default=0.0)

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await self.reader


async def open_sockets(edge: str, count: int) -> Sockets:
    proc = await asyncio.create_subprocess_exec(
        NODE, str(JS_DIR / "reconnect.mjs"), "--url", f"{edge}/queue", "--count", str(count),
        "--token", agent_token(), cwd=JS_DIR, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    return Sockets(proc, count)


def rolling_suite(
    run_dir: Path, services: list[str], running: list[str] = SERVICES
) -> contextlib.AbstractContextManager[tuple[LocalSuite, list[subprocess.Popen[bytes]]]]:
    """``running`` (default: every service; the load needs conference, link, telemetry and recording) behind the
    edge, two instances of each of ``services``; ``roll_`` databases on the machine's MariaDB, dropped afterwards."""
    return chaos_suite(run_dir, private_db=False, services=running, second=services, db_prefix="roll")


def stop_instance(local: LocalSuite, name: str) -> tuple[float, bool]:
    """SIGTERM one instance and wait for it to exit: (seconds it took, whether it exited on its own)."""
    process = local.processes[name]
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(DRAIN_LIMIT)
        return time.monotonic() - started, True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        return time.monotonic() - started, False


def start_instance(local: LocalSuite, service: str, second: bool) -> None:
    port = local.second_ports[service] if second else local.service_ports[service]
    process = local.start_service(service, second=second)
    wait_http(f"http://127.0.0.1:{port}/ready", START_TIMEOUT, process)


class Reads:
    """GETs through the edge to the services the writes do not reach, counted with the writes (kind read-<svc>)."""

    def __init__(self, chaos: Chaos, rate: float) -> None:
        self.chaos, self.rate = chaos, rate
        self.services = sorted(s for s in READS if s in chaos.local.service_ports)  # a short run starts fewer

    async def load(self, client: httpx.AsyncClient) -> None:
        headers = {"Authorization": f"Bearer {agent_token()}"}
        pending: set[asyncio.Task[None]] = set()
        n = 0
        while not self.chaos.stopping and self.services:
            service = self.services[n % len(self.services)]
            n += 1
            record = Sent(self.chaos.fault, f"read-{service}", "")
            task = asyncio.create_task(self.chaos.request(client, record, "GET", READS[service], headers=headers))
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(1 / self.rate)
        if pending:
            await asyncio.gather(*pending)


async def roll_all(local: LocalSuite, brokers: list[subprocess.Popen[bytes]], services: list[str], rate: float,
                   sockets_n: int, settle: float, check_timeout: float,
                   recreate: frozenset[str] = frozenset()) -> tuple[list[Roll], Chaos]:  # fmt: skip
    """The load for the whole run; each service rolled in turn, then the checks of every roll. The services in
    ``recreate`` are not rolled but restarted whole (both instances stopped, then both started: a Deployment's
    ``Recreate`` strategy), which fails the requests sent meanwhile: it shows what the checks count."""
    chaos = Chaos(local, brokers, rate)
    rolls: list[Roll] = []
    async with httpx.AsyncClient(base_url=local.edge, limits=httpx.Limits(max_connections=64)) as client:
        headers = {"Authorization": f"Bearer {agent_token()}"}
        chaos.room = f"rollroom{chaos.run}"
        created = await client.post("/link/create", json={"room": chaos.room, "mobile": "0812345678", "sms": 0},
                                    headers=headers, timeout=30)  # fmt: skip
        created.raise_for_status()
        chaos.link_id = created.json()["linkID"]
        sockets = await open_sockets(local.edge, sockets_n) if sockets_n else None
        if sockets and not await sockets.all_connected(30):
            raise RuntimeError(f"only {len(sockets.connected())} of {sockets_n} sockets connected: {sockets.events}")
        chaos.fault = "warm-up"
        load = asyncio.create_task(chaos.load(client))
        reads = asyncio.create_task(Reads(chaos, rate / 5).load(client))
        try:
            await asyncio.sleep(settle)
            for service in services:
                roll = Roll(f"{service} (recreated)" if service in recreate else service)
                chaos.fault = roll.service
                began = time.time() * 1000
                if service in recreate:
                    stopped = await asyncio.gather(
                        *(asyncio.to_thread(stop_instance, local, name) for name in (service, f"{service}-2"))
                    )
                    roll.drains += [took for took, _ in stopped]
                    roll.killed += sum(not clean for _, clean in stopped)
                    await asyncio.gather(*(asyncio.to_thread(start_instance, local, service, s) for s in (False, True)))
                    roll.instances = 2
                for second in () if service in recreate else (False, True):
                    name = f"{service}-2" if second else service
                    took, clean = await asyncio.to_thread(stop_instance, local, name)
                    roll.drains.append(took)
                    roll.killed += not clean
                    await asyncio.to_thread(start_instance, local, service, second)
                    roll.instances += 1
                if sockets and service == "realtime":
                    await sockets.all_connected(30)
                    down, back, longest = sockets.since(began)
                    roll.sockets = f"{back}/{down}" + (f", longest {longest:.1f} s" if back else "")
                    roll.reconnect_s = longest
                    if len(sockets.connected()) < sockets_n:
                        roll.sockets += f" ({sockets_n - len(sockets.connected())} not connected)"
                await asyncio.sleep(settle)
                rolls.append(roll)
            chaos.fault = "after"
            await asyncio.sleep(1)
        finally:
            chaos.stopping = True
            await load
            await reads
            if sockets:
                await sockets.close()
        for roll in rolls:
            roll.row = Row(roll.service)
            await chaos.check(roll.service, roll.row, check_timeout)
    return rolls, chaos


# What the edge logged about its upstreams: refused connects it sent on to the other server, and the errors that
# cost a request (a connection closed or reset under a request nginx had sent, no server left).
EDGE_ERRORS = {
    "connect() failed": "refused connects (sent on to the other server)",
    "prematurely closed": "closed under a sent request",
    "reset by peer": "reset under a sent request",
    "no live upstreams": "no live upstreams",
}


def edge_errors(run_dir: Path) -> str:
    log = run_dir / "nginx" / "error.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    counts = {label: text.count(needle) for needle, label in EDGE_ERRORS.items()}
    return ", ".join(f"{label}: {n}" for label, n in counts.items())


def table(rolls: list[Roll]) -> str:
    lines = [
        "| service | instances rolled | requests during its roll | failed | lost writes | duplicate effects "
        "| longest drain s | sockets reconnected |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rolls:
        row = r.row or Row(r.service)
        lines.append(f"| {r.service} | {r.instances} | {row.requests} | {row.requests - row.ok} | {row.lost} "
                     f"| {row.duplicates} | {max(r.drains, default=0):.1f} | {r.sockets} |")  # fmt: skip
    return "\n".join(lines)


def failures(rolls: list[Roll], sockets_n: int) -> list[str]:
    bad = []
    for r in rolls:
        row = r.row or Row(r.service)
        if row.requests != row.ok:
            bad.append(f"{r.service}: {row.requests - row.ok} failed requests ({row.refused})")
        if row.lost or row.duplicates or row.hung:
            bad.append(f"{r.service}: {'; '.join(row.detail)}; hung {row.hung}")
        if r.killed:
            bad.append(f"{r.service}: {r.killed} instance(s) did not exit within {DRAIN_LIMIT:.0f} s of SIGTERM")
        if r.service == "realtime" and sockets_n and "not connected" in r.sockets:
            bad.append(f"realtime: sockets not reconnected: {r.sockets}")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", default=",".join(SERVICES), help=f"comma-separated, in order; any of {SERVICES}")
    parser.add_argument("--rate", type=float, default=50.0, help="write requests per second (reads: a fifth more)")
    parser.add_argument("--sockets", type=int, default=8, help="Socket.IO clients on realtime (0: none)")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds of load before the first roll and after each"
    )
    parser.add_argument("--check-timeout", type=float, default=60.0, help="seconds the database checks may wait")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)  # the dev LiveKit secret
    services = [s for s in args.services.split(",") if s]
    unknown = set(services) - set(SERVICES)
    if unknown:
        parser.error(f"unknown services: {sorted(unknown)}")
    run_dir = Path(tempfile.mkdtemp(prefix="ems-rolling-"))
    started = time.monotonic()
    try:
        with rolling_suite(run_dir, services) as (local, brokers):
            rolls, _ = asyncio.run(
                roll_all(local, brokers, services, args.rate, args.sockets, args.settle, args.check_timeout)
            )
        edge = edge_errors(run_dir)
    finally:
        if os.environ.get("KEEP_CHAOS_LOGS"):
            print(f"logs kept in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    took = time.monotonic() - started
    print(f"\n{len(services)} services rolled, two instances each, {args.rate:.0f} writes/s + {args.rate / 5:.0f} "
          f"reads/s through the edge, {args.sockets} Socket.IO clients, {took:.0f} s, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")  # fmt: skip
    print(table(rolls))
    for r in rolls:
        row = r.row or Row(r.service)
        drains = ", ".join(f"{d:.1f}" for d in r.drains)
        print(f"{r.service}: checked {row.checked} acknowledged; drains {drains} s; not 2xx: {row.refused}")
    print(f"edge error log: {edge}")
    bad = failures(rolls, args.sockets)
    for line in bad:
        print(f"FAIL {line}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

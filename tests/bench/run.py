"""Benchmark of hot routes through the edge, with wrk. Prints requests/s and p50/p99 latency per route.

    uv run python -m tests.bench.run [--duration 15] [--connections 64] [--links 200] [--baseline] [--only ROUTE]

It starts its own copy of the suite (free ports, databases prefixed ``bench_``, a private NATS and Redis),
creates links through the API, then drives each route. With ``--baseline`` it also runs the original-stack
baseline (../shared/bench/original-stack, Node) against the same databases and prints the ratio: only ratios
measured in one run mean anything on a shared machine. Not a test: no thresholds, just figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt

from deploy.local import DEFAULT_ENV, LocalSuite, discover_services, free_port, start_private_brokers, wait_http
from tests.bench.procs import CpuMeter, MemoryWatch, mariadb_pids

ROOT = Path(__file__).resolve().parents[2]
BASELINE_DIR = ROOT.parent / "shared" / "bench" / "original-stack"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Result:
    route: str
    target: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: float = 0.0  # CPU time of all the target's processes per request (machine load does not inflate it)
    db_cpu_ms: float = 0.0  # CPU time of MariaDB per request (shared server: other clients' queries inflate it)
    db_counters: dict[str, float] = field(default_factory=dict)  # --db-status: SHOW GLOBAL STATUS deltas per request
    cpu_detail: dict[str, float] = field(default_factory=dict)  # CPU ms per request of each process (tree)
    requests: int = 0


def agent_token() -> str:
    now = int(time.time())
    claims = {"iss": DEFAULT_ENV["LIVEKIT_API_KEY"], "sub": "bench", "name": "Example", "video": {"roomJoin": False}}
    return jwt.encode({**claims, "nbf": now - 5, "exp": now + 3600}, DEFAULT_ENV["LIVEKIT_API_SECRET"], "HS256")


def position_body(link: str, room: str, i: int) -> dict[str, object]:
    """A patient's POST /link/update/latlng body (around Bangkok, a different point per link)."""
    return {
        "linkID": link,
        "room": room,
        "userType": "user",
        "latitude": round(13.70 + (i % 97) * 0.001, 6),
        "longitude": round(100.50 + (i % 89) * 0.001, 6),
        "accuracy": 12.5,
        "heading": 90,
        "speed": 8.3,
    }


def seed_links(edge: str, count: int) -> tuple[list[str], list[str], list[str]]:
    """Create ``count`` links in ``count // 4`` rooms through the edge; returns (link ids, room names, the room of
    each link)."""
    headers = {"Authorization": f"Bearer {agent_token()}"}
    links, rooms = [], []
    with httpx.Client(base_url=edge, headers=headers, timeout=30) as client:
        for i in range(count):
            room = f"bench{chr(97 + (i // 4) % 26)}{chr(97 + (i // 104) % 26)}"
            body = {"room": room, "mobile": f"08{i:08d}", "userName": f"user{i}", "linkType": "video", "sms": 0}
            response = client.post("/link/create", json=body)
            response.raise_for_status()
            data = response.json()
            links.append(data["linkID"])
            rooms.append(data.get("room", room))
    return links, sorted(set(rooms)), rooms


@dataclass
class Load:
    """One benchmarked route: the requests wrk cycles through, its owner, and whether the baseline serves it."""

    owner: str
    requests: list[tuple[str, str]]  # (path, JSON body or "")
    method: str = "GET"
    token: bool = False
    in_baseline: bool = True


def _lua_script(requests: list[tuple[str, str]], method: str = "GET", token: str = "") -> Path:
    def lua(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        "local paths = {" + ",".join(lua(p) for p, _ in requests) + "}",
        "local bodies = {" + ",".join(lua(b) for _, b in requests) + "}",
        "local i = 0",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if token:
        lines.append(f'wrk.headers["Authorization"] = {lua("Bearer " + token)}')
    lines += [
        "request = function()",
        "  i = i % #paths + 1",
        "  local body = nil",
        '  if bodies[i] ~= "" then body = bodies[i] end',
        f'  return wrk.format("{method}", paths[i], nil, body)',
        "end",
    ]
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text("\n".join(lines), encoding="utf-8")
    return script


# Server counters whose per-request deltas show the SQL work of a route (global: other clients add to them).
DB_COUNTERS = ("Com_select", "Com_insert", "Com_update", "Com_commit", "Handler_read_key", "Handler_read_next",
               "Handler_write", "Innodb_data_fsyncs", "Created_tmp_tables", "Created_tmp_disk_tables")  # fmt: skip


def db_status() -> dict[str, int]:
    names = ",".join(f"'{name}'" for name in DB_COUNTERS)
    output = subprocess.run(
        ["mysql", "-uroot", "-h127.0.0.1", "-N", "-e", f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return {name: int(value) for name, value in (line.split("\t") for line in output.splitlines() if "\t" in line)}


def run_wrk(
    base: str,
    route: str,
    target: str,
    load_: Load,
    *,
    duration: int,
    connections: int,
    threads: int = 2,
    pids: dict[str, int] | None = None,
    db_status_counters: bool = False,
) -> Result:
    """One wrk run of ``load_`` against ``base``; CPU per request summed over the named process trees ``pids``
    (the detail per process in ``Result.cpu_detail``) and, apart, MariaDB's."""
    script = _lua_script(load_.requests, load_.method, agent_token() if load_.token else "")
    load = [f"-t{threads}", f"-c{connections}", f"-d{duration}s"]
    argv = ["wrk", *load, "--latency", "-s", str(script), base]
    status_before = db_status() if db_status_counters else {}
    meter = CpuMeter(pids or {})
    database = CpuMeter({f"mariadb{i}": pid for i, pid in enumerate(mariadb_pids())})
    meter.start(), database.start()
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    used, db_used = meter.stop(), database.stop()
    status_after = db_status() if db_status_counters else {}
    script.unlink()
    parsed = parse_wrk(output)
    requests = parsed["requests"]
    per_request = {
        k: (status_after[k] - v) / requests for k, v in status_before.items() if k in status_after and requests
    }
    detail = {name: seconds * 1000 / requests for name, seconds in used.items()} if requests else {}
    return Result(
        route,
        target,
        parsed["rps"],
        parsed["p50"],
        parsed["p99"],
        parsed["errors"],
        sum(detail.values()),
        sum(db_used.values()) * 1000 / requests if requests else 0.0,
        per_request,
        detail,
        requests,
    )


def parse_wrk(output: str) -> dict[str, float]:
    """requests/s, p50/p99 (ms), errors (non-2xx/3xx and socket errors) and the request count of wrk --latency."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    percentiles = {
        m.group(1): float(m.group(2)) * _UNITS[m.group(3)]
        for m in re.finditer(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    }
    errors_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(errors_match.group(1)) if errors_match else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    total = re.search(r"(\d+) requests in", output)
    return {
        "rps": rps,
        "p50": percentiles.get("50", 0.0),
        "p99": percentiles.get("99", 0.0),
        "errors": errors,
        "requests": int(total.group(1)) if total else 0,
    }


def start_baseline(db_prefix: str) -> tuple[subprocess.Popen[bytes], str]:
    work = Path(tempfile.mkdtemp(prefix="baseline-"))
    for name in ("package.json", "server.js"):
        shutil.copy(BASELINE_DIR / name, work / name)
    npm = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run(npm, cwd=work, check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "LINK_DB": f"{db_prefix}link",
        "CONFERENCE_DB": f"{db_prefix}conference",
        "LIVEKIT_URL": "",
        "LIVEKIT_API_KEY": DEFAULT_ENV["LIVEKIT_API_KEY"],
        "LIVEKIT_API_SECRET": DEFAULT_ENV["LIVEKIT_API_SECRET"],
    }
    process = subprocess.Popen(["node", "server.js"], cwd=work, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/room/detail?room=x", 30, process)
    return process, url


def restart_with_workers(suite: LocalSuite, service: str, workers: int) -> None:
    """Run ``service`` under granian's own supervisor with ``workers`` worker processes instead of the suite's one
    process (same port and env): what more cores would buy."""
    process = suite.processes[service]
    argv = [
        sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
        "--port", str(suite.service_ports[service]), "--workers", str(workers), "--loop", "uvloop",
        "--log-level", "warning", "--no-ws", f"{service}.app:app",
    ]  # fmt: skip
    process.terminate()
    process.wait(20)
    suite._spawn(service, argv, suite.service_env(service))  # noqa: SLF001 - the suite's own way to start one
    wait_http(f"{suite.url(service)}/ready", 60, suite.processes[service])


ROUTES = ("GET /link/getdetail", "GET /room/detail", "POST /link/update/latlng", "POST /user/joingenerate")


@dataclass
class MemoryRow:
    """RSS of one process tree: after start-up before any load, and the peak under a scenario's load."""

    name: str
    idle_mb: float
    peak_mb: float
    scenario: str
    original: bool = False
    idle_pss_mb: float = 0.0


@dataclass
class HttpRun:
    results: list[Result]
    memory: list[MemoryRow]
    setting: str  # the load, in words


def suite_pids(suite: LocalSuite, brokers: list[subprocess.Popen[bytes]]) -> dict[str, int]:
    """Every process the benchmark started for the suite: its services, the nginx edge and its private brokers."""
    pids = {name: process.pid for name, process in suite.processes.items()}
    for name, broker in zip(("nats", "redis"), brokers, strict=False):
        pids[name] = broker.pid
    return pids


def memory_rows(watch: MemoryWatch, scenario: str, originals: tuple[str, ...] = ()) -> list[MemoryRow]:
    return [
        MemoryRow(
            name,
            watch.idle_mb.get(name, 0.0),
            watch.peak_mb.get(name, 0.0),
            scenario,
            name in originals,
            watch.idle_pss_mb.get(name, 0.0),
        )  # fmt: skip
        for name in watch.pids
    ]


def scenario(
    *,
    duration: int = 15,
    connections: int = 64,
    threads: int = 2,
    links: int = 200,
    baseline: bool = False,
    workers: int = 1,
    db_status: bool = False,
    only: list[str] | tuple[str, ...] = (),
    direct: bool = True,
) -> HttpRun:
    """The HTTP routes with wrk: through the edge, straight at the owner (``direct``) and, with ``baseline``, at the
    original stack. CPU per request is that of every process the run started for the target (suite: services,
    edge, NATS, Redis; original: its node process); MariaDB's apart. Memory: RSS idle and peak under load."""
    services = discover_services()
    db_prefix = f"bench_{uuid.uuid4().hex[:6]}_"
    run_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    brokers, nats_url, redis_url = start_private_brokers(run_dir)
    suite = LocalSuite(
        edge_port=free_port(),
        service_ports={s: free_port() for s in services},
        db_prefix=db_prefix,
        nats_url=nats_url,
        redis_url=redis_url,
        run_dir=run_dir,
    )
    original = None
    results: list[Result] = []
    try:
        suite.start(services)
        if workers != 1:
            restart_with_workers(suite, "link", workers)
        time.sleep(1)  # start-up work (consumers, relays) settles
        ours = suite_pids(suite, brokers)
        watch = MemoryWatch(ours)
        links_, rooms, rooms_of_links = seed_links(suite.edge, links)
        baseline_url = ""
        if baseline and (not only or set(only) & set(ROUTES[:3])):  # the original serves the first three
            original, baseline_url = start_baseline(db_prefix)
            time.sleep(1)
            watch.pids["original (node)"] = original.pid
        watch.idle()
        routes = {
            "GET /link/getdetail": Load(
                "link", [(f"/link/getdetail?linkId={link}&identity=bench{i % 50}", "") for i, link in enumerate(links_)]
            ),
            "GET /room/detail": Load("conference", [(f"/room/detail?room={room}", "") for room in rooms]),
            # A patient's position (stored, logged, published to realtime; the baseline emits it itself).
            "POST /link/update/latlng": Load(
                "link",
                [
                    ("/link/update/latlng", json.dumps(position_body(link, rooms_of_links[i], i)))
                    for i, link in enumerate(links_)
                ],
                method="POST",
            ),
            # The patient's "ask to join" token (no baseline: the yardstick does not serve this route).
            "POST /user/joingenerate": Load(
                "conference",
                [("/user/joingenerate", json.dumps({"room": room, "userName": "bench"})) for room in rooms],
                method="POST",
                token=True,
                in_baseline=False,
            ),
        }
        if only:
            routes = {route: load_ for route, load_ in routes.items() if route in only}
        load = {"duration": duration, "connections": connections, "threads": threads, "db_status_counters": db_status}
        with watch:
            for route, load_ in routes.items():
                # Through the edge (what clients get), the owner directly (the edge's cost), and the original stack.
                targets = [("suite (edge)", suite.edge, ours)]
                if direct:
                    targets.append(("suite (direct)", suite.url(load_.owner), ours))
                if baseline_url and load_.in_baseline and original is not None:
                    targets.append(("original stack", baseline_url, {"original (node)": original.pid}))
                for target, base, pids in targets:
                    results.append(run_wrk(base, route, target, load_, pids=pids, **load))
    finally:
        if original:
            original.terminate()
        suite.stop()
        for broker in brokers:
            broker.terminate()
        shutil.rmtree(run_dir, ignore_errors=True)
        names = " ".join(f"`{db_prefix}{s}`" for s in services)
        drop = ";".join(f"DROP DATABASE IF EXISTS {n}" for n in names.split())
        subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-e", drop], check=False)
    shape = "one process" if workers == 1 else f"{workers} granian workers"
    setting = f"wrk -t{threads} -c{connections} -d{duration}s, {len(links_)} links, link: {shape}"
    return HttpRun(results, memory_rows(watch, "HTTP routes", ("original (node)",)), setting)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--links", type=int, default=200)
    parser.add_argument("--baseline", action="store_true", help="also run the original-stack baseline")
    parser.add_argument("--workers", type=int, default=1, help="granian workers of link (the suite runs 1)")
    parser.add_argument("--db-status", action="store_true", help="print MariaDB status counters per request")
    parser.add_argument("--only", action="append", default=[], help='only this route, e.g. "GET /link/getdetail"')
    parser.add_argument("--per-process", action="store_true", help="print the CPU per request of each process")
    args = parser.parse_args()
    run = scenario(
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        links=args.links,
        baseline=args.baseline,
        workers=args.workers,
        db_status=args.db_status,
        only=args.only,
    )
    results = run.results
    print(f"\n{run.setting}, {os.cpu_count()} cores")
    header = f"{'route':<24} {'target':<16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    print(f"{header} {'cpu ms/req':>10} {'db ms/req':>9}")
    for r in results:
        print(
            f"{r.route:<24} {r.target:<16} {r.rps:>9.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.errors:>7}"
            f" {r.cpu_ms:>10.3f} {r.db_cpu_ms:>9.3f}"
        )
    print("cpu ms/req: CPU of every process of the target (suite: services + nginx edge + NATS + Redis; original:")
    print("its node process; not MariaDB) per request")
    print("db ms/req: CPU of MariaDB per request (the server is shared: other engineers' tests inflate it)")
    if args.per_process:
        for r in results:
            detail = " ".join(f"{name}={ms:.3f}" for name, ms in sorted(r.cpu_detail.items()))
            print(f"{r.route} {r.target}: cpu ms/req {detail}")
    for r in (r for r in results if r.db_counters):
        counters = " ".join(f"{name}={value:.2f}" for name, value in r.db_counters.items())
        print(f"{r.route} {r.target}: per request {counters}")
    if args.baseline:
        for route in sorted({r.route for r in results if r.target == "original stack"}):
            ours = next(r for r in results if r.route == route and r.target == "suite (edge)")
            theirs = next(r for r in results if r.route == route and r.target == "original stack")
            direct = next(r for r in results if r.route == route and r.target == "suite (direct)")
            print(
                f"{route}: suite/original throughput {ours.rps / max(theirs.rps, 1):.2f} through the edge, "
                f"{direct.rps / max(theirs.rps, 1):.2f} direct; original/suite CPU per request "
                f"{theirs.cpu_ms / max(ours.cpu_ms, 1e-9):.2f} through the edge"
            )
    print(f"{'process':<18} {'idle MB':>8} {'peak MB':>8}")
    for m in run.memory:
        print(f"{m.name:<18} {m.idle_mb:>8.0f} {m.peak_mb:>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

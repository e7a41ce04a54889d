"""Every benchmark in one invocation, printed as three markdown tables (what `just bench` runs):

    uv run python -m tests.bench [--quick] [--only SCENARIO ...] [--no-baseline] [--per-process] [--direct]
                                 [--duration S] [--webhooks-driver wrk|httpx] [--json PATH]

1. side by side with the original stack (run in the same invocation): GET /link/getdetail, GET /room/detail,
   POST /link/update/latlng through the edge, and 1,000 Socket.IO clients; requests/s, p50/p99 and CPU per
   request of every process each side started (suite: services, nginx edge, NATS, Redis; original: its node
   process). MariaDB is shared by both and by other users of the machine: its CPU per request is in a note.
2. ours only: POST /user/joingenerate, LiveKit webhooks (wrk; exactly-once checked), 500 ambulances.
3. memory: each process's RSS after start-up (before load) and its peak under each scenario's load, and the
   original's.

SCENARIO: getdetail, roomdetail, latlng, joingenerate (or ``http`` for the four), sockets, webhooks, positions;
repeat ``--only`` or separate with commas. ``--quick`` shortens every load (a smoke run, figures meaningless).
``--per-process`` adds the CPU per request of each process; ``--json`` writes every figure to a file. Each
scenario starts its own copy of what it needs (free ports, ``bench_`` databases, private NATS and Redis).
Exit 1 when a check fails (webhooks not applied exactly once). Not a test: no thresholds, just figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Callable
from typing import Any

from tests.bench import positions, run, sockets, webhooks
from tests.bench.procs import machine_line
from tests.bench.run import HttpRun, MemoryRow

HTTP = {
    "getdetail": "GET /link/getdetail",
    "roomdetail": "GET /room/detail",
    "latlng": "POST /link/update/latlng",
    "joingenerate": "POST /user/joingenerate",
}
SCENARIOS = (*HTTP, "sockets", "webhooks", "positions")
BASELINE_ROUTES = ("GET /link/getdetail", "GET /room/detail", "POST /link/update/latlng")

# (full, quick) settings of each scenario
HTTP_LOAD = ({"duration": 15, "connections": 64, "links": 200}, {"duration": 3, "connections": 16, "links": 40})
SOCKETS_LOAD = ({"clients": 1000, "seconds": 30}, {"clients": 100, "seconds": 5})
WEBHOOKS_LOAD = ({"seconds": 15, "connections": 32}, {"seconds": 3, "connections": 16})
POSITIONS_LOAD = ({"ambulances": 500, "watched": 500, "seconds": 60}, {"ambulances": 30, "watched": 30, "seconds": 5})
DASH = "—"


def selected(only: list[str]) -> list[str]:
    if not only:
        return list(SCENARIOS)
    names: list[str] = []
    for item in (part.strip() for value in only for part in value.split(",")):
        if item == "http":
            names += list(HTTP)
        elif item in SCENARIOS:
            names.append(item)
        elif item in HTTP.values():
            names += [key for key, route in HTTP.items() if route == item]
        else:
            raise SystemExit(f"--only: unknown scenario {item!r} (one of: http, {', '.join(SCENARIOS)})")
    return [name for name in SCENARIOS if name in names]


# ---- formatting --------------------------------------------------------------------------------------------------
def num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return DASH
    return f"{value:,.{digits}f}"


def ms(value: float | None) -> str:
    if value is None:
        return DASH
    return num(value, 1 if value < 100 else 0)


def pair(ours: str, theirs: str) -> str:
    return f"{ours} / {theirs}"


def ratio(ours: float, theirs: float | None) -> str:
    return f"**{ours / theirs:.2f}x**" if theirs else DASH


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


TABLE1 = [
    "route or scenario", "suite req/s", "original req/s", "ratio", "p50 ms suite / original",
    "p99 ms suite / original", "CPU ms per request suite / original",
]  # fmt: skip
TABLE2 = ["scenario (ours only)", "throughput", "p50 ms", "p99 ms", "CPU ms per request", "check"]


def side_by_side(http: HttpRun | None, socket_run: sockets.SocketsRun | None) -> tuple[str, list[str]]:
    rows, notes = [], []
    if http is not None:
        for route in BASELINE_ROUTES:
            ours = next((r for r in http.results if r.route == route and r.target == "suite (edge)"), None)
            theirs = next((r for r in http.results if r.route == route and r.target == "original stack"), None)
            if ours is None:
                continue
            rows.append([
                f"{route} (edge)",
                num(ours.rps),
                num(theirs.rps) if theirs else DASH,
                ratio(ours.rps, theirs.rps if theirs else None),
                pair(ms(ours.p50_ms), ms(theirs.p50_ms) if theirs else DASH),
                pair(ms(ours.p99_ms), ms(theirs.p99_ms) if theirs else DASH),
                pair(num(ours.cpu_ms, 2), num(theirs.cpu_ms, 2) if theirs else DASH),
            ])  # fmt: skip
            db = pair(num(ours.db_cpu_ms, 2), num(theirs.db_cpu_ms, 2) if theirs else DASH)
            errors = f"; errors {ours.errors} / {theirs.errors if theirs else DASH}" if ours.errors or (
                theirs and theirs.errors) else ""  # fmt: skip
            notes.append(f"{route}: MariaDB CPU ms per request suite / original {db}{errors}")
        notes.append(f"HTTP: {http.setting}")
    if socket_run is not None:
        ours_s = next(r for r in socket_run.results if r.target == "suite (edge)")
        theirs_s = next((r for r in socket_run.results if r.target.startswith("original")), None)
        clients = ours_s.figures["held"] + ours_s.figures["failed"]
        rows.append([
            f"Socket.IO, {clients:,} clients (edge; messages delivered/s, offered load fixed)",
            num(ours_s.deliveries_per_second),
            num(theirs_s.deliveries_per_second) if theirs_s else DASH,
            ratio(ours_s.deliveries_per_second, theirs_s.deliveries_per_second if theirs_s else None),
            pair(ms(ours_s.figures["p50"]), ms(theirs_s.figures["p50"]) if theirs_s else DASH),
            pair(ms(ours_s.figures["p99"]), ms(theirs_s.figures["p99"]) if theirs_s else DASH),
            pair(num(ours_s.cpu_ms, 2), num(theirs_s.cpu_ms, 2) if theirs_s else DASH),
        ])  # fmt: skip
        held = "; ".join(
            f"{r.target}: held {r.figures['held']}, failed {r.figures['failed']}, received {r.figures['received']}"
            f"/{r.figures['expected']}, socket server {r.realtime_cpu_percent:.0f}% of a core"
            for r in socket_run.results
        )
        notes.append(f"Socket.IO: {socket_run.setting}; {held}")
    return table(TABLE1, rows), notes


def ours_only(
    http: HttpRun | None, hooks: webhooks.WebhookRun | None, ambulances: positions.PositionsRun | None
) -> tuple[str, list[str]]:
    rows, notes = [], []
    join = next((r for r in http.results if r.route == HTTP["joingenerate"]), None) if http else None
    if join is not None:
        rows.append([
            "POST /user/joingenerate (edge)", f"{num(join.rps)} req/s", ms(join.p50_ms), ms(join.p99_ms),
            num(join.cpu_ms, 2), f"non-2xx and socket errors {join.errors}",
        ])  # fmt: skip
    if hooks is not None:
        low, high = hooks.unique_sent
        cpu = 1000 * sum(hooks.cpu_seconds.values()) / max(1, hooks.posts)
        sent = f"{low:,}" if low == high else f"{low:,}..{high:,}"
        check = (
            f"applied {hooks.receipts:,} (distinct {hooks.distinct_receipts:,}) of {sent} unique sent,"
            f" published {hooks.published:,}, non-2xx {hooks.errors}: {'OK' if hooks.exactly_once else 'MISMATCH'}"
        )
        rows.append([
            f"POST /webhook, signed LiveKit events ({hooks.driver}, 10% redeliveries)",
            f"{num(hooks.events_per_second)} events/s", ms(hooks.p50_ms), ms(hooks.p99_ms), num(cpu, 2), check,
        ])  # fmt: skip
        notes.append(f"webhooks: {hooks.setting}; CPU: recording, edge, NATS, Redis per event")
    if ambulances is not None:
        f = ambulances.figures
        cpu = 1000 * sum(ambulances.cpu_seconds.values()) / max(1, ambulances.stored["count"])
        rows.append([
            f"{f['crews']:,} ambulances, one position a second (agent car-position)",
            f"{num(ambulances.stored_per_second)} updates/s stored", ms(f["p50"]), ms(f["p99"]), num(cpu, 2),
            f"stored {ambulances.stored['count']:,} of {f['sent']:,} sent, delivered {f['delivered']:,}"
            f"/{f['expected']:,}",
        ])  # fmt: skip
        notes.append(
            f"ambulances: {ambulances.setting}; CPU: every suite process per stored update; crew acknowledgement"
            f" p99 {ms(f['ackP99'])} ms; machine {ambulances.busy_percent:.0f}% busy during the load"
        )
    return table(TABLE2, rows), notes


def memory(rows_by_scenario: list[list[MemoryRow]]) -> str:
    scenarios = [rows[0].scenario for rows in rows_by_scenario if rows]
    names: list[str] = []
    idle: dict[str, float] = {}
    idle_pss: dict[str, float] = {}
    peak: dict[tuple[str, str], float] = {}
    original: set[str] = set()
    for rows in rows_by_scenario:
        for row in rows:
            if row.name not in names:
                names.append(row.name)
            idle.setdefault(row.name, row.idle_mb)
            idle_pss.setdefault(row.name, row.idle_pss_mb)
            peak[(row.name, row.scenario)] = row.peak_mb
            if row.original:
                original.add(row.name)
    order = sorted((n for n in names if n not in original), key=lambda n: (n in ("edge", "nats", "redis"), n))
    order += [n for n in names if n in original]
    header = ["process", "RSS idle MB", "PSS idle MB", *(f"RSS peak MB: {s}" for s in scenarios)]
    body = [
        [n, num(idle[n]), num(idle_pss[n]), *(num(peak[(n, s)]) if (n, s) in peak else DASH for s in scenarios)]
        for n in order
    ]
    return table(header, body)


def per_process(
    http: HttpRun | None,
    socket_run: sockets.SocketsRun | None,
    hooks: webhooks.WebhookRun | None,
    ambulances: positions.PositionsRun | None,
) -> str:
    """CPU ms per request (per delivered message, event, stored update) of each process of every scenario."""
    rows: list[tuple[str, dict[str, float]]] = []
    if http is not None:
        rows += [(f"{r.route} ({r.target})", r.cpu_detail) for r in http.results]
    if socket_run is not None:
        rows += [
            (f"Socket.IO ({r.target}), per message", {n: 1000 * c / max(1, r.figures["received"]) for n, c in
                                                       r.cpu_seconds.items()})
            for r in socket_run.results
        ]  # fmt: skip
    if hooks is not None:
        rows.append(
            ("POST /webhook, per event", {n: 1000 * c / max(1, hooks.posts) for n, c in hooks.cpu_seconds.items()})
        )
    if ambulances is not None:
        stored = max(1, ambulances.stored["count"])
        rows.append(
            ("ambulances, per stored update", {n: 1000 * c / stored for n, c in ambulances.cpu_seconds.items()})
        )
    names = sorted({name for _, detail in rows for name in detail})
    body = [[label, *(num(detail[n], 3) if n in detail else DASH for n in names)] for label, detail in rows]
    return table(["CPU ms per request", *names], body)


# ---- the run -----------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short loads, few clients: a smoke run")
    parser.add_argument("--only", action="append", default=[], help="scenario(s) to run (default: all)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the original stack")
    parser.add_argument("--per-process", action="store_true", help="also the CPU per request of each process")
    parser.add_argument("--direct", action="store_true", help="also the HTTP routes straight at their owner")
    parser.add_argument("--duration", type=int, default=0, help="seconds per HTTP route (default 15, quick 3)")
    parser.add_argument("--webhooks-driver", default="wrk", choices=["wrk", "httpx"])
    parser.add_argument("--json", default="", help="write every figure to this file")
    args = parser.parse_args(argv)
    names = selected(args.only)
    level = 1 if args.quick else 0
    baseline = not args.no_baseline
    command = "uv run python -m tests.bench" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    print(f"machine: {machine_line()}")
    print(f"command: `{command}`", flush=True)
    started = time.monotonic()

    def step(name: str, work: Callable[[], Any]) -> Any:
        began = time.monotonic()
        print(f"... {name}", file=sys.stderr, flush=True)
        result = work()
        print(f"... {name}: {time.monotonic() - began:.0f}s", file=sys.stderr, flush=True)
        return result

    http = sockets_run = hooks = ambulances = None
    routes = [HTTP[n] for n in names if n in HTTP]
    if routes:
        load = dict(HTTP_LOAD[level])
        if args.duration:
            load["duration"] = args.duration
        http = step(
            "HTTP routes",
            lambda: run.scenario(**load, baseline=baseline, only=routes, direct=args.direct),
        )
    if "sockets" in names:
        sockets_run = step("sockets", lambda: sockets.scenario(**SOCKETS_LOAD[level], baseline=baseline))
    if "webhooks" in names:
        hooks = step("webhooks", lambda: webhooks.scenario(**WEBHOOKS_LOAD[level], driver=args.webhooks_driver))
    if "positions" in names:
        ambulances = step("positions", lambda: positions.scenario(**POSITIONS_LOAD[level]))

    quick = " (quick)" if args.quick else ""
    print(f"\nTable 1. Side by side with the original stack (same invocation){quick}\n")
    text, notes = side_by_side(http, sockets_run)
    print(text)
    print("\n" + "\n".join(f"- {note}" for note in notes) if notes else "")
    print(
        "- CPU ms per request: suite = every process the benchmark started for it (all services, the nginx edge,"
        " its NATS and Redis), original = its node process; Socket.IO: per delivered message, connecting included."
    )
    print(f"\nTable 2. Ours only{quick}\n")
    text, notes = ours_only(http, hooks, ambulances)
    print(text)
    print("\n" + "\n".join(f"- {note}" for note in notes) if notes else "")
    print(f"\nTable 3. Memory (RSS of each process tree; a service is one process){quick}\n")
    scenario_memory = [r.memory for r in (http, sockets_run, hooks, ambulances) if r is not None]
    print(memory(scenario_memory))
    if args.per_process:
        print(f"\nCPU ms per request of each process{quick}\n")
        print(per_process(http, sockets_run, hooks, ambulances))
    print(f"\ntotal {time.monotonic() - started:.0f}s")
    if args.json:
        figures = {
            "machine": machine_line(),
            "command": command,
            **{
                name: dataclasses.asdict(value)
                for name, value in (("http", http), ("sockets", sockets_run), ("webhooks", hooks),
                                    ("positions", ambulances))
                if value is not None
            },
        }  # fmt: skip
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(figures, out, indent=1, default=str)
    return 1 if hooks is not None and not hooks.exactly_once else 0


if __name__ == "__main__":
    raise SystemExit(main())

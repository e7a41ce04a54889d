"""Benchmark of POST /webhook through the edge: signed LiveKit webhooks, 10% of them redeliveries.

    uv run python -m tests.bench.webhooks [--driver wrk|httpx] [--seconds 15] [--connections 32]
                                          [--events 2000 (httpx)] [--replays 0.1]

It starts its own recording service and edge (free ports, a ``bench_`` database, a private NATS and Redis).

``--driver wrk`` (the default): pre-builds enough signed unique events for ``--seconds`` at up to ``--max-rate``
events/s, 10% of the posts exact redeliveries of an earlier one (same body, same token), one slice per wrk thread
(each thread walks its own slice, so threads never send the same event; a thread that runs out starts its slice
again, which only adds redeliveries), and runs wrk for a fixed duration with a body and an ``Authorization`` header
per request. ``--driver httpx``: posts ``--events`` webhooks from a Python client (it saturates on this machine
before the service does).

Then it checks exactly-once: every receipt (webhook_receipt) unique, as many receipts as unique events sent (wrk:
between the events whose answers came back and those sent, the last in-flight ones may or may not have landed),
one RECORDING_WEBHOOK_RECEIVED outbox row per receipt (each applied event published once), and no non-2xx answer;
exit 1 otherwise. Not a test: no thresholds, just figures. ``KEEP_BENCH_LOGS=1`` keeps the service logs;
``BENCH_TRACE=1`` (httpx) prints ``TRACE <start s> <latency ms>`` per post.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from contracts.recording import RECORDING_WEBHOOK_RECEIVED
from deploy.local import DEFAULT_ENV, LocalSuite, free_port, start_private_brokers
from tests.bench.procs import CpuMeter, MemoryWatch
from tests.bench.run import MemoryRow, memory_rows, parse_wrk, suite_pids
from tests.fakes import livekit_webhooks as lkw

KINDS = ("participant_joined", "participant_left", "track_published", "room_started", "egress_updated")


def _unique_event(run: str, i: int) -> tuple[str, bytes, str]:
    key, secret = DEFAULT_ENV["LIVEKIT_API_KEY"], DEFAULT_ENV["LIVEKIT_API_SECRET"]
    room = f"bench-{run}-{i % 50}"
    kind = KINDS[i % len(KINDS)]
    fields: dict = {}
    if kind.startswith("participant") or kind == "track_published":
        fields["participant"] = lkw.participant(f"user{i % 200}")
    if kind == "egress_updated":
        fields["egressInfo"] = lkw.egress_info(f"EG_{run}_{i}", room)
    event_id = f"EV_{run}_{i}"
    body = lkw.encode(lkw.event(kind, room=room, event_id=event_id, **fields))
    return event_id, body, lkw.sign(body, key, secret, ttl=900)


def build(events: int, replay_share: float, run: str) -> tuple[list[tuple[bytes, str]], int]:
    """``events`` posts in random order, ``replay_share`` of them redeliveries (httpx driver)."""
    replays = int(events * replay_share)
    unique = [_unique_event(run, i)[1:] for i in range(events - replays)]
    rng = random.Random(7)
    posts = unique + [rng.choice(unique) for _ in range(replays)]
    rng.shuffle(posts)
    return posts, len(unique)


def build_slices(per_thread: int, threads: int, replay_share: float, run: str) -> list[list[tuple[str, bytes, str]]]:
    """One sequence of posts per wrk thread: unique events of its own, every ``1 / replay_share``-th post a
    redelivery of an earlier post of the same slice."""
    rng = random.Random(7)
    every = round(1 / replay_share) if replay_share > 0 else 0
    slices, n = [], 0
    for _ in range(threads):
        posts: list[tuple[str, bytes, str]] = []
        for k in range(per_thread):
            if every and k % every == every - 1 and posts:
                posts.append(posts[rng.randrange(len(posts))])
            else:
                posts.append(_unique_event(run, n))
                n += 1
        slices.append(posts)
    return slices


_WRK_SCRIPT = """
local prefix = "%(prefix)s"
local threads, count = {}, 0
function setup(thread)
  count = count + 1
  thread:set("slice", count)
  table.insert(threads, thread)
end
function init(args)
  tokens, bodies, sent = {}, {}, 0
  for line in io.lines(prefix .. slice) do
    local tab = line:find("\t", 1, true)
    tokens[#tokens + 1] = line:sub(1, tab - 1)
    bodies[#bodies + 1] = line:sub(tab + 1)
  end
end
function request()
  sent = sent + 1
  local i = (sent - 1) %% #bodies + 1
  local headers = {["Authorization"] = tokens[i], ["Content-Type"] = "%(content_type)s"}
  return wrk.format("POST", "/webhook", headers, bodies[i])
end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write(string.format("SENT %%d %%d\\n", thread:get("slice"), thread:get("sent")))
  end
end
"""


@dataclass
class WebhookRun:
    driver: str
    posts: int  # requests answered (wrk) or made (httpx)
    unique_sent: tuple[int, int]  # unique events sent: at least (answered), at most (sent, in flight included)
    events_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers and socket errors
    receipts: int
    distinct_receipts: int
    published: int  # RECORDING_WEBHOOK_RECEIVED outbox rows
    wrapped: bool  # a wrk thread ran out of pre-built events (then it only sent redeliveries)
    memory: list[MemoryRow]
    setting: str
    cpu_seconds: dict[str, float]

    @property
    def exactly_once(self) -> bool:
        low, high = self.unique_sent
        return (
            self.receipts == self.distinct_receipts == self.published
            and low <= self.receipts <= high
            and self.errors == 0
        )


def drive_wrk(
    edge: str, slices: list[list[tuple[str, bytes, str]]], seconds: int, connections: int, work: Path
) -> tuple[dict[str, float], dict[int, int]]:
    """wrk over the slices; (wrk's figures, posts generated per slice)."""
    prefix = work / "events."
    for number, posts in enumerate(slices, start=1):
        with open(f"{prefix}{number}", "wb") as out:
            for _, body, token in posts:
                assert b"\t" not in body and b"\n" not in body
                out.write(token.encode() + b"\t" + body + b"\n")
    script = work / "webhooks.lua"
    script.write_text(_WRK_SCRIPT % {"prefix": str(prefix), "content_type": lkw.CONTENT_TYPE}, encoding="utf-8")
    argv = ["wrk", f"-t{len(slices)}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), edge]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    sent = {int(m.group(1)): int(m.group(2)) for m in re.finditer(r"^SENT (\d+) (\d+)$", output, re.M)}
    return parse_wrk(output), sent


async def drive(edge: str, posts: list[tuple[bytes, str]], concurrency: int) -> tuple[float, list[float], int]:
    queue: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()
    for item in posts:
        queue.put_nowait(item)
    latencies: list[float] = []
    errors = 0
    origin = time.perf_counter()

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            body, token = queue.get_nowait()
            started = time.perf_counter()
            response = await client.post(
                "/webhook", content=body, headers={"Authorization": token, "Content-Type": lkw.CONTENT_TYPE}
            )
            latencies.append((time.perf_counter() - started) * 1000)
            if os.environ.get("BENCH_TRACE"):
                print(f"TRACE {started - origin:.3f} {latencies[-1]:.1f}")
            if response.status_code != 200:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=edge, timeout=30, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, sorted(latencies), errors


def _count(sql: str) -> int:
    out = subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-N", "-e", sql], capture_output=True, check=True)
    return int(out.stdout.strip())


def scenario(
    *,
    driver: str = "wrk",
    seconds: int = 15,
    connections: int = 32,
    threads: int = 2,
    max_rate: int = 3000,
    events: int = 2000,
    replays: float = 0.1,
) -> WebhookRun:
    run = uuid.uuid4().hex[:6]
    db_prefix = f"bench_{run}_"
    media = Path(tempfile.mkdtemp(prefix="bench-media-"))
    run_dir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    brokers, nats_url, redis_url = start_private_brokers(run_dir)
    suite = LocalSuite(
        edge_port=free_port(),
        service_ports={"recording": free_port()},
        db_prefix=db_prefix,
        nats_url=nats_url,
        redis_url=redis_url,
        extra_env={"RECORD_PATH": str(media)},
        run_dir=run_dir,
    )
    database = f"{db_prefix}recording"
    wrapped = False
    try:
        if driver == "wrk":
            slices = build_slices(max_rate * seconds // threads, threads, replays, run)
        else:
            posts, unique = build(events, replays, run)
        suite.start(["recording"])
        time.sleep(1)
        ours = suite_pids(suite, brokers)
        watch = MemoryWatch(ours)
        watch.idle()
        with watch, CpuMeter(ours) as meter:
            if driver == "wrk":
                figures, sent = drive_wrk(suite.edge, slices, seconds, connections, run_dir)
                in_flight = -(-connections // threads)
                low = high = 0
                for number, posts_ in enumerate(slices, start=1):
                    count = sent.get(number, 0)
                    wrapped = wrapped or count > len(posts_)
                    high += len({event_id for event_id, _, _ in posts_[:count]})
                    low += len({event_id for event_id, _, _ in posts_[: max(0, count - in_flight)]})
                rate, p50, p99, errors = figures["rps"], figures["p50"], figures["p99"], int(figures["errors"])
                answered = int(figures["requests"])
            else:
                elapsed, latencies, errors = asyncio.run(drive(suite.edge, posts, connections))
                low = high = unique
                rate, answered = len(posts) / elapsed, len(posts)
                p50 = latencies[len(latencies) // 2]
                p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        time.sleep(1)  # the last group commits land
        mine = f"FROM `{database}`.webhook_receipt WHERE eventId LIKE 'EV\\_{run}\\_%'"
        receipts = _count(f"SELECT COUNT(*) {mine}")  # noqa: S608 (our names)
        distinct = _count(f"SELECT COUNT(DISTINCT eventId) {mine}")  # noqa: S608
        published = _count(
            f"SELECT COUNT(*) FROM `{database}`.outbox WHERE subject = '{RECORDING_WEBHOOK_RECEIVED}'"  # noqa: S608
        )
    finally:
        suite.stop()
        for broker in brokers:
            broker.terminate()
        if os.environ.get("KEEP_BENCH_LOGS"):
            print(f"logs kept in {suite.run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(media, ignore_errors=True)
        subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-e", f"DROP DATABASE IF EXISTS `{database}`"], check=False)
    if driver == "wrk":
        setting = f"wrk -t{threads} -c{connections} -d{seconds}s, {replays:.0%} redeliveries, a slice per thread"
    else:
        setting = f"httpx, {events} posts ({replays:.0%} redeliveries), {connections} concurrent"
    return WebhookRun(
        driver, answered, (low, high), rate, p50, p99, errors, receipts, distinct, published, wrapped,
        memory_rows(watch, "webhooks"), setting, meter.used,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--driver", default="wrk", choices=["wrk", "httpx"])
    parser.add_argument("--seconds", type=int, default=15, help="wrk: duration")
    parser.add_argument("--connections", "--concurrency", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--max-rate", type=int, default=3000, help="wrk: events pre-built per second of the run")
    parser.add_argument("--events", type=int, default=2000, help="httpx: posts")
    parser.add_argument("--replays", type=float, default=0.1)
    args = parser.parse_args()
    r = scenario(
        driver=args.driver,
        seconds=args.seconds,
        connections=args.connections,
        threads=args.threads,
        max_rate=args.max_rate,
        events=args.events,
        replays=args.replays,
    )
    print(f"\nPOST /webhook through the edge: {r.setting}; {r.posts} posts answered")
    print(f"events/s {r.events_per_second:.0f}   p50 {r.p50_ms:.1f} ms   p99 {r.p99_ms:.1f} ms   errors {r.errors}")
    low, high = r.unique_sent
    print(
        f"receipts {r.receipts} (distinct {r.distinct_receipts}), published {r.published}, unique events sent"
        f" {low}..{high}{' (a thread ran out of events: raise --max-rate)' if r.wrapped else ''}:"
        f" {'OK' if r.exactly_once else 'MISMATCH'}"
    )
    cpu = sum(r.cpu_seconds.values()) * 1000 / max(1, r.posts)
    print(f"cpu ms per event (recording, edge, NATS, Redis): {cpu:.3f}")
    return 0 if r.exactly_once else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark of POST /webhook through the edge: signed LiveKit webhooks, 10% of them redeliveries.

    uv run python -m tests.bench.webhooks [--events 2000] [--replays 0.1] [--concurrency 32]

It starts its own recording service and edge (free ports, a ``bench_`` database, the machine's NATS and Redis),
posts ``--events`` webhooks of which ``--replays`` are exact redeliveries of an earlier one (same body, same
token), and prints events/s, p50/p99 latency and the applied count, which must equal the unique count (exit 1
otherwise). Not a test: no thresholds, just figures. ``KEEP_BENCH_LOGS=1`` keeps the service logs;
``BENCH_TRACE=1`` prints ``TRACE <start s> <latency ms>`` per post (where in the run the slow ones fall).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from deploy.local import DEFAULT_ENV, LocalSuite, free_port
from tests.fakes import livekit_webhooks as lkw

KINDS = ("participant_joined", "participant_left", "track_published", "room_started", "egress_updated")


def build(events: int, replay_share: float, run: str) -> tuple[list[tuple[bytes, str]], int]:
    key, secret = DEFAULT_ENV["LIVEKIT_API_KEY"], DEFAULT_ENV["LIVEKIT_API_SECRET"]
    replays = int(events * replay_share)
    unique: list[tuple[bytes, str]] = []
    for i in range(events - replays):
        room = f"bench-{run}-{i % 50}"
        kind = KINDS[i % len(KINDS)]
        fields: dict = {}
        if kind.startswith("participant") or kind == "track_published":
            fields["participant"] = lkw.participant(f"user{i % 200}")
        if kind == "egress_updated":
            fields["egressInfo"] = lkw.egress_info(f"EG_{run}_{i}", room)
        body = lkw.encode(lkw.event(kind, room=room, event_id=f"EV_{run}_{i}", **fields))
        unique.append((body, lkw.sign(body, key, secret, ttl=600)))
    rng = random.Random(7)
    posts = unique + [rng.choice(unique) for _ in range(replays)]
    rng.shuffle(posts)
    return posts, len(unique)


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


def applied(database: str, run: str) -> int:
    sql = f"SELECT COUNT(*) FROM `{database}`.webhook_receipt WHERE eventId LIKE 'EV\\_{run}\\_%'"  # noqa: S608
    out = subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-N", "-e", sql], capture_output=True, check=True)
    return int(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--replays", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:6]
    db_prefix = f"bench_{run}_"
    media = Path(tempfile.mkdtemp(prefix="bench-media-"))
    suite = LocalSuite(
        edge_port=free_port(),
        service_ports={"recording": free_port()},
        db_prefix=db_prefix,
        extra_env={"RECORD_PATH": str(media)},
    )
    posts, unique = build(args.events, args.replays, run)
    try:
        suite.start(["recording"])
        elapsed, latencies, errors = asyncio.run(drive(suite.edge, posts, args.concurrency))
        count = applied(suite.db_name("recording"), run)
    finally:
        suite.stop()
        if os.environ.get("KEEP_BENCH_LOGS"):
            print(f"logs kept in {suite.run_dir}")
        else:
            shutil.rmtree(suite.run_dir, ignore_errors=True)
        shutil.rmtree(media, ignore_errors=True)
        subprocess.run(
            ["mysql", "-uroot", "-h127.0.0.1", "-e", f"DROP DATABASE IF EXISTS `{db_prefix}recording`"], check=False
        )
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"\nPOST /webhook through the edge: {len(posts)} posts ({len(posts) - unique} replays), c={args.concurrency}")
    print(f"events/s {len(posts) / elapsed:.0f}   p50 {p50:.1f} ms   p99 {p99:.1f} ms   errors {errors}")
    print(f"applied {count} / unique {unique}: {'OK' if count == unique else 'MISMATCH'}")
    return 0 if count == unique and errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

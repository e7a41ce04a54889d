"""Conference's periodic jobs (conference.events.jobs) on two Scheduler "replicas" against the suite's database, Redis
and fake LiveKit: the expiry sweep runs once per slot and closes expired rooms in DB and LiveKit; the node health
check stamps only nodes that answer ListRooms. Also GET /room/checkexpired (the sweep on demand)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis

from conference.clients import LiveKitNodes
from conference.events import jobs
from servicekit.clock import LOCAL_TZ
from servicekit.db import Database
from servicekit.schedule import Scheduler
from servicekit.settings import CommonSettings
from tests.fakes.livekit import FakeLiveKit
from tests.support import rpc

ENSURE = "rpc.conference.room.ensure"


def room_name() -> str:
    return "Rj" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def now_local() -> datetime:
    return datetime.now(LOCAL_TZ).replace(tzinfo=None, microsecond=0)


async def conference_db(suite) -> Database:
    return await Database.connect(CommonSettings(mysql_database=suite.db_name("conference")), create=False)


async def closed_events(suite, room: str) -> int:
    rows = await suite.query("conference", "SELECT payload FROM outbox WHERE subject = 'conference.room.closed'")
    return sum(1 for r in rows if json.loads(r["payload"])["data"]["room"] == room)


async def expire(suite, room: str) -> None:
    await suite.execute(
        "conference",
        "UPDATE room_conference SET dtmExpired = %s WHERE room = %s",
        (now_local() - timedelta(hours=1), room),
    )


async def test_sweep_runs_once_across_replicas_and_closes_in_db_and_livekit(suite, nc):
    expired, fresh = room_name(), room_name()
    for room in (expired, fresh):
        assert (await rpc(nc, ENSURE, {"room": room}))["ok"]
        suite.livekit.ensure_room(room)
    await expire(suite, expired)

    db = await conference_db(suite)
    nodes = LiveKitNodes(db, suite.livekit.url, suite.env["LIVEKIT_API_KEY"], suite.env["LIVEKIT_API_SECRET"], 0)
    replicas = [Scheduler(Redis.from_url(suite.redis_url), f"conference-test-{uuid.uuid4().hex[:6]}") for _ in range(2)]
    replicas[1].service = replicas[0].service  # the same service: two replicas of it
    for replica in replicas:
        jobs.schedule(replica, db, nodes, "true")
    try:
        slot = datetime(2026, 11, 29, 15, 30, tzinfo=LOCAL_TZ)
        sweeps = [next(j for j in r.jobs if j.name == "auto-close-rooms") for r in replicas]
        ran = await asyncio.gather(*(r.run_slot(j, slot) for r, j in zip(replicas, sweeps, strict=True)))
        assert sorted(ran) == [False, True]
        assert sum(j.runs for j in sweeps) == 1 and all(j.last_error == "" for j in sweeps)

        sql = "SELECT room, status FROM room_conference WHERE room IN (%s, %s)"
        rows = await suite.query("conference", sql, (expired, fresh))
        status = {r["room"]: r["status"] for r in rows}
        assert status == {expired: "close", fresh: "open"}
        assert expired not in suite.livekit.rooms and fresh in suite.livekit.rooms
        assert await closed_events(suite, expired) == 1

        # Idempotent: the next slot finds nothing to close and publishes nothing.
        assert await replicas[1].run_slot(sweeps[1], slot + timedelta(minutes=30)) is True
        assert await closed_events(suite, expired) == 1
        assert await jobs.close_expired_rooms(db, nodes) == []
    finally:
        await nodes.close()
        await db.close()
        for replica in replicas:
            await replica.redis.aclose()


async def test_auto_close_switch():
    assert jobs.auto_close_enabled("true") and jobs.auto_close_enabled("1")
    assert (
        not jobs.auto_close_enabled("false")
        and not jobs.auto_close_enabled("")
        and not jobs.auto_close_enabled("FALSE")
    )


async def test_health_check_stamps_only_answering_nodes(suite):
    alive = FakeLiveKit("alivekey", "alive-secret-0123456789").start()
    dead = FakeLiveKit("deadkey", "dead-secret-0123456789").start()
    dead.down = True
    old = now_local() - timedelta(days=2)
    ids: list[int] = []
    for name, fake in (("alive", alive), ("dead", dead)):
        await suite.execute(
            "conference",
            "INSERT INTO node_livekit (nodeName, livekitHost, livekitLocal, livekitApiKey, livekitApiSecret,"
            " lastHealthCheck) VALUES (%s, %s, %s, %s, %s, %s)",
            (f"jobs-{name}", "wss://x.example", fake.url, fake.key, fake.secret, old),
        )
        ids.append((await suite.query("conference", "SELECT MAX(id) AS id FROM node_livekit"))[0]["id"])
    db = await conference_db(suite)
    nodes = LiveKitNodes(db, suite.livekit.url, suite.env["LIVEKIT_API_KEY"], suite.env["LIVEKIT_API_SECRET"], 0)
    scheduler = Scheduler(Redis.from_url(suite.redis_url), f"conference-test-{uuid.uuid4().hex[:6]}")
    jobs.schedule(scheduler, db, nodes, "true")
    try:
        health = next(j for j in scheduler.jobs if j.name == "livekit-health")
        assert await scheduler.run_slot(health, datetime(2026, 11, 29, 15, 10, tzinfo=LOCAL_TZ)) is True
        rows = await suite.query("conference", "SELECT id, lastHealthCheck FROM node_livekit WHERE id IN (%s, %s)",
                                 tuple(ids))  # fmt: skip
        checked: dict[int, Any] = {r["id"]: r["lastHealthCheck"] for r in rows}
        assert abs((checked[ids[0]] - now_local()).total_seconds()) < 30
        assert checked[ids[1]] == old  # the dead node is not stamped
        assert alive.calls_of("ListRooms")[-1].claims["video"]["roomList"] is True
    finally:
        await nodes.close()
        await db.close()
        await scheduler.redis.aclose()
        sql = "UPDATE room_conference SET nodeLivekitId = NULL WHERE nodeLivekitId IN (%s, %s)"
        await suite.execute("conference", sql, tuple(ids))
        await suite.execute("conference", "DELETE FROM node_livekit WHERE id IN (%s, %s)", tuple(ids))
        alive.stop()
        dead.stop()


async def test_checkexpired_route(suite, nc):
    room = room_name()
    assert (await rpc(nc, ENSURE, {"room": room}))["ok"]
    await expire(suite, room)
    async with httpx.AsyncClient(base_url=suite.edge, timeout=15) as client:
        denied = await client.get("/room/checkexpired")
        assert denied.json() == {"status": "FAIL", "message": "Invalid token"}
        res = await client.get("/room/checkexpired", headers={"Authorization": f"Bearer {suite.agent_token()}"})
    assert res.status_code == 200 and res.text == "Check room expired complete"
    rows = await suite.query("conference", "SELECT status FROM room_conference WHERE room = %s", (room,))
    assert rows == [{"status": "close"}]

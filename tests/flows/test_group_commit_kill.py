"""Group commit and batched consumers under ``kill -9``: patients' positions stream in through the edge while link
(whose writer commits them in batches) and then telemetry (whose consumers apply link's events in batches) are
killed mid-load and started again. Afterwards every position that was answered OK is stored exactly once, every
stored position was published exactly once, and telemetry applied each of those events exactly once (one
TASK_DESTINATION_CHANGED per event for the room's running task): nothing acknowledged lost, nothing applied twice.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from contracts.link import LINK_LOCATION_UPDATED
from contracts.telemetry import TASK_DESTINATION_CHANGED
from deploy.local import LocalSuite
from tests.instances import kill_service, private_suite, restart_service
from tests.support import query, until

SERVICES = ["conference", "link", "telemetry"]
WORKERS = 24
POSITIONS = 1200  # sent in all; link is killed after a quarter, telemetry after half
BASE_LATITUDE = Decimal("13.000000000")
STEP = Decimal("0.000001")  # each position's latitude is unique: BASE + seq * STEP


@pytest.fixture(scope="module")
def local(suite: Any) -> Iterator[LocalSuite]:
    # A killed consumer's unacknowledged batch comes back after the ack wait: 5 s here instead of 30.
    env = {**suite.env, "NATS_ACK_WAIT_SECONDS": "5"}
    with private_suite(SERVICES, env, label="killbatch") as started:
        yield started


def _seq(latitude: Any) -> int:
    return int((Decimal(str(latitude)) - BASE_LATITUDE) / STEP)


async def test_killed_writers_lose_nothing_acknowledged_and_apply_nothing_twice(suite: Any, local: LocalSuite) -> None:
    headers = {"Authorization": f"Bearer {suite.agent_token()}"}
    room = "Kill" + uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=local.edge, timeout=15) as client:
        created = (await client.post("/link/create", json={"room": room, "mobile": "0812345678", "sms": 0},
                                     headers=headers)).json()  # fmt: skip
        link_id = created["linkID"]
        task = (await client.post("/car/task", json={"room": room, "mobile": "0899999999"}, headers=headers)).json()
        assert task.get("status") == "OK", task

        async def link_known() -> bool:  # telemetry's copy of the link, so its position events reach the task
            rows = await query(local.db_name("telemetry"), "SELECT 1 FROM car_room_link WHERE linkID = %s", (link_id,))
            return bool(rows)

        assert await until(link_known, 20)

        counter = itertools.count()
        answered_ok: set[int] = set()
        killed = {"link": False, "telemetry": False}
        serving = asyncio.Event()  # cleared while a killed service restarts: senders wait rather than burn positions
        serving.set()

        async def kill_and_restart(service: str) -> None:
            killed[service] = True
            serving.clear()
            await asyncio.to_thread(kill_service, local, service)
            await asyncio.to_thread(restart_service, local, service)
            serving.set()

        async def worker() -> None:
            while (seq := next(counter)) < POSITIONS:
                await serving.wait()
                body = {"linkID": link_id, "room": room, "userType": "user",
                        "latitude": float(BASE_LATITUDE + seq * STEP), "longitude": 100.5}  # fmt: skip
                try:
                    reply = await client.post("/link/update/latlng", json=body)
                    if reply.status_code == 200 and reply.json() == {"status": "OK"}:
                        answered_ok.add(seq)
                except httpx.HTTPError:
                    pass  # the service was killed under this request: not acknowledged
                if seq >= POSITIONS // 4 and not killed["link"]:
                    await kill_and_restart("link")
                if seq >= POSITIONS // 2 and not killed["telemetry"]:
                    await kill_and_restart("telemetry")

        await asyncio.gather(*(worker() for _ in range(WORKERS)))
    assert killed == {"link": True, "telemetry": True}
    assert len(answered_ok) > POSITIONS // 2, "too few positions were accepted to mean anything"

    # Stored: every acknowledged position exactly once (and nothing stored twice, acknowledged or not).
    usage = await query(
        local.db_name("link"),
        "SELECT latitude FROM usage_status_log WHERE linkID = %s AND status = 'UpdateLatLngLinkDetail'",
        (link_id,),
    )
    stored = collections.Counter(_seq(row["latitude"]) for row in usage)
    assert answered_ok <= set(stored), f"acknowledged but not stored: {sorted(answered_ok - set(stored))[:10]}"
    assert max(stored.values()) == 1, [seq for seq, n in stored.items() if n > 1][:10]

    # Published: one LINK_LOCATION_UPDATED per stored position, all of them relayed to NATS.
    async def relayed() -> list[dict[str, Any]] | None:
        rows = await query(local.db_name("link"), "SELECT payload, published_at FROM outbox WHERE subject = %s",
                            (LINK_LOCATION_UPDATED,))  # fmt: skip
        return rows if rows and all(row["published_at"] for row in rows) else None

    events = await until(relayed, 30)
    assert events, "link's outbox was not drained after its restart"
    published = collections.Counter(_seq(json.loads(row["payload"])["data"]["position"]["latitude"]) for row in events)
    assert published == stored

    # Applied by telemetry: one destination change for the running task per published event, after its
    # batch was killed mid-way and redelivered (JetStream's ack wait).
    async def applied() -> collections.Counter[int] | None:
        rows = await query(local.db_name("telemetry"), "SELECT payload FROM outbox WHERE subject = %s",
                            (TASK_DESTINATION_CHANGED,))  # fmt: skip
        seen = collections.Counter(_seq(json.loads(row["payload"])["data"]["position"]["latitude"]) for row in rows)
        return seen if set(seen) >= set(published) else None

    seen = await until(applied, 60)
    assert seen, "telemetry did not apply every published position"
    assert seen == published, {seq: n for seq, n in seen.items() if n != 1}

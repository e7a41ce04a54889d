"""The crew app end to end, with the official Socket.IO JS client through the edge: a task made by POST /car/task,
the app's /mobile socket greeted with telemetry's task detail (RPC_TASK_DETAIL), its positions stored by telemetry
(RPC_TASK_LOCATION), and PUT /car/task pushed back to it by realtime (TASK_STATUS_CHANGED). Needs the realtime
service (and conference, which realtime's namespaces rely on)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import nats
import pytest

from servicekit.bus import stream_name
from tests.car_tasks import tasks_of
from tests.sockets import NODE, client


@pytest.fixture(scope="module")
async def realtime_ready(suite: Any) -> None:
    if not {"realtime", "conference"} <= set(suite.services):
        pytest.skip("needs the realtime and conference services")
    # Realtime's durable consumer of telemetry's stream must exist: it gets only events published after.
    nc = await nats.connect(suite.nats_url)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                await nc.jetstream().consumer_info(stream_name("telemetry"), "realtime-telemetry")
                return
            except Exception:
                assert time.monotonic() < deadline, "realtime's consumer of telemetry events is missing"
                await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def test_crew_app_round_trip(suite: Any, client_http: httpx.AsyncClient, realtime_ready: None) -> None:
    room = "Crew" + "".join(chr(ord("a") + b % 26) for b in uuid.uuid4().bytes[:10])
    auth = {"Authorization": f"Bearer {suite.agent_token()}"}
    made = await client_http.post("/car/task", json={"room": room, "mobile": "0899999999"}, headers=auth)
    uid = made.json()["data"]["uid"]
    crew = await client(NODE, f"{suite.edge}/mobile", "--query", f"task={uid}")
    try:
        await crew.connected()
        greeting = [await crew.until("event") for _ in range(3)]
        assert [x["event"] for x in greeting] == ["message", "status", "connection"]
        detail = greeting[2]["data"]
        assert detail["task"] == uid and detail["status"] == "open" and detail["room"] == room
        assert detail["current"] == {"latitude": None, "longitude": None}
        assert detail["destination"] == {"latitude": 0, "longitude": 0}
        assert detail["dtmCreated"].endswith("Z")

        await crew.send("location", {"latitude": 13.71, "longitude": 100.51, "accuracy": 5, "speed": 12})
        assert (await crew.until("event", "message"))["data"] == {"message": "received location"}
        row = (await tasks_of(suite, room))[0]
        assert float(row["latitude"]) == 13.71 and float(row["longitude"]) == 100.51 and row["speed"] == 12
        await crew.send("location", {"latitude": 123, "longitude": 0})  # refused by telemetry: no acknowledgement
        assert await crew.quiet("message", 1.0) == []
        assert float((await tasks_of(suite, room))[0]["latitude"]) == 13.71

        assert (await client_http.put("/car/task", json={"id": uid, "status": "start"})).status_code == 200
        pushed = [await crew.until("event", timeout=15) for _ in range(2)]
        assert [(x["event"], x["data"]) for x in pushed] == [
            ("status", {"status": "start"}),
            ("message", {"message": "task status update"}),
        ]
        assert (await client_http.put("/car/task", json={"id": uid, "status": "arrive"})).status_code == 200
        pushed = [await crew.until("event", timeout=15) for _ in range(4)]
        assert [(x["event"], x["data"]) for x in pushed] == [
            ("status", {"status": "arrive"}),
            ("message", {"message": "task status update"}),
            ("destination", {"latitude": 0, "longitude": 0}),  # the room's tenant is unknown here
            ("message", {"message": "destination update"}),
        ]
    finally:
        await crew.close()


@pytest.fixture
async def client_http(suite: Any) -> Any:
    async with httpx.AsyncClient(base_url=suite.edge, timeout=30) as http:
        yield http

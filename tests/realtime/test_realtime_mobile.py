"""The /mobile namespace (ambulance crew app), room ``carTracking``, the /queue closeRoom broadcast and the
``/api/realtime/*`` views, with the official JS client through the edge and the real owners: tasks made by
telemetry (POST /car/task), rooms and patient links made by link (POST /link/create, which has conference open
the room). Plain NATS subscriptions beside the owners' responders see what realtime forwards to them
(tests/sockets.py ``watch``).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from contracts.conference import CASE_ROOM_OPENED, ROOM_CLOSED
from contracts.link import RPC_LINK_ROOM_HISTORY
from contracts.telemetry import RPC_CAR_TRACKING, RPC_ROOM_CAR_POSITION, RPC_TASK_DETAIL, RPC_TASK_LOCATION
from tests.car_tasks import make_linked_room, make_tenant
from tests.sockets import (
    NODE,
    chat,
    joined,
    link_created,
    listen,
    participant,
    publish,
    room_name,
    wait_for_consumers,
    wait_registered,
    watch,
)
from tests.sockets import client as socket_client
from tests.support import rpc

pytestmark = pytest.mark.usefixtures("needs_realtime", "node_client", "consumers_ready")
AUTH_HEADER = "Authorization"


@pytest.fixture(scope="module")
def needs_realtime(suite: Any) -> None:
    if "conference" not in suite.services or "realtime" not in suite.services:
        pytest.skip("needs conference and realtime")


@pytest.fixture(scope="module")
async def owners(suite: Any) -> None:
    """Telemetry and link answer for real, and realtime's durable consumer of telemetry's stream exists (it
    delivers only events published after it was made)."""
    if not {"telemetry", "link"} <= set(suite.services):
        pytest.skip("needs telemetry and link")
    await wait_for_consumers(suite.nats_url, (("telemetry", "realtime-telemetry"),))


def _auth(suite: Any) -> dict[str, str]:
    return {AUTH_HEADER: f"Bearer {suite.agent_token()}"}


async def new_task(suite: Any, client: httpx.AsyncClient, room: str, mobile: str = "0899999999") -> str:
    made = await client.post("/car/task", json={"room": room, "mobile": mobile}, headers=_auth(suite))
    assert made.json()["status"] == "OK", made.text
    return str(made.json()["data"]["uid"])


async def task_row(suite: Any, uid: str) -> dict[str, Any]:
    return (await suite.query("telemetry", "SELECT * FROM car_track WHERE uid = %s", (uid,)))[0]


def _set(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is not None}


# ---- /mobile ---------------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("owners")
@pytest.mark.parametrize("transport", ["websocket", "polling"])
@pytest.mark.parametrize("param", ["task", "id"])
async def test_mobile_task_socket_round_trip(
    suite: Any, client: httpx.AsyncClient, nc: Any, transport: str, param: str
) -> None:
    tenant = await make_tenant(suite, client, "Base", 13.9, 100.7)
    room, link = await make_linked_room(suite, client, tenant)
    await wait_registered(suite, f"/{room}")
    uid = await new_task(suite, client, room)
    detail = (await rpc(nc, RPC_TASK_DETAIL, {"uid": uid}))["data"]
    assert detail["task"] == uid and detail["room"] == room and detail["status"] == "open"
    located, subscription = await watch(nc, RPC_TASK_LOCATION)
    _, agent_token = participant(suite, room, "admin", "Dr. A")
    _, patient_token = participant(suite, room, "user", "0812345678")
    agent = await joined(NODE, suite, room, agent_token)
    patient = await joined(NODE, suite, room, patient_token)
    crew = await client_socket(suite, transport, f"{param}={uid}")
    try:
        await crew.connected()
        greeting = [await crew.until("event") for _ in range(3)]
        assert [(x["event"], x["data"]) for x in greeting] == [
            ("message", {"message": "connection success"}),
            ("status", {"status": "connection-success"}),
            ("connection", detail),
        ]
        # the crew app's position goes to telemetry, as an object or as a JSON string, and is shown in the room
        await crew.send("location", {"latitude": 13.71, "longitude": 100.51, "accuracy": 5, "speed": None})
        assert (await crew.until("event", "message"))["data"] == {"message": "received location"}
        # (the first car-position is the task's row without a position, shown when the patient connected)
        shown = [(await agent.until("event", "car-position", timeout=15))["data"] for _ in range(2)]
        assert [(x["uid"], x["room"], x["latitude"]) for x in shown] == [(uid, room, None), (uid, room, "13.710000000")]
        await crew.send("location", json.dumps({"latitude": "13.72", "longitude": 100.52}))
        assert (await crew.until("event", "message"))["data"] == {"message": "received location"}
        sent = [_set(r) for r in await located.count(2)]
        assert sent == [
            {"uid": uid, "latitude": 13.71, "longitude": 100.51, "accuracy": 5.0},
            {"uid": uid, "latitude": 13.72, "longitude": 100.52},
        ]
        row = await task_row(suite, uid)
        assert (float(row["latitude"]), float(row["longitude"])) == (13.72, 100.52)
        # refused (telemetry: out of range) and unparseable positions get no "received location"
        await crew.send("location", {"latitude": 123, "longitude": 0})
        await crew.send("location", "{not json")
        await crew.send("status", {"status": "whatever"})  # accepted and ignored
        assert await crew.quiet("message", 1.0) == []
        assert len(located.seen) == 3  # only the out-of-range one reached telemetry
        assert float((await task_row(suite, uid))["latitude"]) == 13.72
        # telemetry's events reach the task's sockets (socket.io room task:<uid>), in the original's order:
        # PUT /car/task arrive (TASK_STATUS_CHANGED with the tenant's position as the destination) ...
        updated = await client.put("/car/task", json={"id": uid, "status": "arrive"})
        assert updated.json()["status"] == "OK", updated.text
        pushed = [await crew.until("event", timeout=15) for _ in range(4)]
        assert [(x["event"], x["data"]) for x in pushed[:2]] + [(x["event"], x["data"]) for x in pushed[3:]] == [
            ("status", {"status": "arrive"}),
            ("message", {"message": "task status update"}),
            ("message", {"message": "destination update"}),
        ]
        assert pushed[2]["event"] == "destination"
        assert {k: float(v) for k, v in pushed[2]["data"].items()} == {"latitude": 13.9, "longitude": 100.7}
        # ... and the patient's new position in the room (link -> telemetry: TASK_DESTINATION_CHANGED)
        await patient.send("user-position", {"linkID": link, "latitude": 13.6, "longitude": 100.4, "accuracy": 3})
        pushed = [await crew.until("event", timeout=15) for _ in range(2)]
        assert [x["event"] for x in pushed] == ["destination", "message"]
        assert _set(pushed[0]["data"]) == {"latitude": 13.6, "longitude": 100.4, "accuracy": 3}
        assert pushed[1]["data"] == {"message": "destination update"}
    finally:
        await subscription.unsubscribe()
        await crew.close()
        await agent.close()
        await patient.close()


async def client_socket(suite: Any, transport: str, query: str) -> Any:
    return await socket_client(NODE, f"{suite.edge}/mobile", "--transport", transport, "--query", query)


@pytest.mark.usefixtures("owners")
async def test_mobile_push_reaches_only_that_task(suite: Any, client: httpx.AsyncClient) -> None:
    mine = await new_task(suite, client, room_name())
    other = await new_task(suite, client, room_name())
    a = await client_socket(suite, "websocket", f"task={mine}")
    b = await client_socket(suite, "websocket", f"id={other}")
    try:
        for c in (a, b):
            await c.connected()
            await c.until("event", "connection")
        assert (await client.put("/car/task", json={"id": mine, "status": "cancel"})).json()["status"] == "OK"
        assert (await a.until("event", "status", timeout=15))["data"] == {"status": "cancel"}
        assert (await a.until("event", "message"))["data"] == {"message": "task status update"}
        await asyncio.sleep(1.0)
        assert await b.quiet("status", 0.5) == []
    finally:
        await a.close()
        await b.close()


@pytest.mark.usefixtures("owners")
@pytest.mark.usefixtures("owners")
@pytest.mark.parametrize(
    ("query", "asked_uid"),
    [("task=NOSUCH1", "NOSUCH1"), ("id=", None), ("task=a%27%20OR%201%3D1", None)],  # the last: refused by realtime
)
async def test_mobile_unknown_task_is_told_and_dropped(suite: Any, nc: Any, query: str, asked_uid: str | None) -> None:
    asked, subscription = await watch(nc, RPC_TASK_DETAIL)
    args = ["--query", query] if query.split("=", 1)[1] else []
    crew = await socket_client(NODE, f"{suite.edge}/mobile", *args)
    try:
        await crew.connected()
        seen = [await crew.next(10) for _ in range(3)]
        assert [(x["type"], x.get("event"), x.get("data")) for x in seen[:2]] == [
            ("event", "status", {"status": "failed"}),
            ("event", "message", {"message": "invalid task id"}),
        ]
        assert seen[2] == {"type": "disconnect", "reason": "io server disconnect"}
        if asked_uid:  # telemetry was asked and answered not_found
            assert await asked.count(1) == [{"uid": asked_uid}]
        else:
            assert asked.seen == []
    finally:
        await subscription.unsubscribe()
        await crew.close()


# ---- room carTracking ------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("owners")
async def test_car_tracking_in_a_room(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    tenant = await make_tenant(suite, client, "Base", 13.9, 100.7)
    room, _ = await make_linked_room(suite, client, tenant)
    await wait_registered(suite, f"/{room}")
    tracked, subscription = await watch(nc, RPC_CAR_TRACKING)
    _, crew_token = participant(suite, room, "admin", "car-1")
    _, agent_token = participant(suite, room, "admin", "Dr. A")
    crew = await joined(NODE, suite, room, crew_token)
    agent = await joined(NODE, suite, room, agent_token)
    late = None
    try:
        await crew.send("carTracking", {"status": "initial", "userName": "car-1"})
        for c in (crew, agent):
            assert (await c.until("event", "agentCar"))["data"] is None  # nothing tracked yet in this room
        moving = {"status": "start", "userName": "car-1", "latitude": 13.7, "longitude": 100.5, "accuracy": 4,
                  "speed": 10, "heading": 90, "altitude": 1, "altitudeAccuracy": 2}  # fmt: skip
        await crew.send("carTracking", moving)
        for c in (crew, agent):
            assert (await c.until("event", "agentCar"))["data"] == moving
        sent = [_set(r) for r in await tracked.count(2)]
        assert sent == [
            {"room": room, "userName": "car-1", "status": "initial"},
            {"room": room, **{k: float(v) if k not in ("status", "userName") else v for k, v in moving.items()}},
        ]
        # telemetry stored it (CAR_POSITION_UPDATED): the room is shown the row, the room's newest car row
        shown = [(await c.until("event", "car-position", timeout=15))["data"] for c in (crew, agent)]
        newest = (await rpc(nc, RPC_ROOM_CAR_POSITION, {"room": room}))["data"]
        assert shown == [newest, newest]
        assert newest["room"] == room and newest["userName"] == "car-1" and float(newest["latitude"]) == 13.7
        assert (float(newest["accuracy"]), newest["speed"], newest["heading"]) == (4, 10, 90)
        # the last car payload is in Redis: a socket that joins later (any instance) gets it on "initial";
        # a patient (userType user) who connects is shown the room's newest stored car position
        _, late_token = participant(suite, room, "user", "0812345678")
        late = await joined(NODE, suite, room, late_token)
        for c in (crew, agent):
            assert (await c.until("event", "car-position"))["data"] == newest
        await late.send("carTracking", {"status": "initial"})
        assert (await late.until("event", "agentCar"))["data"] == moving
        # getDestination: the room's patient link from telemetry's reply, to the whole room
        await crew.send("carTracking", {**moving, "status": "getDestination"})
        asked = {"room": room, "userName": "car-1", "status": "getDestination"}
        destination = (await rpc(nc, RPC_CAR_TRACKING, asked))["data"]["destination"]
        assert destination["mobile"] == "0812345678"
        for c in (crew, agent, late):
            assert (await c.until("event", "destination"))["data"] == destination
        # no userName: the room still sees agentCar, telemetry is not asked
        await tracked.count(4)  # initial, start, the crew's getDestination and the test's own
        await crew.send("carTracking", {"status": "start", "latitude": 1, "longitude": 2})
        assert (await agent.until("event", "agentCar"))["data"] == {"status": "start", "latitude": 1, "longitude": 2}
        await asyncio.sleep(0.5)
        assert len(tracked.seen) == 4
    finally:
        await subscription.unsubscribe()
        for c in (crew, agent, late):
            if c is not None:
                await c.close()


# ---- /api/realtime/* ----------------------------------------------------------------------------------------
async def test_api_realtime_views(suite: Any, room: str) -> None:
    admin_id, admin_token = participant(suite, room, "admin", "Dr. A")
    admin = await joined(NODE, suite, room, admin_token)
    try:
        await admin.send("chat-message", chat("hello api", admin_id, "admin"))
        await admin.until("event", "chat-message")
        agent = {"Authorization": f"Bearer {suite.agent_token()}"}
        async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as http:
            presence = (await http.get(f"/api/realtime/presence/{room}", headers=agent)).json()
            assert presence["success"] is True
            assert [(u["identity"], u["userName"]) for u in presence["users"]] == [(admin_id, "Dr. A")]
            detail = (await http.get(f"/api/realtime/rooms/{room}", headers=agent)).json()
            assert detail == {"success": True, "room": room, "namespace": f"/{room}", "open": True, "connections": 1}
            messages = (await http.get(f"/api/realtime/chat/{room}", headers=agent)).json()["messages"]
            assert [m["text"] for m in messages] == ["hello api"]
            # no token: the original's FAIL; a patient's room token is not enough
            anonymous = await http.get(f"/api/realtime/presence/{room}")
            assert anonymous.json()["status"] == "FAIL"
            bound = await http.get(f"/api/realtime/chat/{room}", headers={"Authorization": f"Bearer {admin_token}"})
            assert bound.status_code == 403 and bound.json() == {"success": False, "message": "Forbidden"}
            bad = await http.get("/api/realtime/rooms/undefined", headers=agent)
            assert bad.status_code == 400 and bad.json()["success"] is False
        await admin.leave()
        async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as http:
            deadline = time.monotonic() + 10
            while (await http.get(f"/api/realtime/presence/{room}", headers=agent)).json()["users"]:
                assert time.monotonic() < deadline, "presence kept a socket that left"
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


# ---- registry fed by conference's room events -------------------------------------------------------------
async def test_case_room_opened_registers_and_expiry_drops_data_namespace(suite: Any) -> None:
    room = room_name()
    await publish(suite.nats_url, "conference", CASE_ROOM_OPENED,
                  {"room": room, "caseId": 1, "service": 999, "dtmExpired": "2030-01-01 00:00:00"})  # fmt: skip
    await wait_registered(suite, f"/{room}")
    await publish(suite.nats_url, "link", "link.link.created", link_created(room, room))
    await wait_registered(suite, f"/data/{room}")
    crm = await listen(NODE, f"{suite.edge}/data/{room}", "--token", suite.agent_token(), "--count", "99",
                       "--timeout", "20000")  # fmt: skip
    try:
        await crm.connected()
        await publish(suite.nats_url, "conference", ROOM_CLOSED,
                      {"room": room, "roomType": "conference", "status": "close", "closedBy": "expired"})  # fmt: skip
        assert (await crm.until("disconnect", timeout=15))["reason"] == "io server disconnect"
        await wait_registered(suite, f"/{room}", present=False)
        await wait_registered(suite, f"/data/{room}", present=False)
    finally:
        await crm.close()


# ---- /queue closeRoom -----------------------------------------------------------------------------------------
async def test_closing_a_room_sends_links_first_history_row(suite: Any, nc: Any) -> None:
    """Through link for real: the closeRoom row is link's SMS-link history row of the room; then the room's
    sockets are dropped and its namespace unregistered."""
    if "link" not in suite.services:
        pytest.skip("needs link")
    token = suite.agent_token()
    auth = {"Authorization": f"Bearer {token}"}
    room = room_name()
    asked, subscription = await watch(nc, RPC_LINK_ROOM_HISTORY)
    async with httpx.AsyncClient(base_url=suite.edge, timeout=20) as http:
        created = await http.post(
            "/link/create", json={"room": room, "mobile": "0812345678", "userName": "Somchai", "service": 999},
            headers=auth,
        )  # fmt: skip
        assert created.status_code == 200, created.text
        link = created.json()["linkID"]
        await wait_registered(suite, f"/{room}")
        history = (await rpc(nc, RPC_LINK_ROOM_HISTORY, {"room": room}))["data"]
        assert history["linkID"] == link and history["room"] == room and history["mobile"] == "0812345678"
        dashboard = await listen(NODE, f"{suite.edge}/queue", "--token", token, "--count", "99", "--timeout", "20000")
        _, patient_token = participant(suite, room, "user", "0812345678")
        patient = await joined(NODE, suite, room, patient_token)
        try:
            await dashboard.connected()
            response = await http.put("/room/close", json={"room": room}, headers=auth)
            assert response.json() == {"status": "OK", "room": room}
            got = await dashboard.until("event", "queue", timeout=15)
            assert got["data"]["status"] == "closeRoom"
            row = got["data"]["data"]
            assert {k: row[k] for k in ("caseId", "linkID", "room", "mobile")} == {
                k: history[k] for k in ("caseId", "linkID", "room", "mobile")
            }
            assert (await patient.until("disconnect", timeout=15))["reason"] == "io server disconnect"
            assert asked.seen == [{"room": room}, {"room": room}]  # the test's own, then realtime's
        finally:
            await subscription.unsubscribe()
            await dashboard.close()
            await patient.close()
        await wait_registered(suite, f"/{room}", present=False)

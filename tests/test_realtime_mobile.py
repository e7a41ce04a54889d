"""The /mobile namespace (ambulance crew app), room ``carTracking``, the /queue closeRoom broadcast and the
``/api/realtime/*`` views, with the official JS client through the edge.

Telemetry (car_track) and link's room-history RPC are served here by a small NATS responder speaking the
contract in servicekit.events, and telemetry's events are published onto its JetStream stream, as telemetry's
outbox relay would. When the real service answers those subjects the tests that need the fake are skipped (the
fake would race the real responder).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import nats
import pytest

from servicekit.bus import stream_name
from servicekit.events import (
    CAR_POSITION_UPDATED,
    CASE_ROOM_OPENED,
    ROOM_CLOSED,
    RPC_CAR_TRACKING,
    RPC_LINK_ROOM_HISTORY,
    RPC_ROOM_CAR_POSITION,
    RPC_TASK_DETAIL,
    RPC_TASK_LOCATION,
    TASK_DESTINATION_CHANGED,
    TASK_STATUS_CHANGED,
)
from tests.test_realtime_rooms import NODE, chat, client, joined, participant  # noqa: F401
from tests.test_realtime_rooms import room as room  # noqa: F401 - fixture
from tests.test_realtime_socket import (  # noqa: F401 - fixtures
    consumers_ready,
    link_created,
    listen,
    node_client,
    publish,
    room_name,
    wait_registered,
)

pytestmark = pytest.mark.usefixtures("needs_realtime", "node_client", "consumers_ready", "telemetry_consumer")


@pytest.fixture(scope="module")
def needs_realtime(suite: Any) -> None:
    if "conference" not in suite.services or "realtime" not in suite.services:
        pytest.skip("needs conference and realtime")


@pytest.fixture(scope="module")
async def telemetry_consumer(suite: Any) -> None:
    """Realtime's durable consumer of telemetry's stream exists (it delivers only events published after)."""
    nc = await nats.connect(suite.nats_url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + 15
        while True:
            try:
                await js.consumer_info(stream_name("telemetry"), "realtime-telemetry")
                return
            except Exception:
                assert time.monotonic() < deadline, "realtime-telemetry consumer missing"
                await asyncio.sleep(0.1)
    finally:
        await nc.close()


class FakeResponder:
    """Answers request/reply subjects like servicekit's Bus.serve does, and records the requests."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self.car_rows: dict[str, dict[str, Any]] = {}  # room -> newest car_track row (RPC_ROOM_CAR_POSITION)
        self.serves_car_position = False

    async def serve(self, subject: str, answer: Callable[[dict[str, Any]], tuple[bool, Any, str]]) -> None:
        async def on_request(msg: Any) -> None:
            request = json.loads(msg.data)
            self.requests.setdefault(subject, []).append(request)
            ok, data, code = answer(request)
            reply = {"ok": True, "data": data} if ok else {"ok": False, "code": code, "error": code}
            await msg.respond(json.dumps(reply).encode())

        await self.nc.subscribe(subject, cb=on_request)

    async def seen(self, subject: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.requests.get(subject, [])) < count:
            assert time.monotonic() < deadline, f"{subject}: {self.requests.get(subject)}"
            await asyncio.sleep(0.05)
        return self.requests[subject]


async def _answered_elsewhere(nc: Any, subject: str, payload: dict[str, Any]) -> bool:
    try:
        await nc.request(subject, json.dumps(payload).encode(), timeout=0.5)
    except Exception:
        return False
    return True


@pytest.fixture
async def fake(suite: Any) -> AsyncIterator[FakeResponder]:
    nc = await nats.connect(suite.nats_url)
    try:
        yield FakeResponder(nc)
    finally:
        await nc.close()


def task_uid() -> str:
    return "T" + uuid.uuid4().hex[:7].upper()


def task_detail(uid: str, room: str, status: str = "start") -> dict[str, Any]:
    return {
        "task": uid, "status": status, "dtmCreated": "2024-05-01 10:00:00", "dtmUpdated": "2024-05-01 10:05:00",
        "room": room, "current": {"latitude": 13.7, "longitude": 100.5},
        "destination": {"latitude": 13.75, "longitude": 100.52},
    }  # fmt: skip


@pytest.fixture
async def telemetry(fake: FakeResponder) -> FakeResponder:
    """The telemetry side of the contract: tasks whose uid starts with "T" exist (room "Room" + uid)."""
    if await _answered_elsewhere(fake.nc, RPC_TASK_DETAIL, {"uid": "PROBE0"}):
        pytest.skip("telemetry serves the task RPCs: go through telemetry")

    def detail(req: dict[str, Any]) -> tuple[bool, Any, str]:
        uid = req.get("uid", "")
        return (True, task_detail(uid, "Room" + uid), "") if uid.startswith("T") else (False, None, "not_found")

    def location(req: dict[str, Any]) -> tuple[bool, Any, str]:
        if not req.get("uid", "").startswith("T"):
            return False, None, "not_found"
        if req.get("latitude") is not None and not -90 <= req["latitude"] <= 90:
            return False, None, "bad_request"
        return True, {"stored": True}, ""

    def tracking(req: dict[str, Any]) -> tuple[bool, Any, str]:
        destination = {"userName": "0812345678", "mobile": "0812345678", "latitude": 13.8, "longitude": 100.6,
                       "patientLatitude": 13.81, "patientLongitude": 100.61}  # fmt: skip
        return True, {"stored": True, "destination": destination if req.get("status") == "getDestination" else None}, ""

    await fake.serve(RPC_TASK_DETAIL, detail)
    await fake.serve(RPC_TASK_LOCATION, location)
    await fake.serve(RPC_CAR_TRACKING, tracking)
    if not await _answered_elsewhere(fake.nc, RPC_ROOM_CAR_POSITION, {"room": "probe"}):
        await fake.serve(RPC_ROOM_CAR_POSITION, lambda req: (True, fake.car_rows.get(req.get("room", "")), ""))
        fake.serves_car_position = True
    return fake


def _events(c: Any, name: str) -> list[Any]:
    return [x["data"] for x in c.lines if x["type"] == "event" and x["event"] == name]


# ---- /mobile ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("transport", ["websocket", "polling"])
@pytest.mark.parametrize("param", ["task", "id"])
async def test_mobile_task_socket_round_trip(suite: Any, telemetry: FakeResponder, transport: str, param: str) -> None:
    uid = task_uid()
    crew = await client(NODE, f"{suite.edge}/mobile", "--transport", transport, "--query", f"{param}={uid}")
    try:
        await crew.connected()
        greeting = [await crew.until("event") for _ in range(3)]
        assert [(x["event"], x["data"]) for x in greeting] == [
            ("message", {"message": "connection success"}),
            ("status", {"status": "connection-success"}),
            ("connection", task_detail(uid, "Room" + uid)),
        ]
        # the crew app's position goes to telemetry, as an object or as a JSON string
        await crew.send("location", {"latitude": 13.71, "longitude": 100.51, "accuracy": 5, "speed": None})
        assert (await crew.until("event", "message"))["data"] == {"message": "received location"}
        await crew.send("location", json.dumps({"latitude": "13.72", "longitude": 100.52}))
        assert (await crew.until("event", "message"))["data"] == {"message": "received location"}
        stored = [{k: v for k, v in r.items() if v is not None} for r in await telemetry.seen(RPC_TASK_LOCATION, 2)]
        assert stored[0] == {"uid": uid, "latitude": 13.71, "longitude": 100.51, "accuracy": 5.0}
        assert stored[1] == {"uid": uid, "latitude": 13.72, "longitude": 100.52}
        # refused and unparseable positions get no "received location"
        await crew.send("location", {"latitude": 123, "longitude": 0})
        await crew.send("location", "{not json")
        await crew.send("status", {"status": "whatever"})  # accepted and ignored
        assert await crew.quiet("message", 1.0) == []
        # telemetry's events reach the task's sockets (socket.io room task:<uid>), in the original's order
        await publish(suite.nats_url, "telemetry", TASK_STATUS_CHANGED, {
            "uid": uid, "room": "Room" + uid, "status": "arrive", "destination": {"latitude": 13.9, "longitude": 100.7},
        })  # fmt: skip
        pushed = [await crew.until("event", timeout=15) for _ in range(4)]
        assert [(x["event"], x["data"]) for x in pushed] == [
            ("status", {"status": "arrive"}),
            ("message", {"message": "task status update"}),
            ("destination", {"latitude": 13.9, "longitude": 100.7}),
            ("message", {"message": "destination update"}),
        ]
        position = {"latitude": 13.6, "longitude": 100.4, "accuracy": 3, "altitude": 0, "altitudeAccuracy": 0,
                    "heading": 0, "speed": 0}  # fmt: skip
        await publish(
            suite.nats_url,
            "telemetry",
            TASK_DESTINATION_CHANGED,
            {"uid": uid, "room": "Room" + uid, "position": position},
        )
        pushed = [await crew.until("event", timeout=15) for _ in range(2)]
        assert [(x["event"], x["data"]) for x in pushed] == [
            ("destination", position),
            ("message", {"message": "destination update"}),
        ]
    finally:
        await crew.close()


async def test_mobile_push_reaches_only_that_task(suite: Any, telemetry: FakeResponder) -> None:
    mine, other = task_uid(), task_uid()
    a = await client(NODE, f"{suite.edge}/mobile", "--query", f"task={mine}")
    b = await client(NODE, f"{suite.edge}/mobile", "--query", f"id={other}")
    try:
        for c in (a, b):
            await c.connected()
            await c.until("event", "connection")
        await publish(suite.nats_url, "telemetry", TASK_STATUS_CHANGED, {"uid": mine, "status": "cancel"})
        assert (await a.until("event", "status", timeout=15))["data"] == {"status": "cancel"}
        await asyncio.sleep(1.0)
        assert await b.quiet("status", 0.5) == []
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("query", ["task=NOSUCH1", "id=", "task=a%27%20OR%201%3D1"])
async def test_mobile_unknown_task_is_told_and_dropped(suite: Any, telemetry: FakeResponder, query: str) -> None:
    args = ["--query", query] if query.split("=", 1)[1] else []
    crew = await client(NODE, f"{suite.edge}/mobile", *args)
    try:
        await crew.connected()
        seen = [await crew.next(10) for _ in range(3)]
        assert [(x["type"], x.get("event"), x.get("data")) for x in seen[:2]] == [
            ("event", "status", {"status": "failed"}),
            ("event", "message", {"message": "invalid task id"}),
        ]
        assert seen[2] == {"type": "disconnect", "reason": "io server disconnect"}
    finally:
        await crew.close()


# ---- room carTracking ------------------------------------------------------------------------------------------
async def test_car_tracking_in_a_room(suite: Any, telemetry: FakeResponder, room: str) -> None:
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
        stored = [
            {k: v for k, v in r.items() if v is not None}
            for r in await telemetry.seen(RPC_CAR_TRACKING, 2)
            if r["status"] == "start"
        ]
        assert stored[0] == {"room": room, **{k: float(v) if k not in ("status", "userName") else v
                                               for k, v in moving.items()}}  # fmt: skip
        # the last car payload is in Redis: a socket that joins later (any instance) gets it on "initial";
        # a patient (userType user) who connects is shown the room's newest stored car position
        newest = {"id": 3, "uid": "T0", "room": room, "status": "start", "latitude": 13.7, "longitude": 100.5}
        telemetry.car_rows[room] = newest
        _, late_token = participant(suite, room, "user", "0812345678")
        late = await joined(NODE, suite, room, late_token)
        if telemetry.serves_car_position:
            for c in (crew, agent):
                assert (await c.until("event", "car-position"))["data"] == newest
        await late.send("carTracking", {"status": "initial"})
        assert (await late.until("event", "agentCar"))["data"] == moving
        # getDestination: the patient's position from telemetry's reply, to the whole room
        await crew.send("carTracking", {**moving, "status": "getDestination"})
        for c in (crew, agent, late):
            destination = await c.until("event", "destination")
            assert destination["data"]["patientLatitude"] == 13.81
        # a car position telemetry stored (e.g. from /mobile) is shown in the room
        row = {"id": 7, "uid": "T1", "room": room, "status": "start", "latitude": 13.71, "longitude": 100.51}
        await publish(suite.nats_url, "telemetry", CAR_POSITION_UPDATED, {"room": room, "uid": "T1", "row": row})
        for c in (crew, agent, late):
            assert (await c.until("event", "car-position", timeout=15))["data"] == row
    finally:
        for c in (crew, agent, late):
            if c is not None:
                await c.close()


# ---- /queue closeRoom -----------------------------------------------------------------------------------------
async def test_closing_a_room_tells_queue_dashboards(suite: Any, fake: FakeResponder, room: str) -> None:
    if await _answered_elsewhere(fake.nc, RPC_LINK_ROOM_HISTORY, {"room": "probe"}):
        pytest.skip("link serves the room history RPC")
    row = {"caseId": 1, "linkID": "L1", "room": room, "mobile": "0812345678", "status": "close", "activeLog": False,
           "recordVideos": []}  # fmt: skip
    await fake.serve(RPC_LINK_ROOM_HISTORY, lambda req: (True, row if req.get("room") == room else None, ""))
    dashboard = await listen(
        NODE, f"{suite.edge}/queue", "--token", suite.agent_token(), "--count", "99", "--timeout", "20000"
    )
    _, token = participant(suite, room, "user", "0812345678")
    patient = await joined(NODE, suite, room, token)
    try:
        await dashboard.connected()
        async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as http:
            response = await http.put(
                "/room/close", json={"room": room}, headers={"Authorization": f"Bearer {suite.agent_token()}"}
            )
        assert response.json() == {"status": "OK", "room": room}
        got = await dashboard.until("event", "queue", timeout=15)
        assert got["data"] == {"status": "closeRoom", "data": row}
        assert (await patient.until("disconnect", timeout=15))["reason"] == "io server disconnect"
        assert (await fake.seen(RPC_LINK_ROOM_HISTORY))[0] == {"room": room}
    finally:
        await dashboard.close()
        await patient.close()


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


async def test_closing_a_room_sends_links_first_history_row(suite: Any) -> None:
    """Through link for real: the closeRoom row is link's SMS-link history row of the room."""
    if "link" not in suite.services:
        pytest.skip("needs link")
    token = suite.agent_token()
    auth = {"Authorization": f"Bearer {token}"}
    room = room_name()
    async with httpx.AsyncClient(base_url=suite.edge, timeout=20) as http:
        created = await http.post(
            "/link/create", json={"room": room, "mobile": "0812345678", "userName": "Somchai", "service": 999},
            headers=auth,
        )  # fmt: skip
        assert created.status_code == 200, created.text
        link = created.json()["linkID"]
        await wait_registered(suite, f"/{room}")
        dashboard = await listen(NODE, f"{suite.edge}/queue", "--token", token, "--count", "99", "--timeout", "20000")
        try:
            await dashboard.connected()
            response = await http.put("/room/close", json={"room": room}, headers=auth)
            assert response.json() == {"status": "OK", "room": room}
            got = await dashboard.until("event", "queue", timeout=15)
            assert got["data"]["status"] == "closeRoom"
            row = got["data"]["data"]
            assert isinstance(row, dict) and row["linkID"] == link and row["room"] == room
            assert row["mobile"] == "0812345678"
        finally:
            await dashboard.close()
        await wait_registered(suite, f"/{room}", present=False)


async def test_mobile_through_telemetry(suite: Any, room: str) -> None:
    """The same /mobile contract end to end, with telemetry's real handlers (POST/PUT /car/task)."""
    if "telemetry" not in suite.services:
        pytest.skip("needs telemetry")
    auth = {"Authorization": f"Bearer {suite.agent_token()}"}
    async with httpx.AsyncClient(base_url=suite.edge, timeout=20) as http:
        created = await http.post("/car/task", json={"room": room, "mobile": "0812345678"}, headers=auth)
        assert created.json()["status"] == "OK", created.text
        uid = created.json()["data"]["uid"]
        _, agent_token = participant(suite, room, "admin", "Dr. A")
        agent = await joined(NODE, suite, room, agent_token)
        crew = await client(NODE, f"{suite.edge}/mobile", "--query", f"task={uid}")
        try:
            await crew.connected()
            greeting = [await crew.until("event") for _ in range(3)]
            assert [x["event"] for x in greeting] == ["message", "status", "connection"]
            assert greeting[2]["data"]["task"] == uid and greeting[2]["data"]["room"] == room
            assert greeting[2]["data"]["status"] == "open"
            await crew.send("location", {"latitude": 13.71, "longitude": 100.51, "accuracy": 5})
            assert (await crew.until("event", "message"))["data"] == {"message": "received location"}
            # the stored position is shown in the room (telemetry's CAR_POSITION_UPDATED)
            shown = await agent.until("event", "car-position", timeout=15)
            assert shown["data"]["room"] == room and float(shown["data"]["latitude"]) == 13.71
            updated = await http.put("/car/task", json={"id": uid, "status": "start"})
            assert updated.json()["status"] == "OK", updated.text
            pushed = [await crew.until("event", timeout=15) for _ in range(2)]
            assert [(x["event"], x["data"]) for x in pushed] == [
                ("status", {"status": "start"}),
                ("message", {"message": "task status update"}),
            ]
        finally:
            await crew.close()
            await agent.close()
        # an unknown task is told so and dropped
        stranger = await client(NODE, f"{suite.edge}/mobile", "--query", "task=ZZZZZZ")
        try:
            await stranger.connected()
            assert (await stranger.until("event", "status"))["data"] == {"status": "failed"}
            assert (await stranger.until("disconnect"))["reason"] == "io server disconnect"
        finally:
            await stranger.close()


async def test_car_tracking_through_telemetry(suite: Any, room: str) -> None:
    """Room ``carTracking`` stored by telemetry for real: a patient who connects afterwards gets ``car-position``
    (the room's newest car row from telemetry), and everyone sees ``agentCar``."""
    if "telemetry" not in suite.services:
        pytest.skip("needs telemetry")
    _, car_token = participant(suite, room, "admin", "car-1")
    car = await joined(NODE, suite, room, car_token)
    patient = None
    try:
        moving = {"status": "start", "userName": "car-1", "latitude": 13.7, "longitude": 100.5, "accuracy": 4}
        await car.send("carTracking", moving)
        assert (await car.until("event", "agentCar"))["data"] == moving
        _, patient_token = participant(suite, room, "user", "0812345678")
        deadline = time.monotonic() + 10
        while True:  # telemetry stores the position asynchronously to the broadcast
            patient = await joined(NODE, suite, room, patient_token)
            try:
                shown = await car.until("event", "car-position", timeout=3)
                break
            except TimeoutError:
                await patient.close()
                assert time.monotonic() < deadline, "no car-position for a connecting patient"
        assert shown["data"]["room"] == room and float(shown["data"]["latitude"]) == 13.7
        await patient.send("carTracking", {"status": "initial"})
        assert (await patient.until("event", "agentCar"))["data"] == moving
    finally:
        await car.close()
        if patient is not None:
            await patient.close()

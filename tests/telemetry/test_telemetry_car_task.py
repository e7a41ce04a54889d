"""POST / GET / PUT /car/task through the edge (http-telemetry.md §1.1-1.3), and what telemetry publishes for them
over NATS: the SMS command to link (telemetry.sms.requested) and the task status change realtime pushes to the
crew app (telemetry.task.status_changed).

The room's newest ``user`` link and the room's tenant come from link's events (published here as link's outbox
relay would, or made by the real link service). The room's case and the tenant's row are asked over NATS
(RPC_CASE_OF_ROOM to conference, RPC_TENANT_DETAIL to link): the tests that need them make both for real
through the edge (POST /link/create, POST + PUT /case/..., PUT /service/update), so they need link and
conference (the default suite runs every service).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from contracts.conference import ROOM_UPDATED
from contracts.link import LINK_LOCATION_UPDATED, LINK_MULTI_LATLNG
from contracts.telemetry import TASK_SMS_REQUESTED, TASK_STATUS_CHANGED
from tests.car_tasks import (
    link_created,
    make_linked_room,
    make_tenant,
    new_uid,
    next_event,
    publish_link_event,
    seed_task,
    tasks_of,
)
from tests.support import until

BANGKOK = ZoneInfo("Asia/Bangkok")
TASK_KEYS = ["task", "status", "dtmCreated", "dtmUpdated", "room", "current", "destination", "webSocket", "service"]


def _room() -> str:
    return "car" + uuid.uuid4().hex[:12]


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


def needs_link_and_conference(suite: Any) -> None:
    if not {"link", "conference"} <= set(suite.services):
        pytest.skip("needs the link and conference services")


# ---- POST /car/task -----------------------------------------------------------------------------------------
async def test_create_without_agent_token_is_refused_and_writes_nothing(suite: Any, client: httpx.AsyncClient) -> None:
    room = _room()
    answer = await client.post("/car/task", json={"room": room, "mobile": "0812345678"})
    assert answer.status_code == 200
    assert answer.json() == {"status": "FAIL", "message": "Invalid token"}
    bad = await client.post("/car/task", json={"room": room, "mobile": "0812345678"}, headers={"Authorization": "x"})
    assert bad.json()["status"] == "FAIL"
    assert await tasks_of(suite, room) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "invalid room"),
        ({"mobile": "0812345678"}, "invalid room"),
        ({"room": "", "mobile": "0812345678"}, "invalid room"),
        ({"room": "x' OR '1'='1", "mobile": "0812345678"}, "invalid room"),
        ({"room": "r" * 51, "mobile": "0812345678"}, "invalid room"),
        ({"room": "ROOM"}, "invalid mobile"),
        ({"room": "ROOM", "mobile": ""}, "invalid mobile"),
        ({"room": "ROOM", "mobile": "0812'; DROP TABLE car_track; --"}, "invalid mobile"),
        ({"room": "ROOM", "mobile": ["0812345678"]}, "invalid mobile"),
    ],
)
async def test_create_validates_room_then_mobile(
    suite: Any, client: httpx.AsyncClient, body: dict[str, Any], message: str
) -> None:
    room = _room()
    body = {k: (room if v == "ROOM" else v) for k, v in body.items()}
    outbox = await suite.query("telemetry", "SELECT COUNT(*) AS n FROM outbox")
    answer = await client.post("/car/task", json=body, headers=_auth(suite))
    assert answer.status_code == 404
    assert answer.json() == {"status": "NOT FOUND", "message": message}
    assert await tasks_of(suite, room) == []
    assert await suite.query("telemetry", "SELECT COUNT(*) AS n FROM outbox") == outbox


async def test_create_cancels_running_tasks_and_commands_the_sms(
    suite: Any, client: httpx.AsyncClient, nc: Any
) -> None:
    room = _room()
    await link_created(suite, nc, room, service=7)
    await seed_task(suite, room, old_open := new_uid(), "open")
    await seed_task(suite, room, old_start := new_uid(), "start")
    await seed_task(suite, room, done := new_uid(), "complete", dtmCompleted="2024-05-01 11:00:00")
    sub = await nc.subscribe(TASK_SMS_REQUESTED)
    try:
        answer = await client.post("/car/task", json={"room": room, "mobile": "0899999999"}, headers=_auth(suite))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        uid = body["data"]["uid"]
        assert body == {"status": "OK", "message": "success", "data": {"uid": uid}}
        assert len(uid) == 6 and uid.isalpha() and "N" not in uid.upper()
        command = await next_event(sub, lambda d: d["linkID"] == uid)
    finally:
        await sub.unsubscribe()
    data = command["data"]
    assert data["mobile"] == "0899999999" and data["room"] == room and data["service"] == 7
    assert data["prefix"] + "<domain>" + data["path"] == f"Task \n<domain>/app/{uid}"
    assert data["linkType"] == "video" and data["kind"] == "task" and data["messageId"]

    rows = {r["uid"]: r for r in await tasks_of(suite, room)}
    assert rows[old_open]["status"] == "cancel" and rows[old_open]["dtmCanceled"] is not None
    assert rows[old_start]["status"] == "cancel" and rows[old_start]["dtmCanceled"] is not None
    assert rows[done]["status"] == "complete" and rows[done]["dtmCanceled"] is None  # its final state is kept
    assert rows[uid]["status"] == "open" and rows[uid]["mobile"] == "0899999999" and rows[uid]["dtmCreated"]


async def test_the_rooms_own_tenant_wins_over_its_links(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    room = _room()
    await link_created(suite, nc, room, service=7)
    await publish_link_event(nc, ROOM_UPDATED, {"room": room, "roomType": "video", "status": "open", "service": 8})

    async def known() -> Any:
        return await suite.query("telemetry", "SELECT service FROM car_room WHERE room = %s", (room,))

    assert (await until(known))[0]["service"] == 8
    sub = await nc.subscribe(TASK_SMS_REQUESTED)
    try:
        answer = await client.post("/car/task", json={"room": room, "mobile": "0899999999"}, headers=_auth(suite))
        uid = answer.json()["data"]["uid"]
        command = await next_event(sub, lambda d: d["linkID"] == uid)
    finally:
        await sub.unsubscribe()
    assert command["data"]["service"] == 8


async def test_create_accepts_a_form_body(suite: Any, client: httpx.AsyncClient) -> None:
    room = _room()
    answer = await client.post("/car/task", data={"room": room, "mobile": "+66812345678"}, headers=_auth(suite))
    assert answer.status_code == 200
    uid = answer.json()["data"]["uid"]
    rows = await tasks_of(suite, room)
    assert [(r["uid"], r["status"], r["mobile"]) for r in rows] == [(uid, "open", "+66812345678")]


async def test_concurrent_creations_leave_one_running_task(suite: Any, client: httpx.AsyncClient) -> None:
    room = _room()
    answers = await asyncio.gather(*(
        client.post("/car/task", json={"room": room, "mobile": f"081234567{i}"}, headers=_auth(suite)) for i in range(6)
    ))  # fmt: skip
    uids = [a.json()["data"]["uid"] for a in answers]
    assert len(set(uids)) == 6
    rows = await tasks_of(suite, room)
    assert len(rows) == 6
    assert [r["status"] for r in rows] == ["cancel"] * 5 + ["open"]  # only the last one created still runs


# ---- GET /car/task -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("params", [{}, {"id": ""}, {"id": "nosuch"}, {"id": "x' OR '1'='1"}, {"id": "A" * 300}])
async def test_detail_of_a_missing_or_unknown_task_is_404(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    answer = await client.get("/car/task", params=params)
    assert answer.status_code == 404
    assert answer.json() == {"status": "NOT FOUND", "message": "invalid task id"}


async def test_detail_of_a_cancelled_task_is_400(suite: Any, client: httpx.AsyncClient) -> None:
    uid = new_uid()
    await seed_task(suite, _room(), uid, "cancel")
    answer = await client.get("/car/task", params={"id": uid})
    assert answer.status_code == 400
    assert answer.json() == {"status": "FAIL", "message": "task is cancel"}


async def test_detail_without_case_tenant_or_link(suite: Any, client: httpx.AsyncClient) -> None:
    room, uid = _room(), new_uid()
    await seed_task(suite, room, uid, "open", latitude=13.7, longitude=100.5)
    answer = await client.get("/car/task", params={"id": uid})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "OK" and body["message"] == "success"
    assert body["data"] == {
        "task": uid,
        "status": "open",
        "dtmCreated": "2024-05-01T03:00:00.000Z",
        "dtmUpdated": "2024-05-01T03:05:00.000Z",
        "room": room,
        "current": {"latitude": "13.700000000", "longitude": "100.500000000"},
        "destination": {"latitude": 0, "longitude": 0},
        "webSocket": f"ws://localhost:5500/mobile?task={uid}",
        "service": {"id": None, "name": None, "latitude": None, "longitude": None},
    }
    assert list(body["data"]) == TASK_KEYS


async def test_destination_follows_the_rooms_newest_user_link(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    room, uid, started = _room(), new_uid(), new_uid()
    await seed_task(suite, room, uid, "open")
    await seed_task(suite, room, started, "start")
    await link_created(suite, nc, room, service=3, user_type="admin")
    link_id = await link_created(suite, nc, room, service=3)

    async def destination(task: str) -> Any:
        return (await client.get("/car/task", params={"id": task})).json()["data"]["destination"]

    # no position yet: the patient pick (null) is the destination, as the original answered
    assert await destination(uid) == {"latitude": None, "longitude": None}
    await publish_link_event(nc, LINK_LOCATION_UPDATED, {
        "linkID": link_id, "room": room, "userType": "user", "timestamp": 1,
        "position": {"latitude": 13.75, "longitude": 100.52, "accuracy": 5},
    })  # fmt: skip
    own = {"latitude": "13.750000000", "longitude": "100.520000000"}
    assert await until(lambda: _equal(destination(uid), own)) is True
    assert await destination(started) == {"latitude": None, "longitude": None}  # start: the pick location
    await publish_link_event(nc, LINK_MULTI_LATLNG, {
        "linkID": link_id, "room": room,
        "emit": {"userType": "user", "pickLocation": {"latitude": 13.8, "longitude": 100.6}},
    })  # fmt: skip
    pick = {"latitude": "13.800000000", "longitude": "100.600000000"}
    assert await until(lambda: _equal(destination(started), pick)) is True
    # own position and a pick: the original's rule answers 0/0 for an open task
    assert await destination(uid) == {"latitude": 0, "longitude": 0}


async def _equal(value: Awaitable[Any], expected: Any) -> bool:
    return (await value) == expected


async def test_detail_merges_case_and_tenant(suite: Any, client: httpx.AsyncClient) -> None:
    needs_link_and_conference(suite)
    service = await make_tenant(suite, client, "Rama EMS", 13.76, 100.53)
    room, _link = await make_linked_room(suite, client, service)
    opened = await client.post(
        "/case/create",
        json={"userName": "agent1", "room": room, "mobile": "0822222222", "linkType": "video", "service": service},
        headers=_auth(suite),
    )
    assert opened.status_code == 200 and opened.json()["status"] == "OK", opened.text
    case_id = opened.json()["data"]["caseId"]
    changed = await client.put(
        "/case/update",
        json={"service": service, "caseId": case_id, "operationNumber": "OP-77", "hn": "HN001",
              "patientMobile": "0811111111"},
        headers=_auth(suite),
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    made = await client.post("/car/task", json={"room": room, "mobile": "0899999999"}, headers=_auth(suite))
    uid = made.json()["data"]["uid"]
    assert (await client.put("/car/task", json={"id": uid, "status": "start"})).status_code == 200

    answer = await client.get("/car/task", params={"id": uid})
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    case_keys = ["caseId", "operationNumber", "hn", "patientMobile", "userName", "mobileCreated", "dtmCreated"]
    task_keys = ["status", "task", "dtmUpdated", "room", "current", "destination", "webSocket"]
    assert list(data) == ["service", *case_keys, *task_keys]
    assert data["service"] == {"id": service, "name": "Rama EMS", "latitude": "13.760000000",
                               "longitude": "100.530000000"}  # fmt: skip
    assert data["caseId"] == case_id and data["operationNumber"] == "OP-77" and data["hn"] == "HN001"
    assert data["patientMobile"] == "0811111111" and data["userName"] == "agent1"
    assert data["mobileCreated"] == "0822222222"
    task = (await tasks_of(suite, room))[0]
    assert data["status"] == "start" and data["task"] == uid and data["room"] == room
    # the task's creation time, not the case's (the task's keys come later in the original's merge)
    assert data["dtmCreated"] == task["dtmCreated"].replace(tzinfo=BANGKOK).astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    assert data["destination"] == {"latitude": None, "longitude": None}  # start: the patient's pick (none yet)

    other, _ = await make_linked_room(suite, client, service)  # a room of the same tenant without a case
    bare = await client.post("/car/task", json={"room": other, "mobile": "0899999999"}, headers=_auth(suite))
    plain = (await client.get("/car/task", params={"id": bare.json()["data"]["uid"]})).json()["data"]
    assert list(plain) == TASK_KEYS and plain["service"]["id"] == service and "caseId" not in plain


# ---- PUT /car/task -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "code", "answer"),
    [
        ({"status": "start"}, 404, {"status": "NOT FOUND", "message": "invalid task id"}),
        ({"id": "", "status": "start"}, 404, {"status": "NOT FOUND", "message": "invalid task id"}),
        ({"id": "a'; DELETE FROM car_track; --", "status": "start"}, 404,
         {"status": "NOT FOUND", "message": "invalid task id"}),
        ({"id": "TASK"}, 400, {"status": "FAIL", "message": "invalid status"}),
        ({"id": "TASK", "status": "started"}, 400, {"status": "FAIL", "message": "invalid status"}),
        ({"id": "TASK", "status": "open"}, 400, {"status": "FAIL", "message": "invalid status"}),
        ({"id": "nosuch", "status": "start"}, 404, {"status": "NOT FOUND", "message": "task not found"}),
    ],
)  # fmt: skip
async def test_update_rejects_bad_input_and_changes_nothing(
    suite: Any, client: httpx.AsyncClient, body: dict[str, Any], code: int, answer: dict[str, Any]
) -> None:
    room, uid = _room(), new_uid()
    await seed_task(suite, room, uid, "open")
    body = {k: (uid if v == "TASK" else v) for k, v in body.items()}
    response = await client.put("/car/task", json=body)
    assert response.status_code == code
    assert response.json() == answer
    row = (await tasks_of(suite, room))[0]
    assert row["status"] == "open" and row["dtmStarted"] is None


async def test_update_sets_status_and_timestamp_and_tells_the_crew(
    suite: Any, client: httpx.AsyncClient, nc: Any
) -> None:
    room, uid = _room(), new_uid()
    await seed_task(suite, room, uid, "open")
    sub = await nc.subscribe(TASK_STATUS_CHANGED)
    try:
        answer = await client.put("/car/task", json={"id": uid, "status": "start"})
        assert answer.status_code == 200
        assert answer.json() == {"status": "OK", "message": "success", "data": {"task": uid, "status": "start"}}
        event = await next_event(sub, lambda d: d["uid"] == uid)
        # the original's doc named the key ``task``: accepted too
        assert (await client.put("/car/task", data={"task": uid, "status": "complete"})).status_code == 200
        done = await next_event(sub, lambda d: d["uid"] == uid)
    finally:
        await sub.unsubscribe()
    assert event["data"] == {"uid": uid, "room": room, "status": "start", "destination": None}
    assert done["data"]["status"] == "complete"
    row = (await tasks_of(suite, room))[0]
    assert row["status"] == "complete" and row["dtmStarted"] is not None and row["dtmCompleted"] is not None
    assert row["dtmUpdated"] > datetime(2024, 5, 1, 10, 5)


async def test_arrive_sends_the_tenant_location(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    needs_link_and_conference(suite)
    service = await make_tenant(suite, client, "Siriraj", 13.759, 100.485)
    room, _link = await make_linked_room(suite, client, service)
    made = await client.post("/car/task", json={"room": room, "mobile": "0899999999"}, headers=_auth(suite))
    uid = made.json()["data"]["uid"]
    await seed_task(suite, _room(), other := new_uid(), "start")  # a room whose tenant is unknown
    sub = await nc.subscribe(TASK_STATUS_CHANGED)
    try:
        assert (await client.put("/car/task", json={"id": uid, "status": "arrive"})).status_code == 200
        event = await next_event(sub, lambda d: d["uid"] == uid)
        assert (await client.put("/car/task", json={"id": other, "status": "arrive"})).status_code == 200
        unknown = await next_event(sub, lambda d: d["uid"] == other)
    finally:
        await sub.unsubscribe()
    detail = (await client.get("/car/task", params={"id": uid})).json()["data"]
    location = {"latitude": "13.759000000", "longitude": "100.485000000"}
    assert event["data"]["destination"] == location
    assert unknown["data"]["destination"] == {"latitude": 0, "longitude": 0}
    assert detail["destination"] == location
    assert detail["service"] == {"id": service, "name": "Siriraj", **location}
    assert (await tasks_of(suite, room))[0]["dtmArrived"] is not None


# ---- with the real link service --------------------------------------------------------------------------------
async def test_link_events_from_the_link_service_drive_the_destination(
    suite: Any, client: httpx.AsyncClient, nc: Any
) -> None:
    needs_link_and_conference(suite)
    room = "Car" + "".join(chr(ord("a") + b % 26) for b in uuid.uuid4().bytes[:10])
    created = await client.post(
        "/link/create", json={"room": room, "mobile": "0812345678", "service": 999, "sms": 0}, headers=_auth(suite)
    )
    assert created.status_code == 200, created.text
    link_id = created.json()["linkID"]
    made = await client.post("/car/task", json={"room": room, "mobile": "0899999999"}, headers=_auth(suite))
    uid = made.json()["data"]["uid"]

    async def learnt() -> Any:
        return await suite.query("telemetry", "SELECT service FROM car_room_link WHERE linkID = %s", (link_id,))

    assert (await until(learnt))[0]["service"] == 999
    sub = await nc.subscribe("telemetry.task.destination_changed")
    try:
        moved = await client.post(
            "/link/update/latlng",
            json={"linkID": link_id, "room": room, "userType": "user", "latitude": 13.75, "longitude": 100.52},
        )
        assert moved.json() == {"status": "OK"}
        event = await next_event(sub, lambda d: d["uid"] == uid)
    finally:
        await sub.unsubscribe()
    assert event["data"]["room"] == room and event["data"]["position"]["latitude"] == 13.75
    detail = (await client.get("/car/task", params={"id": uid})).json()["data"]
    assert detail["destination"] == {"latitude": "13.750000000", "longitude": "100.520000000"}

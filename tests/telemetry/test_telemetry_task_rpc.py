"""What telemetry answers and publishes for realtime over NATS (contracts.telemetry, "telemetry: ambulance tasks
and positions"): RPC_TASK_DETAIL (/mobile ``connection``), RPC_TASK_LOCATION (/mobile ``location``), RPC_CAR_TRACKING
(room ``carTracking``), CAR_POSITION_UPDATED for each stored position, TASK_DESTINATION_CHANGED for each running
task of a room whose patient moved (link.location.updated). Bad positions and floods: ``bad_request``, nothing
stored."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from contracts.link import LINK_LOCATION_UPDATED
from contracts.telemetry import (
    CAR_POSITION_UPDATED,
    RPC_CAR_TRACKING,
    RPC_ROOM_CAR_POSITION,
    RPC_TASK_DETAIL,
    RPC_TASK_LOCATION,
    TASK_DESTINATION_CHANGED,
)
from tests.car_tasks import link_created, new_uid, next_event, publish_link_event, seed_task, tasks_of
from tests.support import rpc, until

BANGKOK = {"latitude": 13.7563, "longitude": 100.5018}


def _room() -> str:
    return "rpc" + uuid.uuid4().hex[:12]


async def test_task_detail_is_the_connection_payload(suite: Any, nc: Any) -> None:
    room, uid = _room(), new_uid()
    await seed_task(suite, room, uid, "complete", latitude=13.7, longitude=100.5)
    reply = await rpc(nc, RPC_TASK_DETAIL, {"uid": uid})
    assert reply == {
        "ok": True,
        "data": {
            "task": uid,
            "status": "complete",
            "dtmCreated": "2024-05-01T03:00:00.000Z",
            "dtmUpdated": "2024-05-01T03:05:00.000Z",
            "room": room,
            "current": {"latitude": "13.700000000", "longitude": "100.500000000"},
            "destination": {"latitude": 0, "longitude": 0},
        },
    }


async def test_task_detail_of_unknown_or_malformed_uid(nc: Any) -> None:
    for uid in ("nosuch", "x' OR '1'='1", ""):
        reply = await rpc(nc, RPC_TASK_DETAIL, {"uid": uid})
        assert reply["ok"] is False and reply["code"] == "not_found", uid
    assert (await rpc(nc, RPC_TASK_DETAIL, {"task": 1}))["code"] == "bad_request"
    assert (await rpc(nc, RPC_TASK_DETAIL, b"not json"))["code"] == "bad_request"


async def test_location_is_stored_and_published(suite: Any, nc: Any) -> None:
    room, uid = _room(), new_uid()
    await seed_task(suite, room, uid, "start")
    sub = await nc.subscribe(CAR_POSITION_UPDATED)
    try:
        reply = await rpc(nc, RPC_TASK_LOCATION, {
            "uid": uid, **BANGKOK, "accuracy": 12.5, "speed": 40.4, "heading": 90, "altitude": None,
            "timestamp": int(time.time() * 1000),
        })  # fmt: skip
        assert reply == {"ok": True, "data": {"stored": True}}
        event = await next_event(sub, lambda d: d.get("uid") == uid)
    finally:
        await sub.unsubscribe()
    row = (await tasks_of(suite, room))[0]
    assert float(row["latitude"]) == 13.7563 and float(row["longitude"]) == 100.5018
    assert float(row["accuracy"]) == 12.5 and row["speed"] == 40 and row["heading"] == 90 and row["altitude"] == 0
    assert event["data"]["room"] == room
    published = event["data"]["row"]
    assert published["uid"] == uid and published["latitude"] == "13.756300000" and published["speed"] == 40
    assert published["status"] == "start" and published["dtmUpdated"].endswith("Z")


async def test_bad_positions_are_refused_and_nothing_is_stored(suite: Any, nc: Any) -> None:
    room, uid = _room(), new_uid()
    await seed_task(suite, room, uid, "start", latitude=1, longitude=2)
    future = int(time.time() * 1000) + 3600 * 1000
    bad = [
        {"latitude": 91, "longitude": 100},
        {"latitude": -90.5, "longitude": 100},
        {"latitude": 13, "longitude": 180.01},
        {"latitude": 13},
        {"longitude": 100},
        {**BANGKOK, "timestamp": future},
        {**BANGKOK, "accuracy": -1},
        {**BANGKOK, "speed": 1e12},
        {"latitude": "13.7' OR 1=1", "longitude": 100},
        {"latitude": True, "longitude": 100},
    ]
    for payload in bad:
        reply = await rpc(nc, RPC_TASK_LOCATION, {"uid": uid, **payload})
        assert reply["ok"] is False and reply["code"] == "bad_request", payload
        assert reply["error"]
    row = (await tasks_of(suite, room))[0]
    assert float(row["latitude"]) == 1 and float(row["longitude"]) == 2 and row["dtmUpdated"].year == 2024
    for unknown in ("nosuch", "a'; DROP TABLE car_track; --"):
        reply = await rpc(nc, RPC_TASK_LOCATION, {"uid": unknown, **BANGKOK})
        assert reply["code"] == "not_found"


async def test_a_flooding_device_is_cut_off(suite: Any, nc: Any) -> None:
    room, uid, other = _room(), new_uid(), new_uid()
    await seed_task(suite, room, uid, "start")
    await seed_task(suite, room, other, "start")
    # Aligned to the start of a rate window so all sends fall in one window.
    await asyncio.sleep(10 - time.time() % 10)
    replies = await asyncio.gather(*(
        rpc(nc, RPC_TASK_LOCATION, {"uid": uid, "latitude": 13 + i / 1000, "longitude": 100}) for i in range(40)
    ))  # fmt: skip
    accepted = [r for r in replies if r["ok"]]
    refused = [r for r in replies if not r["ok"]]
    assert len(accepted) == 30 and len(refused) == 10
    assert all(r["code"] == "bad_request" and "too many" in r["error"] for r in refused)
    # another device of the same room is not affected
    assert (await rpc(nc, RPC_TASK_LOCATION, {"uid": other, **BANGKOK}))["ok"] is True


async def test_car_tracking_upserts_the_row_of_room_and_user(suite: Any, nc: Any) -> None:
    room = _room()
    sub = await nc.subscribe(CAR_POSITION_UPDATED)
    try:
        first = await rpc(nc, RPC_CAR_TRACKING, {"room": room, "userName": "car-1", "status": "tracking", **BANGKOK})
        assert first == {"ok": True, "data": {"stored": True}}
        event = await next_event(sub, lambda d: d["room"] == room)
        second = await rpc(nc, RPC_CAR_TRACKING, {"room": room, "userName": "car-1", "latitude": 14, "longitude": 101})
        assert second["ok"] is True
        moved = await next_event(sub, lambda d: d["room"] == room)
    finally:
        await sub.unsubscribe()
    rows = await tasks_of(suite, room)
    assert len(rows) == 1 and rows[0]["uid"] is None and rows[0]["userName"] == "car-1" and rows[0]["status"] == "open"
    assert float(rows[0]["latitude"]) == 14 and float(rows[0]["longitude"]) == 101
    assert event["data"]["uid"] is None and event["data"]["row"]["latitude"] == "13.756300000"
    assert moved["data"]["row"]["id"] == event["data"]["row"]["id"]
    assert moved["data"]["row"]["latitude"] == "14.000000000"

    initial = await rpc(nc, RPC_CAR_TRACKING, {"room": room, "userName": "car-1", "status": "initial"})
    assert initial == {"ok": True, "data": {"stored": False}}
    for payload in (
        {"room": "x' OR '1'='1", "userName": "car-1", **BANGKOK},
        {"room": room, "userName": "", **BANGKOK},
        {"room": room, "userName": "car-1", "latitude": 95, "longitude": 100},
        {"room": room, "userName": "car-1", "latitude": 13},
        {"room": room, "userName": "car-1", **BANGKOK, "timestamp": int(time.time() * 1000) + 3600 * 1000},
    ):
        reply = await rpc(nc, RPC_CAR_TRACKING, payload)
        assert reply["code"] == "bad_request", payload
    rows = await tasks_of(suite, room)
    assert len(rows) == 1 and float(rows[0]["latitude"]) == 14


async def test_patient_position_reaches_each_running_task_once(suite: Any, nc: Any) -> None:
    room = _room()
    running = [new_uid(), new_uid()]
    for uid in running:
        await seed_task(suite, room, uid, "start")
    await seed_task(suite, room, new_uid(), "cancel")
    await seed_task(suite, room, new_uid(), "complete")
    link_id = await link_created(suite, nc, room, service=4)
    data = {"linkID": link_id, "room": room, "userType": "user", "timestamp": 1,
            "position": {"latitude": 13.75, "longitude": 100.52, "accuracy": 8, "heading": 10, "speed": 3}}  # fmt: skip
    sub = await nc.subscribe(TASK_DESTINATION_CHANGED)
    try:
        event_id = await publish_link_event(nc, LINK_LOCATION_UPDATED, data)
        await publish_link_event(nc, LINK_LOCATION_UPDATED, data, event_id=event_id)  # redelivered: applied once
        got = [await next_event(sub, lambda d: d["room"] == room) for _ in running]
        await asyncio.sleep(1.0)
        extra = []
        while True:
            try:
                msg = await sub.next_msg(timeout=0.2)
            except TimeoutError:
                break
            extra.append(msg)
    finally:
        await sub.unsubscribe()
    assert sorted(e["data"]["uid"] for e in got) == sorted(running)
    assert all(e["data"]["position"]["latitude"] == 13.75 and e["data"]["position"]["speed"] == 3 for e in got)
    assert [m for m in extra if room in m.data.decode()] == []


async def test_get_destination_answers_the_rooms_patient_link(suite: Any, nc: Any) -> None:
    room = _room()
    ask = {"room": room, "userName": "car-2", "status": "getDestination"}
    assert await rpc(nc, RPC_CAR_TRACKING, ask) == {"ok": True, "data": {"stored": False}}  # no link yet
    link_id = await link_created(suite, nc, room, service=4)
    await publish_link_event(nc, LINK_LOCATION_UPDATED, {
        "linkID": link_id, "room": room, "userType": "user", "timestamp": 1,
        "position": {"latitude": 13.75, "longitude": 100.52},
    })  # fmt: skip

    async def located() -> Any:
        reply = await rpc(nc, RPC_CAR_TRACKING, ask)
        return reply if reply["data"].get("destination", {}).get("latitude") else None

    reply = await until(located)
    assert reply["data"] == {
        "stored": False,
        "destination": {"userName": "0811111111", "mobile": "0811111111", "latitude": "13.750000000",
                        "longitude": "100.520000000", "patientLatitude": None, "patientLongitude": None},
    }  # fmt: skip
    with_position = await rpc(nc, RPC_CAR_TRACKING, {**ask, **BANGKOK})
    assert with_position["data"]["stored"] is True and with_position["data"]["destination"]["mobile"] == "0811111111"


async def test_room_car_position_is_the_newest_row_of_the_room(suite: Any, nc: Any) -> None:
    room = _room()
    assert await rpc(nc, RPC_ROOM_CAR_POSITION, {"room": room}) == {"ok": True}  # none: data null (omitted)
    await seed_task(suite, room, new_uid(), "cancel")
    await seed_task(suite, room, newest := new_uid(), "start", latitude=13.7, longitude=100.5)
    reply = await rpc(nc, RPC_ROOM_CAR_POSITION, {"room": room})
    assert reply["data"]["uid"] == newest and reply["data"]["latitude"] == "13.700000000"
    assert reply["data"]["dtmCreated"] == "2024-05-01T03:00:00.000Z" and len(reply["data"]) == 19
    assert await rpc(nc, RPC_ROOM_CAR_POSITION, {"room": "x' OR '1'='1"}) == {"ok": True}

"""The room socket's ``room-record`` toggle as recording serves it (RPC_RECORDING_TOGGLE, realtime.md §4.3):
over NATS against the fake LiveKit's Egress API, and end to end through realtime with the official
socket.io-client."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from contracts.conference import RPC_ROOM_ENSURE
from contracts.recording import RECORDING_EGRESS_ENDED, RECORDING_EGRESS_STARTED, RPC_RECORDING_TOGGLE
from servicekit.bus import Bus
from tests.egress import claim as _claim
from tests.egress import media as _media
from tests.egress import new_room as _room
from tests.egress import poll as _eventually
from tests.egress import room_settings as _room_settings
from tests.egress import starts as _starts
from tests.egress import usage as _usage
from tests.fakes.livekit import FakeLiveKit
from tests.sockets import NODE, joined, participant, room_name, wait_for_consumers, wait_registered
from tests.support import rpc

NOT_AVAILABLE = {"status": "egressNotAvailable", "message": "Record service not available"}


async def toggle(nc: Any, room: str) -> dict[str, Any]:
    return await rpc(nc, RPC_RECORDING_TOGGLE, {"room": room})


async def _outbox(suite: Any, subject: str, egress_id: str) -> list[dict[str, Any]]:
    rows = await suite.query("recording", "SELECT payload FROM outbox WHERE subject = %s", (subject,))
    return [e for e in (json.loads(r["payload"]) for r in rows) if e["data"]["recordId"] == egress_id]


async def test_toggle_starts_then_stops_the_rooms_egress(
    suite: Any, nc: Any, conference_bus: Bus, lk: FakeLiveKit
) -> None:
    room = _room()
    # the toggle records video+audio at H264_720P_30 whatever the room's own record settings say
    await _room_settings(
        suite, conference_bus, room, recordType="RoomCompositeAudio", encodingOptionsPreset="H264_1080P_30", service=7
    )
    reply = await toggle(nc, room)
    assert reply["ok"], reply
    started = reply["data"]
    assert started["status"] == "startRecord"
    info = started["data"]
    assert info["roomName"] == room and info["egressId"].startswith("EG_")
    assert info["dtmStartRecord"] and info["dtmStopRecord"] is None
    [start] = _starts(lk, room)
    request = start.request
    assert request["layout"] == "grid" and request["preset"] == "H264_720P_30" and not request.get("audioOnly")
    path = request["fileOutputs"][0]["filepath"]
    assert path.startswith("livekit-record/7/") and path.endswith(f"_RoomComposite_{room}.mp4")
    egress_id = info["egressId"]
    [row] = await _media(suite, room)
    assert row["egressId"] == egress_id and row["recordType"] == "RoomCompositeVideoAudio" and row["endRecord"] is None
    assert (await _claim(suite, room))["egressId"] == egress_id
    # LiveKit's egress_started webhook publishes the usual event for conference and realtime
    assert await _eventually(lambda: _outbox(suite, RECORDING_EGRESS_STARTED, egress_id))

    reply = await toggle(nc, room)
    assert reply["ok"], reply
    stopped = reply["data"]
    assert stopped["status"] == "stopRecord"
    assert stopped["data"]["egressId"] == egress_id
    assert stopped["data"]["dtmStartRecord"] is None and stopped["data"]["dtmStopRecord"]
    assert [c.request["egressId"] for c in lk.calls_of("StopEgress") if c.request["egressId"] == egress_id] == [
        egress_id
    ]
    assert await _claim(suite, room) is None
    [row] = await _media(suite, room)
    assert row["endRecord"] is not None
    assert await _eventually(lambda: _outbox(suite, RECORDING_EGRESS_ENDED, egress_id))
    # the original's socket toggle wrote no usage rows (GET /record/request does)
    assert await _usage(suite, room) == []

    # and it starts again: a new egress, a second record_media row
    again = await toggle(nc, room)
    assert again["data"]["status"] == "startRecord" and again["data"]["data"]["egressId"] != egress_id
    assert len(await _media(suite, room)) == 2
    assert (await toggle(nc, room))["data"]["status"] == "stopRecord"


async def test_egress_limit_is_egress_not_available(suite: Any, nc: Any, conference_bus: Bus, lk: FakeLiveKit) -> None:
    room = _room()
    await _room_settings(suite, conference_bus, room)
    limit = int(suite.env["EGRESS_LIMIT"])
    held = (await suite.query("recording", "SELECT COUNT(*) AS n FROM room_egress"))[0]["n"]
    fillers = [f"fill-{uuid.uuid4().hex[:8]}" for _ in range(limit - held)]
    for filler in fillers:
        await suite.execute(
            "recording", "INSERT INTO room_egress (room, egressId, state) VALUES (%s, %s, 'active')",
            (filler, "EG_" + filler),
        )  # fmt: skip
    try:
        reply = await toggle(nc, room)
        assert reply["ok"] and reply["data"] == NOT_AVAILABLE
        assert _starts(lk, room) == []  # no LiveKit call
        assert await _media(suite, room) == [] and await _claim(suite, room) is None
    finally:
        for filler in fillers:
            await suite.execute("recording", "DELETE FROM room_egress WHERE room = %s", (filler,))
    assert (await toggle(nc, room))["data"]["status"] == "startRecord"
    assert (await toggle(nc, room))["data"]["status"] == "stopRecord"


async def test_livekit_failures_answer_an_error_code_and_write_nothing(
    suite: Any, nc: Any, conference_bus: Bus, lk: FakeLiveKit
) -> None:
    room = _room()
    await _room_settings(suite, conference_bus, room)
    for failure in ("resource_exhausted", "unavailable"):
        lk.egress_failure = failure
        reply = await toggle(nc, room)
        assert reply["ok"], reply
        assert reply["data"] == {"status": "ERROR", "code": failure, "message": "egress failed"}
        assert await _media(suite, room) == [] and await _claim(suite, room) is None
    lk.egress_failure = ""
    started = (await toggle(nc, room))["data"]
    assert started["status"] == "startRecord"
    egress_id = started["data"]["egressId"]

    # LiveKit down while stopping: an error, the egress still held and its row still open
    lk.down = True
    try:
        reply = await toggle(nc, room)
    finally:
        lk.down = False
    assert reply["ok"] and reply["data"]["status"] == "ERROR" and reply["data"]["code"] == "unavailable"
    assert (await _claim(suite, room))["egressId"] == egress_id
    assert (await _media(suite, room))[0]["endRecord"] is None
    # LiveKit back: the next toggle stops that same egress
    stopped = (await toggle(nc, room))["data"]
    assert stopped["status"] == "stopRecord" and stopped["data"]["egressId"] == egress_id
    assert await _claim(suite, room) is None
    assert await _usage(suite, room) == []


async def test_egress_livekit_no_longer_runs_is_dropped(
    suite: Any, nc: Any, conference_bus: Bus, lk: FakeLiveKit
) -> None:
    room = _room()
    await _room_settings(suite, conference_bus, room)
    egress_id = (await toggle(nc, room))["data"]["data"]["egressId"]
    lk.egresses.pop(egress_id)  # LiveKit forgot it (the ended webhook never reached us)
    reply = await toggle(nc, room)
    assert reply["ok"] and reply["data"]["status"] == "ERROR" and reply["data"]["code"] == "not_found"
    # what we held about it was stale: dropped, so the next toggle starts a new recording
    assert await _claim(suite, room) is None
    assert (await _media(suite, room))[0]["endRecord"] is not None
    again = (await toggle(nc, room))["data"]
    assert again["status"] == "startRecord" and again["data"]["egressId"] != egress_id
    assert (await toggle(nc, room))["data"]["status"] == "stopRecord"


async def test_concurrent_toggles_start_one_egress(suite: Any, nc: Any, conference_bus: Bus, lk: FakeLiveKit) -> None:
    room = _room()
    await _room_settings(suite, conference_bus, room)
    lk.delay = 0.3  # every toggle arrives while the first start is in flight
    try:
        replies = await asyncio.gather(*(toggle(nc, room) for _ in range(4)))
    finally:
        lk.delay = 0.0
    statuses = sorted(r["data"]["status"] for r in replies)
    assert statuses == ["ERROR", "ERROR", "ERROR", "startRecord"], replies
    assert {r["data"]["code"] for r in replies if r["data"]["status"] == "ERROR"} <= {"starting", "already_recording"}
    assert len(_starts(lk, room)) == 1 and len(await _media(suite, room)) == 1
    assert (await toggle(nc, room))["data"]["status"] == "stopRecord"


async def test_toggle_while_a_start_is_in_flight(suite: Any, nc: Any, conference_bus: Bus, lk: FakeLiveKit) -> None:
    room = _room()
    await _room_settings(suite, conference_bus, room)
    await suite.execute(
        "recording", "INSERT INTO room_egress (room, egressId, state) VALUES (%s, '', 'starting')", (room,)
    )
    try:
        reply = await toggle(nc, room)
        assert reply["ok"] and reply["data"] == {"status": "ERROR", "code": "starting", "message": "record is starting"}
        assert _starts(lk, room) == []
    finally:
        await suite.execute("recording", "DELETE FROM room_egress WHERE room = %s", (room,))


async def test_rooms_that_cannot_record(suite: Any, nc: Any, conference_bus: Bus, lk: FakeLiveKit) -> None:
    unknown = await toggle(nc, _room())  # the original crashed on an unknown room: realtime emits nothing
    assert not unknown["ok"] and unknown["code"] == "not_found"
    for bad in ("", " ", "r" * 51):
        reply = await toggle(nc, bad)
        assert not reply["ok"] and reply["code"] == "bad_request", reply
    reply = await rpc(nc, RPC_RECORDING_TOGGLE, b"not json")
    assert not reply["ok"] and reply["code"] == "bad_request"
    no_tenant = _room()
    await _room_settings(suite, conference_bus, no_tenant, service=None)
    reply = await toggle(nc, no_tenant)
    assert reply["ok"] and reply["data"]["status"] == "ERROR" and reply["data"]["code"] == "no_service"
    assert _starts(lk, no_tenant) == [] and await _claim(suite, no_tenant) is None


# ---- end to end: an admin's socket through realtime ----------------------------------------------------------
async def _room_record(c: Any, status: str) -> dict[str, Any]:
    """The next ``room-record`` of this toggle status (LiveKit's egress webhooks also reach the room: a bare
    EgressInfo whose ``status`` is LiveKit's, as in the original)."""
    while True:
        data = (await c.until("event", "room-record"))["data"]
        if data.get("status") == status:
            return data


async def test_room_record_through_realtime(suite: Any, nc: Any, lk: FakeLiveKit, request: Any) -> None:
    if "conference" not in suite.services or "realtime" not in suite.services:
        pytest.skip("needs conference and realtime")
    request.getfixturevalue("node_client")  # socket.io-client installed in tests/js
    await wait_for_consumers(suite.nats_url)

    room = room_name()
    ensured = await rpc(nc, RPC_ROOM_ENSURE, {"room": room, "service": 999})
    assert ensured["ok"], ensured
    await wait_registered(suite, f"/{room}")  # realtime opens the room's namespace on conference's event
    _, patient_token = participant(suite, room, "user", "0812345678")
    _, agent_token = participant(suite, room, "admin", "Dr. A")
    patient = await joined(NODE, suite, room, patient_token)
    agent = await joined(NODE, suite, room, agent_token)
    try:
        await patient.send("room-record")  # a patient may not record
        assert await agent.quiet("room-record", 1.0) == []
        assert _starts(lk, room) == []
        await agent.send("room-record")
        for c in (patient, agent):
            got = await _room_record(c, "startRecord")
            assert got["data"]["roomName"] == room and got["data"]["dtmStartRecord"]
        egress_id = got["data"]["egressId"]
        path = _starts(lk, room)[0].request["fileOutputs"][0]["filepath"]
        assert path.startswith("livekit-record/999/")
        await agent.send("room-record")
        for c in (patient, agent):
            got = await _room_record(c, "stopRecord")
            assert got["data"]["egressId"] == egress_id and got["data"]["dtmStopRecord"]
        assert await _claim(suite, room) is None
        # LiveKit failing: the room hears the error code, nothing is held
        lk.egress_failure = "unavailable"
        await agent.send("room-record")
        for c in (patient, agent):
            got = await _room_record(c, "ERROR")
            assert got == {"status": "ERROR", "code": "unavailable", "message": "egress failed"}
        assert await _claim(suite, room) is None and len(await _media(suite, room)) == 1
    finally:
        await patient.close()
        await agent.close()

"""GET /link/history and the realtime closeRoom row (rpc.link.link.room_history) from link's read models: room
status and cases from conference's events (real conference, real /case routes), recordings from recording's
egress events (published on JetStream as recording's relay does), and the usage_status_log row of each case
action. No query on another service's tables: the test freezes conference to prove the page needs no RPC."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.support import rpc

ROOM_HISTORY = "rpc.link.link.room_history"


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


def _room() -> str:
    return "Hist " + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


async def _until(probe: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def _publish(nc: Any, subject: str, data: dict[str, Any]) -> str:
    event_id = uuid.uuid4().hex
    envelope = {"id": event_id, "subject": subject, "version": 1,
                "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"), "data": data}  # fmt: skip
    await nc.jetstream().publish(subject, json.dumps(envelope).encode(), headers={"Nats-Msg-Id": uuid.uuid4().hex})
    return event_id


async def _history(client: httpx.AsyncClient, room: str, page: str = "1") -> dict[str, Any]:
    reply = await client.get("/link/history", params={"roomName": room, "page": page})
    assert reply.status_code == 200, reply.text
    return reply.json()


async def _case_in_view(suite: Any, room: str, status: str) -> Any:
    rows = await suite.query("link", "SELECT * FROM room_case_view WHERE room = %s AND status = %s", (room, status))
    return rows or None


async def test_history_shows_cases_room_status_and_recordings(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    room = _room()
    created = await client.post("/link/create", json={"room": room, "mobile": "0812000001", "sms": 0,
                                                       "userName": "Pat"}, headers=_auth(suite))  # fmt: skip
    assert created.status_code == 200
    link_id = created.json()["linkID"]
    body = {"userName": "Dr Hist", "room": room, "mobile": "0812000001", "linkType": "video", "service": 999}
    case = await client.post("/case/create", json=body, headers=_auth(suite))
    assert case.status_code == 200, case.text
    case_id = case.json()["data"]["caseId"]
    await _until(lambda: _case_in_view(suite, room, "On Case"))

    page = await _history(client, room)
    assert page["count"] == 1
    row = page["data"][0]
    assert list(row)[:5] == ["caseId", "linkID", "caseStatus", "hn", "patientMobile"]
    assert row["caseId"] == case_id and row["linkID"] == link_id and row["caseStatus"] == "On Case"
    room_id = (await suite.query("conference", "SELECT id FROM room_conference WHERE room = %s", (room,)))[0]["id"]
    assert row["id"] == room_id and row["status"] == "open" and row["room"] == room
    assert row["activeLog"][0]["status"] == "CreateLink" and row["recordVideos"] == []

    # case update: status follows; the case action wrote its usage_status_log row (from the event)
    updated = await client.put("/case/update", json={"service": 999, "caseId": str(case_id), "status": "Process"},
                               headers=_auth(suite))  # fmt: skip
    assert updated.status_code == 200, updated.text
    await _until(lambda: _case_in_view(suite, room, "Process"))
    assert (await _history(client, room))["data"][0]["caseStatus"] == "Process"
    logs = await suite.query(
        "link", "SELECT linkID, room, userName, status, data FROM usage_status_log WHERE data LIKE %s",
        (f'"%id:{case_id} %',),
    )  # fmt: skip
    texts = [json.loads(r["data"]) for r in logs]
    assert any(t.startswith("Update Case id:") for t in texts), texts  # created
    assert any("status:Process" in t for t in texts), texts  # updated
    assert all(r["linkID"] is None and r["room"] == "" and r["status"] == "" for r in logs)

    # a recording (recording's egress events) shows up in recordVideos with record_media's names
    egress = "EG_" + uuid.uuid4().hex[:12]
    info = {"egressId": egress, "roomName": room, "status": "EGRESS_ACTIVE", "roomComposite": {"roomName": room}}
    await _publish(nc, "recording.egress.started", {"room": room, "recordId": egress, "status": "EGRESS_ACTIVE",
                   "dtmStartRecord": "2026-11-29 10:00:00", "egressInfo": info, "timestamp": 1000})  # fmt: skip
    ended = {**info, "status": "EGRESS_COMPLETE", "fileResults": [{"filename": f"rec/{egress}.mp4"}]}
    await _publish(nc, "recording.egress.ended", {"room": room, "recordId": egress, "status": "EGRESS_COMPLETE",
                   "dtmStopRecord": "2026-11-29 10:05:00", "egressInfo": ended, "timestamp": 2000})  # fmt: skip

    async def recorded() -> Any:
        videos = (await _history(client, room))["data"][0]["recordVideos"]
        return videos if videos and videos[0]["endRecord"] else None

    videos = await _until(recorded)
    assert len(videos) == 1
    assert set(videos[0]) == {"egressId", "room", "filename", "recordType", "startRecord", "endRecord", "dtmUpdated"}
    assert videos[0]["egressId"] == egress and videos[0]["filename"] == f"rec/{egress}.mp4"
    assert videos[0]["recordType"] == "RoomCompositeVideoAudio" and videos[0]["startRecord"] is not None

    # the realtime closeRoom row: the newest history row
    second = await client.post("/link/create", json={"room": room, "mobile": "0812000002", "sms": 0},
                               headers=_auth(suite))  # fmt: skip
    reply = await rpc(nc, ROOM_HISTORY, {"room": room})
    assert reply["ok"] and reply["data"]["linkID"] == second.json()["linkID"]
    unknown = await rpc(nc, ROOM_HISTORY, {"room": "No Such Hist Room"})
    assert unknown["ok"] and unknown.get("data") is None

    # answered from link's read models alone: conference frozen, the page still answers
    suite.signal_service("conference", signal.SIGSTOP)
    try:
        frozen = await _history(client, room)
    finally:
        suite.signal_service("conference", signal.SIGCONT)
    assert frozen["count"] == 2 and frozen["data"][0]["caseId"] == case_id


async def test_case_events_applied_once(suite: Any, nc: Any) -> None:
    """A redelivered case event changes nothing: one usage row, one case row."""
    room = _room()
    data = {"caseId": 900001, "service": 424242, "room": room, "status": "On Case", "userName": "Once",
            "statusLog": f"Update Case id:900001 userName:Once organization:{room}"}  # fmt: skip
    event_id = uuid.uuid4().hex
    envelope = {"id": event_id, "subject": "conference.case.created", "version": 1,
                "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"), "data": data}  # fmt: skip
    for _ in range(2):
        await nc.jetstream().publish("conference.case.created", json.dumps(envelope).encode(),
                                     headers={"Nats-Msg-Id": uuid.uuid4().hex})  # fmt: skip
    await _until(lambda: _case_in_view(suite, room, "On Case"))
    await asyncio.sleep(1.0)
    logs = await suite.query("link", "SELECT id FROM usage_status_log WHERE data LIKE %s", (f"%organization:{room}%",))
    assert len(logs) == 1
    # an older update never overwrites a newer one
    old = {**envelope, "id": uuid.uuid4().hex, "subject": "conference.case.updated",
           "occurred_at": "2020-01-01T00:00:00.000+00:00", "data": {**data, "status": "Closed"}}  # fmt: skip
    await nc.jetstream().publish("conference.case.updated", json.dumps(old).encode(),
                                 headers={"Nats-Msg-Id": uuid.uuid4().hex})  # fmt: skip

    async def both_applied() -> bool:
        sql = "SELECT id FROM usage_status_log WHERE data LIKE %s"
        return len(await suite.query("link", sql, (f"%organization:{room}%",))) == 2  # the update's row too

    await _until(both_applied)
    rows = await suite.query("link", "SELECT status FROM room_case_view WHERE service = 424242 AND caseId = 900001")
    assert rows == [{"status": "On Case"}]


async def test_history_of_a_room_conference_does_not_know(client: httpx.AsyncClient) -> None:
    assert await _history(client, "Never Made Room") == {"data": [], "count": 0}

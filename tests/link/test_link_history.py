"""GET /link/history and the realtime closeRoom row (rpc.link.link.room_history) from link's read models: room
status and cases from conference's events (real conference, real /case routes), recordings from recording's
egress events (published on JetStream as recording's relay does), and the usage_status_log row of each case
action. No query on another service's tables: the test freezes conference to prove the page needs no RPC."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from link.domain.history import TIMELINE_ROWS, FullTimelines
from tests.support import rpc, until

ROOM_HISTORY = "rpc.link.link.room_history"
QUEUE_PAGE = "rpc.link.link.queue_page"


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


def _room() -> str:
    return "Hist " + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


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


async def _case_row_id(suite: Any, case_id: int, service: int) -> int:
    rows = await suite.query(
        "conference", "SELECT id FROM case_data WHERE caseId = %s AND service = %s ORDER BY id", (case_id, service)
    )
    return int(rows[0]["id"])


async def _other_tenants_case(suite: Any, client: httpx.AsyncClient) -> None:
    """A case of tenant 1 first: case_data.id then runs ahead of tenant 999's caseId, so the two differ."""
    await suite.execute(
        "link",
        "INSERT IGNORE INTO services (id, name, prefixTextVideoSMS, prefixTextLocationSMS, domainsVideo,"
        " domainsLocation, smsSenderName) VALUES (1, 'IDEMS', 'video', 'location', 'https://v.example',"
        " 'https://loc.example', 'IDEMS')",
    )
    room = _room()
    made = await client.post("/link/create", json={"room": room, "mobile": "0812000009", "sms": 0},
                             headers=_auth(suite))  # fmt: skip
    assert made.status_code == 200, made.text
    body = {"userName": "Dr Other", "room": room, "mobile": "0812000009", "linkType": "video", "service": 1}
    other = await client.post("/case/create", json=body, headers=_auth(suite))
    assert other.status_code == 200 and other.json()["status"] == "OK", other.text


async def _queue_rows(nc: Any, mobile: str) -> list[dict[str, Any]]:
    reply = await rpc(nc, QUEUE_PAGE, {"status": "searchAll", "service": 999, "value": mobile, "page": 1, "maxRow": 5})
    assert reply["ok"] is True, reply
    return reply["data"]["data"]


async def test_history_shows_cases_room_status_and_recordings(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    await _other_tenants_case(suite, client)
    room = _room()
    mobile = "081" + str(uuid.uuid4().int)[:7]
    created = await client.post("/link/create", json={"room": room, "mobile": mobile, "sms": 0,
                                                       "userName": "Pat"}, headers=_auth(suite))  # fmt: skip
    assert created.status_code == 200
    link_id = created.json()["linkID"]
    body = {"userName": "Dr Hist", "room": room, "mobile": mobile, "linkType": "video", "service": 999}
    case = await client.post("/case/create", json=body, headers=_auth(suite))
    assert case.status_code == 200, case.text
    case_id = case.json()["data"]["caseId"]
    case_row_id = await _case_row_id(suite, case_id, 999)
    assert case_row_id != case_id  # the tenant-1 case above: a test that can tell the two apart
    await until(lambda: _case_in_view(suite, room, "On Case"))

    page = await _history(client, room)
    assert page["count"] == 1
    row = page["data"][0]
    assert list(row)[:5] == ["caseId", "linkID", "caseStatus", "hn", "patientMobile"]
    # the original's caseId here is case_data.id (the row), not the tenant's running case number
    assert row["caseId"] == case_row_id and row["linkID"] == link_id and row["caseStatus"] == "On Case"
    assert row["hn"] is None and row["patientMobile"] is None
    room_id = (await suite.query("conference", "SELECT id FROM room_conference WHERE room = %s", (room,)))[0]["id"]
    assert row["id"] == room_id and row["status"] == "open" and row["room"] == room
    assert row["activeLog"][0]["status"] == "CreateLink" and row["recordVideos"] == []

    # case update: status, hn and patientMobile follow; the case action wrote its usage_status_log row (from the event)
    updated = await client.put("/case/update", json={"service": 999, "caseId": str(case_id), "status": "Process",
                                                     "hn": "HN-77", "patientMobile": "0899990001"},
                               headers=_auth(suite))  # fmt: skip
    assert updated.status_code == 200, updated.text
    await until(lambda: _case_in_view(suite, room, "Process"))
    row = (await _history(client, room))["data"][0]
    shown = (row["caseId"], row["caseStatus"], row["hn"], row["patientMobile"])
    assert shown == (case_row_id, "Process", "HN-77", "0899990001")
    # the dashboards' queue page shows the same case columns
    queued = await _queue_rows(nc, mobile)
    assert [(r["linkID"], r["caseId"], r["caseStatus"], r["hn"], r["patientMobile"]) for r in queued] == [
        (link_id, case_row_id, "Process", "HN-77", "0899990001")
    ]
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

    videos = await until(recorded)
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
    assert frozen["count"] == 2 and frozen["data"][0]["caseId"] == case_row_id


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
    await until(lambda: _case_in_view(suite, room, "On Case"))
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

    await until(both_applied)
    rows = await suite.query("link", "SELECT status FROM room_case_view WHERE service = 424242 AND caseId = 900001")
    assert rows == [{"status": "On Case"}]


async def test_history_of_a_room_conference_does_not_know(client: httpx.AsyncClient) -> None:
    assert await _history(client, "Never Made Room") == {"data": [], "count": 0}


# ---- FullTimelines (the history emit's final timelines, kept in memory) ------------------------------------------
def test_only_full_timelines_are_kept_each_for_a_while_and_the_least_used_go_first() -> None:
    now = [0.0]
    timelines = FullTimelines(size=2, seconds=60, clock=lambda: now[0])
    full = [{"n": n} for n in range(TIMELINE_ROWS)]
    timelines.put("short", full[:-1])  # one row short: it still grows
    assert timelines.get("short") is None
    timelines.put("a", full)
    timelines.put("b", full)
    assert timelines.get("a") == full  # "a" used last: "b" is the least recently used
    timelines.put("c", full)
    assert (timelines.get("b"), timelines.get("a"), timelines.get("c")) == (None, full, full)
    now[0] = 59.9
    assert timelines.get("a") == full
    now[0] = 60.0
    assert timelines.get("a") is None and timelines.get("c") is None

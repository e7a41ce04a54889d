"""Issue 4 completion: GET /room/picture, GET /case/get's namespace reopening, the record state from recording's
egress events, and what ROOM_CLOSED / case events carry for realtime and link.

Events of other services are published here as their outbox relays publish them (envelope on JetStream).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support import rpc

ENSURE = "rpc.conference.room.ensure"
SERVICE = 999  # the tenant link seeds
INJECTION = "x' OR '1'='1'; DROP TABLE room_file_view; --"


def room_name() -> str:
    return "Pc" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


async def make_room(nc: Any, room: str | None = None) -> str:
    room = room or room_name()
    reply = await rpc(nc, ENSURE, {"room": room, "service": SERVICE})
    assert reply["ok"], reply
    return room


async def publish(nc: Any, subject: str, data: dict[str, Any], event_id: str | None = None) -> str:
    """An event as a service's outbox relay publishes it (a fresh Nats-Msg-Id, so a repeat is delivered)."""
    event_id = event_id or uuid.uuid4().hex
    envelope = {
        "id": event_id,
        "subject": subject,
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "data": data,
    }
    await nc.jetstream().publish(subject, json.dumps(envelope).encode(), headers={"Nats-Msg-Id": uuid.uuid4().hex})
    return event_id


async def until(probe: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def handled(suite: Any, consumer: str, event_id: str) -> bool:
    rows = await suite.query(
        "conference", "SELECT 1 FROM handled_event WHERE consumer = %s AND event_id = %s", (consumer, event_id)
    )
    return bool(rows)


async def outbox(suite: Any, subject: str) -> list[dict[str, Any]]:
    rows = await suite.query("conference", "SELECT payload FROM outbox WHERE subject = %s ORDER BY id", (subject,))
    return [json.loads(r["payload"])["data"] for r in rows]


@pytest.fixture
async def authed(suite: Any):
    headers = {"Authorization": f"Bearer {suite.agent_token()}"}
    async with httpx.AsyncClient(base_url=suite.edge, timeout=15, headers=headers) as http:
        yield http


# ---- GET /room/picture ------------------------------------------------------------------------------------
async def test_room_picture_lists_files_of_the_rooms_links(suite, nc, client):
    room, other = room_name(), room_name()
    link_a, link_b, link_other = (f"L{uuid.uuid4().hex[:12]}" for _ in range(3))
    base = 1_000_000 + uuid.uuid4().int % 1_000_000
    for link, name in ((link_a, room), (link_b, room), (link_other, other)):
        await publish(
            nc,
            "link.link.created",
            {"linkID": link, "room": name, "linkType": "video", "userType": "user", "userName": "U", "mobile": "",
             "service": SERVICE, "roomCreated": True},
        )  # fmt: skip
    files = [
        (base, link_a, "a.jpg", 1280, 720, "2024-05-01 09:03:04"),
        (base + 1, link_b, "b.png", None, None, "2024-05-01 10:00:00"),
        (base + 2, link_other, "c.jpg", 10, 10, "2024-05-01 11:00:00"),
    ]
    last = ""
    for file_id, link, filename, width, height, created in files:
        last = await publish(
            nc,
            "recording.file.stored",
            {"fileId": file_id, "linkId": link, "filename": filename, "url": f"/images/{file_id}/{filename}",
             "width": width, "height": height, "createdAt": created},
        )  # fmt: skip
    # A redelivered event (same id) and a repeated file (new id) change nothing.
    await publish(
        nc,
        "recording.file.stored",
        {"fileId": base, "linkId": link_a, "filename": "a.jpg", "url": f"/images/{base}/a.jpg", "width": 1280,
         "height": 720, "createdAt": "2024-05-01 09:03:04"},
        event_id=last,
    )  # fmt: skip

    async def pictures() -> list[dict[str, Any]]:
        reply = await client.get("/room/picture", params={"room": room})
        assert reply.status_code == 200 and reply.json()["status"] == "OK"
        data = reply.json()["data"]
        return data if len(data) == 2 else []

    data = await until(pictures)
    api_url = suite.env.get("API_URL", "").rstrip("/")
    assert data == [
        {"filename": "a.jpg", "url": f"{api_url}/images/{base}/a.jpg", "width": 1280, "height": 720,
         "createdAt": "2024-05-01T02:03:04.000Z"},
        {"filename": "b.png", "url": f"{api_url}/images/{base + 1}/b.png", "width": None, "height": None,
         "createdAt": "2024-05-01T03:00:00.000Z"},
    ]  # fmt: skip
    assert await until(lambda: handled(suite, "conference-files", last))
    rows = await suite.query("conference", "SELECT fileId FROM room_file_view WHERE fileId BETWEEN %s AND %s",
                             (base, base + 2))  # fmt: skip
    assert len(rows) == 3

    empty = await client.get("/room/picture", params={"room": room_name()})
    assert empty.status_code == 200 and empty.json() == {"status": "OK", "data": []}


@pytest.mark.parametrize("params", [{}, {"room": ""}, {"room": "r" * 51}])
async def test_room_picture_bad_input(suite, client, params):
    reply = await client.get("/room/picture", params=params)
    assert reply.status_code == 400
    body = reply.json()
    assert body["status"] == "FAIL"
    if not params.get("room"):
        assert body == {"status": "FAIL", "message": "Room parameter is required"}


async def test_room_picture_injection_is_a_room_name(suite, client):
    reply = await client.get("/room/picture", params={"room": INJECTION[:50]})
    assert reply.status_code == 200 and reply.json() == {"status": "OK", "data": []}
    assert await suite.query("conference", "SELECT COUNT(*) AS n FROM room_file_view") is not None


async def test_malformed_file_and_link_events_are_dropped(suite, nc, client):
    room = room_name()
    bad_link = await publish(nc, "link.link.created", {"linkID": "x" * 101, "room": room})
    bad_file = await publish(nc, "recording.file.stored", {"fileId": "nope", "linkId": 5})
    marker = await publish(
        nc,
        "link.link.created",
        {"linkID": f"L{uuid.uuid4().hex[:12]}", "room": room, "linkType": "video", "userType": "user",
         "userName": "U", "mobile": "", "service": SERVICE, "roomCreated": True},
    )  # fmt: skip
    assert await until(lambda: handled(suite, "conference-link-rooms", marker))
    assert not await handled(suite, "conference-link-rooms", bad_link)
    assert not await handled(suite, "conference-files", bad_file)
    assert await suite.query("conference", "SELECT 1 FROM room_link_view WHERE linkID = %s", ("x" * 101,)) == []


# ---- GET /case/get: the room's namespace reopened for a day -----------------------------------------------
async def test_case_get_reopens_a_closed_rooms_namespace_once(suite, nc, authed):
    room = await make_room(nc)
    created = await authed.post("/case/create", json={"userName": "Dr A", "room": room, "service": SERVICE})
    case_id = created.json()["data"]["caseId"]
    params = {"service": SERVICE, "caseId": str(case_id)}

    def opened_for_room(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["room"] == room]

    # Open and not expired: the namespace is live, nothing changes.
    before = (await suite.query("conference", "SELECT dtmExpired FROM room_conference WHERE room = %s", (room,)))[0]
    assert (await authed.get("/case/get", params=params)).json()["roomStatus"] == "open"
    assert opened_for_room(await outbox(suite, "conference.case.room_opened")) == []
    after = (await suite.query("conference", "SELECT dtmExpired FROM room_conference WHERE room = %s", (room,)))[0]
    assert after == before

    closed = await authed.put("/room/close", json={"room": room})
    assert closed.json() == {"status": "OK", "room": room}
    reply = (await authed.get("/case/get", params=params)).json()
    assert reply["roomStatus"] == "close" and reply["roomName"] == room
    row = (await suite.query("conference", "SELECT status, dtmExpired FROM room_conference WHERE room = %s", (room,)))[
        0
    ]
    assert row["status"] == "close"  # the status is not changed, only the namespace's day
    now = datetime.now().replace(microsecond=0)  # the suite's DB stores local wall-clock time (TZ of the suite)
    events = opened_for_room(await outbox(suite, "conference.case.room_opened"))
    assert len(events) == 1
    assert events[0]["caseId"] == case_id and events[0]["service"] == SERVICE
    assert events[0]["dtmExpired"] == row["dtmExpired"].strftime("%Y-%m-%d %H:%M:%S")
    assert abs((row["dtmExpired"] - now) - timedelta(days=1)) < timedelta(hours=13)  # any test-host timezone

    # The namespace is live now: a second /case/get does not extend again.
    await authed.get("/case/get", params=params)
    assert len(opened_for_room(await outbox(suite, "conference.case.room_opened"))) == 1

    # Past its day, the expiry sweep drops the reopened namespace (ROOM_CLOSED, closedBy "expired").
    await suite.execute(
        "conference", "UPDATE room_conference SET dtmExpired = dtmExpired - INTERVAL 3 DAY WHERE room = %s", (room,)
    )
    sweep = await authed.get("/room/checkexpired")
    assert sweep.status_code == 200 and sweep.text == "Check room expired complete"
    closes = [e for e in await outbox(suite, "conference.room.closed") if e["room"] == room]
    assert [e["closedBy"] for e in closes] == ["close", "expired"]
    await authed.get("/room/checkexpired")
    assert len([e for e in await outbox(suite, "conference.room.closed") if e["room"] == room]) == 2
    # ...and a later /case/get reopens it again.
    await authed.get("/case/get", params=params)
    assert len(opened_for_room(await outbox(suite, "conference.case.room_opened"))) == 2


# ---- ROOM_CLOSED carries what realtime needs for /queue closeRoom --------------------------------------------
async def test_room_closed_event_carries_room_service_and_trigger(suite, nc, authed):
    room = await make_room(nc)
    assert (await authed.put("/room/close", json={"room": room})).status_code == 200
    events = [e for e in await outbox(suite, "conference.room.closed") if e["room"] == room]
    assert len(events) == 1
    event = events[0]
    assert event["service"] == SERVICE and event["closedBy"] == "close" and event["status"] == "close"
    assert event["detail"]["room"] == room and event["detail"]["status"] == "close"

    other = await make_room(nc)
    created = await authed.post("/case/create", json={"room": other, "service": SERVICE})
    case_id = created.json()["data"]["caseId"]
    changed = await authed.put("/room/updatestatus", json={"caseId": case_id, "service": SERVICE, "status": "close"})
    assert changed.json() == {"status": "close"}
    by_status = [e for e in await outbox(suite, "conference.room.closed") if e["room"] == other]
    assert [e["closedBy"] for e in by_status] == ["status"]
    row = (await suite.query("conference", "SELECT dtmClosed FROM room_conference WHERE room = %s", (other,)))[0]
    assert row["dtmClosed"] is not None


# ---- record state from recording's egress events ----------------------------------------------------------
async def test_egress_events_set_the_rooms_record_state(suite, nc, client):
    room = await make_room(nc)
    egress = f"EG_{uuid.uuid4().hex[:12]}"
    started = await publish(
        nc,
        "recording.egress.started",
        {"room": room, "recordId": egress, "status": "EGRESS_ACTIVE", "dtmStartRecord": "2024-05-01 10:00:00",
         "egressInfo": {"egressId": egress}, "timestamp": 1},
    )  # fmt: skip
    assert await until(lambda: handled(suite, "conference-egress", started))
    row = (await suite.query("conference", "SELECT * FROM room_conference WHERE room = %s", (room,)))[0]
    assert (row["recordId"], row["recordStatus"]) == (egress, 1)
    assert row["dtmStartRecord"] == datetime(2024, 5, 1, 10, 0, 0)
    detail = (await client.get("/room/detail", params={"room": room})).json()["data"]
    assert detail["recordId"] == egress and detail["dtmStartRecord"] == "2024-05-01T03:00:00.000Z"
    assert detail["recordDuration"] > 0
    changes = [e for e in await outbox(suite, "conference.room.record_changed") if e["room"] == room]
    assert len(changes) == 1 and changes[0]["recordStatus"] == 1 and changes[0]["detail"]["recordId"] == egress

    # The end of an older egress does not clear the running one; its own end does.
    stale = await publish(
        nc, "recording.egress.ended", {"room": room, "recordId": "EG_older", "status": "EGRESS_COMPLETE",
                                        "dtmStopRecord": "2024-05-01 10:05:00"},
    )  # fmt: skip
    assert await until(lambda: handled(suite, "conference-egress", stale))
    row = (await suite.query("conference", "SELECT recordId, recordStatus FROM room_conference WHERE room = %s",
                             (room,)))[0]  # fmt: skip
    assert (row["recordId"], row["recordStatus"]) == (egress, 1)
    ended = await publish(
        nc, "recording.egress.ended", {"room": room, "recordId": egress, "status": "EGRESS_COMPLETE",
                                        "dtmStopRecord": "2024-05-01 10:30:00"},
    )  # fmt: skip
    assert await until(lambda: handled(suite, "conference-egress", ended))
    row = (await suite.query("conference", "SELECT * FROM room_conference WHERE room = %s", (room,)))[0]
    assert (row["recordId"], row["recordStatus"]) == ("", 2)
    assert row["dtmStopRecord"] == datetime(2024, 5, 1, 10, 30, 0)
    # A redelivery of the same event is applied once.
    await publish(
        nc, "recording.egress.started", {"room": room, "recordId": egress, "status": "EGRESS_ACTIVE",
                                          "dtmStartRecord": "2024-05-01 10:00:00"}, event_id=started,
    )  # fmt: skip
    await publish(nc, "recording.egress.updated", {"room": room, "recordId": egress, "status": "X"})
    # Events of one consumer are applied in order: once this marker is handled, the two above were seen.
    marker = await publish(nc, "recording.egress.ended", {"room": room_name(), "recordId": "EG_x", "status": "X"})
    assert await until(lambda: handled(suite, "conference-egress", marker))
    row = (await suite.query("conference", "SELECT recordId, recordStatus FROM room_conference WHERE room = %s",
                             (room,)))[0]  # fmt: skip
    assert (row["recordId"], row["recordStatus"]) == ("", 2)
    changes = [e for e in await outbox(suite, "conference.room.record_changed") if e["room"] == room]
    assert [e["recordStatus"] for e in changes] == [1, 2]


async def test_signed_egress_webhooks_reach_the_room_detail(suite, nc, client):
    """End to end: LiveKit's signed webhook -> recording -> RECORDING_EGRESS_* -> conference's record state."""
    if "recording" not in suite.services:
        pytest.skip("needs the recording service")
    from tests.fakes import livekit_webhooks as lkw

    room = await make_room(nc)
    egress = f"EG_{uuid.uuid4().hex[:12]}"
    key, secret = suite.env["LIVEKIT_API_KEY"], suite.env["LIVEKIT_API_SECRET"]
    started = lkw.event("egress_started", egressInfo=lkw.egress_info(egress, room, "EGRESS_STARTING"))
    assert (await lkw.post(client, started, key, secret)).status_code == 200

    async def recording_id() -> str | None:
        detail = (await client.get("/room/detail", params={"room": room})).json()["data"]
        return detail["recordId"] if detail["recordId"] == egress and detail["dtmStartRecord"] else None

    assert await until(recording_id) == egress
    ended = lkw.event("egress_ended", egressInfo=lkw.egress_info(egress, room, "EGRESS_COMPLETE"))
    assert (await lkw.post(client, ended, key, secret)).status_code == 200

    async def stopped() -> dict[str, Any] | None:
        rows = await suite.query(
            "conference", "SELECT recordId, recordStatus, dtmStopRecord FROM room_conference WHERE room = %s", (room,)
        )
        return rows[0] if rows[0]["recordStatus"] == 2 else None

    row = await until(stopped)
    assert row["recordId"] == "" and row["dtmStopRecord"] is not None


async def test_room_picture_query_failure_answers_the_originals_404(suite, client):
    # The read model table missing stands for a failing query (the original's only 404 case).
    await suite.execute("conference", "RENAME TABLE room_file_view TO room_file_view_off")
    try:
        reply = await client.get("/room/picture", params={"room": room_name()})
    finally:
        await suite.execute("conference", "RENAME TABLE room_file_view_off TO room_file_view")
    assert reply.status_code == 404
    assert reply.json() == {"status": "FAIL", "message": "No pictures found for this room"}
    assert (await client.get("/room/picture", params={"room": room_name()})).status_code == 200

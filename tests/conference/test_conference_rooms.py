"""Conference rooms: RPC_ROOM_ENSURE / RPC_ROOM_DETAIL over NATS and GET /room/detail through the edge."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support import rpc

ENSURE = "rpc.conference.room.ensure"
DETAIL = "rpc.conference.room.detail"
LOCAL_TZ = ZoneInfo("Asia/Bangkok")
DETAIL_KEYS = [
    "id",
    "status",
    "room",
    "roomType",
    "recordId",
    "autoRecord",
    "recordType",
    "encodingOptionsPreset",
    "chatEnabled",
    "messageUnread",
    "userAgent",
    "dtmCreated",
    "dtmStartRecord",
    "dtmStopRecord",
    "webSocketURL",
]


def room_name() -> str:
    # Letters only, like the link service's room names.
    return "Rm" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def js_iso(value: datetime) -> str:
    return value.replace(tzinfo=LOCAL_TZ).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def rows_of(suite, room: str) -> list[dict[str, Any]]:
    return await suite.query("conference", "SELECT * FROM room_conference WHERE room = %s ORDER BY id", (room,))


async def outbox_for(suite, room: str) -> list[str]:
    rows = await suite.query("conference", "SELECT subject, payload FROM outbox ORDER BY id")
    return [r["subject"] for r in rows if json.loads(r["payload"])["data"].get("room") == room]


# ---- ensure ----------------------------------------------------------------------------------------------
async def test_ensure_creates_once_under_concurrent_calls(suite, nc):
    room = room_name()
    replies = await asyncio.gather(
        *(rpc(nc, ENSURE, {"room": room, "service": 7, "linkType": "video", "userAgent": "UA/1"}) for _ in range(20))
    )
    assert all(r["ok"] for r in replies), replies
    assert sum(1 for r in replies if r["data"]["created"]) == 1
    ids = {r["data"]["room"]["id"] for r in replies}
    rows = await rows_of(suite, room)
    assert len(rows) == 1
    assert ids == {rows[0]["id"]}
    row = rows[0]
    assert (row["status"], row["roomType"], row["service"], row["userAgent"]) == ("open", "conference", 7, "UA/1")
    assert (row["recordId"], row["autoRecord"], row["chatEnabled"], row["recordStatus"]) == ("", 0, 1, 0)
    assert row["dtmUpdated"] == row["dtmCreated"]
    assert row["dtmExpired"] - row["dtmCreated"] == timedelta(days=1)  # ROOM_DAY_DEFAULT_TIMEOUT=1
    now_local = datetime.now(LOCAL_TZ).replace(tzinfo=None)
    assert abs((row["dtmCreated"] - now_local).total_seconds()) < 30
    assert await outbox_for(suite, room) == ["conference.room.created"]
    created = [r for r in replies if r["data"]["created"]][0]["data"]["room"]
    assert list(created) == DETAIL_KEYS
    assert created["room"] == room and created["status"] == "open"


async def test_ensure_is_case_insensitive_like_the_column(suite, nc):
    room = room_name()
    replies = await asyncio.gather(rpc(nc, ENSURE, {"room": room}), rpc(nc, ENSURE, {"room": room.upper()}))
    assert sorted(r["data"]["created"] for r in replies) == [False, True]
    rows = await suite.query("conference", "SELECT id FROM room_conference WHERE room = %s", (room.lower(),))
    assert len(rows) == 1


async def test_ensure_location_room_then_video_link_opens_it(suite, nc):
    room = room_name()
    first = await rpc(nc, ENSURE, {"room": room, "linkType": "location"})
    assert first["ok"] and first["data"]["created"] is True
    assert (first["data"]["room"]["status"], first["data"]["room"]["roomType"]) == ("close", "location")

    again = await rpc(nc, ENSURE, {"room": room, "linkType": "location"})
    assert again["data"]["created"] is False
    assert (again["data"]["room"]["status"], again["data"]["room"]["roomType"]) == ("close", "location")

    video = await rpc(nc, ENSURE, {"room": room, "linkType": "video"})
    assert video["data"]["created"] is False
    assert (video["data"]["room"]["status"], video["data"]["room"]["roomType"]) == ("open", "conference")
    rows = await rows_of(suite, room)
    assert len(rows) == 1 and (rows[0]["status"], rows[0]["roomType"]) == ("open", "conference")
    assert await outbox_for(suite, room) == ["conference.room.created", "conference.room.updated"]


async def test_ensure_conference_room_is_not_turned_into_location(suite, nc):
    room = room_name()
    await rpc(nc, ENSURE, {"room": room, "linkType": "conference"})
    reply = await rpc(nc, ENSURE, {"room": room, "linkType": "location"})
    assert reply["data"]["created"] is False
    assert (reply["data"]["room"]["status"], reply["data"]["room"]["roomType"]) == ("open", "conference")
    assert await outbox_for(suite, room) == ["conference.room.created"]


async def test_ensure_event_reaches_jetstream(suite, nc):
    """The outbox relay publishes ROOM_CREATED to the conference stream (private NATS per test run)."""
    js = nc.jetstream()
    room = room_name()
    await rpc(nc, ENSURE, {"room": room, "linkType": "location"})
    event: dict[str, Any] = {}
    for _ in range(200):  # up to 20 s: the machine is shared
        try:
            last = await js.get_last_msg("EVENTS_CONFERENCE", "conference.room.created")
            event = json.loads(last.data)
        except Exception:
            event = {}
        if event.get("data", {}).get("room") == room:
            break
        await asyncio.sleep(0.1)
    assert event.get("subject") == "conference.room.created"
    data = event["data"]
    assert {k: data[k] for k in ("room", "roomType", "status")} == {
        "room": room,
        "roomType": "location",
        "status": "close",
    }
    # the room's detail rides along (link's read model, issue 5)
    assert data["detail"]["room"] == room and data["detail"]["status"] == "close" and data["usesDefaultKey"] is True
    # The relay marks the row published right after JetStream acknowledged it (same transaction, commit after).
    for _ in range(100):
        published = await suite.query(
            "conference", "SELECT published_at FROM outbox WHERE event_id = %s", (event["id"],)
        )
        if published and published[0]["published_at"] is not None:
            break
        await asyncio.sleep(0.1)
    assert published and published[0]["published_at"] is not None


@pytest.mark.parametrize(
    "payload",
    [
        {"room": "x" * 51},
        {"room": ""},
        {"room": "   "},
        {"service": 1},
        {"room": 12345},
        {"room": "Abc", "service": "not-a-number"},
        b"not json at all",
    ],
)
async def test_ensure_bad_input_is_rejected_and_writes_nothing(suite, nc, payload):
    before = await suite.query("conference", "SELECT COUNT(*) AS n FROM room_conference")
    reply = await rpc(nc, ENSURE, payload)
    assert reply["ok"] is False
    assert reply["code"] == "bad_request"
    after = await suite.query("conference", "SELECT COUNT(*) AS n FROM room_conference")
    assert after[0]["n"] == before[0]["n"]


# ---- detail over NATS ------------------------------------------------------------------------------------
async def test_detail_rpc_matches_row_and_not_found(suite, nc):
    room = room_name()
    await rpc(nc, ENSURE, {"room": room, "autoRecord": 1, "recordType": "RoomCompositeVideoAudio"})
    reply = await rpc(nc, DETAIL, {"room": room})
    assert reply["ok"] is True
    row = (await rows_of(suite, room))[0]
    assert reply["data"] == {
        "id": row["id"],
        "status": "open",
        "room": room,
        "roomType": "conference",
        "recordId": "",
        "autoRecord": 1,
        "recordType": "RoomCompositeVideoAudio",
        "encodingOptionsPreset": "",
        "chatEnabled": 1,
        "messageUnread": 0,
        "userAgent": "",
        "dtmCreated": js_iso(row["dtmCreated"]),
        "dtmStartRecord": None,
        "dtmStopRecord": None,
        "webSocketURL": "",
    }
    missing = await rpc(nc, DETAIL, {"room": room_name()})
    assert missing["ok"] is False and missing["code"] == "not_found"
    bad = await rpc(nc, DETAIL, {"name": room})
    assert bad["ok"] is False and bad["code"] == "bad_request"


# ---- GET /room/detail through the edge -------------------------------------------------------------------
async def test_http_detail_shape_dates_and_record_duration(suite, nc):
    room = room_name()
    await rpc(nc, ENSURE, {"room": room, "userAgent": "Mozilla/5.0"})
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as http:
        response = await http.get("/room/detail", params={"room": room})
        assert response.status_code == 200
        body = response.json()
        row = (await rows_of(suite, room))[0]
        assert body["status"] == "OK"
        assert list(body["data"]) == DETAIL_KEYS
        assert body["data"]["id"] == row["id"]
        assert body["data"]["userAgent"] == "Mozilla/5.0"
        assert body["data"]["dtmCreated"] == js_iso(row["dtmCreated"])
        assert body["data"]["dtmCreated"].endswith(".000Z")

        started = datetime.now(LOCAL_TZ).replace(tzinfo=None, microsecond=0) - timedelta(seconds=90)
        stopped = started + timedelta(seconds=30)
        await suite.execute(
            "conference",
            "UPDATE room_conference SET dtmStartRecord = %s, dtmStopRecord = %s, recordId = 'EG_x' WHERE room = %s",
            (started, stopped, room),
        )
        body = (await http.get("/room/detail", params={"room": room})).json()
        data = body["data"]
        assert list(data) == [*DETAIL_KEYS, "recordDuration"]
        assert data["dtmStartRecord"] == js_iso(started)
        assert data["dtmStopRecord"] == js_iso(stopped)
        assert data["recordId"] == "EG_x"
        assert isinstance(data["recordDuration"], int)
        assert 89_000 <= data["recordDuration"] <= 100_000


async def test_http_detail_unknown_room(suite):
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as http:
        response = await http.get("/room/detail", params={"room": room_name()})
    assert response.status_code == 200
    assert response.json() == {"status": "OK", "data": {"status": "invalid_room"}}


@pytest.mark.parametrize(
    "params",
    [{}, {"room": ""}, {"room": "a" * 51}, {"name": "abc"}],
)
async def test_http_detail_bad_params_answer_fail_envelope(suite, params):
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as http:
        response = await http.get("/room/detail", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "FAIL"
    assert isinstance(body["message"], str) and body["message"]


@pytest.mark.parametrize(
    "attack",
    [
        "x' OR '1'='1",
        "x' OR 1=1 -- ",
        "'; DROP TABLE room_conference; --",
        '" OR ""="',
        "x%' UNION SELECT 1",
    ],
)
async def test_http_detail_sql_injection_is_just_an_unknown_room(suite, nc, attack):
    room = room_name()
    await rpc(nc, ENSURE, {"room": room})
    before = await suite.query("conference", "SELECT COUNT(*) AS n FROM room_conference")
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as http:
        response = await http.get("/room/detail", params={"room": attack})
        assert response.status_code == 200
        assert response.json() == {"status": "OK", "data": {"status": "invalid_room"}}
        still = await http.get("/room/detail", params={"room": room})
        assert still.json()["data"]["room"] == room
    after = await suite.query("conference", "SELECT COUNT(*) AS n FROM room_conference")
    assert after[0]["n"] == before[0]["n"] >= 1

"""/room/* routes beyond /room/detail, and GET /test, through the edge against the suite's fake LiveKit."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
import pytest

from tests.support import rpc

ENSURE = "rpc.conference.room.ensure"


def room_name() -> str:
    return "Rr" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def auth(suite, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token(**claims)}"}


async def make_room(nc, room: str) -> None:
    reply = await rpc(nc, ENSURE, {"room": room})
    assert reply["ok"], reply


async def room_rows(suite, room: str) -> list[dict[str, Any]]:
    return await suite.query("conference", "SELECT * FROM room_conference WHERE room = %s ORDER BY id", (room,))


async def events_for(suite, room: str) -> list[str]:
    rows = await suite.query("conference", "SELECT subject, payload FROM outbox ORDER BY id")
    return [r["subject"] for r in rows if json.loads(r["payload"])["data"].get("room") == room]


async def test_listrooms_bare_from_livekit_and_503_when_down(suite, nc, client, livekit):
    room = room_name()
    livekit.ensure_room(room)
    response = await client.get("/room/listrooms")
    assert response.status_code == 200
    rooms = response.json()
    assert isinstance(rooms, list)
    mine = [r for r in rooms if r["name"] == room]
    assert len(mine) == 1 and mine[0]["sid"].startswith("RM_") and "numParticipants" in mine[0]
    assert livekit.calls_of("ListRooms")[-1].claims["video"]["roomList"] is True

    livekit.down = True
    response = await client.get("/room/listrooms")
    assert response.status_code == 503 and response.json()["status"] == "FAIL"

    livekit.down, livekit.delay = False, 10.0
    started = time.monotonic()
    response = await client.get("/room/listrooms")
    assert response.status_code == 503 and "in time" in response.json()["message"]
    assert time.monotonic() - started < 6


async def test_verifytoken(suite, client):
    ok = await client.get("/room/verifytoken", headers=auth(suite, video={"roomJoin": True, "room": "X"}))
    assert ok.json()["status"] == "OK" and ok.json()["data"]["video"]["room"] == "X"
    no_join = await client.get("/room/verifytoken", headers=auth(suite))
    assert no_join.json()["status"] == "FAIL" and no_join.json()["data"]["video"] == {"roomJoin": False}
    expired = await client.get("/room/verifytoken", headers=auth(suite, exp=int(time.time()) - 100))
    assert expired.json() == {"status": "FAIL", "data": {"name": "TokenExpiredError", "message": "jwt expired"}}
    missing = await client.get("/room/verifytoken")
    assert missing.status_code == 200 and missing.json() == {"status": "FAIL", "message": "Invalid token"}
    forged = jwt.encode({"sub": "x", "exp": int(time.time()) + 60, "video": {"roomJoin": True}}, "wrong", "HS256")
    bad = await client.get("/room/verifytoken", headers={"Authorization": f"Bearer {forged}"})
    assert bad.json()["data"]["message"] == "invalid signature"


async def test_close_publishes_once_and_second_close_rewrites_nothing(suite, nc, client):
    room = room_name()
    await make_room(nc, room)
    # No token: the original's FAIL body, nothing written.
    denied = await client.put("/room/close", json={"room": room})
    assert denied.json() == {"status": "FAIL", "message": "Invalid token"}
    assert (await room_rows(suite, room))[0]["status"] == "open"

    first = await client.put("/room/close", json={"room": room}, headers=auth(suite))
    assert first.status_code == 200 and first.json() == {"status": "OK", "room": room}
    row = (await room_rows(suite, room))[0]
    assert row["status"] == "close" and row["dtmClosed"] is not None
    assert (await events_for(suite, room)).count("conference.room.closed") == 1

    second = await client.put("/room/close", json={"room": room}, headers=auth(suite))
    assert second.json() == {"status": "OK", "room": room}
    again = (await room_rows(suite, room))[0]
    assert again["dtmClosed"] == row["dtmClosed"] and again["dtmUpdated"] == row["dtmUpdated"]
    assert (await events_for(suite, room)).count("conference.room.closed") == 1

    unknown = await client.put("/room/close", json={"room": room_name()}, headers=auth(suite))
    assert unknown.status_code == 400 and unknown.text == "Bad Request"


@pytest.mark.parametrize(
    "body",
    [{}, {"room": ""}, {"room": "x" * 51}, {"room": 5}, {"room": ["a"]}, "not json", {"room": "a' OR '1'='1"}],
)
async def test_close_bad_input(suite, client, body):
    headers = auth(suite)
    if isinstance(body, str):
        response = await client.put(
            "/room/close", content=body, headers={**headers, "content-type": "application/json"}
        )
    else:
        response = await client.put("/room/close", json=body, headers=headers)
    assert response.status_code == 400
    if body == {"room": "a' OR '1'='1"}:
        assert response.text == "Bad Request"  # treated as a name: no such room
    else:
        assert response.json()["status"] == "FAIL"
    assert await suite.query("conference", "SELECT id FROM room_conference WHERE status = 'close' AND room = %s",
                             ("a' OR '1'='1",)) == []  # fmt: skip


async def test_deleteroom(suite, nc, client, livekit):
    room = room_name()
    await make_room(nc, room)
    livekit.ensure_room(room)
    livekit.down = True
    down = await client.post("/room/deleteroom", json={"room": room}, headers=auth(suite))
    assert down.status_code == 503
    assert (await room_rows(suite, room))[0]["status"] == "open"  # DB untouched
    livekit.down = False
    ok = await client.post("/room/deleteroom", json={"room": room}, headers=auth(suite))
    assert ok.json() == {"status": "OK", "message": f"Room {room} deleted"}
    assert room not in livekit.rooms
    assert livekit.calls_of("DeleteRoom")[-1].claims["video"]["roomCreate"] is True
    assert (await room_rows(suite, room))[0]["status"] == "close"
    assert "conference.room.closed" in await events_for(suite, room)
    gone = await client.post("/room/deleteroom", json={"room": room}, headers=auth(suite))
    assert gone.json() == {"status": "FAIL", "message": "requested room does not exist"}
    denied = await client.post("/room/deleteroom", json={"room": room})
    assert denied.json()["status"] == "FAIL"


async def test_updatetype_and_updatestatus(suite, nc, client):
    room = room_name()
    await make_room(nc, room)
    missing = await client.put("/room/updatetype", json={}, headers=auth(suite))
    assert missing.status_code == 404 and missing.text == "Invalid Room"
    too_long = await client.put("/room/updatetype", json={"room": room, "roomType": "x" * 11}, headers=auth(suite))
    assert too_long.status_code == 400
    ok = await client.put("/room/updatetype", json={"room": room, "roomType": "chat"}, headers=auth(suite))
    assert ok.json() == {"status": "roomUpdate", "room": room, "roomType": "chat"}
    row = (await room_rows(suite, room))[0]
    assert row["roomType"] == "chat" and row["chatEnabled"] == 1
    assert "conference.room.type_changed" in await events_for(suite, room)

    # updatestatus goes through the case's room.
    case = await suite.query("conference", "SELECT COALESCE(MAX(caseId), 0) + 1 AS n FROM case_data")
    case_id = case[0]["n"] + 900000
    await suite.execute(
        "conference",
        "INSERT INTO case_data (caseId, service, roomId, status) VALUES (%s, %s, %s, 'open')",
        (case_id, 77, row["id"]),
    )
    await suite.execute("conference", "UPDATE room_conference SET messageUnread = 1 WHERE room = %s", (room,))
    bad = await client.put("/room/updatestatus", json={"service": 77}, headers=auth(suite))
    assert bad.status_code == 404 and bad.text == "Invalid parameter"
    res = await client.put(
        "/room/updatestatus", json={"caseId": case_id, "service": 77, "status": "close"}, headers=auth(suite)
    )
    assert res.json() == {"status": "close"}
    row = (await room_rows(suite, room))[0]
    assert (row["status"], row["messageUnread"]) == ("close", 0)
    assert "conference.room.closed" in await events_for(suite, room)
    inject = await client.put("/room/updatestatus", json={"caseId": "1 OR 1=1", "status": "open"}, headers=auth(suite))
    assert inject.status_code == 400 and (await room_rows(suite, room))[0]["status"] == "close"


async def test_updateuser(suite, nc, client):
    room = room_name()
    await make_room(nc, room)
    token = await rpc(nc, "rpc.conference.participant.token", {"room": room, "userName": "Ann", "isAddUser": True})
    identity = token["data"]["identity"]
    res = await client.post(
        "/room/updateuser", json={"room": room, "identity": identity, "userName": "Bea"}, headers=auth(suite)
    )
    assert res.json() == {"status": "OK"}
    rows = await suite.query("conference", "SELECT userName FROM room_user WHERE room = %s", (room,))
    assert rows == [{"userName": "Bea"}]
    unknown = await client.post(
        "/room/updateuser", json={"room": room, "identity": "nobody", "userName": "X"}, headers=auth(suite)
    )
    assert unknown.json()["status"] == "FAIL"


async def test_verifyuser(suite, nc, client, livekit):
    room = room_name()
    await make_room(nc, room)
    token = await rpc(nc, "rpc.conference.participant.token", {"room": room, "userName": "Ann", "isAddUser": True})
    data = token["data"]
    headers = {"Authorization": f"Bearer {data['token']}"}
    # Not connected, known in room_user, same room and name: the same token back.
    same = await client.post("/room/verifyuser", json={"room": room}, headers=headers)
    assert same.json() == {"status": "OK", "data": {"identity": data["identity"], "token": data["token"]}}
    # Connected in LiveKit: a new identity for a second tab.
    livekit.add_participant(room, data["identity"], name="Ann")
    tab = await client.post("/room/verifyuser", json={"room": room}, headers=headers)
    assert tab.json()["status"] == "OK" and tab.json()["data"]["identity"] != data["identity"]
    # Not connected any more; another room without the user: FAIL.
    livekit.participants[room].pop(data["identity"])
    other = await client.post("/room/verifyuser", json={"room": room_name()}, headers=headers)
    assert other.json() == {"status": "FAIL", "data": {"message": "no user in room"}}
    livekit.down = True
    down = await client.post("/room/verifyuser", json={"room": room}, headers=headers)
    assert down.status_code == 503
    no_token = await client.post("/room/verifyuser", json={"room": room})
    assert no_token.json() == {"status": "FAIL", "message": "Invalid token"}


async def test_test_route_lists_participants(suite, client, livekit):
    room = room_name()
    livekit.add_participant(room, "p1")
    calls = len(livekit.calls_of("ListParticipants"))
    # An agent token: the original left it open; a room's participant token is not an agent's.
    missing = await client.get("/test", params={"room": room})
    assert (missing.status_code, missing.json()) == (200, {"status": "FAIL", "message": "Invalid token"})
    patient = await client.get(
        "/test", params={"room": room}, headers=auth(suite, video={"roomJoin": True, "room": room})
    )
    assert (patient.status_code, patient.json()) == (403, {"status": "FAIL", "message": "Forbidden"})
    assert len(livekit.calls_of("ListParticipants")) == calls
    res = await client.get("/test", params={"room": room}, headers=auth(suite))
    assert res.status_code == 200 and res.text == "OK"
    assert livekit.calls_of("ListParticipants")[-1].request["room"] == room
    assert (await client.get("/test", headers=auth(suite))).status_code == 400

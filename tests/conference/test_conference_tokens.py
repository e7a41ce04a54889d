"""Conference participant tokens: RPC_PARTICIPANT_TOKEN over NATS (the original's generateUser)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import jwt
import pytest

from tests.support import rpc

ENSURE = "rpc.conference.room.ensure"
TOKEN = "rpc.conference.participant.token"
SIX_HOURS = 6 * 3600
SEED_COLOURS = {
    "#3B3486", "#7743DB", "#6D9886", "#393E46", "#DC5F00", "#FF6B6B", "#4ECDC4", "#45B7D1", "#96CEB4", "#FFEAA7",
    "#DDA0DD", "#98D8C8", "#F7DC6F", "#BB8FCE", "#85C1E9", "#F8C471", "#82E0AA", "#F1948A", "#D7BDE2", "#AED6F1",
    "#A9DFBF", "#F9E79F", "#FADBD8", "#D5DBDB", "#2C3E50", "#E74C3C", "#3498DB", "#2ECC71", "#F39C12", "#9B59B6",
    "#1ABC9C", "#34495E", "#E67E22", "#95A5A6", "#FF5733", "#33FF57", "#3357FF", "#FF33F5", "#F5FF33", "#8E44AD",
    "#27AE60", "#2980B9", "#16A085", "#C0392B",
}  # fmt: skip
IDENTITY = re.compile(r"^[0-9a-zA-Z$]{10}$")


async def new_room(nc) -> str:
    room = "Tk" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])
    reply = await rpc(nc, ENSURE, {"room": room})
    assert reply["ok"] and reply["data"]["created"] is True
    return room


def claims_of(suite, token: str) -> dict[str, Any]:
    return jwt.decode(token, suite.env["LIVEKIT_API_SECRET"], algorithms=["HS256"])


async def users_of(suite, room: str) -> list[dict[str, Any]]:
    return await suite.query("conference", "SELECT * FROM room_user WHERE room = %s ORDER BY id", (room,))


async def test_token_claims_are_exactly_the_originals(suite, nc):
    room = await new_room(nc)
    reply = await rpc(
        nc,
        TOKEN,
        {
            "room": room,
            "identity": "agent-0001",
            "userName": "Dr A",
            "userType": "admin",
            "linkType": "video",
            "mobile": "0812345678",
            "linkID": "AbCdEf",
            "color": "#123456",
        },
    )
    assert reply["ok"] is True
    data = reply["data"]
    assert list(data) == ["identity", "userName", "token", "conference", "color"]
    assert (data["identity"], data["userName"], data["conference"], data["color"]) == (
        "agent-0001",
        "Dr A",
        1,
        "#123456",
    )
    claims = claims_of(suite, data["token"])
    assert claims["iss"] == suite.env["LIVEKIT_API_KEY"]
    assert claims["sub"] == "agent-0001"
    assert claims["name"] == "Dr A"
    assert claims["video"] == {
        "roomJoin": True,
        "room": room,
        "canPublish": True,
        "canSubscribe": True,
        "canPublishData": True,
        "roomList": True,
    }
    # JSON.stringify order and compactness
    assert claims["metadata"] == (
        '{"userName":"Dr A","userType":"admin","color":"#123456","linkType":"video",'
        '"mobile":"0812345678","linkID":"AbCdEf"}'
    )
    assert claims["exp"] - claims["nbf"] == SIX_HOURS
    assert set(claims) == {"iss", "sub", "name", "metadata", "video", "nbf", "exp"}


async def test_token_generates_identity_guest_name_and_seed_colour(suite, nc):
    room = await new_room(nc)
    reply = await rpc(nc, TOKEN, {"room": room, "userName": ""})
    data = reply["data"]
    assert IDENTITY.match(data["identity"]), data["identity"]
    assert re.fullmatch(r"Guest-\d{1,2}", data["userName"])
    assert data["color"] in SEED_COLOURS
    claims = claims_of(suite, data["token"])
    assert claims["sub"] == data["identity"] and claims["name"] == data["userName"]
    assert json.loads(claims["metadata"]) == {"userName": data["userName"], "userType": "user", "color": data["color"]}
    colours = {r["color_hex"] for r in await suite.query("conference", "SELECT color_hex FROM color_scheme")}
    assert colours == SEED_COLOURS


async def test_token_without_user_name_has_no_name(suite, nc):
    room = await new_room(nc)
    data = (await rpc(nc, TOKEN, {"room": room, "identity": "null", "userType": "viewer"}))["data"]
    assert data["identity"].startswith("viewer_") and IDENTITY.match(data["identity"][7:])
    assert "userName" not in data
    claims = claims_of(suite, data["token"])
    assert "name" not in claims
    assert json.loads(claims["metadata"]) == {"userType": "viewer", "color": data["color"]}


async def test_token_room_join_false_is_kept(suite, nc):
    room = await new_room(nc)
    data = (await rpc(nc, TOKEN, {"room": room, "userName": "Wait", "roomJoin": False}))["data"]
    assert claims_of(suite, data["token"])["video"]["roomJoin"] is False


async def test_token_add_user_inserts_then_updates(suite, nc):
    room = await new_room(nc)
    first = await rpc(
        nc,
        TOKEN,
        {"room": room, "identity": "u1", "userName": "Ann", "isAddUser": True, "userAgent": "UA-1", "conference": 0},
    )
    assert first["ok"] and first["data"]["conference"] == 0
    rows = await users_of(suite, room)
    assert len(rows) == 1
    row = rows[0]
    assert (row["identity"], row["userName"], row["userType"], row["status"], row["socketId"]) == (
        "u1",
        "Ann",
        "user",
        "join",
        "",
    )
    assert (row["conference"], row["userAgent"], row["color"]) == (0, "UA-1", first["data"]["color"])
    assert row["dtmcreated"] is not None and row["dtmupdated"] == row["dtmcreated"]

    second = await rpc(
        nc, TOKEN, {"room": room, "identity": "u1", "userName": "Ann B", "userType": "admin", "isAddUser": True}
    )
    assert second["ok"]
    rows = await users_of(suite, room)
    assert len(rows) == 1
    assert (rows[0]["userName"], rows[0]["userType"], rows[0]["userAgent"]) == ("Ann B", "admin", "UA-1")

    third = await rpc(nc, TOKEN, {"room": room, "identity": "u1", "userName": "Ann B", "userAgent": "UA-2"})
    assert third["ok"]
    rows = await users_of(suite, room)
    assert len(rows) == 1 and rows[0]["userAgent"] == "UA-2"


async def test_token_known_user_keeps_colour_and_name(suite, nc):
    room = await new_room(nc)
    await rpc(nc, TOKEN, {"room": room, "identity": "k1", "userName": "Known", "color": "#ABCDEF", "isAddUser": True})
    data = (await rpc(nc, TOKEN, {"room": room, "identity": "k1", "useKnownUser": True}))["data"]
    assert (data["identity"], data["userName"], data["color"]) == ("k1", "Known", "#ABCDEF")
    fresh = (await rpc(nc, TOKEN, {"room": room, "identity": "k2", "useKnownUser": True}))["data"]
    assert re.fullmatch(r"User-\d{1,2}", fresh["userName"]) and fresh["color"] in SEED_COLOURS


async def test_token_with_participants_without_livekit_is_empty_list(suite, nc):
    room = await new_room(nc)
    data = (await rpc(nc, TOKEN, {"room": room, "userName": "P", "withParticipants": True}))["data"]
    assert data["listParticipants"] == []


async def test_token_unknown_room_is_not_found_and_writes_nothing(suite, nc):
    room = "Nope" + uuid.uuid4().hex[:8]
    reply = await rpc(nc, TOKEN, {"room": room, "identity": "x1", "userName": "X", "isAddUser": True})
    assert reply == {"ok": False, "error": reply["error"], "code": "not_found"}
    assert await users_of(suite, room) == []


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"room": 5},
        {"room": "abc", "roomJoin": "yes please"},
        {"room": "abc", "isAddUser": [1]},
        b"\xff\xfe garbage",
    ],
)
async def test_token_bad_input_is_bad_request(suite, nc, payload):
    before = await suite.query("conference", "SELECT COUNT(*) AS n FROM room_user")
    reply = await rpc(nc, TOKEN, payload)
    assert reply["ok"] is False and reply["code"] == "bad_request"
    after = await suite.query("conference", "SELECT COUNT(*) AS n FROM room_user")
    assert after[0]["n"] == before[0]["n"]


async def test_token_sql_injection_identity_is_stored_verbatim(suite, nc):
    room = await new_room(nc)
    evil = "x'; DROP TABLE room_user; --"
    reply = await rpc(nc, TOKEN, {"room": room, "identity": evil, "userName": "O'Brien", "isAddUser": True})
    assert reply["ok"] is True and reply["data"]["identity"] == evil
    rows = await users_of(suite, room)
    assert [(r["identity"], r["userName"]) for r in rows] == [(evil, "O'Brien")]


@pytest.mark.parametrize(
    "field,value",
    [("identity", "i" * 51), ("userName", "n" * 101), ("userType", "t" * 51), ("color", "#" * 51)],
)
async def test_token_over_long_user_fields_are_bad_request_when_stored(suite, nc, field, value):
    room = await new_room(nc)
    reply = await rpc(nc, TOKEN, {"room": room, "userName": "A", "isAddUser": True, field: value})
    assert reply["ok"] is False and reply["code"] == "bad_request"
    assert await users_of(suite, room) == []

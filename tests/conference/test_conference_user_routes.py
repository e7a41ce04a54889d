"""/user/* routes through the edge against the suite's fake LiveKit (and link for joingenerate's linkID)."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.support import rpc

ENSURE = "rpc.conference.room.ensure"
TOKEN = "rpc.conference.participant.token"


def room_name() -> str:
    return "Ru" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def auth(suite, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token(**claims)}"}


@pytest.fixture
async def room(nc) -> str:
    name = room_name()
    assert (await rpc(nc, ENSURE, {"room": name}))["ok"]
    return name


def claims_of(suite, token: str) -> dict[str, Any]:
    return jwt.decode(token, suite.env["LIVEKIT_API_SECRET"], algorithms=["HS256"])


async def test_getuseralreadyinroom(suite, client, livekit, room):
    livekit.add_participant(room, "doc1", name="Dr A", tracks=[{"sid": "TR_a", "type": "audio"}])
    found = await client.get("/user/getuseralreadyinroom", params={"room": room, "identity": "doc1"})
    body = found.json()
    assert body["status"] == "OK" and body["data"]["identity"] == "doc1" and body["data"]["tracks"][0]["sid"] == "TR_a"
    missing = await client.get("/user/getuseralreadyinroom", params={"room": room, "identity": "nobody"})
    assert missing.json() == {"status": "FAIL", "data": {"code": "not_found", "msg": "participant does not exist"}}
    assert (await client.get("/user/getuseralreadyinroom", params={"room": room})).status_code == 400
    livekit.down = True
    assert (await client.get("/user/getuseralreadyinroom", params={"room": room, "identity": "d"})).status_code == 503


async def test_getuserdetail(nc, client, room):
    token = await rpc(nc, TOKEN, {"room": room, "userName": "Ann", "isAddUser": True})
    identity = token["data"]["identity"]
    ok = await client.get("/user/getuserdetail", params={"room": room, "identity": identity})
    assert ok.json() == {"status": "OK", "data": {"userName": "Ann"}}
    for params in ({"room": room}, {}, {"room": room, "identity": "' OR '1'='1"}):
        res = await client.get("/user/getuserdetail", params=params)
        assert res.json() == {"status": "FAIL", "message": "invalid room or identity"}


async def test_listparticipants_bare(client, livekit, room):
    livekit.add_participant(room, "p1", name="P1")
    livekit.add_participant(room, "p2", name="P2")
    res = await client.get("/user/listparticipants", params={"room": room})
    assert sorted(p["identity"] for p in res.json()) == ["p1", "p2"]
    assert (await client.get("/user/listparticipants", params={"room": room_name()})).json() == []
    livekit.delay = 10.0
    started = time.monotonic()
    slow = await client.get("/user/listparticipants", params={"room": room})
    assert slow.status_code == 503 and time.monotonic() - started < 6


async def test_generate_needs_token_and_inserts_user(suite, client, room):
    assert (await client.post("/user/generate", json={"room": room})).json() == {
        "status": "FAIL",
        "message": "Invalid token",
    }
    res = await client.post("/user/generate", json={"room": room}, headers=auth(suite, name="Agent A"))
    body = res.json()
    assert body["status"] == "OK" and body["message"] == "Create access token successful"
    claims = claims_of(suite, body["token"])
    assert claims["sub"] == body["identity"] and claims["video"]["room"] == room and claims["video"]["roomJoin"]
    rows = await suite.query("conference", "SELECT userName, status FROM room_user WHERE room = %s AND identity = %s",
                             (room, body["identity"]))  # fmt: skip
    assert rows == [{"userName": "Agent A", "status": "join"}]
    unknown = await client.post("/user/generate", json={"room": room_name()}, headers=auth(suite))
    assert unknown.json() == {"status": "FAIL"}


async def test_joingenerate_optional_auth_and_link(suite, client, room):
    anon = await client.post("/user/joingenerate", json={"room": room, "userName": "Guest"})
    data = anon.json()["data"]
    assert anon.json()["status"] == "OK"
    assert claims_of(suite, data["token"])["video"]["roomJoin"] is False
    own = suite.agent_token(sub="known-id-1")
    mine = await client.post(
        "/user/joingenerate", json={"room": room}, headers={"Authorization": f"Bearer {own}", "User-Agent": "UA/9"}
    )
    assert mine.json()["data"]["identity"] == "known-id-1"
    assert (await client.post("/user/joingenerate", json={"linkID": "no-such-link"})).json() == {"status": "FAIL"}
    rows = await suite.query("conference", "SELECT count(*) AS n FROM room_user WHERE room = %s", (room,))
    assert rows == [{"n": 0}]  # isAddUser false: no rows


async def test_generatechatuser(suite, client, room):
    res = await client.post("/user/generateChatUser", json={"room": room, "userName": ""}, headers=auth(suite))
    body = res.json()
    assert body["status"] == "OK" and "identity" in body and "token" in body
    claims = claims_of(suite, body["token"])
    assert claims["video"]["roomJoin"] is False and claims["name"].startswith("Guest-")
    # The service also answers the lower-case spelling (Express matched paths case-insensitively); the edge
    # routes the original spelling only.
    async with httpx.AsyncClient(base_url=suite.url("conference"), timeout=15) as direct:
        lower = await direct.post("/user/generatechatuser", json={"room": room, "userName": "B"}, headers=auth(suite))
    assert lower.json()["status"] == "OK"
    rows = await suite.query("conference", "SELECT count(*) AS n FROM room_user WHERE room = %s", (room,))
    assert rows == [{"n": 2}]
    denied = await client.post("/user/generateChatUser", json={"room": room, "userName": "C"})
    assert denied.json()["status"] == "FAIL"
    big = await client.post("/user/generateChatUser", json={"room": room, "userName": "x" * 101}, headers=auth(suite))
    assert big.status_code == 400
    assert (await suite.query("conference", "SELECT count(*) AS n FROM room_user WHERE room = %s", (room,))) == [
        {"n": 2}
    ]


async def test_updateparticipants_merges_metadata(suite, client, livekit, room):
    livekit.add_participant(room, "p1", metadata=json.dumps({"userName": "Old", "userType": "agent"}))
    res = await client.post(
        "/user/updateparticipants", json={"room": room, "identity": "p1", "userName": "New"}, headers=auth(suite)
    )
    assert json.loads(res.json()["metadata"]) == {"userName": "New", "userType": "agent"}
    assert json.loads(livekit.participant(room, "p1").metadata)["userName"] == "New"
    missing = await client.post(
        "/user/updateparticipants", json={"room": room, "identity": "zz", "userName": "N"}, headers=auth(suite)
    )
    assert missing.json() == {"code": "not_found", "msg": "participant does not exist"}
    call = livekit.calls_of("UpdateParticipant")[-1]
    assert call.claims["video"]["roomAdmin"] is True and call.claims["video"]["room"] == room


async def test_mutepublishedtrack_and_handle_track(suite, client, livekit, room):
    livekit.add_participant(room, "p1", tracks=[{"sid": "TR_v", "type": "video"}])
    body = {"room": room, "identity": "p1", "track_sid": "TR_v", "muted": True}
    res = await client.post("/user/mutepublishedtrack", json=body, headers=auth(suite))
    assert res.json()["sid"] == "TR_v" and res.json()["muted"] is True
    assert livekit.participant(room, "p1").tracks[0].muted is True
    form = await client.post(
        "/user/mutepublishedtrack", data={**body, "muted": "false"}, headers=auth(suite)
    )  # form strings parsed strictly
    assert form.json()["muted"] is False
    bad = await client.post("/user/mutepublishedtrack", json={**body, "muted": "yes"}, headers=auth(suite))
    assert bad.status_code == 400
    unknown = await client.post("/user/mutepublishedtrack", json={**body, "track_sid": "TR_x"}, headers=auth(suite))
    assert unknown.json() is False
    # A participant token works in its own room only: another room's is refused before LiveKit is asked.
    other = auth(suite, video={"roomJoin": True, "room": room + "x"})
    calls = len(livekit.calls_of("MutePublishedTrack"))
    refused = await client.post("/user/mutepublishedtrack", json=body, headers=other)
    assert (refused.status_code, refused.json()) == (403, {"status": "FAIL", "message": "Forbidden"})
    assert len(livekit.calls_of("MutePublishedTrack")) == calls
    own = await client.post("/user/mutepublishedtrack", json=body, headers=auth(suite, video={"room": room}))
    assert own.json()["sid"] == "TR_v"

    track = {"room": room, "identity": "p1", "trackSid": "TR_v", "isMuted": True, "source": "camera"}
    ok = await client.put("/user/handle/track", json=track, headers=auth(suite))
    assert ok.json() == {"success": True}
    assert livekit.participant(room, "p1").tracks[0].muted is True
    rows = await suite.query("conference", "SELECT payload FROM outbox WHERE subject = 'conference.track.muted'")
    assert any(json.loads(r["payload"])["data"] == {"room": room, "payload": track} for r in rows)
    livekit.down = True
    down = await client.put("/user/handle/track", json=track, headers=auth(suite))
    assert down.status_code == 503 and down.json()["success"] is False


async def test_removeparticipant_is_a_stub(suite, client, livekit, room):
    livekit.add_participant(room, "p1")
    # Named as a removal, so an agent token (the original left it open); a participant token: 403.
    missing = await client.post("/user/removeParticipant", json={"room": room, "identity": "p1"})
    assert missing.json() == {"status": "FAIL", "message": "Invalid token"}
    patient = auth(suite, video={"roomJoin": True, "room": room})
    refused = await client.post("/user/removeParticipant", json={"room": room, "identity": "p1"}, headers=patient)
    assert (refused.status_code, refused.json()) == (403, {"status": "FAIL", "message": "Forbidden"})
    res = await client.post("/user/removeParticipant", json={"room": room, "identity": "p1"}, headers=auth(suite))
    assert res.json() == {"status": "test"}
    assert livekit.participant(room, "p1") is not None


# ---- the official SDK accepts the tokens (tests/js/verify-token.mjs: livekit-server-sdk TokenVerifier) -------
async def verify_with_sdk(suite, tokens: list[str], secret: str | None = None) -> list[dict[str, Any]]:
    js = Path(__file__).parents[1] / "js" / "verify-token.mjs"
    proc = await asyncio.create_subprocess_exec(
        shutil.which("node") or "node", str(js), "--key", suite.env["LIVEKIT_API_KEY"],
        "--secret", secret or suite.env["LIVEKIT_API_SECRET"],
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdin = "".join(json.dumps({"token": t}) + "\n" for t in tokens).encode()
    out, _ = await asyncio.wait_for(proc.communicate(stdin), 30)
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_tokens_verify_with_livekit_server_sdk(suite, client, room):
    generated = (await client.post("/user/generate", json={"room": room}, headers=auth(suite, name="Dr B"))).json()
    joined = (await client.post("/user/joingenerate", json={"room": room, "userName": "Pat"})).json()["data"]
    results = await verify_with_sdk(suite, [generated["token"], joined["token"]])
    assert [r["ok"] for r in results] == [True, True], results
    first, second = (r["claims"] for r in results)
    assert first["sub"] == generated["identity"] and first["video"]["room"] == room and first["video"]["roomJoin"]
    assert first["video"]["canPublish"] is True and "roomAdmin" not in first["video"]
    assert json.loads(first["metadata"])["userName"] == "Dr B"
    assert second["sub"] == joined["identity"] and second["video"]["roomJoin"] is False and second["name"] == "Pat"
    # A wrong secret is rejected by the SDK (the check can fail).
    wrong = await verify_with_sdk(suite, [generated["token"]], secret="not-the-secret")
    assert wrong[0]["ok"] is False

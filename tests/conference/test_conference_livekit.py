"""Conference and LiveKit: node choice (node_livekit), CreateRoom on room creation, participants listed with a
token, signing with the node's key. A second fake LiveKit (tests/fakes/livekit.py) plays a node_livekit row."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jwt
import nats
import pytest
from livekit.protocol import models

from conference.domain import Node, SigningKey, choose_node, proto_to_json
from tests.fakes.livekit import FakeLiveKit

ENSURE = "rpc.conference.room.ensure"
TOKEN = "rpc.conference.participant.token"
LOCAL_TZ = ZoneInfo("Asia/Bangkok")
NODE_KEY, NODE_SECRET = "nodekey", "node-secret-0123456789abcdef"


# ---- pure parts ------------------------------------------------------------------------------------------
def test_choose_node_prefers_remembered_then_healthy_then_first():
    default = Node(id=None, name="default", api_url="http://env", key=SigningKey("k", "s"))
    now = datetime(2025, 1, 1, 12, 0, 0)
    rows = [
        {"id": 1, "nodeName": "a", "livekitHost": "wss://a.example", "livekitLocal": None,
         "livekitApiKey": "ka", "livekitApiSecret": "sa", "lastHealthCheck": now - timedelta(hours=2)},
        {"id": 2, "nodeName": "b", "livekitHost": "wss://b.example", "livekitLocal": "http://b.local:7880",
         "livekitApiKey": None, "livekitApiSecret": None, "lastHealthCheck": now - timedelta(minutes=5)},
    ]  # fmt: skip
    assert choose_node([], None, default, now) is default
    remembered = choose_node(rows, 1, default, now)
    assert (remembered.id, remembered.api_url, remembered.key) == (1, "https://a.example", SigningKey("ka", "sa"))
    healthy = choose_node(rows, None, default, now)
    assert (healthy.id, healthy.api_url, healthy.key) == (2, "http://b.local:7880", SigningKey("k", "s"))
    stale = [{**rows[0]}, {**rows[1], "lastHealthCheck": None}]
    assert choose_node(stale, None, default, now).id == 1
    assert choose_node(rows, 99, default, now).id == 2  # remembered node gone: choose again


def test_proto_to_json_is_plain_json_with_numbers():
    info = models.ParticipantInfo(
        sid="PA_1", identity="u1", name="Ann", state=models.ParticipantInfo.State.ACTIVE, joined_at=1700000000,
        metadata='{"userName":"Ann"}',
        tracks=[models.TrackInfo(sid="TR_1", type=models.TrackType.VIDEO, muted=True)],
    )  # fmt: skip
    data = proto_to_json(info)
    assert data["sid"] == "PA_1" and data["identity"] == "u1" and data["name"] == "Ann"
    assert data["state"] == 2 and data["joinedAt"] == 1700000000 and isinstance(data["joinedAt"], int)
    assert data["tracks"][0]["sid"] == "TR_1" and data["tracks"][0]["muted"] is True and data["tracks"][0]["type"] == 1
    assert data["permission"] is None and data["isPublisher"] is False
    json.dumps(data)  # serialisable as is


# ---- through the running service -------------------------------------------------------------------------
@pytest.fixture
async def livekit_node(suite):
    """A fake LiveKit registered as the only (healthy) row of node_livekit; removed afterwards so the other
    tests use the env default again."""
    fake = FakeLiveKit(NODE_KEY, NODE_SECRET).start()
    now = datetime.now(LOCAL_TZ).replace(tzinfo=None, microsecond=0)
    await suite.execute(
        "conference",
        "INSERT INTO node_livekit (nodeName, livekitHost, livekitLocal, livekitApiKey, livekitApiSecret,"
        " lastHealthCheck, description) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        ("test-node", "wss://lk.example", f"http://127.0.0.1:{fake.port}", NODE_KEY, NODE_SECRET, now, "fake"),
    )
    rows = await suite.query("conference", "SELECT id FROM node_livekit WHERE nodeName = 'test-node'")
    try:
        yield fake, rows[0]["id"]
    finally:
        await suite.execute("conference", "UPDATE room_conference SET nodeLivekitId = NULL WHERE nodeLivekitId = %s",
                            (rows[0]["id"],))  # fmt: skip
        await suite.execute("conference", "DELETE FROM node_livekit WHERE id = %s", (rows[0]["id"],))
        fake.stop()


async def rpc(suite, subject: str, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    nc = await nats.connect(suite.nats_url)
    try:
        msg = await nc.request(subject, json.dumps(payload).encode(), timeout=timeout)
        return json.loads(msg.data)
    finally:
        await nc.close()


async def test_room_on_a_livekit_node(suite, livekit_node):
    fake, node_id = livekit_node
    room = "Lk" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])

    created = await rpc(suite, ENSURE, {"room": room})
    assert created["ok"] and created["data"]["created"] is True
    rows = await suite.query("conference", "SELECT nodeLivekitId FROM room_conference WHERE room = %s", (room,))
    assert rows == [{"nodeLivekitId": node_id}]

    for _ in range(100):  # CreateRoom is fired after the reply
        if fake.calls_of("CreateRoom"):
            break
        await asyncio.sleep(0.05)
    assert len(fake.calls_of("CreateRoom")) == 1
    call = fake.calls_of("CreateRoom")[0]
    assert (call.request["name"], call.request["emptyTimeout"], call.request["maxParticipants"]) == (room, 600, 100)
    assert call.claims["video"].get("roomCreate") is True
    assert fake.rooms[room].max_participants == 100
    # The suite's default node (LIVEKIT_HOST) saw nothing of this room.
    assert room not in suite.livekit.rooms

    added = fake.add_participant(room, "patient1", name="Patient", metadata='{"userType":"user"}')
    reply = await rpc(suite, TOKEN, {"room": room, "userName": "Agent", "withParticipants": True})
    assert reply["ok"] is True
    data = reply["data"]
    listed = data["listParticipants"]
    assert [(p["identity"], p["name"], p["sid"], p["joinedAt"], p["state"]) for p in listed] == [
        ("patient1", "Patient", added.sid, added.joined_at, 2)
    ]
    # Signed with the node's key and secret.
    token_claims = jwt.decode(data["token"], NODE_SECRET, algorithms=["HS256"])
    assert token_claims["iss"] == NODE_KEY and token_claims["video"]["room"] == room
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(data["token"], suite.env["LIVEKIT_API_SECRET"], algorithms=["HS256"])

    # A LiveKit that hangs costs at most ~2 s and yields an empty list.
    fake.delay = 6.0
    started = time.monotonic()
    slow = await rpc(suite, TOKEN, {"room": room, "userName": "Agent", "withParticipants": True})
    assert time.monotonic() - started < 4.5
    assert slow["ok"] is True and slow["data"]["listParticipants"] == []


# ---- node credentials for recording (issue 7: rpc.conference.livekit.*) ------------------------------------
BY_KEY = "rpc.conference.livekit.node_by_key"
OF_ROOM = "rpc.conference.livekit.node_of_room"


async def test_node_credentials_by_key_and_by_room(suite, livekit_node):
    fake, _ = livekit_node
    node = {"url": f"http://127.0.0.1:{fake.port}", "apiKey": NODE_KEY, "apiSecret": NODE_SECRET}
    default = {"url": suite.env["LIVEKIT_HOST"], "apiKey": suite.env["LIVEKIT_API_KEY"],
               "apiSecret": suite.env["LIVEKIT_API_SECRET"]}  # fmt: skip

    assert await rpc(suite, BY_KEY, {"apiKey": NODE_KEY}) == {"ok": True, "data": node}
    assert (await rpc(suite, BY_KEY, {"apiKey": suite.env["LIVEKIT_API_KEY"]}))["data"] == default
    unknown = await rpc(suite, BY_KEY, {"apiKey": "no-such-key"})
    assert unknown["ok"] is False and unknown["code"] == "not_found" and "no-such-key" not in (unknown["error"] or "")
    for bad in ({"apiKey": ""}, {"apiKey": "k" * 201}, {}):
        assert (await rpc(suite, BY_KEY, bad))["code"] == "bad_request"

    room = "Nc" + uuid.uuid4().hex[:10]
    assert (await rpc(suite, ENSURE, {"room": room}))["data"]["created"] is True
    assert (await rpc(suite, OF_ROOM, {"room": room}))["data"] == node
    # The room stays on its node even when that node is no longer the one new rooms go to.
    await suite.execute("conference", "UPDATE node_livekit SET lastHealthCheck = NULL")
    assert (await rpc(suite, OF_ROOM, {"room": room}))["data"] == node
    assert (await rpc(suite, OF_ROOM, {"room": ""}))["code"] == "bad_request"


async def test_node_credentials_default_without_nodes(suite):
    default = {"url": suite.env["LIVEKIT_HOST"], "apiKey": suite.env["LIVEKIT_API_KEY"],
               "apiSecret": suite.env["LIVEKIT_API_SECRET"]}  # fmt: skip
    assert (await rpc(suite, OF_ROOM, {"room": "no-such-room-" + uuid.uuid4().hex[:6]}))["data"] == default
    assert (await rpc(suite, BY_KEY, {"apiKey": NODE_KEY}))["code"] == "not_found"  # no node row now

"""Recording with several LiveKit nodes (issue 7): a webhook is checked with the secret of the node whose API key
signed it (asked of conference, owner of node_livekit), and a room's egress runs on the room's own node.

A second fake LiveKit with its own key/secret plays a node_livekit row, as in
tests/conference/test_conference_livekit.py."""

from __future__ import annotations

import signal
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.egress import poll as _eventually
from tests.fakes import livekit_webhooks as lkw
from tests.fakes.livekit import FakeLiveKit
from tests.support import rpc

NODE_KEY, NODE_SECRET = "recnodekey", "rec-node-secret-0123456789abcdef"
ENSURE = "rpc.conference.room.ensure"
AGENT = '{"userType":"agent","userName":"Dr A"}'
LOCAL_TZ = ZoneInfo("Asia/Bangkok")


def _room() -> str:
    return "rn-" + uuid.uuid4().hex[:10]


async def _receipts(suite: Any, event_id: str) -> int:
    rows = await suite.query("recording", "SELECT COUNT(*) AS n FROM webhook_receipt WHERE eventId = %s", (event_id,))
    return int(rows[0]["n"])


async def _outbox_mentions(suite: Any, needle: str) -> int:
    rows = await suite.query("recording", "SELECT payload FROM outbox")
    return sum(needle in (p.decode() if isinstance(p := r["payload"], bytes) else str(p)) for r in rows)


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


@pytest.fixture
async def node(suite: Any) -> Any:
    """A second LiveKit (own key/secret) as the only, healthy node_livekit row: new rooms go to it. Its egress
    webhooks go to the edge, signed with its own key. Removed afterwards so other tests use the env default."""
    # Egress and event ids are unique across real nodes; each fake counts from 1, so this one counts elsewhere
    # (a shared event id would make recording drop the suite fake's later webhook as a replay).
    fake = FakeLiveKit(NODE_KEY, NODE_SECRET).start()
    fake.webhook_url = suite.edge + "/webhook"
    now = datetime.now(LOCAL_TZ).replace(tzinfo=None, microsecond=0)
    await suite.execute(
        "conference",
        "INSERT INTO node_livekit (nodeName, livekitHost, livekitLocal, livekitApiKey, livekitApiSecret,"
        " lastHealthCheck, description) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        ("rec-node", "wss://rec.example", fake.url, NODE_KEY, NODE_SECRET, now, "fake"),
    )
    rows = await suite.query("conference", "SELECT id FROM node_livekit WHERE nodeName = 'rec-node'")
    try:
        yield fake
    finally:
        fake.webhook_url = ""
        await suite.execute("conference", "UPDATE room_conference SET nodeLivekitId = NULL WHERE nodeLivekitId = %s",
                            (rows[0]["id"],))  # fmt: skip
        await suite.execute("conference", "DELETE FROM node_livekit WHERE id = %s", (rows[0]["id"],))
        fake.stop()


async def _room_on_node(suite: Any, nc: Any, room: str) -> None:
    """Conference creates the room (on the node) with auto-record; wait until recording knows its settings."""
    ensured = await rpc(
        nc, ENSURE,
        {"room": room, "service": 7, "autoRecord": 1, "recordType": "RoomCompositeVideoAudio",
         "encodingOptionsPreset": "H264_720P_30"},
    )  # fmt: skip
    assert ensured["ok"] and ensured["data"]["created"] is True, ensured

    async def known() -> bool:
        rows = await suite.query("recording", "SELECT autoRecord FROM room_setting WHERE room = %s", (room,))
        return bool(rows) and rows[0]["autoRecord"] == 1

    assert await _eventually(known), "room settings never reached recording"


async def test_webhooks_and_egress_use_the_rooms_node(
    suite: Any, client: httpx.AsyncClient, nc: Any, node: FakeLiveKit, livekit: FakeLiveKit
) -> None:
    room = _room()
    await _room_on_node(suite, nc, room)
    assert room in node.rooms and room not in livekit.rooms  # conference placed it on the node

    # Signed with the node's own key and secret: accepted and applied; the auto-record starts on that node.
    join = lkw.event("participant_joined", room=room, participant=lkw.participant("agent-1", metadata=AGENT))
    accepted = await lkw.post(client, join, NODE_KEY, NODE_SECRET)
    assert accepted.status_code == 200, accepted.text
    assert await _receipts(suite, join["id"]) == 1
    starts = [c for c in node.calls_of("StartRoomCompositeEgress") if c.request.get("roomName") == room]
    assert len(starts) == 1 and starts[0].claims["iss"] == NODE_KEY
    assert not [c for c in livekit.calls_of("StartRoomCompositeEgress") if c.request.get("roomName") == room]
    egress_id = next(e.egress_id for e in node.egresses.values() if e.room_name == room)
    media = await suite.query("recording", "SELECT egressId FROM record_media WHERE room = %s", (room,))
    assert media == [{"egressId": egress_id}]

    # The node's own egress_started webhook (signed with its key) is accepted too.
    async def started() -> bool:
        return ("egress_started", 200) in node.webhooks_sent

    assert await _eventually(started), node.webhooks_sent

    # The same key with a wrong secret: 401, nothing written.
    forged = lkw.event("participant_left", room=room, participant=lkw.participant("agent-1", metadata=AGENT))
    refused = await lkw.post(client, forged, NODE_KEY, "not-the-node-secret")
    assert refused.status_code == 401 and refused.json()["status"] == "FAIL"
    # The env default secret does not pass for the node's key either.
    refused = await lkw.post(client, forged, NODE_KEY, suite.env["LIVEKIT_API_SECRET"])
    assert refused.status_code == 401
    # A key no node has: 401.
    refused = await lkw.post(client, forged, "no-such-key", NODE_SECRET)
    assert refused.status_code == 401 and refused.json()["message"] == "unknown webhook API key"
    assert (await lkw.post(client, forged, "k" * 300, NODE_SECRET)).status_code == 401  # no node has such a key
    assert await _receipts(suite, forged["id"]) == 0
    assert await _outbox_mentions(suite, forged["id"]) == 0

    # The room's egress list and the stop go to its node as well.
    listed = (await client.get("/record/list", params={"room": room})).json()
    assert listed["status"] == "OK" and [i["egressId"] for i in listed["data"]] == [egress_id]
    stopped = (await client.get("/record/request", params={"room": room}, headers=_auth(suite))).json()
    assert stopped["status"] == "OK" and stopped["message"] == "stop record", stopped
    assert [c.request["egressId"] for c in node.calls_of("StopEgress")] == [egress_id]
    assert not livekit.calls_of("StopEgress") or all(
        c.request.get("egressId") != egress_id for c in livekit.calls_of("StopEgress")
    )

    async def ended() -> bool:
        return ("egress_ended", 200) in node.webhooks_sent

    assert await _eventually(ended), node.webhooks_sent
    row = (await suite.query("recording", "SELECT endRecord FROM record_media WHERE egressId = %s", (egress_id,)))[0]
    assert row["endRecord"] is not None


async def test_conference_unavailable_only_the_default_key_works(suite: Any, client: httpx.AsyncClient) -> None:
    room = _room()
    default_event = lkw.event("room_started", room=room)
    other_event = lkw.event("room_started", room=room)
    unseen_key = "unseen-" + uuid.uuid4().hex[:8]  # never cached by recording
    suite.signal_service("conference", signal.SIGSTOP)
    try:
        default = await lkw.post(client, default_event, suite.env["LIVEKIT_API_KEY"], suite.env["LIVEKIT_API_SECRET"])
        other = await lkw.post(client, other_event, unseen_key, "whatever-secret")
    finally:
        suite.signal_service("conference", signal.SIGCONT)
    assert default.status_code == 200, default.text
    assert await _receipts(suite, default_event["id"]) == 1
    assert other.status_code == 503, other.text  # LiveKit retries it later
    assert other.json()["status"] == "FAIL"
    assert await _receipts(suite, other_event["id"]) == 0
    assert await _outbox_mentions(suite, other_event["id"]) == 0
    # Conference back: the unknown key is refused for what it is.
    again = await lkw.post(client, other_event, unseen_key, "whatever-secret")
    assert again.status_code == 401


async def test_startup_reconcile_asks_the_rooms_node(
    suite: Any, nc: Any, node: FakeLiveKit, livekit: FakeLiveKit
) -> None:
    """A held egress the default node does not run is looked for on its room's node: kept while that node runs
    it, dropped (row closed) when it does not."""
    from livekit.protocol import egress as egress_pb

    from recording.events.livekit_nodes import LiveKitNodes, NodeCredentials
    from recording.events.recorder import reconcile
    from servicekit.bus import Bus
    from servicekit.db import Database
    from servicekit.settings import CommonSettings
    from servicekit.web import Runtime

    running_room, ghost_room = _room(), _room()
    for room in (running_room, ghost_room):
        assert (await rpc(nc, ENSURE, {"room": room}))["data"]["created"] is True
    running_id, ghost_id = "EG_n" + uuid.uuid4().hex[:8], "EG_g" + uuid.uuid4().hex[:8]
    node.egresses[running_id] = egress_pb.EgressInfo(
        egress_id=running_id, room_name=running_room, status=egress_pb.EgressStatus.EGRESS_ACTIVE
    )
    for room, egress_id in ((running_room, running_id), (ghost_room, ghost_id)):
        await suite.execute(
            "recording", "INSERT INTO room_egress (room, egressId, state) VALUES (%s, %s, 'active')", (room, egress_id)
        )
        await suite.execute(
            "recording",
            "INSERT INTO record_media (egressId, room, fileName, recordType, startRecord, dtmUpdated)"
            " VALUES (%s, %s, 'n.mp4', 'RoomCompositeVideoAudio', NOW(), NOW())",
            (egress_id, room),
        )
    db = await Database.connect(CommonSettings(mysql_database=suite.db_name("recording")), create=False)
    runtime = Runtime(settings=CommonSettings(), db=db)
    default = NodeCredentials(livekit.url, suite.env["LIVEKIT_API_KEY"], suite.env["LIVEKIT_API_SECRET"])
    runtime.extras["livekit_nodes"] = LiveKitNodes(Bus(nc, "test-recording"), default)
    try:
        await reconcile(runtime)
        rows = await suite.query(
            "recording", "SELECT room, egressId FROM room_egress WHERE room IN (%s, %s)", (running_room, ghost_room)
        )
        assert rows == [{"room": running_room, "egressId": running_id}]
        ghost = await suite.query("recording", "SELECT endRecord FROM record_media WHERE egressId = %s", (ghost_id,))
        assert ghost[0]["endRecord"] is not None
        assert [c.claims["iss"] for c in node.calls_of("ListEgress")] == [NODE_KEY, NODE_KEY]
    finally:
        await suite.execute("recording", "DELETE FROM room_egress WHERE room IN (%s, %s)", (running_room, ghost_room))
        await runtime.extras["livekit_nodes"].close()
        await db.close()

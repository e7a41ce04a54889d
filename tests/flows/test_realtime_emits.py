"""Emits caused by events other services publish (realtime.md §5, §11), seen through the edge by the official JS
client (tests/js/listen.mjs): ``room-data`` after PUT /room/updatetype, ``track-muted-unmuted`` after PUT
/user/handle/track, ``position`` on /data/{linkID} after POST /link/multilatlng/send, and ``room-record`` after
LiveKit's signed ``egress_started`` webhook."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.fakes import livekit_webhooks as lkw
from tests.sockets import Listener, listen, room_name, wait_for_consumers, wait_registered

NODE = shutil.which("node") or "node"
NEEDED = {"realtime", "conference", "link", "recording"}
pytestmark = pytest.mark.usefixtures("needs_services", "node_client", "consumers_ready", "recording_consumer")


@pytest.fixture(scope="module")
def needs_services(suite: Any) -> None:
    missing = NEEDED - set(suite.services)
    if missing:
        pytest.skip(f"needs {sorted(missing)}")


@pytest.fixture(scope="module")
async def recording_consumer(suite: Any) -> None:
    """Realtime's durable consumer of recording's stream delivers only events published after it exists."""
    await wait_for_consumers(suite.nats_url, (("recording", "realtime-recording"),))


def auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


async def watching(node: str, suite: Any, namespace: str, event: str) -> Listener:
    """A connected, greeted client of ``namespace`` (an agent token), printing every event it gets for 60 s."""
    listener = await listen(
        node, f"{suite.edge}{namespace}", "--token", suite.agent_token(), "--events", event,
        "--count", "1000", "--timeout", "60000",
    )  # fmt: skip
    await listener.connected()
    await listener.until("event", "connection-success", timeout=15)
    return listener


async def seen(listener: Listener, event: str, seconds: float) -> list[Any]:
    """Payloads of ``event`` the listener got so far and within the next ``seconds``."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            await listener.next(left)
        except TimeoutError:
            break
    return [line["data"] for line in listener.lines if line.get("event") == event]


# ---- PUT /room/updatetype -> room-data ---------------------------------------------------------------------
async def test_room_type_change_emits_room_data(suite: Any, client: httpx.AsyncClient, room: str) -> None:
    other = await watching(NODE, suite, f"/{room}", "case-data")
    listener = await watching(NODE, suite, f"/{room}", "room-data")
    try:
        # a refused update (no room) emits nothing
        missing = await client.put("/room/updatetype", json={"roomType": "location"}, headers=auth(suite))
        assert missing.status_code == 404
        reply = await client.put(
            "/room/updatetype", json={"room": room, "roomType": "location", "identity": "agent1"}, headers=auth(suite)
        )
        assert reply.json() == {"status": "roomUpdate", "room": room, "roomType": "location"}
        line = await listener.until("event", "room-data", timeout=15)
        assert line["data"] == {"status": "roomUpdate", "room": room, "roomType": "location"}
        assert list(line["data"]) == ["status", "room", "roomType"]
        assert len(line["args"]) == 1
        again = await client.put("/room/updatetype", json={"room": room, "roomType": "conference"}, headers=auth(suite))
        assert again.status_code == 200
        line = await listener.until("event", "room-data", timeout=15)
        assert line["data"] == {"status": "roomUpdate", "room": room, "roomType": "conference"}
        # room-data only: the link-side roomUpdate case-data is not emitted for this route
        assert await seen(other, "case-data", 1.0) == []
    finally:
        await listener.close()
        await other.close()


# ---- PUT /user/handle/track -> track-muted-unmuted ---------------------------------------------------------
async def test_handle_track_emits_track_muted_unmuted_with_the_body(
    suite: Any, client: httpx.AsyncClient, livekit: Any, room: str
) -> None:
    livekit.add_participant(room, "p1", tracks=[{"sid": "TR_cam", "type": "video"}])
    listener = await watching(NODE, suite, f"/{room}", "track-muted-unmuted")
    try:
        muted = {
            "room": room,
            "identity": "p1",
            "trackSid": "TR_cam",
            "isMuted": True,
            "source": "camera",
            "extra": {"by": "admin", "list": [1, "two", None]},
        }
        reply = await client.put("/user/handle/track", json=muted, headers=auth(suite))
        assert reply.json() == {"success": True}
        line = await listener.until("event", "track-muted-unmuted", timeout=15)
        assert line["data"] == muted
        assert list(line["data"]) == list(muted)  # the body as sent, key order kept
        assert livekit.participant(room, "p1").tracks[0].muted is True

        unmuted = {"room": room, "identity": "p1", "trackSid": "TR_cam", "isMuted": False}
        reply = await client.put("/user/handle/track", json=unmuted, headers=auth(suite))
        assert reply.json() == {"success": True}
        line = await listener.until("event", "track-muted-unmuted", timeout=15)
        assert line["data"] == unmuted
        assert livekit.participant(room, "p1").tracks[0].muted is False
    finally:
        await listener.close()


async def test_refused_handle_track_emits_nothing(
    suite: Any, client: httpx.AsyncClient, livekit: Any, room: str
) -> None:
    livekit.add_participant(room, "p1", tracks=[{"sid": "TR_mic", "type": "audio"}])
    listener = await watching(NODE, suite, f"/{room}", "track-muted-unmuted")
    try:
        bad = {"room": room, "identity": "p1", "trackSid": "TR_mic", "isMuted": "perhaps"}
        assert (await client.put("/user/handle/track", json=bad, headers=auth(suite))).status_code == 400
        no_token = {"room": room, "identity": "p1", "trackSid": "TR_mic", "isMuted": True}
        refused = await client.put("/user/handle/track", json=no_token)
        assert refused.json().get("success") is not True
        livekit.down = True
        down = await client.put("/user/handle/track", json=no_token, headers=auth(suite))
        assert down.status_code == 503
        assert await seen(listener, "track-muted-unmuted", 1.5) == []
    finally:
        await listener.close()


# ---- POST /link/multilatlng/send -> position on /data/{linkID} ---------------------------------------------
async def test_multi_latlng_emits_position_as_the_reply(suite: Any, client: httpx.AsyncClient) -> None:
    room = room_name()
    created = await client.post("/link/create", json={"room": room, "mobile": "", "sms": 0}, headers=auth(suite))
    assert created.status_code == 200, created.text
    link = created.json()["linkID"]
    await wait_registered(suite, f"/data/{link}")
    listener = await watching(NODE, suite, f"/data/{link}", "position")
    try:
        body = {
            "linkID": link,
            "room": room,
            "userType": "admin",
            "currentLocation": {"latitude": 13.7563, "longitude": 100.5018, "accuracy": 8.5, "heading": 45},
            "pickLocation": {"latitude": 13.8, "longitude": 100.55},
        }
        reply = await client.post("/link/multilatlng/send", json=body)
        assert reply.status_code == 200, reply.text
        emitted = reply.json()
        assert emitted["linkID"] == link and emitted["service"] == 2 and emitted["latitude"] == 13.7563
        assert emitted["speed"] == 0 and emitted["pickLocation"] == body["pickLocation"]
        line = await listener.until("event", "position", timeout=15)
        assert line["data"] == emitted  # the HTTP reply is the emitted object itself
        assert list(line["data"]) == list(emitted)
    finally:
        await listener.close()


async def test_refused_multi_latlng_emits_nothing(suite: Any, client: httpx.AsyncClient) -> None:
    room = room_name()
    created = await client.post("/link/create", json={"room": room, "mobile": "", "sms": 0}, headers=auth(suite))
    link = created.json()["linkID"]
    await wait_registered(suite, f"/data/{link}")
    listener = await watching(NODE, suite, f"/data/{link}", "position")
    try:
        for body in (
            {"room": room, "currentLocation": {"latitude": 1}},  # no linkID
            {"linkID": link, "room": room, "currentLocation": {"latitude": "north"}},  # wrong type
            {"linkID": "x' OR '1'='1", "room": room, "currentLocation": {"latitude": 1}},  # unknown link
        ):
            reply = await client.post("/link/multilatlng/send", json=body)
            assert 400 <= reply.status_code < 500, reply.text
        assert await seen(listener, "position", 1.5) == []
    finally:
        await listener.close()


# ---- LiveKit egress_started webhook -> room-record ---------------------------------------------------------
async def _started_event(suite: Any, egress_id: str) -> dict[str, Any]:
    rows = await suite.query(
        "recording", "SELECT payload FROM outbox WHERE subject = 'recording.egress.started' AND payload LIKE %s",
        (f"%{egress_id}%",),
    )  # fmt: skip
    assert len(rows) == 1, rows
    return json.loads(rows[0]["payload"])["data"]


async def test_egress_started_webhook_emits_room_record(suite: Any, client: httpx.AsyncClient, room: str) -> None:
    key, secret = suite.env["LIVEKIT_API_KEY"], suite.env["LIVEKIT_API_SECRET"]
    egress_id = "EG_" + uuid.uuid4().hex[:10]
    listener = await watching(NODE, suite, f"/{room}", "room-record")
    try:
        info = lkw.egress_info(egress_id, room, "EGRESS_STARTING")
        started = lkw.event("egress_started", egressInfo=info)
        assert (await lkw.post(client, started, key, secret)).status_code == 200
        line = await listener.until("event", "room-record", timeout=15)
        record = line["data"]
        published = await _started_event(suite, egress_id)
        assert record == {
            **published["egressInfo"],
            "dtmStartRecord": published["dtmStartRecord"],
            "dtmStopRecord": None,
        }
        # the bare EgressInfo (no status wrapper), LiveKit's camelCase JSON
        assert record["egressId"] == egress_id and record["roomName"] == room
        assert record["status"] == "EGRESS_STARTING"
        assert record["roomComposite"]["roomName"] == room and record["roomComposite"]["layout"] == "grid"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", record["dtmStartRecord"])
        assert list(record)[-2:] == ["dtmStartRecord", "dtmStopRecord"]
        # the same webhook delivered again, and the later egress events, emit nothing more
        assert (await lkw.post(client, started, key, secret)).status_code == 200
        for name, status in (("egress_updated", "EGRESS_ACTIVE"), ("egress_ended", "EGRESS_COMPLETE")):
            later = lkw.event(name, egressInfo=lkw.egress_info(egress_id, room, status))
            assert (await lkw.post(client, later, key, secret)).status_code == 200
        assert len(await seen(listener, "room-record", 2.0)) == 1
    finally:
        await listener.close()


async def test_unsigned_egress_webhook_emits_nothing(suite: Any, client: httpx.AsyncClient, room: str) -> None:
    egress_id = "EG_" + uuid.uuid4().hex[:10]
    listener = await watching(NODE, suite, f"/{room}", "room-record")
    try:
        body = lkw.event("egress_started", egressInfo=lkw.egress_info(egress_id, room, "EGRESS_STARTING"))
        forged = lkw.sign(lkw.encode(body), suite.env["LIVEKIT_API_KEY"], "not-the-secret")
        unsigned = await client.post("/webhook", content=lkw.encode(body), headers={"Content-Type": "application/json"})
        assert unsigned.status_code == 401
        wrong = await client.post(
            "/webhook", content=lkw.encode(body), headers={"Content-Type": "application/json", "Authorization": forged}
        )
        assert wrong.status_code == 401
        assert await seen(listener, "room-record", 1.5) == []
    finally:
        await listener.close()

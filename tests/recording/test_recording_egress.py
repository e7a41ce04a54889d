"""Recording end to end against the fake LiveKit (Egress API + signed webhooks) and the fake encode API:
auto-record rules, one egress per room, EGRESS_LIMIT, the /record/* routes, the encode queue."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from contracts.recording import RECORDING_EGRESS_ENDED
from servicekit.bus import Bus
from tests.egress import claim as _claim
from tests.egress import media as _media
from tests.egress import new_room as _room
from tests.egress import poll as _eventually
from tests.egress import room_settings as _room_settings
from tests.egress import starts as _starts
from tests.egress import usage as _usage
from tests.fakes import livekit_webhooks as lkw
from tests.fakes.livekit import FakeLiveKit

AGENT = '{"userType":"agent","userName":"Dr A"}'


@pytest.fixture
def encoder(suite: Any) -> Any:
    suite.encode_api.reset()
    yield suite.encode_api
    suite.encode_api.reset()


async def _post(suite: Any, client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    response = await lkw.post(client, body, suite.env["LIVEKIT_API_KEY"], suite.env["LIVEKIT_API_SECRET"])
    assert response.status_code == 200, response.text
    return response


def _joined(room: str, identity: str, metadata: str = AGENT) -> dict[str, Any]:
    return lkw.event("participant_joined", room=room, participant=lkw.participant(identity, metadata=metadata))


def _track(room: str, identity: str, source: str, sid: str) -> dict[str, Any]:
    kind = "VIDEO" if source == "CAMERA" else "AUDIO"
    return lkw.event(
        "track_published",
        room=room,
        participant=lkw.participant(identity, metadata=AGENT),
        track={"sid": sid, "type": kind, "source": source, "name": source.lower()},
    )


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


async def test_room_settings_come_from_conference_events(suite: Any, conference_bus: Bus) -> None:
    room = _room()
    await _room_settings(suite, conference_bus, room, autoRecord=1, recordType="RoomCompositeAudio", service=12)
    row = (await suite.query("recording", "SELECT * FROM room_setting WHERE room = %s", (room,)))[0]
    assert (row["autoRecord"], row["recordType"], row["service"]) == (1, "RoomCompositeAudio", 12)


async def test_call_recorded_end_to_end(
    suite: Any, client: httpx.AsyncClient, conference_bus: Bus, lk: FakeLiveKit, encoder: Any
) -> None:
    room = _room()
    await _room_settings(
        suite, conference_bus, room, autoRecord=1, recordType="RoomCompositeVideoAudio",
        encodingOptionsPreset="H264_1080P_30", service=7,
    )  # fmt: skip
    join = _joined(room, "agent-1")
    await _post(suite, client, join)
    starts = _starts(lk, room)
    assert len(starts) == 1
    request = starts[0].request
    assert starts[0].claims["video"]["roomRecord"] is True
    assert request["layout"] == "grid" and request["preset"] == "H264_1080P_30" and not request.get("audioOnly")
    path = request["fileOutputs"][0]["filepath"]
    assert path.startswith("livekit-record/7/") and path.endswith(f"_RoomComposite_{room}.mp4")
    egress_id = next(iter(e for e, i in lk.egresses.items() if i.room_name == room))

    # LiveKit's egress_started webhook marks the claim active and goes out for conference/realtime
    async def active() -> bool:
        claim = await _claim(suite, room)
        return bool(claim) and claim["state"] == "active" and claim["egressId"] == egress_id

    assert await _eventually(active)
    # more people join, a redelivery arrives: still one egress
    await _post(suite, client, join)
    await asyncio.gather(*(_post(suite, client, _joined(room, f"p{i}")) for i in range(3)))
    assert len(_starts(lk, room)) == 1
    rows = await _media(suite, room)
    assert len(rows) == 1
    assert rows[0]["egressId"] == egress_id and rows[0]["recordType"] == "RoomCompositeVideoAudio"
    assert rows[0]["fileName"] == path.rsplit("/", 1)[1] and rows[0]["startRecord"] and rows[0]["endRecord"] is None

    # the toggle stops it; LiveKit's egress_ended completes the row and queues one encode job
    stopped = await client.get("/record/request", params={"room": room, "identity": "agent-1"}, headers=_auth(suite))
    body = stopped.json()
    assert body["status"] == "OK" and body["message"] == "stop record", body
    assert body["data"]["egressId"] == egress_id and body["data"]["dtmStopRecord"]

    async def encoded() -> list[Any]:
        return encoder.accepted

    async def job_sent() -> bool:
        jobs = await suite.query("recording", "SELECT * FROM encode_job WHERE recordId = %s", (rows[0]["id"],))
        return bool(jobs) and jobs[0]["status"] == "sent"

    assert await _eventually(job_sent)
    assert encoder.requests_for(rows[0]["id"]) == [{"recordId": rows[0]["id"], "hls": True}]
    rows = await _media(suite, room)
    assert len(rows) == 1 and rows[0]["status"] == "completed" and rows[0]["endRecord"] is not None
    assert await _claim(suite, room) is None
    ended = await suite.query("recording", "SELECT payload FROM outbox WHERE subject = %s", (RECORDING_EGRESS_ENDED,))
    assert any(json.loads(r["payload"])["data"]["recordId"] == egress_id for r in ended)

    # a replay of egress_ended changes nothing: no second job, no second call to the encode API
    lk.end_egress(egress_id)
    await _eventually(lambda: asyncio.sleep(0, result=len(lk.webhooks_sent) >= 3))
    await asyncio.sleep(0.5)
    assert len(await suite.query("recording", "SELECT * FROM encode_job WHERE recordId = %s", (rows[0]["id"],))) == 1
    assert len(encoder.requests_for(rows[0]["id"])) == 1

    mine = [u["data"] for u in await _usage(suite, room)]
    assert [(u["status"], u["identity"]) for u in mine] == [("StopRecord", "agent-1")]

    # the file history shows it with its URL
    files = (await client.get("/record/file", params={"room": room})).json()
    assert files["status"] == "OK" and len(files["data"]) == 1
    assert files["data"][0]["url"].endswith(f"/record/7/{rows[0]['fileName']}")


async def test_auto_record_rules(suite: Any, client: httpx.AsyncClient, conference_bus: Bus, lk: FakeLiveKit) -> None:
    audio = _room()
    await _room_settings(suite, conference_bus, audio, autoRecord=1, recordType="RoomCompositeAudio")
    await _post(suite, client, _joined(audio, "EG_bot", metadata=""))  # egress bots have no metadata: no record
    assert _starts(lk, audio) == []
    await _post(suite, client, _joined(audio, "patient-1"))
    [start] = _starts(lk, audio)
    assert start.request["audioOnly"] is True and start.request["fileOutputs"][0]["filepath"].endswith(".ogg")

    off = _room()
    await _room_settings(suite, conference_bus, off, autoRecord=0, recordType="RoomCompositeVideoAudio")
    await _post(suite, client, _joined(off, "agent-2"))
    assert _starts(lk, off) == []

    unknown = _room()  # a room conference never announced: published, nothing recorded
    await _post(suite, client, _joined(unknown, "agent-3"))
    assert _starts(lk, unknown) == [] and await _claim(suite, unknown) is None

    no_tenant = _room()
    await _room_settings(suite, conference_bus, no_tenant, autoRecord=1, recordType="RoomCompositeVideoAudio",
                         service=None)  # fmt: skip
    await _post(suite, client, _joined(no_tenant, "agent-4"))
    assert _starts(lk, no_tenant) == [] and await _claim(suite, no_tenant) is None
    await client.get("/record/request", params={"room": audio}, headers=_auth(suite))  # stop: frees the slot


async def test_concurrent_joins_start_one_egress(
    suite: Any, client: httpx.AsyncClient, conference_bus: Bus, lk: FakeLiveKit
) -> None:
    room = _room()
    await _room_settings(suite, conference_bus, room, autoRecord=1, recordType="RoomCompositeVideoAudio")
    lk.delay = 0.3  # a slow LiveKit: every join arrives while the first start is in flight
    await asyncio.gather(*(_post(suite, client, _joined(room, f"user-{i}")) for i in range(6)))
    lk.delay = 0.0
    assert len(_starts(lk, room)) == 1
    assert len(await _media(suite, room)) == 1
    await client.get("/record/request", params={"room": room}, headers=_auth(suite))


async def test_track_composite_waits_for_both_tracks(
    suite: Any, client: httpx.AsyncClient, conference_bus: Bus, lk: FakeLiveKit
) -> None:
    room = _room()
    await _room_settings(suite, conference_bus, room, autoRecord=0, recordType="TrackComposite", service=3)
    await _post(suite, client, _joined(room, "EG_recorder", metadata=""))  # egress bots are never tracked
    await _post(suite, client, _track(room, "EG_recorder", "CAMERA", "TR_bot_v"))
    await _post(suite, client, _track(room, "EG_recorder", "MICROPHONE", "TR_bot_a"))
    await _post(suite, client, _joined(room, "patient-9"))
    assert _starts(lk, room, "StartRoomCompositeEgress") == []  # TrackComposite rooms never get a room composite
    await _post(suite, client, _track(room, "patient-9", "CAMERA", "TR_cam"))
    assert _starts(lk, room, "StartTrackCompositeEgress") == []
    mic = _track(room, "patient-9", "MICROPHONE", "TR_mic")
    await _post(suite, client, mic)
    await _post(suite, client, mic)  # redelivery
    [start] = _starts(lk, room, "StartTrackCompositeEgress")
    assert (start.request["audioTrackId"], start.request["videoTrackId"]) == ("TR_mic", "TR_cam")
    path = start.request["fileOutputs"][0]["filepath"]
    assert path.startswith("livekit-record/3/") and path.endswith("_TrackComposite_patient-9.mp4")
    [row] = await _media(suite, room)
    assert row["recordType"] == "TrackComposite"

    # room_finished stops the room's egress
    claim = await _eventually(lambda: _claim(suite, room))
    await _post(suite, client, lkw.event("room_finished", room=room))
    assert lk.calls_of("StopEgress")[-1].request["egressId"] == claim["egressId"]
    assert await _eventually(lambda: _media_ended(suite, room))


async def _media_ended(suite: Any, room: str) -> bool:
    rows = await _media(suite, room)
    return bool(rows) and rows[0]["endRecord"] is not None


async def test_egress_limit(suite: Any, client: httpx.AsyncClient, conference_bus: Bus, lk: FakeLiveKit) -> None:
    limit = int(suite.env["EGRESS_LIMIT"])
    held = (await suite.query("recording", "SELECT COUNT(*) AS n FROM room_egress"))[0]["n"]
    fillers = [f"fill-{uuid.uuid4().hex[:8]}" for _ in range(limit - held)]
    for filler in fillers:
        await suite.execute(
            "recording", "INSERT INTO room_egress (room, egressId, state) VALUES (%s, %s, 'active')",
            (filler, "EG_" + filler),
        )  # fmt: skip
    try:
        check = (await client.get("/record/check")).json()
        assert check == {"status": "FAIL", "message": "Record service not available"}
        room = _room()
        await _room_settings(suite, conference_bus, room, autoRecord=1, recordType="RoomCompositeVideoAudio")
        await _post(suite, client, _joined(room, "agent-x"))
        assert _starts(lk, room) == []
        toggle = (await client.get("/record/request", params={"room": room}, headers=_auth(suite))).json()
        assert toggle == {"status": "FAIL", "message": "Record service not available"}
        assert await _media(suite, room) == [] and await _claim(suite, room) is None
    finally:
        for filler in fillers:
            await suite.execute("recording", "DELETE FROM room_egress WHERE room = %s", (filler,))
    check = (await client.get("/record/check")).json()
    assert check == {"status": "OK", "message": "Record service is ready"}


async def test_livekit_failure_writes_nothing(
    suite: Any, client: httpx.AsyncClient, conference_bus: Bus, lk: FakeLiveKit
) -> None:
    room = _room()
    await _room_settings(suite, conference_bus, room)
    for failure in ("resource_exhausted", "unavailable"):
        lk.egress_failure = failure
        reply = (await client.get("/record/request", params={"room": room}, headers=_auth(suite))).json()
        assert reply["status"] == "FAIL" and reply["error"]["code"] == failure
        assert await _media(suite, room) == [] and await _claim(suite, room) is None
    assert [u["data"]["status"] for u in await _usage(suite, room)] == ["FailRecord"] * 2
    lk.egress_failure = ""
    started = (await client.get("/record/request", params={"room": room}, headers=_auth(suite))).json()
    assert started["status"] == "OK" and started["message"] == "start record"
    assert started["data"]["roomName"] == room and started["data"]["dtmStopRecord"] is None
    assert len(await _media(suite, room)) == 1
    await client.get("/record/request", params={"room": room}, headers=_auth(suite))


async def test_record_routes_bad_input(suite: Any, client: httpx.AsyncClient, lk: FakeLiveKit) -> None:
    unauth = await client.get("/record/request", params={"room": "x"})  # the token check's FAIL answer
    assert unauth.json()["status"] == "FAIL" and "message" in unauth.json()
    assert (await client.get("/record/stopall")).json()["status"] == "FAIL"
    no_room = await client.get("/record/request", headers=_auth(suite))
    assert no_room.json() == {"status": "FAIL", "message": "invalid query"}
    unknown = await client.get("/record/request", params={"room": _room()}, headers=_auth(suite))
    assert unknown.status_code == 404 and unknown.json()["message"] == "Room not found"
    missing = await client.get("/record/file")
    assert missing.status_code == 400 and missing.json() == {"status": "FAIL", "message": "Room parameter is required"}
    gone = await client.get("/record/file", params={"room": "nope' OR 1=1 -- "})
    assert gone.status_code == 404 and gone.json() == {"status": "FAIL", "message": "Room not found"}
    assert lk.calls_of("StartRoomCompositeEgress") == [] or all(
        c.request.get("roomName") != "x" for c in lk.calls_of("StartRoomCompositeEgress")
    )


async def test_list_and_stopall(suite: Any, client: httpx.AsyncClient, conference_bus: Bus, lk: FakeLiveKit) -> None:
    rooms = [_room(), _room()]
    for room in rooms:
        await _room_settings(suite, conference_bus, room)
        started = (await client.get("/record/request", params={"room": room}, headers=_auth(suite))).json()
        assert started["status"] == "OK"
    listed = (await client.get("/record/list", params={"room": rooms[0]})).json()
    assert listed["status"] == "OK" and [e["roomName"] for e in listed["data"]] == [rooms[0]]
    stopped = (await client.get("/record/stopall", headers=_auth(suite))).json()
    assert stopped["status"] == "OK" and stopped["message"] == ""
    assert {e["roomName"] for e in stopped["data"]} >= set(rooms)
    for room in rooms:
        assert await _claim(suite, room) is None
        assert (await _media(suite, room))[0]["endRecord"] is not None
    again = (await client.get("/record/stopall", headers=_auth(suite))).json()
    assert again == {"status": "OK", "message": "no task stop", "data": []}


async def _ended_egress(
    suite: Any, client: httpx.AsyncClient, bus: Bus, encoder: Any, failures: int, status: int
) -> int:
    """A recording started and stopped; the encode API fails its first ``failures`` calls with ``status``."""
    room = _room()
    await _room_settings(suite, bus, room)
    started = (await client.get("/record/request", params={"room": room}, headers=_auth(suite))).json()
    assert started["status"] == "OK"
    [row] = await _media(suite, room)
    encoder.fail_record(int(row["id"]), failures, status)
    await client.get("/record/request", params={"room": room}, headers=_auth(suite))
    return int(row["id"])


async def _job(suite: Any, record_id: int) -> dict[str, Any] | None:
    rows = await suite.query("recording", "SELECT * FROM encode_job WHERE recordId = %s", (record_id,))
    return rows[0] if rows else None


async def test_encode_job_retries(
    suite: Any, client: httpx.AsyncClient, conference_bus: Bus, lk: FakeLiveKit, encoder: Any
) -> None:
    record_id = await _ended_egress(suite, client, conference_bus, encoder, 2, 503)

    async def sent() -> bool:
        job = await _job(suite, record_id)
        return bool(job) and job["status"] == "sent"

    assert await _eventually(sent, timeout=15)
    assert (await _job(suite, record_id))["attempts"] == 3
    assert len(encoder.requests_for(record_id)) == 3
    assert [a for a in encoder.accepted if a["recordId"] == record_id] == [{"recordId": record_id, "hls": True}]


async def test_encode_job_gives_up_on_4xx(
    suite: Any, client: httpx.AsyncClient, conference_bus: Bus, lk: FakeLiveKit, encoder: Any
) -> None:
    record_id = await _ended_egress(suite, client, conference_bus, encoder, 1, 400)

    async def failed() -> bool:
        job = await _job(suite, record_id)
        return bool(job) and job["status"] == "failed"

    assert await _eventually(failed)
    rows = await suite.query("recording", "SELECT encode FROM record_media WHERE id = %s", (record_id,))
    assert rows[0]["encode"] == 2 and len(encoder.requests_for(record_id)) == 1


async def test_encode_queue_routes(
    suite: Any, client: httpx.AsyncClient, conference_bus: Bus, lk: FakeLiveKit, encoder: Any
) -> None:
    # the encode API is down for this record: its job waits between retries
    record_id = await _ended_egress(suite, client, conference_bus, encoder, 1000, 503)
    assert await _eventually(lambda: asyncio.sleep(0, result=bool(encoder.requests_for(record_id))))
    queue = (await client.get("/test/mp4/queue")).json()
    assert queue["status"] == "OK" and record_id in [i["recordId"] for i in queue["data"]["queueItems"]]
    assert queue["data"]["queueSize"] == len(queue["data"]["queueItems"])
    assert (await client.delete(f"/test/mp4/queue/{record_id}")).json()["status"] == "FAIL"  # no token
    assert (await _job(suite, record_id))["status"] == "queued"
    removed = await client.delete(f"/test/mp4/queue/{record_id}", headers=_auth(suite))
    assert removed.status_code == 200 and removed.json()["status"] == "OK"
    assert (await _job(suite, record_id))["status"] == "removed"
    again = await client.delete(f"/test/mp4/queue/{record_id}", headers=_auth(suite))
    assert again.status_code == 404
    calls = len(encoder.requests_for(record_id))
    await asyncio.sleep(2.0)  # the pending retry finds the row removed and sends nothing
    assert len(encoder.requests_for(record_id)) == calls
    cleared = (await client.delete("/test/mp4/queue", headers=_auth(suite))).json()
    assert cleared["status"] == "OK"
    assert (await client.get("/test/mp4/queue")).json()["data"]["queueSize"] == 0


async def test_startup_reconciles_with_livekit(suite: Any, lk: FakeLiveKit, nc: Any) -> None:
    """What recording does at start-up (recorder.reconcile), against the suite's database and fake LiveKit:
    an egress LiveKit runs is held (counts to the limit), one it no longer runs is dropped and its row closed."""
    from livekit.protocol import egress as egress_pb

    from recording.events.livekit_nodes import LiveKitNodes, NodeCredentials
    from recording.events.recorder import reconcile
    from servicekit.db import Database
    from servicekit.settings import CommonSettings
    from servicekit.web import Runtime

    running_room, ghost_room = _room(), _room()
    lk.egresses["EG_running"] = egress_pb.EgressInfo(
        egress_id="EG_running", room_name=running_room, status=egress_pb.EgressStatus.EGRESS_ACTIVE
    )
    await suite.execute(
        "recording", "INSERT INTO room_egress (room, egressId, state) VALUES (%s, 'EG_ghost', 'active')", (ghost_room,)
    )
    await suite.execute(
        "recording",
        "INSERT INTO record_media (egressId, room, fileName, recordType, startRecord, dtmUpdated)"
        " VALUES ('EG_ghost', %s, 'g.mp4', 'RoomCompositeVideoAudio', NOW(), NOW())",
        (ghost_room,),
    )
    db = await Database.connect(CommonSettings(mysql_database=suite.db_name("recording")), create=False)
    runtime = Runtime(settings=CommonSettings(), db=db)
    # the ghost room is unknown to conference: its node is the default one, which no longer runs EG_ghost
    default = NodeCredentials(lk.url, suite.env["LIVEKIT_API_KEY"], suite.env["LIVEKIT_API_SECRET"])
    runtime.extras["livekit_nodes"] = LiveKitNodes(Bus(nc, "test-recording"), default)
    try:
        held, dropped = await reconcile(runtime)
        assert held >= 1 and dropped >= 1
        assert (await _claim(suite, running_room))["egressId"] == "EG_running"
        assert await _claim(suite, ghost_room) is None
        assert (await _media(suite, ghost_room))[0]["endRecord"] is not None
        lk.down = True  # LiveKit silent: nothing changes
        await suite.execute("recording", "DELETE FROM room_egress WHERE room = %s", (running_room,))
        assert await reconcile(runtime) == (0, 0)
    finally:
        lk.down = False
        await suite.execute("recording", "DELETE FROM room_egress WHERE room IN (%s, %s)", (running_room, ghost_room))
        await runtime.extras["livekit_nodes"].close()
        await db.close()


async def test_fake_egress_api_checks_the_record_grant(suite: Any, lk: FakeLiveKit) -> None:
    """The fake refuses Egress calls whose token lacks video.roomRecord, as LiveKit does."""
    import jwt

    key, secret = suite.env["LIVEKIT_API_KEY"], suite.env["LIVEKIT_API_SECRET"]
    now = int(time.time())
    claims = {"iss": key, "nbf": now, "exp": now + 60, "video": {"roomList": True}}
    async with httpx.AsyncClient(base_url=lk.url) as http:
        for token, status in ((jwt.encode(claims, secret), 403), (jwt.encode(claims, "wrong-secret"), 401)):
            response = await http.post(
                "/twirp/livekit.Egress/ListEgress", json={}, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == status
        claims["video"] = {"roomRecord": True}
        granted = {"Authorization": f"Bearer {jwt.encode(claims, secret)}"}
        ok = await http.post("/twirp/livekit.Egress/ListEgress", json={}, headers=granted)
        assert ok.status_code == 200 and isinstance(ok.json().get("items", []), list)

"""The LiveKit calls realtime forwards from room sockets (conference/events/participants.py): ``get-user-list``
(RPC_CONFERENCE_PARTICIPANTS) and ``track-muted-unmuted`` (RPC_CONFERENCE_TRACK_MUTE), over NATS against the fake
LiveKit, then end to end from the official socket.io-client through the edge and realtime."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from contracts.conference import RPC_CONFERENCE_PARTICIPANTS, RPC_CONFERENCE_TRACK_MUTE, RPC_ROOM_ENSURE
from tests.sockets import NODE, joined, participant, wait_registered
from tests.support import rpc

# Realtime gives up on a request after 3 s (realtime.sockets.rooms.RPC_TIMEOUT); conference must answer before that even
# when LiveKit hangs. The margin covers a loaded test machine; the fake hangs far longer.
REALTIME_WAIT = 4.5
HUNG = 10.0


def room_name() -> str:
    return "Rp" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


@pytest.fixture
async def conference_room(nc: Any) -> str:
    name = room_name()
    reply = await rpc(nc, RPC_ROOM_ENSURE, {"room": name})
    assert reply["ok"], reply
    return name


async def test_participant_list_is_livekits_list_of_the_room(nc: Any, livekit: Any, conference_room: str) -> None:
    room = conference_room
    livekit.add_participant(room, "doc1", name="Dr A", metadata='{"userType":"admin"}',
                            tracks=[{"sid": "TR_mic", "type": "audio"}])  # fmt: skip
    livekit.add_participant(room, "pat1", name="Patient")
    livekit.add_participant(room_name(), "elsewhere")  # another room's participant is not listed
    reply = await rpc(nc, RPC_CONFERENCE_PARTICIPANTS, {"room": room})
    assert reply["ok"], reply
    listed = {p["identity"]: p for p in reply["data"]}
    assert sorted(listed) == ["doc1", "pat1"]
    doc = listed["doc1"]
    # ParticipantInfo as the original's SDK gave it: camelCase, every field, enums and int64 as numbers (ACTIVE = 2)
    assert doc["name"] == "Dr A" and doc["metadata"] == '{"userType":"admin"}'
    assert doc["tracks"][0]["sid"] == "TR_mic" and doc["tracks"][0]["muted"] is False
    assert isinstance(doc["joinedAt"], int) and doc["state"] == 2 and doc["permission"]["canPublish"] is True
    call = livekit.calls_of("ListParticipants")[-1]
    assert call.request == {"room": room} and call.claims["video"]["room"] == room  # a roomAdmin token of the room

    empty = await rpc(nc, RPC_CONFERENCE_PARTICIPANTS, {"room": room_name()})  # no such LiveKit room
    assert empty == {"ok": True, "data": []}


@pytest.mark.parametrize("payload", [{"room": ""}, {"room": "r" * 51}, {}, {"room": 5}])
async def test_participant_list_refuses_bad_rooms(nc: Any, livekit: Any, payload: dict[str, Any]) -> None:
    before = len(livekit.calls_of("ListParticipants"))
    reply = await rpc(nc, RPC_CONFERENCE_PARTICIPANTS, payload)
    assert reply["ok"] is False and reply["code"] == "bad_request"
    assert len(livekit.calls_of("ListParticipants")) == before


async def _refused_in_time(nc: Any, subject: str, payload: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    reply = await rpc(nc, subject, payload, timeout=REALTIME_WAIT)  # a NATS timeout here fails the test
    assert time.monotonic() - started < REALTIME_WAIT
    assert reply["ok"] is False, reply
    assert reply["code"] == "unavailable", reply
    return reply


async def test_livekit_down_or_hung_answers_unavailable_in_time(nc: Any, livekit: Any, conference_room: str) -> None:
    room = conference_room
    livekit.add_participant(room, "p1", tracks=[{"sid": "TR_1", "type": "audio"}])
    mute = {"room": room, "identity": "p1", "trackSid": "TR_1", "muted": True}
    livekit.down = True
    await _refused_in_time(nc, RPC_CONFERENCE_PARTICIPANTS, {"room": room})
    await _refused_in_time(nc, RPC_CONFERENCE_TRACK_MUTE, mute)
    livekit.down, livekit.delay = False, HUNG
    await _refused_in_time(nc, RPC_CONFERENCE_PARTICIPANTS, {"room": room})
    await _refused_in_time(nc, RPC_CONFERENCE_TRACK_MUTE, mute)
    livekit.delay = 0.0
    assert (await rpc(nc, RPC_CONFERENCE_PARTICIPANTS, {"room": room}))["ok"]  # and it recovers


async def test_track_mute_and_unmute(nc: Any, livekit: Any, conference_room: str) -> None:
    room = conference_room
    livekit.add_participant(room, "p1", tracks=[{"sid": "TR_mic", "type": "audio"}, {"sid": "TR_cam"}])
    muted = await rpc(nc, RPC_CONFERENCE_TRACK_MUTE, {"room": room, "identity": "p1", "trackSid": "TR_mic",
                                                      "muted": True})  # fmt: skip
    assert muted == {"ok": True, "data": {"muted": True, "applied": True}}
    tracks = {t.sid: t.muted for t in livekit.participant(room, "p1").tracks}
    assert tracks == {"TR_mic": True, "TR_cam": False}
    call = livekit.calls_of("MutePublishedTrack")[-1]
    assert call.request == {"room": room, "identity": "p1", "trackSid": "TR_mic", "muted": True}
    assert call.claims["video"]["room"] == room

    unmuted = await rpc(nc, RPC_CONFERENCE_TRACK_MUTE, {"room": room, "identity": "p1", "trackSid": "TR_mic",
                                                        "muted": False})  # fmt: skip
    assert unmuted == {"ok": True, "data": {"muted": False, "applied": True}}
    assert livekit.participant(room, "p1").tracks[0].muted is False


async def test_track_mute_refused_by_livekit_is_still_an_answer(nc: Any, livekit: Any, conference_room: str) -> None:
    """The original swallowed LiveKit's refusal and broadcast anyway: the reply says nothing was applied."""
    room = conference_room
    livekit.add_participant(room, "p1", tracks=[{"sid": "TR_mic", "type": "audio"}])
    for identity, track in (("p1", "TR_nope"), ("nobody", "TR_mic")):
        reply = await rpc(nc, RPC_CONFERENCE_TRACK_MUTE, {"room": room, "identity": identity, "trackSid": track,
                                                          "muted": True})  # fmt: skip
        assert reply["ok"] is True and reply["data"]["applied"] is False and reply["data"]["muted"] is True
        assert reply["data"]["error"]["code"] == "not_found"
    assert livekit.participant(room, "p1").tracks[0].muted is False


@pytest.mark.parametrize(
    "payload",
    [
        {"identity": "p1", "trackSid": "TR_1", "muted": True},
        {"room": "r", "identity": "", "trackSid": "TR_1", "muted": True},
        {"room": "r", "identity": "p1", "trackSid": " ", "muted": True},
        {"room": "r", "identity": "p" * 51, "trackSid": "TR_1", "muted": True},
        {"room": "r", "identity": "p1", "trackSid": "TR_1", "muted": "true"},
        {"room": "r", "identity": "p1", "trackSid": "TR_1"},
    ],
)
async def test_track_mute_refuses_bad_requests(nc: Any, livekit: Any, payload: dict[str, Any]) -> None:
    before = len(livekit.calls_of("MutePublishedTrack"))
    reply = await rpc(nc, RPC_CONFERENCE_TRACK_MUTE, payload)
    assert reply["ok"] is False and reply["code"] == "bad_request"
    assert len(livekit.calls_of("MutePublishedTrack")) == before


# ---- end to end: socket.io-client -> edge -> realtime -> NATS -> conference -> (fake) LiveKit ------------------
@pytest.fixture(scope="module")
def needs_realtime(suite: Any) -> None:
    if "realtime" not in suite.services:
        pytest.skip("needs realtime")


@pytest.mark.usefixtures("needs_realtime", "node_client", "consumers_ready")
async def test_socket_user_list_and_mute_through_realtime(suite: Any, livekit: Any, nc: Any) -> None:
    room = room_name()
    assert (await rpc(nc, RPC_ROOM_ENSURE, {"room": room, "service": 999}))["ok"]
    await wait_registered(suite, f"/{room}")
    livekit.add_participant(room, "p1", name="Guest", tracks=[{"sid": "TR_1", "type": "audio"}])
    _, patient_token = participant(suite, room, "user", "0812345678")
    _, agent_token = participant(suite, room, "admin", "Dr. A")
    patient = await joined(NODE, suite, room, patient_token)
    agent = await joined(NODE, suite, room, agent_token)
    try:
        await patient.send("get-user-list")
        user_list = (await patient.until("event", "user-list"))["data"]["userList"]
        assert [(p["identity"], p["name"], p["tracks"][0]["sid"]) for p in user_list] == [("p1", "Guest", "TR_1")]
        assert await agent.quiet("user-list", 0.5) == []  # to the asker only

        mute = {"identity": "p1", "trackSid": "TR_1", "isMuted": True}
        await patient.send("track-muted-unmuted", mute)  # a patient may not mute anyone
        assert await agent.quiet("track-muted-unmuted", 1.0) == []
        assert livekit.participant(room, "p1").tracks[0].muted is False
        await agent.send("track-muted-unmuted", mute)
        for c in (patient, agent):
            assert (await c.until("event", "track-muted-unmuted"))["data"] == mute
        assert livekit.participant(room, "p1").tracks[0].muted is True

        livekit.down = True  # LiveKit down: userList false, a mute is not broadcast
        await patient.send("get-user-list")
        assert (await patient.until("event", "user-list"))["data"] == {"userList": False}
        await agent.send("track-muted-unmuted", {**mute, "isMuted": False})
        assert await patient.quiet("track-muted-unmuted", 1.5) == []
    finally:
        await patient.close()
        await agent.close()

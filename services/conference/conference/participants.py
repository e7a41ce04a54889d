"""LiveKit participant calls realtime forwards from room sockets (contracts.conference, "remaining room socket events").

* ``RPC_CONFERENCE_PARTICIPANTS`` (RoomQuery): ``get-user-list``: ListParticipants(room) on the room's node, as
  the ParticipantInfo JSON list /user/listparticipants answers; ``false`` when LiveKit refuses (the original's
  listParticipants answered false on any error).
* ``RPC_CONFERENCE_TRACK_MUTE`` (TrackMute): ``track-muted-unmuted``: MutePublishedTrack. The original swallowed
  LiveKit's refusals and still broadcast the payload, so a refusal is a successful reply with ``applied`` false.

LiveKit down, failing (5xx) or silent: code "unavailable" after at most :data:`SOCKET_CALL_TIMEOUT`, below realtime's
own request timeout, so realtime hears the failure instead of timing out (it then sends ``userList: false`` /
broadcasts nothing, as the original, whose handler crashed on a refused connection).
"""

from __future__ import annotations

from typing import Any

import msgspec
from livekit import api

from conference.domain import ROOM_NAME_MAX, proto_to_json
from conference.livekit_nodes import LiveKitError, LiveKitNodes, LiveKitUnavailable
from contracts.conference import RPC_CONFERENCE_PARTICIPANTS, RPC_CONFERENCE_TRACK_MUTE, RoomQuery, TrackMute
from servicekit.bus import RpcError
from servicekit.web import Runtime

# Realtime waits 3 s for a reply (realtime.sockets.rooms.RPC_TIMEOUT): the node lookup and LiveKit call must fit inside.
SOCKET_CALL_TIMEOUT = 2.0
_LIMITS = {"room": ROOM_NAME_MAX, "identity": 50, "trackSid": 100}


def _check(**values: str) -> None:
    for name, value in values.items():
        if not value.strip():
            raise msgspec.ValidationError(f"{name} is required")
        if len(value) > _LIMITS[name]:
            raise msgspec.ValidationError(f"{name} must be at most {_LIMITS[name]} characters")


def _unavailable(exc: LiveKitUnavailable) -> RpcError:
    return RpcError("unavailable", str(exc))


async def list_participants(nodes: LiveKitNodes, query: RoomQuery) -> list[dict[str, Any]] | bool:
    _check(room=query.room)
    node = await nodes.node_of_room(query.room)
    try:
        reply = await nodes.call(
            node, "list_participants", api.ListParticipantsRequest(room=query.room), timeout=SOCKET_CALL_TIMEOUT
        )
    except LiveKitError:
        return False
    except LiveKitUnavailable as exc:
        raise _unavailable(exc) from exc
    return [proto_to_json(p) for p in reply.participants]


async def mute_track(nodes: LiveKitNodes, req: TrackMute) -> dict[str, Any]:
    _check(room=req.room, identity=req.identity, trackSid=req.trackSid)
    node = await nodes.node_of_room(req.room)
    request = api.MuteRoomTrackRequest(room=req.room, identity=req.identity, track_sid=req.trackSid, muted=req.muted)
    try:
        reply = await nodes.call(node, "mute_published_track", request, timeout=SOCKET_CALL_TIMEOUT)
    except LiveKitError as exc:
        return {"muted": req.muted, "applied": False, "error": exc.body()}
    except LiveKitUnavailable as exc:
        raise _unavailable(exc) from exc
    return {"muted": reply.track.muted, "applied": True}


async def serve_requests(runtime: Runtime, nodes: LiveKitNodes) -> None:
    assert runtime.bus is not None

    async def on_list(query: RoomQuery) -> list[dict[str, Any]] | bool:
        return await list_participants(nodes, query)

    async def on_mute(req: TrackMute) -> dict[str, Any]:
        return await mute_track(nodes, req)

    await runtime.bus.serve(RPC_CONFERENCE_PARTICIPANTS, RoomQuery, on_list)
    await runtime.bus.serve(RPC_CONFERENCE_TRACK_MUTE, TrackMute, on_mute)

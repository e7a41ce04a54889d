"""Participants over NATS: PARTICIPANT_SAVED after every room_user write (:func:`publish_room_user`), the room_user
and track writes of the /room/* and /user/* routes with their events, and the LiveKit participant calls realtime
forwards from room sockets (contracts.conference, "remaining room socket events").

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

from conference import repository
from conference.clients import LiveKitError, LiveKitNodes, LiveKitUnavailable
from conference.domain import ROOM_NAME_MAX, proto_to_json
from contracts.conference import (
    PARTICIPANT_SAVED,
    RPC_CONFERENCE_PARTICIPANTS,
    RPC_CONFERENCE_TRACK_MUTE,
    TRACK_MUTED,
    RoomQuery,
    RoomUserSaved,
    TrackMute,
    TrackMuted,
)
from servicekit.bus import RpcError, add_event
from servicekit.clock import now_local
from servicekit.db import Connection, Database
from servicekit.web import Runtime

# Realtime waits 3 s for a reply (realtime.sockets.rooms.RPC_TIMEOUT): the node lookup and LiveKit call must fit inside.
SOCKET_CALL_TIMEOUT = 2.0
_LIMITS = {"room": ROOM_NAME_MAX, "identity": 50, "trackSid": 100}


async def publish_room_user(conn: Connection, room: str, identity: str) -> None:
    """Publish (room, identity)'s room_user values after an insert/update, in the changing transaction."""
    row = await repository.participants.room_user_saved(conn, room, identity)
    if row is not None:
        await add_event(conn, PARTICIPANT_SAVED, msgspec.convert(row, RoomUserSaved))


async def rename_user(db: Database, room: str, identity: str, user_name: str) -> bool:
    """POST /room/updateuser: room_user.userName of (room, identity); False when there is no such user."""
    async with db.transaction() as conn:
        if not await repository.participants.room_user_detail(conn, room, identity):
            return False
        if await repository.participants.update_user_name(conn, room, identity, user_name, now_local()):
            await publish_room_user(conn, room, identity)
    return True


async def publish_track_muted(db: Database, room: str, payload: dict[str, Any]) -> None:
    """PUT /user/handle/track's ``track-muted-unmuted`` broadcast on /{room} (realtime emits ``payload``)."""
    async with db.transaction() as conn:
        await add_event(conn, TRACK_MUTED, TrackMuted(room=room, payload=payload))


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

"""Event and request/reply schemas exchanged over NATS (versioned msgspec structs).

Subjects of events: ``<service>.<entity>.<verb>`` on JetStream (one stream per publishing service).
Subjects of requests: ``rpc.<service>.<entity>.<verb>`` (core NATS, never captured by a stream).
Field names follow the original wire names (``linkID``, ``room``...) so mapping to Socket.IO emits is direct.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec


class Event(msgspec.Struct, kw_only=True):
    """Envelope of every event; ``data`` is the typed payload encoded as a plain mapping."""

    id: str
    subject: str
    version: int = 1
    occurred_at: str
    data: dict[str, Any]


def new_event(subject: str, data: msgspec.Struct | dict[str, Any], version: int = 1) -> Event:
    payload = msgspec.to_builtins(data) if isinstance(data, msgspec.Struct) else data
    return Event(
        id=uuid.uuid4().hex,
        subject=subject,
        version=version,
        occurred_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        data=payload,
    )


# ---- link ------------------------------------------------------------------------------------------------
LINK_CREATED = "link.link.created"
LINK_LOCATION_UPDATED = "link.location.updated"


class LinkCreated(msgspec.Struct, kw_only=True):
    linkID: str
    room: str
    linkType: str
    userType: str
    userName: str
    mobile: str
    service: int
    roomCreated: bool


class Position(msgspec.Struct, kw_only=True):
    latitude: float | None = None
    longitude: float | None = None
    accuracy: float | None = None
    altitude: float | None = None
    altitudeAccuracy: float | None = None
    heading: float | None = None
    speed: float | None = None


class LinkLocationUpdated(msgspec.Struct, kw_only=True):
    linkID: str
    room: str
    userType: str
    position: Position
    timestamp: int  # epoch milliseconds, as the original's emit carried


# ---- conference ------------------------------------------------------------------------------------------
ROOM_CREATED = "conference.room.created"
ROOM_CLOSED = "conference.room.closed"
ROOM_UPDATED = "conference.room.updated"  # RoomChanged: type/status changed (a location room became a conference)


class RoomChanged(msgspec.Struct, kw_only=True):
    room: str
    roomType: str
    status: str


# ---- request/reply ---------------------------------------------------------------------------------------
RPC_ROOM_ENSURE = "rpc.conference.room.ensure"
RPC_ROOM_DETAIL = "rpc.conference.room.detail"
RPC_PARTICIPANT_TOKEN = "rpc.conference.participant.token"


class RpcReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    ok: bool
    data: Any = None
    error: str = ""
    code: str = ""


# Replies (``RpcReply.data``):
# * RPC_ROOM_ENSURE  -> {"created": bool, "room": <room detail>}; creates the room (DB + LiveKit) when missing
# * RPC_ROOM_DETAIL  -> <room detail> or code "not_found"
# * RPC_PARTICIPANT_TOKEN -> {"identity","userName","token","conference","color"} (+ "listParticipants": [...]
#   when withParticipants, + "room": <room detail> when withRoom); code "not_found" when the room does not exist
# <room detail> is the original's getRoomDetail object: id, status, room, roomType, recordId, autoRecord,
# recordType, encodingOptionsPreset, chatEnabled, messageUnread, userAgent, dtmCreated, dtmStartRecord,
# dtmStopRecord, webSocketURL (dates as the original's UTC ISO strings) and recordDuration (ms) when recording.
class EnsureRoom(msgspec.Struct, kw_only=True):
    room: str
    service: int = 999
    linkType: str = "video"
    autoRecord: int = 0
    recordType: str = ""
    encodingOptionsPreset: str = ""
    chatEnabled: int = 1
    userAgent: str = ""


class RoomQuery(msgspec.Struct, kw_only=True):
    room: str


class ParticipantTokenRequest(msgspec.Struct, kw_only=True):
    """What a link needs to join its room: the original's ``generateUser`` inputs."""

    room: str
    identity: str | None = None
    userName: str | None = None
    userType: str = "user"
    linkType: str | None = None
    mobile: str | None = None
    linkID: str | None = None
    roomJoin: bool = True
    isAddUser: bool = False
    userAgent: str = ""
    withParticipants: bool = False
    # Added by conference (optional, defaults keep the fields above unchanged in meaning):
    color: str | None = None  # explicit colour; else a random one of color_scheme
    conference: int | None = None  # room_user.conference on insert and echoed in the reply (default 1)
    # /link/getdetail's lookups the link service cannot make (room_user is conference's): when true and an
    # identity is given, the user's stored colour is reused and a missing userName becomes the stored name,
    # else "User-<0..99>".
    useKnownUser: bool = False
    # /link/getdetail needs the room detail too: when true the reply carries it as "room" (one request, one
    # room lookup instead of two).
    withRoom: bool = False


RPC_LINK_VERIFY_PASSWORD = "rpc.link.link.verify_password"


class LinkCredentials(msgspec.Struct, kw_only=True):
    """Asks link to check a link's password; the reply carries the link's public fields."""

    linkID: str
    password: str = ""


# ---- realtime asks link ----------------------------------------------------------------------------------
# Reply data: the `history` payload pushed on /data/{linkID} (realtime.md §11): a list (max 100, oldest first)
# of {linkID, mobile, status, linkType, dtmCreated, userType, latitude, longitude[, currentLocation,
# pickLocation]} usage-status rows of the link, or false when there are none. Served by link.
RPC_LINK_STATUS_HISTORY = "rpc.link.link.status_history"


class LinkHistoryQuery(msgspec.Struct, kw_only=True):
    linkID: str
    linkType: str = ""  # "location" keeps every userType's rows; otherwise only userType "user"

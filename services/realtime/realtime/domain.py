"""Namespace rules and emit payloads of the realtime service, free of I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

# Namespaces every instance serves without registration. ``/`` is socket.io's root namespace (always present
# in the original); ``/queue`` existed there only after the first room close, ``/notification`` comes from
# the conversion plan.
ROOT = "/"
STATIC_NAMESPACES: tuple[str, ...] = (ROOT, "/newqueue", "/queue", "/mobile", "/notification")
DATA_PREFIX = "/data/"
INVALID_NAMESPACE = "Invalid namespace"
AUTH_ERROR = "Authentication error"
# Names the original refused to register (a room or link id that was never set).
_JUNK_NAMES = {"", "undefined", "null"}
MAX_NAME_LENGTH = 200

NamespaceKind = Literal["static", "room", "data"]


@dataclass(frozen=True)
class NamespaceInfo:
    name: str  # the socket.io namespace, with its leading "/"
    kind: NamespaceKind
    key: str  # room name for "room", link id for "data", namespace without "/" for "static"


def _plain(value: str) -> bool:
    return value.strip() not in _JUNK_NAMES and len(value) <= MAX_NAME_LENGTH and "/" not in value


def room_namespace(room: str) -> str | None:
    """``/{room}``, or None for a name the original would not register."""
    return f"/{room}" if _plain(room) else None


def data_namespace(link_id: str) -> str | None:
    """``/data/{linkID}``, or None for an unusable link id."""
    return f"{DATA_PREFIX}{link_id}" if _plain(link_id) else None


def classify(namespace: str) -> NamespaceInfo | None:
    """What a namespace asked for by a client would be; None when it can never be valid."""
    if namespace in STATIC_NAMESPACES:
        return NamespaceInfo(namespace, "static", namespace.lstrip("/"))
    if not namespace.startswith("/"):
        return None
    if namespace.startswith(DATA_PREFIX):
        link_id = namespace[len(DATA_PREFIX) :]
        return NamespaceInfo(namespace, "data", link_id) if data_namespace(link_id) else None
    room = namespace[1:]
    return NamespaceInfo(namespace, "room", room) if room_namespace(room) else None


def room_label(info: NamespaceInfo) -> str:
    """The original's "room" of a namespace: the namespace name without its leading slash."""
    return info.name[1:] if info.name != ROOT else ""


def namespace_list(registered: set[str]) -> list[str]:
    """GET /namespace: static namespaces first (root first, like socket.io), then the registered ones."""
    return [*STATIC_NAMESPACES, *sorted(registered - set(STATIC_NAMESPACES))]


_POSITION_FIELDS = ("latitude", "longitude", "accuracy", "altitude", "altitudeAccuracy", "heading", "speed")


def position_payload(data: dict[str, Any]) -> dict[str, Any]:
    """``position`` on ``/data/{linkID}`` after a patient location update (original field order)."""
    raw = data.get("position") or {}
    seven = {name: raw.get(name) for name in _POSITION_FIELDS}
    return {
        "linkID": data.get("linkID"),
        "service": 2,
        **seven,
        "currentLocation": dict(seven),
        "pickLocation": None,
        "timestamp": data.get("timestamp"),
    }


UPDATE_LATLNG_CASE_DATA = {"action": "updateLatLng", "message": "from sv"}


def room_update_case_data(room_type: str) -> dict[str, str]:
    """``case-data`` on ``/{room}`` when a link changed the room's type (a location room became a conference)."""
    return {"action": "roomUpdate", "roomType": room_type}


def room_data_update(room: str, room_type: Any) -> dict[str, Any]:
    """``room-data`` on ``/{room}`` after PUT /room/updatetype (the original's emit)."""
    return {"status": "roomUpdate", "room": room, "roomType": room_type}


def egress_room_record(data: dict[str, Any]) -> dict[str, Any]:
    """``room-record`` on ``/{roomName}`` after LiveKit's ``egress_started`` webhook: the webhook's egressInfo
    object as is, plus ``dtmStartRecord`` (local ``YYYY-MM-DD HH:mm:ss``) and ``dtmStopRecord`` null."""
    info = data.get("egressInfo")
    payload = dict(info) if isinstance(info, dict) else {}
    payload["dtmStartRecord"] = data.get("dtmStartRecord")
    payload["dtmStopRecord"] = None
    return payload


def connection_success(room: str, detail: dict[str, Any] | None) -> dict[str, Any]:
    """``connection-success`` to a newly connected room socket: room row fields, or ``{room}`` without a row."""
    if not detail:
        return {"room": room}
    payload: dict[str, Any] = {
        "status": detail.get("status"),
        "room": room,
        "recordId": detail.get("recordId") or "",
        "dtmStartRecord": detail.get("dtmStartRecord"),
        "dtmStopRecord": detail.get("dtmStopRecord"),
    }
    if detail.get("recordDuration") is not None:
        payload["recordDuration"] = detail["recordDuration"]
    return payload


def token_room_matches(claims: dict[str, Any], room: str) -> bool:
    """A token bound to a room (LiveKit ``video.room``) opens only that room's namespace; unbound tokens
    (agent console, CRM data tokens) are accepted like in the original."""
    video = claims.get("video")
    bound = video.get("room") if isinstance(video, dict) else None
    return not bound or bound == room


# ---- handshake claims --------------------------------------------------------------------------------------
def token_metadata(claims: dict[str, Any]) -> dict[str, Any] | None:
    """The token's ``metadata`` claim (a JSON string) as a mapping; None when absent or not a JSON object."""
    raw = claims.get("metadata")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def is_agent(claims: dict[str, Any]) -> bool:
    """Agent console / CRM tokens are not bound to a room; admin links carry userType ``admin`` in metadata.
    Patient and guest tokens (bound to a room, userType ``user``/``viewer``) are not agents."""
    metadata = token_metadata(claims) or {}
    if metadata.get("userType") == "admin":
        return True
    video = claims.get("video")
    return not (isinstance(video, dict) and video.get("room"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class SocketUser:
    """Who a room socket is, fixed at handshake (the original's ``userDetail``, from the token, not the query)."""

    identity: str
    userName: str | None
    userType: str | None
    color: str | None
    has_metadata: bool
    admin: bool


def socket_user(claims: dict[str, Any], query_user_name: str | None) -> SocketUser | None:
    identity = claims.get("sub")
    if not isinstance(identity, str) or not identity:
        return None
    metadata = token_metadata(claims)
    if metadata is None:
        return SocketUser(identity, query_user_name, "user", None, False, is_agent(claims))
    return SocketUser(
        identity,
        _text(metadata.get("userName")),
        _text(metadata.get("userType")),
        _text(metadata.get("color")),
        True,
        is_agent(claims),
    )


USER_CONNECTION_FIELDS = ("camera", "microphone", "identity", "userName", "userType", "conference")


def user_connection(row: dict[str, Any] | None) -> dict[str, Any]:
    """``user-connection``: the room_user row's fields, ``{}`` when there is no row (undefined fields in JS)."""
    if not row:
        return {}
    return {name: row.get(name) for name in USER_CONNECTION_FIELDS if row.get(name) is not None}


def user_disconnect(row: dict[str, Any] | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"status": "disconnect"}
    if row:
        for name in ("identity", "userName"):
            if row.get(name) is not None:
                payload[name] = row[name]
    return payload


# ---- chat --------------------------------------------------------------------------------------------------
CHAT_FIELDS = (
    "identity", "chat_identity", "userName", "userType", "text", "files", "color",
    "replyToMessageId", "replyToUserName", "replyToText",
)  # fmt: skip


def chat_broadcast(data: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """``chat-message`` as the original broadcast it: the client's object + ``dtmcreated`` (+ ``status: close``
    in a closed room) + ``messageId``. Sent once (the original sent it twice in a closed room)."""
    payload = dict(data)
    payload["dtmcreated"] = stored.get("dtmcreated")
    if stored.get("roomStatus") == "close":
        payload["status"] = "close"
    payload["messageId"] = stored.get("messageId")
    return payload


def message_unread(room: str) -> dict[str, Any]:
    return {"action": "messageUnread", "room": room, "messageUnread": 1}


# ---- waiting room ------------------------------------------------------------------------------------------
def waiting_entry(room: str, user_name: Any, sid: str) -> dict[str, Any]:
    return {"room": room, "userName": user_name, "socketID": sid, "authJoin": "waiting"}


FORCE_LEAVE = {"userType": "admin", "command": "leaveConference"}
FORCE_STOP_SHARESCREEN = {"userType": "admin", "command": "stopShareScreen"}


def screen_owner(identity: str) -> str:
    """``force-stop-sharescreen`` may name the screen track's identity (``<identity>_screen``)."""
    return identity[: -len("_screen")] if identity.endswith("_screen") else identity


# ---- /mobile and carTracking -------------------------------------------------------------------------------
MOBILE_FAILED = {"status": "failed"}
MOBILE_INVALID_TASK = {"message": "invalid task id"}
_POSITION_KEYS = ("latitude", "longitude", "accuracy", "speed", "heading", "altitude", "altitudeAccuracy")
MAX_TASK_UID = 64


def task_uid(query: dict[str, list[str]]) -> str | None:
    """The task uid of a /mobile handshake: ``query.id``, else ``query.task``."""
    for key in ("id", "task"):
        value = (query.get(key) or [""])[0].strip()
        if value:
            return value if len(value) <= MAX_TASK_UID and value.isalnum() else None
    return None


def task_room(uid: str) -> str:
    return f"task:{uid}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return float(value)
        except ValueError:
            return None
    return None


def mobile_location(data: Any) -> dict[str, Any] | None:
    """A /mobile ``location`` (object or JSON string) as TaskLocation fields; None when unparseable."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    fields: dict[str, Any] = {key: _number(data.get(key)) for key in _POSITION_KEYS}
    stamp = _number(data.get("timestamp"))
    if stamp is not None:
        fields["timestamp"] = int(stamp)
    return fields


def car_tracking(room: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """A room ``carTracking`` payload as CarTracking fields; None without a car (userName)."""
    user_name = data.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        return None
    status = data.get("status")
    fields: dict[str, Any] = {
        "room": room,
        "userName": user_name,
        "status": status if isinstance(status, str) else None,
        **{key: _number(data.get(key)) for key in _POSITION_KEYS},
    }
    stamp = _number(data.get("timestamp"))
    if stamp is not None:
        fields["timestamp"] = int(stamp)
    return fields


def socket_entry(namespace: str, user: SocketUser) -> dict[str, Any]:
    """What survivors need to clean up a room socket of an instance that died."""
    return {"namespace": namespace, "identity": user.identity, "userName": user.userName}


# ---- events forwarded to their owners ----------------------------------------------------------------------
def user_position(room: str, data: Any) -> dict[str, Any] | None:
    """``user-position`` as LinkUserPosition fields; None without a usable linkID."""
    if not isinstance(data, dict):
        return None
    link_id = data.get("linkID")
    if not isinstance(link_id, str) or not _plain(link_id):
        return None
    return {"room": room, "linkID": link_id, **{k: _number(data.get(k)) for k in ("latitude", "longitude", "accuracy")}}


def track_mute(room: str, data: Any) -> dict[str, Any] | None:
    """``track-muted-unmuted`` as TrackMute fields; None when identity/trackSid/isMuted are missing."""
    if not isinstance(data, dict):
        return None
    identity, track, muted = data.get("identity"), data.get("trackSid"), data.get("isMuted")
    if not (isinstance(identity, str) and identity and isinstance(track, str) and track and isinstance(muted, bool)):
        return None
    return {"room": room, "identity": identity, "trackSid": track, "muted": muted}


QUEUE_STATUSES = ("init", "changePage", "searchAll", "searchAdvanced")
_QUEUE_TEXT = ("value", "mobile", "agentName", "roomStatus", "dateTimeStart", "dateTimeEnd")


def queue_page(data: Any) -> dict[str, Any] | None:
    """A socket ``queue`` request as QueuePage fields; None for the statuses the original did not answer."""
    if not isinstance(data, dict) or data.get("status") not in QUEUE_STATUSES:
        return None
    fields: dict[str, Any] = {"status": data["status"]}
    for key in ("service", "page", "maxRow"):
        value = data.get(key)
        if isinstance(value, int | str) and not isinstance(value, bool):
            fields[key] = value
    for key in _QUEUE_TEXT:
        if isinstance(data.get(key), str):
            fields[key] = data[key]
    return fields

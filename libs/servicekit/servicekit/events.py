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
    # Added for link's room read model (optional; consumers that ignore them are unaffected):
    # ``detail`` = the room's getRoomDetail object after the change (RPC_ROOM_DETAIL's reply without
    # recordDuration, which readers compute from dtmStartRecord); ``nodeLivekitId`` = the room's LiveKit node
    # row (None: env default node); ``usesDefaultKey`` = tokens for the room are signed with the shared
    # LIVEKIT_API_KEY/SECRET (False when the node has its own key).
    detail: dict[str, Any] | None = None
    nodeLivekitId: int | None = None
    usesDefaultKey: bool | None = None


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


# ---- conference: chat, cases, notifications --------------------------------------------------------------
CASE_CREATED = "conference.case.created"  # CaseChanged; realtime: /newqueue case-data {"action":"caseCreated"}
CASE_UPDATED = "conference.case.updated"  # CaseChanged; realtime: /newqueue case-data {"action":"caseUpdated"}
NOTIFICATION_CREATED = "conference.notification.created"  # NotificationChanged (feeds the SSE /notification/events)
NOTIFICATION_READ = "conference.notification.read"  # NotificationChanged (read flag set or cleared)


class CaseChanged(msgspec.Struct, kw_only=True):
    caseId: int
    service: int
    room: str | None = None  # the case's room name, when it has one
    status: str | None = None


class NotificationChanged(msgspec.Struct, kw_only=True):
    """A row of ``notification`` as the /notification routes answer it (dates as UTC ISO strings)."""

    notificationId: int
    userName: str | None = None
    mobile: str | None = None
    message: str | None = None
    caseId: int | None = None
    read: int = 0
    notificationType: str | None = None
    relatedUrl: str | None = None
    dtmRead: str | None = None
    dtmCreated: str | None = None


# Realtime asks conference to store a chat message sent over Socket.IO (`chat-message`, realtime.md §4.4).
# Reply data: {"messageId": int, "dtmcreated": "YYYY-MM-DD HH:mm:ss" (local), "roomStatus": str | None,
# "messageUnread": bool (true when this message set room_conference.messageUnread from 0 to 1: realtime then
# emits /newqueue case-data {"action":"messageUnread","room":..,"messageUnread":1})}.
RPC_CHAT_STORE = "rpc.conference.chat.store"


class ChatMessageStore(msgspec.Struct, kw_only=True):
    room: str
    identity: str | None = None
    chat_identity: str | None = None
    userName: str | None = None
    userType: str | None = None
    text: str | None = None
    color: str | None = None
    files: Any = None  # stored as JSON text; absent/None -> ""
    replyToMessageId: int | None = None
    replyToUserName: str | None = None
    replyToText: str | None = None


# ---- link: SMS -------------------------------------------------------------------------------------------
LINK_SMS_SENT = "link.sms.sent"  # SmsOutcome: the gateway accepted the message
LINK_SMS_FAILED = "link.sms.failed"  # SmsOutcome: given up (4xx, or retries exhausted)


class SmsOutcome(msgspec.Struct, kw_only=True):
    """The final state of one outgoing SMS (``messageId`` is its idempotency key). Never carries the API key."""

    messageId: str
    status: str  # "sent" | "failed"
    mobile: str
    linkID: str = ""
    room: str = ""
    kind: str = "link"  # "link" | "custom" | "tracking"
    attempts: int = 0
    error: str = ""


# ---- read models of /link/getdetail (issue 5) ------------------------------------------------------------
# Every change of a room_conference row publishes a RoomChanged WITH ``detail`` (ROOM_CREATED, ROOM_UPDATED,
# ROOM_CLOSED, or ROOM_DETAIL_CHANGED when no more specific subject fits: record status, messageUnread...).
ROOM_DETAIL_CHANGED = "conference.room.detail_changed"
# Every insert/update of a room_user row publishes RoomUserSaved (the oldest row of (room, identity)).
PARTICIPANT_SAVED = "conference.participant.saved"


class RoomUserSaved(msgspec.Struct, kw_only=True):
    room: str
    identity: str
    userName: str | None = None
    userType: str | None = None
    color: str | None = None
    userAgent: str | None = None


# Link hands conference the room_user write of /link/getdetail (the original's
# ``UPDATE room_user SET userAgent = ? WHERE room = ? AND identity = ?``).
LINK_PARTICIPANT_SEEN = "link.participant.seen"


class ParticipantSeen(msgspec.Struct, kw_only=True):
    room: str
    identity: str
    userAgent: str
    linkID: str = ""


# LiveKit's live participant list, from LiveKit webhooks (participant_joined / participant_left) received by
# recording. ``participant`` is LiveKit's ParticipantInfo as JSON (camelCase, every field, as
# ListParticipants returned it to the original); ``timestamp`` = the webhook's createdAt in milliseconds
# (readers ignore an event older than what they hold for that identity).
RECORDING_PARTICIPANT_JOINED = "recording.participant.joined"
RECORDING_PARTICIPANT_LEFT = "recording.participant.left"


class ParticipantPresence(msgspec.Struct, kw_only=True):
    room: str
    identity: str
    participant: dict[str, Any] = {}
    timestamp: int = 0


# Reply data: the colour palette (color_scheme.color_hex values, in id order) that participant colours are
# picked from. Served by conference.
RPC_CONFERENCE_PALETTE = "rpc.conference.palette"


class PaletteQuery(msgspec.Struct, kw_only=True):
    pass


# ---- conference asks link --------------------------------------------------------------------------------
# Reply data: true when `services` has a row with that id (POST /case/create checks the tenant exists).
RPC_LINK_SERVICE_EXISTS = "rpc.link.service.exists"


class ServiceQuery(msgspec.Struct, kw_only=True):
    service: int


# ---- link: positions picked on the map (POST /link/multilatlng/send) --------------------------------------
# Realtime emits ``position`` on /data/{linkID} with ``emit`` as is, and sends the destination to the room's car
# tasks on /mobile.
LINK_MULTI_LATLNG = "link.location.multi"


class LinkMultiLatLng(msgspec.Struct, kw_only=True):
    linkID: str
    room: str
    emit: dict[str, Any]  # the original's emitted object (linkID, service 2, userType, room, 7 measures, ...)


# ---- realtime asks conference: presence of Socket.IO clients in room_user (realtime.md §6) ----------------
# Every room_user write below publishes PARTICIPANT_SAVED (conference.events.publish_room_user). Served by
# conference (conference/presence.py); realtime keeps socket ids, timers and the waiting room in Redis.
#
# RPC_PRESENCE_CONNECT (PresenceConnect): the handshake of a room socket. With ``hasMetadata`` (the token
#   carried metadata) the (room, identity) row is inserted (status "connection") or its userName/color/socketId
#   updated; always: status = "connection" (camera/microphone reset to 1). Reply data: the row as
#   `user-connection` carries it {camera, microphone, identity, userName, userType, conference} or null.
# RPC_PRESENCE_DISCONNECT (PresenceDisconnect): status = "disconnect", camera = microphone = 1 for (room,
#   identity), ONLY while room_user.socketId is still ``socketId`` (a newer socket of the same identity wins).
#   Reply data: {"updated": bool}.
# RPC_PRESENCE_UPDATE (PresenceUpdate): camera / microphone / conference / userName of (room, identity) (only
#   the fields given). Reply data: {"updated": int}.
# RPC_PRESENCE_ADMIT (PresenceAdmit): a waiting-room guest admitted by an admin: a new identity + participant
#   token for ``room`` (userType "user"), and room_user of (room, socketId) gets identity, userName, status
#   "join". Reply data: {"identity", "userName", "token"}; code "not_found" when the room does not exist.
# RPC_CHAT_HISTORY (ChatHistoryQuery): chat_message rows of ``room`` (the `chat-history` payload), or false.
RPC_PRESENCE_CONNECT = "rpc.conference.presence.connect"
RPC_PRESENCE_DISCONNECT = "rpc.conference.presence.disconnect"
RPC_PRESENCE_UPDATE = "rpc.conference.presence.update"
RPC_PRESENCE_ADMIT = "rpc.conference.presence.admit"
RPC_CHAT_HISTORY = "rpc.conference.chat.history"


class PresenceConnect(msgspec.Struct, kw_only=True):
    room: str
    identity: str
    socketId: str
    hasMetadata: bool = False
    userName: str | None = None
    userType: str | None = None
    color: str | None = None


class PresenceDisconnect(msgspec.Struct, kw_only=True):
    room: str
    identity: str
    socketId: str


class PresenceUpdate(msgspec.Struct, kw_only=True):
    room: str
    identity: str
    camera: int | None = None
    microphone: int | None = None
    conference: int | None = None
    userName: str | None = None


class PresenceAdmit(msgspec.Struct, kw_only=True):
    room: str
    socketId: str
    userName: str | None = None


class ChatHistoryQuery(msgspec.Struct, kw_only=True):
    room: str


# ---- recording: LiveKit webhooks (issue 7) ---------------------------------------------------------------
# Recording verifies LiveKit's webhooks and applies each event id once. Egress events carry what the original's
# webhook controller wrote to room_conference and emitted as ``room-record`` on /{room}: conference sets
# recordId/dtmStartRecord/recordStatus 1 on started (recordId "" / dtmStopRecord / recordStatus 2 on ended),
# realtime emits ``room-record`` with ``egressInfo`` (+ dtmStartRecord / dtmStopRecord) on started.
RECORDING_EGRESS_STARTED = "recording.egress.started"  # EgressChanged
RECORDING_EGRESS_UPDATED = "recording.egress.updated"  # EgressChanged (status change while running)
RECORDING_EGRESS_ENDED = "recording.egress.ended"  # EgressChanged
RECORDING_ROOM_STARTED = "recording.room.started"  # LiveKitRoomEvent
RECORDING_ROOM_FINISHED = "recording.room.finished"  # LiveKitRoomEvent (the original stopped the room's egress)
# Every accepted webhook, raw, for telemetry's data_log (the original stored each one before handling it).
RECORDING_WEBHOOK_RECEIVED = "recording.webhook.received"  # WebhookReceived
# An uploaded video was stored (POST /upload/video): the encoder picks it up (the original's ENCODE_API call).
RECORDING_MEDIA_UPLOADED = "recording.media.uploaded"  # MediaUploaded


class EgressChanged(msgspec.Struct, kw_only=True):
    room: str  # egressInfo.roomComposite.roomName / trackComposite.roomName / roomName
    recordId: str  # the egress id ("" is never sent)
    status: str  # LiveKit's EgressStatus name, e.g. "EGRESS_ACTIVE"
    dtmStartRecord: str | None = None  # local "YYYY-MM-DD HH:mm:ss" (started)
    dtmStopRecord: str | None = None  # local "YYYY-MM-DD HH:mm:ss" (ended)
    egressInfo: dict[str, Any] = {}  # LiveKit's EgressInfo as JSON (camelCase)
    timestamp: int = 0  # the webhook's createdAt in milliseconds


class LiveKitRoomEvent(msgspec.Struct, kw_only=True):
    room: str
    roomInfo: dict[str, Any] = {}  # LiveKit's Room as JSON (camelCase)
    timestamp: int = 0


class WebhookReceived(msgspec.Struct, kw_only=True):
    eventId: str
    event: str
    room: str = ""
    data: str  # the webhook body as received (JSON text): data_log.data
    createdAt: int = 0  # seconds, as LiveKit sent it


class MediaUploaded(msgspec.Struct, kw_only=True):
    recordId: int  # record_media.id
    fileName: str
    filePath: str
    recordType: str = ""


# ---- conference: room and track changes for realtime (issue 4, /room/* and /user/* routes) -----------------
# RoomChanged WITH detail (so link's read model applies it like the other conference.room.* subjects):
# PUT /room/updatetype changed the room's type. Realtime: emit ``room-data``
# {"status": "roomUpdate", "room": <room>, "roomType": <roomType>} on /{room} (the original's emit).
ROOM_TYPE_CHANGED = "conference.room.type_changed"
# PUT /user/handle/track muted or unmuted a track. Realtime: emit ``track-muted-unmuted`` with ``payload`` (the
# request body as the original forwarded it) on /{room}.
TRACK_MUTED = "conference.track.muted"


class TrackMuted(msgspec.Struct, kw_only=True):
    room: str
    payload: dict[str, Any]


# ---- conference asks link: the room of a link (POST /user/joingenerate with linkID) -----------------------
# Reply data: {"linkID", "room"}; code "not_found" when no link has that id.
RPC_LINK_ROOM = "rpc.link.link.room"


class LinkRoomQuery(msgspec.Struct, kw_only=True):
    linkID: str

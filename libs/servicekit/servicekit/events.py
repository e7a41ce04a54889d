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
    # Added for telemetry's statistics read model (optional; None = the publisher does not send it yet):
    # the link_connect values /stats/summary lists. Dates as local "YYYY-MM-DD HH:mm:ss".
    linkRowId: int | None = None
    crmSender: str | None = None
    recordId: int | None = None
    share: int | None = None
    oneTimeLink: int | None = None
    dtmCreated: str | None = None
    dtmExpired: str | None = None
    userAgent: str | None = None


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
    # Added by conference (issue 4): room_conference.service (realtime's /queue closeRoom emit on ROOM_CLOSED
    # asks link for the room's SMS-link row) and recordStatus (0 none, 1 recording, 2 stopped).
    service: int | None = None
    recordStatus: int | None = None
    # On ROOM_CLOSED only: what closed it: "close" (PUT /room/close), "delete" (POST /room/deleteroom),
    # "expired" (the expiry sweep, GET /room/checkexpired), "status" (PUT /room/updatestatus).
    closedBy: str | None = None


# ---- request/reply ---------------------------------------------------------------------------------------
RPC_ROOM_ENSURE = "rpc.conference.room.ensure"
RPC_ROOM_DETAIL = "rpc.conference.room.detail"
RPC_PARTICIPANT_TOKEN = "rpc.conference.participant.token"
# Realtime asks, when a client connects to a /{room} namespace its registry does not hold yet (the event that
# registers it may still be on its way): does the room take socket connections? Reply {"room", "live": bool}.
RPC_ROOM_SOCKET_LIVE = "rpc.conference.room.socket_live"


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
    organization: str | None = None  # added for telemetry's /stats/summary (case_data.organization)
    # Added by conference (issue 4) for link's usage_status_log row of the case action (see the issue-4
    # section at the end of this file): who acted and the original's log text.
    userName: str | None = None
    linkID: str | None = None  # always None: the original's case log rows had linkID NULL
    statusLog: str = ""
    # Added by conference (IDEMS cases) for link's history: the case row's values after the change, and the row's
    # own id (case_data.id: the original's history caseId). None when unknown (events published before).
    hn: str | None = None
    patientMobile: str | None = None
    caseRowId: int | None = None


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
# Reply data: {"linkID", "room"}; code "not_found" when no link has that id. Realtime asks it too, when a client
# connects to a /data/{linkID} its namespace registry does not hold yet.
RPC_LINK_ROOM = "rpc.link.link.room"


class LinkRoomQuery(msgspec.Struct, kw_only=True):
    linkID: str


# ---- telemetry: ambulance tasks and positions (issues 6 and 8: /car/task, /mobile, room ``carTracking``) ----
# Realtime asks telemetry over request/reply; telemetry owns car_track and publishes what realtime emits.
# RPC_TASK_DETAIL (TaskQuery): the /mobile ``connection`` payload of task ``uid`` (reply data = that payload:
#   {task, status, dtmCreated, dtmUpdated, room, current:{latitude,longitude}, destination:{latitude,longitude}});
#   code "not_found" for an unknown uid (realtime then emits status failed / "invalid task id" and disconnects).
# RPC_TASK_LOCATION (TaskLocation): a /mobile ``location`` from the crew app: store it on the task; reply data
#   {"stored": true}; code "bad_request" for out-of-range or far-future positions, "not_found" for unknown uid.
# RPC_CAR_TRACKING (CarTracking): a room namespace ``carTracking`` payload: upsert the car position of
#   (room, userName); reply data {"stored": true} ({"stored": false} when the payload has no position) or code
#   "bad_request"; with status "getDestination" the reply also carries ``destination`` = the room's newest user
#   link with a mobile {userName, mobile, latitude, longitude, patientLatitude, patientLongitude} (absent: none).
RPC_TASK_DETAIL = "rpc.telemetry.task.detail"
RPC_TASK_LOCATION = "rpc.telemetry.task.location"
RPC_CAR_TRACKING = "rpc.telemetry.car.tracking"
# Events (JetStream, through telemetry's outbox):
# TASK_STATUS_CHANGED (TaskStatusChanged): PUT /car/task. Realtime: to /mobile sockets of task ``uid`` (socket.io
#   room ``task:<uid>``) emit ``status`` {status} then ``message`` {"message": "task status update"}; when
#   ``destination`` is set (status "arrive": the service location) also ``destination`` {latitude, longitude} then
#   ``message`` {"message": "destination update"}.
# TASK_DESTINATION_CHANGED (TaskDestination): the patient's position changed (telemetry consumed
#   link.location.updated): to /mobile sockets of ``uid`` emit ``destination`` ``position`` then ``message``
#   {"message": "destination update"}.
# CAR_POSITION_UPDATED (CarPositionUpdated): a stored car position (from /mobile ``location`` or HTTP). Realtime:
#   emit ``car-position`` with ``row`` (the car_track row, original JSON types) on /{room}.
TASK_STATUS_CHANGED = "telemetry.task.status_changed"
TASK_DESTINATION_CHANGED = "telemetry.task.destination_changed"
CAR_POSITION_UPDATED = "telemetry.car.position_updated"


class TaskQuery(msgspec.Struct, kw_only=True):
    uid: str


class TaskLocation(msgspec.Struct, kw_only=True):
    uid: str
    latitude: float | None = None
    longitude: float | None = None
    accuracy: float | None = None
    speed: float | None = None
    heading: float | None = None
    altitude: float | None = None
    altitudeAccuracy: float | None = None
    timestamp: int | None = None  # the device's clock in ms, when it sends one (far future -> bad_request)


class CarTracking(msgspec.Struct, kw_only=True):
    room: str
    userName: str
    status: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy: float | None = None
    speed: float | None = None
    heading: float | None = None
    altitude: float | None = None
    altitudeAccuracy: float | None = None
    timestamp: int | None = None  # added by telemetry: the device's clock in ms, when known (far future -> bad_request)


class TaskStatusChanged(msgspec.Struct, kw_only=True):
    uid: str
    room: str | None = None
    status: str
    destination: dict[str, Any] | None = None  # {latitude, longitude} for "arrive"


class TaskDestination(msgspec.Struct, kw_only=True):
    uid: str
    room: str
    position: dict[str, Any]  # {latitude, longitude, accuracy, altitude, altitudeAccuracy, heading, speed}


class CarPositionUpdated(msgspec.Struct, kw_only=True):
    room: str
    uid: str | None = None
    row: dict[str, Any]  # the car_track row as /car/list shows it


# ---- link: expiry, one-time use, IDEMS links (issue 5) ----------------------------------------------------
# LINK_EXPIRED (LinkExpired): the 30-minute expiry sweep disabled a link whose dtmExpired passed (once per link).
# LINK_USED (LinkUsed): a one-time link was opened (oneTimeLink 1 -> 2, once per link).
LINK_EXPIRED = "link.link.expired"
LINK_USED = "link.link.used"


class LinkExpired(msgspec.Struct, kw_only=True):
    linkID: str
    room: str
    linkType: str = ""
    dtmExpired: str = ""  # local "YYYY-MM-DD HH:mm:ss"


class LinkUsed(msgspec.Struct, kw_only=True):
    linkID: str
    room: str
    identity: str = ""


# Link asks conference to open the case of an IDEMS link (POST /link/idems; the original's caseService.create
# with caseId = last caseId + 1). Conference allocates the id, writes the case row linked to room id ``roomId``
# and publishes CASE_CREATED. Reply data: {"caseId": int, ...} (served by conference, see its case.open section).
RPC_CASE_OPEN = "rpc.conference.case.open"


class CaseOpen(msgspec.Struct, kw_only=True):
    service: int
    room: str
    roomId: int | None = None  # room_conference.id
    userName: str = ""
    mobileCreated: str = ""
    caseType: str = ""  # the link type: "video" | "location"
    organization: str = ""  # the IDEMS branch


# ---- realtime asks link: the /queue closeRoom row (issue 8) -----------------------------------------------
# When conference publishes ROOM_CLOSED with closedBy "close" (PUT /room/close), realtime emits on /queue ``queue``
# {"status": "closeRoom", "data": <row>}
# where <row> is the room's FIRST SMS-link-history row, in the shape GET /link/history (and the socket ``queue``
# reply) gives rows: {caseId, linkID, caseStatus, hn, patientMobile, room, id, mobile, linkType, crmSender,
# latitude, longitude, patientLatitude, patientLongitude, patientUpdated, dtmCreated, agent, status, activeLog,
# recordVideos}. Served by link (LinkRoomHistoryQuery); reply data = that row, or null when the room has no link
# rows. No row (or link cannot answer): no emit.
RPC_LINK_ROOM_HISTORY = "rpc.link.link.room_history"


class LinkRoomHistoryQuery(msgspec.Struct, kw_only=True):
    room: str


# Realtime also reads an optional ``destination`` in RPC_CAR_TRACKING's reply (status "getDestination"): the
# room's patient position {userName, mobile, latitude, longitude, patientLatitude, patientLongitude}; when it is
# present realtime broadcasts it as ``destination`` on /{room} (realtime.md §4.5).


# ---- conference: issue 4 completion (room close, case side effects, record status, room pictures) ----------
# ROOM_CLOSED (RoomChanged with detail, ``service`` and ``closedBy``). Realtime: disconnect and drop /{room}
#   (for closedBy "expired" also /data/{room}, as the original's sweep). Only for closedBy "close" (PUT /room/close)
#   the original also emitted on /queue ``queue`` {"status": "closeRoom", "data": <row>} where <row> is the newest
#   row of link's SMS-link history of ``room`` (link_connect mobile != '' and share = 0, newest first; the
#   original's getSMSLinkHistory page 1, first row OBJECT, not a list); no row: no emit.
#   Closing a room that is already closed changes nothing and publishes nothing.
# CASE_CREATED / CASE_UPDATED (CaseChanged, now with userName, linkID, statusLog). Link: one usage_status_log row
#   per event, as the original's addStatusLog({data, userName}) wrote it: linkID NULL, room "", identity "",
#   userName = ``userName`` ("" when None), userType "", mobile "", linkType "", latitude/longitude NULL,
#   status "", userAgent "", dtmCreated = the event's time (local), data = JSON string of ``statusLog``
#   (i.e. the text in double quotes, as JSON.stringify of a string). statusLog texts:
#   created: "Update Case id:<caseId> userName:<userName> organization:<organization>";
#   updated: "Update Case operationNumber:<..> id:<caseId> status:<..> hn:<..> patientMobile<..> userName:<..>"
#   (absent body fields render "undefined", JSON null "null", as the original's template string did).
# CASE_ROOM_OPENED (CaseRoomOpened): GET /case/get found the case's room without a live Socket.IO namespace
#   (room not open, or past dtmExpired): conference set dtmExpired = now + 1 day. Realtime: register /{room}
#   with the full room handler set (the original's initialSocket), no emit.
CASE_ROOM_OPENED = "conference.case.room_opened"


class CaseRoomOpened(msgspec.Struct, kw_only=True):
    room: str
    caseId: int
    service: int
    dtmExpired: str  # local "YYYY-MM-DD HH:mm:ss"


# ROOM_RECORD_CHANGED (RoomChanged with detail and recordStatus): conference applied a recording egress event
#   (RECORDING_EGRESS_STARTED: recordId = egress id, dtmStartRecord, recordStatus 1; RECORDING_EGRESS_ENDED:
#   recordId "", dtmStopRecord, recordStatus 2) to room_conference. Link's read model applies it like the other
#   conference.room.* subjects; realtime needs nothing from it (its room-record emit follows the recording event).
ROOM_RECORD_CHANGED = "conference.room.record_changed"

# Files uploaded through a link (POST /upload/file?linkID=), for GET /room/picture. RECORDING must publish
# RECORDING_FILE_STORED (FileStored) for every `files` row it inserts, in the inserting transaction. Conference
# keeps a read model of them (with LINK_CREATED's linkID -> room) and answers GET /room/picture from it.
RECORDING_FILE_STORED = "recording.file.stored"


class FileStored(msgspec.Struct, kw_only=True):
    fileId: int  # files.id
    linkId: str  # files.linkId ("" when uploaded without one)
    filename: str
    url: str  # files.url, relative ("/images/<folder>/<name>"); readers prefix API_URL
    width: int | None = None
    height: int | None = None
    createdAt: str  # local "YYYY-MM-DD HH:mm:ss" (files.createdAt)


# ---- telemetry: statistics read model (issue 6, /stats/*) ----------------------------------------------------
# Telemetry keeps a copy of the link_connect columns the statistics read. LINK_FIELDS_CHANGED (LinkFieldsChanged):
# link publishes it in the transaction of every other write of those columns, with the columns written and their
# new values (dates local "YYYY-MM-DD HH:mm:ss"): getdetail {"userAgent", "os"}, POST /log {"errorVideo"} or
# {"errorLocation"}, one-time link used {"oneTimeLink": 2}, {"domainIndex"}, {"enabled"}. Telemetry applies only
# the columns it knows (statistics.domain.LINK_COLUMNS).
LINK_FIELDS_CHANGED = "link.link.fields_changed"


class LinkFieldsChanged(msgspec.Struct, kw_only=True):
    linkID: str
    fields: dict[str, Any]


# ---- telemetry: what car tasks need from link and conference (issue 6, /car/task) ------------------------
# TASK_SMS_REQUESTED (TaskSmsRequested): a COMMAND to link, published through telemetry's outbox by POST /car/task
#   (the original texted the crew its app link). Link consumes it (durable, once per ``messageId``): tenant =
#   ``service`` (None: the tenant of the room's links); domain = the tenant's next ``linkType`` domain for
#   ``linkID`` (the original's getDomain({service, type: "video", linkID: <task uid>})); text = ``prefix`` +
#   domain + ``path`` (the original's "Task \n<domain>/app/<uid>"); sender = the tenant's smsSenderName ('' if
#   none); then link's own SMS path (sms_message row of ``kind``, SMS_ENABLE honoured, link.sms.sent / failed).
TASK_SMS_REQUESTED = "telemetry.sms.requested"
# RPC_TENANT_DETAIL (ServiceQuery), served by link: the `services` row {"id", "name", "latitude", "longitude"}
#   (latitude/longitude as the original's driver gave DECIMAL: strings, or null); code "not_found" when missing.
# RPC_CASE_OF_ROOM (RoomQuery), served by conference: the room's first case (case_data joined to room_conference
#   on roomId, lowest case_data.id) {"service", "caseId", "operationNumber", "hn", "patientMobile", "userName",
#   "mobileCreated", "dtmCreated" (UTC ISO string), "status"}, or null when the room has none.
# Telemetry asks both with a short timeout; while unanswered, GET /car/task answers without case fields and with
# the tenant of the room's links as ``service`` (null fields when unknown), and "arrive" sends destination 0/0.
RPC_TENANT_DETAIL = "rpc.link.service.detail"
RPC_CASE_OF_ROOM = "rpc.conference.case.of_room"
# RPC_ROOM_CAR_POSITION (RoomQuery), served by telemetry: the room's newest car_track row (the room namespace
#   ``car-position`` a connecting ``user`` gets; same JSON types as CarPositionUpdated.row), or null when none.
RPC_ROOM_CAR_POSITION = "rpc.telemetry.car.newest"


class TaskSmsRequested(msgspec.Struct, kw_only=True):
    messageId: str  # idempotency key (the consumer must apply it once)
    mobile: str
    room: str
    linkID: str  # the task uid
    path: str  # "/app/<uid>"
    service: int | None = None
    linkType: str = "video"
    prefix: str = "Task \n"
    kind: str = "task"


# ---- recording: egresses and the encode queue (issue 7, continued) ---------------------------------------
# Recording keeps each room's autoRecord / recordType / encodingOptionsPreset / tenant from conference's
# ``conference.room.*`` RoomChanged events (durable consumer "recording-room-settings"), falling back to
# RPC_ROOM_DETAIL for a room it has not seen. The tenant (room_conference.service) is read from
# ``detail["service"]`` (or a top-level ``service`` field of the event data): conference must include it, else
# such rooms cannot record (the original refused rooms without a tenant).
# Recording owns which egress a room has (one at most, EGRESS_LIMIT in all). Consumers of its egress events:
# conference sets room_conference.recordId / dtmStartRecord / recordStatus 1 on RECORDING_EGRESS_STARTED and
# recordId "" / dtmStopRecord / recordStatus 2 on RECORDING_EGRESS_ENDED (EgressChanged.recordId = egress id);
# realtime emits ``room-record`` on /{room} for RECORDING_EGRESS_STARTED (egressInfo + dtmStartRecord/StopRecord).


# ---- realtime asks link, conference, recording: the remaining room socket events (issue 8, realtime.md §4.2) --
# Realtime calls these for client->server socket events and emits the reply; while nobody serves a subject the
# event is ignored (logged), as the original ignored failed handlers. Proposed by realtime; owners serve them.
# RPC_LINK_USER_POSITION (LinkUserPosition), link: `user-position` from a room socket: store the link's position
#   (link_connect lat/lng/accuracy of ``linkID`` IN ``room``; usage log UpdateLatLngLinkDetail). Reply data: the
#   room's `user-position-group` list (realtime.md §4.5) that realtime broadcasts; code "not_found" when the link
#   is not in that room (nothing emitted).
# RPC_LINK_POSITION_GROUP (RoomQuery), link: the room's `user-position-group` list (realtime replies to the
#   requester only, §13.4).
# RPC_LINK_QUEUE_PAGE (QueuePage), link: the socket `queue` (SMS-link history page, realtime.md §9). Reply data:
#   {"status": "data", service, page, maxRow, count, data: [rows]} for status init/changePage/searchAll/
#   searchAdvanced, null otherwise (no reply then). Realtime accepts it from agent sockets only (§13.1).
# RPC_CONFERENCE_PARTICIPANTS (RoomQuery), conference: LiveKit ListParticipants(room) as ParticipantInfo JSON
#   list (`user-list` {userList: [...]}; realtime sends {userList: false} when it fails).
# RPC_CONFERENCE_TRACK_MUTE (TrackMute), conference: LiveKit MutePublishedTrack; reply data {"muted": bool}.
#   Realtime then broadcasts `track-muted-unmuted` (the socket payload echoed); admins only (§13.3).
# RPC_RECORDING_TOGGLE (RoomQuery), recording: the `room-record` toggle (§4.3): start or stop the room's egress
#   atomically; reply data = the `room-record` payload ({status: startRecord|stopRecord, data} or
#   {status: "egressNotAvailable", message} or {status: "ERROR", message}); admins only.
RPC_LINK_USER_POSITION = "rpc.link.link.user_position"
RPC_LINK_POSITION_GROUP = "rpc.link.link.position_group"
RPC_LINK_QUEUE_PAGE = "rpc.link.link.queue_page"
RPC_CONFERENCE_PARTICIPANTS = "rpc.conference.participant.list"
RPC_CONFERENCE_TRACK_MUTE = "rpc.conference.track.mute"
RPC_RECORDING_TOGGLE = "rpc.recording.room.toggle"


class LinkUserPosition(msgspec.Struct, kw_only=True):
    room: str
    linkID: str
    latitude: float | None = None
    longitude: float | None = None
    accuracy: float | None = None


class QueuePage(msgspec.Struct, kw_only=True):
    status: str
    service: int | str | None = None
    page: int | str | None = None
    maxRow: int | str | None = None
    value: str | None = None
    mobile: str | None = None
    agentName: str | None = None
    roomStatus: str | None = None
    dateTimeStart: str | None = None
    dateTimeEnd: str | None = None


class TrackMute(msgspec.Struct, kw_only=True):
    room: str
    identity: str
    trackSid: str
    muted: bool


# RECORDING_RECORD_USAGE (RecordUsage): GET /record/request's usage row of the original (status "StartRecord",
# "FailRecord" or "StopRecord"; ``data`` = the egress info or the failure). Link: one usage_status_log row.
RECORDING_RECORD_USAGE = "recording.record.usage"


class RecordUsage(msgspec.Struct, kw_only=True):
    room: str
    identity: str = ""
    status: str  # StartRecord | FailRecord | StopRecord
    userAgent: str = ""
    data: Any = None


# ---- conference serves realtime's LiveKit socket calls (conference/participants.py) -----------------------
# RPC_CONFERENCE_PARTICIPANTS: reply data = the ParticipantInfo JSON list (as GET /user/listparticipants), or
#   false when LiveKit refuses (4xx). RPC_CONFERENCE_TRACK_MUTE: reply data {"muted": <the track's state LiveKit
#   reports>, "applied": true}, or on a LiveKit refusal (unknown participant/track) still ok: {"muted": <as asked>,
#   "applied": false, "error": {"code", "msg"}} (the original swallowed refusals and broadcast anyway). Both: bad
#   fields -> "bad_request"; LiveKit down/5xx/silent -> a failed reply within 2 s (below realtime's 3 s wait), code
#   "unavailable" once Bus.serve passes RpcError codes through (until then its generic "error").


# ---- recording serves RPC_RECORDING_TOGGLE (issue 8, realtime.md §4.3) -----------------------------------
# Reply data (realtime broadcasts it as `room-record`): {status: "startRecord"|"stopRecord", data: EgressInfo JSON
# + dtmStartRecord/dtmStopRecord}, {status: "egressNotAvailable", message: "Record service not available"}
# (EGRESS_LIMIT reached; LiveKit not asked), or {status: "ERROR", code, message} with nothing written, ``code`` =
# LiveKit's Twirp code ("unavailable" when unreachable/5xx/slow) or recording's refusal ("starting": a start is
# in flight, "already_recording", "no_service": the room has no tenant, "busy"). RpcError "not_found" for a room
# nobody knows (the original crashed: nothing emitted), "bad_request" for an empty / >50-char room. The toggle
# always records video+audio, grid, H264_720P_30 (as the original; the room's record settings are not used) and
# writes no usage row. The egress events follow from LiveKit's webhooks, as for GET /record/request.
# NOTE: a LiveKit call may take up to 10 s; realtime waits 3 s (RPC_TIMEOUT), so on a slow node it emits nothing
# while the toggle still completes (LiveKit's egress_started webhook then reaches the room).


# ---- conference serves RPC_CASE_OPEN (link's POST /link/idems) --------------------------------------------
# Served since this section. Conference writes the case row as the original's IDEMS route did (status "On Case",
#   userName, mobileCreated, caseType, organization, roomId = the room's room_conference.id) and publishes
#   CASE_CREATED (CaseChanged, statusLog "" : the original wrote no usage log for it) in the same transaction.
# Reply data: {"caseId": int, "caseRowId": int (case_data.id), "created": bool}.
# Idempotent per (service, room): a retry of the same request (same room) answers the case already opened
#   (created false) and writes nothing; link makes a fresh room per request, so the room is the request's key.
# Errors: code "bad_request" when room is empty / over 50 characters, service or roomId out of range, a field
#   is too long for its column, or no room has that name (or roomId is not that room's id).


# ---- link serves realtime's room-socket events (RPC_LINK_USER_POSITION / _POSITION_GROUP / _QUEUE_PAGE) -------
# Served since this section (link/events.py).
# RPC_LINK_USER_POSITION: latitude/longitude required and in range (accuracy optional, |x| <= 1e9), else code
#   "bad_request" and nothing written; a link not in ``room`` (or unknown): "not_found", nothing written. Else
#   link_connect lat/lng/accuracy, usage row UpdateLatLngLinkDetail (userType = the link's, identity "") and
#   LINK_LOCATION_UPDATED in one transaction; reply data = the room's position group (same as
#   RPC_LINK_POSITION_GROUP: [] for an unknown room).
# RPC_LINK_QUEUE_PAGE: reply data null for other statuses; "bad_request" where the original crashed (service or
#   maxRow not a number, maxRow < 0, searchAll without value, unparsable dateTimeStart/End). maxRow capped at 500.
#   ``page``/``maxRow`` are echoed as sent (absent when not sent). Rows are GET /link/history's (recordVideos =
#   the room's recordings, as that route gives them). Differences from the original, on purpose: searches filter
#   before paging (the original filtered only the page's rows while counting all matches) and list a row once
#   even when several fields match; missing searchAdvanced fields match anything; searchAll matches the creation
#   time as local "YYYY-MM-DD HH:mm:ss" text; the date range compares conference's room dtmCreated.
# RECORDING_RECORD_USAGE: consumed by link (durable "link-record-usage", replayed, apply_once): one
#   usage_status_log row (linkID "", room, identity, status, userAgent, data JSON or "\"\"", dtmCreated = event time).


# ---- conference serves LiveKit node credentials to recording (issue 7: webhooks and egress per node) ----------
# Core NATS request/reply ONLY: these replies carry API secrets, so they never go through the outbox/JetStream and
# are never logged (neither side logs payloads). Nodes are conference's ``node_livekit`` rows (a row without its
# own key/secret signs with the env default), else the env default node (LIVEKIT_HOST + key/secret).
# RPC_LIVEKIT_NODE_BY_KEY (LiveKitKeyQuery; recording asks with the ``iss`` of a webhook's Authorization token):
#   reply data LiveKitNodeCredentials of the first node (by id) signing with that key; the env default key answers
#   the default node. No node has that key: code "not_found". Empty / over 200-char key: "bad_request".
# RPC_LIVEKIT_NODE_OF_ROOM (RoomQuery): the node the room lives on (its remembered nodeLivekitId), else the node new
#   rooms go to (the one conference's own RoomService calls for that room use), else the env default node.
#   ``url`` is the server-to-server HTTP(S) URL (livekitLocal when set, else livekitHost); "" = none configured.
# Recording caches answers briefly in-process (60 s): node table changes reach it within that time.
RPC_LIVEKIT_NODE_BY_KEY = "rpc.conference.livekit.node_by_key"
RPC_LIVEKIT_NODE_OF_ROOM = "rpc.conference.livekit.node_of_room"


class LiveKitKeyQuery(msgspec.Struct, kw_only=True):
    apiKey: str


class LiveKitNodeCredentials(msgspec.Struct, kw_only=True):
    url: str
    apiKey: str
    apiSecret: str

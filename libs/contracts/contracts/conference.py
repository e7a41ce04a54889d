"""Conference's contract: the events conference publishes (``conference.*``) and the requests it serves
(``rpc.conference.*``)."""

from __future__ import annotations

from typing import Any

import msgspec

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


# Replies (``servicekit.bus.RpcReply.data``):
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
    # identity is given, the user's stored colour is reused and a missing userName becomes the stored name; a
    # userName still missing (none given, no known user's) becomes "User-<0..99>", as the original generated.
    useKnownUser: bool = False
    # /link/getdetail needs the room detail too: when true the reply carries it as "room" (one request, one
    # room lookup instead of two).
    withRoom: bool = False


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
    # completion section below): who acted and the original's log text.
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


# Reply data: the colour palette (color_scheme.color_hex values, in id order) that participant colours are
# picked from. Served by conference.
RPC_CONFERENCE_PALETTE = "rpc.conference.palette"


class PaletteQuery(msgspec.Struct, kw_only=True):
    pass


# ---- realtime asks conference: presence of Socket.IO clients in room_user (realtime.md §6) ----------------
# Every room_user write below publishes PARTICIPANT_SAVED (conference.events.participants.publish_room_user). Served by
# conference (conference/events/presence.py); realtime keeps socket ids, timers and the waiting room in Redis.
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


# ---- telemetry: what car tasks need from link and conference (issue 6, /car/task) ------------------------
# RPC_CASE_OF_ROOM (RoomQuery), served by conference: the room's first case (case_data joined to room_conference
#   on roomId, lowest case_data.id) {"service", "caseId", "operationNumber", "hn", "patientMobile", "userName",
#   "mobileCreated", "dtmCreated" (UTC ISO string), "status"}, or null when the room has none.
RPC_CASE_OF_ROOM = "rpc.conference.case.of_room"


# ---- realtime asks link, conference, recording: the remaining room socket events (issue 8, realtime.md §4.2) --
# Realtime calls these for client->server socket events and emits the reply; while nobody serves a subject the
# event is ignored (logged), as the original ignored failed handlers. Proposed by realtime; owners serve them.
# RPC_CONFERENCE_PARTICIPANTS (RoomQuery), conference: LiveKit ListParticipants(room) as ParticipantInfo JSON
#   list (`user-list` {userList: [...]}; realtime sends {userList: false} when it fails).
# RPC_CONFERENCE_TRACK_MUTE (TrackMute), conference: LiveKit MutePublishedTrack; reply data {"muted": bool}.
#   Realtime then broadcasts `track-muted-unmuted` (the socket payload echoed); admins only (§13.3).
RPC_CONFERENCE_PARTICIPANTS = "rpc.conference.participant.list"
RPC_CONFERENCE_TRACK_MUTE = "rpc.conference.track.mute"


class TrackMute(msgspec.Struct, kw_only=True):
    room: str
    identity: str
    trackSid: str
    muted: bool


# ---- conference serves realtime's LiveKit socket calls (conference/events/participants.py) ----------------
# RPC_CONFERENCE_PARTICIPANTS: reply data = the ParticipantInfo JSON list (as GET /user/listparticipants), or
#   false when LiveKit refuses (4xx). RPC_CONFERENCE_TRACK_MUTE: reply data {"muted": <the track's state LiveKit
#   reports>, "applied": true}, or on a LiveKit refusal (unknown participant/track) still ok: {"muted": <as asked>,
#   "applied": false, "error": {"code", "msg"}} (the original swallowed refusals and broadcast anyway). Both: bad
#   fields -> "bad_request"; LiveKit down/5xx/silent -> a failed reply within 2 s (below realtime's 3 s wait), code
#   "unavailable" once Bus.serve passes RpcError codes through (until then its generic "error").


# ---- conference serves RPC_CASE_OPEN (link's POST /link/idems) --------------------------------------------
# Served since this section. Conference writes the case row as the original's IDEMS route did (status "On Case",
#   userName, mobileCreated, caseType, organization, roomId = the room's room_conference.id) and publishes
#   CASE_CREATED (CaseChanged, statusLog "" : the original wrote no usage log for it) in the same transaction.
# Reply data: {"caseId": int, "caseRowId": int (case_data.id), "created": bool}.
# Idempotent per (service, room): a retry of the same request (same room) answers the case already opened
#   (created false) and writes nothing; link makes a fresh room per request, so the room is the request's key.
# Errors: code "bad_request" when room is empty / over 50 characters, service or roomId out of range, a field
#   is too long for its column, or no room has that name (or roomId is not that room's id).


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


# ---- snapshots for rebuilding read models (issue 14) -----------------------------------------------------------
# RPC_CONFERENCE_SNAPSHOT (servicekit.rebuild.SnapshotQuery -> SnapshotPage), served by conference: its current
# rows in the shapes of its events' payloads, paged by the owner's row id (see servicekit.rebuild). Entities:
#   ConferenceSnapshot.ROOMS       -> RoomState (the first room_conference row of each room name, by id)
#   ConferenceSnapshot.ROOM_USERS  -> RoomUserSaved (the oldest room_user row of each (room, identity), by id)
#   ConferenceSnapshot.CASES       -> CaseChanged (the first case_data row of each (caseId, service), by id;
#                                     userName and statusLog empty: a snapshot is no case action)
RPC_CONFERENCE_SNAPSHOT = "rpc.conference.snapshot"


class ConferenceSnapshot:
    ROOMS = "rooms"
    ROOM_USERS = "room_users"
    CASES = "cases"


class RoomState(RoomChanged, kw_only=True):
    """A room as its RoomChanged events describe it, plus whether ``/{room}`` takes socket connections now (what
    RPC_ROOM_SOCKET_LIVE answers): realtime's namespace registry."""

    socketLive: bool = False

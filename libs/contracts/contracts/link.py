"""Link's contract: the events link publishes (``link.*``) and the requests it serves (``rpc.link.*``)."""

from __future__ import annotations

from typing import Any

import msgspec

# ---- link ------------------------------------------------------------------------------------------------
LINK_CREATED = "link.link.created"
LINK_LOCATION_UPDATED = "link.location.updated"


class LinkCreated(msgspec.Struct, kw_only=True):
    """Every link link makes, a new room's Guest/Viewer share links included (``share`` 1, no mobile)."""

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


# ---- request/reply ---------------------------------------------------------------------------------------
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


# The same for many links in one request (realtime's pushes due at one moment): reply data is a list, in the order
# of ``links``, of what RPC_LINK_STATUS_HISTORY answers for each. At most HISTORIES_MAX links a request, so a reply
# of full timelines stays well under NATS's max_payload.
RPC_LINK_STATUS_HISTORIES = "rpc.link.link.status_histories"
HISTORIES_MAX = 16


class LinkHistoriesQuery(msgspec.Struct, kw_only=True):
    links: list[LinkHistoryQuery]


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
# Link hands conference the room_user write of /link/getdetail (the original's
# ``UPDATE room_user SET userAgent = ? WHERE room = ? AND identity = ?``).
LINK_PARTICIPANT_SEEN = "link.participant.seen"


class ParticipantSeen(msgspec.Struct, kw_only=True):
    room: str
    identity: str
    userAgent: str
    linkID: str = ""


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


# ---- conference asks link: the room of a link (POST /user/joingenerate with linkID) -----------------------
# Reply data: {"linkID", "room"}; code "not_found" when no link has that id. Realtime asks it too, when a client
# connects to a /data/{linkID} its namespace registry does not hold yet.
RPC_LINK_ROOM = "rpc.link.link.room"


class LinkRoomQuery(msgspec.Struct, kw_only=True):
    linkID: str


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
# RPC_TENANT_DETAIL (ServiceQuery), served by link: the `services` row {"id", "name", "latitude", "longitude"}
#   (latitude/longitude as the original's driver gave DECIMAL: strings, or null); code "not_found" when missing.
RPC_TENANT_DETAIL = "rpc.link.service.detail"

# ---- realtime asks link, conference, recording: the remaining room socket events (issue 8, realtime.md §4.2) --
# Realtime calls these for client->server socket events and emits the reply; while nobody serves a subject the
# event is ignored (logged), as the original ignored failed handlers. Proposed by realtime; owners serve them.
# RPC_LINK_USER_POSITION (LinkUserPosition), link: `user-position` from a room socket: store the link's position
#   (link_connect lat/lng/accuracy of ``linkID`` IN ``room``; usage log UpdateLatLngLinkDetail). Reply data: the
#   room's `user-position-group` list (realtime.md §4.5) that realtime broadcasts; code "not_found" when the link
#   is not in that room (nothing emitted).
# RPC_LINK_POSITION_GROUP (contracts.conference.RoomQuery), link: the room's `user-position-group` list
#   (realtime replies to the requester only, §13.4).
# RPC_LINK_QUEUE_PAGE (QueuePage), link: the socket `queue` (SMS-link history page, realtime.md §9). Reply data:
#   {"status": "data", service, page, maxRow, count, data: [rows]} for status init/changePage/searchAll/
#   searchAdvanced, null otherwise (no reply then). Realtime accepts it from agent sockets only (§13.1).
RPC_LINK_USER_POSITION = "rpc.link.link.user_position"
RPC_LINK_POSITION_GROUP = "rpc.link.link.position_group"
RPC_LINK_QUEUE_PAGE = "rpc.link.link.queue_page"


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


# ---- snapshots for rebuilding read models (issue 14) -----------------------------------------------------------
# RPC_LINK_SNAPSHOT (servicekit.rebuild.SnapshotQuery -> SnapshotPage), served by link, paged by link_connect.id:
#   LinkSnapshot.LINKS -> LinkState (every link_connect row: also the Guest/Viewer share links, share = 1, which
#                         LINK_CREATED announces too, and an original's rows without a linkID, which no event ever
#                         announced; each consumer takes what its read model holds: telemetry's statistics and
#                         car-task copies all of them, conference and realtime those with a linkID)
RPC_LINK_SNAPSHOT = "rpc.link.snapshot"


class LinkSnapshot:
    LINKS = "links"
    LIVE_LINKS = "liveLinks"  # LiveLink rows: the links with a linkID a LinkState page says are ``live``, only ids


class LiveLink(msgspec.Struct, kw_only=True):
    """A link not expired (its ``/data/{linkID}`` namespace is live), as LinkSnapshot.LIVE_LINKS pages it."""

    linkID: str


class LinkState(LinkCreated, kw_only=True):
    """A link as LINK_CREATED describes it (``roomCreated`` always False: not known after the fact), plus the
    columns the other events carry, as LINK_FIELDS_CHANGED's ``fields`` (``userAgent``, ``os``, ``errorVideo``,
    ``errorLocation``, ``domainIndex``, ``enabled``, ``accuracy``, ``latitude``, ``longitude``, ``patientLatitude``,
    ``patientLongitude``; decimals as numbers), and whether its ``/data/{linkID}`` namespace is live (not expired)."""

    linkID: str | None  # type: ignore[assignment]  # None: a row of an original's installation without one
    fields: dict[str, Any] = {}
    live: bool = False

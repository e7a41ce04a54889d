"""Read models of GET /link/getdetail and /link/history: conference's rooms, room users and cases, LiveKit's
participants and recordings, the colour palette, kept in link's own database and fed by events, so getdetail
answers in one hop (no request to conference) once a room is known.

* ``room_view``: conference's RoomChanged events carrying ``detail`` (conference.room.*). ``complete`` = the
  row began with the room's ``created`` event (so every later room_user change of it reached ``room_user_view``).
* ``room_user_view``: PARTICIPANT_SAVED (room_user inserts/updates) — colour and name reused in tokens.
* ``room_participant_view``: RECORDING_PARTICIPANT_JOINED / LEFT (LiveKit webhooks, via recording), and per room
  ``room_participant_list``: the live ones as one JSON array, what getdetail reads.
* ``room_case_view`` (GET /link/history): conference.case.created / updated (CaseChanged); each also writes the
  case action's usage_status_log row, as the original's case routes did. Own consumer, replayed from the start.
* ``room_record_view`` (GET /link/history ``recordVideos``): recording.egress.* (EgressChanged), replayed too.
* ``palette_view`` / :class:`Palette`: rpc.conference.palette at start-up, then every 5 minutes; the last known
  list is used while conference does not answer.

Consumers are durable and idempotent (``handled_once`` in the applying transaction); an event older than the
row (``version`` = event time, epoch ms) does not overwrite it.

Fallback (slow path, in routes/links.py): a room missing from ``room_view`` (older than the events, or its
event not applied yet), a room whose LiveKit node has its own API key (link signs only with the shared
LIVEKIT_API_KEY/SECRET), or no palette known yet: the request goes to conference (RPC_PARTICIPANT_TOKEN with
withRoom) and the room it returns is stored here, so only the first request of such a room is slow. Whether
the room uses the shared key is learnt by verifying the token conference returned with the shared secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import msgspec

from contracts.conference import (
    CASE_CREATED,
    CASE_UPDATED,
    PARTICIPANT_SAVED,
    ROOM_CREATED,
    RPC_CONFERENCE_PALETTE,
    RPC_ROOM_DETAIL,
    CaseChanged,
    PaletteQuery,
    RoomChanged,
    RoomQuery,
    RoomUserSaved,
)
from contracts.recording import (
    RECORDING_EGRESS_ENDED,
    RECORDING_EGRESS_STARTED,
    RECORDING_EGRESS_UPDATED,
    RECORDING_PARTICIPANT_JOINED,
    RECORDING_PARTICIPANT_LEFT,
    RECORDING_RECORD_USAGE,
    EgressChanged,
    ParticipantPresence,
    RecordUsage,
)
from link import domain, repository
from servicekit import tokens
from servicekit.bus import Event, RpcError, apply_once, event_payload
from servicekit.clock import LOCAL_TZ, now_local, parse_local
from servicekit.db import Connection, Database
from servicekit.web import Runtime

log = logging.getLogger(__name__)

CONFERENCE_CONSUMER = "link-readmodels-conference"
RECORDING_CONSUMER = "link-readmodels-recording"
EGRESS_CONSUMER = "link-readmodels-egress"
CASE_CONSUMER = "link-readmodels-cases"
RECORD_USAGE_CONSUMER = "link-record-usage"
CASE_SUBJECTS = (CASE_CREATED, CASE_UPDATED)
EGRESS_SUBJECTS = (RECORDING_EGRESS_STARTED, RECORDING_EGRESS_UPDATED, RECORDING_EGRESS_ENDED)
PALETTE_REFRESH_SECONDS = 300.0
PALETTE_RETRY_SECONDS = 1.0
PALETTE_RPC_TIMEOUT = 2.0
INT_MAX = 2_147_483_647
UINT_MAX = 4_294_967_295
HISTORY_RPC_TIMEOUT = 5.0

_LINK_COLUMNS = [c.strip() for c in repository.LINK_DETAIL_COLUMNS.split(",")]
_LINK_DATES = ("dtmCreated", "dtmExpired")
# The scalar facts of the lookup, as (key, expression): the link row (LINK_DETAIL_COLUMNS, in order), then extras.
_LOOKUP_FIELDS = [(c, f"l.`{c}`") for c in _LINK_COLUMNS] + [
    ("_linkAgent", "l.userAgent"),
    ("_linkOs", "l.os"),
    ("_defaultKey", "r.usesDefaultKey"),
    ("_complete", "r.complete"),
    ("_knownIdentity", "u.identity"),
    ("_knownColor", "u.color"),
    ("_knownName", "u.userName"),
    ("_knownAgent", "u.userAgent"),
]
_LOOKUP = (
    # The scalars as one JSON document: the driver parses a column definition and a value per column on every
    # query (30 columns cost more client CPU than the rest of the request's SQL handling); msgspec decodes one
    # document in microseconds. JSON keeps the types (numbers, strings, null); DATETIMEs come as text.
    "SELECT JSON_OBJECT("  # noqa: S608 - constant keys and column names
    + ", ".join(f"'{key}', {expression}" for key, expression in _LOOKUP_FIELDS)
    + ") AS doc, r.detail AS _detail,"
    # The room's user links (positionUser) as a JSON array in the same round trip. DECIMAL as text (CAST), as the
    # driver gives it. Each object is cut to CHAR(512): GROUP_CONCAT keeps its values in a temporary table, in
    # memory for strings up to 512 characters but on disk (a file created per query) for longer ones, which
    # JSON_OBJECT of a TEXT column is. A cut object (a long errorLocation), like a list cut by group_concat_max_len,
    # is not valid JSON: caught on decode, and the rows are then read apart.
    " (SELECT CONCAT('[', GROUP_CONCAT(CAST(JSON_OBJECT('id', p.id, 'mobile', p.mobile, 'share', p.share,"
    "  'userName', p.userName, 'accuracy', p.accuracy, 'latitude', CAST(p.latitude AS CHAR),"
    "  'longitude', CAST(p.longitude AS CHAR), 'errorLocation', p.errorLocation) AS CHAR(512))"
    "  ORDER BY p.id DESC SEPARATOR ','), ']') FROM link_connect p WHERE p.room = l.room AND p.userType = 'user')"
    "  AS _positions,"
    # The live participants: the room's list kept by apply_recording_event (no aggregate of long texts per request).
    " pl.participants AS _participants"
    " FROM link_connect l LEFT JOIN room_view r ON r.room = l.room"
    " LEFT JOIN room_participant_list pl ON pl.room = l.room"
    " LEFT JOIN room_user_view u ON u.room = l.room AND u.identity = %s"
    " WHERE l.linkID = %s"
)
_EXTRA = tuple(key for key, _ in _LOOKUP_FIELDS[len(_LINK_COLUMNS) :])
_json = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


def event_ms(event: Event) -> int:
    try:
        return int(datetime.fromisoformat(event.occurred_at).timestamp() * 1000)
    except ValueError:
        return int(time.time() * 1000)


# ---- the getdetail lookup --------------------------------------------------------------------------------
@dataclass
class KnownUser:
    color: str | None
    user_name: str | None
    user_agent: str | None


@dataclass
class Lookup:
    link: dict[str, Any]  # the link row (LINK_DETAIL_COLUMNS, in order)
    link_agent: str | None
    link_os: str | None
    detail: dict[str, Any] | None  # the room's detail from room_view (None: not in the read model)
    uses_default_key: bool
    complete: bool
    user: KnownUser | None  # (room, identity) in room_user_view
    positions: list[dict[str, Any]] | None = None  # the room's user links, newest first (None: read apart)
    participants: list[dict[str, Any]] | None = None  # the room's live participants (None: read apart)


def _json_list(raw: Any) -> list[dict[str, Any]] | None:
    """A JSON array built by the lookup; [] for none; None when it cannot be trusted (read the rows apart)."""
    if raw is None:
        return []
    try:
        value = _json.decode(raw)
    except msgspec.DecodeError:
        log.info("lookup aggregate cut (a long value or list); reading the rows apart")
        return None
    return value if isinstance(value, list) else None


async def lookup(conn: Connection, link_id: str, identity: str) -> Lookup | None:
    """The link, its room's read model, the identity's room user, the room's user links and its participants,
    in one query (one round trip: the getdetail hot path)."""
    found = await conn.fetch_one(_LOOKUP, (identity, link_id))
    if found is None:
        return None
    row = _json.decode(found["doc"])
    for key in _LINK_DATES:  # as the driver gives a DATETIME
        row[key] = _datetime(row[key])
    extra = {key: row.pop(key) for key in _EXTRA}
    raw_detail = found["_detail"]
    return Lookup(
        link=row,
        link_agent=extra["_linkAgent"],
        link_os=extra["_linkOs"],
        detail=_json.decode(raw_detail) if raw_detail else None,
        uses_default_key=bool(extra["_defaultKey"]),
        complete=bool(extra["_complete"]),
        user=(
            KnownUser(extra["_knownColor"], extra["_knownName"], extra["_knownAgent"])
            if extra["_knownIdentity"] is not None
            else None
        ),
        positions=_json_list(found["_positions"]),
        participants=_json_list(found["_participants"]),
    )


@functools.lru_cache(maxsize=8192)  # a link's two timestamps, read on every page load
def _datetime(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:  # a zero date ('0000-00-00 00:00:00') in migrated rows: no date, as the driver gave it
        return None


def room_reply(detail: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The stored detail as conference's getRoomDetail answers it (recordDuration computed now)."""
    reply = dict(detail)
    started = detail.get("dtmStartRecord")
    if started:
        try:
            at = datetime.fromisoformat(started.replace("Z", "+00:00"))
        except (ValueError, AttributeError):
            return reply
        current = now or datetime.now(UTC)
        reply["recordDuration"] = abs(int((at - current).total_seconds() * 1000))
    return reply


async def participants(conn: Connection | Database, room: str) -> list[dict[str, Any]]:
    rows = await conn.fetch_all(
        "SELECT participant FROM room_participant_view WHERE room = %s AND participant IS NOT NULL"
        " ORDER BY joinedAt, identity",
        (room,),
    )
    return [_json.decode(r["participant"]) for r in rows]


def mint(
    *,
    api_key: str,
    api_secret: str,
    room: str,
    identity: str | None,
    user_name: str | None,
    user_type: str,
    link_type: str | None,
    mobile: str | None,
    link_id: str | None,
    room_join: bool,
    known: KnownUser | None,
    color: str | None,
) -> dict[str, Any]:
    """What conference's participant token answers for getdetail (useKnownUser): identity, userName, token,
    conference, color — a known user's colour and name reused, else a palette colour and ``User-<n>``."""
    if identity and identity != "null":
        if known is not None:
            color = known.color or color
            if user_name is None:
                user_name = known.user_name
        if user_name is None:
            user_name = tokens.generated_user_name()
    new_identity = tokens.participant_identity(identity, user_type)
    user_name = tokens.participant_user_name(user_name)
    metadata = tokens.participant_metadata(
        user_name=user_name, user_type=user_type, color=color, link_type=link_type, mobile=mobile, link_id=link_id
    )
    token = tokens.participant_token(
        api_key,
        api_secret,
        identity=new_identity,
        user_name=user_name,
        metadata=metadata,
        room=room,
        room_join=room_join,
    )
    reply: dict[str, Any] = {"identity": new_identity}
    if user_name is not None:
        reply["userName"] = user_name
    reply.update({"token": token, "conference": 1, "color": color})
    return reply


def signed_with(token: Any, api_key: str, api_secret: str) -> bool:
    """True when ``token`` was signed with the shared key (so link may sign the room's tokens itself)."""
    if not isinstance(token, str) or not token:
        return False
    try:
        claims = jwt.decode(token, api_secret, algorithms=["HS256"], options={"verify_exp": False})
    except jwt.InvalidTokenError:
        return False
    return claims.get("iss") == api_key


# ---- writing the views -----------------------------------------------------------------------------------
_UPSERT_ROOM = (
    "INSERT INTO room_view (room, id, status, roomType, detail, nodeLivekitId, usesDefaultKey, complete, version)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
    " id = IF(VALUES(version) >= version, VALUES(id), id),"
    " status = IF(VALUES(version) >= version, VALUES(status), status),"
    " roomType = IF(VALUES(version) >= version, VALUES(roomType), roomType),"
    " detail = IF(VALUES(version) >= version, VALUES(detail), detail),"
    " nodeLivekitId = IF(VALUES(version) >= version, VALUES(nodeLivekitId), nodeLivekitId),"
    " usesDefaultKey = IF(VALUES(version) >= version, VALUES(usesDefaultKey), usesDefaultKey),"
    " complete = GREATEST(complete, VALUES(complete)),"
    " version = GREATEST(version, VALUES(version))"
)


async def store_room(
    conn: Connection | Database,
    detail: dict[str, Any],
    *,
    room: str,
    node_id: int | None,
    uses_default_key: bool,
    complete: bool,
    version: int,
) -> None:
    stored = {k: v for k, v in detail.items() if k != "recordDuration"}
    name = str(stored.get("room") or room)[:50]
    await conn.execute(
        _UPSERT_ROOM,
        (
            name,
            stored.get("id"),
            stored.get("status"),
            stored.get("roomType"),
            _encode.encode(stored).decode(),
            node_id,
            1 if uses_default_key else 0,
            1 if complete else 0,
            version,
        ),
    )


_UPSERT_USER = (
    "INSERT INTO room_user_view (room, identity, color, userName, userType, userAgent, version)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
    " color = IF(VALUES(version) >= version, VALUES(color), color),"
    " userName = IF(VALUES(version) >= version, VALUES(userName), userName),"
    " userType = IF(VALUES(version) >= version, VALUES(userType), userType),"
    " userAgent = IF(VALUES(version) >= version, VALUES(userAgent), userAgent),"
    " version = GREATEST(version, VALUES(version))"
)

_UPSERT_PARTICIPANT = (
    "INSERT INTO room_participant_view (room, identity, participant, joinedAt, version)"
    " VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
    " participant = IF(VALUES(version) >= version, VALUES(participant), participant),"
    " joinedAt = IF(VALUES(version) >= version, VALUES(joinedAt), joinedAt),"
    " version = GREATEST(version, VALUES(version))"
)


async def apply_conference_event(db: Database, event: Event) -> bool:
    """Apply one conference event to the views; True when it was applied (False: duplicate or not ours)."""
    if event.subject.startswith("conference.room."):
        changed = event_payload(event, RoomChanged)
        if changed is None or not changed.detail:
            return False  # malformed, or a publisher without details: the fallback fills the view

        async def apply_room(conn: Connection) -> bool:
            await store_room(
                conn,
                changed.detail,
                room=changed.room,
                node_id=changed.nodeLivekitId,
                uses_default_key=bool(changed.usesDefaultKey),
                complete=event.subject == ROOM_CREATED,
                version=event_ms(event),
            )
            return True

        return bool(await apply_once(db, CONFERENCE_CONSUMER, event, apply_room))
    if event.subject == PARTICIPANT_SAVED:
        user = event_payload(event, RoomUserSaved)
        if user is None or len(user.room) > 100 or len(user.identity) > 50:
            return False

        async def apply_user(conn: Connection) -> bool:
            await conn.execute(
                _UPSERT_USER,
                (user.room, user.identity, user.color, user.userName, user.userType, user.userAgent, event_ms(event)),
            )
            return True

        return bool(await apply_once(db, CONFERENCE_CONSUMER, event, apply_user))
    return False


# ---- cases (conference.case.*) ----------------------------------------------------------------------------
# hn and patientMobile are taken as the event gives them (NULL included: a cleared value) only from events that
# carry the row's values (caseRowId set); older events lack them, so they never overwrite what is known.
_UPSERT_CASE = (
    "INSERT INTO room_case_view (service, caseId, caseRowId, room, status, hn, patientMobile, version)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    " ON DUPLICATE KEY UPDATE"
    " caseRowId = IF(VALUES(version) >= version, COALESCE(VALUES(caseRowId), caseRowId), caseRowId),"
    " room = IF(VALUES(version) >= version, COALESCE(VALUES(room), room), room),"
    " status = IF(VALUES(version) >= version, COALESCE(VALUES(status), status), status),"
    " hn = IF(VALUES(version) >= version AND VALUES(caseRowId) IS NOT NULL, VALUES(hn), hn),"
    " patientMobile = IF(VALUES(version) >= version AND VALUES(caseRowId) IS NOT NULL, VALUES(patientMobile),"
    " patientMobile),"
    " version = GREATEST(version, VALUES(version))"
)


def event_local(event: Event) -> datetime:
    """The event's time as a naive local DATETIME (usage_status_log.dtmCreated of the original's action)."""
    try:
        at = datetime.fromisoformat(event.occurred_at)
    except ValueError:
        return now_local()
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(LOCAL_TZ).replace(tzinfo=None, microsecond=0)


async def apply_case_event(db: Database, event: Event) -> bool:
    """A case created/updated: the case read model (row id, room, status, hn, patientMobile) and the action's
    usage_status_log row, as the original's case routes wrote it (linkID NULL, userName, data = the JSON string of
    the log text)."""
    if event.subject not in CASE_SUBJECTS:
        return False
    case = event_payload(event, CaseChanged)
    if case is None or not (0 <= case.caseId <= INT_MAX) or not (0 <= case.service <= INT_MAX):
        return False
    room = case.room[:50] if case.room else None
    status = case.status[:50] if case.status else None
    row_id = case.caseRowId if case.caseRowId is not None and 0 < case.caseRowId <= UINT_MAX else None
    hn = case.hn[:100] if case.hn is not None else None
    patient_mobile = case.patientMobile[:100] if case.patientMobile is not None else None

    async def apply_case(conn: Connection) -> bool:
        await conn.execute(
            _UPSERT_CASE, (case.service, case.caseId, row_id, room, status, hn, patient_mobile, event_ms(event))
        )
        if case.statusLog:  # a case opened by /link/idems has no log text: the original wrote no row for it
            await repository.add_case_usage(
                conn, user_name=case.userName or "", status_log=case.statusLog, at=event_local(event)
            )
        return True

    return bool(await apply_once(db, CASE_CONSUMER, event, apply_case))


# ---- recording's usage rows (recording.record.usage) -----------------------------------------------------------
async def apply_record_usage(db: Database, event: Event) -> bool:
    """GET /record/request's usage_status_log row (StartRecord / FailRecord / StopRecord), as the original's
    addStatusLog wrote it there: room, identity, status, userAgent and the JSON of ``data`` ("" when absent);
    stamped with the time of the request."""
    if event.subject != RECORDING_RECORD_USAGE:
        return False
    usage = event_payload(event, RecordUsage)
    if usage is None:
        return False
    row = list(
        repository.usage_row(
            status=usage.status[:50],
            room=usage.room[:100],
            identity=usage.identity[:100],
            user_agent=usage.userAgent,
            data=usage.data if usage.data is not None else "",
        )
    )
    row[_USAGE_CREATED_AT] = event_local(event)

    async def apply_usage(conn: Connection) -> bool:
        await repository.insert_usage_rows(conn, [tuple(row)])
        return True

    return bool(await apply_once(db, RECORD_USAGE_CONSUMER, event, apply_usage))


_USAGE_CREATED_AT = 11  # dtmCreated's place in repository.usage_row


# ---- recordings (recording.egress.*) ------------------------------------------------------------------------
_UPSERT_RECORD = (
    "INSERT INTO room_record_view (egressId, room, status, filename, recordType, startRecord, endRecord,"
    " dtmUpdated, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
    " room = IF(VALUES(version) >= version AND VALUES(room) != '', VALUES(room), room),"
    " status = IF(VALUES(version) >= version, VALUES(status), status),"
    " filename = IF(VALUES(filename) != '', VALUES(filename), filename),"
    " recordType = IF(VALUES(recordType) != '', VALUES(recordType), recordType),"
    " startRecord = COALESCE(startRecord, VALUES(startRecord)),"
    " endRecord = COALESCE(VALUES(endRecord), endRecord),"
    " dtmUpdated = GREATEST(COALESCE(dtmUpdated, VALUES(dtmUpdated)), VALUES(dtmUpdated)),"
    " version = GREATEST(version, VALUES(version))"
)


def egress_file(info: dict[str, Any]) -> tuple[str, str]:
    """(filename, recordType) of a LiveKit EgressInfo, in the original's record_media terms."""
    filename = ""
    results = info.get("fileResults")
    if isinstance(results, list) and results and isinstance(results[0], dict):
        filename = str(results[0].get("filename") or "")
    if not filename and isinstance(info.get("file"), dict):
        filename = str(info["file"].get("filename") or "")
    record_type = ""
    if isinstance(info.get("roomComposite"), dict):
        record_type = "RoomCompositeAudio" if info["roomComposite"].get("audioOnly") else "RoomCompositeVideoAudio"
    elif isinstance(info.get("trackComposite"), dict):
        record_type = "TrackComposite"
    return filename[:500], record_type


async def apply_egress_event(db: Database, event: Event) -> bool:
    if event.subject not in EGRESS_SUBJECTS:
        return False
    egress = event_payload(event, EgressChanged)
    if egress is None or not egress.recordId or len(egress.recordId) > 100 or len(egress.room) > 50:
        return False
    filename, record_type = egress_file(egress.egressInfo)
    started = parse_local(egress.dtmStartRecord) if egress.dtmStartRecord else None
    ended = parse_local(egress.dtmStopRecord) if egress.dtmStopRecord else None
    version = egress.timestamp or event_ms(event)

    async def apply_record(conn: Connection) -> bool:
        await conn.execute(
            _UPSERT_RECORD,
            (egress.recordId, egress.room, egress.status[:50], filename, record_type, started, ended,
             event_local(event), version),
        )  # fmt: skip
        return True

    return bool(await apply_once(db, EGRESS_CONSUMER, event, apply_record))


async def apply_recording_event(db: Database, event: Event) -> bool:
    """Apply one participant joined/left event to room_participant_view and the room's room_participant_list."""
    if event.subject not in (RECORDING_PARTICIPANT_JOINED, RECORDING_PARTICIPANT_LEFT):
        return False
    presence = event_payload(event, ParticipantPresence)
    if presence is None:
        return False
    if not presence.room or not presence.identity or len(presence.room) > 50 or len(presence.identity) > 255:
        return False
    version = presence.timestamp or event_ms(event)
    joined = event.subject == RECORDING_PARTICIPANT_JOINED
    participant = _encode.encode(presence.participant).decode() if joined else None
    joined_at = presence.participant.get("joinedAt") if joined else 0
    try:
        joined_at = int(joined_at or 0)
    except (TypeError, ValueError):
        joined_at = 0

    async def apply_presence(conn: Connection) -> bool:
        # The room's list row, locked first: events of one room applied by several replicas at once queue here, so
        # each rewrites the list from rows the others committed (locking reads see the latest rows).
        lock = "SELECT room FROM room_participant_list WHERE room = %s FOR UPDATE"
        if await conn.fetch_one(lock, (presence.room,)) is None:  # the room's first event
            await conn.execute(
                "INSERT IGNORE INTO room_participant_list (room, participants) VALUES (%s, '[]')", (presence.room,)
            )
            await conn.fetch_one(lock, (presence.room,))
        await conn.execute(_UPSERT_PARTICIPANT, (presence.room, presence.identity, participant, joined_at, version))
        rows = await conn.fetch_all(
            "SELECT participant FROM room_participant_view WHERE room = %s AND participant IS NOT NULL"
            " ORDER BY joinedAt, identity FOR UPDATE",
            (presence.room,),
        )
        listed = "[" + ",".join(row["participant"] for row in rows) + "]"
        await conn.execute(
            "UPDATE room_participant_list SET participants = %s WHERE room = %s", (listed, presence.room)
        )
        return True

    return bool(await apply_once(db, RECORDING_CONSUMER, event, apply_presence))


# ---- the palette -----------------------------------------------------------------------------------------
class Palette:
    """Conference's colour list, held in memory (and in palette_view for restarts)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.colors: list[str] = []
        self.known = False  # a list was learnt (from conference, or stored by an earlier run)

    def pick(self) -> str | None:
        return secrets.choice(self.colors) if self.colors else None

    async def load_stored(self) -> None:
        assert self.runtime.db is not None
        rows = await self.runtime.db.fetch_all("SELECT color FROM palette_view ORDER BY position")
        if rows:
            self.colors = [r["color"] for r in rows]
            self.known = True

    async def refresh(self) -> bool:
        """Ask conference; True on success. On failure the last known list stays."""
        assert self.runtime.bus is not None and self.runtime.db is not None
        try:
            reply = await self.runtime.bus.request(RPC_CONFERENCE_PALETTE, PaletteQuery(), timeout=PALETTE_RPC_TIMEOUT)
            colors = msgspec.convert(reply, list[str])
        except (RpcError, msgspec.ValidationError) as exc:
            log.info("palette not refreshed", extra={"error": str(exc)})
            return False
        colors = [c for c in colors if c and len(c) <= 50]
        if colors != self.colors or not self.known:
            async with self.runtime.db.transaction() as conn:
                await conn.execute("DELETE FROM palette_view")
                for position, color in enumerate(colors):
                    await conn.execute("INSERT INTO palette_view (position, color) VALUES (%s, %s)", (position, color))
        self.colors = colors
        self.known = True
        return True

    async def run(self) -> None:
        """Refresh every 5 minutes; every second until the first success."""
        while True:
            try:
                ok = await self.refresh()
            except Exception:
                log.exception("palette refresh failed")
                ok = False
            await asyncio.sleep(PALETTE_REFRESH_SECONDS if ok else PALETTE_RETRY_SECONDS)


# ---- wiring ----------------------------------------------------------------------------------------------
async def start(runtime: Runtime) -> Palette:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db
    palette = Palette(runtime)
    with contextlib.suppress(Exception):
        await palette.load_stored()
    runtime.background.append(asyncio.create_task(palette.run()))

    async def on_conference(event: Event) -> None:
        await apply_conference_event(db, event)

    async def on_recording(event: Event) -> None:
        await apply_recording_event(db, event)

    runtime.bus.consume("conference", CONFERENCE_CONSUMER, on_conference)
    runtime.bus.consume("recording", RECORDING_CONSUMER, on_recording, filter_subject="recording.participant.>")

    async def on_egress(event: Event) -> None:
        await apply_egress_event(db, event)

    # New read models: replayed from the streams' first events, so they hold what happened before link consumed.
    runtime.bus.consume("recording", EGRESS_CONSUMER, on_egress, filter_subject="recording.egress.>", replay=True)

    async def on_case(event: Event) -> None:
        await apply_case_event(db, event)

    runtime.bus.consume("conference", CASE_CONSUMER, on_case, filter_subject="conference.case.>", replay=True)

    async def on_record_usage(event: Event) -> None:
        await apply_record_usage(db, event)

    # Replayed: recording may have published rows before link consumed them (each is written once).
    runtime.bus.consume(
        "recording", RECORD_USAGE_CONSUMER, on_record_usage, filter_subject=RECORDING_RECORD_USAGE, replay=True
    )
    return palette


# ---- /link/history rows --------------------------------------------------------------------------------------
async def room_state(runtime: Runtime, room: str) -> dict[str, Any] | None:
    """The room's id and status: from room_view, else asked of conference once (and stored, as getdetail does).
    None when conference has no such room. Raises RpcError when conference cannot answer."""
    assert runtime.db is not None and runtime.bus is not None
    async with runtime.db.connection() as conn:
        state = await repository.room_state(conn, room)
    if state is not None:
        return state
    try:
        detail = await runtime.bus.request(RPC_ROOM_DETAIL, RoomQuery(room=room), timeout=HISTORY_RPC_TIMEOUT)
    except RpcError as exc:
        if exc.code == "not_found":
            return None
        raise
    await store_room(
        runtime.db,
        detail,
        room=room,
        node_id=None,
        uses_default_key=False,  # not known here: getdetail's first request of the room asks conference
        complete=False,
        version=0,  # any event of the room is newer
    )
    return {"id": detail.get("id"), "status": detail.get("status")}


async def history(
    runtime: Runtime, room: str, offset: int, limit: int = 5, newest_first: bool = False
) -> tuple[list[dict[str, Any]], int]:
    """Rows of the original's SMS-link history of a room (patient links x cases, with the room's id and status,
    the agent, each link's activity log and the room's recordings) and their total count."""
    assert runtime.db is not None
    state = await room_state(runtime, room)
    if state is None:
        return [], 0
    async with runtime.db.connection() as conn:
        rows = await repository.history_rows(conn, room, offset, limit, newest_first)
        count = await repository.history_count(conn, room)
        if not rows:
            return [], count
        agent = await repository.room_agent(conn, room)
        recordings = [repository.plain(r) for r in await repository.room_recordings(conn, room)]
        data = []
        for row in rows:
            row["id"] = state["id"]
            data.append(await _history_item(conn, row, agent, state["status"], recordings))
    return data, count


async def _history_item(
    conn: Connection, row: dict[str, Any], agent: str | None, room_status: str | None, recordings: list[Any]
) -> dict[str, Any]:
    """A history row as the original enriched it: its agent, room status, activity log and recordings."""
    item = repository.plain(row)
    for key in ("latitude", "longitude"):
        if item[key] is None:
            del item[key]  # the original set them undefined: absent from the JSON
    log_rows = await repository.active_log(conn, row["linkID"])
    item["agent"] = agent if agent is not None else False
    item["status"] = room_status or False
    item["activeLog"] = log_rows or False
    item["recordVideos"] = recordings
    return item


async def queue_page(runtime: Runtime, search: domain.QueueSearch) -> tuple[list[dict[str, Any]], int]:
    """One page of a tenant's SMS-link history (the socket ``queue``), newest first, rows shaped as
    :func:`history`'s, and the number of rows the search matches in all."""
    assert runtime.db is not None
    async with runtime.db.connection() as conn:
        rows = await repository.queue_rows(conn, search)
        count = await repository.queue_count(conn, search)
        recordings: dict[str, list[Any]] = {}
        data = []
        for row in rows:
            room_status, agent = row.pop("roomStatus"), row.pop("agent")
            row.pop("linkRowId")
            room = row["room"]
            if room not in recordings:
                recordings[room] = [repository.plain(r) for r in await repository.room_recordings(conn, room)]
            data.append(await _history_item(conn, row, agent, room_status, recordings[room]))
    return data, count

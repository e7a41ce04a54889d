"""SQL of link's read models (room_view, room_user_view, room_participant_view and room_participant_list,
room_case_view, room_record_view, palette_view; see link.events.readmodels for what feeds them): GET
/link/getdetail's one-query lookup, the consumers' idempotent upserts (an older ``version`` never overwrites a
newer row), the palette, and the room's state and recordings for /link/history."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from link.domain.detail import KnownUser
from link.repository import links
from servicekit.db import Connection, Database, json_datetime

log = logging.getLogger(__name__)

_LINK_COLUMNS = [c.strip() for c in links.LINK_DETAIL_COLUMNS.split(",")]
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


# ---- the getdetail lookup --------------------------------------------------------------------------------
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
        row[key] = json_datetime(row[key])
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


async def participants(conn: Connection | Database, room: str) -> list[dict[str, Any]]:
    rows = await conn.fetch_all(
        "SELECT participant FROM room_participant_view WHERE room = %s AND participant IS NOT NULL"
        " ORDER BY joinedAt, identity",
        (room,),
    )
    return [_json.decode(r["participant"]) for r in rows]


# ---- writing the views -----------------------------------------------------------------------------------
_ROOM_HEAD = (
    "INSERT INTO room_view (room, id, status, roomType, detail, nodeLivekitId, usesDefaultKey, complete, version)"
    " VALUES"
)
_ROOM_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
_ROOM_UPDATE = (
    "ON DUPLICATE KEY UPDATE"
    " id = IF(VALUES(version) >= version, VALUES(id), id),"
    " status = IF(VALUES(version) >= version, VALUES(status), status),"
    " roomType = IF(VALUES(version) >= version, VALUES(roomType), roomType),"
    " detail = IF(VALUES(version) >= version, VALUES(detail), detail),"
    " nodeLivekitId = IF(VALUES(version) >= version, VALUES(nodeLivekitId), nodeLivekitId),"
    " usesDefaultKey = IF(VALUES(version) >= version, VALUES(usesDefaultKey), usesDefaultKey),"
    " complete = GREATEST(complete, VALUES(complete)),"
    " version = GREATEST(version, VALUES(version))"
)


def _room_values(
    detail: dict[str, Any], room: str, node_id: int | None, uses_default_key: bool, complete: bool, version: int
) -> tuple[Any, ...]:
    stored = {k: v for k, v in detail.items() if k != "recordDuration"}
    name = str(stored.get("room") or room)[:50]
    return (
        name,
        stored.get("id"),
        stored.get("status"),
        stored.get("roomType"),
        _encode.encode(stored).decode(),
        node_id,
        1 if uses_default_key else 0,
        1 if complete else 0,
        version,
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
    await conn.execute(
        f"{_ROOM_HEAD} {_ROOM_ROW} {_ROOM_UPDATE}",
        _room_values(detail, room, node_id, uses_default_key, complete, version),
    )


async def store_rooms(
    conn: Connection, rooms: list[tuple[dict[str, Any], str, int | None, bool]], *, complete: bool, version: int
) -> None:
    """store_room for many rooms ((detail, room, node_id, uses_default_key), a rebuild's page), in their order, in
    multi-row statements."""
    rows = [_room_values(d, room, node, default, complete, version) for d, room, node, default in rooms]
    await conn.execute_rows(_ROOM_HEAD, _ROOM_ROW, _ROOM_UPDATE, rows)


_UPSERT_USER = (
    "INSERT INTO room_user_view (room, identity, color, userName, userType, userAgent, version)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
    " color = IF(VALUES(version) >= version, VALUES(color), color),"
    " userName = IF(VALUES(version) >= version, VALUES(userName), userName),"
    " userType = IF(VALUES(version) >= version, VALUES(userType), userType),"
    " userAgent = IF(VALUES(version) >= version, VALUES(userAgent), userAgent),"
    " version = GREATEST(version, VALUES(version))"
)


async def store_room_user(
    conn: Connection,
    room: str,
    identity: str,
    color: str | None,
    user_name: str | None,
    user_type: str | None,
    user_agent: str | None,
    version: int,
) -> None:
    await conn.execute(_UPSERT_USER, (room, identity, color, user_name, user_type, user_agent, version))


_UPSERT_PARTICIPANT = (
    "INSERT INTO room_participant_view (room, identity, participant, joinedAt, version)"
    " VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
    " participant = IF(VALUES(version) >= version, VALUES(participant), participant),"
    " joinedAt = IF(VALUES(version) >= version, VALUES(joinedAt), joinedAt),"
    " version = GREATEST(version, VALUES(version))"
)


async def store_presence(
    conn: Connection, room: str, identity: str, participant: str | None, joined_at: int, version: int
) -> None:
    """A participant joined (``participant``: its JSON) or left (None), and the room's room_participant_list
    rewritten from the live ones."""
    # The room's list row, locked first: events of one room applied by several replicas at once queue here, so
    # each rewrites the list from rows the others committed (locking reads see the latest rows).
    lock = "SELECT room FROM room_participant_list WHERE room = %s FOR UPDATE"
    if await conn.fetch_one(lock, (room,)) is None:  # the room's first event
        await conn.execute("INSERT IGNORE INTO room_participant_list (room, participants) VALUES (%s, '[]')", (room,))
        await conn.fetch_one(lock, (room,))
    await conn.execute(_UPSERT_PARTICIPANT, (room, identity, participant, joined_at, version))
    rows = await conn.fetch_all(
        "SELECT participant FROM room_participant_view WHERE room = %s AND participant IS NOT NULL"
        " ORDER BY joinedAt, identity FOR UPDATE",
        (room,),
    )
    listed = "[" + ",".join(row["participant"] for row in rows) + "]"
    await conn.execute("UPDATE room_participant_list SET participants = %s WHERE room = %s", (listed, room))


async def open_rooms(db: Database, after: str, limit: int) -> list[str]:
    """Rooms of room_view that are open, or still have live participants here, after ``after`` by name (whose
    participants a rebuild asks LiveKit for)."""
    rows = await db.fetch_all(
        "SELECT room FROM room_view WHERE room > %s AND status = 'open'"
        " UNION SELECT DISTINCT room FROM room_participant_view WHERE room > %s AND participant IS NOT NULL"
        " ORDER BY room LIMIT %s",
        (after, after, limit),
    )
    return [r["room"] for r in rows]


async def live_identities(conn: Connection, room: str) -> list[str]:
    rows = await conn.fetch_all(
        "SELECT identity FROM room_participant_view WHERE room = %s AND participant IS NOT NULL", (room,)
    )
    return [r["identity"] for r in rows]


async def mark_rooms_complete(db: Database) -> int:
    """Every room's users are in room_user_view (after a rebuild of it from conference's room users)."""
    return await db.execute("UPDATE room_view SET complete = 1 WHERE complete = 0")


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


async def store_case(
    conn: Connection,
    service: int,
    case_id: int,
    row_id: int | None,
    room: str | None,
    status: str | None,
    hn: str | None,
    patient_mobile: str | None,
    version: int,
) -> None:
    await conn.execute(_UPSERT_CASE, (service, case_id, row_id, room, status, hn, patient_mobile, version))


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


async def store_record(
    conn: Connection,
    egress_id: str,
    room: str,
    status: str,
    filename: str,
    record_type: str,
    started: datetime | None,
    ended: datetime | None,
    updated: datetime,
    version: int,
) -> None:
    await conn.execute(
        _UPSERT_RECORD, (egress_id, room, status, filename, record_type, started, ended, updated, version)
    )


# ---- the palette -----------------------------------------------------------------------------------------
async def stored_palette(db: Database) -> list[str]:
    rows = await db.fetch_all("SELECT color FROM palette_view ORDER BY position")
    return [r["color"] for r in rows]


async def replace_palette(conn: Connection, colors: list[str]) -> None:
    await conn.execute("DELETE FROM palette_view")
    for position, color in enumerate(colors):
        await conn.execute("INSERT INTO palette_view (position, color) VALUES (%s, %s)", (position, color))


# ---- /link/history ---------------------------------------------------------------------------------------
async def room_state(conn: Connection, room: str) -> dict[str, Any] | None:
    """The room's id and status from the room read model (None: not known here)."""
    return await conn.fetch_one("SELECT id, status FROM room_view WHERE room = %s", (room,))


async def room_recordings(conn: Connection, room: str) -> list[dict[str, Any]]:
    return await conn.fetch_all(
        "SELECT egressId, room, filename, recordType, startRecord, endRecord, dtmUpdated FROM room_record_view"
        " WHERE room = %s ORDER BY startRecord, egressId LIMIT 100",
        (room,),
    )

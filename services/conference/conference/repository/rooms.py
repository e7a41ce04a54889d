"""SQL of ``room_conference``: rooms, their closing and expiry, record state and socket reopening (always
parameterised)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from conference.domain import DETAIL_COLUMNS, DETAIL_DATE_COLUMNS, room_lock_name
from contracts.conference import EnsureRoom
from servicekit.db import Connection, Database, json_row_sql

_DETAIL_SELECT = ", ".join(f"`{c}`" for c in DETAIL_COLUMNS)
_DETAIL_JSON = f"SELECT {json_row_sql(DETAIL_COLUMNS)} FROM room_conference WHERE room = %s ORDER BY id LIMIT 1"  # noqa: S608
ROOM_LOCK_TIMEOUT_SECONDS = 10


# ---- rooms -----------------------------------------------------------------------------------------------
async def room_detail_row(conn: Connection | Database, room: str) -> dict[str, Any] | None:
    """GET /room/detail's read (the hottest conference route): its columns as one JSON document."""
    return await conn.fetch_json_row(_DETAIL_JSON, (room,), DETAIL_DATE_COLUMNS)


async def room_detail_and_node(conn: Connection | Database, room: str) -> dict[str, Any] | None:
    """The detail columns plus the room's LiveKit node (one lookup serves a token and its room detail)."""
    return await conn.fetch_one(
        f"SELECT {_DETAIL_SELECT}, `nodeLivekitId`, `service`, `recordStatus` FROM room_conference"  # noqa: S608
        " WHERE room = %s ORDER BY id LIMIT 1",
        (room,),
    )


async def room_head(conn: Connection | Database, room: str) -> dict[str, Any] | None:
    """Id, type, status and LiveKit node of a room (the oldest row when the name was duplicated)."""
    return await conn.fetch_one(
        "SELECT id, roomType, status, nodeLivekitId FROM room_conference WHERE room = %s ORDER BY id LIMIT 1",
        (room,),
    )


async def insert_room(
    conn: Connection,
    req: EnsureRoom,
    status: str,
    room_type: str,
    *,
    node_id: int | None,
    now: datetime,
    expires: datetime,
) -> int:
    """A new room row as ``req`` (link's room request) asks for it; no websocket URL, no recording yet."""
    return await conn.insert(
        "INSERT INTO room_conference (nodeLivekitId, status, roomType, room, service, recordId, autoRecord,"
        " recordType, encodingOptionsPreset, chatEnabled, webSocketURL, userAgent, dtmCreated, dtmUpdated,"
        " dtmExpired) VALUES (%s, %s, %s, %s, %s, '', %s, %s, %s, %s, '', %s, %s, %s, %s)",
        (node_id, status, room_type, req.room, req.service, req.autoRecord, req.recordType,
         req.encodingOptionsPreset, req.chatEnabled, req.userAgent, now, now, expires),
    )  # fmt: skip


async def open_as_conference(conn: Connection, room: str, now: datetime) -> int:
    """A location room becomes an open conference room (the original also cleared messageUnread here)."""
    return await conn.execute(
        "UPDATE room_conference SET roomType = 'conference', status = 'open', messageUnread = 0, dtmUpdated = %s"
        " WHERE room = %s",
        (now, room),
    )


@asynccontextmanager
async def room_creation(db: Database, room: str) -> AsyncIterator[Connection]:
    """One transaction holding the room name's user lock until after it commits, so concurrent creations of
    one name see each other's row (the table keeps the original's non-unique ``room`` column)."""
    async with db.locked_transaction(room_lock_name(room), ROOM_LOCK_TIMEOUT_SECONDS) as conn:
        yield conn


async def room_id_of(db: Connection | Database, room: str) -> int | None:
    row = await db.fetch_one("SELECT id FROM room_conference WHERE room = %s ORDER BY id LIMIT 1", (room,))
    return None if row is None else int(row["id"])


# ---- closing, type and status (/room/* routes, sweeps; issue 4) ------------------------------------------
async def room_statuses(conn: Connection, room: str) -> list[dict[str, Any]]:
    """Every row of a room name (the column is not unique), locked for the closing transaction."""
    return await conn.fetch_all("SELECT id, status FROM room_conference WHERE room = %s FOR UPDATE", (room,))


async def close_room(conn: Connection, room: str, now: datetime) -> int:
    """Close every not-yet-closed row of ``room``; an already closed row is left as it is (not rewritten)."""
    return await conn.execute(
        "UPDATE room_conference SET status = 'close', dtmClosed = %s, dtmUpdated = %s"
        " WHERE room = %s AND (status IS NULL OR status <> 'close')",
        (now, now, room),
    )


async def expired_open_rooms(conn: Connection | Database, now: datetime, limit: int = 500) -> list[str]:
    """Names of open rooms whose dtmExpired has passed (a NULL dtmExpired never expires)."""
    rows = await conn.fetch_all(
        "SELECT DISTINCT room FROM room_conference WHERE status = 'open' AND dtmExpired < %s LIMIT %s",
        (now, limit),
    )
    return [row["room"] for row in rows if row["room"] is not None]


async def update_room_type(conn: Connection, room: str, room_type: str, now: datetime) -> int:
    return await conn.execute(
        "UPDATE room_conference SET roomType = %s, dtmUpdated = %s WHERE room = %s", (room_type, now, room)
    )


async def update_room_status(conn: Connection, room: str, status: str, now: datetime) -> int:
    """The original's status change (messageUnread cleared); rows already in that state are not rewritten.
    A close sets dtmClosed (assigned first: MySQL evaluates SET left to right, so it still sees the old status)."""
    return await conn.execute(
        "UPDATE room_conference SET dtmClosed = IF(%s = 'close' AND NOT (status <=> 'close'), %s, dtmClosed),"
        " status = %s, messageUnread = 0, dtmUpdated = %s"
        " WHERE room = %s AND NOT (status <=> %s AND messageUnread = 0)",
        (status, now, status, now, room, status),
    )


async def close_expired_room(conn: Connection, room: str, now: datetime) -> int:
    """Close the rows of ``room`` that are still open and expired (the sweep's re-check under the write)."""
    return await conn.execute(
        "UPDATE room_conference SET status = 'close', dtmClosed = %s, dtmUpdated = %s"
        " WHERE room = %s AND status = 'open' AND dtmExpired < %s",
        (now, now, room, now),
    )


# ---- recording state (RECORDING_EGRESS_* events) ---------------------------------------------------------
async def record_started(conn: Connection, room: str, record_id: str, started: datetime) -> int:
    return await conn.execute(
        "UPDATE room_conference SET recordId = %s, dtmStartRecord = %s, recordStatus = 1 WHERE room = %s",
        (record_id, started, room),
    )


async def record_ended(conn: Connection, room: str, record_id: str, stopped: datetime) -> int:
    """Only while the room still records that egress (or nothing): a late end of an older egress must not
    clear a newer one."""
    return await conn.execute(
        "UPDATE room_conference SET recordId = '', dtmStopRecord = %s, recordStatus = 2"
        " WHERE room = %s AND (recordId IS NULL OR recordId IN (%s, ''))",
        (stopped, room, record_id),
    )


# ---- GET /case/get: the room's socket reopened for a day --------------------------------------------------
# A room's /{room} namespace is live while it is open, or reopened by GET /case/get after its last close, and
# not past dtmExpired (NULL never expires).
_SOCKET_LIVE = (
    "((dtmExpired IS NULL OR dtmExpired >= %s) AND (status = 'open' OR (dtmSocketReopened IS NOT NULL"
    " AND (dtmClosed IS NULL OR dtmSocketReopened >= dtmClosed))))"
)


async def room_socket_live(conn: Connection | Database, room: str, now: datetime) -> bool:
    """Whether ``/{room}`` takes socket connections (realtime asks on a registry miss): a live namespace as above,
    or a location room never closed (made closed, its namespace is opened by the link that made it)."""
    row = await conn.fetch_one(
        f"SELECT 1 AS live FROM room_conference WHERE room = %s AND ({_SOCKET_LIVE}"  # noqa: S608 - fixed SQL
        " OR ((dtmExpired IS NULL OR dtmExpired >= %s) AND roomType = 'location' AND dtmClosed IS NULL)) LIMIT 1",
        (room, now, now),
    )
    return row is not None


async def reopen_room_socket(conn: Connection, room: str, now: datetime, expires: datetime) -> int:
    """dtmExpired = ``expires`` for the rows of ``room`` without a live namespace: the original's updateExpired
    after it re-created a missing namespace."""
    return await conn.execute(
        "UPDATE room_conference SET dtmExpired = %s, dtmSocketReopened = %s"  # noqa: S608 - fixed SQL
        f" WHERE room = %s AND NOT {_SOCKET_LIVE}",
        (expires, now, room, now),
    )


async def expired_reopened_rooms(conn: Connection | Database, now: datetime, limit: int = 500) -> list[str]:
    """Closed rooms whose namespace GET /case/get reopened and whose day has passed."""
    rows = await conn.fetch_all(
        "SELECT DISTINCT room FROM room_conference WHERE status <> 'open' AND dtmSocketReopened IS NOT NULL"
        " AND dtmExpired < %s LIMIT %s",
        (now, limit),
    )
    return [row["room"] for row in rows if row["room"] is not None]


async def drop_reopened_socket(conn: Connection, room: str, now: datetime) -> int:
    return await conn.execute(
        "UPDATE room_conference SET dtmSocketReopened = NULL WHERE room = %s AND status <> 'open'"
        " AND dtmSocketReopened IS NOT NULL AND dtmExpired < %s",
        (room, now),
    )


# ---- snapshot (rebuilding other services' read models) ----------------------------------------------------------
async def rooms_page(conn: Connection | Database, after: int, limit: int, now: datetime) -> list[dict[str, Any]]:
    """The first row of each room name (the row every lookup reads: ORDER BY id LIMIT 1) with id > ``after``, by
    id, with what RoomChanged carries and whether its namespace takes socket connections (room_socket_live)."""
    return await conn.fetch_all(
        f"SELECT {_DETAIL_SELECT}, r.`nodeLivekitId`, r.`service`, r.`recordStatus`, r.id AS _rowId,"  # noqa: S608
        f" ({_SOCKET_LIVE} OR ((dtmExpired IS NULL OR dtmExpired >= %s) AND roomType = 'location'"
        " AND dtmClosed IS NULL)) AS _socketLive"
        " FROM room_conference r WHERE r.id > %s"
        " AND NOT EXISTS (SELECT 1 FROM room_conference o WHERE o.room = r.room AND o.id < r.id)"
        " ORDER BY r.id LIMIT %s",
        (now, now, after, limit),
    )

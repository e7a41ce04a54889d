"""SQL of the car tasks (always parameterised): car_track, and the read models car_room_link and car_room that
hold what the tasks need of link's links and conference's rooms; the per-device position counter in Redis."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Collection
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from servicekit.db import Connection
from servicekit.rebuild import versioned_update
from telemetry.domain import tasks as domain

log = logging.getLogger(__name__)


# ---- car tasks ---------------------------------------------------------------------------------------------
async def car_tasks_of_room(db: Any, room: str, limit: int) -> list[dict[str, Any]]:
    return await db.fetch_all("SELECT * FROM car_track WHERE room = %s ORDER BY id DESC LIMIT %s", (room, limit))


async def task_by_uid(db: Any, uid: str) -> dict[str, Any] | None:
    """The task row of ``uid`` (the newest, should an imported table hold the same uid twice)."""
    return await db.fetch_one("SELECT * FROM car_track WHERE uid = %s ORDER BY id DESC LIMIT 1", (uid,))


async def uid_taken(conn: Connection, uid: str) -> bool:
    return await conn.fetch_one("SELECT id FROM car_track WHERE uid = %s LIMIT 1", (uid,)) is not None


async def cancel_open_tasks(conn: Connection, room: str, now: datetime) -> int:
    """Cancel the room's tasks still running (unlike the original, a completed task keeps its final state)."""
    return await conn.execute(
        "UPDATE car_track SET status = 'cancel', dtmUpdated = %s, dtmCanceled = %s"
        " WHERE room = %s AND (status IS NULL OR status NOT IN ('cancel', 'complete'))",
        (now, now, room),
    )


async def insert_task(conn: Connection, uid: str, room: str, mobile: str, now: datetime) -> int:
    return await conn.insert(
        "INSERT INTO car_track (uid, room, status, mobile, dtmCreated, dtmUpdated) VALUES (%s, %s, 'open', %s, %s, %s)",
        (uid, room, mobile, now, now),
    )


async def set_task_status(conn: Connection, row_id: int, status: str, column: str, now: datetime) -> int:
    # ``column`` comes from domain.STATUS_COLUMNS (a fixed set of names), never from input.
    return await conn.execute(
        f"UPDATE car_track SET status = %s, `{column}` = %s, dtmUpdated = %s WHERE id = %s",  # noqa: S608
        (status, now, now, row_id),
    )


_SET_POSITION = (
    "UPDATE car_track SET latitude = %s, longitude = %s, accuracy = %s, speed = %s, heading = %s, altitude = %s,"
    " altitudeAccuracy = %s, dtmUpdated = %s WHERE id = %s"
)


def _position_args(position: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        position[k] for k in ("latitude", "longitude", "accuracy", "speed", "heading", "altitude", "altitudeAccuracy")
    )


async def set_task_position(conn: Connection, uid: str, position: dict[str, Any], now: datetime) -> dict | None:
    """Store the task's position on its newest row; that row, or None when no task has that uid. A conditional
    UPDATE (it locks the row it changes) then a plain read of the row, rather than a locking read first."""
    await conn.execute(
        "UPDATE car_track SET latitude = %s, longitude = %s, accuracy = %s, speed = %s, heading = %s, altitude = %s,"
        " altitudeAccuracy = %s, dtmUpdated = %s WHERE uid = %s ORDER BY id DESC LIMIT 1",
        (*_position_args(position), now, uid),
    )
    return await conn.fetch_one("SELECT * FROM car_track WHERE uid = %s ORDER BY id DESC LIMIT 1", (uid,))


async def upsert_car_position(
    conn: Connection, room: str, user_name: str, position: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """The room namespace ``carTracking`` write: the newest row of (room, userName) gets the position, or a new
    row is made (uid NULL, status open) as the original's insert-with-id-0 did. Call under a named lock."""
    row = await conn.fetch_one(
        "SELECT id FROM car_track WHERE room = %s AND userName = %s ORDER BY id DESC LIMIT 1", (room, user_name)
    )
    if row is None:
        row_id = await conn.insert(
            "INSERT INTO car_track (room, userName, status, dtmCreated, dtmUpdated) VALUES (%s, %s, 'open', %s, %s)",
            (room, user_name, now, now),
        )
    else:
        row_id = row["id"]
    await conn.execute(_SET_POSITION, (*_position_args(position), now, row_id))
    return await conn.fetch_one("SELECT * FROM car_track WHERE id = %s", (row_id,))


async def running_tasks_of_room(conn: Connection, room: str) -> list[dict[str, Any]]:
    """Tasks (rows with a uid) of the room whose crew still drives: those get the patient's new position."""
    return await conn.fetch_all(
        "SELECT uid FROM car_track WHERE room = %s AND uid IS NOT NULL"
        " AND (status IS NULL OR status NOT IN ('cancel', 'complete')) ORDER BY id",
        (room,),
    )


async def running_tasks_of_rooms(conn: Connection, rooms: Collection[str]) -> dict[str, list[dict[str, Any]]]:
    """running_tasks_of_room of many rooms in one read: room -> its tasks (by id; a room without any: [])."""
    found: dict[str, list[dict[str, Any]]] = {room: [] for room in rooms}
    if not found:
        return found
    marks = ", ".join(["%s"] * len(found))
    rows = await conn.fetch_all(
        f"SELECT room, uid FROM car_track WHERE room IN ({marks}) AND uid IS NOT NULL"  # noqa: S608 - placeholders
        " AND (status IS NULL OR status NOT IN ('cancel', 'complete')) ORDER BY id",
        tuple(found),
    )
    for row in rows:
        found.setdefault(row["room"], []).append({"uid": row["uid"]})
    return found


# ---- read model of link's links (car_room_link) ------------------------------------------------------------
async def newest_user_link(db: Any, room: str) -> dict[str, Any] | None:
    return await db.fetch_one(
        "SELECT latitude, longitude, patientLatitude, patientLongitude FROM car_room_link"
        " WHERE room = %s AND userType = 'user' ORDER BY id DESC LIMIT 1",
        (room,),
    )


async def room_service(db: Any, room: str) -> int | None:
    """The room's tenant: conference's room_conference.service, else the service of the room's newest link."""
    row = await db.fetch_one("SELECT service FROM car_room WHERE room = %s AND service IS NOT NULL", (room,))
    if row is None:
        row = await db.fetch_one(
            "SELECT service FROM car_room_link WHERE room = %s AND service IS NOT NULL ORDER BY id DESC LIMIT 1",
            (room,),
        )
    return None if row is None else int(row["service"])


_ROOM_HEAD, _ROOM_ROW = "INSERT INTO car_room (room, service, dtmUpdated, version) VALUES", "(%s, %s, %s, %s)"
_ROOM_UPDATE = "ON DUPLICATE KEY UPDATE " + versioned_update(
    {"service": "VALUES(service)", "dtmUpdated": "VALUES(dtmUpdated)"}
)


async def save_room_service(conn: Connection, room: str, service: int, now: datetime, version: int = 0) -> None:
    """The room's tenant from a room event (or a snapshot) of time ``version`` (epoch ms)."""
    await conn.execute(f"{_ROOM_HEAD} {_ROOM_ROW} {_ROOM_UPDATE}", (room, service, now, version))


async def save_room_services(conn: Connection, rooms: list[tuple[str, int]], now: datetime, version: int) -> None:
    """save_room_service for many (room, service), in their order, in multi-row statements (a rebuild's page)."""
    rows = [(room, service, now, version) for room, service in rooms]
    await conn.execute_rows(_ROOM_HEAD, _ROOM_ROW, _ROOM_UPDATE, rows)


_SAVE_LINK = versioned_update(
    {"room": "VALUES(room)", "userType": "VALUES(userType)", "service": "COALESCE(VALUES(service), service)",
     "userName": "VALUES(userName)", "mobile": "VALUES(mobile)", "dtmUpdated": "VALUES(dtmUpdated)",
     "linkRowId": "COALESCE(VALUES(linkRowId), linkRowId)"}
)  # fmt: skip


async def save_link(conn: Connection, link: dict[str, Any], now: datetime, version: int = 0) -> None:
    """A link made by link (link.link.created, or a snapshot): linkID, room, userType, service, userName, mobile and
    link's row id (``linkRowId``, when known: the key of a link without linkID, which only a snapshot carries)."""
    await conn.execute(f"{_LINK_HEAD} {_LINK_ROW} {_LINK_UPDATE}", _link_values(link, now, version))


def _link_values(link: dict[str, Any], now: datetime, version: int) -> tuple[Any, ...]:
    return (
        link["linkID"], link.get("linkRowId"), link["room"], link["userType"], link["service"], link["userName"][:100],
        link["mobile"][:20], now, version,
    )  # fmt: skip


_LINK_HEAD = (
    "INSERT INTO car_room_link (linkID, linkRowId, room, userType, service, userName, mobile, dtmUpdated, version)"
    " VALUES"
)
_LINK_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
_LINK_UPDATE = f"ON DUPLICATE KEY UPDATE {_SAVE_LINK}"
_POSITION_HEAD = "INSERT INTO car_room_link (linkID, room, userType, latitude, longitude, dtmUpdated, version) VALUES"
_PICK_HEAD = (
    "INSERT INTO car_room_link (linkID, room, userType, patientLatitude, patientLongitude, dtmUpdated, version) VALUES"
)
_POINT_ROW = "(%s, %s, %s, %s, %s, %s, %s)"
# A rebuild's positions carry link's row id as well: a link without linkID is found by it.
_POSITIONS_HEAD = (
    "INSERT INTO car_room_link (linkID, linkRowId, room, userType, latitude, longitude, dtmUpdated, version) VALUES"
)
_PICKS_HEAD = (
    "INSERT INTO car_room_link (linkID, linkRowId, room, userType, patientLatitude, patientLongitude, dtmUpdated,"
    " version) VALUES"
)
_POINTS_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s)"


async def save_links(
    conn: Connection,
    links: list[dict[str, Any]],
    positions: list[tuple[str | None, int | None, str, str, Any, Any]],
    picks: list[tuple[str | None, int | None, str, str, Any, Any]],
    now: datetime,
    version: int,
) -> None:
    """A rebuild's page of links in multi-row statements: save_link of every link (in their order: ids keep it), then
    set_link_position and set_link_pick of those with one ((linkID, linkRowId, room, userType, latitude,
    longitude)). Each link's own writes keep save_link's order, and a page's links are distinct rows (linkID and
    linkRowId are unique; a link without linkID is keyed by linkRowId), so the rows end as with the single-row calls
    link by link."""
    await conn.execute_rows(_LINK_HEAD, _LINK_ROW, _LINK_UPDATE, [_link_values(k, now, version) for k in links])
    for head, update, points in ((_POSITIONS_HEAD, _POSITION_UPDATE, positions), (_PICKS_HEAD, _PICK_UPDATE, picks)):
        await conn.execute_rows(head, _POINTS_ROW, update, [(*point, now, version) for point in points])


async def patient_of_room(db: Any, room: str) -> dict[str, Any] | None:
    """The carTracking ``getDestination`` payload: the room's newest user link with a mobile."""
    return await db.fetch_one(
        "SELECT userName, mobile, latitude, longitude, patientLatitude, patientLongitude FROM car_room_link"
        " WHERE room = %s AND userType = 'user' AND mobile IS NOT NULL AND mobile != '' ORDER BY id DESC LIMIT 1",
        (room,),
    )


_SET_POSITION_LINK = versioned_update(
    {"latitude": "VALUES(latitude)", "longitude": "VALUES(longitude)", "dtmUpdated": "VALUES(dtmUpdated)"}
)
_SET_PICK = versioned_update(
    {"patientLatitude": "VALUES(patientLatitude)", "patientLongitude": "VALUES(patientLongitude)",
     "dtmUpdated": "VALUES(dtmUpdated)"}
)  # fmt: skip


_POSITION_UPDATE = f"ON DUPLICATE KEY UPDATE {_SET_POSITION_LINK}"
_PICK_UPDATE = f"ON DUPLICATE KEY UPDATE {_SET_PICK}"


async def set_link_position(
    conn: Connection, link_id: str, room: str, user_type: str, latitude: Any, longitude: Any, now: datetime,
    version: int = 0,
) -> None:  # fmt: skip
    """A link's own position (link.location.updated); a link telemetry has not seen yet is added. Written with the
    batch's other positions as one statement (nothing reads car_room_link back before the commit)."""
    await conn.execute_later(
        _POSITION_HEAD, _POINT_ROW, _POSITION_UPDATE, (link_id, room, user_type, latitude, longitude, now, version)
    )


async def set_link_pick(
    conn: Connection, link_id: str, room: str, user_type: str, latitude: Any, longitude: Any, now: datetime,
    version: int = 0,
) -> None:  # fmt: skip
    """The patient's position picked on the map (link.location.multi): patientLatitude/patientLongitude."""
    await conn.execute(
        f"{_PICK_HEAD} {_POINT_ROW} {_PICK_UPDATE}", (link_id, room, user_type, latitude, longitude, now, version)
    )


async def newest_car_of_room(db: Any, room: str) -> dict[str, Any] | None:
    return await db.fetch_one("SELECT * FROM car_track WHERE room = %s ORDER BY id DESC LIMIT 1", (room,))


# ---- position floods (Redis) -------------------------------------------------------------------------------
async def over_rate(redis: Redis | None, device: str) -> bool:
    """True when ``device`` sent more than POSITION_RATE_LIMIT positions in the current window (Redis counter
    shared by the replicas). Redis down: not limited (positions matter more than the flood guard)."""
    if redis is None:
        return False
    window = int(time.time()) // domain.POSITION_RATE_WINDOW_SECONDS
    key = f"telemetry:positions:{hashlib.sha1(device.encode(), usedforsecurity=False).hexdigest()}:{window}"
    try:
        count = await redis.incr(key)
        if count == 1:
            await redis.expire(key, domain.POSITION_RATE_WINDOW_SECONDS * 2)
    except Exception:  # noqa: BLE001
        log.warning("rate limit check failed", exc_info=True)
        return False
    return count > domain.POSITION_RATE_LIMIT

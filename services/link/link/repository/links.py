"""Storage of links: SQL on link_connect (always bound parameters) and the Redis counters of password attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from asyncmy.errors import IntegrityError
from redis.asyncio import Redis

from link import domain
from servicekit.clock import now_local
from servicekit.db import Connection, Database

DUPLICATE_KEY = 1062
ID_ATTEMPTS = 20

LINK_DETAIL_COLUMNS = (
    "linkID, room, enabled, mobile, isAdmin, userName, userType, linkType, requireJoinPermission, crmSender, "
    "requireUserName, requirePassword, oneTimeLink, dtmCreated, dtmExpired"
)


# ---- links -----------------------------------------------------------------------------------------------
_INSERT_LINK = (
    "INSERT INTO link_connect (share, mobile, linkID, room, recordId, crmSender, userType, linkType, userName, "
    "isAdmin, requireJoinPermission, requireUserName, requirePassword, oneTimeLink, password, service, sms, "
    "dtmCreated, dtmExpired, userAgent) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


async def insert_link(conn: Connection, charset: str, fields: dict[str, Any]) -> tuple[str, int]:
    """Insert a link under a fresh random ID (retrying on the unique key); returns the ID and the row's id
    (link_connect.id, which LinkCreated carries as ``linkRowId``)."""
    for _ in range(ID_ATTEMPTS):
        link_id = domain.links.random_id(charset)
        args = (
            fields.get("share", 0),
            fields.get("mobile", ""),
            link_id,
            fields["room"],
            fields.get("recordId", 0),
            fields.get("crmSender", ""),
            fields.get("userType"),
            fields.get("linkType", "video"),
            fields.get("userName"),
            fields.get("isAdmin", "0"),
            fields.get("requireJoinPermission", 0),
            fields.get("requireUserName", 0),
            fields.get("requirePassword", 0),
            fields.get("oneTimeLink", 0),
            fields.get("password", ""),
            fields.get("service"),
            fields.get("sms", 1),
            fields["dtmCreated"],
            fields["dtmExpired"],
            fields.get("userAgent", ""),
        )
        try:
            row_id = await conn.insert(_INSERT_LINK, args)
        except IntegrityError as exc:
            if exc.args and exc.args[0] == DUPLICATE_KEY:
                continue  # only this statement failed; the transaction goes on
            raise
        return link_id, row_id
    raise RuntimeError("no free link ID after several attempts; CUSTOM_CHARSET too small?")


async def get_link_detail(conn: Connection, link_id: str) -> dict[str, Any] | None:
    return await conn.fetch_one(
        f"SELECT {LINK_DETAIL_COLUMNS} FROM link_connect WHERE linkID = %s",  # noqa: S608 - constant columns
        (link_id,),
    )


async def mark_one_time_used(conn: Connection, link_id: str) -> bool:
    changed = await conn.execute(
        "UPDATE link_connect SET oneTimeLink = %s WHERE linkID = %s AND oneTimeLink = %s",
        (domain.links.ONE_TIME_USED, link_id, domain.links.ONE_TIME_UNUSED),
    )
    return changed == 1


async def update_link_agent(conn: Connection, link_id: str, user_agent: str, os_name: str) -> None:
    await conn.execute(
        "UPDATE link_connect SET userAgent = %s, os = %s WHERE linkID = %s", (user_agent, os_name, link_id)
    )


async def user_links_of_room(conn: Connection | Database, room: str) -> list[dict[str, Any]]:
    return await conn.fetch_all(
        "SELECT id, mobile, share, userName, accuracy, latitude, longitude, errorLocation FROM link_connect "
        "WHERE room = %s AND userType = 'user' ORDER BY id DESC",
        (room,),
    )


async def link_row(conn: Connection, link_id: str) -> dict[str, Any] | None:
    """A plain read: a position write's own UPDATE is what holds the row until its commit."""
    return await conn.fetch_one(
        "SELECT id, linkID, room, userType, mobile, linkType FROM link_connect WHERE linkID = %s",
        (link_id,),
    )


async def update_position(conn: Connection, link_id: str, latitude: float, longitude: float, accuracy: str) -> None:
    await conn.execute(
        "UPDATE link_connect SET latitude = %s, longitude = %s, accuracy = %s WHERE linkID = %s",
        (latitude, longitude, accuracy, link_id),
    )


async def links_for_positions(conn: Connection, link_ids: Sequence[str]) -> dict[int, dict[str, Any]]:
    """The link of each requested ID (by index into ``link_ids``), for a batch of position updates.

    Matched in SQL, by the column's collation, exactly as a single ``WHERE linkID = %s`` would; a plain read:
    the batch's UPDATE is what holds the rows until commit."""
    if not link_ids:
        return {}
    keys = " UNION ALL ".join(["SELECT %s AS i, %s AS k"] * len(link_ids))
    rows = await conn.fetch_all(
        f"SELECT v.i, l.linkID, l.room, l.userType FROM ({keys}) v JOIN link_connect l ON l.linkID = v.k",  # noqa: S608
        [value for i, link_id in enumerate(link_ids) for value in (i, link_id)],
    )
    return {int(row["i"]): row for row in rows}


async def set_positions(conn: Connection, positions: Sequence[tuple[str, float, float, str]]) -> None:
    """Several links' current position in one statement: (stored linkID, latitude, longitude, accuracy text),
    one entry per link."""
    if not positions:
        return
    values = " UNION ALL ".join(["SELECT %s AS k, %s AS lat, %s AS lng, %s AS acc"] * len(positions))
    await conn.execute(
        f"UPDATE link_connect l JOIN ({values}) v ON l.linkID = v.k"  # noqa: S608 - constant text, marks
        " SET l.latitude = v.lat, l.longitude = v.lng, l.accuracy = v.acc",
        [value for position in positions for value in position],
    )


# ---- share links and a room's tenant ---------------------------------------------------------------------
async def room_service(conn: Connection, room: str) -> int | None:
    """The tenant of a room, from its links (each link records the tenant it was created for)."""
    row = await conn.fetch_one(
        "SELECT service FROM link_connect WHERE room = %s AND service IS NOT NULL ORDER BY id ASC LIMIT 1",
        (room,),
    )
    return int(row["service"]) if row else None


async def share_link_id(conn: Connection, room: str, user_name: str) -> str | None:
    row = await conn.fetch_one(
        "SELECT linkID FROM link_connect WHERE room = %s AND share = 1 AND userName = %s ORDER BY id ASC LIMIT 1",
        (room, user_name),
    )
    return row["linkID"] if row else None


# ---- passwords -------------------------------------------------------------------------------------------
async def link_credentials(conn: Connection, link_id: str) -> dict[str, Any] | None:
    return await conn.fetch_one(
        "SELECT linkID, room, userName, userType, linkType, mobile, isAdmin, requireJoinPermission, "
        "requirePassword, password FROM link_connect WHERE linkID = %s",
        (link_id,),
    )


async def replace_password_hash(conn: Connection, link_id: str, old: str, new: str) -> bool:
    """Store ``new`` only if the row still holds ``old`` (a concurrent check re-hashes once)."""
    changed = await conn.execute(
        "UPDATE link_connect SET password = %s WHERE linkID = %s AND password = %s", (new, link_id, old)
    )
    return changed == 1


async def reserve_password_attempt(redis: Redis, key: str, window_seconds: int) -> int:
    """Count one password attempt of the window (the window starts at its first attempt); returns the count."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window_seconds, nx=True)
        count, _ = await pipe.execute()
    return int(count)


async def clear_password_attempts(redis: Redis, key: str) -> None:
    await redis.delete(key)


# ---- link errors (POST /log) -------------------------------------------------------------------------------
async def set_link_error(conn: Connection, link_id: str, column: str, error: str) -> None:
    assert column in ("errorLocation", "errorVideo")
    await conn.execute(f"UPDATE link_connect SET {column} = %s WHERE linkID = %s", (error, link_id))  # noqa: S608


# ---- other link kinds (routes/link_kinds.py) -------------------------------------------------------------
async def previous_domain_index(conn: Connection, link_id: str) -> int | None:
    """The domain index of the newest other link (the original's round robin over a tenant's domains)."""
    row = await conn.fetch_one(
        "SELECT IFNULL(domainIndex, 0) AS domainIndex FROM link_connect WHERE linkID != %s ORDER BY id DESC LIMIT 1",
        (link_id,),
    )
    return int(row["domainIndex"]) if row else None


async def set_domain_index(conn: Connection, link_id: str, index: int) -> bool:
    """True when the link exists (its domainIndex is now ``index``)."""
    row = await conn.fetch_one("SELECT id FROM link_connect WHERE linkID = %s FOR UPDATE", (link_id,))
    if row is None:
        return False
    await conn.execute("UPDATE link_connect SET domainIndex = %s WHERE id = %s", (index, row["id"]))
    return True


async def link_service(conn: Connection, link_id: str) -> int | None:
    row = await conn.fetch_one("SELECT service FROM link_connect WHERE linkID = %s", (link_id,))
    return int(row["service"]) if row and row["service"] is not None else None


async def disable_links_of_type(conn: Connection, room: str, link_type: str) -> list[str]:
    """Disable the room's enabled links of a type; returns their IDs."""
    rows = await conn.fetch_all(
        "SELECT id, linkID FROM link_connect WHERE room = %s AND linkType = %s AND enabled = 1 FOR UPDATE",
        (room, link_type),
    )
    if rows:
        await disable_links(conn, [row["id"] for row in rows])
    return [row["linkID"] for row in rows if row["linkID"]]


async def update_patient_position(
    conn: Connection, link_id: str, latitude: float | None, longitude: float | None
) -> int:
    return await conn.execute(
        "UPDATE link_connect SET patientLatitude = %s, patientLongitude = %s, patientUpdated = %s WHERE linkID = %s",
        (latitude, longitude, now_local(), link_id),
    )


# ---- expiry sweep (events/jobs.py) -----------------------------------------------------------------------
# The earliest real DATETIME. Below it lie MySQL's zero dates ('0000-00-00 ...'), which migrated rows may hold and
# servicekit reads as NULL: such a link has no expiry (getdetail reads it the same way), so the sweep skips it.
EARLIEST_DATETIME = datetime(1000, 1, 1)
# "Not expired at now", the sweep's rule in SQL (NULL and zero dates never expire); args: (EARLIEST_DATETIME, now).
_NOT_EXPIRED = "(dtmExpired IS NULL OR dtmExpired < %s OR dtmExpired >= %s)"


async def lock_expired_links(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Enabled links past their expiry, locked (SKIP LOCKED: a racing sweep takes other rows or none)."""
    return await conn.fetch_all(
        "SELECT id, linkID, room, linkType, dtmExpired FROM link_connect"
        " WHERE dtmExpired >= %s AND dtmExpired < %s AND enabled = 1"
        " ORDER BY dtmExpired, id LIMIT %s FOR UPDATE SKIP LOCKED",
        (EARLIEST_DATETIME, now, limit),
    )


async def disable_links(conn: Connection, ids: list[int]) -> int:
    marks = ", ".join(["%s"] * len(ids))
    return await conn.execute(
        f"UPDATE link_connect SET enabled = 0 WHERE enabled = 1 AND id IN ({marks})",  # noqa: S608 - only marks
        tuple(ids),
    )


# ---- positions from room sockets (RPC_LINK_USER_POSITION) -------------------------------------------------
async def lock_link_in_room(conn: Connection, link_id: str, room: str) -> dict[str, Any] | None:
    """The link if it belongs to ``room`` (compared by the column's collation, as every room lookup is)."""
    return await conn.fetch_one(
        "SELECT id, linkID, room, userType FROM link_connect WHERE linkID = %s AND room = %s FOR UPDATE",
        (link_id, room),
    )


# ---- snapshot (rebuilding other services' read models) ----------------------------------------------------------
SNAPSHOT_COLUMNS = (
    "id, linkID, room, linkType, userType, userName, mobile, service, crmSender, recordId, share, oneTimeLink,"
    " dtmCreated, dtmExpired, userAgent, os, errorVideo, errorLocation, domainIndex, enabled, accuracy, latitude,"
    " longitude, patientLatitude, patientLongitude"
)


async def links_page(conn: Connection | Database, after: int, limit: int, now: datetime) -> list[dict[str, Any]]:
    """Every link_connect row with id > ``after``, by id: a room's Guest/Viewer share links (share = 1) and rows
    without a linkID (an original's installation holds some) included, which LINK_CREATED never announces; each
    consumer takes what its read model holds. ``_live``: not expired at ``now``, by the sweep's rule (_NOT_EXPIRED),
    as live_links_page decides it."""
    return await conn.fetch_all(
        f"SELECT {SNAPSHOT_COLUMNS}, {_NOT_EXPIRED} AS _live FROM link_connect"  # noqa: S608 - fixed SQL
        " WHERE id > %s ORDER BY id LIMIT %s",
        (EARLIEST_DATETIME, now, after, limit),
    )


async def live_links_page(conn: Connection | Database, after: int, limit: int, now: datetime) -> list[dict[str, Any]]:
    """links_page's rows with a linkID not expired at ``now`` (LinkState.live), only their id and linkID."""
    return await conn.fetch_all(
        "SELECT id, linkID FROM link_connect WHERE id > %s AND linkID IS NOT NULL"  # noqa: S608 - fixed SQL
        f" AND {_NOT_EXPIRED} ORDER BY id LIMIT %s",
        (after, EARLIEST_DATETIME, now, limit),
    )

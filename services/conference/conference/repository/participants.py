"""SQL of ``room_user`` (the users of rooms, incl. the Socket.IO presence writes) and ``color_scheme``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from servicekit.db import Connection, Database


# ---- colours ---------------------------------------------------------------------------------------------
async def colors(db: Database) -> list[str]:
    rows = await db.fetch_all("SELECT color_hex FROM color_scheme WHERE color_hex IS NOT NULL ORDER BY id")
    return [row["color_hex"] for row in rows]


# ---- users in rooms --------------------------------------------------------------------------------------
async def room_user(db: Connection | Database, room: str, identity: str) -> dict[str, Any] | None:
    return await db.fetch_one(
        "SELECT userName, color, userType, status FROM room_user WHERE room = %s AND identity = %s ORDER BY id LIMIT 1",
        (room, identity),
    )


async def add_user(
    db: Database,
    *,
    room: str,
    identity: str,
    user_name: str | None,
    user_type: str,
    color: str | None,
    conference: int,
    user_agent: str,
    now: datetime,
) -> None:
    """The original addUser: insert (status join) when (room, identity) is new, else update name and type."""
    async with db.transaction() as conn:
        await save_user(
            conn,
            room=room,
            identity=identity,
            user_name=user_name,
            user_type=user_type,
            color=color,
            conference=conference,
            user_agent=user_agent,
            now=now,
        )


async def save_user(
    conn: Connection,
    *,
    room: str,
    identity: str,
    user_name: str | None,
    user_type: str,
    color: str | None,
    conference: int,
    user_agent: str,
    now: datetime,
) -> bool:
    """:func:`add_user` inside the caller's transaction; True when a row was inserted or changed."""
    changed = await conn.execute(
        "UPDATE room_user SET userName = %s, userType = %s WHERE room = %s AND identity = %s",
        (user_name, user_type, room, identity),
    )
    if changed:
        return True
    exists = await conn.fetch_one(
        "SELECT id FROM room_user WHERE room = %s AND identity = %s LIMIT 1", (room, identity)
    )
    if exists:  # matched but unchanged (same name and type)
        return False
    await conn.execute(
        "INSERT INTO room_user (userAgent, room, identity, color, userName, userType, status, socketId,"
        " conference, dtmcreated, dtmupdated) VALUES (%s, %s, %s, %s, %s, %s, 'join', '', %s, %s, %s)",
        (user_agent, room, identity, color, user_name, user_type, conference, now, now),
    )
    return True


async def update_user_agent(db: Connection | Database, room: str, identity: str, user_agent: str) -> int:
    """Returns the number of rows changed (0: no such user, or the same user agent already)."""
    return await db.execute(
        "UPDATE room_user SET userAgent = %s WHERE room = %s AND identity = %s", (user_agent, room, identity)
    )


async def room_user_saved(conn: Connection | Database, room: str, identity: str) -> dict[str, Any] | None:
    """What PARTICIPANT_SAVED carries of (room, identity): its oldest row, as the token lookup reads it."""
    return await conn.fetch_one(
        "SELECT room, identity, userName, userType, color, userAgent FROM room_user"
        " WHERE room = %s AND identity = %s ORDER BY id LIMIT 1",
        (room, identity),
    )


async def room_user_detail(db: Connection | Database, room: str, identity: str) -> dict[str, Any] | None:
    return await db.fetch_one(
        "SELECT room, identity, color, userName, status, camera, microphone, userType, conference FROM room_user"
        " WHERE room = %s AND identity = %s ORDER BY id LIMIT 1",
        (room, identity),
    )


async def count_room_user(db: Connection | Database, room: str, identity: str) -> int:
    row = await db.fetch_one("SELECT count(*) AS n FROM room_user WHERE room = %s AND identity = %s", (room, identity))
    return int(row["n"]) if row else 0


async def update_user_name(conn: Connection, room: str, identity: str, user_name: str, now: datetime) -> int:
    return await conn.execute(
        "UPDATE room_user SET userName = %s, dtmupdated = %s WHERE room = %s AND identity = %s",
        (user_name, now, room, identity),
    )


# ---- the Socket.IO layer's writes (rpc.conference.presence.*), always by (room, identity) ------------------
_USER_CONNECTION = "SELECT camera, microphone, identity, userName, userType, conference FROM room_user"


async def lock_room_user(conn: Connection, room: str, identity: str) -> dict[str, Any] | None:
    """The oldest row of (room, identity), locked for the connecting transaction."""
    return await conn.fetch_one(
        "SELECT id FROM room_user WHERE room = %s AND identity = %s ORDER BY id LIMIT 1 FOR UPDATE",
        (room, identity),
    )


async def insert_connected_user(
    conn: Connection,
    *,
    room: str,
    identity: str,
    user_name: str | None,
    user_type: str | None,
    color: str | None,
    socket_id: str,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO room_user (room, identity, userName, userType, status, color, socketId,"
        " conference, dtmcreated, dtmupdated) VALUES (%s, %s, %s, %s, 'connection', %s, %s, 1, %s, %s)",
        (room, identity, user_name, user_type, color, socket_id, now, now),
    )


async def update_connected_user(
    conn: Connection,
    *,
    room: str,
    identity: str,
    user_name: str | None,
    color: str | None,
    socket_id: str,
    now: datetime,
) -> None:
    await conn.execute(
        "UPDATE room_user SET userName = %s, color = %s, socketId = %s, dtmupdated = %s"
        " WHERE room = %s AND identity = %s",
        (user_name, color, socket_id, now, room, identity),
    )


async def mark_connected(conn: Connection, room: str, identity: str, now: datetime) -> int:
    return await conn.execute(
        "UPDATE room_user SET status = 'connection', camera = 1, microphone = 1, dtmupdated = %s"
        " WHERE room = %s AND identity = %s",
        (now, room, identity),
    )


async def user_connection(conn: Connection, room: str, identity: str) -> dict[str, Any] | None:
    """What a room socket's handshake answers of (room, identity)."""
    return await conn.fetch_one(
        f"{_USER_CONNECTION} WHERE room = %s AND identity = %s ORDER BY id LIMIT 1",  # noqa: S608
        (room, identity),
    )


async def mark_disconnected(conn: Connection, room: str, identity: str, socket_id: str, now: datetime) -> int:
    """Only the row of that socket: a newer socket of the same identity keeps its status."""
    return await conn.execute(
        "UPDATE room_user SET status = 'disconnect', camera = 1, microphone = 1, dtmupdated = %s"
        " WHERE room = %s AND identity = %s AND socketId = %s",
        (now, room, identity, socket_id),
    )


async def update_presence(conn: Connection, room: str, identity: str, columns: list[tuple[str, Any]]) -> int:
    """Set ``columns`` ((name, value) pairs; names from the caller's fixed list) of (room, identity)."""
    assignments = ", ".join(f"{name} = %s" for name, _ in columns)  # names from the fixed list of the caller
    return await conn.execute(
        f"UPDATE room_user SET {assignments} WHERE room = %s AND identity = %s",  # noqa: S608
        (*[value for _, value in columns], room, identity),
    )


async def admit_socket_user(
    conn: Connection, *, room: str, socket_id: str, identity: str, user_name: str, now: datetime
) -> int:
    """A waiting-room guest's socket row gets its new identity and name, status ``join``."""
    return await conn.execute(
        "UPDATE room_user SET identity = %s, userName = %s, status = 'join', dtmupdated = %s"
        " WHERE room = %s AND socketId = %s",
        (identity, user_name, now, room, socket_id),
    )


async def room_users_page(conn: Connection | Database, after: int, limit: int) -> list[dict[str, Any]]:
    """What PARTICIPANT_SAVED carries, for the oldest row of each (room, identity) with id > ``after``, by id."""
    return await conn.fetch_all(
        "SELECT u.id AS _rowId, u.room, u.identity, u.userName, u.userType, u.color, u.userAgent FROM room_user u"
        " WHERE u.id > %s AND u.room IS NOT NULL AND u.identity IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM room_user o WHERE o.identity = u.identity AND o.room = u.room AND o.id < u.id)"
        " ORDER BY u.id LIMIT %s",
        (after, limit),
    )

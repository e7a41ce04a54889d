"""SQL of GET /room/picture's read models (``room_link_view``, ``room_file_view``), fed by link's and recording's
events."""

from __future__ import annotations

from typing import Any

from servicekit.db import Connection, Database

_LINK_ROOM_HEAD, _LINK_ROOM_ROW = "INSERT INTO room_link_view (linkID, room) VALUES", "(%s, %s)"
_LINK_ROOM_UPDATE = "ON DUPLICATE KEY UPDATE room = VALUES(room)"


async def save_link_room(conn: Connection, link_id: str, room: str) -> int:
    return await conn.execute(f"{_LINK_ROOM_HEAD} {_LINK_ROOM_ROW} {_LINK_ROOM_UPDATE}", (link_id, room))


async def save_link_rooms(conn: Connection, links: list[tuple[str, str]]) -> int:
    """save_link_room for many (linkID, room), in order, in multi-row statements (a rebuild's page)."""
    return await conn.execute_rows(_LINK_ROOM_HEAD, _LINK_ROOM_ROW, _LINK_ROOM_UPDATE, links)


async def save_file(conn: Connection, row: dict[str, Any]) -> int:
    return await conn.execute(
        "INSERT INTO room_file_view (fileId, linkId, filename, url, width, height, createdAt)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE linkId = VALUES(linkId),"
        " filename = VALUES(filename), url = VALUES(url), width = VALUES(width), height = VALUES(height),"
        " createdAt = VALUES(createdAt)",
        (row["fileId"], row["linkId"], row["filename"], row["url"], row["width"], row["height"], row["createdAt"]),
    )


async def room_pictures(db: Connection | Database, room: str) -> list[dict[str, Any]]:
    """Files uploaded through the links of ``room`` (the original: files JOIN link_connect ON linkId)."""
    return await db.fetch_all(
        "SELECT f.filename, f.url, f.width, f.height, f.createdAt FROM room_file_view f"
        " JOIN room_link_view l ON f.linkId = l.linkID WHERE l.room = %s ORDER BY f.fileId",
        (room,),
    )

"""SQL of chat (``chat_message``, the rooms' ``messageUnread`` flag), always parameterised."""

from __future__ import annotations

from typing import Any

from conference.domain import decode_files
from servicekit.clock import js_iso
from servicekit.db import Connection, Database

CHAT_COLUMNS = (
    "id, room, identity, chat_identity, userName, userType, text, color, files, replyToMessageId,"
    " replyToUserName, replyToText, dtmCreated"
)


async def chat_history(db: Database, room: str) -> list[dict[str, Any]]:
    rows = await db.fetch_all(
        f"SELECT {CHAT_COLUMNS} FROM chat_message WHERE room = %s ORDER BY dtmCreated ASC, id ASC",  # noqa: S608
        (room,),
    )
    for row in rows:
        row["dtmCreated"] = js_iso(row["dtmCreated"])
    decode_files(rows)
    return rows


async def unread_cases(db: Database, service: int) -> dict[str, Any]:
    """The original's unread counter and unread case list of a service (rooms with messageUnread = 1)."""
    counted = await db.fetch_one(
        "SELECT COUNT(*) AS n FROM room_conference JOIN case_data ON case_data.roomId = room_conference.id"
        " WHERE room_conference.messageUnread = 1 AND case_data.service = %s",
        (service,),
    )
    cases = await db.fetch_all(
        "SELECT case_data.caseId AS caseId FROM case_data JOIN room_conference ON room_conference.id ="
        " case_data.roomId WHERE room_conference.messageUnread = 1 AND case_data.service = %s ORDER BY case_data.id",
        (service,),
    )
    return {"number": int(counted["n"]) if counted else 0, "caseList": cases}


# ---- storing a message (rpc.conference.chat.store) ---------------------------------------------------------
async def room_for_chat(conn: Connection, room: str) -> dict[str, Any] | None:
    """The room's oldest row (id, status, messageUnread); a plain read (raise_message_unread decides races)."""
    return await conn.fetch_one(
        "SELECT id, status, messageUnread FROM room_conference WHERE room = %s ORDER BY id LIMIT 1",
        (room,),
    )


async def insert_chat_message(conn: Connection, values: tuple[Any, ...]) -> int:
    """``values``: room, identity, chat_identity, userName, userType, text, color, files, replyToMessageId,
    replyToUserName, replyToText, dtmCreated (in that order); returns the message id."""
    return await conn.insert(
        "INSERT INTO chat_message (room, identity, chat_identity, userName, userType, text, color, files,"
        " replyToMessageId, replyToUserName, replyToText, dtmCreated) VALUES"
        " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        values,
    )


async def admin_connected(conn: Connection, room: str) -> bool:
    """Whether an admin's socket is connected to the room."""
    admin = await conn.fetch_one(
        "SELECT id FROM room_user WHERE room = %s AND userType = 'admin' AND status = 'connection' LIMIT 1",
        (room,),
    )
    return admin is not None


async def raise_message_unread(conn: Connection, room_id: int) -> bool:
    """Set the room's unread flag; True only for the write that changed it (concurrent messages: exactly one)."""
    changed = await conn.execute(
        "UPDATE room_conference SET messageUnread = 1 WHERE id = %s AND NOT (messageUnread <=> 1)", (room_id,)
    )
    return changed == 1

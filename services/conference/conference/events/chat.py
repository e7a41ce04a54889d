"""Chat over NATS: ``rpc.conference.chat.store`` (realtime stores the chat messages sent over Socket.IO, realtime.md
§4.4) and the ROOM_DETAIL_CHANGED a patient's unread message raises.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec

from conference import domain, repository
from contracts.conference import ROOM_DETAIL_CHANGED, RPC_CHAT_STORE, ChatMessageStore, RoomChanged
from servicekit.bus import add_event
from servicekit.clock import now_local
from servicekit.db import Database
from servicekit.web import Runtime

# chat_message column sizes (tinytext is 255 bytes; utf8mb4 text is checked in characters, conservatively).
CHAT_LIMITS = {
    "room": 50,
    "identity": 100,
    "chat_identity": 100,
    "userName": 63,
    "userType": 50,
    "color": 100,
    "replyToUserName": 63,
    "replyToText": 63,
}
CHAT_TEXT_MAX = 16383  # text column: 65535 bytes / 4
CHAT_FILES_MAX = 16383


async def store_chat_message(db: Database, req: ChatMessageStore) -> dict[str, Any]:
    """Save a chat message sent over Socket.IO (realtime.md §4.4) and, for a patient's message while no admin
    is connected, raise the room's unread flag (reported back so realtime can emit ``messageUnread``)."""
    for name, limit in CHAT_LIMITS.items():
        value = getattr(req, name)
        if value is not None and len(value) > limit:
            raise msgspec.ValidationError(f"{name} must be at most {limit} characters")
    if not req.room.strip():
        raise msgspec.ValidationError("room is required")
    if req.text is not None and len(req.text) > CHAT_TEXT_MAX:
        raise msgspec.ValidationError(f"text must be at most {CHAT_TEXT_MAX} characters")
    files = "" if req.files is None else json.dumps(req.files, ensure_ascii=False, separators=(",", ":"))
    if len(files) > CHAT_FILES_MAX:
        raise msgspec.ValidationError(f"files must be at most {CHAT_FILES_MAX} characters of JSON")
    now = now_local()
    raised = False
    async with db.transaction() as conn:
        room = await repository.chat.room_for_chat(conn, req.room)
        message_id = await repository.chat.insert_chat_message(
            conn,
            (
                req.room,
                req.identity,
                req.chat_identity,
                req.userName,
                req.userType,
                req.text,
                req.color,
                files,
                req.replyToMessageId or 0,
                domain.reply_text(req.replyToUserName),
                domain.reply_text(req.replyToText),
                now,
            ),
        )
        if room is not None and req.userType == "user" and int(room["messageUnread"] or 0) != 1:
            if not await repository.chat.admin_connected(conn, req.room):
                await repository.chat.raise_message_unread(conn, room["id"])
                raised = True
                detail_row = await repository.rooms.room_detail_and_node(conn, req.room)
                if detail_row is not None:
                    detail = domain.room_detail(detail_row, datetime.now(UTC))
                    detail.pop("recordDuration", None)
                    changed = RoomChanged(
                        room=req.room,
                        roomType=detail_row["roomType"] or "",
                        status=detail_row["status"] or "",
                        detail=detail,
                        service=detail_row["service"],
                        recordStatus=detail_row["recordStatus"],
                    )
                    await add_event(conn, ROOM_DETAIL_CHANGED, changed)
    return {
        "messageId": message_id,
        "dtmcreated": now.strftime("%Y-%m-%d %H:%M:%S"),
        "roomStatus": None if room is None else room["status"],
        "messageUnread": raised,
    }


async def serve_requests(runtime: Runtime) -> None:
    """Answer ``rpc.conference.chat.store`` (realtime stores chat messages sent over Socket.IO)."""
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db

    async def on_store(request: ChatMessageStore) -> dict[str, Any]:
        return await store_chat_message(db, request)

    await runtime.bus.serve(RPC_CHAT_STORE, ChatMessageStore, on_store)

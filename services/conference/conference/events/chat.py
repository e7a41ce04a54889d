"""Chat over NATS: ``rpc.conference.chat.store`` (realtime stores the chat messages sent over Socket.IO, realtime.md
§4.4) and the ROOM_DETAIL_CHANGED a patient's unread message raises.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from conference import domain, repository
from contracts.conference import ROOM_DETAIL_CHANGED, RPC_CHAT_STORE, ChatMessageStore, RoomChanged
from servicekit.batching import GroupCommit
from servicekit.bus import add_event
from servicekit.clock import now_local
from servicekit.db import Connection, Database
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


async def store_chat_message(runtime: Runtime, req: ChatMessageStore) -> dict[str, Any]:
    """Save a chat message sent over Socket.IO (realtime.md §4.4) and, for a patient's message while no admin
    is connected, raise the room's unread flag (reported back so realtime can emit ``messageUnread``). Checked
    here, then group-committed with the other messages arriving now (:func:`chat_writer`)."""
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
    return await runtime.extras["chat_writer"].submit((req, files, now_local()))


def chat_writer(db: Database) -> GroupCommit[tuple[ChatMessageStore, str, datetime], dict[str, Any]]:
    """The group commit of chat messages (servicekit.batching): a batch's messages in one transaction, in order."""

    async def apply(conn: Connection, items: Sequence[tuple[ChatMessageStore, str, datetime]]) -> list[dict[str, Any]]:
        return [await _store(conn, req, files, now) for req, files, now in items]

    return GroupCommit(db, "conference-chat", apply)


async def _store(conn: Connection, req: ChatMessageStore, files: str, now: datetime) -> dict[str, Any]:
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
    raised = False
    if room is not None and req.userType == "user" and int(room["messageUnread"] or 0) != 1:
        # The conditional UPDATE decides the race: of concurrent messages only one raises the flag.
        if not await repository.chat.admin_connected(conn, req.room):
            raised = await repository.chat.raise_message_unread(conn, room["id"])
        if raised:
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

    async def on_store(request: ChatMessageStore) -> dict[str, Any]:
        return await store_chat_message(runtime, request)

    await runtime.bus.serve(RPC_CHAT_STORE, ChatMessageStore, on_store)

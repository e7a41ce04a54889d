"""Chat messages, unread counters and notifications: SQL (always parameterised), row shaping, and the hub
feeding the Server-Sent Events stream ``/notification/events``.

The hub listens to ``conference.notification.created`` with a plain NATS subscription (no queue group), so
every replica sees every new notification, whichever replica wrote it, and passes it to its own SSE clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec

from conference import domain, repository
from contracts.conference import (
    NOTIFICATION_CREATED,
    NOTIFICATION_READ,
    ROOM_DETAIL_CHANGED,
    RPC_CHAT_STORE,
    ChatMessageStore,
    NotificationChanged,
    RoomChanged,
)
from servicekit.bus import Event, add_event
from servicekit.clock import js_iso, now_local
from servicekit.db import Database
from servicekit.web import Runtime

log = logging.getLogger(__name__)

CHAT_COLUMNS = (
    "id, room, identity, chat_identity, userName, userType, text, color, files, replyToMessageId,"
    " replyToUserName, replyToText, dtmCreated"
)
NOTIFICATION_COLUMNS = (
    "notificationId, userName, mobile, message, caseId, `read`, notificationType, relatedUrl, dtmRead, dtmCreated"
)


# ---- chat ------------------------------------------------------------------------------------------------
def decode_files(rows: list[dict[str, Any]]) -> None:
    """The original parsed each row's ``files`` JSON text in place; ``""`` and NULL stay as they are, and a
    parse error stops parsing of the remaining rows (which keep their text)."""
    for row in rows:
        files = row.get("files")
        if files is None or files == "":
            continue
        try:
            row["files"] = json.loads(files)
        except ValueError:
            log.warning("chat files not JSON; later rows left as text", extra={"id": row.get("id")})
            return


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


def _reply_text(value: str | None) -> str:
    # The original interpolated missing reply fields as the literal 'null' (§4.1); frontends expect it.
    return "null" if value is None else value


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
        room = await conn.fetch_one(
            "SELECT id, status, messageUnread FROM room_conference WHERE room = %s ORDER BY id LIMIT 1 FOR UPDATE",
            (req.room,),
        )
        message_id = await conn.insert(
            "INSERT INTO chat_message (room, identity, chat_identity, userName, userType, text, color, files,"
            " replyToMessageId, replyToUserName, replyToText, dtmCreated) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
                _reply_text(req.replyToUserName),
                _reply_text(req.replyToText),
                now,
            ),
        )
        if room is not None and req.userType == "user" and int(room["messageUnread"] or 0) != 1:
            admin = await conn.fetch_one(
                "SELECT id FROM room_user WHERE room = %s AND userType = 'admin' AND status = 'connection' LIMIT 1",
                (req.room,),
            )
            if admin is None:
                await conn.execute("UPDATE room_conference SET messageUnread = 1 WHERE id = %s", (room["id"],))
                raised = True
                detail_row = await repository.room_detail_and_node(conn, req.room)
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


# ---- notifications ---------------------------------------------------------------------------------------
def notification_json(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["dtmRead"] = js_iso(row.get("dtmRead"))
    out["dtmCreated"] = js_iso(row.get("dtmCreated"))
    return out


async def notification_by_id(db: Database, notification_id: int) -> dict[str, Any] | None:
    row = await db.fetch_one(
        f"SELECT {NOTIFICATION_COLUMNS} FROM notification WHERE notificationId = %s",  # noqa: S608
        (notification_id,),
    )
    return None if row is None else notification_json(row)


async def unread_notifications(db: Database, limit: int) -> list[dict[str, Any]]:
    rows = await db.fetch_all(
        f"SELECT {NOTIFICATION_COLUMNS} FROM notification WHERE `read` = 0"  # noqa: S608
        " ORDER BY dtmCreated DESC, notificationId DESC LIMIT %s",
        (limit,),
    )
    return [notification_json(row) for row in rows]


async def list_notifications(
    db: Database,
    *,
    page: int,
    limit: int,
    read: int | None,
    notification_type: str | None,
    user_name: str | None,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    clauses: list[str] = []
    args: list[Any] = []
    if read is not None:
        clauses.append("`read` = %s")
        args.append(read)
    if notification_type:
        clauses.append("notificationType = %s")
        args.append(notification_type)
    if user_name:
        clauses.append("userName = %s")
        args.append(user_name)
    if start is not None:
        clauses.append("dtmCreated >= %s")
        args.append(start)
    if end is not None:
        clauses.append("dtmCreated <= %s")
        args.append(end)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    total_row = await db.fetch_one(f"SELECT COUNT(*) AS n FROM notification {where}", args)  # noqa: S608
    total = int(total_row["n"]) if total_row else 0
    rows = await db.fetch_all(
        f"SELECT {NOTIFICATION_COLUMNS} FROM notification {where}"  # noqa: S608
        " ORDER BY dtmCreated DESC, notificationId DESC LIMIT %s OFFSET %s",
        (*args, limit, (page - 1) * limit),
    )
    return {
        "success": True,
        "data": [notification_json(row) for row in rows],
        "pagination": {"page": page, "limit": limit, "total": total, "totalPages": -(-total // limit)},
    }


async def create_notification(db: Database, values: dict[str, Any]) -> dict[str, Any]:
    """Insert a notification and its ``conference.notification.created`` event in one transaction."""
    async with db.transaction() as conn:
        new_id = await conn.insert(
            "INSERT INTO notification (userName, mobile, message, caseId, `read`, notificationType, relatedUrl,"
            " dtmCreated) VALUES (%s, %s, %s, %s, 0, %s, %s, %s)",
            (
                values.get("userName"),
                values.get("mobile"),
                values["message"],
                values.get("caseId"),
                values.get("notificationType"),
                values.get("relatedUrl"),
                now_local(),
            ),
        )
        row = await conn.fetch_one(
            f"SELECT {NOTIFICATION_COLUMNS} FROM notification WHERE notificationId = %s",  # noqa: S608
            (new_id,),
        )
        assert row is not None
        notification = notification_json(row)
        await add_event(conn, NOTIFICATION_CREATED, msgspec.convert(notification, NotificationChanged))
    return notification


async def set_notification_read(db: Database, notification_id: int, read: int) -> dict[str, Any] | None:
    """Mark read (dtmRead = now) or unread (dtmRead = NULL); None when the notification does not exist."""
    async with db.transaction() as conn:
        changed = await conn.execute(
            "UPDATE notification SET `read` = %s, dtmRead = %s WHERE notificationId = %s",
            (read, now_local() if read == 1 else None, notification_id),
        )
        row = await conn.fetch_one(
            f"SELECT {NOTIFICATION_COLUMNS} FROM notification WHERE notificationId = %s",  # noqa: S608
            (notification_id,),
        )
        if row is None:
            return None
        notification = notification_json(row)
        await add_event(conn, NOTIFICATION_READ, msgspec.convert(notification, NotificationChanged))
    return {"notificationId": notification_id, "read": read, "affectedRows": changed, "notification": notification}


async def notification_stats(db: Database) -> dict[str, int]:
    row = await db.fetch_one("SELECT COUNT(*) AS total, COALESCE(SUM(`read` = 0), 0) AS unread FROM notification")
    total = int(row["total"]) if row else 0
    unread = int(row["unread"]) if row else 0
    return {"total": total, "unread": unread, "read": total - unread}


# ---- the SSE hub -----------------------------------------------------------------------------------------
QUEUE_SIZE = 100
_event_decoder = msgspec.json.Decoder(Event)


class NotificationHub:
    """Hands every new notification (from any replica, via NATS) to this replica's SSE clients."""

    def __init__(self) -> None:
        self._clients: set[asyncio.Queue[dict[str, Any]]] = set()
        self._subscription: Any = None
        self._lock = asyncio.Lock()

    @property
    def active(self) -> int:
        return len(self._clients)

    async def start(self, nc: Any) -> None:
        async with self._lock:
            if self._subscription is None:
                self._subscription = await nc.subscribe(NOTIFICATION_CREATED, cb=self._on_message)
                await nc.flush(timeout=2)  # registered before the first client's stream starts

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def _on_message(self, msg: Any) -> None:
        try:
            event = _event_decoder.decode(msg.data)
        except msgspec.DecodeError:
            log.warning("undecodable notification event dropped")
            return
        self.publish(event.data)

    def publish(self, notification: dict[str, Any]) -> None:
        for queue in list(self._clients):
            try:
                queue.put_nowait(notification)
            except asyncio.QueueFull:  # a client that does not read loses old news, never blocks the others
                log.warning("SSE client queue full; notification dropped")

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._clients.add(queue)
        try:
            yield queue
        finally:
            self._clients.discard(queue)


async def serve_requests(runtime: Runtime) -> None:
    """Answer ``rpc.conference.chat.store`` (realtime stores chat messages sent over Socket.IO)."""
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db

    async def on_store(request: ChatMessageStore) -> dict[str, Any]:
        return await store_chat_message(db, request)

    await runtime.bus.serve(RPC_CHAT_STORE, ChatMessageStore, on_store)

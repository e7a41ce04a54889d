"""room_user writes of the Socket.IO layer, answered for realtime over NATS request/reply (realtime.md §4, §6).

* ``RPC_PRESENCE_CONNECT``: a room socket's handshake (insert/update of the user, status ``connection``).
* ``RPC_PRESENCE_DISCONNECT``: status ``disconnect`` unless a newer socket of the same identity took over.
* ``RPC_PRESENCE_UPDATE``: camera / microphone / conference / userName of one user of one room.
* ``RPC_PRESENCE_ADMIT``: a waiting-room guest let in by an admin (new identity and token).
* ``RPC_CHAT_HISTORY``: the `chat-history` rows of a room.
Every room_user write publishes PARTICIPANT_SAVED in its transaction (``events.participants.publish_room_user``).
Every lookup is by (room, identity) — the original's identity-only updates could touch another room's row. The SQL
is in ``repository.participants``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from conference import domain, repository
from conference.events.participants import publish_room_user
from conference.events.rooms import Conference
from contracts.conference import (
    RPC_CHAT_HISTORY,
    RPC_PRESENCE_ADMIT,
    RPC_PRESENCE_CONNECT,
    RPC_PRESENCE_DISCONNECT,
    RPC_PRESENCE_UPDATE,
    ChatHistoryQuery,
    ParticipantTokenRequest,
    PresenceAdmit,
    PresenceConnect,
    PresenceDisconnect,
    PresenceUpdate,
)
from servicekit.clock import now_local
from servicekit.db import Database
from servicekit.web import Runtime

# room_user column sizes: longer values are a bad request, not a database error.
_LIMITS = {"room": 100, "identity": 50, "userName": 100, "userType": 50, "color": 50, "socketId": 50}


def _check(**values: str | None) -> None:
    for name, value in values.items():
        if value is not None and len(value) > _LIMITS[name]:
            raise msgspec.ValidationError(f"{name} must be at most {_LIMITS[name]} characters")
    if not (values.get("room") or "").strip():
        raise msgspec.ValidationError("room is required")


def _flag(name: str, value: int | None) -> int | None:
    if value is not None and value not in (0, 1):
        raise msgspec.ValidationError(f"{name} must be 0 or 1")
    return value


async def connect(db: Database, req: PresenceConnect) -> dict[str, Any] | None:
    _check(room=req.room, identity=req.identity, socketId=req.socketId, userName=req.userName,
           userType=req.userType, color=req.color)  # fmt: skip
    if not req.identity.strip():
        raise msgspec.ValidationError("identity is required")
    now = now_local()
    async with db.transaction() as conn:
        if req.hasMetadata:
            row = await repository.participants.lock_room_user(conn, req.room, req.identity)
            if row is None:
                await repository.participants.insert_connected_user(
                    conn, room=req.room, identity=req.identity, user_name=req.userName, user_type=req.userType,
                    color=req.color, socket_id=req.socketId, now=now,
                )  # fmt: skip
            else:
                await repository.participants.update_connected_user(
                    conn, room=req.room, identity=req.identity, user_name=req.userName, color=req.color,
                    socket_id=req.socketId, now=now,
                )  # fmt: skip
        changed = await repository.participants.mark_connected(conn, req.room, req.identity, now)
        if req.hasMetadata or changed:
            await publish_room_user(conn, req.room, req.identity)
        return await repository.participants.user_connection(conn, req.room, req.identity)


async def disconnect(db: Database, req: PresenceDisconnect) -> dict[str, bool]:
    _check(room=req.room, identity=req.identity, socketId=req.socketId)
    async with db.transaction() as conn:
        changed = await repository.participants.mark_disconnected(
            conn, req.room, req.identity, req.socketId, now_local()
        )
        if changed:
            await publish_room_user(conn, req.room, req.identity)
    return {"updated": bool(changed)}


async def update(db: Database, req: PresenceUpdate) -> dict[str, int]:
    _check(room=req.room, identity=req.identity, userName=req.userName)
    values: dict[str, Any] = {
        "camera": _flag("camera", req.camera),
        "microphone": _flag("microphone", req.microphone),
        "conference": _flag("conference", req.conference),
        "userName": req.userName,
    }
    columns = [(name, value) for name, value in values.items() if value is not None]
    if not columns:
        return {"updated": 0}
    async with db.transaction() as conn:
        changed = await repository.participants.update_presence(conn, req.room, req.identity, columns)
        if changed:
            await publish_room_user(conn, req.room, req.identity)
    return {"updated": changed}


async def admit(db: Database, conference: Conference, req: PresenceAdmit) -> dict[str, Any]:
    _check(room=req.room, socketId=req.socketId, userName=req.userName)
    user_name = req.userName or domain.generated_user_name()
    issued = await conference.participant_token(
        ParticipantTokenRequest(room=req.room, userName=user_name, userType="user", roomJoin=True)
    )
    identity = issued["identity"]
    if req.socketId.strip():
        async with db.transaction() as conn:
            changed = await repository.participants.admit_socket_user(
                conn, room=req.room, socket_id=req.socketId, identity=identity, user_name=user_name, now=now_local()
            )
            if changed:
                await publish_room_user(conn, req.room, identity)
    return {"identity": identity, "userName": user_name, "token": issued["token"]}


async def serve_requests(runtime: Runtime, conference: Conference) -> None:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db

    async def on_connect(req: PresenceConnect) -> dict[str, Any] | None:
        return await connect(db, req)

    async def on_disconnect(req: PresenceDisconnect) -> dict[str, bool]:
        return await disconnect(db, req)

    async def on_update(req: PresenceUpdate) -> dict[str, int]:
        return await update(db, req)

    async def on_admit(req: PresenceAdmit) -> dict[str, Any]:
        return await admit(db, conference, req)

    async def on_history(req: ChatHistoryQuery) -> list[dict[str, Any]] | bool:
        _check(room=req.room)
        return await repository.chat.chat_history(db, req.room) or False

    await runtime.bus.serve(RPC_PRESENCE_CONNECT, PresenceConnect, on_connect)
    await runtime.bus.serve(RPC_PRESENCE_DISCONNECT, PresenceDisconnect, on_disconnect)
    await runtime.bus.serve(RPC_PRESENCE_UPDATE, PresenceUpdate, on_update)
    await runtime.bus.serve(RPC_PRESENCE_ADMIT, PresenceAdmit, on_admit)
    await runtime.bus.serve(RPC_CHAT_HISTORY, ChatHistoryQuery, on_history)

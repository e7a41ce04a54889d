"""What conference answers over NATS (request/reply) and the events it publishes.

* ``RPC_ROOM_ENSURE`` (EnsureRoom): create the room when no row has that name (once, even under concurrent
  calls), turn a ``location`` room into an open conference for a video/conference link; publishes
  ``ROOM_CREATED`` / ``ROOM_UPDATED`` (RoomChanged) through the outbox in the same transaction.
* ``RPC_ROOM_DETAIL`` (RoomQuery): the original getRoomDetail object.
* ``RPC_PARTICIPANT_TOKEN`` (ParticipantTokenRequest): the original generateUser.
Reply shapes are documented in ``servicekit.events``.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from conference import domain, repository
from conference.livekit_nodes import LiveKitNodes
from servicekit.bus import add_event
from servicekit.clock import now_local, parse_lifetime
from servicekit.db import Database
from servicekit.events import (
    ROOM_CREATED,
    ROOM_UPDATED,
    RPC_PARTICIPANT_TOKEN,
    RPC_ROOM_DETAIL,
    RPC_ROOM_ENSURE,
    EnsureRoom,
    ParticipantTokenRequest,
    RoomChanged,
    RoomQuery,
)
from servicekit.web import Runtime

log = logging.getLogger(__name__)

COLOR_CACHE_SECONDS = 300.0


class ColorCache:
    """color_scheme in memory (the original ran ORDER BY RAND() on every token); reloaded every 5 minutes."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._colors: list[str] = []
        self._loaded_at = float("-inf")

    async def pick(self) -> str | None:
        if time.monotonic() - self._loaded_at > COLOR_CACHE_SECONDS or not self._colors:
            self._colors = await repository.colors(self.db)
            self._loaded_at = time.monotonic()
        return domain.pick_color(self._colors)


class Conference:
    """The service's request handlers, sharing the DB, LiveKit nodes and the colour cache."""

    def __init__(self, db: Database, nodes: LiveKitNodes, room_lifetime: str) -> None:
        self.db = db
        self.nodes = nodes
        self.room_lifetime = parse_lifetime(room_lifetime)
        self.colors = ColorCache(db)

    # ---- rooms -------------------------------------------------------------------------------------------
    async def detail(self, room: str) -> dict[str, Any] | None:
        row = await repository.room_detail_row(self.db, room)
        return None if row is None else domain.room_detail(row, datetime.now(UTC))

    async def room_detail(self, query: RoomQuery) -> dict[str, Any]:
        detail = await self.detail(query.room)
        if detail is None:
            raise LookupError(f"room {query.room!r} does not exist")
        return detail

    async def ensure_room(self, req: EnsureRoom) -> dict[str, Any]:
        room = req.room
        if not room.strip() or len(room) > domain.ROOM_NAME_MAX:
            raise msgspec.ValidationError(f"room must be 1..{domain.ROOM_NAME_MAX} characters")
        node = await self.nodes.for_room(None)
        created = False
        async with repository.room_creation(self.db, room) as conn:
            head = await repository.room_head(conn, room)
            now = now_local()
            if head is None:
                status, room_type = domain.room_status_and_type(req.linkType)
                await repository.insert_room(
                    conn,
                    room=room,
                    status=status,
                    room_type=room_type,
                    service=req.service,
                    auto_record=req.autoRecord,
                    record_type=req.recordType,
                    encoding_options_preset=req.encodingOptionsPreset,
                    chat_enabled=req.chatEnabled,
                    web_socket_url="",
                    user_agent=req.userAgent,
                    node_id=node.id,
                    now=now,
                    expires=now + self.room_lifetime,
                )
                await add_event(conn, ROOM_CREATED, RoomChanged(room=room, roomType=room_type, status=status))
                created = True
            elif domain.converts_location_room(head["roomType"], req.linkType):
                await repository.open_as_conference(conn, room, now)
                await add_event(conn, ROOM_UPDATED, RoomChanged(room=room, roomType="conference", status="open"))
        if created:
            log.info("room created", extra={"room": room, "node": node.name})
            self.nodes.create_room_later(node, room)
        detail = await self.detail(room)
        return {"created": created, "room": detail}

    # ---- participants ------------------------------------------------------------------------------------
    async def participant_token(self, req: ParticipantTokenRequest) -> dict[str, Any]:
        head = await repository.room_detail_and_node(self.db, req.room)
        if head is None:
            raise LookupError(f"room {req.room!r} does not exist")
        node = await self.nodes.for_room(head["nodeLivekitId"])

        user_name = req.userName
        color = req.color
        if req.useKnownUser and req.identity and req.identity != "null":
            known = await repository.room_user(self.db, req.room, req.identity)
            if known:
                color = color or known["color"]
                if user_name is None:
                    user_name = known["userName"]
            if user_name is None:
                user_name = domain.generated_user_name()
        if color is None:
            color = await self.colors.pick()

        identity = domain.participant_identity(req.identity, req.userType)
        user_type = req.userType or "user"
        user_name = domain.participant_user_name(user_name)
        conference = 1 if req.conference is None else req.conference
        metadata = domain.participant_metadata(
            user_name=user_name,
            user_type=user_type,
            color=color,
            link_type=req.linkType,
            mobile=req.mobile,
            link_id=req.linkID,
        )
        token = domain.participant_token(
            node.key,
            identity=identity,
            user_name=user_name,
            metadata=metadata,
            room=req.room,
            room_join=req.roomJoin,
        )
        now = now_local()
        if req.isAddUser:
            _check_room_user_lengths(identity=identity, userName=user_name, userType=user_type, color=color)
            await repository.add_user(
                self.db,
                room=req.room,
                identity=identity,
                user_name=user_name,
                user_type=user_type,
                color=color,
                conference=conference,
                user_agent=req.userAgent,
                now=now,
            )
        else:
            await repository.update_user_agent(self.db, req.room, identity, req.userAgent)

        reply: dict[str, Any] = {"identity": identity}
        if user_name is not None:  # the original's JSON dropped an undefined userName
            reply["userName"] = user_name
        reply.update({"token": token, "conference": conference, "color": color})
        if req.withParticipants:
            reply["listParticipants"] = await self.nodes.list_participants(node, req.room)
        if req.withRoom:
            reply["room"] = domain.room_detail(head, datetime.now(UTC))
        return reply


# room_user column sizes: an over-long value is a bad request, not a database error.
_ROOM_USER_LIMITS = {"identity": 50, "userName": 100, "userType": 50, "color": 50}


def _check_room_user_lengths(**values: str | None) -> None:
    for name, value in values.items():
        if value is not None and len(value) > _ROOM_USER_LIMITS[name]:
            raise msgspec.ValidationError(f"{name} must be at most {_ROOM_USER_LIMITS[name]} characters")


async def serve_requests(runtime: Runtime, conference: Conference) -> None:
    assert runtime.bus is not None
    await runtime.bus.serve(RPC_ROOM_ENSURE, EnsureRoom, conference.ensure_room)
    await runtime.bus.serve(RPC_ROOM_DETAIL, RoomQuery, conference.room_detail)
    await runtime.bus.serve(RPC_PARTICIPANT_TOKEN, ParticipantTokenRequest, conference.participant_token)

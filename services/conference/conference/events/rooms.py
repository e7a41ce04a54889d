"""Rooms over NATS: the request/reply calls conference answers (served by :func:`serve_requests`), the RoomChanged
events every room change publishes, and the room writes of the /room/* routes and sweeps with their events.

* ``RPC_ROOM_ENSURE`` (EnsureRoom): create the room when no row has that name (once, even under concurrent
  calls), turn a ``location`` room into an open conference for a video/conference link; publishes
  ``ROOM_CREATED`` / ``ROOM_UPDATED`` (RoomChanged) through the outbox in the same transaction.
* ``RPC_ROOM_DETAIL`` (RoomQuery): the original getRoomDetail object.
* ``RPC_ROOM_SOCKET_LIVE`` (RoomQuery): whether ``/{room}`` takes socket connections (realtime, on a miss).
* ``RPC_PARTICIPANT_TOKEN`` (ParticipantTokenRequest): the original generateUser.
* ``RPC_CONFERENCE_PALETTE`` (PaletteQuery): the colour list of ``color_scheme`` (link picks colours from it).
* ``RPC_CASE_OF_ROOM`` (RoomQuery): the room's first case, or null (telemetry's GET /car/task merges it).
* ``RPC_CASE_OPEN`` (CaseOpen): open the case of link's IDEMS room, once per (service, room); CASE_CREATED.
Reply shapes are documented in ``contracts.conference``.

Read models of other services (link's ``/link/getdetail`` answers from them without asking conference):
* EVERY change of a room_conference row must publish a RoomChanged carrying ``detail`` in the changing
  transaction: call :func:`publish_room_detail` with ROOM_CREATED / ROOM_UPDATED / ROOM_CLOSED, or with
  ROOM_DETAIL_CHANGED for changes without a subject of their own (record status, messageUnread, ...).
* EVERY insert/update of a room_user row must publish PARTICIPANT_SAVED: call
  ``conference.events.participants.publish_room_user`` in the changing transaction.
* Link hands over the room_user user-agent write of getdetail as LINK_PARTICIPANT_SEEN, applied by
  ``conference.events.consumers``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from conference import domain, repository
from conference.clients import LiveKitNodes
from conference.events import cases
from conference.events.participants import publish_room_user
from contracts.conference import (
    ROOM_CLOSED,
    ROOM_CREATED,
    ROOM_DETAIL_CHANGED,
    ROOM_TYPE_CHANGED,
    ROOM_UPDATED,
    RPC_CASE_OF_ROOM,
    RPC_CASE_OPEN,
    RPC_CONFERENCE_PALETTE,
    RPC_PARTICIPANT_TOKEN,
    RPC_ROOM_DETAIL,
    RPC_ROOM_ENSURE,
    RPC_ROOM_SOCKET_LIVE,
    CaseOpen,
    EnsureRoom,
    PaletteQuery,
    ParticipantTokenRequest,
    RoomChanged,
    RoomQuery,
)
from servicekit.bus import add_event
from servicekit.clock import now_local, parse_lifetime
from servicekit.db import Connection, Database, LockTimeout, retry_rolled_back
from servicekit.web import Runtime, fail

log = logging.getLogger(__name__)

COLOR_CACHE_SECONDS = 300.0
JOIN_LOCK_TIMEOUT_SECONDS = 10


class ColorCache:
    """color_scheme in memory (the original ran ORDER BY RAND() on every token); reloaded every 5 minutes."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._colors: list[str] = []
        self._loaded_at = float("-inf")

    async def pick(self) -> str | None:
        if time.monotonic() - self._loaded_at > COLOR_CACHE_SECONDS or not self._colors:
            self._colors = await repository.participants.colors(self.db)
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
        row = await repository.rooms.room_detail_row(self.db, room)
        return None if row is None else domain.room_detail(row, datetime.now(UTC))

    async def room_detail(self, query: RoomQuery) -> dict[str, Any]:
        detail = await self.detail(query.room)
        if detail is None:
            raise LookupError(f"room {query.room!r} does not exist")
        return detail

    async def room_socket_live(self, query: RoomQuery) -> dict[str, Any]:
        return {"room": query.room, "live": await repository.rooms.room_socket_live(self.db, query.room, now_local())}

    async def ensure_room(self, req: EnsureRoom) -> dict[str, Any]:
        room = req.room
        if not room.strip() or len(room) > domain.ROOM_NAME_MAX:
            raise msgspec.ValidationError(f"room must be 1..{domain.ROOM_NAME_MAX} characters")
        node = await self.nodes.for_room(None)
        created = False
        async with repository.rooms.room_creation(self.db, room) as conn:
            head = await repository.rooms.room_head(conn, room)
            now = now_local()
            if head is None:
                status, room_type = domain.room_status_and_type(req.linkType)
                await repository.rooms.insert_room(
                    conn, req, status, room_type, node_id=node.id, now=now, expires=now + self.room_lifetime
                )
                await publish_room_detail(conn, self.nodes, ROOM_CREATED, room)
                created = True
            elif domain.converts_location_room(head["roomType"], req.linkType):
                await repository.rooms.open_as_conference(conn, room, now)
                await publish_room_detail(conn, self.nodes, ROOM_UPDATED, room)
        if created:
            log.info("room created", extra={"room": room, "node": node.name})
            self.nodes.create_room_later(node, room)
        detail = await self.detail(room)
        return {"created": created, "room": detail}

    # ---- participants ------------------------------------------------------------------------------------
    async def participant_token(self, req: ParticipantTokenRequest) -> dict[str, Any]:
        head = await repository.rooms.room_detail_and_node(self.db, req.room)
        if head is None:
            raise LookupError(f"room {req.room!r} does not exist")
        node = await self.nodes.for_room(head["nodeLivekitId"])

        user_name = req.userName
        color = req.color
        if req.useKnownUser:
            if req.identity and req.identity != "null":
                known = await repository.participants.room_user(self.db, req.room, req.identity)
                if known:
                    color = color or known["color"]
                    if user_name is None:
                        user_name = known["userName"]
            if user_name is None:  # getdetail of a link without userName: the original generated one
                user_name = domain.generated_user_name()
        if color is None:
            color = await self.colors.pick()

        identity = domain.participant_identity(req.identity, req.userType)
        user_type = req.userType or "user"
        user_name = domain.participant_user_name(user_name)
        conference = 1 if req.conference is None else req.conference
        metadata = domain.participant_metadata(
            user_name=user_name, user_type=user_type, color=color, link_type=req.linkType, mobile=req.mobile,
            link_id=req.linkID,
        )  # fmt: skip
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

            # Joins of one room one at a time (across replicas): the update-then-insert of concurrent joins took
            # gap locks that deadlocked each other. A deadlock with another writer still rolls back: run again.
            lock = "conference.room_user." + hashlib.sha1(req.room.encode(), usedforsecurity=False).hexdigest()

            async def save() -> None:
                async with self.db.locked_transaction(lock, JOIN_LOCK_TIMEOUT_SECONDS) as conn:
                    saved = await repository.participants.save_user(
                        conn,
                        room=req.room,
                        identity=identity,
                        user_name=user_name,
                        user_type=user_type,
                        color=color,
                        conference=conference,
                        user_agent=req.userAgent,
                        now=now,
                    )
                    if saved:
                        await publish_room_user(conn, req.room, identity)

            try:
                await retry_rolled_back(save)
            except LockTimeout as exc:
                raise fail("the room is busy: try again", 503) from exc
        else:
            async with self.db.transaction() as conn:
                if await repository.participants.update_user_agent(conn, req.room, identity, req.userAgent):
                    await publish_room_user(conn, req.room, identity)

        reply: dict[str, Any] = {"identity": identity}
        if user_name is not None:  # the original's JSON dropped an undefined userName
            reply["userName"] = user_name
        reply.update({"token": token, "conference": conference, "color": color})
        if req.withParticipants:
            reply["listParticipants"] = await self.nodes.list_participants(node, req.room)
        if req.withRoom:
            reply["room"] = domain.room_detail(head, datetime.now(UTC))
        return reply

    async def palette(self, _: PaletteQuery) -> list[str]:
        return await repository.participants.colors(self.db)

    # ---- cases -------------------------------------------------------------------------------------------
    async def case_of_room(self, query: RoomQuery) -> dict[str, Any] | None:
        """None (reply data null) when the room has no case, or no such room."""
        row = await repository.cases.first_case_of_room(self.db, query.room)
        return None if row is None else domain.case_of_room_json(row)

    async def open_case(self, req: CaseOpen) -> dict[str, Any]:
        """Link's IDEMS case (POST /link/idems); a retry of the same request answers the case it opened."""
        _check_case_open(req)
        opened = await cases.open_case(self.db, req)
        if opened is None:
            raise msgspec.ValidationError(f"invalid room {req.room!r}")
        return {"caseId": opened.case_id, "caseRowId": opened.row_id, "created": opened.created}


async def publish_room_detail(
    conn: Connection, nodes: LiveKitNodes, subject: str, room: str, *, closed_by: str | None = None
) -> None:
    """Publish the room's detail after a change, in the changing transaction (see the module doc).
    ``closed_by`` (ROOM_CLOSED only) tells realtime which close it was (contracts.conference, issue 4 section)."""
    row = await repository.rooms.room_detail_and_node(conn, room)
    if row is None:
        return
    # The node table is read on this connection: the pool may be exhausted by creations waiting for the lock.
    node = domain.choose_node(
        await repository.nodes.livekit_nodes(conn), row["nodeLivekitId"], nodes.default, now_local()
    )
    fields = domain.room_event_fields(room, row, datetime.now(UTC), node.key == nodes.default.key)
    await add_event(conn, subject, RoomChanged(**fields, closedBy=closed_by))


async def close_room(db: Database, nodes: LiveKitNodes, room: str, closed_by: str = "close") -> tuple[int, int]:
    """Close ``room`` (every row not closed yet): (rows of that name, rows changed). Publishes ROOM_CLOSED with
    the detail when something changed; closing a closed room rewrites nothing and publishes nothing."""
    async with db.transaction() as conn:
        rows = await repository.rooms.room_statuses(conn, room)
        changed = await repository.rooms.close_room(conn, room, now_local()) if rows else 0
        if changed:
            await publish_room_detail(conn, nodes, ROOM_CLOSED, room, closed_by=closed_by)
    return len(rows), changed


async def change_room_type(db: Database, nodes: LiveKitNodes, room: str, room_type: str) -> None:
    """PUT /room/updatetype: roomType (and dtmUpdated) of the room's rows; ROOM_TYPE_CHANGED when one changed."""
    async with db.transaction() as conn:
        if await repository.rooms.update_room_type(conn, room, room_type, now_local()):
            await publish_room_detail(conn, nodes, ROOM_TYPE_CHANGED, room)


async def change_case_room_status(
    db: Database, nodes: LiveKitNodes, case_id: int, service: int | None, status: str
) -> None:
    """PUT /room/updatestatus: the status of the case's room (messageUnread cleared), published as ROOM_CLOSED
    (close), ROOM_UPDATED (open) or ROOM_DETAIL_CHANGED (anything else) when a row changed."""
    async with db.transaction() as conn:
        room = await repository.cases.case_room_name(conn, case_id, service)
        if room is not None and await repository.rooms.update_room_status(conn, room, status, now_local()):
            subject = {"close": ROOM_CLOSED, "open": ROOM_UPDATED}.get(status, ROOM_DETAIL_CHANGED)
            closed_by = "status" if subject == ROOM_CLOSED else None
            await publish_room_detail(conn, nodes, subject, room, closed_by=closed_by)


# room_user column sizes: an over-long value is a bad request, not a database error.
_ROOM_USER_LIMITS = {"identity": 50, "userName": 100, "userType": 50, "color": 50}


# case_data column sizes (and room_conference.room's): bad input is a bad request, not a database error.
_CASE_OPEN_LIMITS = {"room": 50, "userName": 100, "mobileCreated": 50, "caseType": 50, "organization": 50}
_INT_MAX = 2_147_483_647


def _check_case_open(req: CaseOpen) -> None:
    if not req.room.strip():
        raise msgspec.ValidationError("room is required")
    for name, limit in _CASE_OPEN_LIMITS.items():
        if len(getattr(req, name)) > limit:
            raise msgspec.ValidationError(f"{name} must be at most {limit} characters")
    if not 0 <= req.service <= _INT_MAX or (req.roomId is not None and not 0 < req.roomId <= _INT_MAX):
        raise msgspec.ValidationError("service or roomId is out of range")


def _check_room_user_lengths(**values: str | None) -> None:
    for name, value in values.items():
        if value is not None and len(value) > _ROOM_USER_LIMITS[name]:
            raise msgspec.ValidationError(f"{name} must be at most {_ROOM_USER_LIMITS[name]} characters")


async def serve_requests(runtime: Runtime, conference: Conference) -> None:
    assert runtime.bus is not None
    await runtime.bus.serve(RPC_ROOM_ENSURE, EnsureRoom, conference.ensure_room)
    await runtime.bus.serve(RPC_ROOM_DETAIL, RoomQuery, conference.room_detail)
    await runtime.bus.serve(RPC_ROOM_SOCKET_LIVE, RoomQuery, conference.room_socket_live)
    await runtime.bus.serve(RPC_PARTICIPANT_TOKEN, ParticipantTokenRequest, conference.participant_token)
    await runtime.bus.serve(RPC_CONFERENCE_PALETTE, PaletteQuery, conference.palette)
    await runtime.bus.serve(RPC_CASE_OF_ROOM, RoomQuery, conference.case_of_room)
    await runtime.bus.serve(RPC_CASE_OPEN, CaseOpen, conference.open_case)

"""What link publishes and answers over NATS.

* Events (outbox): ``LINK_CREATED`` (:class:`LinkCreated`) when a link is made, ``LINK_LOCATION_UPDATED``
  (:class:`LinkLocationUpdated`) when a link's position changes.
* Requests it answers: ``RPC_LINK_VERIFY_PASSWORD`` (:class:`LinkCredentials`) for auth's ``/auth/verifyuser``;
  ``RPC_LINK_STATUS_HISTORY`` (:class:`LinkHistoryQuery`) for realtime's ``history`` emit.
  ``RPC_LINK_SERVICE_EXISTS`` (:class:`ServiceQuery`) for conference's ``POST /case/create`` tenant check.
* Requests it makes (to conference): ``RPC_ROOM_ENSURE``, ``RPC_ROOM_DETAIL``, ``RPC_PARTICIPANT_TOKEN``,
  ``RPC_CONFERENCE_PALETTE``.
* ``LINK_PARTICIPANT_SEEN`` (:class:`ParticipantSeen`): /link/getdetail's room_user user-agent write, handed to
  conference (which owns room_user) in the same transaction as the usage row.
* Consumed (``link.readmodels``): conference's room and room-user events, recording's participant events.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from link import domain, repository
from servicekit.bus import add_event
from servicekit.db import Connection
from servicekit.events import (
    LINK_CREATED,
    LINK_LOCATION_UPDATED,
    LINK_PARTICIPANT_SEEN,
    RPC_LINK_ROOM,
    RPC_LINK_SERVICE_EXISTS,
    RPC_LINK_STATUS_HISTORY,
    RPC_LINK_VERIFY_PASSWORD,
    LinkCreated,
    LinkCredentials,
    LinkHistoryQuery,
    LinkLocationUpdated,
    LinkRoomQuery,
    ParticipantSeen,
    ServiceQuery,
)
from servicekit.web import Runtime

log = logging.getLogger(__name__)

PUBLIC_LINK_FIELDS = ("room", "userName", "userType", "linkType", "mobile", "isAdmin", "requireJoinPermission")


async def link_created(conn: Connection, data: LinkCreated) -> None:
    await add_event(conn, LINK_CREATED, data)


async def link_location_updated(conn: Connection, data: LinkLocationUpdated) -> None:
    await add_event(conn, LINK_LOCATION_UPDATED, data)


async def participant_seen(conn: Connection, data: ParticipantSeen) -> None:
    await add_event(conn, LINK_PARTICIPANT_SEEN, data)


class InvalidCredentials(LookupError):
    """Unknown link or wrong password: one answer for both (code ``not_found``), so IDs cannot be probed."""


async def verify_password(runtime: Runtime, request: LinkCredentials) -> dict[str, Any]:
    """A link's public fields when ``request.password`` opens it; an old MD5 hash is replaced by argon2."""
    assert runtime.db is not None
    async with runtime.db.connection() as conn:
        row = await repository.link_credentials(conn, request.linkID)
    if row is None:
        raise InvalidCredentials("invalid id or password")
    if int(row["requirePassword"] or 0) != 0:
        stored = row["password"] or ""
        check = await asyncio.to_thread(domain.check_password, stored, request.password)
        if not check.ok:
            raise InvalidCredentials("invalid id or password")
        if check.rehash:
            new_hash = await asyncio.to_thread(domain.hash_password, request.password)
            async with runtime.db.connection() as conn:
                if await repository.replace_password_hash(conn, request.linkID, stored, new_hash):
                    log.info("link password re-hashed", extra={"linkID": request.linkID})
    return {"linkID": row["linkID"], **{key: row[key] for key in PUBLIC_LINK_FIELDS}}


async def status_history(runtime: Runtime, request: LinkHistoryQuery) -> list[dict[str, Any]] | bool:
    """A link's usage rows as the original's ``history`` emit carried them (false when there are none)."""
    assert runtime.db is not None
    async with runtime.db.connection() as conn:
        rows = await repository.active_log(conn, request.linkID, every_user_type=request.linkType == "location")
    return rows or False


async def serve(runtime: Runtime) -> None:
    assert runtime.bus is not None

    async def on_verify(request: LinkCredentials) -> dict[str, Any]:
        return await verify_password(runtime, request)

    async def on_history(request: LinkHistoryQuery) -> list[dict[str, Any]] | bool:
        return await status_history(runtime, request)

    await runtime.bus.serve(RPC_LINK_VERIFY_PASSWORD, LinkCredentials, on_verify)
    await runtime.bus.serve(RPC_LINK_STATUS_HISTORY, LinkHistoryQuery, on_history)

    # Conference's POST /case/create checks the tenant exists (the original's SELECT count(*) FROM services).
    async def on_service_exists(request: ServiceQuery) -> bool:
        assert runtime.db is not None
        async with runtime.db.connection() as conn:
            return await repository.get_tenant(conn, request.service) is not None

    await runtime.bus.serve(RPC_LINK_SERVICE_EXISTS, ServiceQuery, on_service_exists)

    # Conference's POST /user/joingenerate with a linkID joins the link's room (the original's getLinkDetail).
    async def on_link_room(request: LinkRoomQuery) -> dict[str, Any]:
        assert runtime.db is not None
        async with runtime.db.connection() as conn:
            row = await repository.link_credentials(conn, request.linkID)
        if row is None:
            raise LookupError("no such link")
        return {"linkID": row["linkID"], "room": row["room"]}

    await runtime.bus.serve(RPC_LINK_ROOM, LinkRoomQuery, on_link_room)

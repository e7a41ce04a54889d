"""What link publishes and answers over NATS.

* Events (outbox): ``LINK_CREATED`` (:class:`LinkCreated`) when a link is made, ``LINK_LOCATION_UPDATED``
  (:class:`LinkLocationUpdated`) when a link's position changes.
* Requests it answers: ``RPC_LINK_VERIFY_PASSWORD`` (:class:`LinkCredentials`) for auth's ``/auth/verifyuser``;
  ``RPC_LINK_STATUS_HISTORY`` (:class:`LinkHistoryQuery`) for realtime's ``history`` emit.
* Requests it makes (to conference): ``RPC_ROOM_ENSURE``, ``RPC_ROOM_DETAIL``, ``RPC_PARTICIPANT_TOKEN``.
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
    RPC_LINK_STATUS_HISTORY,
    RPC_LINK_VERIFY_PASSWORD,
    LinkCreated,
    LinkCredentials,
    LinkHistoryQuery,
    LinkLocationUpdated,
)
from servicekit.web import Runtime

log = logging.getLogger(__name__)

PUBLIC_LINK_FIELDS = ("room", "userName", "userType", "linkType", "mobile", "isAdmin", "requireJoinPermission")


async def link_created(conn: Connection, data: LinkCreated) -> None:
    await add_event(conn, LINK_CREATED, data)


async def link_location_updated(conn: Connection, data: LinkLocationUpdated) -> None:
    await add_event(conn, LINK_LOCATION_UPDATED, data)


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

"""Requests telemetry makes for its car tasks: RPC_TENANT_DETAIL to link, RPC_CASE_OF_ROOM to conference. Short
timeout; unanswered -> the reply degrades (None), see contracts.telemetry."""

from __future__ import annotations

import logging
from typing import Any

from contracts.conference import RPC_CASE_OF_ROOM, RoomQuery
from contracts.link import RPC_TENANT_DETAIL, ServiceQuery
from servicekit.bus import RpcError
from servicekit.web import Runtime
from telemetry.domain import tasks as domain
from telemetry.repository import tasks as repository

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT_SECONDS = 1.5  # asking link / conference: the crew app must get its task even when they are slow


async def tenant(runtime: Runtime, service: int | None) -> dict[str, Any] | None:
    """The tenant's {id, name, latitude, longitude} from link, or None (unknown, or link does not answer)."""
    if service is None or runtime.bus is None:
        return None
    try:
        found = await runtime.bus.request(RPC_TENANT_DETAIL, ServiceQuery(service=service), LOOKUP_TIMEOUT_SECONDS)
    except RpcError as exc:
        if exc.code != "not_found":
            log.warning("tenant lookup failed", extra={"service": service, "code": exc.code})
        return None
    return found if isinstance(found, dict) else None


async def case_of_room(runtime: Runtime, room: str) -> dict[str, Any] | None:
    """The room's case fields from conference, or None (no case, or conference does not answer)."""
    if runtime.bus is None:
        return None
    try:
        found = await runtime.bus.request(RPC_CASE_OF_ROOM, RoomQuery(room=room), LOOKUP_TIMEOUT_SECONDS)
    except RpcError as exc:
        if exc.code != "not_found":
            log.warning("case lookup failed", extra={"room": room, "code": exc.code})
        return None
    return found if isinstance(found, dict) else None


async def service_location(runtime: Runtime, room: str) -> dict[str, Any] | None:
    """The room's tenant location (the ``arrive`` destination), or None when unknown."""
    assert runtime.db is not None
    found = await tenant(runtime, await repository.room_service(runtime.db, room))
    return None if found is None else {"latitude": found.get("latitude"), "longitude": found.get("longitude")}


async def destination_of(runtime: Runtime, row: dict[str, Any]) -> dict[str, Any]:
    assert runtime.db is not None
    status = row.get("status") or "open"
    link = await repository.newest_user_link(runtime.db, row["room"]) if status not in ("arrive",) else None
    location = await service_location(runtime, row["room"]) if status == "arrive" else None
    return domain.task_destination(status, link, location)

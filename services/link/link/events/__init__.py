"""What link publishes and answers over NATS (the consumers, the SMS job, the task commands and the expiry sweep
are this package's modules).

* Events (outbox): ``LINK_CREATED`` (:class:`LinkCreated`) when a link is made, ``LINK_LOCATION_UPDATED``
  (:class:`LinkLocationUpdated`) when a link's position changes.
* ``LINK_FIELDS_CHANGED`` (:class:`LinkFieldsChanged`) with every other write of a link_connect column
  telemetry copies (userAgent/os, errorVideo/errorLocation, oneTimeLink, domainIndex, enabled).
* ``LINK_USED`` (:class:`LinkUsed`) when a one-time link is opened; ``LINK_MULTI_LATLNG``
  (:class:`LinkMultiLatLng`) with POST /link/multilatlng/send's position; ``LINK_EXPIRED`` from the expiry sweep
  (link.events.jobs); ``LINK_SMS_SENT`` / ``LINK_SMS_FAILED`` from link.events.sms.
* Requests it answers: ``RPC_LINK_VERIFY_PASSWORD`` (:class:`LinkCredentials`) for auth's ``/auth/verifyuser``;
  ``RPC_LINK_STATUS_HISTORY`` (:class:`LinkHistoryQuery`) and ``RPC_LINK_STATUS_HISTORIES`` (many links at once) for
  realtime's ``history`` emit.
  ``RPC_LINK_ROOM_HISTORY`` (:class:`LinkRoomHistoryQuery`) for realtime's /queue closeRoom row;
  ``RPC_LINK_SERVICE_EXISTS`` (:class:`ServiceQuery`) for conference's ``POST /case/create`` tenant check.
  Realtime's room-socket events: ``RPC_LINK_USER_POSITION`` (:class:`LinkUserPosition`, ``user-position``),
  ``RPC_LINK_POSITION_GROUP`` (``get-user-position-group``) and ``RPC_LINK_QUEUE_PAGE`` (:class:`QueuePage`,
  ``queue``).
* Requests it makes (to conference): ``RPC_ROOM_ENSURE``, ``RPC_CASE_OPEN`` and ``RPC_ROOM_DETAIL`` (here, for
  the controllers), ``RPC_CONFERENCE_PALETTE`` (link.events.readmodels). GET /link/getdetail, the hot path, makes
  its two (``RPC_PARTICIPANT_TOKEN`` when the room is not in the read model, ``RPC_ROOM_DETAIL`` for an expired
  link) in its handler, without a layer between.
* ``LINK_PARTICIPANT_SEEN`` (:class:`ParticipantSeen`): /link/getdetail's room_user user-agent write, handed to
  conference (which owns room_user) in the same transaction as the usage row.
* Consumed (``link.events.readmodels``): conference's room and room-user events, recording's participant events
  and its ``RECORDING_RECORD_USAGE`` usage rows; telemetry's task SMS commands and ``RPC_TENANT_DETAIL``
  (link.events.tasks).
* ``RPC_LINK_SNAPSHOT`` and ``rpc.link.rebuild`` (link.events.rebuild): the links others rebuild their read models
  from, and the rebuild of link's own read models from their owners.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import msgspec

from contracts.conference import RPC_CASE_OPEN, RPC_ROOM_DETAIL, RPC_ROOM_ENSURE, CaseOpen, EnsureRoom, RoomQuery
from contracts.link import (
    HISTORIES_MAX,
    LINK_CREATED,
    LINK_FIELDS_CHANGED,
    LINK_LOCATION_UPDATED,
    LINK_MULTI_LATLNG,
    LINK_PARTICIPANT_SEEN,
    LINK_USED,
    RPC_LINK_POSITION_GROUP,
    RPC_LINK_QUEUE_PAGE,
    RPC_LINK_ROOM,
    RPC_LINK_ROOM_HISTORY,
    RPC_LINK_SERVICE_EXISTS,
    RPC_LINK_STATUS_HISTORIES,
    RPC_LINK_STATUS_HISTORY,
    RPC_LINK_USER_POSITION,
    RPC_LINK_VERIFY_PASSWORD,
    LinkCreated,
    LinkCredentials,
    LinkFieldsChanged,
    LinkHistoriesQuery,
    LinkHistoryQuery,
    LinkLocationUpdated,
    LinkMultiLatLng,
    LinkRoomHistoryQuery,
    LinkRoomQuery,
    LinkUsed,
    LinkUserPosition,
    ParticipantSeen,
    Position,
    QueuePage,
    ServiceQuery,
)
from link import domain, repository
from link.events import readmodels
from servicekit.bus import Bus, add_event
from servicekit.db import Connection
from servicekit.web import Runtime

log = logging.getLogger(__name__)

PUBLIC_LINK_FIELDS = ("room", "userName", "userType", "linkType", "mobile", "isAdmin", "requireJoinPermission")
RPC_TIMEOUT = 5.0  # the requests link's controllers make to conference
_DATE = "%Y-%m-%d %H:%M:%S"  # local time, as LinkCreated carries dates


async def link_created(conn: Connection, data: LinkCreated) -> None:
    await add_event(conn, LINK_CREATED, data)


async def share_link_created(
    conn: Connection, link_id: str, row_id: int, fields: dict[str, Any], *, room_created: bool
) -> None:
    """LINK_CREATED of a room's Guest/Viewer share link (share = 1), from the ``fields`` it was inserted with: the other
    services' copies of link's links hold every link, as a rebuild from link's snapshot makes them."""
    await link_created(
        conn,
        LinkCreated(
            linkID=link_id, linkRowId=row_id, room=fields["room"], linkType=fields.get("linkType", "video"),
            userType=fields.get("userType") or "", userName=fields.get("userName") or "",
            mobile=fields.get("mobile", ""), service=fields.get("service") or 0, roomCreated=room_created,
            crmSender=fields.get("crmSender", ""), recordId=fields.get("recordId", 0), share=1,
            oneTimeLink=fields.get("oneTimeLink", 0), dtmCreated=fields["dtmCreated"].strftime(_DATE),
            dtmExpired=fields["dtmExpired"].strftime(_DATE), userAgent=fields.get("userAgent", ""),
        ),
    )  # fmt: skip


async def link_location_updated(conn: Connection, data: LinkLocationUpdated) -> None:
    await add_event(conn, LINK_LOCATION_UPDATED, data)


async def link_used(conn: Connection, data: LinkUsed) -> None:
    await add_event(conn, LINK_USED, data)


async def link_multi_latlng(conn: Connection, data: LinkMultiLatLng) -> None:
    await add_event(conn, LINK_MULTI_LATLNG, data)


async def link_fields_changed(conn: Connection, link_id: str, fields: dict[str, Any]) -> None:
    """Telemetry's copy of link_connect columns: the columns this transaction wrote and their new values."""
    await add_event(conn, LINK_FIELDS_CHANGED, LinkFieldsChanged(linkID=link_id, fields=fields))


async def participant_seen(conn: Connection, data: ParticipantSeen) -> None:
    await add_event(conn, LINK_PARTICIPANT_SEEN, data)


# ---- requests made to conference (each raises servicekit.bus.RpcError; the controller answers it) -------------
async def ensure_room(bus: Bus, request: EnsureRoom) -> Any:
    """The room, made when missing: ``{"created": bool, "room": {...}}``."""
    return await bus.request(RPC_ROOM_ENSURE, request, timeout=RPC_TIMEOUT)


async def open_case(bus: Bus, request: CaseOpen) -> Any:
    """A case of a room (POST /link/idems): ``{"caseId": ...}``."""
    return await bus.request(RPC_CASE_OPEN, request, timeout=RPC_TIMEOUT)


async def room_detail(bus: Bus, room: str) -> Any:
    """The room's detail (code ``not_found`` when conference has no such room)."""
    return await bus.request(RPC_ROOM_DETAIL, RoomQuery(room=room), timeout=RPC_TIMEOUT)


# ---- requests answered -----------------------------------------------------------------------------------
class InvalidCredentials(LookupError):
    """Unknown link or wrong password: one answer for both (code ``not_found``), so IDs cannot be probed."""


class PasswordLocked(LookupError):
    """Too many password attempts on the link. A LookupError, so callers get code ``not_found`` and auth answers
    the original's ``invalid id or password`` (servicekit's bus has no code for "locked" yet); the reply's
    ``error`` says locked."""


async def verify_password(runtime: Runtime, request: LinkCredentials) -> dict[str, Any]:
    """A link's public fields when ``request.password`` opens it; an old MD5 hash is replaced by argon2."""
    assert runtime.db is not None
    async with runtime.db.connection() as conn:
        row = await repository.links.link_credentials(conn, request.linkID)
    if row is None:
        raise InvalidCredentials("invalid id or password")
    if int(row["requirePassword"] or 0) != 0:
        key = domain.passwords.password_attempts_key(request.linkID)
        assert runtime.redis is not None
        attempts = await repository.links.reserve_password_attempt(
            runtime.redis, key, domain.passwords.PASSWORD_WINDOW_SECONDS
        )
        if domain.passwords.password_locked(attempts):
            log.warning("link password locked", extra={"linkID": request.linkID})
            raise PasswordLocked(domain.passwords.LOCKED_MESSAGE)
        stored = row["password"] or ""
        check = await asyncio.to_thread(domain.passwords.check_password, stored, request.password)
        if not check.ok:
            raise InvalidCredentials("invalid id or password")
        await repository.links.clear_password_attempts(runtime.redis, key)
        if check.rehash:
            new_hash = await asyncio.to_thread(domain.passwords.hash_password, request.password)
            async with runtime.db.connection() as conn:
                if await repository.links.replace_password_hash(conn, request.linkID, stored, new_hash):
                    log.info("link password re-hashed", extra={"linkID": request.linkID})
    return {"linkID": row["linkID"], **{key: row[key] for key in PUBLIC_LINK_FIELDS}}


async def status_history(
    runtime: Runtime, request: LinkHistoryQuery, full: domain.history.FullTimelines
) -> list[dict[str, Any]] | bool:
    """A link's usage rows as the original's ``history`` emit carried them (false when there are none); a full
    timeline from ``full`` once read."""
    return (await status_histories(runtime, LinkHistoriesQuery(links=[request]), full))[0]


async def status_histories(
    runtime: Runtime, request: LinkHistoriesQuery, full: domain.history.FullTimelines
) -> list[list[dict[str, Any]] | bool]:
    """status_history of many links: full timelines from ``full``, the others in one read."""
    assert runtime.db is not None
    if len(request.links) > HISTORIES_MAX:
        raise msgspec.ValidationError(f"at most {HISTORIES_MAX} links a request")
    keys = [(query.linkID, query.linkType == "location") for query in request.links]
    answers: list[list[dict[str, Any]] | None] = [full.get(key) for key in keys]
    missing = [index for index, rows in enumerate(answers) if rows is None]
    if missing:
        async with runtime.db.connection() as conn:
            read = await repository.usage.active_logs(conn, [keys[index] for index in missing])
        for index, rows in zip(missing, read, strict=True):
            full.put(keys[index], rows)
            answers[index] = rows
    return [rows or False for rows in answers]


# ---- realtime's room-socket events ----------------------------------------------------------------------------
ROOM_MAX = 50  # link_connect.room
MEASURE_MAX = 1e9  # as POST /link/update/latlng bounds accuracy


def _bad_request(message: str) -> msgspec.ValidationError:
    """Bus.serve answers a ValidationError with code ``bad_request``."""
    return msgspec.ValidationError(message)


def _checked_position(request: LinkUserPosition) -> tuple[float, float, float | None]:
    """The position, checked as POST /link/update/latlng checks it (out of range: bad_request, nothing written)."""
    if not request.linkID or len(request.linkID) > 50 or not request.room or len(request.room) > ROOM_MAX:
        raise _bad_request("invalid linkID or room")
    latitude, longitude, accuracy = request.latitude, request.longitude, request.accuracy
    if latitude is None or not math.isfinite(latitude) or not -90 <= latitude <= 90:
        raise _bad_request("invalid latitude")
    if longitude is None or not math.isfinite(longitude) or not -180 <= longitude <= 180:
        raise _bad_request("invalid longitude")
    if accuracy is not None and (not math.isfinite(accuracy) or not -MEASURE_MAX <= accuracy <= MEASURE_MAX):
        raise _bad_request("invalid accuracy")
    return latitude, longitude, accuracy


async def position_group(runtime: Runtime, room: str) -> list[dict[str, Any]]:
    """The room's ``user-position-group`` list (the same list /link/getdetail answers as ``positionUser``)."""
    if not room or len(room) > ROOM_MAX:
        return []
    assert runtime.db is not None
    async with runtime.db.connection() as conn:
        return domain.positions.position_users(await repository.links.user_links_of_room(conn, room))


async def user_position(runtime: Runtime, request: LinkUserPosition) -> list[dict[str, Any]]:
    """A room socket's ``user-position``: the link's position stored, logged (UpdateLatLngLinkDetail) and
    published like POST /link/update/latlng does; replies the room's new position group. A link outside the
    socket's room is not_found (the original updated any linkID sent to any room)."""
    latitude, longitude, accuracy = _checked_position(request)
    assert runtime.db is not None
    async with runtime.db.transaction() as conn:
        row = await repository.links.lock_link_in_room(conn, request.linkID, request.room)
        if row is None:
            raise LookupError("no such link in this room")
        room, user_type = row["room"] or request.room, row["userType"] or ""
        await repository.links.update_position(
            conn, request.linkID, latitude, longitude, domain.positions.number_text(accuracy)
        )
        await repository.usage.add_usage(
            conn,
            status=domain.links.STATUS_UPDATE_LATLNG,
            link_id=request.linkID,
            room=room,
            user_type=user_type,
            latitude=latitude,
            longitude=longitude,
        )
        await link_location_updated(
            conn,
            LinkLocationUpdated(
                linkID=request.linkID,
                room=room,
                userType=user_type,
                position=Position(latitude=latitude, longitude=longitude, accuracy=accuracy),
                timestamp=int(time.time() * 1000),
            ),
        )
    return await position_group(runtime, request.room)


async def queue_page(runtime: Runtime, request: QueuePage) -> dict[str, Any] | None:
    """The socket ``queue``: one page of the tenant's SMS-link history, or None for statuses the original did
    not answer. ``page`` and ``maxRow`` are echoed as sent (absent when not sent), ``service`` defaults to 1."""
    if request.status not in domain.history.QUEUE_STATUSES:
        return None
    try:
        search = domain.history.queue_search(
            request.status,
            service=request.service,
            page=request.page,
            max_row=request.maxRow,
            value=request.value,
            mobile=request.mobile,
            agent_name=request.agentName,
            room_status=request.roomStatus,
            date_start=request.dateTimeStart,
            date_end=request.dateTimeEnd,
        )
    except domain.history.BadQueueRequest as exc:
        raise _bad_request(str(exc)) from exc
    rows, count = await readmodels.queue_page(runtime, search)
    reply: dict[str, Any] = {
        "status": "data",
        "service": request.service if request.service is not None else domain.history.QUEUE_DEFAULT_SERVICE,
    }
    if request.page is not None:
        reply["page"] = request.page
    if request.maxRow is not None:
        reply["maxRow"] = request.maxRow
    reply["count"] = count
    reply["data"] = rows
    return reply


async def serve(runtime: Runtime) -> None:
    assert runtime.bus is not None

    async def on_verify(request: LinkCredentials) -> dict[str, Any]:
        return await verify_password(runtime, request)

    full_timelines = domain.history.FullTimelines()  # this instance's; a full timeline is the same everywhere

    async def on_history(request: LinkHistoryQuery) -> list[dict[str, Any]] | bool:
        return await status_history(runtime, request, full_timelines)

    await runtime.bus.serve(RPC_LINK_VERIFY_PASSWORD, LinkCredentials, on_verify)
    await runtime.bus.serve(RPC_LINK_STATUS_HISTORY, LinkHistoryQuery, on_history)

    async def on_histories(request: LinkHistoriesQuery) -> list[list[dict[str, Any]] | bool]:
        return await status_histories(runtime, request, full_timelines)

    await runtime.bus.serve(RPC_LINK_STATUS_HISTORIES, LinkHistoriesQuery, on_histories)

    # Conference's POST /case/create checks the tenant exists (the original's SELECT count(*) FROM services).
    async def on_service_exists(request: ServiceQuery) -> bool:
        assert runtime.db is not None
        async with runtime.db.connection() as conn:
            return await repository.tenants.get_tenant(conn, request.service) is not None

    await runtime.bus.serve(RPC_LINK_SERVICE_EXISTS, ServiceQuery, on_service_exists)

    # Conference's POST /user/joingenerate with a linkID joins the link's room (the original's getLinkDetail).
    async def on_link_room(request: LinkRoomQuery) -> dict[str, Any]:
        assert runtime.db is not None
        async with runtime.db.connection() as conn:
            row = await repository.links.link_credentials(conn, request.linkID)
        if row is None:
            raise LookupError("no such link")
        return {"linkID": row["linkID"], "room": row["room"]}

    await runtime.bus.serve(RPC_LINK_ROOM, LinkRoomQuery, on_link_room)

    # Realtime's /queue closeRoom row: the newest row of the room's SMS-link history (the original's
    # getSMSLinkHistory page 1, default order DESC, first row), or None.
    async def on_room_history(request: LinkRoomHistoryQuery) -> dict[str, Any] | None:
        if not request.room or len(request.room) > 50:
            return None
        rows, _count = await readmodels.history(runtime, request.room, 0, limit=1, newest_first=True)
        return rows[0] if rows else None

    await runtime.bus.serve(RPC_LINK_ROOM_HISTORY, LinkRoomHistoryQuery, on_room_history)

    async def on_user_position(request: LinkUserPosition) -> list[dict[str, Any]]:
        return await user_position(runtime, request)

    async def on_position_group(request: RoomQuery) -> list[dict[str, Any]]:
        return await position_group(runtime, request.room)

    async def on_queue_page(request: QueuePage) -> dict[str, Any] | None:
        return await queue_page(runtime, request)

    await runtime.bus.serve(RPC_LINK_USER_POSITION, LinkUserPosition, on_user_position)
    await runtime.bus.serve(RPC_LINK_POSITION_GROUP, RoomQuery, on_position_group)
    await runtime.bus.serve(RPC_LINK_QUEUE_PAGE, QueuePage, on_queue_page)

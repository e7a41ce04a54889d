"""Events and requests of the telemetry service.

Consumed (durable, applied once each: ``apply_once`` in the applying transaction):

* ``recording.webhook.received`` (WebhookReceived): every LiveKit webhook recording accepted, raw — written to
  ``data_log`` as the original's webhook receiver did (``data`` = the body as received, ``dtmCreated`` = when
  recording received it, local time).
* ``link.link.created``, ``link.location.updated``, ``link.location.multi``: the read model ``car_room_link`` (the
  room's newest ``user`` link, its own and its picked position, the room's tenant) that car tasks need, instead
  of reading link's link_connect. ``link.location.updated`` also publishes TASK_DESTINATION_CHANGED for every
  running task of the room (the original pushed ``destination`` to the room's /mobile sockets).
* ``conference.room.*`` (RoomChanged with ``service``): the read model ``car_room`` (the room's tenant, the
  original's room_conference.service).

Requests answered (realtime, contracts.telemetry "telemetry: ambulance tasks and positions"): RPC_TASK_DETAIL,
RPC_TASK_LOCATION, RPC_CAR_TRACKING, RPC_ROOM_CAR_POSITION. Bad input is a ``bad_request`` reply
(msgspec.ValidationError), nothing stored. Each stored position publishes CAR_POSITION_UPDATED through the outbox.

Requests made (short timeout; unanswered -> the reply degrades, see contracts.telemetry): RPC_TENANT_DETAIL to
link, RPC_CASE_OF_ROOM to conference.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime
from typing import Any

import msgspec

from contracts.conference import RPC_CASE_OF_ROOM, RoomChanged, RoomQuery
from contracts.link import (
    LINK_CREATED,
    LINK_LOCATION_UPDATED,
    LINK_MULTI_LATLNG,
    RPC_TENANT_DETAIL,
    LinkCreated,
    LinkLocationUpdated,
    LinkMultiLatLng,
    ServiceQuery,
)
from contracts.recording import RECORDING_WEBHOOK_RECEIVED, WebhookReceived
from contracts.telemetry import (
    CAR_POSITION_UPDATED,
    RPC_CAR_TRACKING,
    RPC_ROOM_CAR_POSITION,
    RPC_TASK_DETAIL,
    RPC_TASK_LOCATION,
    TASK_DESTINATION_CHANGED,
    CarPositionUpdated,
    CarTracking,
    TaskDestination,
    TaskLocation,
    TaskQuery,
)
from servicekit.bus import Event, RpcError, add_event, apply_once, event_payload
from servicekit.clock import now_local, parse_local
from servicekit.db import Connection, Database
from servicekit.web import Runtime
from telemetry import domain, repository

log = logging.getLogger(__name__)

DATA_LOG_CONSUMER = "telemetry-data-log"
LINK_CONSUMER = "telemetry-car-links"
ROOM_CONSUMER = "telemetry-car-rooms"
LOOKUP_TIMEOUT_SECONDS = 1.5  # asking link / conference: the crew app must get its task even when they are slow
CAR_LOCK_TIMEOUT_SECONDS = 5


def _received_at(event: Event) -> datetime:
    return parse_local(event.occurred_at) or now_local()


async def apply_webhook(db: Database, event: Event) -> bool:
    """Write one webhook event to data_log; False when malformed or already applied."""
    hook = event_payload(event, WebhookReceived)
    if hook is None:
        return False

    async def apply(conn: Connection) -> bool:
        await repository.add_data_log(conn, hook.data, _received_at(event))
        return True

    return bool(await apply_once(db, DATA_LOG_CONSUMER, event, apply))


# ---- link's links (read model car_room_link) ------------------------------------------------------------
def _coordinate(value: Any, bound: float) -> float | None:
    """A coordinate from another service's event, kept only when it fits the column and the globe."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if abs(value) <= bound else None


async def apply_link_event(db: Database, event: Event) -> bool:
    """Apply one link event to car_room_link (and publish the room's task destinations); False when ignored."""
    now = now_local()
    if event.subject == LINK_CREATED:
        created = event_payload(event, LinkCreated)
        if created is None:
            return False

        async def apply_created(conn: Connection) -> bool:
            await repository.save_link(conn, msgspec.to_builtins(created), now)
            return True

        return bool(await apply_once(db, LINK_CONSUMER, event, apply_created))

    if event.subject == LINK_LOCATION_UPDATED:
        moved = event_payload(event, LinkLocationUpdated)
        if moved is None:
            return False
        spot = moved.position

        async def apply_moved(conn: Connection) -> bool:
            await repository.set_link_position(
                conn, moved.linkID, moved.room, moved.userType,
                _coordinate(spot.latitude, 90), _coordinate(spot.longitude, 180), now,
            )  # fmt: skip
            position = msgspec.to_builtins(spot)
            for task in await repository.running_tasks_of_room(conn, moved.room):
                await add_event(
                    conn, TASK_DESTINATION_CHANGED, TaskDestination(uid=task["uid"], room=moved.room, position=position)
                )
            return True

        return bool(await apply_once(db, LINK_CONSUMER, event, apply_moved))

    if event.subject == LINK_MULTI_LATLNG:
        multi = event_payload(event, LinkMultiLatLng)
        if multi is None:
            return False
        pick = multi.emit.get("pickLocation") if isinstance(multi.emit.get("pickLocation"), dict) else {}
        user_type = multi.emit.get("userType") if isinstance(multi.emit.get("userType"), str) else ""

        async def apply_pick(conn: Connection) -> bool:
            await repository.set_link_pick(
                conn, multi.linkID, multi.room, user_type or None,
                _coordinate(pick.get("latitude"), 90), _coordinate(pick.get("longitude"), 180), now,
            )  # fmt: skip
            return True

        return bool(await apply_once(db, LINK_CONSUMER, event, apply_pick))
    return False


async def apply_room_event(db: Database, event: Event) -> bool:
    """conference.room.* (RoomChanged): keep the room's tenant; False when the event carries none."""
    changed = event_payload(event, RoomChanged)
    if changed is None or changed.service is None or not changed.room or len(changed.room) > 50:
        return False

    async def apply(conn: Connection) -> bool:
        await repository.save_room_service(conn, changed.room, changed.service, now_local())
        return True

    return bool(await apply_once(db, ROOM_CONSUMER, event, apply))


# ---- what a task needs from link and conference ----------------------------------------------------------
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


# ---- floods ------------------------------------------------------------------------------------------------
async def over_rate(runtime: Runtime, device: str) -> bool:
    """True when ``device`` sent more than POSITION_RATE_LIMIT positions in the current window (Redis counter
    shared by the replicas). Redis down: not limited (positions matter more than the flood guard)."""
    if runtime.redis is None:
        return False
    window = int(time.time()) // domain.POSITION_RATE_WINDOW_SECONDS
    key = f"telemetry:positions:{hashlib.sha1(device.encode(), usedforsecurity=False).hexdigest()}:{window}"
    try:
        count = await runtime.redis.incr(key)
        if count == 1:
            await runtime.redis.expire(key, domain.POSITION_RATE_WINDOW_SECONDS * 2)
    except Exception:  # noqa: BLE001
        log.warning("rate limit check failed", exc_info=True)
        return False
    return count > domain.POSITION_RATE_LIMIT


def _rejected(message: str) -> msgspec.ValidationError:
    # Bus.serve answers a msgspec.DecodeError (ValidationError is one) with code "bad_request".
    return msgspec.ValidationError(message)


def _checked_position(values: dict[str, Any], timestamp: int | None) -> dict[str, Any]:
    try:
        return domain.car_position(values, timestamp, int(time.time() * 1000))
    except domain.PositionRejected as exc:
        raise _rejected(str(exc)) from exc


# ---- request handlers ------------------------------------------------------------------------------------
async def task_detail(runtime: Runtime, request: TaskQuery) -> dict[str, Any]:
    """RPC_TASK_DETAIL: the /mobile ``connection`` payload; LookupError (not_found) for an unknown uid."""
    assert runtime.db is not None
    if not domain.valid_task_uid(request.uid):
        raise LookupError("invalid task id")
    row = await repository.task_by_uid(runtime.db, request.uid)
    if row is None:
        raise LookupError("invalid task id")
    return domain.task_detail(row, await destination_of(runtime, row))


async def task_location(runtime: Runtime, request: TaskLocation) -> dict[str, Any]:
    """RPC_TASK_LOCATION: the crew app's position stored on its task, published as CAR_POSITION_UPDATED."""
    assert runtime.db is not None
    if not domain.valid_task_uid(request.uid):
        raise LookupError("invalid task id")
    values = msgspec.to_builtins(request)
    position = _checked_position(values, request.timestamp)
    if await over_rate(runtime, f"task:{request.uid}"):
        raise _rejected("too many positions: slow down")
    async with runtime.db.transaction() as conn:
        row = await repository.set_task_position(conn, request.uid, position, now_local())
        if row is None:
            raise LookupError("invalid task id")
        await add_event(
            conn,
            CAR_POSITION_UPDATED,
            CarPositionUpdated(room=row["room"] or "", uid=row["uid"], row=domain.car_row_json(row)),
        )
    return {"stored": True}


async def car_tracking(runtime: Runtime, request: CarTracking) -> dict[str, Any]:
    """RPC_CAR_TRACKING: a room namespace ``carTracking`` position of (room, userName). A payload without a
    position (``initial``, ``getDestination``) stores nothing: {"stored": false}. Status ``getDestination`` adds
    ``destination`` = the room's patient link {userName, mobile, latitude, longitude, patientLatitude,
    patientLongitude} when there is one."""
    assert runtime.db is not None
    if not domain.valid_room(request.room):
        raise _rejected("invalid room")
    if not domain.valid_user_name(request.userName):
        raise _rejected("invalid userName")
    reply: dict[str, Any] = {"stored": False}
    if request.status == "getDestination":
        # The original broadcast the room's patient link to the room as ``destination`` (realtime emits it).
        patient = await repository.patient_of_room(runtime.db, request.room)
        if patient is not None:
            reply["destination"] = domain.patient_destination(patient)
    if request.latitude is None and request.longitude is None:
        return reply
    position = _checked_position(msgspec.to_builtins(request), request.timestamp)
    if await over_rate(runtime, f"car:{request.room}\x00{request.userName}"):
        raise _rejected("too many positions: slow down")
    digest = hashlib.sha1(f"{request.room}\x00{request.userName}".encode(), usedforsecurity=False).hexdigest()
    async with runtime.db.locked_transaction(f"telemetry.car.{digest}", CAR_LOCK_TIMEOUT_SECONDS) as conn:
        row = await repository.upsert_car_position(conn, request.room, request.userName, position, now_local())
        assert row is not None
        await add_event(
            conn,
            CAR_POSITION_UPDATED,
            CarPositionUpdated(room=request.room, uid=row["uid"], row=domain.car_row_json(row)),
        )
    reply["stored"] = True
    return reply


async def room_car_position(runtime: Runtime, request: RoomQuery) -> dict[str, Any] | None:
    """RPC_ROOM_CAR_POSITION: the room's newest car_track row (``car-position`` on a user's connect), or None."""
    assert runtime.db is not None
    if not domain.valid_room(request.room):
        return None
    row = await repository.newest_car_of_room(runtime.db, request.room)
    return None if row is None else domain.car_row_json(row)


async def start(runtime: Runtime) -> None:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db

    async def on_webhook(event: Event) -> None:
        if event.subject == RECORDING_WEBHOOK_RECEIVED:
            await apply_webhook(db, event)

    async def on_link(event: Event) -> None:
        await apply_link_event(db, event)

    runtime.bus.consume("recording", DATA_LOG_CONSUMER, on_webhook, filter_subject=RECORDING_WEBHOOK_RECEIVED)
    runtime.bus.consume("link", LINK_CONSUMER, on_link, filter_subject="link.>")

    async def on_room(event: Event) -> None:
        await apply_room_event(db, event)

    runtime.bus.consume("conference", ROOM_CONSUMER, on_room, filter_subject="conference.room.>")

    async def on_detail(request: TaskQuery) -> dict[str, Any]:
        return await task_detail(runtime, request)

    async def on_location(request: TaskLocation) -> dict[str, Any]:
        return await task_location(runtime, request)

    async def on_tracking(request: CarTracking) -> dict[str, Any]:
        return await car_tracking(runtime, request)

    await runtime.bus.serve(RPC_TASK_DETAIL, TaskQuery, on_detail)
    await runtime.bus.serve(RPC_TASK_LOCATION, TaskLocation, on_location)
    await runtime.bus.serve(RPC_CAR_TRACKING, CarTracking, on_tracking)

    async def on_room_car(request: RoomQuery) -> dict[str, Any] | None:
        return await room_car_position(runtime, request)

    await runtime.bus.serve(RPC_ROOM_CAR_POSITION, RoomQuery, on_room_car)

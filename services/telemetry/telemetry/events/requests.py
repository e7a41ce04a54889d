"""Requests telemetry answers (realtime, contracts.telemetry "telemetry: ambulance tasks and positions"):
RPC_TASK_DETAIL, RPC_TASK_LOCATION, RPC_CAR_TRACKING, RPC_ROOM_CAR_POSITION. Bad input is a ``bad_request``
reply (msgspec.ValidationError), nothing stored. Each stored position publishes CAR_POSITION_UPDATED through the
outbox."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from contracts.conference import RoomQuery
from contracts.telemetry import CAR_POSITION_UPDATED, CarPositionUpdated, CarTracking, TaskLocation, TaskQuery
from servicekit.batching import GroupCommit
from servicekit.bus import add_event, add_events
from servicekit.clock import now_local
from servicekit.db import Connection, Database
from servicekit.web import Runtime
from telemetry.domain import tasks as domain
from telemetry.events.lookups import destination_of
from telemetry.repository import tasks as repository

CAR_LOCK_TIMEOUT_SECONDS = 5


def _rejected(message: str) -> msgspec.ValidationError:
    # Bus.serve answers a msgspec.DecodeError (ValidationError is one) with code "bad_request".
    return msgspec.ValidationError(message)


def _checked_position(values: dict[str, Any], timestamp: int | None) -> dict[str, Any]:
    try:
        return domain.car_position(values, timestamp, int(time.time() * 1000))
    except domain.PositionRejected as exc:
        raise _rejected(str(exc)) from exc


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
    if await repository.over_rate(runtime.redis, f"task:{request.uid}"):
        raise _rejected("too many positions: slow down")
    # Group-committed with the other crews' positions arriving now; answered after the commit.
    row = await runtime.extras["task_positions"].submit((request.uid, position, now_local()))
    if row is None:
        raise LookupError("invalid task id")
    return {"stored": True}


def task_position_writer(db: Database) -> GroupCommit[tuple[str, dict[str, Any], datetime], dict[str, Any] | None]:
    """The group commit of RPC_TASK_LOCATION's writes: each position on its task's row and its CAR_POSITION_UPDATED,
    a batch per transaction (servicekit.batching)."""

    async def apply(conn: Connection, items: Sequence[tuple[str, dict[str, Any], datetime]]) -> list[dict | None]:
        rows = [await repository.set_task_position(conn, uid, position, now) for uid, position, now in items]
        await add_events(
            conn,
            [
                (
                    CAR_POSITION_UPDATED,
                    CarPositionUpdated(room=row["room"] or "", uid=row["uid"], row=domain.car_row_json(row)),
                )
                for row in rows
                if row is not None
            ],
        )
        return rows

    return GroupCommit(db, "telemetry-task-positions", apply)


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
    if await repository.over_rate(runtime.redis, f"car:{request.room}\x00{request.userName}"):
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

"""Events and requests of the telemetry service, one module per topic; ``start`` wires them to the bus.

* ``data_log``: the ``recording.webhook.received`` consumer that writes every LiveKit webhook to ``data_log``.
* ``car_rooms``: the read models ``car_room_link`` / ``car_room`` kept from link's and conference's events (and
  TASK_DESTINATION_CHANGED for the running tasks of a room whose patient moved).
* ``requests``: the requests answered for realtime (RPC_TASK_DETAIL, RPC_TASK_LOCATION, RPC_CAR_TRACKING,
  RPC_ROOM_CAR_POSITION); each stored position publishes CAR_POSITION_UPDATED through the outbox.
* ``lookups``: the requests made (RPC_TENANT_DETAIL to link, RPC_CASE_OF_ROOM to conference).
* ``tasks``: the car task writes that publish (TASK_SMS_REQUESTED, TASK_STATUS_CHANGED).
* ``statistics``: the consumers of the /stats/* read model.
* ``rebuild``: ``rpc.telemetry.rebuild``, every read model above rebuilt from its owner (servicekit.rebuild).

Consumers are durable and apply each event once (``apply_once`` in the applying transaction).
"""

from __future__ import annotations

from typing import Any

from contracts.conference import RoomQuery
from contracts.recording import RECORDING_WEBHOOK_RECEIVED
from contracts.telemetry import (
    RPC_CAR_TRACKING,
    RPC_ROOM_CAR_POSITION,
    RPC_TASK_DETAIL,
    RPC_TASK_LOCATION,
    CarTracking,
    TaskLocation,
    TaskQuery,
)
from servicekit.bus import Event
from servicekit.web import Runtime
from telemetry.events import rebuild, statistics
from telemetry.events.car_rooms import LINK_CONSUMER, ROOM_CONSUMER, apply_link_event, apply_room_event
from telemetry.events.data_log import DATA_LOG_CONSUMER, apply_webhook
from telemetry.events.requests import car_tracking, room_car_position, task_detail, task_location


async def start(runtime: Runtime) -> None:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db

    async def on_webhook(event: Event) -> None:
        if event.subject == RECORDING_WEBHOOK_RECEIVED:
            await apply_webhook(db, event)

    async def on_link(event: Event) -> None:
        await apply_link_event(db, event)

    runtime.bus.consume(
        "recording", DATA_LOG_CONSUMER, on_webhook, filter_subject=RECORDING_WEBHOOK_RECEIVED, batch_db=db
    )
    runtime.bus.consume("link", LINK_CONSUMER, on_link, filter_subject="link.>", batch_db=db)

    async def on_room(event: Event) -> None:
        await apply_room_event(db, event)

    runtime.bus.consume("conference", ROOM_CONSUMER, on_room, filter_subject="conference.room.>", batch_db=db)

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
    statistics.start(runtime)
    await rebuild.serve(runtime)

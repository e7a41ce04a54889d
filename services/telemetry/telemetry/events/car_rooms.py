"""The read models car tasks need, kept from other services' events instead of reading their tables (durable
consumers, applied once each: ``apply_once`` in the applying transaction):

* ``link.link.created``, ``link.location.updated``, ``link.location.multi``: ``car_room_link`` (the room's
  newest ``user`` link, its own and its picked position, the room's tenant) instead of link's link_connect.
  ``link.location.updated`` also publishes TASK_DESTINATION_CHANGED for every running task of the room (the
  original pushed ``destination`` to the room's /mobile sockets).
* ``conference.room.*`` (RoomChanged with ``service``): ``car_room`` (the room's tenant, the original's
  room_conference.service).
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.conference import RoomChanged
from contracts.link import (
    LINK_CREATED,
    LINK_LOCATION_UPDATED,
    LINK_MULTI_LATLNG,
    LinkCreated,
    LinkLocationUpdated,
    LinkMultiLatLng,
)
from contracts.telemetry import TASK_DESTINATION_CHANGED, TaskDestination
from servicekit.bus import Event, add_event, apply_once, batch_lookups, event_payload
from servicekit.clock import now_local
from servicekit.db import Connection, Database
from servicekit.rebuild import event_version
from telemetry.repository import tasks as repository

LINK_CONSUMER = "telemetry-car-links"
ROOM_CONSUMER = "telemetry-car-rooms"


def coordinate(value: Any, bound: float) -> float | None:
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
            await repository.save_link(conn, msgspec.to_builtins(created), now, event_version(event))
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
                coordinate(spot.latitude, 90), coordinate(spot.longitude, 180), now, event_version(event),
            )  # fmt: skip
            position = msgspec.to_builtins(spot)
            for task in await _running_tasks(conn, moved.room):
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
                coordinate(pick.get("latitude"), 90), coordinate(pick.get("longitude"), 180), now,
                event_version(event),
            )  # fmt: skip
            return True

        return bool(await apply_once(db, LINK_CONSUMER, event, apply_pick))
    return False


async def _running_tasks(conn: Connection, room: str) -> list[dict[str, Any]]:
    """The room's running tasks; in a batch, read once for the rooms of all its position events (a batch of 64
    positions: one read instead of 64)."""
    lookups = batch_lookups(conn, "running_tasks")
    if lookups is None:
        return await repository.running_tasks_of_room(conn, room)
    events, known = lookups
    if room not in known:
        rooms = {room}
        for event in events:
            if event.subject == LINK_LOCATION_UPDATED and isinstance(event.data, dict):
                named = event.data.get("room")
                if isinstance(named, str) and named not in known:
                    rooms.add(named)
        known.update(await repository.running_tasks_of_rooms(conn, rooms))
    return known[room]


async def apply_room_event(db: Database, event: Event) -> bool:
    """conference.room.* (RoomChanged): keep the room's tenant; False when the event carries none."""
    changed = event_payload(event, RoomChanged)
    if changed is None or changed.service is None or not changed.room or len(changed.room) > 50:
        return False

    async def apply(conn: Connection) -> bool:
        await repository.save_room_service(conn, changed.room, changed.service, now_local(), event_version(event))
        return True

    return bool(await apply_once(db, ROOM_CONSUMER, event, apply))

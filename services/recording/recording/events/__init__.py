"""Events recording consumes: conference's room changes, which keep ``room_setting`` (the record settings and
tenant auto-record and /record/* need) without reading conference's tables. Requests it answers: realtime's
``room-record`` toggle (RPC_RECORDING_TOGGLE).

Conference publishes ``conference.room.*`` with RoomChanged (``detail`` = the room's getRoomDetail object).
The tenant is read from ``detail.service`` or the event's ``service`` (conference adds it; without it the room
cannot record, as in the original).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from contracts import recording as ev
from contracts.conference import RoomQuery
from recording import recorder, repository
from servicekit.bus import Event, apply_once
from servicekit.db import Connection
from servicekit.web import Runtime

log = logging.getLogger(__name__)

ROOM_CONSUMER = "recording-room-settings"
MAX_ROOM = 50  # room_egress.room / record_media.room


def setting_from_event(data: dict[str, Any]) -> dict[str, Any] | None:
    detail = data.get("detail")
    room = data.get("room")
    if not isinstance(detail, dict) or not isinstance(room, str) or not room:
        return None
    setting = dict(detail)
    if setting.get("service") is None and data.get("service") is not None:
        setting["service"] = data["service"]
    setting["status"] = data.get("status") or detail.get("status") or ""
    return setting


async def start(runtime: Runtime) -> None:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db

    async def on_room(event: Event) -> None:
        setting = setting_from_event(event.data)
        if setting is None:
            return
        room = str(event.data["room"])[:50]

        async def apply(conn: Connection) -> None:
            await repository.upsert_room_setting(conn, room, setting)

        await apply_once(db, ROOM_CONSUMER, event, apply)

    runtime.bus.consume("conference", ROOM_CONSUMER, on_room, filter_subject="conference.room.>")

    async def on_toggle(query: RoomQuery) -> dict[str, Any]:
        room = query.room.strip()
        if not room or len(room) > MAX_ROOM:
            raise msgspec.ValidationError(f"room must be 1 to {MAX_ROOM} characters")  # -> bad_request
        return await recorder.toggle(runtime, room)

    await runtime.bus.serve(ev.RPC_RECORDING_TOGGLE, RoomQuery, on_toggle)

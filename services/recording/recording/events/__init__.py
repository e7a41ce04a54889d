"""All that crosses NATS or runs in the background. Here: the events recording consumes, conference's room changes,
which keep ``room_setting`` (the record settings and tenant auto-record and /record/* need) without reading
conference's tables; the request it answers, realtime's ``room-record`` toggle (RPC_RECORDING_TOGGLE).

By topic: :mod:`.recorder` (a room's egress: start, stop, toggle, auto-record, start-up reconcile, the room
settings asked of conference, /record/request's usage events), :mod:`.webhooks` (LiveKit's webhooks applied and
published, their follow-up calls), :mod:`.uploads` (stored files and their events), :mod:`.encode` (the retried
encode job), :mod:`.livekit_nodes` (each LiveKit node's credentials, asked of conference), :mod:`.rebuild`
(the snapshot others rebuild from, and the rebuild of room_setting).

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
from recording import domain, repository
from recording.events import rebuild as rebuilding
from recording.events import recorder
from servicekit import rebuild
from servicekit.bus import Event, apply_once
from servicekit.db import Connection
from servicekit.web import Runtime

log = logging.getLogger(__name__)

ROOM_CONSUMER = "recording-room-settings"
MAX_ROOM = 50  # room_egress.room / record_media.room


async def start(runtime: Runtime) -> None:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db

    async def on_room(event: Event) -> None:
        setting = domain.setting_from_event(event.data)
        if setting is None:
            return
        room = str(event.data["room"])[:50]

        async def apply(conn: Connection) -> None:
            await repository.upsert_room_setting(conn, room, setting, rebuild.event_version(event))

        await apply_once(db, ROOM_CONSUMER, event, apply)

    runtime.bus.consume("conference", ROOM_CONSUMER, on_room, filter_subject="conference.room.>", batch_db=db)

    async def on_toggle(query: RoomQuery) -> dict[str, Any]:
        room = query.room.strip()
        if not room or len(room) > MAX_ROOM:
            raise msgspec.ValidationError(f"room must be 1 to {MAX_ROOM} characters")  # -> bad_request
        return await recorder.toggle(runtime, room)

    await runtime.bus.serve(ev.RPC_RECORDING_TOGGLE, RoomQuery, on_toggle)
    await rebuilding.serve(runtime)

"""Recording's egress state, for the recording tests (fixtures ``lk`` and ``conference_bus`` live in conftest.py):
a room name of the test's own (``new_room``), conference's room settings announced to recording
(``room_settings``), the Egress API calls the fake LiveKit got (``starts``), recording's rows (``media``, ``claim``,
``usage``) and ``poll``. One of the topic modules of test helpers listed in support.py."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from contracts.conference import ROOM_CREATED, RoomChanged
from contracts.recording import RECORDING_RECORD_USAGE
from servicekit.bus import Bus, new_event
from tests.fakes.livekit import FakeLiveKit


def new_room() -> str:
    return "rec-" + uuid.uuid4().hex[:10]


async def poll(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """``check``'s value once it is truthy, or its last value when ``timeout`` has passed (the caller asserts)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def room_settings(suite: Any, bus: Bus, room: str, **detail: Any) -> None:
    """Conference announces a room (RoomChanged with its detail); wait until recording knows it."""
    body = {"id": 1, "status": "open", "room": room, "roomType": "conference", "recordId": "", "autoRecord": 0,
            "recordType": "", "encodingOptionsPreset": "", "service": 7, **detail}  # fmt: skip
    changed = RoomChanged(room=room, roomType="conference", status="open", detail=body)
    await bus.publish_event(new_event(ROOM_CREATED, changed))

    async def known() -> bool:
        rows = await suite.query("recording", "SELECT * FROM room_setting WHERE room = %s", (room,))
        return bool(rows) and rows[0]["autoRecord"] == int(body["autoRecord"]) and rows[0]["service"] == body["service"]

    assert await poll(known), "room settings never reached recording"


def starts(livekit: FakeLiveKit, room: str, method: str = "StartRoomCompositeEgress") -> list[Any]:
    return [c for c in livekit.calls_of(method) if c.request.get("roomName") == room]


async def media(suite: Any, room: str) -> list[dict[str, Any]]:
    return await suite.query("recording", "SELECT * FROM record_media WHERE room = %s ORDER BY id", (room,))


async def claim(suite: Any, room: str) -> dict[str, Any] | None:
    rows = await suite.query("recording", "SELECT * FROM room_egress WHERE room = %s", (room,))
    return rows[0] if rows else None


async def usage(suite: Any, room: str) -> list[dict[str, Any]]:
    rows = await suite.query("recording", "SELECT payload FROM outbox WHERE subject = %s", (RECORDING_RECORD_USAGE,))
    return [e for e in (json.loads(r["payload"]) for r in rows) if e["data"]["room"] == room]

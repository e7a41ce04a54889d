"""data_log: every LiveKit webhook recording accepts reaches telemetry as ``recording.webhook.received`` and is
written once, raw, to data_log (as the original's webhook receiver did)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from contracts.recording import RECORDING_WEBHOOK_RECEIVED, WebhookReceived
from servicekit.bus import new_event
from tests.fakes import livekit_webhooks as lkw


async def _rows(suite: Any, needle: str) -> list[dict[str, Any]]:
    return await suite.query(
        "telemetry", "SELECT id, data, dtmCreated FROM data_log WHERE data LIKE %s ORDER BY id", (f"%{needle}%",)
    )


async def _wait_rows(suite: Any, needle: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await _rows(suite, needle)
        if len(rows) >= count or asyncio.get_running_loop().time() > deadline:
            return rows
        await asyncio.sleep(0.2)


async def _publish(nc: Any, payload: dict[str, Any], event_id: str | None = None, msg_id: str | None = None) -> str:
    event = new_event(RECORDING_WEBHOOK_RECEIVED, payload)
    if event_id:
        event.id = event_id
    js = nc.jetstream()
    body = json.dumps({"id": event.id, "subject": event.subject, "version": 1, "occurred_at": event.occurred_at,
                       "data": event.data}).encode()  # fmt: skip
    await js.publish(RECORDING_WEBHOOK_RECEIVED, body, headers={"Nats-Msg-Id": msg_id or uuid.uuid4().hex})
    return event.id


async def test_webhooks_through_recording_land_in_data_log(suite: Any) -> None:
    if "recording" not in suite.services:
        pytest.skip("needs the recording service")
    key, secret = suite.env["LIVEKIT_API_KEY"], suite.env["LIVEKIT_API_SECRET"]
    room = "tlm-" + uuid.uuid4().hex[:10]
    body = lkw.event("participant_joined", room=room, participant=lkw.participant("agent-tlm"))
    async with httpx.AsyncClient(base_url=suite.edge, timeout=15) as client:
        assert (await lkw.post(client, body, key, secret)).status_code == 200
        assert (await lkw.post(client, body, key, secret)).status_code == 200  # LiveKit's retry: same event id
    rows = await _wait_rows(suite, room, 1)
    assert len(rows) == 1
    assert json.loads(rows[0]["data"]) == body
    assert rows[0]["dtmCreated"] is not None
    await asyncio.sleep(1.0)
    assert len(await _rows(suite, room)) == 1


async def test_each_event_is_written_once(suite: Any, nc: Any) -> None:
    room = "tlm-" + uuid.uuid4().hex[:10]
    raw = json.dumps({"event": "room_started", "id": "EV_" + room, "room": {"name": room}})
    payload = WebhookReceived(eventId="EV_" + room, event="room_started", room=room, data=raw, createdAt=1)
    data = {f: getattr(payload, f) for f in payload.__struct_fields__}
    event_id = await _publish(nc, data)
    await _publish(nc, data, event_id=event_id)  # redelivered with another message id: applied once
    rows = await _wait_rows(suite, room, 1)
    assert [r["data"] for r in rows] == [raw]
    await asyncio.sleep(1.0)
    assert len(await _rows(suite, room)) == 1
    handled = await suite.query(
        "telemetry", "SELECT COUNT(*) AS n FROM handled_event WHERE consumer = %s AND event_id = %s",
        ("telemetry-data-log", event_id),
    )  # fmt: skip
    assert handled[0]["n"] == 1


async def test_malformed_events_are_dropped_and_later_ones_applied(suite: Any, nc: Any) -> None:
    room = "tlm-" + uuid.uuid4().hex[:10]
    await _publish(nc, {"event": "room_started", "room": room})  # no eventId, no data
    await _publish(nc, {"eventId": 5, "event": ["x"], "data": {"room": room}})  # wrong types
    raw = json.dumps({"event": "room_finished", "room": {"name": room}})
    good = {"eventId": "EV_" + room, "event": "room_finished", "room": room, "data": raw, "createdAt": 2}
    await _publish(nc, good)
    rows = await _wait_rows(suite, room, 1)
    assert [r["data"] for r in rows] == [raw]
    await asyncio.sleep(0.5)
    assert len(await _rows(suite, room)) == 1

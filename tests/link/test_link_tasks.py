"""What link does for telemetry's car tasks: rpc.link.service.detail, and the telemetry.sms.requested command
applied once per messageId through link's SMS path (the suite's link records SMS rows as `disabled`)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.support import rpc

TENANT = "rpc.link.service.detail"


async def _command(nc: Any, data: dict[str, Any], event_id: str | None = None) -> None:
    envelope = {"id": event_id or uuid.uuid4().hex, "subject": "telemetry.sms.requested", "version": 1,
                "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"), "data": data}  # fmt: skip
    await nc.jetstream().publish("telemetry.sms.requested", json.dumps(envelope).encode(),
                                 headers={"Nats-Msg-Id": uuid.uuid4().hex})  # fmt: skip


async def _until_rows(suite: Any, uid: str, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = await _rows(suite, uid)
        if rows or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


async def _rows(suite: Any, uid: str) -> list[dict[str, Any]]:
    sql = "SELECT id, mobile, sender, text, kind, status, linkID FROM sms_message WHERE linkID = %s"
    return await suite.query("link", sql, (uid,))


async def test_tenant_detail(nc: Any) -> None:
    found = await rpc(nc, TENANT, {"service": 999})
    assert found["ok"] and found["data"] == {"id": 999, "name": "Default", "latitude": None, "longitude": None}
    missing = await rpc(nc, TENANT, {"service": 4_000_000})
    assert missing["ok"] is False and missing["code"] == "not_found"
    bad = await rpc(nc, TENANT, {"service": "x'; DROP TABLE services; --"})
    assert bad["ok"] is False and bad["code"] == "bad_request"


async def test_task_sms_once_per_message(suite: Any, nc: Any) -> None:
    uid = "task" + uuid.uuid4().hex[:8]
    message_id = uuid.uuid4().hex
    data = {"messageId": message_id, "mobile": "0819990000", "room": "Task Room", "linkID": uid,
            "path": f"/app/{uid}", "service": 999}  # fmt: skip
    event_id = uuid.uuid4().hex
    await _command(nc, data, event_id)
    await _command(nc, data, event_id)  # a redelivery of the same event
    await _command(nc, data)  # the same command in another event
    assert await _until_rows(suite, uid)
    await asyncio.sleep(1.5)  # let the repeats arrive
    rows = await _rows(suite, uid)
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == message_id and row["mobile"] == "0819990000" and row["sender"] == "iDEMS"
    assert row["text"] == f"Task \nhttps://localhost:3000/app/{uid}" and row["kind"] == "task"
    assert row["status"] == "disabled"  # SMS_ENABLE=false in the suite


async def test_task_sms_without_tenant_domain_sends_nothing(suite: Any, nc: Any) -> None:
    uid = "task" + uuid.uuid4().hex[:8]
    await _command(nc, {"messageId": uuid.uuid4().hex, "mobile": "0819990001", "room": "Nobody Room", "linkID": uid,
                        "path": f"/app/{uid}"})  # fmt: skip
    marker = "task" + uuid.uuid4().hex[:8]
    await _command(nc, {"messageId": uuid.uuid4().hex, "mobile": "0819990002", "room": "R", "linkID": marker,
                        "path": f"/app/{marker}", "service": 999})  # fmt: skip
    assert await _until_rows(suite, marker)  # the later command is applied, the earlier one sent nothing
    assert await _rows(suite, uid) == []

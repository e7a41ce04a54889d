"""Telemetry's car tasks and what they need, for the telemetry and realtime tests: task rows (``seed_task``,
``tasks_of``, ``new_uid``), link's events as its outbox relay publishes them (``publish_link_event``,
``link_created``: a link telemetry has learnt), matching events on a subscription (``next_event``), a tenant of
link's (``make_tenant``) and a patient link made by link whose room telemetry knows (``make_linked_room``). One of
the topic modules of test helpers listed in support.py."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from contracts.link import LINK_CREATED
from tests.support import until


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


async def seed_task(suite: Any, room: str, uid: str, status: str = "open", **extra: Any) -> int:
    columns = {"uid": uid, "room": room, "status": status, "mobile": "0812345678",
               "dtmCreated": "2024-05-01 10:00:00", "dtmUpdated": "2024-05-01 10:05:00", **extra}  # fmt: skip
    names = ", ".join(f"`{c}`" for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    await suite.execute("telemetry", f"INSERT INTO car_track ({names}) VALUES ({marks})", tuple(columns.values()))  # noqa: S608 (test-owned column names)
    rows = await suite.query("telemetry", "SELECT id FROM car_track WHERE uid = %s", (uid,))
    return int(rows[0]["id"])


async def tasks_of(suite: Any, room: str) -> list[dict[str, Any]]:
    return await suite.query("telemetry", "SELECT * FROM car_track WHERE room = %s ORDER BY id", (room,))


def new_uid() -> str:
    return uuid.uuid4().hex[:10]


async def publish_link_event(nc: Any, subject: str, data: dict[str, Any], event_id: str | None = None) -> str:
    """An event as link's (or conference's) outbox relay publishes it."""
    event_id = event_id or uuid.uuid4().hex
    envelope = {"id": event_id, "subject": subject, "version": 1,
                "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"), "data": data}  # fmt: skip
    await nc.jetstream().publish(subject, json.dumps(envelope).encode(), headers={"Nats-Msg-Id": uuid.uuid4().hex})
    return event_id


async def link_created(suite: Any, nc: Any, room: str, service: int, user_type: str = "user") -> str:
    link_id = uuid.uuid4().hex[:8]
    await publish_link_event(nc, LINK_CREATED, {
        "linkID": link_id, "room": room, "linkType": "video", "userType": user_type, "userName": "0811111111",
        "mobile": "0811111111", "service": service, "roomCreated": False,
    })  # fmt: skip

    async def known() -> Any:
        return await suite.query("telemetry", "SELECT id FROM car_room_link WHERE linkID = %s", (link_id,))

    await until(known)
    return link_id


async def next_event(sub: Any, match: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError("no matching event")
        msg = await sub.next_msg(timeout=left)
        event = json.loads(msg.data)
        if match(event["data"]):
            return event


def _service_id() -> int:
    """A tenant id of this test alone (link's services.id is INT UNSIGNED; the seeded tenant is 999)."""
    return 100_000 + int(uuid.uuid4().hex[:7], 16)


async def make_tenant(suite: Any, client: httpx.AsyncClient, name: str, latitude: float, longitude: float) -> int:
    """A tenant link knows about. Link has no route creating one (tenants are provisioned in its database), so
    the row is seeded there; its name and position are then set through the edge (PUT /service/update)."""
    service = _service_id()
    await suite.execute(
        "link",
        "INSERT INTO services (id, name, webTitle, prefixTextVideoSMS, prefixTextLocationSMS, domainsVideo,"
        " domainsLocation, smsSenderName, logo, titleColor) VALUES (%s, 'new', 'T', 'Video', 'Loc',"
        " 'https://v.example', 'https://l.example', 'SENDER', 't.png', '#112233')",
        (service,),
    )
    body = {"service": service, "name": name, "latitude": latitude, "longitude": longitude}
    updated = await client.put("/service/update", json=body, headers=_auth(suite))
    assert updated.status_code == 200, updated.text
    return service


def _link_room() -> str:
    return "Car" + "".join(chr(ord("a") + b % 26) for b in uuid.uuid4().bytes[:10])


async def make_linked_room(suite: Any, client: httpx.AsyncClient, service: int) -> tuple[str, str]:
    """(room, linkID): a patient link of tenant ``service`` made by link (which has conference open the room),
    once telemetry has learnt it from link's events."""
    room = _link_room()
    created = await client.post(
        "/link/create", json={"room": room, "mobile": "0812345678", "service": service, "sms": 0}, headers=_auth(suite)
    )
    assert created.status_code == 200, created.text
    link_id = created.json()["linkID"]

    async def learnt() -> Any:
        return await suite.query("telemetry", "SELECT service FROM car_room_link WHERE linkID = %s", (link_id,))

    assert (await until(learnt))[0]["service"] == service
    return room, link_id

"""Conference notifications through the edge: /notification/* (the original gateway's shapes) and the SSE feed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest

INJECTION = "1' OR '1'='1'; DROP TABLE notification; --"
NOTIFICATION_KEYS = [
    "notificationId",
    "userName",
    "mobile",
    "message",
    "caseId",
    "read",
    "notificationType",
    "relatedUrl",
    "dtmRead",
    "dtmCreated",
]


@pytest.fixture
async def client(suite):
    headers = {"Authorization": f"Bearer {suite.agent_token()}"}
    async with httpx.AsyncClient(base_url=suite.edge, timeout=15, headers=headers) as http:
        yield http


async def count(suite) -> int:
    return (await suite.query("conference", "SELECT COUNT(*) AS n FROM notification"))[0]["n"]


async def create(client, **body: Any) -> dict[str, Any]:
    reply = await client.post("/notification", json={"message": "m", **body})
    assert reply.status_code == 201, reply.text
    return reply.json()["data"]


@asynccontextmanager
async def sse(suite) -> AsyncIterator[tuple[httpx.Response, asyncio.Queue[dict[str, Any]]]]:
    """An SSE client through the edge; yields the response and a queue of decoded `data:` events."""
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    async with httpx.AsyncClient(base_url=suite.edge, timeout=httpx.Timeout(10, read=60)) as http:
        # An EventSource of another origin (the agent console) sends its Origin; the allow-origin answers it.
        async with http.stream(
            "GET", "/notification/events", headers={"Origin": "https://console.example"}
        ) as response:

            async def reader() -> None:
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        await events.put(json.loads(line[5:].strip()))

            task = asyncio.create_task(reader())
            try:
                yield response, events
            finally:
                task.cancel()


async def next_event(events: asyncio.Queue[dict[str, Any]], timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        return await events.get()


async def test_health_and_stats(suite, client):
    health = await client.get("/notification/health")
    assert health.json() == {"status": "ok", "service": "notification-routes-gateway"}
    await create(client, message="for stats")
    stats = (await client.get("/notification/service/stats")).json()
    assert stats["success"] is True
    gateway = stats["data"]["gateway"]
    assert gateway["service"] == "api-node-backend-gateway" and isinstance(gateway["activeSSEConnections"], int)
    service = stats["data"]["notificationService"]
    assert service["total"] == await count(suite) and service["total"] == service["read"] + service["unread"]


async def test_create_get_read_unread_and_list(suite, client):
    user = "u" + uuid.uuid4().hex[:8]
    created = await client.post(
        "/notification",
        json={"userName": user, "message": "มีเคสใหม่", "caseId": 1024, "notificationType": "alert",
              "relatedUrl": "/case/1024", "mobile": "0812345678"},
    )  # fmt: skip
    assert created.status_code == 201
    body = created.json()
    assert (
        body["success"] is True and body["message"] == "Notification created successfully" and body["via"] == "gateway"
    )
    note = body["data"]
    assert list(note) == NOTIFICATION_KEYS
    assert (note["userName"], note["message"], note["caseId"], note["read"], note["dtmRead"]) == (
        user,
        "มีเคสใหม่",
        1024,
        0,
        None,
    )
    assert note["dtmCreated"].endswith("Z")
    nid = note["notificationId"]

    one = (await client.get(f"/notification/{nid}")).json()
    assert one == {"success": True, "data": note, "via": "gateway"}
    unread = (await client.get("/notification/unread", params={"limit": "1000"})).json()
    assert unread["success"] is True and unread["via"] == "gateway" and unread["count"] == len(unread["data"])
    assert nid in [n["notificationId"] for n in unread["data"]]

    read = await client.put(f"/notification/{nid}", json={"read": "1"})
    assert read.status_code == 200
    answer = read.json()
    assert answer["success"] is True and answer["message"] == "Notification updated successfully"
    assert answer["data"]["notificationId"] == nid and answer["data"]["read"] == 1
    assert answer["notification"]["read"] == 1 and answer["notification"]["dtmRead"] is not None
    row = (
        await suite.query("conference", "SELECT `read`, dtmRead FROM notification WHERE notificationId = %s", (nid,))
    )[0]
    assert row["read"] == 1 and row["dtmRead"] is not None
    unread = (await client.get("/notification/unread", params={"limit": "1000"})).json()
    assert nid not in [n["notificationId"] for n in unread["data"]]

    again = (await client.put(f"/notification/update/{nid}", json={"read": 0})).json()
    assert again["notification"]["read"] == 0 and again["notification"]["dtmRead"] is None
    events = await suite.query(
        "conference", "SELECT subject, payload FROM outbox WHERE subject LIKE 'conference.notification.%%'"
    )
    mine = [
        (r["subject"], json.loads(r["payload"])["data"]["read"])
        for r in events
        if json.loads(r["payload"])["data"]["notificationId"] == nid
    ]
    assert mine == [
        ("conference.notification.created", 0),
        ("conference.notification.read", 1),
        ("conference.notification.read", 0),
    ]

    await create(client, userName=user, message="second", notificationType="info")
    listed = (await client.get("/notification", params={"userName": user, "limit": 1, "page": 2})).json()
    assert listed["success"] is True and listed["via"] == "gateway"
    assert listed["pagination"] == {"page": 2, "limit": 1, "total": 2, "totalPages": 2}
    assert [n["notificationId"] for n in listed["data"]] == [nid]  # newest first: page 2 holds the first one
    only_alerts = (
        await client.get("/notification", params={"userName": user, "notificationType": "alert", "read": "0"})
    ).json()
    assert [n["notificationId"] for n in only_alerts["data"]] == [nid]
    nothing = (await client.get("/notification", params={"userName": user, "startDate": "2099-01-01 00:00:00"})).json()
    assert nothing["data"] == [] and nothing["pagination"]["total"] == 0


async def test_sse_feed_gets_new_notifications_and_events_from_other_replicas(suite, client, nc):
    async with sse(suite) as (response, events):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["access-control-allow-origin"] == "*"
        hello = await next_event(events)
        assert (
            hello["type"] == "gateway_connected" and hello["message"] == "Connected to notification service via gateway"
        )
        stats = (await client.get("/notification/service/stats")).json()
        assert stats["data"]["gateway"]["activeSSEConnections"] >= 1

        note = await create(client, message="live " + uuid.uuid4().hex[:6])
        pushed = await next_event(events)
        assert pushed == note

        # Another replica's notification reaches this replica's clients through NATS, not through memory.
        foreign = {"notificationId": 987654321, "message": "from replica B", "read": 0}
        event = {
            "id": uuid.uuid4().hex,
            "subject": "conference.notification.created",
            "version": 1,
            "occurred_at": "2026-01-01T00:00:00.000+00:00",
            "data": foreign,
        }
        await nc.jetstream().publish("conference.notification.created", json.dumps(event).encode())
        assert await next_event(events) == foreign
    await asyncio.sleep(0.5)
    after = (await client.get("/notification/service/stats")).json()
    assert after["data"]["gateway"]["activeSSEConnections"] == stats["data"]["gateway"]["activeSSEConnections"] - 1


async def test_writes_require_a_valid_token(suite, client):
    nid = (await create(client, message="guarded"))["notificationId"]
    before = await count(suite)
    bad = jwt.encode({"iss": "devkey", "exp": 9999999999}, "wrong-secret-wrong-secret-wrong!", "HS256")
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as anonymous:
        for headers in ({}, {"Authorization": f"Bearer {bad}"}):
            created = await anonymous.post("/notification", json={"message": "x"}, headers=headers)
            assert created.status_code == 200 and created.json()["status"] == "FAIL"
            for path in (f"/notification/{nid}", f"/notification/update/{nid}"):
                updated = await anonymous.put(path, json={"read": 1}, headers=headers)
                assert updated.status_code == 200 and updated.json()["status"] == "FAIL"
    assert await count(suite) == before
    row = (await suite.query("conference", "SELECT `read` FROM notification WHERE notificationId = %s", (nid,)))[0]
    assert row["read"] == 0


async def test_bad_input_writes_nothing(suite, client):
    nid = (await create(client, message="target"))["notificationId"]
    before = await count(suite)
    for body, message in (
        ({}, "Message is required"),
        ({"message": ""}, "Message is required"),
        ({"message": None, "userName": "x"}, "Message is required"),
    ):
        reply = await client.post("/notification", json=body)
        assert reply.status_code == 400 and reply.json() == {"success": False, "message": message}
    for body in (
        {"message": "x" * 501},
        {"message": "m", "userName": "u" * 101},
        {"message": "m", "caseId": "abc"},
        {"message": "m", "caseId": 99999999999},
        {"message": ["m"]},
    ):
        reply = await client.post("/notification", json=body)
        assert reply.status_code == 400 and reply.json()["success"] is False, body
    for raw in (b"nope", b"[]", b'{"message":"' + b"x" * 2_000_000 + b'"}'):
        reply = await client.post("/notification", content=raw, headers={"content-type": "application/json"})
        assert reply.status_code in (400, 413)
    # ids and read flags
    for path in ("/notification/abc", f"/notification/{INJECTION}", "/notification/99999999999", "/notification/-1"):
        reply = await client.get(path)
        assert reply.status_code in (400, 404) and reply.json()["success"] is False, path
        reply = await client.put(path, json={"read": 1})
        assert reply.status_code in (400, 404) and reply.json()["success"] is False, path
    missing = await client.get("/notification/2000000000")
    assert missing.status_code == 404 and missing.json() == {"success": False, "message": "Notification not found"}
    assert (await client.put("/notification/2000000000", json={"read": 1})).status_code == 404
    for body in ({}, {"read": None}):
        reply = await client.put(f"/notification/{nid}", json=body)
        assert reply.status_code == 400 and reply.json() == {"success": False, "message": "Read status is required"}
    for body in ({"read": 2}, {"read": "yes"}, {"read": INJECTION}, {"read": [1]}):
        reply = await client.put(f"/notification/update/{nid}", json=body)
        assert reply.status_code == 400 and reply.json()["success"] is False, body
    # list and unread filters
    for params in ({"limit": "-5"}, {"limit": "100000"}, {"read": "x"}, {"read": "7"}, {"startDate": "soon"},
                   {"userName": "u" * 200}, {"page": "-3"}):  # fmt: skip
        reply = await client.get("/notification", params=params)
        assert reply.status_code == 400 and reply.json()["success"] is False, params
    injected = (await client.get("/notification", params={"userName": INJECTION, "notificationType": INJECTION})).json()
    assert injected["data"] == [] and injected["pagination"]["total"] == 0
    assert (await client.get("/notification/unread", params={"limit": "abc"})).json()["success"] is True  # NaN -> 50
    assert (await client.get("/notification/unread", params={"limit": "5000"})).status_code == 400
    assert await count(suite) == before
    row = (await suite.query("conference", "SELECT `read` FROM notification WHERE notificationId = %s", (nid,)))[0]
    assert row["read"] == 0

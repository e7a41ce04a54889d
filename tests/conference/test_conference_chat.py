"""Conference chat: GET /chat/history, GET /chat/notification through the edge, and rpc.conference.chat.store."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.support import rpc

ENSURE = "rpc.conference.room.ensure"
STORE = "rpc.conference.chat.store"
INJECTION = "x' OR '1'='1'; DROP TABLE chat_message; --"


def room_name() -> str:
    return "Ch" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


async def make_room(nc) -> tuple[str, int]:
    room = room_name()
    reply = await rpc(nc, ENSURE, {"room": room, "service": 999})
    assert reply["ok"], reply
    return room, reply["data"]["room"]["id"]


async def chat_count(suite, room: str) -> int:
    rows = await suite.query("conference", "SELECT COUNT(*) AS n FROM chat_message WHERE room = %s", (room,))
    return rows[0]["n"]


# ---- store (Socket.IO chat-message through realtime) ------------------------------------------------------
async def test_store_then_history_in_original_shape(suite, nc):
    room, _ = await make_room(nc)
    first = await rpc(
        nc,
        STORE,
        {
            "room": room,
            "identity": "abc123",
            "chat_identity": "abc123",
            "userName": "Dr A",
            "userType": "admin",
            "text": "hello",
            "color": "#1E90FF",
            "files": [{"url": "https://x/y.png", "name": "y.png"}],
        },
    )
    assert first["ok"], first
    assert isinstance(first["data"]["messageId"], int)
    assert first["data"]["roomStatus"] == "open"
    assert first["data"]["messageUnread"] is False  # an admin's message never raises the flag
    second = await rpc(
        nc,
        STORE,
        {
            "room": room,
            "identity": "p1",
            "userName": "Guest-1",
            "userType": "user",
            "text": "ตอบ",
            "replyToMessageId": 5,
        },
    )
    assert second["ok"], second
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as client:
        response = await client.get("/chat/history", params={"room": room})
    assert response.status_code == 200
    rows = response.json()
    assert [r["text"] for r in rows] == ["hello", "ตอบ"]
    assert list(rows[0]) == [
        "id",
        "room",
        "identity",
        "chat_identity",
        "userName",
        "userType",
        "text",
        "color",
        "files",
        "replyToMessageId",
        "replyToUserName",
        "replyToText",
        "dtmCreated",
    ]
    assert rows[0]["files"] == [{"url": "https://x/y.png", "name": "y.png"}]
    assert rows[0]["id"] == first["data"]["messageId"]
    assert rows[0]["replyToMessageId"] == 0 and rows[0]["replyToUserName"] == "null"
    assert rows[1]["files"] == "" and rows[1]["replyToMessageId"] == 5 and rows[1]["chat_identity"] is None
    assert rows[0]["dtmCreated"].endswith("Z") and "T" in rows[0]["dtmCreated"]


async def test_patient_message_raises_unread_once_and_counts_in_chat_notification(suite, nc):
    room, room_id = await make_room(nc)
    service = 990000 + uuid.uuid4().int % 9999
    await suite.execute(
        "conference",
        "INSERT INTO case_data (caseId, service, roomId, status, dtmCreated) VALUES (%s, %s, %s, 'On Case', NOW())",
        (77, service, room_id),
    )
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as client:
        before = (await client.get("/chat/notification", params={"service": service})).json()
        assert before == {"number": 0, "caseList": []}
        first = await rpc(nc, STORE, {"room": room, "identity": "p1", "userType": "user", "text": "help"})
        again = await rpc(nc, STORE, {"room": room, "identity": "p1", "userType": "user", "text": "help!"})
        assert first["data"]["messageUnread"] is True and again["data"]["messageUnread"] is False
        after = (await client.get("/chat/notification", params={"service": str(service)})).json()
        assert after == {"number": 1, "caseList": [{"caseId": 77}]}
    rows = await suite.query("conference", "SELECT messageUnread FROM room_conference WHERE id = %s", (room_id,))
    assert rows[0]["messageUnread"] == 1
    outbox = await suite.query("conference", "SELECT subject, payload FROM outbox ORDER BY id")
    changed = [json.loads(r["payload"]) for r in outbox if r["subject"] == "conference.room.detail_changed"]
    assert any(e["data"]["room"] == room and e["data"]["detail"]["messageUnread"] == 1 for e in changed)


async def test_store_rejects_bad_input_and_writes_nothing(suite, nc):
    room, _ = await make_room(nc)
    for payload in (
        {"identity": "x"},  # no room
        {"room": room, "replyToMessageId": "abc"},
        {"room": room, "text": "x" * 20000},
        {"room": room, "userName": "n" * 300},
        {"room": "   "},
    ):
        reply = await rpc(nc, STORE, payload)
        assert reply["ok"] is False and reply["code"] == "bad_request", (payload, reply)
    reply = await rpc(nc, STORE, b"not json")
    assert reply["code"] == "bad_request"
    assert await chat_count(suite, room) == 0


# ---- HTTP bad input --------------------------------------------------------------------------------------
async def test_history_bad_input(suite, nc):
    room, _ = await make_room(nc)
    await rpc(nc, STORE, {"room": room, "text": "kept"})
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as client:
        missing = await client.get("/chat/history")
        assert missing.status_code == 404 and missing.text == "Invalid room"
        empty = await client.get("/chat/history", params={"room": "NoSuchRoomAtAll"})
        assert empty.status_code == 200 and empty.json() == []
        injected = await client.get("/chat/history", params={"room": INJECTION})
        assert injected.status_code == 200 and injected.json() == []
        too_long = await client.get("/chat/history", params={"room": "r" * 300})
        assert too_long.status_code == 400 and too_long.json()["status"] == "FAIL"
        for service in (None, "", "abc", INJECTION, "99999999999999", "-1", "1.5"):
            params = {} if service is None else {"service": service}
            answer = await client.get("/chat/notification", params=params)
            assert answer.status_code == 200 and answer.json() == {"number": 0, "caseList": []}, service
    assert await chat_count(suite, room) == 1
    tables = await suite.query("conference", "SHOW TABLES LIKE 'chat_message'")
    assert len(tables) == 1

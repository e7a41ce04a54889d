"""Room namespace /{room} with the official JS client through the edge (tests/js/client.mjs): connection
sequence, presence in conference's room_user, chat, user-state events, admin commands, the waiting room, and
the token required on /newqueue, /queue and /notification."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
import pytest

from contracts.conference import NOTIFICATION_CREATED
from tests.sockets import (
    NODE,
    chat,
    client,
    joined,
    listen,
    participant,
    publish,
    room_name,
    room_user,
)
from tests.support import eventually

pytestmark = pytest.mark.usefixtures("needs_conference", "node_client", "consumers_ready")  # socket.io-client installed
INJECTION = "x' OR '1'='1'; DROP TABLE room_user; --"


@pytest.fixture(scope="module")
def needs_conference(suite: Any) -> None:
    if "conference" not in suite.services or "realtime" not in suite.services:
        pytest.skip("needs conference and realtime")


# ---- connection sequence and presence --------------------------------------------------------------------
async def test_connection_sequence_and_presence(suite: Any, room: str) -> None:
    admin_id, admin_token = participant(suite, room, "admin", "Dr. A")
    admin = await client(NODE, f"{suite.edge}/{room}", "--token", admin_token)
    patient = None
    try:
        await admin.connected()
        first = await admin.until("event")
        assert first["event"] == "log" and first["data"] == {"message": "connection success"}
        me = await admin.until("event", "user-connection")
        expected = {"camera": 1, "microphone": 1, "identity": admin_id, "userName": "Dr. A", "userType": "admin"}
        assert me["data"] == {**expected, "conference": 1}
        success = await admin.until("event", "connection-success")
        assert success["data"]["room"] == room and success["data"]["status"] == "open"
        assert success["data"]["recordId"] == ""
        # the admin is stored as connected with this socket id
        row = await room_user(suite, room, admin_id)
        assert row is not None and row["status"] == "connection" and row["socketId"] == admin.lines[0]["id"]
        assert row["color"] == "#123456" and row["userType"] == "admin"

        patient_id, patient_token = participant(suite, room, "user", "0812345678")
        patient = await joined(NODE, suite, room, patient_token)
        seen = await admin.until("event", "user-connection")
        assert seen["data"]["identity"] == patient_id and seen["data"]["userType"] == "user"

        await patient.leave()
        gone = await admin.until("event", "user-disconnect")
        assert gone["data"] == {"status": "disconnect", "identity": patient_id, "userName": "0812345678"}

        async def disconnected() -> bool:
            row = await room_user(suite, room, patient_id)
            return row is not None and row["status"] == "disconnect"

        await eventually(disconnected)
    finally:
        await admin.close()
        if patient is not None:
            await patient.close()


async def test_old_socket_leaving_does_not_mark_a_reconnected_user_gone(
    suite: Any,
    room: str,
) -> None:
    """§13.12: a page reload connects the new socket before the old one's disconnect is handled."""
    identity, token = participant(suite, room, "user", "0899999999")
    old = await joined(NODE, suite, room, token)
    new = await joined(NODE, suite, room, token)
    try:
        new_sid = new.lines[0]["id"]
        await eventually(lambda: _socket_is(suite, room, identity, new_sid))
        await old.leave()
        await new.until("event", "user-disconnect")
        await asyncio.sleep(0.5)
        row = await room_user(suite, room, identity)
        assert row is not None and row["status"] == "connection" and row["socketId"] == new_sid
    finally:
        await old.close()
        await new.close()


async def _socket_is(suite: Any, room: str, identity: str, sid: str) -> bool:
    row = await room_user(suite, room, identity)
    return row is not None and row["socketId"] == sid


# ---- chat ----------------------------------------------------------------------------------------------------
async def test_chat_message_is_stored_broadcast_and_raises_unread(
    suite: Any,
    room: str,
) -> None:
    patient_id, patient_token = participant(suite, room, "user", "0812345678")
    patient = await joined(NODE, suite, room, patient_token)
    queue = await client(NODE, f"{suite.edge}/newqueue", "--token", suite.agent_token())
    try:
        await queue.connected()
        await queue.until("event", "connection-success")
        message = chat("hello", patient_id)
        await patient.send("chat-message", message)
        echo = await patient.until("event", "chat-message")
        data = echo["data"]
        assert {k: data[k] for k in message} == message
        assert list(data)[-2:] == ["dtmcreated", "messageId"]  # the original's added fields, in its order
        assert isinstance(data["messageId"], int) and len(data["dtmcreated"]) == 19
        rows = await suite.query(
            "conference", "SELECT id, room, identity, text, files FROM chat_message WHERE room = %s", (room,)
        )
        assert rows == [
            {"id": data["messageId"], "room": room, "identity": patient_id, "text": "hello",
             "files": '[{"name":"a.png"}]'}
        ]  # fmt: skip
        # no admin connected: the dashboards hear about the unread message, once
        unread = await queue.until("event", "case-data")
        assert unread["data"] == {"action": "messageUnread", "room": room, "messageUnread": 1}
        await patient.send("chat-message", chat("again", patient_id))
        await patient.until("event", "chat-message")
        assert await queue.quiet("case-data", 1.0) == []
        # history: the namespace's room whatever the client asks, to the requester only
        await patient.send("get-chat-history", {"room": INJECTION})
        history = await patient.until("event", "chat-history")
        assert [row["text"] for row in history["data"]] == ["hello", "again"]
        assert history["data"][0]["files"] == [{"name": "a.png"}]
    finally:
        await patient.close()
        await queue.close()


@pytest.mark.parametrize(
    "bad",
    [
        "not an object",
        {"text": "x" * 70000},
        {"text": "hi", "replyToMessageId": "1; DROP TABLE chat_message"},
        {"text": "hi", "identity": "i" * 500},
        {"text": {"nested": True}},
    ],
)
async def test_bad_chat_messages_store_and_send_nothing(
    suite: Any,
    room: str,
    bad: Any,
) -> None:
    _, token = participant(suite, room, "admin", "Dr. A")
    sender = await joined(NODE, suite, room, token)
    try:
        await sender.send("chat-message", bad)
        await sender.send("chat-message", chat("marker", user_type="admin"))
        line = await sender.until("event", "chat-message")
        assert line["data"]["text"] == "marker"  # the bad one produced no chat-message before it
        rows = await suite.query("conference", "SELECT text FROM chat_message WHERE room = %s", (room,))
        assert rows == [{"text": "marker"}]
    finally:
        await sender.close()


# ---- user state ------------------------------------------------------------------------------------------------
async def test_user_state_events_update_room_user_and_echo(
    suite: Any,
    room: str,
) -> None:
    patient_id, token = participant(suite, room, "user", "0812345678")
    patient = await joined(NODE, suite, room, token)
    try:
        await patient.send("update-microphone-status", {"identity": patient_id, "microphone": True})
        await patient.until("event", "update-microphone-status")
        assert (await room_user(suite, room, patient_id) or {}).get("microphone") == 1
        await patient.send("update-microphone-status", {"identity": patient_id, "microphone": 0})
        assert (await patient.until("event", "update-microphone-status"))["data"] == {
            "identity": patient_id, "microphone": 0
        }  # fmt: skip
        await patient.send("user-conference", {"identity": patient_id, "conference": 0})
        await patient.until("event", "user-conference")
        await patient.send("update-camera-status", {"identity": patient_id, "camera": 0})
        await patient.send("update-username", {"room": room, "identity": patient_id, "userName": "Somchai"})
        echo = await patient.until("event", "update-username")
        assert echo["data"]["userName"] == "Somchai"
        listed = await patient.until("event", "user-list")
        assert listed["data"] == {"status": "updateUserName", "userList": echo["data"]}
        row = await room_user(suite, room, patient_id)
        assert row is not None
        assert (row["microphone"], row["conference"], row["camera"], row["userName"]) == (0, 0, 0, "Somchai")
        # garbage: wrong types and injection strings change nothing and are not echoed
        await patient.send("update-microphone-status", {"identity": patient_id, "microphone": "1 OR 1=1"})
        await patient.send("update-username", {"identity": INJECTION, "userName": "Evil"})
        await patient.send("user-conference", {"identity": patient_id, "conference": 7})
        assert await patient.quiet("update-microphone-status", 1.0) == []
        assert await room_user(suite, room, patient_id) == row
        assert await suite.query("conference", "SELECT id FROM room_user WHERE userName = 'Evil'", ()) == []
        await patient.send("get-user-detail", {"identity": patient_id})
        detail = await patient.until("event", "user-detail")
        assert detail["data"] == {"identity": patient_id, "userName": "0812345678", "userType": "user"}
    finally:
        await patient.close()


async def test_admin_commands_reach_the_target_only_from_admins(
    suite: Any,
    room: str,
) -> None:
    _, admin_token = participant(suite, room, "admin", "Dr. A")
    patient_id, patient_token = participant(suite, room, "user", "0812345678")
    other_id, other_token = participant(suite, room, "user", "0800000000")
    admin = await joined(NODE, suite, room, admin_token)
    patient = await joined(NODE, suite, room, patient_token)
    other = await joined(NODE, suite, room, other_token)
    try:
        # a patient cannot kick anyone (§13.3)
        await other.send("force-leave-conference", {"identity": patient_id})
        assert await patient.quiet("force-leave-conference", 1.0) == []
        await admin.send("force-stop-sharescreen", {"identity": f"{patient_id}_screen"})
        line = await patient.until("event", "force-stop-sharescreen")
        assert line["data"] == {"userType": "admin", "command": "stopShareScreen"}
        await admin.send("force-leave-conference", {"identity": patient_id})
        line = await patient.until("event", "force-leave-conference")
        assert line["data"] == {"userType": "admin", "command": "leaveConference"}
        assert not [x for x in other.lines if x["type"] == "event" and x["event"] == "force-leave-conference"]
        await other.send("agent-close-room", {"room": room})
        await admin.send("case-data", {"action": "custom", "n": 1})
        relayed = await other.until("event", "case-data")
        assert relayed["data"] == {"action": "custom", "n": 1}
        assert not [x for x in other.lines + admin.lines if x["type"] == "event" and x["event"] == "agent-close-room"]
    finally:
        for c in (admin, patient, other):
            await c.close()


# ---- waiting room ---------------------------------------------------------------------------------------------
async def test_waiting_room_request_repeat_and_admit(suite: Any, room: str) -> None:
    admin_id, admin_token = participant(suite, room, "admin", "Dr. A")
    _, guest_token = participant(suite, room, "user", "guest")
    admin = await joined(NODE, suite, room, admin_token)
    guest = await joined(NODE, suite, room, guest_token)
    try:
        guest_sid = guest.lines[0]["id"]
        await guest.send("auth-join-conference", {"room": "AnyOtherRoom", "userName": "Somsri"})
        entry = {"room": room, "userName": "Somsri", "socketID": guest_sid, "authJoin": "waiting"}
        first = await admin.until("event", "auth-join-conference")
        assert first["data"] == [entry]
        started = time.monotonic()
        again = await admin.until("event", "auth-join-conference", timeout=12)  # JOIN_ROOM_REPEAT_DELAY (5 s)
        assert again["data"] == [entry] and time.monotonic() - started > 3
        # a guest cannot admit itself
        await guest.send("auth-join-conference-answer", {"authJoin": "admit", "room": room, "socketID": guest_sid})
        assert await guest.quiet("auth-join-conference-answer", 1.0) == []
        await admin.send(
            "auth-join-conference-answer",
            {"authJoin": "admit", "room": room, "userName": "Somsri", "socketID": guest_sid},
        )
        answer = await guest.until("event", "auth-join-conference-answer")
        data = answer["data"]
        assert data["authJoin"] == "admit" and data["userName"] == "Somsri"
        claims = jwt.decode(data["token"], suite.env["LIVEKIT_API_SECRET"], algorithms=["HS256"])
        assert claims["sub"] == data["identity"] and claims["video"]["room"] == room
        assert json.loads(claims["metadata"])["userType"] == "user"
        emptied = await admin.until("event", "auth-join-conference")
        assert emptied["data"] == []  # the admins learn the list changed (§13.14)
        rows = await suite.query(
            "conference", "SELECT userName, status FROM room_user WHERE room = %s AND identity = %s",
            (room, data["identity"]),
        )  # fmt: skip
        assert rows == [{"userName": "Somsri", "status": "join"}]
        assert admin_id != data["identity"]
    finally:
        await admin.close()
        await guest.close()


async def test_waiting_guest_leaving_is_removed_and_deny(suite: Any, room: str) -> None:
    _, admin_token = participant(suite, room, "admin", "Dr. A")
    _, guest_token = participant(suite, room, "user", "guest")
    admin = await joined(NODE, suite, room, admin_token)
    guest = await joined(NODE, suite, room, guest_token)
    second = await joined(NODE, suite, room, guest_token)
    try:
        await guest.send("auth-join-conference", {"room": room, "userName": "A"})
        await admin.until("event", "auth-join-conference")
        await second.send("auth-join-conference", {"room": room, "userName": "B"})
        both = await admin.until("event", "auth-join-conference")
        assert [e["userName"] for e in both["data"]] == ["A", "B"]
        await guest.leave()
        after = await admin.until("event", "auth-join-conference")
        assert [e["userName"] for e in after["data"]] == ["B"]
        await admin.send(
            "auth-join-conference-answer", {"authJoin": "deny", "room": room, "socketID": second.lines[0]["id"]}
        )
        denied = await second.until("event", "auth-join-conference-answer")
        assert denied["data"] == {"authJoin": "deny", "identity": None, "userName": "B", "token": None}
        assert (await admin.until("event", "auth-join-conference"))["data"] == []
    finally:
        for c in (admin, guest, second):
            await c.close()


# ---- dashboards ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("namespace", ["/newqueue", "/queue", "/notification"])
async def test_dashboard_namespaces_need_an_agent_token(
    suite: Any,
    namespace: str,
) -> None:
    room = room_name()
    _, patient_token = participant(suite, room, "user", "0812345678")
    for args in ([], ["--token", "garbage"], ["--token", patient_token], ["--token", suite.agent_token(ttl=-60)]):
        listener = await listen(NODE, f"{suite.edge}{namespace}", *args, "--timeout", "8000")
        try:
            line = await listener.next(12)
            assert line == {"type": "connect_error", "message": "Authentication error", "data": None}, args
        finally:
            await listener.close()


async def test_notification_namespace_gets_created_notifications(
    suite: Any,
) -> None:
    listener = await listen(
        NODE, f"{suite.edge}/notification", "--token", suite.agent_token(),
        "--events", "new", "--timeout", "20000",
    )  # fmt: skip
    try:
        await listener.connected()
        hello = await listener.until("event", "log")
        assert hello["data"] == {"message": "connected to notifications"}
        row = {"notificationId": 7, "userName": "agent", "message": "New case", "read": 0}
        await publish(suite.nats_url, "conference", NOTIFICATION_CREATED, row)
        line = await listener.until("event", "new", timeout=15)
        assert line["data"] == row
    finally:
        await listener.close()

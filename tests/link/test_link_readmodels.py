"""GET /link/getdetail in one hop: link's read models of conference's rooms and room users and of LiveKit's
participants, fed by events (issue 5), the RPC fallback on a miss, and the user-agent write handed back to
conference as an event."""

from __future__ import annotations

import json
import signal
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt

from tests.support import rpc, until

ANDROID_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126 Mobile"
IPHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
TOKEN = "rpc.conference.participant.token"


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


def _room_name() -> str:
    return "Rv " + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


async def _create(suite: Any, client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(f"{suite.edge}/link/create", json={"sms": 0, **body}, headers=_auth(suite))
    assert response.status_code == 200, response.text
    return response.json()


async def _detail(client: httpx.AsyncClient, suite: Any, ua: str = ANDROID_UA, **params: str) -> httpx.Response:
    return await client.get(f"{suite.edge}/link/getdetail", params=params, headers={"User-Agent": ua})


async def _room_view(suite: Any, room: str) -> dict[str, Any] | None:
    rows = await suite.query("link", "SELECT * FROM room_view WHERE room = %s", (room,))
    return rows[0] if rows else None


async def _publish(nc: Any, subject: str, data: dict[str, Any], event_id: str | None = None) -> str:
    """An event as a service's outbox relay publishes it (a fresh Nats-Msg-Id, so a repeat is delivered)."""
    event_id = event_id or uuid.uuid4().hex
    envelope = {
        "id": event_id,
        "subject": subject,
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "data": data,
    }
    await nc.jetstream().publish(subject, json.dumps(envelope).encode(), headers={"Nats-Msg-Id": uuid.uuid4().hex})
    return event_id


# ---- events reach the read model --------------------------------------------------------------------------
async def test_room_changes_reach_room_view(suite: Any) -> None:
    room = _room_name()
    async with httpx.AsyncClient(timeout=15) as client:
        await _create(suite, client, room=room, linkType="location", mobile="0810000001")
        created = await until(lambda: _room_view(suite, room))
        assert (created["status"], created["roomType"], created["complete"], created["usesDefaultKey"]) == (
            "close",
            "location",
            1,
            1,
        )
        # a video link turns the location room into an open conference: conference.room.updated
        await _create(suite, client, room=room, linkType="video", mobile="0810000002")

        async def opened() -> Any:
            view = await _room_view(suite, room)
            return view if view and view["status"] == "open" else None

        updated = await until(opened)
    detail = json.loads(updated["detail"])
    conference = (await suite.query("conference", "SELECT id, roomType FROM room_conference WHERE room = %s", (room,)))[
        0
    ]
    assert detail["id"] == conference["id"] and detail["roomType"] == "conference" == conference["roomType"]
    assert updated["complete"] == 1 and updated["version"] >= created["version"]
    assert "recordDuration" not in detail


async def test_getdetail_answers_while_conference_is_frozen(suite: Any) -> None:
    """Once the room is in the read model, getdetail does not ask conference: one hop from the edge."""
    room = _room_name()
    async with httpx.AsyncClient(timeout=15) as client:
        link = await _create(suite, client, room=room, mobile="0811111111", userName="Patient F")
        await until(lambda: _room_view(suite, room))
        # link learns conference's colours shortly after start; until then getdetail still asks conference
        await until(lambda: suite.query("link", "SELECT 1 FROM palette_view LIMIT 1"))
        warm = await _detail(client, suite, linkId=link["linkID"], identity="frozen-1")
        assert warm.json()["status"] == "OK"
        suite.signal_service("conference", signal.SIGSTOP)
        try:
            started = time.monotonic()
            response = await _detail(client, suite, linkId=link["linkID"], identity="frozen-1")
            elapsed = time.monotonic() - started
        finally:
            suite.signal_service("conference", signal.SIGCONT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "OK"
    data = body["data"]
    assert elapsed < 3.0  # no RPC timeout was waited for
    assert data["id"] == link["id"] and data["room"] == room and data["status"] == "open"
    assert data["userName"] == "Patient F" and data["identity"] == "frozen-1"
    assert list(data)[-1] == "positionUser"
    assert list(data) == list(warm.json()["data"])  # same fields, same order as the first answer
    claims = jwt.decode(data["token"], suite.env["LIVEKIT_API_SECRET"], algorithms=["HS256"])
    assert claims["iss"] == suite.env["LIVEKIT_API_KEY"] and claims["sub"] == "frozen-1"
    assert claims["video"]["room"] == room and claims["exp"] - claims["nbf"] == 6 * 3600
    assert json.loads(claims["metadata"])["color"] == data["color"] and data["color"].startswith("#")
    usage = await suite.query(
        "link",
        "SELECT identity FROM usage_status_log WHERE linkID = %s AND status = 'GetLinkDetail'",
        (link["linkID"],),
    )
    assert usage == [{"identity": "frozen-1"}, {"identity": "frozen-1"}]


async def test_read_model_miss_falls_back_to_conference_and_fills_the_view(suite: Any) -> None:
    room = _room_name()
    async with httpx.AsyncClient(timeout=15) as client:
        link = await _create(suite, client, room=room, mobile="0812222222")
        await until(lambda: _room_view(suite, room))
        # as if the room predated the events
        await suite.execute("link", "DELETE FROM room_view WHERE room = %s", (room,))
        first = await _detail(client, suite, linkId=link["linkID"])
        view = await _room_view(suite, room)
        suite.signal_service("conference", signal.SIGSTOP)
        try:
            second = await _detail(client, suite, linkId=link["linkID"])
        finally:
            suite.signal_service("conference", signal.SIGCONT)
    assert first.json()["status"] == "OK" and second.json()["status"] == "OK"
    assert view is not None and (view["complete"], view["usesDefaultKey"], view["status"]) == (0, 1, "open")
    one, two = first.json()["data"], second.json()["data"]
    assert list(one) == list(two)
    for key in ("id", "room", "status", "roomType", "dtmCreated", "recordId", "chatEnabled", "webSocketURL"):
        assert one[key] == two[key], key


async def test_room_on_a_node_with_its_own_key_is_signed_by_conference(suite: Any) -> None:
    room = _room_name()
    async with httpx.AsyncClient(timeout=15) as client:
        link = await _create(suite, client, room=room, mobile="0813333333")
        await until(lambda: _room_view(suite, room))
        await suite.execute("link", "UPDATE room_view SET usesDefaultKey = 0 WHERE room = %s", (room,))
        suite.signal_service("conference", signal.SIGSTOP)
        try:
            frozen = await _detail(client, suite, linkId=link["linkID"])
        finally:
            suite.signal_service("conference", signal.SIGCONT)
    # link may not sign for that room: it must ask conference, which is frozen -> 503, nothing written
    assert frozen.status_code == 503 and frozen.json()["status"] == "FAIL"
    usage = await suite.query(
        "link", "SELECT COUNT(*) AS n FROM usage_status_log WHERE linkID = %s AND status = 'GetLinkDetail'",
        (link["linkID"],),
    )  # fmt: skip
    assert usage == [{"n": 0}]


# ---- the room_user write goes to conference as an event ---------------------------------------------------
async def test_user_agent_event_reaches_conference_and_known_user_is_reused(suite: Any, nc: Any) -> None:
    room = _room_name()
    async with httpx.AsyncClient(timeout=15) as client:
        link = await _create(suite, client, room=room, mobile="0814444444", userName=None)
        await until(lambda: _room_view(suite, room))
        added = await rpc(
            nc,
            TOKEN,
            {"room": room, "identity": "pat-1", "userName": "Known Pat", "color": "#ABCDEF", "isAddUser": True,
             "userAgent": "Old UA"},
        )  # fmt: skip
        assert added["ok"]

        async def user_view() -> Any:
            rows = await suite.query(
                "link", "SELECT * FROM room_user_view WHERE room = %s AND identity = 'pat-1'", (room,)
            )
            return rows[0] if rows else None

        known = await until(user_view)
        assert (known["color"], known["userName"], known["userAgent"]) == ("#ABCDEF", "Known Pat", "Old UA")
        response = await _detail(client, suite, ua=IPHONE_UA, linkId=link["linkID"], identity="pat-1")

        async def conference_agent() -> Any:
            rows = await suite.query(
                "conference", "SELECT userAgent FROM room_user WHERE room = %s AND identity = 'pat-1'", (room,)
            )
            return rows if rows and rows[0]["userAgent"] == IPHONE_UA else None

        await until(conference_agent)

        async def view_agent() -> Any:
            row = await user_view()
            return row if row and row["userAgent"] == IPHONE_UA else None

        await until(view_agent)  # conference published the change back
        events_before = await suite.query(
            "link", "SELECT COUNT(*) AS n FROM outbox WHERE subject = 'link.participant.seen'"
        )
        again = await _detail(client, suite, ua=IPHONE_UA, linkId=link["linkID"], identity="pat-1")
        events_after = await suite.query(
            "link", "SELECT COUNT(*) AS n FROM outbox WHERE subject = 'link.participant.seen'"
        )
    data = response.json()["data"]
    # the link's userName (its mobile, as userName was not given) wins; the known colour is reused
    assert data["color"] == "#ABCDEF" and data["identity"] == "pat-1"
    assert again.json()["data"]["color"] == "#ABCDEF"
    assert events_after == events_before  # same agent already stored: no event


async def test_duplicate_and_malformed_events_are_applied_once(suite: Any, nc: Any) -> None:
    room = _room_name()
    async with httpx.AsyncClient(timeout=15) as client:
        await _create(suite, client, room=room, mobile="0815555555")
    assert (await rpc(nc, TOKEN, {"room": room, "identity": "dup-1", "userName": "D", "isAddUser": True}))["ok"]
    # link -> conference: the same event twice (distinct NATS message ids, so JetStream delivers both)
    seen_id = uuid.uuid4().hex
    for agent in ("UA first", "UA second"):
        await _publish(nc, "link.participant.seen", {"room": room, "identity": "dup-1", "userAgent": agent}, seen_id)
    await _publish(nc, "link.participant.seen", {"room": 5, "identity": None})  # malformed: dropped
    marker = await _publish(nc, "link.participant.seen", {"room": room, "identity": "nobody", "userAgent": "x"})

    async def conference_handled() -> Any:
        rows = await suite.query("conference", "SELECT event_id FROM handled_event WHERE event_id = %s", (marker,))
        return rows

    await until(conference_handled)
    rows = await suite.query(
        "conference", "SELECT userAgent FROM room_user WHERE room = %s AND identity = 'dup-1'", (room,)
    )
    assert rows == [{"userAgent": "UA first"}]
    handled = await suite.query("conference", "SELECT COUNT(*) AS n FROM handled_event WHERE event_id = %s", (seen_id,))
    assert handled == [{"n": 1}]

    # conference -> link: a room_user event repeated
    saved_id = uuid.uuid4().hex
    for name in ("First", "Second"):
        await _publish(
            nc, "conference.participant.saved", {"room": room, "identity": "dup-2", "userName": name}, saved_id
        )
    await _publish(nc, "conference.room.updated", {"room": room, "roomType": "x", "status": "y", "detail": "junk"})
    marker = await _publish(nc, "conference.participant.saved", {"room": room, "identity": "dup-3", "userName": "M"})

    async def link_handled() -> Any:
        return await suite.query("link", "SELECT event_id FROM handled_event WHERE event_id = %s", (marker,))

    await until(link_handled)
    users = await suite.query(
        "link", "SELECT identity, userName FROM room_user_view WHERE room = %s AND identity LIKE 'dup-%%'"
        " ORDER BY identity", (room,),
    )  # fmt: skip
    assert [(u["identity"], u["userName"]) for u in users] == [("dup-1", "D"), ("dup-2", "First"), ("dup-3", "M")]
    view = await _room_view(suite, room)
    assert view is not None and view["status"] == "open"  # the malformed room event changed nothing


# ---- LiveKit participants (recording's webhook events) ----------------------------------------------------
async def test_participant_events_fill_list_participants(suite: Any, nc: Any) -> None:
    room = _room_name()
    async with httpx.AsyncClient(timeout=15) as client:
        link = await _create(suite, client, room=room, mobile="0816666666")
        await until(lambda: _room_view(suite, room))
        now_ms = int(time.time() * 1000)
        alice = {"sid": "PA_1", "identity": "alice", "name": "Alice", "state": 2, "joinedAt": now_ms // 1000 - 5}
        bob = {"sid": "PA_2", "identity": "bob", "name": "Bob", "state": 2, "joinedAt": now_ms // 1000 - 3}
        joined, left = "recording.participant.joined", "recording.participant.left"
        await _publish(nc, joined, {"room": room, "identity": "alice", "participant": alice, "timestamp": now_ms})
        await _publish(nc, joined, {"room": room, "identity": "bob", "participant": bob, "timestamp": now_ms + 1})
        await _publish(nc, left, {"room": room, "identity": "bob", "timestamp": now_ms + 2})
        # a late "joined" older than the "left" must not bring bob back
        await _publish(nc, joined, {"room": room, "identity": "bob", "participant": bob, "timestamp": now_ms + 1})
        marker = await _publish(nc, joined, {"room": "Other Room", "identity": "zed", "timestamp": now_ms})

        async def handled() -> Any:
            return await suite.query("link", "SELECT event_id FROM handled_event WHERE event_id = %s", (marker,))

        await until(handled)
        suite.signal_service("conference", signal.SIGSTOP)
        try:
            response = await _detail(client, suite, linkId=link["linkID"])
        finally:
            suite.signal_service("conference", signal.SIGCONT)
    assert response.json()["status"] == "OK"
    assert response.json()["data"]["listParticipants"] == [alice]

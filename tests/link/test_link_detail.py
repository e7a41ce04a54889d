"""GET /link/getdetail (incl. the one-time link race), POST /link/update/latlng, GET /link/share and
GET /link/history."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import jwt
import msgspec

ANDROID_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126 Mobile"


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


def _room_name() -> str:
    # letters only: the service strips everything else from room names
    return "Room " + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:8])


async def _create(suite: Any, client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(f"{suite.edge}/link/create", json=body, headers=_auth(suite))
    assert response.status_code == 200, response.text
    return response.json()


async def _detail(client: httpx.AsyncClient, suite: Any, **params: str) -> httpx.Response:
    return await client.get(f"{suite.edge}/link/getdetail", params=params, headers={"User-Agent": ANDROID_UA})


async def _insert_link(suite: Any, link_id: str, room: str, **columns: Any) -> None:
    values = {
        "linkID": link_id,
        "room": room,
        "mobile": "",
        "userName": "Inserted",
        "userType": "user",
        "linkType": "video",
        "isAdmin": "0",
        "dtmCreated": "2024-01-01 00:00:00",
        "dtmExpired": "2099-01-01 00:00:00",
        **columns,
    }
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    await suite.execute("link", f"INSERT INTO link_connect ({names}) VALUES ({marks})", tuple(values.values()))  # noqa: S608


# ---- getdetail ----------------------------------------------------------------------------------------------
async def test_getdetail_failures(suite: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        created = await _create(suite, client, room=_room_name(), mobile="0820000000")
        await _insert_link(suite, "UsedOn", created["room"], oneTimeLink=2)
        await _insert_link(suite, "NoRoom", "Room That Does Not Exist")
        await _insert_link(suite, "Expird", created["room"], dtmExpired="2020-01-01 00:00:00")
        missing = await _detail(client, suite)
        unknown = await _detail(client, suite, linkId="zzzzzz")
        injected = await _detail(client, suite, linkId="' OR '1'='1")
        too_long = await _detail(client, suite, linkId="x" * 500)
        used = await _detail(client, suite, linkId="UsedOn")
        no_room = await _detail(client, suite, linkId="NoRoom")
        expired = await _detail(client, suite, linkId="Expird")
    invalid = {"status": "FAIL", "message": "invalid linkID"}
    for response in (missing, unknown, injected, too_long):
        assert response.status_code == 200
        assert response.json() == invalid
    assert used.json() == {"status": "FAIL", "message": "linkID expired"}
    assert no_room.json() == {"status": "FAIL", "message": "invalid room"}
    body = expired.json()
    assert body["status"] == "FAIL" and body["message"] == "linkID expired"
    assert body["data"]["status"] == "linkExpired"
    assert body["data"]["linkID"] == "Expird"
    assert body["data"]["dtmExpired"].startswith("2019-12-31T17:00:00")  # local Bangkok time as UTC ISO
    # failures leave no usage rows
    rows = await suite.query(
        "link", "SELECT COUNT(*) AS n FROM usage_status_log WHERE linkID IN ('UsedOn', 'NoRoom', 'Expird', 'zzzzzz')"
    )
    assert rows[0]["n"] == 0


async def test_getdetail_zero_date_of_a_migrated_row(suite: Any) -> None:
    """Migrated MySQL rows may hold zero dates: answered as null (the original's driver gave Invalid Date)."""
    async with httpx.AsyncClient(timeout=15) as client:
        created = await _create(suite, client, room=_room_name(), mobile="0820000001")
        link_id = "Zero" + uuid.uuid4().hex[:6]
        await _insert_link(suite, link_id, created["room"], dtmExpired="0000-00-00 00:00:00")
        response = await _detail(client, suite, linkId=link_id, identity="zero-date")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "OK", body
    assert body["data"]["linkID"] == link_id
    assert body["data"]["dtmExpired"] is None  # no date: the link does not expire


async def test_getdetail_other_methods_and_its_openapi_entry(suite: Any) -> None:
    """getdetail is a bare ASGI handler: other methods still get the envelope, and the service documents it."""
    async with httpx.AsyncClient(timeout=15) as client:
        posted = await client.post(f"{suite.edge}/link/getdetail", json={"linkId": "x"})
        schema = (await client.get(f"{suite.url('link')}/schema/openapi.json")).json()
    assert posted.status_code == 405
    assert posted.json()["status"] == "FAIL"
    operation = schema["paths"]["/link/getdetail"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["linkId", "identity"]


async def test_getdetail_success_shape_and_side_effects(suite: Any) -> None:
    room = _room_name()
    async with httpx.AsyncClient(timeout=15) as client:
        link = await _create(suite, client, room=room, mobile="0821111111", userName="Patient A", userType="user")
        await client.post(
            f"{suite.edge}/link/update/latlng",
            json={"linkID": link["linkID"], "room": room, "latitude": 13.75, "longitude": 100.5, "accuracy": 12},
        )
        response = await _detail(client, suite, linkId=link["linkID"], identity="  ident-123  ")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "OK"
    data = body["data"]
    assert data["id"] == link["id"]  # the room's id overrides the linkId, as in the original
    assert data["linkID"] == link["linkID"]
    assert data["room"] == room
    assert data["mobile"] == "0821111111"
    assert data["status"] == "open"
    assert data["identity"] == "ident-123"
    assert data["userName"] == "Patient A"
    assert isinstance(data["listParticipants"], list)
    claims = jwt.decode(data["token"], suite.env["LIVEKIT_API_SECRET"], algorithms=["HS256"])
    assert claims["sub"] == "ident-123"
    assert claims["video"]["room"] == room
    assert claims["video"]["roomJoin"] is True
    assert data["dtmExpired"].endswith("Z")
    positions = {p["userName"]: p for p in data["positionUser"]}
    assert positions["Patient A"]["latitude"] == "13.750000000"
    assert positions["Patient A"]["accuracy"] == "12"
    assert "Guest" not in positions  # share link without a position
    assert "password" not in data

    rows = await suite.query("link", "SELECT os, userAgent FROM link_connect WHERE linkID = %s", (link["linkID"],))
    assert rows == [{"os": "Android", "userAgent": ANDROID_UA}]
    usage = await suite.query(
        "link", "SELECT identity, userType FROM usage_status_log WHERE linkID = %s AND status = 'GetLinkDetail'",
        (link["linkID"],),
    )  # fmt: skip
    assert usage == [{"identity": "ident-123", "userType": "user"}]


async def test_getdetail_positions_with_long_values(suite: Any) -> None:
    """The lookup cuts each position object to 512 characters (to keep its aggregate in memory): a longer one (a long
    errorLocation, a Thai name) is read apart, and positionUser still shows every value whole."""
    room = _room_name()
    long_error = "GeolocationPositionError: " + "ข้อผิดพลาด " * 120
    async with httpx.AsyncClient(timeout=15) as client:
        first = await _create(suite, client, room=room, mobile="0821111112", userName="ผู้ป่วย ก", userType="user")
        second = await _create(suite, client, room=room, mobile="0821111113", userName="Patient C", userType="user")
        await suite.execute("link", "UPDATE link_connect SET errorLocation = %s WHERE linkID = %s",
                            (long_error, first["linkID"]))  # fmt: skip
        await suite.execute("link", "UPDATE link_connect SET errorLocation = 'denied' WHERE linkID = %s",
                            (second["linkID"],))  # fmt: skip
        response = await _detail(client, suite, linkId=second["linkID"], identity="long-1")
        short = await _detail(client, suite, linkId=first["linkID"], identity="long-2")
    assert response.status_code == 200 and response.json()["status"] == "OK", response.text
    positions = [(p["userName"], p["mobile"], p["errorLocation"]) for p in response.json()["data"]["positionUser"]]
    assert positions == [("Patient C", "0821111113", "denied"), ("ผู้ป่วย ก", "0821111112", long_error)]
    assert short.json()["data"]["positionUser"] == response.json()["data"]["positionUser"]


async def test_getdetail_password_link_gives_no_token(suite: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        link = await _create(
            suite, client, room=_room_name(), mobile="0822222222", password="pw", requireJoinPermission=1
        )
        response = await _detail(client, suite, linkId=link["linkID"])
    data = response.json()["data"]
    assert data["requirePassword"] == 1
    assert "token" not in data and "identity" not in data
    assert isinstance(data["listParticipants"], list)


async def test_one_time_link_race_only_one_wins(suite: Any) -> None:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100)) as client:
        link = await _create(suite, client, room=_room_name(), mobile="0823333333", oneTimeLink=1)
        responses = await asyncio.gather(*(_detail(client, suite, linkId=link["linkID"]) for _ in range(100)))
        later = await _detail(client, suite, linkId=link["linkID"])
    bodies = [r.json() for r in responses]
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200][:3]
    assert sum(1 for b in bodies if b["status"] == "OK") == 1
    assert all(b == {"status": "FAIL", "message": "linkID expired"} for b in bodies if b["status"] != "OK")
    assert later.json() == {"status": "FAIL", "message": "linkID expired"}
    rows = await suite.query(
        "link",
        "SELECT oneTimeLink, (SELECT COUNT(*) FROM usage_status_log u WHERE u.linkID = l.linkID "
        "AND u.status = 'GetLinkDetail') AS uses FROM link_connect l WHERE linkID = %s",
        (link["linkID"],),
    )
    assert rows == [{"oneTimeLink": 2, "uses": 1}]


# ---- latlng -------------------------------------------------------------------------------------------------
async def test_latlng_updates_position_log_and_event(suite: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        link = await _create(suite, client, room=_room_name(), mobile="0824444444")
        response = await client.post(
            f"{suite.edge}/link/update/latlng",
            data={"linkID": link["linkID"], "latitude": "-33.5", "longitude": "151.25", "accuracy": "", "speed": "3.5"},
        )
        again = await client.post(
            f"{suite.edge}/link/update/latlng",
            json={"linkID": link["linkID"], "latitude": -33.5, "longitude": 151.25},
        )
        unknown = await client.post(
            f"{suite.edge}/link/update/latlng", json={"linkID": "zzzzzz", "latitude": 1, "longitude": 2}
        )
    assert response.status_code == 200 and response.json() == {"status": "OK"}
    assert again.json() == {"status": "OK"}  # same position again still finds the link
    assert unknown.json() == {"status": "FAIL"}
    rows = await suite.query(
        "link", "SELECT latitude, longitude, accuracy FROM link_connect WHERE linkID = %s", (link["linkID"],)
    )
    assert rows == [{"latitude": Decimal("-33.5"), "longitude": Decimal("151.25"), "accuracy": "0"}]
    usage = await suite.query(
        "link",
        "SELECT room, latitude FROM usage_status_log WHERE linkID = %s AND status = 'UpdateLatLngLinkDetail'",
        (link["linkID"],),
    )
    assert len(usage) == 2 and usage[0]["room"] == link["room"]
    events = await suite.query(
        "link", "SELECT payload FROM outbox WHERE subject = 'link.location.updated' AND payload LIKE %s",
        (f"%{link['linkID']}%",),
    )  # fmt: skip
    assert len(events) == 2
    first = msgspec.json.decode(events[0]["payload"])["data"]
    assert first["position"]["latitude"] == -33.5 and first["position"]["speed"] == 3.5
    assert first["position"]["accuracy"] is None
    assert first["timestamp"] > 1_700_000_000_000
    assert (await suite.query("link", "SELECT COUNT(*) AS n FROM usage_status_log WHERE linkID = 'zzzzzz'")) == [
        {"n": 0}
    ]


async def test_latlng_rejects_bad_input_and_writes_nothing(suite: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        link = await _create(suite, client, room=_room_name(), mobile="0825555555")
        before = await suite.query("link", "SELECT COUNT(*) AS n FROM usage_status_log")
        bad_bodies = [
            {"linkID": link["linkID"], "latitude": 91, "longitude": 0},
            {"linkID": link["linkID"], "latitude": 0, "longitude": -180.5},
            {"linkID": link["linkID"], "latitude": "abc", "longitude": 0},
            {"linkID": link["linkID"], "latitude": 1, "longitude": 1, "speed": "fast"},
            {"linkID": link["linkID"], "longitude": 1},
            {"latitude": 1, "longitude": 1},
            {"linkID": "' OR 1=1 -- ", "latitude": 1, "longitude": 1, "accuracy": 1e300},
        ]
        responses = [await client.post(f"{suite.edge}/link/update/latlng", json=b) for b in bad_bodies]
    for response in responses:
        assert response.status_code == 400, response.text
        assert response.json()["status"] == "FAIL"
    rows = await suite.query("link", "SELECT latitude FROM link_connect WHERE linkID = %s", (link["linkID"],))
    assert rows == [{"latitude": None}]
    assert await suite.query("link", "SELECT COUNT(*) AS n FROM usage_status_log") == before


# ---- share --------------------------------------------------------------------------------------------------
async def test_share_urls(suite: Any) -> None:
    room = _room_name()
    async with httpx.AsyncClient(timeout=15) as client:
        await _create(suite, client, room=room, mobile="0826666666")
        response = await client.get(f"{suite.edge}/link/share", params={"room": room})
        unknown = await client.get(f"{suite.edge}/link/share", params={"room": "No Such Room"})
        missing = await client.get(f"{suite.edge}/link/share")
    shares = {
        r["userName"]: r["linkID"]
        for r in await suite.query(
            "link", "SELECT userName, linkID FROM link_connect WHERE room = %s AND share = 1", (room,)
        )
    }
    assert response.status_code == 200
    guest = f"https://localhost:3000/video/{shares['Guest']}"
    assert response.json() == {
        "url": guest,
        "guest": guest,
        "viewer": f"https://localhost:3000/viewer/{shares['Viewer']}",
    }
    for failed in (unknown, missing):
        assert failed.status_code == 404
        assert failed.text == "invalid"


# ---- history ------------------------------------------------------------------------------------------------
async def test_history_pagination(suite: Any) -> None:
    room = _room_name()
    async with httpx.AsyncClient(timeout=15) as client:
        await _create(suite, client, room=room, mobile="", userName="Dr Agent", userType="admin")
        created = [await _create(suite, client, room=room, mobile=f"08300000{i:02d}") for i in range(7)]
        page1 = await client.get(f"{suite.edge}/link/history", params={"roomName": room})
        page2 = await client.get(f"{suite.edge}/link/history", params={"roomName": room, "page": "2"})
        page9 = await client.get(f"{suite.edge}/link/history", params={"roomName": room, "page": "9"})
        garbage = await client.get(f"{suite.edge}/link/history", params={"roomName": room, "page": "x'--"})
        unknown = await client.get(f"{suite.edge}/link/history", params={"roomName": "No Such Room"})
        missing = await client.get(f"{suite.edge}/link/history")
    one, two = page1.json(), page2.json()
    assert one["count"] == 7 and two["count"] == 7
    assert [r["linkID"] for r in one["data"]] == [c["linkID"] for c in created[:5]]
    assert [r["linkID"] for r in two["data"]] == [c["linkID"] for c in created[5:]]
    assert page9.json() == {"data": [], "count": 7}
    assert garbage.json()["data"] == one["data"]
    row = one["data"][0]
    assert row["room"] == room and row["id"] == created[0]["id"]
    assert row["agent"] == "Dr Agent"
    assert row["status"] == "open"
    assert row["caseId"] is None and row["recordVideos"] == []
    assert "latitude" not in row
    assert [entry["status"] for entry in row["activeLog"]] == ["CreateLink"]
    assert unknown.json() == {"data": [], "count": 0}
    assert missing.status_code == 404 and missing.text == "Invalid parameter"


# ---- RPC_LINK_STATUS_HISTORY (realtime's `history` emit) ----------------------------------------------------
async def test_status_history_rpc(suite: Any) -> None:
    import nats

    link_id = "Hist" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:2])
    await _insert_link(suite, link_id, "History Room")
    async with httpx.AsyncClient(timeout=15) as client:
        for user_type, latitude in (("user", 7.5), ("admin", 8.5)):
            response = await client.post(
                f"{suite.edge}/link/update/latlng",
                json={"linkID": link_id, "latitude": latitude, "longitude": 98.25, "userType": user_type},
            )
            assert response.json() == {"status": "OK"}
    nc = await nats.connect(suite.nats_url)
    try:

        async def ask(body: dict[str, str]) -> Any:
            msg = await nc.request("rpc.link.link.status_history", msgspec.json.encode(body), timeout=5)
            return msgspec.json.decode(msg.data)

        every = await ask({"linkID": link_id, "linkType": "location"})
        users = await ask({"linkID": link_id})
        none = await ask({"linkID": "zzzzzz"})
    finally:
        await nc.close()
    assert every["ok"] is True
    assert [(r["status"], r["userType"], r["latitude"]) for r in every["data"]] == [
        ("UpdateLatLngLinkDetail", "user", "7.500000000"),
        ("UpdateLatLngLinkDetail", "admin", "8.500000000"),
    ]
    assert "data" not in every["data"][0]
    assert [r["userType"] for r in users["data"]] == ["user"]
    assert none == {"ok": True, "data": False}


async def test_status_histories_rpc_answers_each_link_as_the_single_request_does(suite: Any) -> None:
    """RPC_LINK_STATUS_HISTORIES (realtime's pushes due at one moment): per link, in the order asked, what
    RPC_LINK_STATUS_HISTORY answers, rows of equal times in id order, a zero date first as MySQL sorts it, false for a
    link without rows; past HISTORIES_MAX links, bad_request."""
    import nats

    links = ["Many" + uuid.uuid4().hex[:6] for _ in range(3)]
    for link_id in links[:2]:
        await _insert_link(suite, link_id, "Many History Room")
    rows = [(links[0], "2026-01-01 00:00:00")] * 3 + [
        (links[1], "0000-00-00 00:00:00"),
        (links[1], "2026-01-02 00:00:00"),
        (links[1], "2025-12-31 00:00:00"),
    ]
    for n, (link_id, created) in enumerate(rows):
        await suite.execute(
            "link",
            "INSERT INTO usage_status_log (linkID, room, status, userType, latitude, longitude, dtmCreated) "
            "VALUES (%s, 'Many History Room', 'UpdateLatLngLinkDetail', %s, %s, 100.5, %s)",
            (link_id, "admin" if n == 1 else "user", 13 + n / 1000, created),
        )
    asked = [
        {"linkID": links[0], "linkType": "location"},
        {"linkID": links[1]},
        {"linkID": links[2], "linkType": "location"},
        {"linkID": links[0]},
    ]
    nc = await nats.connect(suite.nats_url)
    try:

        async def ask(subject: str, body: Any) -> Any:
            msg = await nc.request(subject, msgspec.json.encode(body), timeout=5)
            return msgspec.json.decode(msg.data)

        many = await ask("rpc.link.link.status_histories", {"links": asked})
        singles = [await ask("rpc.link.link.status_history", body) for body in asked]
        too_many = await ask("rpc.link.link.status_histories", {"links": [asked[0]] * 17})
    finally:
        await nc.close()
    assert many["ok"] is True
    assert many["data"] == [single["data"] for single in singles]
    assert [row["latitude"] for row in many["data"][0]] == ["13.000000000", "13.001000000", "13.002000000"]
    assert [row["latitude"] for row in many["data"][1]] == ["13.003000000", "13.005000000", "13.004000000"]
    assert many["data"][2] is False
    assert [row["userType"] for row in many["data"][3]] == ["user", "user"]
    assert too_many["ok"] is False and too_many["code"] == "bad_request"


async def test_a_full_status_history_is_the_oldest_rows_and_stays_so(suite: Any) -> None:
    """Past 100 activity rows the timeline is the oldest 100 (link keeps it in memory then: it cannot change), and
    positions reported later do not change it."""
    import nats

    link_id = "Full" + uuid.uuid4().hex[:6]
    await _insert_link(suite, link_id, "Full History Room")
    for minute in range(105):  # one row a minute, from 2026-01-01 00:00
        await suite.execute(
            "link",
            "INSERT INTO usage_status_log (linkID, room, status, userType, latitude, longitude, dtmCreated) "
            "VALUES (%s, 'Full History Room', 'UpdateLatLngLinkDetail', 'user', %s, 100.5, "
            "'2026-01-01 00:00:00' + INTERVAL %s MINUTE)",
            (link_id, 13 + minute / 1000, minute),
        )
    nc = await nats.connect(suite.nats_url)
    try:

        async def timeline() -> list[str]:
            msg = await nc.request("rpc.link.link.status_history", msgspec.json.encode({"linkID": link_id}), timeout=5)
            return [row["latitude"] for row in msgspec.json.decode(msg.data)["data"]]

        first = await timeline()
        async with httpx.AsyncClient(timeout=15) as client:
            moved = await client.post(
                f"{suite.edge}/link/update/latlng",
                json={"linkID": link_id, "latitude": 7.25, "longitude": 98.25, "userType": "user"},
            )
            assert moved.json() == {"status": "OK"}
        again = await timeline()
    finally:
        await nc.close()
    assert first == [f"{13 + minute / 1000:.9f}" for minute in range(100)]
    assert again == first


# ---- conference down ----------------------------------------------------------------------------------------
async def test_conference_unavailable_is_503(suite: Any) -> None:
    """Conference frozen (SIGSTOP): link's requests to it time out; link answers 503 and writes nothing."""
    import asyncio
    import signal

    await _insert_link(suite, "NoConf", "Some Room")
    before = await suite.query("link", "SELECT COUNT(*) AS n FROM link_connect")
    suite.signal_service("conference", signal.SIGSTOP)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            created, detail, history = await asyncio.gather(
                client.post(f"{suite.edge}/link/create", json={"room": "Any Room"}, headers=_auth(suite)),
                _detail(client, suite, linkId="NoConf"),
                client.get(f"{suite.edge}/link/history", params={"roomName": "Some Room"}),
            )
    finally:
        suite.signal_service("conference", signal.SIGCONT)
    for response in (created, detail, history):
        assert response.status_code == 503
        assert response.json()["status"] == "FAIL"
    assert await suite.query("link", "SELECT COUNT(*) AS n FROM link_connect") == before

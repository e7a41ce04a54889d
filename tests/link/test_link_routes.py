"""Link routes besides create/getdetail: /status, /log, /sms/custom, /link/get/domain, /link/create/hls,
/link/cartracking, /link/multilatlng/send (through the edge, checking the database)."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import pytest


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


def _mobile() -> str:
    return "09" + "".join(random.choice("0123456789") for _ in range(8))  # noqa: S311 - test data


async def _count(suite: Any, table: str) -> int:
    rows = await suite.query("link", f"SELECT COUNT(*) AS n FROM {table}")  # noqa: S608 - fixed table names
    return int(rows[0]["n"])


async def _counts(suite: Any) -> tuple[int, ...]:
    return tuple([await _count(suite, t) for t in ("link_connect", "usage_status_log", "sms_message", "outbox")])


async def _create(client: httpx.AsyncClient, suite: Any, **body: Any) -> dict[str, Any]:
    reply = await client.post(f"{suite.edge}/link/create", json=body, headers=_auth(suite))
    assert reply.status_code == 200, reply.text
    return reply.json()


async def _wait_sms(suite: Any, mobile: str) -> dict[str, Any]:
    for _ in range(100):
        rows = await suite.query("link", "SELECT * FROM sms_message WHERE mobile = %s", (mobile,))
        if rows and rows[0]["status"] != "queued":
            return rows[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"sms for {mobile} not finished")


async def _delivered(client: httpx.AsyncClient, suite: Any, mobile: str) -> list[dict[str, Any]]:
    log = (await client.get(suite.env["SMS_API_URL"].split("/api/")[0] + "/_log")).json()
    return [d for d in log["delivered"] if d["dst"] == mobile]


# ---- /status and /log ------------------------------------------------------------------------------------
async def test_log_and_status(suite: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        link = await _create(client, suite, room="UsageRoom", mobile="")
        logged = await client.post(
            f"{suite.edge}/log",
            json={"linkID": link["linkID"], "status": "ErrorLocation", "identity": "id1", "log": "GPS denied",
                  "userAgent": "UA/1"},
        )  # fmt: skip
        video = await client.post(
            f"{suite.edge}/log", json={"linkID": link["linkID"], "status": "ErrorVideo", "log": {"code": 5}}
        )
        status = await client.get(f"{suite.edge}/status", params={"room": "UsageRoom"})
        unknown = await client.get(f"{suite.edge}/status", params={"room": "NoLogRoomHere"})
        missing = await client.get(f"{suite.edge}/status")
    assert logged.json() == {"status": "OK"} and video.json() == {"status": "OK"}
    rows = await suite.query("link", "SELECT errorLocation, errorVideo FROM link_connect WHERE linkID = %s",
                             (link["linkID"],))  # fmt: skip
    assert rows == [{"errorLocation": "GPS denied", "errorVideo": '{"code":5}'}]
    body = status.json()
    assert body["status"] == "OK"
    assert [item["status"] for item in body["data"]][:1] == ["CreateLink"]  # /log rows carry no room
    assert body["data"][0]["data"]["linkID"] == link["linkID"]  # parsed back from JSON text
    assert set(body["data"][0]) == {"id", "linkID", "room", "identity", "mobile", "status", "userAgent", "data",
                                    "dtmCreated"}  # fmt: skip
    assert body["data"][0]["dtmCreated"].endswith("Z")
    logs = await suite.query(
        "link", "SELECT identity, userAgent, data FROM usage_status_log WHERE linkID = %s AND status = %s",
        (link["linkID"], "ErrorLocation"),
    )  # fmt: skip
    assert logs == [{"identity": "id1", "userAgent": "UA/1", "data": '"GPS denied"'}]
    assert unknown.json() == {"status": "FAIL", "message": "Invalid Room"}
    assert missing.json() == {"status": "FAIL", "message": "Invalid Room"}


@pytest.mark.parametrize(
    "body",
    [
        {"linkID": "x"},  # no status
        {"status": "s" * 51},
        {"status": "Ok", "linkID": "l" * 101},
        {"status": "Ok", "identity": ["x"]},
        {"status": "Ok", "log": "x" * 70_000},
    ],
)
async def test_log_bad_input_writes_nothing(suite: Any, body: dict[str, Any]) -> None:
    before = await _counts(suite)
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(f"{suite.edge}/log", json=body)
        broken = await client.post(f"{suite.edge}/log", content=b"[1,2", headers={"content-type": "application/json"})
    assert reply.status_code == 400 and reply.json()["status"] == "FAIL"
    assert broken.status_code == 400
    assert await _counts(suite) == before


# ---- /sms/custom -----------------------------------------------------------------------------------------
async def test_custom_sms_sent_with_room_sender_and_usage_row(suite: Any, sender: str) -> None:
    mobile = _mobile()
    async with httpx.AsyncClient(timeout=15) as client:
        await _create(client, suite, room="SurveyRoom", mobile="")
        reply = await client.post(
            f"{sender}/sms/custom",
            json={"message": "Rate us: 1-5", "mobile": mobile, "room": "SurveyRoom"},
            headers=_auth(suite),
        )
        row = await _wait_sms(suite, mobile)
        delivered = await _delivered(client, suite, mobile)
    assert reply.status_code == 200 and reply.json() == {"message": "Send sms complete"}
    assert (row["status"], row["kind"], row["room"], row["text"]) == ("sent", "custom", "SurveyRoom", "Rate us: 1-5")
    assert [(d["src"], d["message"]) for d in delivered] == [("iDEMS", "Rate us: 1-5")]
    usage = await suite.query("link", "SELECT room, mobile, data FROM usage_status_log WHERE status = 'smsSurvey' "
                              "AND mobile = %s", (mobile,))  # fmt: skip
    assert usage == [{"room": "SurveyRoom", "mobile": mobile, "data": json.dumps("Rate us: 1-5")}]


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"mobile": "0812345678", "room": "SurveyRoom"}, 404, "Invalid url"),
        ({"message": "hi", "room": "SurveyRoom"}, 404, "Invalid mobile"),
        ({"message": "hi", "mobile": "08-12'; DROP", "room": "SurveyRoom"}, 404, "Invalid mobile"),
        ({"message": "hi", "mobile": "0812345678", "room": "NoSuchSurveyRoom"}, 404, "Invalid room"),
        ({"message": "hi", "mobile": "0812345678"}, 404, "Invalid room"),
        ({"message": "   ", "mobile": "0812345678", "room": "SurveyRoom"}, 404, "message is empty"),
        ({"message": "x" * 1001, "mobile": "0812345678", "room": "SurveyRoom"}, 400, None),
        ({"message": 5, "mobile": "0812345678", "room": "SurveyRoom"}, 400, None),
    ],
)
async def test_custom_sms_bad_input_writes_nothing(suite: Any, body: dict[str, Any], status: int, text: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        await _create(client, suite, room="SurveyRoom", mobile="")
        before = await _counts(suite)
        reply = await client.post(f"{suite.edge}/sms/custom", json=body, headers=_auth(suite))
    assert reply.status_code == status, reply.text
    if text is not None:
        assert reply.text == text
    else:
        assert reply.json()["status"] == "FAIL"
    assert await _counts(suite) == before


# ---- /link/get/domain ------------------------------------------------------------------------------------
async def test_get_domain_round_robin(suite: Any) -> None:
    await suite.execute(
        "link",
        "INSERT IGNORE INTO services (id, name, domainsVideo, domainsLocation, smsSenderName) "
        "VALUES (601, 'RR', 'https://one.example,https://two.example', 'https://loc.example', 'RR')",
    )
    async with httpx.AsyncClient(timeout=15) as client:
        first = await _create(client, suite, room="DomainRoom", service=601)
        second = await _create(client, suite, room="DomainRoom", service=601)
        a = await client.get(f"{suite.edge}/link/get/domain", params={"linkID": first["linkID"], "type": "video"})
        b = await client.get(f"{suite.edge}/link/get/domain", params={"linkID": second["linkID"]})
        loc = await client.get(f"{suite.edge}/link/get/domain", params={"service": "601", "type": "location"})
        unknown = await client.get(f"{suite.edge}/link/get/domain", params={"linkID": "zzzzzz"})
        long_id = await client.get(f"{suite.edge}/link/get/domain", params={"linkID": "z" * 51})
    # the newest other link has domainIndex 0 -> the first asks for the second domain, and so on
    assert a.status_code == 200 and a.text == "https://two.example"
    assert b.text == "https://two.example" or b.text == "https://one.example"
    rows = await suite.query("link", "SELECT linkID, domainIndex FROM link_connect WHERE linkID IN (%s, %s)",
                             (first["linkID"], second["linkID"]))  # fmt: skip
    indexes = {row["linkID"]: row["domainIndex"] for row in rows}
    assert indexes[first["linkID"]] == 1
    assert b.text == ["https://one.example", "https://two.example"][indexes[second["linkID"]]]
    assert loc.text == "https://loc.example"
    assert unknown.status_code == 404 and unknown.text == "Invalid service"
    assert long_id.status_code == 400


# ---- /link/create/hls ------------------------------------------------------------------------------------
async def test_create_hls_link(suite: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        await _create(client, suite, room="HlsRoom", mobile="")
        before = await _counts(suite)
        anonymous = await client.post(f"{suite.edge}/link/create/hls", json={"room": "HlsRoom"})
        after_anonymous = await _counts(suite)
        reply = await client.post(
            f"{suite.edge}/link/create/hls",
            json={"room": "HlsRoom", "recordId": "12", "agentUsername": "agent7", "mobile": "0811112222"},
            headers=_auth(suite),
        )
        bad_room = await client.post(
            f"{suite.edge}/link/create/hls", json={"room": "NoHlsRoomHere"}, headers=_auth(suite)
        )
        bad_service = await client.post(
            f"{suite.edge}/link/create/hls", json={"room": "HlsRoom", "service": 4242}, headers=_auth(suite)
        )
        oversized = await client.post(f"{suite.edge}/link/create/hls", json={"room": "H" * 60}, headers=_auth(suite))
    assert anonymous.json() == {"status": "FAIL", "message": "Invalid token"} and after_anonymous == before
    assert reply.status_code == 200
    data = reply.json()
    assert set(data) == {"linkID", "isAdmin", "requireJoinPermission", "userName", "dtmExpired"}
    assert data["userName"] == "0811112222"
    rows = await suite.query("link", "SELECT linkType, recordId, crmSender, share, room FROM link_connect "
                             "WHERE linkID = %s", (data["linkID"],))  # fmt: skip
    assert rows == [{"linkType": "hls", "recordId": 12, "crmSender": "agent7", "share": 0, "room": "HlsRoom"}]
    assert await suite.query("link", "SELECT id FROM sms_message WHERE linkID = %s", (data["linkID"],)) == []
    for bad in (bad_room, bad_service, oversized):
        assert bad.status_code == 400 and bad.json()["status"] == "FAIL"
    counts = await _counts(suite)
    assert counts[0] == before[0] + 1 and counts[2] == before[2]


# ---- /link/cartracking -----------------------------------------------------------------------------------
async def test_car_tracking_links(suite: Any, sender: str) -> None:
    mobile = _mobile()
    async with httpx.AsyncClient(timeout=15) as client:
        await _create(client, suite, room="CarRoom", mobile="")
        body = {"carRegisNumber": "1กข-1234", "room": "CarRoom", "mobile": mobile, "service": 999}
        auth = _auth(suite)
        first = await client.post(f"{suite.edge}/link/cartracking", json=body, headers=auth)  # SMS_ENABLE=false
        second = await client.post(f"{sender}/link/cartracking", json=body, headers=auth)
        user = await client.post(f"{sender}/link/cartracking", json={**body, "linkType": "userTracking"}, headers=auth)
        for _ in range(100):
            if len(await _delivered(client, suite, mobile)) >= 2:
                break
            await asyncio.sleep(0.2)
        delivered = await _delivered(client, suite, mobile)
    assert first.status_code == 200 and first.json()["status"] == "OK"
    data = first.json()["data"]
    assert data["room"] == "CarRoom" and data["domain"] == f"https://localhost:3000/tracking/{data['linkID']}"
    rows = await suite.query(
        "link", "SELECT linkID, enabled, linkType, userName FROM link_connect WHERE room = 'CarRoom' "
        "AND linkType IN ('agentCar', 'userTracking') ORDER BY id",
    )  # fmt: skip
    assert [(r["enabled"], r["linkType"], r["userName"]) for r in rows] == [
        (0, "agentCar", "1กข-1234"), (1, "agentCar", "1กข-1234"), (1, "userTracking", "1กข-1234")
    ]  # fmt: skip
    texts = sorted(d["message"] for d in delivered)
    assert len(texts) == 2
    assert any(t.startswith('ติดตามรถเจ้าหน้าที่เลขทะเบียน "1กข-1234\n') for t in texts)
    assert sum(t.startswith("ลิ้งติดตามพิกัด\n") for t in texts) == 1
    sms_rows = await suite.query("link", "SELECT status, kind FROM sms_message WHERE linkID = %s", (data["linkID"],))
    assert sms_rows == [{"status": "disabled", "kind": "tracking"}]
    assert user.json()["data"]["linkID"] != second.json()["data"]["linkID"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"room": "CarRoom", "mobile": "0812345678", "service": 999}, "Invalid carRegisNumber"),
        ({"carRegisNumber": "A1", "room": "CarRoom", "mobile": "0812345678"}, "Invalid service"),
        ({"carRegisNumber": "A1", "room": "CarRoom", "service": 999}, "Invalid mobile"),
        ({"carRegisNumber": "A1", "room": "CarRoom", "service": 999, "mobile": "1' OR 1=1"}, "Invalid mobile"),
        ({"carRegisNumber": "A1", "mobile": "0812345678", "service": 999}, "Invalid room"),
        ({"carRegisNumber": "A1", "room": "NoCarRoomHere", "mobile": "0812345678", "service": 999}, "Invalid room"),
        ({"carRegisNumber": "A1", "room": "CarRoom", "mobile": "0812345678", "service": 999, "linkType": "bus"},
         "Invalid link type"),
        ({"carRegisNumber": "A1", "room": "CarRoom", "mobile": "0812345678", "service": 7777}, "Invalid service"),
    ],
)  # fmt: skip
async def test_car_tracking_bad_input_writes_nothing(suite: Any, body: dict[str, Any], message: str) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        await _create(client, suite, room="CarRoom", mobile="")
        before = await _counts(suite)
        reply = await client.post(f"{suite.edge}/link/cartracking", json=body, headers=_auth(suite))
    assert reply.status_code == 404 and reply.json() == {"message": message}
    assert await _counts(suite) == before


@pytest.mark.parametrize("path", ["/sms/custom", "/link/cartracking"])
async def test_sms_sending_routes_need_an_agent_token(suite: Any, path: str) -> None:
    body = {"message": "hi", "carRegisNumber": "A1", "room": "CarRoom", "mobile": "0812345678", "service": 999}
    async with httpx.AsyncClient(timeout=15) as client:
        await _create(client, suite, room="CarRoom", mobile="")
        before = await _counts(suite)
        anonymous = await client.post(f"{suite.edge}{path}", json=body)
        forged = await client.post(f"{suite.edge}{path}", json=body, headers={"Authorization": "Bearer x.y.z"})
    assert anonymous.json() == {"status": "FAIL", "message": "Invalid token"}
    assert forged.json()["status"] == "FAIL" and forged.json()["data"]["name"] == "JsonWebTokenError"
    assert await _counts(suite) == before


# ---- /link/multilatlng/send ------------------------------------------------------------------------------
async def test_multi_latlng(suite: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        link = await _create(client, suite, room="PickRoom", mobile="0812223333", sms=0)
        body = {
            "linkID": link["linkID"],
            "room": "PickRoom",
            "userType": "admin",
            "currentLocation": {"latitude": 13.75, "longitude": 100.5, "accuracy": 12},
            "pickLocation": {"latitude": 13.8, "longitude": 100.55},
        }
        reply = await client.post(f"{suite.edge}/link/multilatlng/send", json=body)
    assert reply.status_code == 200
    emit = reply.json()
    assert {k: emit[k] for k in ("linkID", "service", "userType", "room", "latitude", "longitude", "accuracy",
                                 "altitude", "speed")} == {
        "linkID": link["linkID"], "service": 2, "userType": "admin", "room": "PickRoom", "latitude": 13.75,
        "longitude": 100.5, "accuracy": 12, "altitude": 0, "speed": 0,
    }  # fmt: skip
    assert emit["currentLocation"] == body["currentLocation"] and emit["pickLocation"] == body["pickLocation"]
    assert isinstance(emit["timestamp"], int)
    rows = await suite.query("link", "SELECT patientLatitude, patientLongitude, patientUpdated FROM link_connect "
                             "WHERE linkID = %s", (link["linkID"],))  # fmt: skip
    assert (str(rows[0]["patientLatitude"]), str(rows[0]["patientLongitude"])) == ("13.800000000", "100.550000000")
    assert rows[0]["patientUpdated"] is not None
    usage = await suite.query("link", "SELECT data FROM usage_status_log WHERE linkID = %s AND status = 'MultiLatLng'",
                              (link["linkID"],))  # fmt: skip
    assert json.loads(usage[0]["data"])["pickLocation"] == body["pickLocation"]
    events = await suite.query("link", "SELECT payload FROM outbox WHERE subject = 'link.location.multi' "
                               "AND payload LIKE %s", (f"%{link['linkID']}%",))  # fmt: skip
    assert len(events) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"room": "PickRoom"},  # no linkID
        {"linkID": "unknownLinkX", "room": "PickRoom"},
        {"linkID": "LINK", "currentLocation": {"latitude": 95}},
        {"linkID": "LINK", "pickLocation": {"latitude": -1, "longitude": 100}},
        {"linkID": "LINK", "currentLocation": "here"},
        {"linkID": "x' OR '1'='1"},
    ],
)
async def test_multi_latlng_bad_input_writes_nothing(suite: Any, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        link = await _create(client, suite, room="PickRoom", mobile="", sms=0)
        if body.get("linkID") == "LINK":
            body = {**body, "linkID": link["linkID"]}
        before = await _counts(suite)
        reply = await client.post(f"{suite.edge}/link/multilatlng/send", json=body)
    assert reply.status_code in (400, 404), reply.text
    assert await _counts(suite) == before

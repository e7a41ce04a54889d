"""Conference cases through the edge: /case/create, /case/get, /case/history, /case/update."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid

import httpx
import jwt
import pytest

from contracts.conference import RPC_CASE_OF_ROOM
from tests.sockets import listen
from tests.support import rpc

ENSURE = "rpc.conference.room.ensure"
INJECTION = "1' OR '1'='1'; DROP TABLE case_data; --"
SERVICE = 999  # the tenant link seeds


def room_name() -> str:
    return "Cs" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


async def make_room(nc) -> str:
    room = room_name()
    reply = await rpc(nc, ENSURE, {"room": room, "service": SERVICE})
    assert reply["ok"], reply
    return room


@pytest.fixture
async def client(suite):
    headers = {"Authorization": f"Bearer {suite.agent_token()}"}
    async with httpx.AsyncClient(base_url=suite.edge, timeout=15, headers=headers) as http:
        yield http


async def cases_of_room(suite, room: str) -> list[dict]:
    return await suite.query(
        "conference",
        "SELECT case_data.* FROM case_data JOIN room_conference ON room_conference.id = case_data.roomId"
        " WHERE room_conference.room = %s ORDER BY case_data.id",
        (room,),
    )


async def case_events(suite, subject: str) -> list[dict]:
    rows = await suite.query("conference", "SELECT payload FROM outbox WHERE subject = %s ORDER BY id", (subject,))
    return [json.loads(r["payload"])["data"] for r in rows]


async def test_create_get_update_history_round_trip(suite, nc, client):
    room = await make_room(nc)
    created = await client.post(
        "/case/create",
        json={"userName": "Dr A", "room": room, "mobile": "0812345678", "linkType": "video", "service": SERVICE},
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["status"] == "OK" and body["data"]["userName"] == "Dr A"
    case_id = body["data"]["caseId"]
    assert isinstance(case_id, int) and case_id >= 1
    rows = await cases_of_room(suite, room)
    assert len(rows) == 1 and rows[0]["caseId"] == case_id and rows[0]["status"] == "On Case"
    assert rows[0]["mobileCreated"] == "0812345678" and rows[0]["caseType"] == "video" and rows[0]["organization"] == ""
    # What realtime (/newqueue case-data) and link (the usage_status_log row) consume.
    assert {
        "caseId": case_id,
        "service": SERVICE,
        "room": room,
        "status": "On Case",
        "organization": "",
        "userName": "Dr A",
        "linkID": None,
        "statusLog": f"Update Case id:{case_id} userName:Dr A organization:",
        "hn": None,
        "patientMobile": None,
        "caseRowId": rows[0]["id"],
    } in await case_events(suite, "conference.case.created")

    detail = (await client.get("/case/get", params={"service": SERVICE, "caseId": str(case_id)})).json()
    assert detail["caseId"] == str(case_id)
    assert detail["caseStatus"] == "On Case" and detail["roomName"] == room
    assert detail["roomStatus"] == "open" and detail["roomType"] == "conference" and detail["caseType"] == "video"
    assert detail["dtmCreated"].endswith(".000Z")
    claims = jwt.decode(detail["token"], suite.env["LIVEKIT_API_SECRET"], algorithms=["HS256"])
    assert claims["name"] == "crm" and claims["video"].get("roomJoin", False) is False
    assert 364 * 86400 < claims["exp"] - claims["nbf"] <= 366 * 86400

    updated = await client.put(
        "/case/update",
        json={"service": SERVICE, "caseId": str(case_id), "status": "Closed", "hn": "HN1", "patientMobile": "0899"},
    )
    assert updated.status_code == 200
    assert updated.json() == {"caseId": str(case_id), "status": "Closed", "hn": "HN1", "patientMobile": "0899"}
    row = (await cases_of_room(suite, room))[0]
    assert (row["status"], row["hn"], row["patientMobile"], row["operationNumber"]) == ("Closed", "HN1", "0899", None)
    # hn alone is not written (the original updated hn and patientMobile only together); null means "".
    await client.put("/case/update", json={"service": SERVICE, "caseId": case_id, "hn": "HN2", "operationNumber": None})
    row = (await cases_of_room(suite, room))[0]
    assert row["hn"] == "HN1" and row["operationNumber"] == ""
    updates = [e for e in await case_events(suite, "conference.case.updated") if e["caseId"] == case_id]
    assert [e["status"] for e in updates] == ["Closed", "Closed"]
    assert updates[0]["statusLog"] == (
        f"Update Case operationNumber:undefined id:{case_id} status:Closed hn:HN1 patientMobile0899 userName:undefined"
    )
    assert updates[1]["statusLog"] == (
        f"Update Case operationNumber:null id:{case_id} status:undefined hn:HN2 patientMobileundefined"
        " userName:undefined"
    )
    assert updates[0]["room"] == room and updates[0]["userName"] is None and updates[0]["linkID"] is None
    # The row's values after each change, and the row's own id (link's history shows it as the caseId).
    assert [(e["hn"], e["patientMobile"], e["caseRowId"]) for e in updates] == [("HN1", "0899", row["id"])] * 2

    history = (await client.get("/case/history", params={"service": SERVICE, "searchAllText": "", "limit": 500})).json()
    mine = [h for h in history["history"] if h["caseId"] == case_id]
    assert mine == [
        {
            "caseId": case_id,
            "operationNumber": "",
            "hn": "HN1",
            "patientMobile": "0899",
            "mobileCreated": "0812345678",
            "dtmCreated": detail["dtmCreated"],
            "messageUnread": 0,
            "status": "Closed",
        }
    ]
    assert history["count"] >= 1


async def test_concurrent_creates_get_distinct_case_ids(suite, nc, client):
    rooms = [await make_room(nc) for _ in range(6)]
    replies = await asyncio.gather(
        *(client.post("/case/create", json={"userName": "U", "room": r, "service": SERVICE}) for r in rooms)
    )
    ids = [r.json()["data"]["caseId"] for r in replies]
    assert len(set(ids)) == 6
    assert sorted(ids) == list(range(min(ids), min(ids) + 6))


async def test_history_modes_and_service_isolation(suite, nc, client):
    room = await make_room(nc)
    token = uuid.uuid4().hex[:8]
    other_service = 880000 + uuid.uuid4().int % 9999
    await suite.execute(
        "conference",
        "INSERT INTO case_data (caseId, service, status, hn, operationNumber, patientMobile, dtmCreated) VALUES"
        " (1, %s, 'On Case', %s, 'OP-X', '0811', '2024-05-01 10:00:00'),"
        " (2, %s, 'Process', 'HN-2', %s, '0822', '2024-05-02 10:00:00'),"
        " (3, %s, 'Closed', 'HN-3', 'OP-3', '0833', '2024-06-01 10:00:00'),"
        " (1, %s, 'On Case', %s, 'OP-9', '0899', '2024-05-01 10:00:00')",
        (other_service, f"HN-{token}", other_service, f"OP-{token}", other_service, other_service + 1, f"HN-{token}"),
    )
    del room

    async def ids(**params) -> tuple[list[int], int]:
        reply = await client.get("/case/history", params={"service": other_service, **params})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        return [h["caseId"] for h in body["history"]], body["count"]

    assert await ids(searchAllText="") == ([3, 2, 1], 3)
    assert await ids(searchAllText="", limit=2, page=2) == ([1], 3)
    # search-all: the service filter holds for every LIKE (the other service's HN-<token> row stays out)
    assert await ids(searchAllText=f" {token} ") == ([2, 1], 2)
    assert await ids() == ([3, 2, 1], 3)  # searchAllText absent: a search-all for "" (matches every case)
    assert await ids(searchAllText="%") == ([], 0)  # LIKE wildcards in the text match literally
    assert await ids(searchAllText="nothing-like-this") == ([], 0)
    # advanced
    assert await ids(isAdvancedSearch="true") == ([3, 2, 1], 3)
    assert await ids(isAdvancedSearch="true", isStatusClosed="false", isStatusProcess="false") == ([1], 1)
    assert await ids(
        isAdvancedSearch="true", isStatusClosed="false", isStatusProcess="false", isStatusOnCase="false"
    ) == ([], 0)
    assert await ids(isAdvancedSearch="true", isStatusOnCase="x", isStatusProcess="x", isStatusClosed="x") == ([], 0)
    assert await ids(
        isAdvancedSearch="true", dateTimeStart="2024-05-01 00:00:00", dateTimeEnd="2024-05-31 23:59:59"
    ) == ([2, 1], 2)
    assert await ids(isAdvancedSearch="true", dateTimeStart="undefined", dateTimeEnd="2024-05-31 23:59:59") == (
        [3, 2, 1],
        3,
    )
    assert await ids(isAdvancedSearch="true", patientMobile="082") == ([2], 1)  # the original's `$..$` bug fixed
    assert await ids(isAdvancedSearch="true", operationNumber=token) == ([2], 1)
    assert await ids(isAdvancedSearch="true", hn="HN-3", caseId="3") == ([3], 1)


async def test_history_bad_input(suite, client):
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as anonymous:
        for params in (
            {},
            {"service": "abc"},
            {"service": INJECTION, "searchAllText": ""},
            {"service": "999' OR 1=1 --", "searchAllText": INJECTION},
        ):
            reply = await anonymous.get("/case/history", params=params)
            assert reply.status_code == 200 and reply.json() == {"history": [], "count": 0}, params
        for params in (
            {"service": SERVICE, "limit": "-1"},
            {"service": SERVICE, "limit": "100000"},
            {"service": SERVICE, "searchAllText": "x" * 500},
            {"service": SERVICE, "isAdvancedSearch": "true", "dateTimeStart": "yesterday", "dateTimeEnd": "today"},
        ):
            reply = await anonymous.get("/case/history", params=params)
            assert reply.status_code == 400 and reply.json()["status"] == "FAIL", params
        injected = await anonymous.get("/case/history", params={"service": SERVICE, "searchAllText": INJECTION})
        assert injected.json() == {"history": [], "count": 0}
        garbage_page = await anonymous.get("/case/history", params={"service": SERVICE, "page": "abc", "limit": "x"})
        assert garbage_page.status_code == 200
    assert len(await suite.query("conference", "SHOW TABLES LIKE 'case_data'")) == 1


async def test_get_bad_input(suite, client):
    for params, expected in (
        ({}, {"message": "invalid parameter"}),
        ({"service": SERVICE, "caseId": ""}, {"message": "invalid parameter"}),
        ({"service": SERVICE, "caseId": "99999999"}, {"message": "invalid caseId"}),
        ({"service": SERVICE, "caseId": INJECTION}, {"message": "invalid caseId"}),
        ({"service": INJECTION, "caseId": "1"}, {"message": "invalid caseId"}),
        ({"caseId": "1"}, {"message": "invalid caseId"}),
        ({"service": SERVICE, "caseId": "9" * 40}, {"message": "invalid caseId"}),
    ):
        reply = await client.get("/case/get", params=params)
        assert reply.status_code == 200 and reply.json() == expected, params


async def test_create_and_update_require_a_valid_token(suite, nc):
    room = await make_room(nc)
    bad = jwt.encode({"iss": "devkey", "exp": 9999999999}, "wrong-secret-wrong-secret-wrong!", "HS256")
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as anonymous:
        for headers in ({}, {"Authorization": f"Bearer {bad}"}, {"Authorization": "Bearer garbage"}):
            created = await anonymous.post(
                "/case/create", json={"room": room, "service": SERVICE, "userName": "X"}, headers=headers
            )
            assert created.status_code == 200 and created.json()["status"] == "FAIL", created.text
            updated = await anonymous.put(
                "/case/update", json={"service": SERVICE, "caseId": 1, "status": "Hacked"}, headers=headers
            )
            assert updated.status_code == 200 and updated.json()["status"] == "FAIL"
    assert await cases_of_room(suite, room) == []
    hacked = await suite.query("conference", "SELECT id FROM case_data WHERE status = 'Hacked'")
    assert hacked == []


async def test_create_bad_input_writes_nothing(suite, nc, client):
    room = await make_room(nc)
    before = await suite.query("conference", "SELECT COUNT(*) AS n FROM case_data")
    not_found = {"message": "Service not found"}
    for body, status, expected in (
        ({"room": room}, 404, not_found),
        ({"room": room, "service": 123456}, 404, not_found),
        ({"room": room, "service": SERVICE + 1000000}, 404, not_found),
        ({"room": "NoSuchRoomHere", "service": SERVICE}, 200, {"status": "FAIL", "message": "invalid room"}),
        ({"room": INJECTION[:50], "service": SERVICE}, 200, {"status": "FAIL", "message": "invalid room"}),
        ({"service": SERVICE}, 200, {"status": "FAIL", "message": "invalid room"}),
    ):
        reply = await client.post("/case/create", json=body)
        assert reply.status_code == status and reply.json() == expected, body
    for body in (
        {"room": room, "service": "abc"},
        {"room": room, "service": INJECTION},
        {"room": room, "service": SERVICE, "userName": "u" * 101},
        {"room": room, "service": SERVICE, "organization": "o" * 51},
        {"room": ["x"], "service": SERVICE},
        {"room": room, "service": -1},
    ):
        reply = await client.post("/case/create", json=body)
        assert reply.status_code == 400 and reply.json()["status"] == "FAIL", body
    for raw in (b"not json", b"[1,2]", b'{"room":' + b"x" * 2_000_000 + b"}"):
        reply = await client.post("/case/create", content=raw, headers={"content-type": "application/json"})
        assert reply.status_code in (400, 413), reply.status_code
    after = await suite.query("conference", "SELECT COUNT(*) AS n FROM case_data")
    assert after == before


async def test_update_bad_input_writes_nothing(suite, nc, client):
    room = await make_room(nc)
    created = await client.post("/case/create", json={"room": room, "service": SERVICE, "userName": "U"})
    case_id = created.json()["data"]["caseId"]
    for body in (
        {"caseId": case_id, "status": "X"},
        {"service": SERVICE, "status": "X"},
        {"service": "", "caseId": case_id, "status": "X"},
        {"service": SERVICE, "caseId": "", "status": "X"},
        {"service": SERVICE, "caseId": INJECTION, "status": "X"},
        {"service": INJECTION, "caseId": case_id, "status": "X"},
    ):
        reply = await client.put("/case/update", json=body)
        assert reply.status_code == 404 and reply.text == "Invalid Parameter", body
    for body in (
        {"service": SERVICE, "caseId": case_id, "status": "s" * 51},
        {"service": SERVICE, "caseId": case_id, "status": 5},
        {"service": SERVICE, "caseId": case_id, "hn": "h" * 51, "patientMobile": "1"},
    ):
        reply = await client.put("/case/update", json=body)
        assert reply.status_code == 400 and reply.json()["status"] == "FAIL", body
    row = (await cases_of_room(suite, room))[0]
    assert row["status"] == "On Case" and row["hn"] is None


# ---- through realtime: /newqueue case-data ----------------------------------------------------------------
@pytest.mark.usefixtures("node_client", "consumers_ready")  # socket.io-client installed; realtime consuming
async def test_case_events_reach_newqueue_socket_clients(suite, nc, client):
    if "realtime" not in suite.services:
        pytest.skip("needs the realtime service")
    room = await make_room(nc)
    listener = await listen(
        shutil.which("node") or "node",
        f"{suite.edge}/newqueue",
        "--token",
        suite.agent_token(),  # /newqueue is for agent dashboards (realtime.md §13.1)
        "--events",
        "case-data",
        "--count",
        "2",
        "--timeout",
        "20000",
    )
    try:
        await listener.connected()
        created = await client.post("/case/create", json={"room": room, "service": SERVICE, "userName": "E2E"})
        case_id = created.json()["data"]["caseId"]
        first = await listener.until("event", "case-data", timeout=15)
        assert first["data"] == {"action": "caseCreated"}
        await client.put("/case/update", json={"service": SERVICE, "caseId": case_id, "status": "Process"})
        second = await listener.until("event", "case-data", timeout=15)
        assert second["data"] == {"action": "caseUpdated"}
    finally:
        await listener.close()


async def test_case_of_room_rpc_answers_the_first_case_with_original_types(suite, nc, client):
    """RPC_CASE_OF_ROOM (telemetry's GET /car/task): the room's first case, ints as ints, dtmCreated UTC ISO."""
    room = await make_room(nc)
    assert await rpc(nc, RPC_CASE_OF_ROOM, {"room": room}) == {"ok": True}  # data null (omitted): no case yet
    first = await client.post(
        "/case/create", json={"userName": "Dr A", "room": room, "mobile": "0812", "service": SERVICE}
    )
    assert first.status_code == 200 and first.json()["status"] == "OK", first.text
    first_id = first.json()["data"]["caseId"]
    updated = await client.put(
        "/case/update",
        json={"service": SERVICE, "caseId": first_id, "status": "Process", "hn": "HN7", "patientMobile": "0899"},
    )
    assert updated.status_code == 200, updated.text
    await client.put("/case/update", json={"service": SERVICE, "caseId": first_id, "operationNumber": "OP-9"})
    await suite.execute(
        "conference", "UPDATE case_data SET dtmCreated = '2024-05-01 10:00:00' WHERE caseId = %s AND service = %s",
        (first_id, SERVICE),
    )  # fmt: skip
    second = await client.post("/case/create", json={"userName": "Dr B", "room": room, "service": SERVICE})
    assert second.json()["data"]["caseId"] == first_id + 1  # a later case of the room is not the answer

    reply = await rpc(nc, RPC_CASE_OF_ROOM, {"room": room})
    assert reply["ok"] is True, reply
    assert reply["data"] == {
        "service": SERVICE,
        "caseId": first_id,
        "operationNumber": "OP-9",
        "hn": "HN7",
        "patientMobile": "0899",
        "userName": "Dr A",
        "mobileCreated": "0812",
        "dtmCreated": "2024-05-01T03:00:00.000Z",  # local Asia/Bangkok 10:00 as the original's driver sent it
        "status": "Process",
    }
    assert list(reply["data"]) == [
        "service", "caseId", "operationNumber", "hn", "patientMobile", "userName", "mobileCreated", "dtmCreated",
        "status",
    ]  # fmt: skip

    for unknown in (room_name(), INJECTION):
        assert await rpc(nc, RPC_CASE_OF_ROOM, {"room": unknown}) == {"ok": True}
    bad = await rpc(nc, RPC_CASE_OF_ROOM, {"name": room})
    assert bad["ok"] is False and bad["code"] == "bad_request"

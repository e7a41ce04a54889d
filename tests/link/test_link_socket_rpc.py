"""What link answers realtime for room-socket events (contracts.link, "remaining room socket events"):
``user-position`` (rpc.link.link.user_position), ``get-user-position-group`` (rpc.link.link.position_group) and the
dashboards' ``queue`` page (rpc.link.link.queue_page); recording's usage rows (recording.record.usage) written to
usage_status_log once; and LinkCreated.linkRowId. Requests are made over NATS as realtime makes them."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support import rpc, until

USER_POSITION = "rpc.link.link.user_position"
POSITION_GROUP = "rpc.link.link.position_group"
QUEUE_PAGE = "rpc.link.link.queue_page"


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


def _room(prefix: str = "Sock") -> str:
    return f"{prefix} " + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


async def _create(suite: Any, client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    reply = await client.post("/link/create", json={"sms": 0, **body}, headers=_auth(suite))
    assert reply.status_code == 200, reply.text
    return reply.json()


async def _outbox(suite: Any, subject: str, link_id: str) -> list[dict[str, Any]]:
    rows = await suite.query("link", "SELECT payload FROM outbox WHERE subject = %s AND payload LIKE %s ORDER BY id",
                             (subject, f"%{link_id}%"))  # fmt: skip
    return [json.loads(r["payload"])["data"] for r in rows]


async def _position(suite: Any, link_id: str) -> dict[str, Any]:
    rows = await suite.query("link", "SELECT latitude, longitude, accuracy FROM link_connect WHERE linkID = %s",
                             (link_id,))  # fmt: skip
    return rows[0]


async def _usage(suite: Any, link_id: str, status: str) -> list[dict[str, Any]]:
    return await suite.query("link", "SELECT * FROM usage_status_log WHERE linkID = %s AND status = %s",
                             (link_id, status))  # fmt: skip


# ---- user-position / get-user-position-group ------------------------------------------------------------------
async def test_user_position_stores_logs_publishes_and_answers_the_group(
    suite: Any, client: httpx.AsyncClient, nc: Any
) -> None:
    room = _room()
    first = (await _create(suite, client, room=room, mobile="0811110001", userName="Pat One"))["linkID"]
    second = (await _create(suite, client, room=room, mobile="0811110002", userName="Pat Two"))["linkID"]

    reply = await rpc(nc, USER_POSITION, {"room": room, "linkID": first, "latitude": 13.75, "longitude": 100.5,
                                          "accuracy": 12})  # fmt: skip
    assert reply["ok"] is True, reply
    group = reply["data"]
    assert [item["userName"] for item in group] == ["Pat Two", "Pat One"]  # newest link first
    mine = group[1]
    assert list(mine) == ["id", "mobile", "share", "userName", "accuracy", "latitude", "longitude", "errorLocation"]
    assert float(mine["latitude"]) == 13.75 and float(mine["longitude"]) == 100.5 and mine["accuracy"] == "12"
    assert group[0]["latitude"] == 0 and group[0]["longitude"] == 0  # no position yet: 0, as the original
    assert mine["mobile"] == "0811110001" and mine["share"] == 0

    stored = await _position(suite, first)
    assert float(stored["latitude"]) == 13.75 and float(stored["longitude"]) == 100.5 and stored["accuracy"] == "12"
    logged = await _usage(suite, first, "UpdateLatLngLinkDetail")
    assert len(logged) == 1 and logged[0]["room"] == room and logged[0]["userType"] == "user"
    assert float(logged[0]["latitude"]) == 13.75
    published = await _outbox(suite, "link.location.updated", first)
    assert len(published) == 1
    assert published[0]["room"] == room and published[0]["position"]["latitude"] == 13.75
    assert published[0]["position"]["accuracy"] == 12

    again = await rpc(nc, POSITION_GROUP, {"room": room})
    assert again["ok"] is True and again["data"] == group
    assert (await rpc(nc, POSITION_GROUP, {"room": _room("Empty")}))["data"] == []
    assert second  # the second link only had to exist


async def test_user_position_refuses_bad_positions_and_foreign_links(
    suite: Any, client: httpx.AsyncClient, nc: Any
) -> None:
    room = _room()
    link_id = (await _create(suite, client, room=room, mobile="0811110003", userName="Pat Three"))["linkID"]
    other_room = _room("Other")
    await _create(suite, client, room=other_room, mobile="0811110004")

    bad = [
        {"latitude": 91, "longitude": 100.5},
        {"latitude": 13.7, "longitude": -180.5},
        {"latitude": None, "longitude": 100.5},
        {"latitude": 13.7, "longitude": 100.5, "accuracy": 1e12},
    ]
    for position in bad:
        reply = await rpc(nc, USER_POSITION, {"room": room, "linkID": link_id, **position})
        assert reply["ok"] is False and reply["code"] == "bad_request", (position, reply)
    reply = await rpc(nc, USER_POSITION, {"room": room, "linkID": "x" * 51, "latitude": 1, "longitude": 1})
    assert reply["code"] == "bad_request"
    # a link of another room (or no link at all): not_found, nothing written
    for room_name, link in ((other_room, link_id), (room, "NoSuch")):
        reply = await rpc(nc, USER_POSITION, {"room": room_name, "linkID": link, "latitude": 1, "longitude": 2})
        assert reply["ok"] is False and reply["code"] == "not_found", reply
    # an injection attempt is only data
    reply = await rpc(nc, USER_POSITION, {"room": "' OR '1'='1", "linkID": "' OR '1'='1", "latitude": 1,
                                          "longitude": 2})  # fmt: skip
    assert reply["code"] == "not_found"

    stored = await _position(suite, link_id)
    assert stored["latitude"] is None and stored["longitude"] is None
    assert await _usage(suite, link_id, "UpdateLatLngLinkDetail") == []
    assert await _outbox(suite, "link.location.updated", link_id) == []


# ---- the socket `queue` page --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
async def tenant(suite: Any) -> int:
    """A tenant of this module only, so the queue's counts are exact."""
    service = random.randint(100_000, 2_000_000)
    await suite.execute(
        "link",
        "INSERT INTO services (id, name, webTitle, prefixTextVideoSMS, prefixTextLocationSMS, domainsVideo,"
        " domainsLocation, smsSenderName) VALUES (%s, 'Queue test', '', 'v', 'l', 'https://q.example',"
        " 'https://q.example', 'Q')",
        (service,),
    )
    return service


async def _in_room_view(suite: Any, room: str) -> Any:
    return await suite.query("link", "SELECT id, status FROM room_view WHERE room = %s", (room,))


@pytest.fixture(scope="module")
async def queue_links(suite: Any, tenant: int) -> dict[str, Any]:
    """Two rooms of the tenant: room A with links of 0822220001 and 0822220002 and agent "Dr Alpha_1", room B with a
    link of 0833330003 and agent "Dr Beta"; each room also has its share links and the agent's link (no mobile)."""
    room_a, room_b = _room("QueueA"), _room("QueueB")
    made: dict[str, Any] = {"rooms": (room_a, room_b)}
    async with httpx.AsyncClient(base_url=suite.edge, timeout=30) as client:
        await _create(suite, client, room=room_a, service=tenant, userType="admin", isAdmin=1, userName="Dr Alpha_1")
        made["a1"] = (await _create(suite, client, room=room_a, service=tenant, mobile="0822220001"))["linkID"]
        made["a2"] = (await _create(suite, client, room=room_a, service=tenant, mobile="0822220002"))["linkID"]
        await _create(suite, client, room=room_b, service=tenant, userType="admin", isAdmin=1, userName="Dr Beta")
        made["b1"] = (
            await _create(suite, client, room=room_b, service=tenant, mobile="0833330003", linkType="location")
        )["linkID"]
    for room in (room_a, room_b):
        await until(lambda room=room: _in_room_view(suite, room))
    return made


async def _queue(nc: Any, **request: Any) -> dict[str, Any]:
    reply = await rpc(nc, QUEUE_PAGE, request)
    assert reply["ok"] is True, reply
    return reply["data"]


async def test_queue_pages_a_tenants_links_newest_first(
    suite: Any, nc: Any, tenant: int, queue_links: dict[str, Any]
) -> None:
    first = await _queue(nc, status="init", service=tenant, page=1, maxRow=2)
    assert first["status"] == "data" and first["service"] == tenant and first["page"] == 1 and first["maxRow"] == 2
    assert first["count"] == 3
    assert [row["linkID"] for row in first["data"]] == [queue_links["b1"], queue_links["a2"]]
    row = first["data"][1]
    assert list(row) == ["caseId", "linkID", "caseStatus", "hn", "patientMobile", "room", "id", "mobile", "linkType",
                         "crmSender", "patientLatitude", "patientLongitude", "patientUpdated", "dtmCreated", "agent",
                         "status", "activeLog", "recordVideos"]  # fmt: skip
    room_a = queue_links["rooms"][0]
    room_id = (await suite.query("conference", "SELECT id FROM room_conference WHERE room = %s", (room_a,)))[0]["id"]
    assert row["room"] == room_a and row["id"] == room_id and row["mobile"] == "0822220002"
    assert row["agent"] == "Dr Alpha_1" and row["status"] == "open" and row["caseId"] is None
    assert "latitude" not in row  # null positions were undefined in the original: absent
    assert [entry["status"] for entry in row["activeLog"]] == ["CreateLink"]
    assert row["recordVideos"] == []

    second = await _queue(nc, status="changePage", service=str(tenant), page="2", maxRow="2")
    assert second["page"] == "2" and second["maxRow"] == "2" and second["service"] == str(tenant)
    assert [r["linkID"] for r in second["data"]] == [queue_links["a1"]] and second["count"] == 3

    default = await _queue(nc, status="init", service=tenant)
    assert "page" not in default and "maxRow" not in default  # echoed only when sent
    assert len(default["data"]) == 3 and default["count"] == 3  # default page size 5
    other = await _queue(nc, status="init")  # no service: the original's tenant 1
    assert other["service"] == 1 and all(r["linkID"] not in queue_links.values() for r in other["data"])


async def test_queue_searches(nc: Any, tenant: int, queue_links: dict[str, Any]) -> None:
    async def ids(**request: Any) -> tuple[list[str], int]:
        page = await _queue(nc, service=tenant, page=1, maxRow=10, **request)
        return [r["linkID"] for r in page["data"]], page["count"]

    a1, a2, b1 = queue_links["a1"], queue_links["a2"], queue_links["b1"]
    assert await ids(status="searchAll", value="082222") == ([a2, a1], 2)  # mobile
    assert await ids(status="searchAll", value="Beta") == ([b1], 1)  # agent
    assert await ids(status="searchAll", value="พิกัด") == ([b1], 1)  # Thai label of the location link type
    assert await ids(status="searchAll", value="กำลังสนทนา") == ([b1, a2, a1], 3)  # Thai label of "open"
    year = datetime.now().strftime("%Y")
    assert (await ids(status="searchAll", value=year))[1] == 3  # created time
    assert await ids(status="searchAll", value="  ") == ([b1, a2, a1], 3)  # blank: no filter
    # LIKE wildcards are literal: "%" and "_" match only themselves
    assert await ids(status="searchAll", value="%") == ([], 0)
    assert await ids(status="searchAll", value="Alpha_") == ([a2, a1], 2)
    assert await ids(status="searchAll", value="Alph__") == ([], 0)
    assert await ids(status="searchAll", value="' OR 1=1 -- ") == ([], 0)

    assert await ids(status="searchAdvanced", mobile="0822", agentName="Alpha", roomStatus="all") == ([a2, a1], 2)
    assert await ids(status="searchAdvanced", mobile="", agentName="", roomStatus="open") == ([b1, a2, a1], 3)
    assert await ids(status="searchAdvanced", mobile="", agentName="", roomStatus="close") == ([], 0)
    assert await ids(status="searchAdvanced", mobile="", agentName="", roomStatus="disable") == ([], 0)
    assert await ids(status="searchAdvanced", mobile="0833", agentName="Beta", roomStatus="all") == ([b1], 1)
    # the room's creation time range
    assert (await ids(status="searchAdvanced", mobile="", agentName="", roomStatus="all",
                      dateTimeStart="2000-01-01 00:00:00", dateTimeEnd="2099-01-01 00:00:00"))[1] == 3  # fmt: skip
    assert (await ids(status="searchAdvanced", mobile="", agentName="", roomStatus="all",
                      dateTimeStart="2000-01-01 00:00:00", dateTimeEnd="2000-01-02 00:00:00")) == ([], 0)  # fmt: skip


async def test_queue_refuses_what_the_original_crashed_on(nc: Any, tenant: int) -> None:
    nonsense = await rpc(nc, QUEUE_PAGE, {"status": "nonsense", "service": tenant})
    assert nonsense["ok"] is True and nonsense.get("data") is None  # answered with null: realtime emits nothing
    for request in (
        {"status": "init", "service": "abc"},
        {"status": "init", "service": tenant, "maxRow": "x"},
        {"status": "init", "service": tenant, "maxRow": -1},
        {"status": "searchAll", "service": tenant},  # no value
        {"status": "searchAdvanced", "service": tenant, "dateTimeStart": "nope", "dateTimeEnd": "2099-01-01"},
    ):
        reply = await rpc(nc, QUEUE_PAGE, request)
        assert reply["ok"] is False and reply["code"] == "bad_request", (request, reply)


# ---- recording's usage rows -----------------------------------------------------------------------------------
async def _publish(nc: Any, subject: str, data: dict[str, Any], event_id: str) -> None:
    envelope = {"id": event_id, "subject": subject, "version": 1,
                "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"), "data": data}  # fmt: skip
    await nc.jetstream().publish(subject, json.dumps(envelope).encode(), headers={"Nats-Msg-Id": uuid.uuid4().hex})


async def test_record_usage_rows_written_once(suite: Any, nc: Any) -> None:
    room = _room("Rec")
    egress = {"egressId": "EG_" + uuid.uuid4().hex[:8], "roomName": room, "status": 0}
    event_id = uuid.uuid4().hex
    usage = {"room": room, "identity": "agent-1", "status": "StartRecord", "userAgent": "Mozilla/5.0 Test",
             "data": egress}  # fmt: skip
    await _publish(nc, "recording.record.usage", usage, event_id)
    await _publish(nc, "recording.record.usage", usage, event_id)  # a redelivery of the same event
    failed = {"room": room, "status": "FailRecord", "data": None}
    await _publish(nc, "recording.record.usage", failed, uuid.uuid4().hex)

    async def rows() -> list[dict[str, Any]]:
        found = await suite.query("link", "SELECT * FROM usage_status_log WHERE room = %s ORDER BY id", (room,))
        return found if len(found) >= 2 else []

    found = await until(rows)
    await asyncio.sleep(1.0)  # a duplicate would have landed by now
    found = await suite.query("link", "SELECT * FROM usage_status_log WHERE room = %s ORDER BY id", (room,))
    assert [r["status"] for r in found] == ["StartRecord", "FailRecord"]
    start, fail = found
    assert start["identity"] == "agent-1" and start["userAgent"] == "Mozilla/5.0 Test"
    assert json.loads(start["data"]) == egress and start["dtmCreated"] is not None
    assert fail["identity"] == "" and json.loads(fail["data"]) == ""


# ---- LinkCreated.linkRowId --------------------------------------------------------------------------------------
async def test_link_created_carries_the_row_id(suite: Any, client: httpx.AsyncClient) -> None:
    room = _room("RowId")
    made = [(await _create(suite, client, room=room, mobile="0811110009"))["linkID"]]
    hls = await client.post("/link/create/hls", json={"room": room, "recordId": "12", "agentUsername": "agent7",
                                                      "mobile": "0811110010"}, headers=_auth(suite))  # fmt: skip
    assert hls.status_code == 200, hls.text
    made.append(hls.json()["linkID"])
    car = await client.post("/link/cartracking", json={"carRegisNumber": "1AB-1234", "room": room,
                                                       "mobile": "0811110011", "service": 999},
                            headers=_auth(suite))  # fmt: skip
    assert car.status_code == 200, car.text
    made.append(car.json()["data"]["linkID"])
    for link_id in made:
        row = (await suite.query("link", "SELECT id, dtmCreated FROM link_connect WHERE linkID = %s", (link_id,)))[0]
        created = await _outbox(suite, "link.link.created", link_id)
        assert [event["linkRowId"] for event in created] == [row["id"]], link_id
        assert created[0]["dtmCreated"] == row["dtmCreated"].strftime("%Y-%m-%d %H:%M:%S")
    hls_event = (await _outbox(suite, "link.link.created", made[1]))[0]
    assert hls_event["recordId"] == 12 and hls_event["crmSender"] == "agent7" and hls_event["share"] == 0


# ---- through realtime, with the official socket.io-client ---------------------------------------------------------
async def test_socket_events_through_realtime(
    suite: Any, client: httpx.AsyncClient, tenant: int, queue_links: dict[str, Any]
) -> None:
    if "realtime" not in suite.services or "conference" not in suite.services:
        pytest.skip("needs realtime and conference")
    from tests.sockets import NODE, joined, participant, wait_for_consumers
    from tests.sockets import client as socket_client

    await wait_for_consumers(suite.nats_url)
    room = queue_links["rooms"][1]
    link_id = queue_links["b1"]
    _, patient_token = participant(suite, room, "user", "0833330003")
    _, agent_token = participant(suite, room, "admin", "Dr Beta")
    patient = await joined(NODE, suite, room, patient_token)
    agent = await joined(NODE, suite, room, agent_token)
    dashboard = await socket_client(NODE, f"{suite.edge}/newqueue", "--token", suite.agent_token())
    try:
        await patient.send("user-position", {"linkID": link_id, "latitude": 14.5, "longitude": 101.25, "accuracy": 5})
        for c in (patient, agent):
            group = (await c.until("event", "user-position-group"))["data"]
            assert [(g["mobile"], float(g["latitude"]), float(g["longitude"])) for g in group] == [
                ("0833330003", 14.5, 101.25)
            ]
        stored = await _position(suite, link_id)
        assert float(stored["latitude"]) == 14.5 and stored["accuracy"] == "5"
        # out of range: link refuses, realtime broadcasts nothing
        await patient.send("user-position", {"linkID": link_id, "latitude": 95, "longitude": 101.25})
        assert await agent.quiet("user-position-group", 1.0) == []
        await agent.send("get-user-position-group")
        assert [g["mobile"] for g in (await agent.until("event", "user-position-group"))["data"]] == ["0833330003"]

        await dashboard.connected()
        await dashboard.send("queue", {"status": "searchAll", "service": tenant, "page": 1, "maxRow": 5,
                                       "value": "0833"})  # fmt: skip
        page = (await dashboard.until("event", "queue"))["data"]
        assert page["status"] == "data" and page["count"] == 1 and page["data"][0]["linkID"] == link_id
    finally:
        await patient.close()
        await agent.close()
        await dashboard.close()

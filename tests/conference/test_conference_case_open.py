"""rpc.conference.case.open (link's POST /link/idems case): the case row and CASE_CREATED in one transaction,
one case per (service, room) however often link retries, bad input refused; and POST /link/idems end to end
through the edge with the real conference answering."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from typing import Any

import httpx

from tests.support import rpc

CASE_OPEN = "rpc.conference.case.open"
ENSURE = "rpc.conference.room.ensure"


def room_name() -> str:
    return "Co" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def fresh_service() -> int:
    """A tenant number no other test uses, so caseIds start at 1."""
    return random.randint(100_000, 2_000_000_000)  # noqa: S311 - not security


async def make_room(nc: Any, service: int) -> tuple[str, int]:
    room = room_name()
    reply = await rpc(nc, ENSURE, {"room": room, "service": service, "linkType": "video"})
    assert reply["ok"], reply
    return room, reply["data"]["room"]["id"]


def open_request(service: int, room: str, room_id: int | None, **extra: Any) -> dict[str, Any]:
    return {"service": service, "room": room, "roomId": room_id, "userName": "0812345678",
            "mobileCreated": "0812345678", "caseType": "video", "organization": "B7", **extra}  # fmt: skip


async def cases_of_room(suite: Any, room: str) -> list[dict[str, Any]]:
    return await suite.query(
        "conference",
        "SELECT case_data.* FROM case_data JOIN room_conference ON room_conference.id = case_data.roomId"
        " WHERE room_conference.room = %s ORDER BY case_data.id",
        (room,),
    )


async def created_events(suite: Any, room: str) -> list[dict[str, Any]]:
    rows = await suite.query(
        "conference",
        "SELECT payload FROM outbox WHERE subject = 'conference.case.created' AND payload LIKE %s ORDER BY id",
        (f'%"room":"{room}"%',),
    )
    return [json.loads(row["payload"])["data"] for row in rows]


async def test_case_open_writes_the_case_and_its_event(suite: Any, nc: Any) -> None:
    service = fresh_service()
    room, room_id = await make_room(nc, service)
    reply = await rpc(nc, CASE_OPEN, open_request(service, room, room_id))
    assert reply["ok"], reply
    assert reply["data"]["caseId"] == 1 and reply["data"]["created"] is True
    rows = await cases_of_room(suite, room)
    assert len(rows) == 1
    row = rows[0]
    assert reply["data"]["caseRowId"] == row["id"]
    assert (row["caseId"], row["service"], row["roomId"], row["status"]) == (1, service, room_id, "On Case")
    assert (row["userName"], row["mobileCreated"], row["caseType"], row["organization"]) == (
        "0812345678", "0812345678", "video", "B7",
    )  # fmt: skip
    assert row["hn"] is None and row["patientMobile"] is None and row["dtmCreated"] is not None
    assert await created_events(suite, room) == [
        {"caseId": 1, "service": service, "room": room, "status": "On Case", "organization": "B7",
         "userName": "0812345678", "linkID": None, "statusLog": "", "hn": None, "patientMobile": None,
         "caseRowId": row["id"]},
    ]  # fmt: skip

    # The next case of the tenant takes the next caseId; roomId may be left out (looked up by name).
    other, _ = await make_room(nc, service)
    second = await rpc(nc, CASE_OPEN, open_request(service, other, None, caseType="location", organization=""))
    assert second["ok"] and second["data"]["caseId"] == 2, second
    assert [r["caseType"] for r in await cases_of_room(suite, other)] == ["location"]


async def test_case_open_retries_open_one_case(suite: Any, nc: Any) -> None:
    service = fresh_service()
    room, room_id = await make_room(nc, service)
    request = open_request(service, room, room_id)
    first = await rpc(nc, CASE_OPEN, request)
    again = await rpc(nc, CASE_OPEN, request)
    assert first["ok"] and again["ok"], (first, again)
    assert again["data"] == {**first["data"], "created": False}
    # Concurrent retries (link timed out and asked again while the first was still running).
    other, other_id = await make_room(nc, service)
    replies = await asyncio.gather(*(rpc(nc, CASE_OPEN, open_request(service, other, other_id)) for _ in range(6)))
    assert all(reply["ok"] for reply in replies), replies
    assert {reply["data"]["caseId"] for reply in replies} == {2}
    assert sum(reply["data"]["created"] for reply in replies) == 1
    for name in (room, other):
        assert len(await cases_of_room(suite, name)) == 1
        assert len(await created_events(suite, name)) == 1


async def test_case_open_bad_input(suite: Any, nc: Any) -> None:
    service = fresh_service()
    room, room_id = await make_room(nc, service)
    other, other_id = await make_room(nc, service)
    bad: list[Any] = [
        b"not json",
        {},
        {"service": service},
        open_request(service, "", None),
        open_request(service, "   ", None),
        open_request(service, room_name(), None),  # no such room
        open_request(service, room, other_id),  # roomId of another room
        open_request("1' OR '1'='1", room, room_id),
        open_request(-1, room, room_id),
        open_request(2_147_483_648, room, room_id),
        open_request(service, room, 0),
        open_request(service, room, room_id, organization="x" * 51),
        open_request(service, room, room_id, userName="x" * 101),
        open_request(service, room, room_id, mobileCreated="0" * 51),
        open_request(service, room, room_id, caseType="x" * 51),
        open_request(service, "r" * 51, None),
        open_request(service, room, room_id, caseType=None),
    ]
    for request in bad:
        reply = await rpc(nc, CASE_OPEN, request)
        assert not reply["ok"] and reply["code"] == "bad_request", (request, reply)
    assert await cases_of_room(suite, room) == [] and await created_events(suite, room) == []
    # The refused requests did not take the room's key: a good one still opens its case.
    good = await rpc(nc, CASE_OPEN, open_request(service, room, room_id))
    assert good["ok"] and good["data"]["caseId"] == 1 and good["data"]["created"], good
    assert [r["roomId"] for r in await cases_of_room(suite, other)] == []


async def _tenant_one(suite: Any) -> None:
    await suite.execute(
        "link",
        "INSERT IGNORE INTO services (id, name, prefixTextVideoSMS, prefixTextLocationSMS, domainsVideo,"
        " domainsLocation, smsSenderName) VALUES (1, 'IDEMS', 'video', 'location', 'https://v.example,https://w.example',"
        " 'https://loc.example', 'IDEMS')",
    )


async def test_link_idems_opens_a_conference_case(suite: Any, client: httpx.AsyncClient) -> None:
    await _tenant_one(suite)
    agent = "cc-" + uuid.uuid4().hex[:8]
    body = {"mobile": "0811112222", "agentName": agent, "linkType": "video", "branch": "BR9", "sms": 0}
    headers = {"Authorization": f"Bearer {suite.agent_token()}"}
    reply = await client.post("/link/idems", json=body, headers=headers)
    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    assert reply.json()["status"] == "OK" and isinstance(data["caseId"], int)
    rows = await cases_of_room(suite, data["room"])
    assert len(rows) == 1
    row = rows[0]
    expected = (data["caseId"], 1, data["roomId"], "On Case")
    assert (row["caseId"], row["service"], row["roomId"], row["status"]) == expected
    assert (row["userName"], row["mobileCreated"], row["caseType"], row["organization"]) == (
        "0811112222", "0811112222", "video", "BR9",
    )  # fmt: skip
    [event] = await created_events(suite, data["room"])
    assert event["caseId"] == data["caseId"] and event["caseRowId"] == row["id"] and event["organization"] == "BR9"

    # A second IDEMS request makes its own room and the tenant's next case.
    body2 = {**body, "mobile": "0811113333", "linkType": "location"}
    second = (await client.post("/link/idems", json=body2, headers=headers)).json()
    assert second["status"] == "OK", second
    assert second["data"]["room"] != data["room"] and second["data"]["caseId"] > data["caseId"]
    assert [r["caseType"] for r in await cases_of_room(suite, second["data"]["room"])] == ["location"]

"""A rebuild removes the read-model rows of owner rows that are gone (servicekit.rebuild.Prune): a room, its links, a
room user and a case made through the edge, rebuilt once, then deleted straight from the owners' tables (as a
migration's catch-up copies an original's deletes, publishing no event), are gone from every read model that prunes
after the second rebuild; the read models that do not prune (telemetry's car_room, conference's room_link_view) keep
theirs, and a row of an entity another test's owner still has is untouched."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from contracts.conference import RPC_PRESENCE_CONNECT
from deploy.rebuild import rebuild
from tests.support import rpc, until

SERVICE = 999  # the tenant link seeds
SERVICES = ["recording", "conference", "link", "telemetry"]  # realtime's registry never prunes
# service, read model (table and step), column naming the room
PRUNED = [
    ("link", "room_view", "room"), ("link", "room_user_view", "room"), ("link", "room_case_view", "room"),
    ("recording", "room_setting", "room"), ("telemetry", "car_room_link", "room"), ("telemetry", "stats_link", "room"),
    ("telemetry", "stats_case", "room"), ("telemetry", "stats_participant", "room"),
]  # fmt: skip
KEPT = [("telemetry", "car_room", "room"), ("conference", "room_link_view", "room")]


async def _count(suite: Any, service: str, table: str, column: str, room: str) -> int:
    rows = await suite.query(service, f"SELECT COUNT(*) AS n FROM {table} WHERE {column} = %s", (room,))  # noqa: S608
    return int(rows[0]["n"])


async def _room(suite: Any, client: httpx.AsyncClient, nc: Any) -> str:
    """A room with links, a room user and a case, once every read model holds it."""
    room = "Pr" + "".join(chr(ord("a") + b % 26) for b in uuid.uuid4().bytes[:10])  # letters: a valid room name
    auth = {"Authorization": f"Bearer {suite.agent_token()}"}
    body = {"room": room, "mobile": "0812345678", "linkType": "video", "service": SERVICE, "sms": 0}
    created = await client.post("/link/create", json=body, headers=auth)
    assert created.status_code == 200 and created.json().get("status") != "FAIL", created.text
    presence = {"room": room, "identity": f"p-{room}", "socketId": uuid.uuid4().hex, "hasMetadata": True,
                "userName": "0812345678", "userType": "user"}  # fmt: skip
    assert (await rpc(nc, RPC_PRESENCE_CONNECT, presence))["ok"]
    case = {"userName": "Dr", "room": room, "mobile": "0800000000", "linkType": "video", "service": SERVICE,
            "organization": "Org"}  # fmt: skip
    opened = await client.post("/case/create", json=case, headers=auth)
    assert opened.status_code == 200 and opened.json().get("status") != "FAIL", opened.text

    async def everywhere() -> bool:
        return all([await _count(suite, *model, room) for model in PRUNED + KEPT])

    await until(everywhere, timeout=40)
    return room


async def test_rows_deleted_at_the_owners_leave_the_read_models_that_prune(
    suite: Any, client: httpx.AsyncClient, nc: Any
) -> None:
    room, other = await _room(suite, client, nc), await _room(suite, client, nc)
    # Their events as if applied over VERSION_MARGIN_MS ago: a row an event wrote within the margin before a pass
    # looks as new as a live one, so it is only pruned by a later rebuild.
    for service, table, column in PRUNED:
        sql = f"UPDATE {table} SET version = 1 WHERE {column} IN (%s, %s)"  # noqa: S608
        await suite.execute(service, sql, (room, other))
    first = await rebuild(SERVICES, suite.nats_url)
    assert all([await _count(suite, *model, room) for model in PRUNED + KEPT])  # the owners still have it: kept
    pruning = {(s.service, m.readModel) for s in first for m in s.readModels if m.pruned is not None}
    assert pruning == {(service, table) for service, table, _ in PRUNED}

    # what a catch-up does when the original deleted them (no event)
    cases = "DELETE c FROM case_data c JOIN room_conference r ON r.id = c.roomId WHERE r.room = %s"
    await suite.execute("conference", cases, (room,))
    await suite.execute("conference", "DELETE FROM room_user WHERE room = %s", (room,))
    await suite.execute("conference", "DELETE FROM room_conference WHERE room = %s", (room,))
    await suite.execute("link", "DELETE FROM link_connect WHERE room = %s", (room,))

    second = await rebuild(SERVICES, suite.nats_url)
    assert {model[1]: await _count(suite, *model, room) for model in PRUNED} == {model[1]: 0 for model in PRUNED}
    assert all([await _count(suite, *model, room) for model in KEPT])  # they do not prune
    assert all([await _count(suite, *model, other) for model in PRUNED + KEPT])  # its owners still have it
    pruned = {(s.service, m.readModel): m.pruned for s in second for m in s.readModels if m.pruned is not None}
    assert all(pruned[(service, table)] >= 1 for service, table, _ in PRUNED), pruned

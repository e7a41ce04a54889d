"""Room socket events realtime forwards to link over NATS (contracts.link, "remaining room socket events"):
``user-position``, ``get-user-position-group`` and the dashboards' ``queue``, with the official JS client through
the edge and the real link service (links made by POST /link/create). A plain NATS subscription beside link's
responders sees the requests realtime makes (what was forwarded, and what was not).

Forwarded events covered elsewhere through realtime with the real owners, so not repeated here:
``get-user-list`` and ``track-muted-unmuted`` (a patient may not mute; LiveKit down) in
tests/conference/test_conference_participants.py::test_socket_user_list_and_mute_through_realtime; ``room-record``
(a patient may not record; start, stop and LiveKit's error code to the whole room) in
tests/recording/test_recording_toggle.py::test_room_record_through_realtime.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from contracts.link import RPC_LINK_POSITION_GROUP, RPC_LINK_QUEUE_PAGE, RPC_LINK_USER_POSITION
from tests.car_tasks import make_tenant
from tests.sockets import NODE, joined, participant, room_name, wait_registered, watch
from tests.sockets import client as socket_client
from tests.support import rpc

pytestmark = pytest.mark.usefixtures("needs_owners", "node_client", "consumers_ready")


@pytest.fixture(scope="module")
def needs_owners(suite: Any) -> None:
    if not {"conference", "realtime", "link"} <= set(suite.services):
        pytest.skip("needs conference, realtime and link")


async def linked_room(suite: Any, client: httpx.AsyncClient, mobile: str, service: int = 999) -> tuple[str, str]:
    """(room, linkID): a patient link made by link, whose room namespace realtime has registered."""
    room = room_name()
    created = await client.post(
        "/link/create",
        json={"room": room, "mobile": mobile, "userName": mobile, "service": service, "sms": 0},
        headers={"Authorization": f"Bearer {suite.agent_token()}"},
    )
    assert created.status_code == 200, created.text
    await wait_registered(suite, f"/{room}")
    return room, created.json()["linkID"]


async def test_positions_go_to_link_and_the_group_comes_back(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    room, link = await linked_room(suite, client, "0812345678")
    other_room, other_link = await linked_room(suite, client, "0898765432")
    stored, subscription = await watch(nc, RPC_LINK_USER_POSITION)
    _, patient_token = participant(suite, room, "user", "0812345678")
    _, agent_token = participant(suite, room, "admin", "Dr. A")
    patient = await joined(NODE, suite, room, patient_token)
    agent = await joined(NODE, suite, room, agent_token)
    try:
        # a longitude as text is a number by the time it reaches link
        await patient.send("user-position", {"linkID": link, "latitude": 13.75, "longitude": "100.5", "accuracy": 12})
        group = [(await c.until("event", "user-position-group"))["data"] for c in (patient, agent)]
        assert group[0] == group[1] == (await rpc(nc, RPC_LINK_POSITION_GROUP, {"room": room}))["data"]
        assert [(g["mobile"], float(g["latitude"]), float(g["longitude"])) for g in group[0]] == [
            ("0812345678", 13.75, 100.5)
        ]
        assert (await stored.count(1))[0] == {
            "room": room, "linkID": link, "latitude": 13.75, "longitude": 100.5, "accuracy": 12.0,
        }  # fmt: skip
        # a link of another room: link refuses, nothing is broadcast and that link keeps no position
        await patient.send("user-position", {"linkID": other_link, "latitude": 1, "longitude": 2})
        await stored.count(2)
        assert await agent.quiet("user-position-group", 1.0) == []
        others = (await rpc(nc, RPC_LINK_POSITION_GROUP, {"room": other_room}))["data"]
        assert [(g["mobile"], float(g["latitude"])) for g in others] == [("0898765432", 0)]
        # without a usable linkID nothing is forwarded
        await patient.send("user-position", {"latitude": 1, "longitude": 2})
        await patient.send("user-position", "nonsense")
        # asking for the group answers the asker only
        await agent.send("get-user-position-group")
        assert (await agent.until("event", "user-position-group"))["data"] == group[0]
        assert await patient.quiet("user-position-group", 1.0) == []
        assert len(stored.seen) == 2
    finally:
        await subscription.unsubscribe()
        await patient.close()
        await agent.close()


async def test_queue_page_for_dashboards_only(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    tenant = await make_tenant(suite, client, "Queue tenant", 13.9, 100.7)
    room, link = await linked_room(suite, client, "0822222222", service=tenant)
    pages, subscription = await watch(nc, RPC_LINK_QUEUE_PAGE)
    dashboard = await socket_client(NODE, f"{suite.edge}/newqueue", "--token", suite.agent_token())
    _, patient_token = participant(suite, room, "user", "0822222222")
    patient = await joined(NODE, suite, room, patient_token)
    try:
        await dashboard.connected()
        ask = {"status": "init", "service": tenant, "page": 1, "maxRow": 5}
        await dashboard.send("queue", ask)
        got = (await dashboard.until("event", "queue"))["data"]
        assert got == (await rpc(nc, RPC_LINK_QUEUE_PAGE, ask))["data"]
        assert got["status"] == "data" and got["count"] == 1 and [r["linkID"] for r in got["data"]] == [link]
        await pages.count(2)  # the dashboard's and the test's own
        await dashboard.send("queue", {"status": "nonsense", "service": tenant})  # the original's four statuses only
        await patient.send("queue", ask)  # not an agent
        assert await dashboard.quiet("queue", 1.0) == []
        assert await patient.quiet("queue", 0.2) == []
        assert [{k: v for k, v in page.items() if v is not None} for page in pages.seen] == [ask, ask]
    finally:
        await subscription.unsubscribe()
        await dashboard.close()
        await patient.close()

"""Room socket events realtime forwards to their owners over NATS (servicekit.events, "remaining room socket
events"): ``user-position``, ``get-user-position-group``, ``get-user-list``, ``track-muted-unmuted``,
``room-record`` and the dashboards' ``queue``, with the official JS client through the edge. The owners' side is
a NATS responder here until link, conference and recording serve the subjects (a subject already served by the
real owner is skipped: the fake would race it)."""

from __future__ import annotations

from typing import Any

import pytest

from servicekit.events import (
    RPC_CONFERENCE_PARTICIPANTS,
    RPC_CONFERENCE_TRACK_MUTE,
    RPC_LINK_POSITION_GROUP,
    RPC_LINK_QUEUE_PAGE,
    RPC_LINK_USER_POSITION,
    RPC_RECORDING_TOGGLE,
)
from tests.test_realtime_mobile import FakeResponder, _answered_elsewhere
from tests.test_realtime_mobile import fake as fake  # noqa: F401 - fixture
from tests.test_realtime_rooms import NODE, client, joined, participant
from tests.test_realtime_rooms import room as room  # noqa: F401 - fixture
from tests.test_realtime_socket import consumers_ready, node_client  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("needs_realtime", "node_client", "consumers_ready")

GROUP = [{"id": 812, "mobile": "0812345678", "share": 0, "userName": "0812345678", "accuracy": 12,
          "latitude": 13.75, "longitude": 100.5, "errorLocation": None}]  # fmt: skip


@pytest.fixture(scope="module")
def needs_realtime(suite: Any) -> None:
    if "conference" not in suite.services or "realtime" not in suite.services:
        pytest.skip("needs conference and realtime")


async def owners(fake: FakeResponder, room: str, *subjects: str) -> FakeResponder:
    for subject in subjects:
        if await _answered_elsewhere(fake.nc, subject, {"room": "probe", "status": "probe"}):
            pytest.skip(f"{subject} is served by its owner now")
    answers = {
        RPC_LINK_USER_POSITION: lambda r: (True, GROUP, "") if r["linkID"] == "L1" else (False, None, "not_found"),
        RPC_LINK_POSITION_GROUP: lambda r: (True, GROUP if r["room"] == room else [], ""),
        RPC_CONFERENCE_PARTICIPANTS: lambda r: (True, [{"identity": "p1", "name": "Guest"}], ""),
        RPC_CONFERENCE_TRACK_MUTE: lambda r: (True, {"muted": r["muted"]}, ""),
        RPC_RECORDING_TOGGLE: lambda r: (
            True,
            {"status": "egressNotAvailable", "message": "Record service not available"},
            "",
        ),  # fmt: skip
        RPC_LINK_QUEUE_PAGE: lambda r: (
            True,
            {
                "status": "data",
                "service": r.get("service"),
                "page": r.get("page"),
                "maxRow": r.get("maxRow"),
                "count": 0,
                "data": [],
            },
            "",
        ),  # fmt: skip
    }
    for subject in subjects:
        await fake.serve(subject, answers[subject])
    return fake


async def test_positions_go_to_link_and_the_group_comes_back(suite: Any, fake: FakeResponder, room: str) -> None:
    await owners(fake, room, RPC_LINK_USER_POSITION, RPC_LINK_POSITION_GROUP)
    _, patient_token = participant(suite, room, "user", "0812345678")
    _, agent_token = participant(suite, room, "admin", "Dr. A")
    patient = await joined(NODE, suite, room, patient_token)
    agent = await joined(NODE, suite, room, agent_token)
    try:
        await patient.send("user-position", {"linkID": "L1", "latitude": 13.75, "longitude": "100.5", "accuracy": 12})
        for c in (patient, agent):
            assert (await c.until("event", "user-position-group"))["data"] == GROUP
        stored = (await fake.seen(RPC_LINK_USER_POSITION))[0]
        assert stored == {"room": room, "linkID": "L1", "latitude": 13.75, "longitude": 100.5, "accuracy": 12.0}
        # a link of another room: link refuses, nothing is broadcast
        await patient.send("user-position", {"linkID": "L2", "latitude": 1, "longitude": 2})
        assert await agent.quiet("user-position-group", 1.0) == []
        # asking for the group answers the asker only
        await agent.send("get-user-position-group")
        assert (await agent.until("event", "user-position-group"))["data"] == GROUP
        assert await patient.quiet("user-position-group", 1.0) == []
    finally:
        await patient.close()
        await agent.close()


async def test_user_list_mute_and_record_are_admin_commands(suite: Any, fake: FakeResponder, room: str) -> None:
    await owners(fake, room, RPC_CONFERENCE_PARTICIPANTS, RPC_CONFERENCE_TRACK_MUTE, RPC_RECORDING_TOGGLE)
    _, patient_token = participant(suite, room, "user", "0812345678")
    _, agent_token = participant(suite, room, "admin", "Dr. A")
    patient = await joined(NODE, suite, room, patient_token)
    agent = await joined(NODE, suite, room, agent_token)
    try:
        await patient.send("get-user-list")
        assert (await patient.until("event", "user-list"))["data"] == {
            "userList": [{"identity": "p1", "name": "Guest"}]
        }
        mute = {"identity": "p1", "trackSid": "TR_1", "isMuted": True}
        await patient.send("track-muted-unmuted", mute)  # a patient may not mute anyone
        await patient.send("room-record")
        assert await agent.quiet("track-muted-unmuted", 1.0) == []
        assert fake.requests.get(RPC_CONFERENCE_TRACK_MUTE) is None and fake.requests.get(RPC_RECORDING_TOGGLE) is None
        await agent.send("track-muted-unmuted", mute)
        for c in (patient, agent):
            assert (await c.until("event", "track-muted-unmuted"))["data"] == mute
        assert (await fake.seen(RPC_CONFERENCE_TRACK_MUTE))[0] == {
            "room": room, "identity": "p1", "trackSid": "TR_1", "muted": True,
        }  # fmt: skip
        await agent.send("room-record")
        for c in (patient, agent):
            got = await c.until("event", "room-record")
            assert got["data"] == {"status": "egressNotAvailable", "message": "Record service not available"}
    finally:
        await patient.close()
        await agent.close()


async def test_queue_page_for_dashboards_only(suite: Any, fake: FakeResponder, room: str) -> None:
    await owners(fake, room, RPC_LINK_QUEUE_PAGE)
    dashboard = await client(NODE, f"{suite.edge}/newqueue", "--token", suite.agent_token())
    _, patient_token = participant(suite, room, "user", "0812345678")
    patient = await joined(NODE, suite, room, patient_token)
    try:
        await dashboard.connected()
        await dashboard.send("queue", {"status": "init", "service": 999, "page": 1, "maxRow": 5})
        got = await dashboard.until("event", "queue")
        assert got["data"] == {"status": "data", "service": 999, "page": 1, "maxRow": 5, "count": 0, "data": []}
        await dashboard.send("queue", {"status": "nonsense"})  # the original answered only the four statuses
        await patient.send("queue", {"status": "init", "service": 999, "page": 1, "maxRow": 5})  # not an agent
        assert await dashboard.quiet("queue", 1.0) == []
        assert await patient.quiet("queue", 0.2) == []
        assert len(fake.requests[RPC_LINK_QUEUE_PAGE]) == 1
    finally:
        await dashboard.close()
        await patient.close()

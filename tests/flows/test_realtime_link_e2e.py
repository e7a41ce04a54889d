"""End to end through the edge: link's HTTP routes publish events, realtime turns them into Socket.IO emits
seen by the official JS client (needs the link, conference and realtime services)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.sockets import listen, wait_for_consumers, wait_registered

LATLNG = {
    "latitude": 13.7563,
    "longitude": 100.5018,
    "accuracy": 12.5,
    "altitude": 4.0,
    "altitudeAccuracy": 3.0,
    "heading": 90.0,
    "speed": 1.5,
}


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_latlng_update_reaches_data_and_room_namespaces(suite: Any, node_client: str, transport: str) -> None:
    await wait_for_consumers(suite.nats_url)
    token = suite.agent_token()
    room = "Ezroom" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:6])
    async with httpx.AsyncClient(timeout=20) as client:
        created = await client.post(
            f"{suite.edge}/link/create",
            json={"room": room, "mobile": "0812345678", "userName": "Somchai", "service": 999},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 200, created.text
        link = created.json()
        link_id, link_room = link["linkID"], link["room"]
        assert link_room == room
        await wait_registered(suite, f"/data/{link_id}")
        await wait_registered(suite, f"/{room}")

        data_listener = await listen(
            node_client, f"{suite.edge}/data/{link_id}", "--transport", transport, "--token", token,
            "--events", "history", "--timeout", "25000",
        )  # fmt: skip
        room_listener = await listen(
            node_client, f"{suite.edge}/{room}", "--transport", transport, "--token", token,
            "--events", "case-data", "--timeout", "25000",
        )  # fmt: skip
        try:
            await data_listener.connected()
            await room_listener.connected()
            before = int(time.time() * 1000)
            response = await client.post(
                f"{suite.edge}/link/update/latlng",
                json={"linkID": link_id, "room": room, "userType": "user", **LATLNG},
            )
            assert response.status_code == 200, response.text
            assert response.json() == {"status": "OK"}

            position = (await data_listener.until("event", "position", timeout=15))["data"]
            ts = position.pop("timestamp")
            assert isinstance(ts, int) and before - 1000 <= ts <= int(time.time() * 1000) + 1000
            assert position == {
                "linkID": link_id,
                "service": 2,
                **LATLNG,
                "currentLocation": LATLNG,
                "pickLocation": None,
            }
            case_data = await room_listener.until("event", "case-data", timeout=15)
            assert case_data["data"] == {"action": "updateLatLng", "message": "from sv"}

            # one second later: the link's status timeline, with this update in it
            history = (await data_listener.until("event", "history", timeout=15))["data"]
            assert isinstance(history, list) and history
            assert all(row["linkID"] == link_id for row in history)
            assert "UpdateLatLngLinkDetail" in [row["status"] for row in history]
        finally:
            await data_listener.close()
            await room_listener.close()


async def test_video_link_for_a_location_room_emits_room_update(suite: Any, node_client: str) -> None:
    """A location room gets a video link: conference opens it as a conference and `/{room}` hears
    `case-data {action:"roomUpdate", roomType:"conference"}` (spec realtime.md §11)."""
    await wait_for_consumers(suite.nats_url)
    token = suite.agent_token()
    headers = {"Authorization": f"Bearer {token}"}
    room = "Locroom" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:6])
    async with httpx.AsyncClient(base_url=suite.edge, timeout=20) as client:
        first = await client.post(
            "/link/create", json={"room": room, "linkType": "location", "sms": 0}, headers=headers
        )
        assert first.status_code == 200, first.text
        assert first.json()["roomType"] == "location"
        await wait_registered(suite, f"/{room}")
        listener = await listen(
            node_client, f"{suite.edge}/{room}", "--token", token, "--events", "case-data", "--timeout", "25000"
        )
        try:
            await listener.connected()
            second = await client.post(
                "/link/create", json={"room": room, "linkType": "video", "sms": 0}, headers=headers
            )
            assert second.status_code == 200, second.text
            event = await listener.until("event", "case-data", timeout=15)
            assert event["data"] == {"action": "roomUpdate", "roomType": "conference"}
        finally:
            await listener.close()
        detail = await client.get("/room/detail", params={"room": room})
        assert detail.json()["data"]["roomType"] == "conference"
        assert detail.json()["data"]["status"] == "open"


async def test_history_pushes_of_quick_updates_are_coalesced(suite: Any, node_client: str) -> None:
    """A patient page reporting faster than once a second gets one `history` per second carrying every update,
    not one 100-row timeline per position."""
    await wait_for_consumers(suite.nats_url)
    token = suite.agent_token()
    room = "Coroom" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:6])
    updates = 5
    async with httpx.AsyncClient(timeout=20) as client:
        created = await client.post(
            f"{suite.edge}/link/create",
            json={"room": room, "mobile": "0812345679", "userName": "Somsri", "service": 999},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 200, created.text
        link_id = created.json()["linkID"]
        await wait_registered(suite, f"/data/{link_id}")
        listener = await listen(
            node_client, f"{suite.edge}/data/{link_id}", "--token", token, "--events", "history",
            "--count", str(updates), "--timeout", "25000",
        )  # fmt: skip
        try:
            await listener.connected()
            for i in range(updates):
                body = {"linkID": link_id, "room": room, "userType": "user", **LATLNG, "latitude": 13.70 + i / 100}
                response = await client.post(f"{suite.edge}/link/update/latlng", json=body)
                assert response.json() == {"status": "OK"}, response.text
            histories = [(await listener.until("event", "history", timeout=15))["data"]]
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                while True:  # any further push comes within a second or two of the first
                    histories.append((await listener.until("event", "history", timeout=2.5))["data"])
        finally:
            await listener.close()
    assert len(histories) < updates, "one history push per update: not coalesced"
    last = histories[-1]
    assert [row["status"] for row in last].count("UpdateLatLngLinkDetail") == updates

"""Realtime through the edge with the official JS client (tests/js/listen.mjs): namespace validation, token
check, and the emits caused by link/conference events published to JetStream."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from contracts.conference import ROOM_CLOSED, ROOM_CREATED
from contracts.link import LINK_CREATED, LINK_LOCATION_UPDATED
from tests.sockets import (
    link_created,
    link_id,
    listen,
    location_event,
    namespaces,
    publish,
    room_name,
    wait_registered,
)

TRANSPORTS = ["websocket", "polling"]


# ---- namespace validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("namespace", ["/nosuchroom", "/data/unknownlink", "/data/", "/a/b"])
async def test_unknown_namespace_is_refused(suite: Any, node_client: str, transport: str, namespace: str) -> None:
    listener = await listen(node_client, f"{suite.edge}{namespace}", "--transport", transport, "--timeout", "8000")
    try:
        line = await listener.next(12)
        assert line == {"type": "connect_error", "message": "Invalid namespace", "data": None}
        assert await asyncio.wait_for(listener.proc.wait(), 5) == 2
    finally:
        await listener.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_newqueue_greets_like_the_original(suite: Any, node_client: str, transport: str) -> None:
    listener = await listen(
        node_client, f"{suite.edge}/newqueue", "--transport", transport, "--count", "2", "--token", suite.agent_token()
    )
    try:
        connect = await listener.connected()
        assert connect["transport"] == transport
        first = await listener.until("event")
        second = await listener.until("event")
        assert {first["event"], second["event"]} == {"log", "connection-success"}
        by_name = {line["event"]: line["data"] for line in (first, second)}
        assert by_name["log"] == {"message": "connection success"}
        assert by_name["connection-success"] == {"room": "newqueue"}
    finally:
        await listener.close()


@pytest.mark.parametrize("namespace", ["/", "/queue", "/mobile", "/notification"])
async def test_static_namespaces_accept_connections(suite: Any, node_client: str, namespace: str) -> None:
    args = [] if namespace in ("/", "/mobile") else ["--token", suite.agent_token()]  # dashboards need a token
    listener = await listen(node_client, f"{suite.edge}{namespace}", "--timeout", "1500", *args)
    try:
        line = await listener.next(12)
        assert line["type"] == "connect"
        assert isinstance(line["id"], str) and line["id"]
    finally:
        await listener.close()


async def test_namespace_routes_list_static_and_registered(suite: Any, consumers_ready: None) -> None:
    link, room = link_id(), room_name()
    await publish(suite.nats_url, "link", LINK_CREATED, link_created(link, room))
    await wait_registered(suite, f"/data/{link}")
    async with httpx.AsyncClient(timeout=10) as client:
        main = (await client.get(f"{suite.edge}/namespace")).json()
        test = await client.get(f"{suite.edge}/test/get/namespace")
    assert test.status_code == 200
    assert main[:5] == ["/", "/newqueue", "/queue", "/mobile", "/notification"]
    assert f"/{room}" in main and f"/data/{link}" in main
    assert test.json() == main
    assert len(main) == len(set(main))


async def test_room_namespace_requires_a_valid_token(suite: Any, node_client: str, consumers_ready: None) -> None:
    room = room_name()
    await publish(
        suite.nats_url, "conference", ROOM_CREATED, {"room": room, "roomType": "conference", "status": "open"}
    )
    await wait_registered(suite, f"/{room}")
    cases = [
        [],  # no token
        ["--token", "garbage"],
        ["--token", suite.agent_token(ttl=-60)],  # expired
        ["--token", suite.agent_token(video={"room": "SomeOtherRoom", "roomJoin": True})],  # bound to another room
    ]
    for args in cases:
        listener = await listen(node_client, f"{suite.edge}/{room}", *args, "--timeout", "8000")
        try:
            line = await listener.next(12)
            assert line == {"type": "connect_error", "message": "Authentication error", "data": None}, args
        finally:
            await listener.close()
    # a valid token (query like the original, or socket.io auth) is let in and greeted
    for args in (["--token", f"Bearer {suite.agent_token()}"], ["--auth-token", suite.agent_token()]):
        listener = await listen(node_client, f"{suite.edge}/{room}", *args, "--events", "connection-success")
        try:
            await listener.connected()
            log = await listener.until("event", "log")
            assert log["data"] == {"message": "connection success"}
            success = await listener.until("event", "connection-success")
            assert success["data"]["room"] == room
        finally:
            await listener.close()


# ---- emits caused by events --------------------------------------------------------------------------------
def expected_position(link: str, ts: int) -> dict[str, Any]:
    seven = {
        "latitude": 13.7563,
        "longitude": 100.5018,
        "accuracy": 12.5,
        "altitude": 4.0,
        "altitudeAccuracy": 3.0,
        "heading": 90.0,
        "speed": 1.5,
    }
    return {
        "linkID": link,
        "service": 2,
        **seven,
        "currentLocation": seven,
        "pickLocation": None,
        "timestamp": ts,
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_location_event_emits_position_and_case_data(
    suite: Any, node_client: str, consumers_ready: None, transport: str
) -> None:
    link, room = link_id(), room_name()
    await publish(suite.nats_url, "link", LINK_CREATED, link_created(link, room))
    await wait_registered(suite, f"/data/{link}")
    await wait_registered(suite, f"/{room}")
    token = suite.agent_token()
    data_listener = await listen(
        node_client, f"{suite.edge}/data/{link}", "--transport", transport, "--token", token,
        "--events", "position", "--timeout", "20000",
    )  # fmt: skip
    room_listener = await listen(
        node_client, f"{suite.edge}/{room}", "--transport", transport, "--token", token,
        "--events", "case-data", "--timeout", "20000",
    )  # fmt: skip
    try:
        await data_listener.connected()
        greeting = await data_listener.until("event", "connection-success")
        assert greeting["data"] == {"room": f"data/{link}"}
        await room_listener.connected()
        ts = int(time.time() * 1000)
        await publish(suite.nats_url, "link", LINK_LOCATION_UPDATED, location_event(link, room, ts))
        position = await data_listener.until("event", "position", timeout=15)
        assert position["data"] == expected_position(link, ts)
        assert list(position["data"]) == list(expected_position(link, ts))  # the original's key order
        case_data = await room_listener.until("event", "case-data", timeout=15)
        assert case_data["data"] == {"action": "updateLatLng", "message": "from sv"}
        # nothing else was pushed as `position` to the room, nor `case-data` to the data namespace
        assert all(line.get("event") != "case-data" for line in data_listener.lines)
        assert all(line.get("event") != "position" for line in room_listener.lines)
    finally:
        await data_listener.close()
        await room_listener.close()


async def test_redelivered_event_is_emitted_once(suite: Any, node_client: str, consumers_ready: None) -> None:
    link, room = link_id(), room_name()
    await publish(suite.nats_url, "link", LINK_CREATED, link_created(link, room))
    await wait_registered(suite, f"/data/{link}")
    listener = await listen(
        node_client, f"{suite.edge}/data/{link}", "--token", suite.agent_token(),
        "--events", "position", "--count", "2", "--timeout", "6000",
    )  # fmt: skip
    try:
        await listener.connected()
        await listener.until("event", "connection-success")
        event_id = uuid.uuid4().hex
        # same event id under two JetStream message ids: the stream keeps both, realtime must apply it once
        await publish(suite.nats_url, "link", LINK_LOCATION_UPDATED, location_event(link, room, 1), event_id)
        await publish(suite.nats_url, "link", LINK_LOCATION_UPDATED, location_event(link, room, 1), event_id)
        await publish(suite.nats_url, "link", LINK_LOCATION_UPDATED, location_event(link, room, 2))
        first = await listener.until("event", "position", timeout=15)
        second = await listener.until("event", "position", timeout=15)
        assert [first["data"]["timestamp"], second["data"]["timestamp"]] == [1, 2]
    finally:
        await listener.close()


async def test_existing_closed_room_is_not_registered_by_a_link(
    suite: Any, node_client: str, consumers_ready: None
) -> None:
    """roomCreated false and no open room known to conference: only /data/{linkID} becomes valid."""
    link, room = link_id(), room_name()
    await publish(suite.nats_url, "link", LINK_CREATED, link_created(link, room, room_created=False))
    await wait_registered(suite, f"/data/{link}")
    listed = await namespaces(suite)
    if "conference" in suite.services:  # conference answers not_found for an unknown room
        assert f"/{room}" not in listed
    listener = await listen(node_client, f"{suite.edge}/data/{link}", "--token", suite.agent_token())
    try:
        assert (await listener.next(12))["type"] == "connect"
    finally:
        await listener.close()


async def test_room_closed_unregisters_and_disconnects(suite: Any, node_client: str, consumers_ready: None) -> None:
    room = room_name()
    await publish(
        suite.nats_url, "conference", ROOM_CREATED, {"room": room, "roomType": "conference", "status": "open"}
    )
    await wait_registered(suite, f"/{room}")
    listener = await listen(
        node_client, f"{suite.edge}/{room}", "--token", suite.agent_token(), "--count", "99", "--timeout", "20000"
    )
    try:
        await listener.connected()
        await publish(
            suite.nats_url, "conference", ROOM_CLOSED, {"room": room, "roomType": "conference", "status": "close"}
        )
        line = await listener.until("disconnect", timeout=15)
        assert line["reason"] == "io server disconnect"
    finally:
        await listener.close()
    await wait_registered(suite, f"/{room}", present=False)
    again = await listen(node_client, f"{suite.edge}/{room}", "--token", suite.agent_token(), "--timeout", "8000")
    try:
        assert await again.next(12) == {"type": "connect_error", "message": "Invalid namespace", "data": None}
    finally:
        await again.close()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"linkID": "", "room": ""}, set()),
        ({"linkID": "undefined", "room": "null"}, set()),
        ({"linkID": "x/../y", "room": "a/b"}, set()),
        ({"linkID": "a" * 201, "room": "b" * 201}, set()),
        # odd but harmless names are only strings in a Redis set
        ({"linkID": "' OR 1=1 --", "room": "x" * 500}, {"/data/' OR 1=1 --"}),
    ],
)
async def test_unusable_names_register_nothing(
    suite: Any, consumers_ready: None, data: dict[str, Any], expected: set[str]
) -> None:
    before = set(await namespaces(suite))
    marker_link, marker_room = link_id(), room_name()
    await publish(suite.nats_url, "link", LINK_CREATED, {**link_created("x", "y"), **data})
    # a later good event proves the bad one was consumed (the consumer handles events in order)
    await publish(suite.nats_url, "link", LINK_CREATED, link_created(marker_link, marker_room, room_created=False))
    await wait_registered(suite, f"/data/{marker_link}")
    added = set(await namespaces(suite)) - before
    assert added - {f"/data/{marker_link}", f"/{marker_room}"} == expected


async def test_emit_from_another_instance_reaches_clients(suite: Any, node_client: str, consumers_ready: None) -> None:
    """Another realtime instance emits through the shared Redis channel; this instance's client gets it."""
    import socketio  # the same manager protocol every realtime instance speaks

    link, room = link_id(), room_name()
    await publish(suite.nats_url, "link", LINK_CREATED, link_created(link, room))
    await wait_registered(suite, f"/data/{link}")
    listener = await listen(
        node_client, f"{suite.edge}/data/{link}", "--token", suite.agent_token(), "--events", "position"
    )
    other = socketio.AsyncRedisManager(suite.redis_url, channel="realtime-socketio", write_only=True)
    try:
        await listener.connected()
        await listener.until("event", "connection-success")
        await other.emit("position", {"linkID": link, "from": "other instance"}, namespace=f"/data/{link}")
        line = await listener.until("event", "position", timeout=10)
        assert line["data"] == {"linkID": link, "from": "other instance"}
    finally:
        await listener.close()
        if other.redis is not None:
            await other.redis.aclose()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_api_realtime_socketio_path_is_the_same_server(suite: Any, node_client: str, transport: str) -> None:
    """A client configured with the original router's /api/realtime/socket.io path reaches the same namespaces."""
    listener = await listen(
        node_client, f"{suite.edge}/newqueue", "--path", "/api/realtime/socket.io", "--transport", transport,
        "--token", suite.agent_token(), "--count", "2",
    )  # fmt: skip
    try:
        assert (await listener.connected())["transport"] == transport
        success = await listener.until("event", "connection-success")
        assert success["data"] == {"room": "newqueue"}
    finally:
        await listener.close()
    refused = await listen(node_client, f"{suite.edge}/nosuchroom", "--path", "/api/realtime/socket.io")
    try:
        assert await refused.next(12) == {"type": "connect_error", "message": "Invalid namespace", "data": None}
    finally:
        await refused.close()

"""Two realtime instances on the same Redis and NATS: the suite's one (clients through the edge) and a second
process started here (clients connect to it directly). What one instance's client causes reaches the other's
clients, and each emit arrives exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts.link import LINK_CREATED, LINK_LOCATION_UPDATED
from tests.instances import nginx_conf, running_nginx, start_instance, stop_instance
from tests.sockets import (
    NODE,
    chat,
    client,
    joined,
    link_created,
    link_id,
    listen,
    location_event,
    participant,
    publish,
    room_name,
    room_user,
    wait_registered,
)
from tests.support import eventually

pytestmark = pytest.mark.usefixtures("needs_both", "node_client", "consumers_ready")


@pytest.fixture(scope="module")
def needs_both(suite: Any) -> None:
    if "conference" not in suite.services or "realtime" not in suite.services:
        pytest.skip("needs conference and realtime")


@pytest.fixture(scope="module")
def instance_b(suite: Any) -> Iterator[str]:
    """A second realtime process (same env as the suite's, its own port)."""
    process, url = start_instance(suite, "realtime-b")
    try:
        yield url
    finally:
        stop_instance(process)


def failover_edge_conf(port: int, primary: str, backup: str, run_dir: Path) -> str:
    """``primary`` takes every client while it is up, the ``backup`` (the suite's instance) takes over when it
    dies (one live target keeps polling sessions sticky)."""
    return nginx_conf(
        port,
        run_dir,
        f"server {primary} max_fails=1 fail_timeout=30s; server {backup} backup;",
        "location / { proxy_pass http://realtime; proxy_connect_timeout 2s; proxy_read_timeout 90s;"
        " proxy_next_upstream error timeout; }",
    )


def events(c: Any, name: str) -> list[dict[str, Any]]:
    return [x for x in c.lines if x["type"] == "event" and x["event"] == name]


async def test_chat_crosses_instances_once_each(suite: Any, instance_b: str, room: str) -> None:
    admin_id, admin_token = participant(suite, room, "admin", "Dr. A")
    patient_id, patient_token = participant(suite, room, "user", "0812345678")
    on_a = await joined(NODE, suite, room, admin_token)  # through the edge: the suite's instance
    b_suite = type("B", (), {"edge": instance_b})()
    on_b = await joined(NODE, b_suite, room, patient_token)  # the second instance
    try:
        # presence made on B is seen by the client on A
        seen = await on_a.until("event", "user-connection")
        assert seen["data"]["identity"] == patient_id
        await on_a.send("chat-message", chat("from A", admin_id, "admin"))
        got_b = await on_b.until("event", "chat-message")
        assert got_b["data"]["text"] == "from A"
        await on_b.send("chat-message", chat("from B", patient_id, "user"))
        got_a = await on_a.until("event", "chat-message")
        got_a = got_a if got_a["data"]["text"] == "from B" else await on_a.until("event", "chat-message")
        assert got_a["data"]["text"] == "from B"
        await on_b.until("event", "chat-message")
        await asyncio.sleep(1.5)  # duplicates would have arrived by now
        for c in (on_a, on_b):
            await c.quiet("chat-message", 0.1)
            assert [x["data"]["text"] for x in events(c, "chat-message")] == ["from A", "from B"]
            assert len(events(c, "user-connection")) == (2 if c is on_a else 1)
        rows = await suite.query("conference", "SELECT text FROM chat_message WHERE room = %s ORDER BY id", (room,))
        assert rows == [{"text": "from A"}, {"text": "from B"}]
        # an admin on A kicks the patient on B (socket id from Redis, emit through the Redis manager)
        await on_a.send("force-leave-conference", {"identity": patient_id})
        kick = await on_b.until("event", "force-leave-conference")
        assert kick["data"] == {"userType": "admin", "command": "leaveConference"}
        # the patient leaves B: A hears it and conference marks the row
        await on_b.leave()
        gone = await on_a.until("event", "user-disconnect")
        assert gone["data"]["identity"] == patient_id
        row = await room_user(suite, room, patient_id)
        for _ in range(50):
            if row and row["status"] == "disconnect":
                break
            await asyncio.sleep(0.1)
            row = await room_user(suite, room, patient_id)
        assert row is not None and row["status"] == "disconnect"
    finally:
        await on_a.close()
        await on_b.close()


async def test_waiting_list_is_resent_once_per_period_across_instances(suite: Any, instance_b: str, room: str) -> None:
    _, admin_token = participant(suite, room, "admin", "Dr. A")
    _, guest_token = participant(suite, room, "user", "guest")
    admin = await joined(NODE, suite, room, admin_token)
    guest = await joined(NODE, type("B", (), {"edge": instance_b})(), room, guest_token)
    try:
        await guest.send("auth-join-conference", {"room": room, "userName": "Somsri"})
        await admin.until("event", "auth-join-conference")
        times = [time.monotonic()]
        for _ in range(2):
            await admin.until("event", "auth-join-conference", timeout=12)
            times.append(time.monotonic())
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(gap > 3.5 for gap in gaps), gaps  # one re-send per JOIN_ROOM_REPEAT_DELAY, not one per instance
        await guest.leave()
        assert (await admin.until("event", "auth-join-conference"))["data"] == []
    finally:
        await admin.close()
        await guest.close()


async def test_jetstream_event_reaches_a_client_on_each_instance_once(suite: Any, instance_b: str) -> None:
    link, room_ = link_id(), "Room" + link_id()[1:].replace("0", "a")
    await publish(suite.nats_url, "link", LINK_CREATED, link_created(link, room_))
    await wait_registered(suite, f"/data/{link}")
    token = suite.agent_token()
    on_a = await listen(NODE, f"{suite.edge}/data/{link}", "--token", token, "--count", "99", "--timeout", "20000")
    on_b = await listen(NODE, f"{instance_b}/data/{link}", "--token", token, "--count", "99", "--timeout", "20000")
    try:
        for c in (on_a, on_b):
            await c.connected()
            await c.until("event", "connection-success")
        await publish(suite.nats_url, "link", LINK_LOCATION_UPDATED, location_event(link, room_, 42))
        for c in (on_a, on_b):
            line = await c.until("event", "position", timeout=15)
            assert line["data"]["timestamp"] == 42
        await asyncio.sleep(1.5)
        for c in (on_a, on_b):
            try:
                while True:
                    await c.next(0.2)
            except TimeoutError:
                pass
            assert len(events(c, "position")) == 1
    finally:
        await on_a.close()
        await on_b.close()


@pytest.fixture
def failover(suite: Any, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """(edge URL, the primary instance's process) of a failover edge: a killable instance C first, the suite's
    instance as backup."""
    from deploy.local import free_port

    process, url = start_instance(suite, "realtime-c")
    port = free_port()
    conf = failover_edge_conf(
        port, url.removeprefix("http://"), suite.url("realtime").removeprefix("http://"), tmp_path
    )
    try:
        with running_nginx(conf, tmp_path, f"http://127.0.0.1:{port}/ready"):
            yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            stop_instance(process)


async def test_killing_an_instance_loses_no_event_and_frees_its_users(
    suite: Any, failover: tuple[str, subprocess.Popen[bytes]], room: str
) -> None:
    edge, doomed = failover
    link = link_id()
    await publish(suite.nats_url, "link", LINK_CREATED, link_created(link, room, room_created=False))
    await wait_registered(suite, f"/data/{link}")
    admin_id, admin_token = participant(suite, room, "admin", "Dr. A")
    patient_id, patient_token = participant(suite, room, "user", "0812345678")
    admin = await joined(NODE, suite, room, admin_token)  # the suite's instance, through the suite's edge
    patient = crm = None
    try:
        # a polling-only patient and a CRM page on the doomed instance, through the failover edge
        patient = await client(NODE, f"{edge}/{room}", "--token", patient_token, "--transport", "polling")
        await patient.connected()
        await patient.until("event", "connection-success")
        assert (await admin.until("event", "user-connection"))["data"]["identity"] == patient_id
        crm = await listen(NODE, f"{edge}/data/{link}", "--token", suite.agent_token(), "--count", "99",
                           "--timeout", "90000", "--transport", "websocket")  # fmt: skip
        await crm.connected()
        await crm.until("event", "connection-success")

        os.killpg(doomed.pid, signal.SIGKILL)  # granian and its worker: no shutdown, unacked events in flight
        doomed.wait(5)
        assert (await patient.until("disconnect", timeout=15))["reason"] in ("transport close", "transport error")
        await crm.until("disconnect", timeout=15)
        # events published right away: the dead instance may hold some of them unacked; none may be lost
        for ts in range(1, 6):
            await publish(suite.nats_url, "link", LINK_LOCATION_UPDATED, location_event(link, room, ts))
        # a survivor notices the missing heartbeat and does the dead instance's disconnect work
        gone = await admin.until("event", "user-disconnect", timeout=20)
        assert gone["data"] == {"status": "disconnect", "identity": patient_id, "userName": "0812345678"}

        async def marked() -> bool:
            row = await room_user(suite, room, patient_id)
            return bool(row and row["status"] == "disconnect")

        await eventually(marked, timeout=10)
        # the dashboard (connected all along) gets each of the five exactly once, redeliveries included
        deadline = time.monotonic() + 45  # a redelivery comes after the consumer's ack wait (30 s)
        while len(events(admin, "case-data")) < 5:
            await admin.next(max(0.1, deadline - time.monotonic()))
        await asyncio.sleep(1.5)
        await admin.quiet("case-data", 0.5)
        assert [x["data"] for x in events(admin, "case-data")] == [{"action": "updateLatLng", "message": "from sv"}] * 5

        # the clients reconnect through the same edge (now the survivor) and get what follows, once
        await patient.close()
        await crm.close()
        patient = await client(NODE, f"{edge}/{room}", "--token", patient_token, "--transport", "polling")
        await patient.connected()
        await patient.until("event", "connection-success")
        assert (await admin.until("event", "user-connection"))["data"]["identity"] == patient_id
        await eventually(lambda: _status_is(suite, room, patient_id, "connection"), timeout=10)
        crm = await listen(NODE, f"{edge}/data/{link}", "--token", suite.agent_token(), "--count", "99",
                           "--timeout", "60000")  # fmt: skip
        await crm.connected()
        await crm.until("event", "connection-success")
        for ts in range(6, 9):
            await publish(suite.nats_url, "link", LINK_LOCATION_UPDATED, location_event(link, room, ts))
        stamps = [(await crm.until("event", "position", timeout=15))["data"]["timestamp"] for _ in range(3)]
        assert sorted(stamps) == [6, 7, 8]
        deadline = time.monotonic() + 15
        while len(events(patient, "case-data")) < 3:
            await patient.next(max(0.1, deadline - time.monotonic()))
        await asyncio.sleep(1.5)
        try:
            while True:  # read what else arrived (duplicates would be here)
                await crm.next(0.3)
        except TimeoutError:
            pass
        assert len(events(crm, "position")) == 3
        assert len(events(patient, "case-data")) == 3
        # chat between the reconnected patient and the dashboard still works, once each
        await patient.send("chat-message", chat("back again", patient_id, "user"))
        assert (await admin.until("event", "chat-message"))["data"]["text"] == "back again"
        assert (await patient.until("event", "chat-message"))["data"]["text"] == "back again"
    finally:
        for c in (admin, patient, crm):
            if c is not None:
                await c.close()


async def _status_is(suite: Any, room: str, identity: str, status: str) -> bool:
    row = await room_user(suite, room, identity)
    return bool(row and row["status"] == status)


async def test_a_stopping_instance_with_websocket_clients_exits_at_once(
    suite: Any, failover: tuple[str, subprocess.Popen[bytes]]
) -> None:
    """SIGTERM (a rolling restart) with a websocket client connected: after its drain and shutdown the instance
    exits, which closes the client's connection ("transport close": it reconnects, through the edge, to another
    instance); it used to linger until the websocket's handler, cancelled at exit, gave up (30 s and more)."""
    edge, stopping = failover
    link = link_id()
    await publish(suite.nats_url, "link", LINK_CREATED, link_created(link, room_name(), room_created=False))
    await wait_registered(suite, f"/data/{link}")
    crm = await listen(NODE, f"{edge}/data/{link}", "--token", suite.agent_token(), "--count", "99",
                       "--timeout", "60000", "--transport", "websocket")  # fmt: skip
    try:
        await crm.connected()
        await crm.until("event", "connection-success")
        signalled = time.monotonic()
        stopping.send_signal(signal.SIGTERM)
        assert (await crm.until("disconnect", timeout=15))["reason"] == "transport close"
        assert await asyncio.to_thread(stopping.wait, 15) == 0
        assert time.monotonic() - signalled < 10  # the drain (1.5 s) and the close, not a websocket's ping timeout
    finally:
        await crm.close()

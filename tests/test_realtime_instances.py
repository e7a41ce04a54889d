"""Two realtime instances on the same Redis and NATS: the suite's one (clients through the edge) and a second
process started here (clients connect to it directly). What one instance's client causes reaches the other's
clients, and each emit arrives exactly once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from servicekit.events import LINK_CREATED, LINK_LOCATION_UPDATED
from tests.test_realtime_rooms import NODE, chat, client, joined, participant, room_user  # noqa: F401
from tests.test_realtime_rooms import room as room  # noqa: F401 - fixture
from tests.test_realtime_socket import (  # noqa: F401 - fixtures
    consumers_ready,
    link_created,
    link_id,
    listen,
    location_event,
    node_client,
    publish,
    wait_registered,
)

pytestmark = pytest.mark.usefixtures("needs_both", "node_client", "consumers_ready")


@pytest.fixture(scope="module")
def needs_both(suite: Any) -> None:
    if "conference" not in suite.services or "realtime" not in suite.services:
        pytest.skip("needs conference and realtime")


@pytest.fixture(scope="module")
def instance_b(suite: Any) -> Iterator[str]:
    """A second realtime process (same env as the suite's, its own port)."""
    from deploy.local import free_port, wait_http

    port = free_port()
    argv = [
        sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--loop", "uvloop", "--log-level", "warning", "--ws", "realtime.app:app",
    ]  # fmt: skip
    log = open(suite.local.run_dir / "realtime-b.log", "ab")  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(argv, env=suite.local.service_env("realtime"), stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", 30.0, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


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

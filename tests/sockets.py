"""Helpers for the tests that talk Socket.IO to realtime or feed it events (fixtures such as ``node_client``,
``consumers_ready`` and ``room`` live in conftest.py).

The Python side of the official JavaScript clients in tests/js (``listen``/``Listener`` for listen.mjs, ``client``/
``Client`` and ``joined`` for client.mjs), tokens for room sockets (``participant``), realtime's namespace registry
(``namespaces``, ``wait_registered``), events published on JetStream as the owners' outbox relays publish them
(``publish`` with ``link_created``, ``location_event``; ``wait_for_consumers``), presence rows
(``room_user``), chat payloads (``chat``) and a NATS subscription beside an owner's responder that sees what
realtime forwards (``watch``). One of the topic modules of test helpers listed in support.py.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import nats

from servicekit.bus import stream_name

JS_DIR = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node") or "node"


# ---- the JS clients ------------------------------------------------------------------------------------------
class Listener:
    """A running listen.mjs: JSON lines of what the client saw."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            err = (await self.proc.stderr.read()).decode() if self.proc.stderr else ""
            raise AssertionError(f"listener ended; seen {self.lines}; stderr {err[-2000:]}")
        line = json.loads(raw)
        self.lines.append(line)
        return line

    async def until(self, kind: str, event: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            line = await self.next(max(0.1, deadline - time.monotonic()))
            if line["type"] == kind and (event is None or line.get("event") == event):
                return line

    async def connected(self) -> dict[str, Any]:
        line = await self.next(15.0)
        assert line["type"] == "connect", line
        return line

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


async def listen(node: str, url: str, *args: str) -> Listener:
    proc = await asyncio.create_subprocess_exec(
        node,
        str(JS_DIR / "listen.mjs"),
        "--url",
        url,
        *args,
        cwd=JS_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return Listener(proc)


class Client(Listener):
    """client.mjs: a socket.io-client that also emits what the test tells it to."""

    async def send(self, event: str, *args: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"emit": event, "args": list(args)}) + "\n").encode())
        await self.proc.stdin.drain()
        await self.until("sent")

    async def leave(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b'{"close": true}\n')
        await self.proc.stdin.drain()
        await asyncio.wait_for(self.proc.wait(), 10)

    async def quiet(self, event: str, seconds: float) -> list[dict[str, Any]]:
        """Lines of ``event`` received within ``seconds`` (expects none, usually)."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = await self.next(left)
            except TimeoutError:
                break
            if line.get("event") == event:
                seen.append(line)
        return seen


async def client(node: str, url: str, *args: str) -> Client:
    proc = await asyncio.create_subprocess_exec(
        node, str(Path(JS_DIR) / "client.mjs"), "--url", url, *args,
        cwd=JS_DIR, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    return Client(proc)  # type: ignore[arg-type]


def participant(suite: Any, room: str, user_type: str, user_name: str, identity: str | None = None) -> tuple[str, str]:
    """(identity, token) like conference's participant tokens (metadata JSON, bound to ``room``)."""
    identity = identity or uuid.uuid4().hex[:10]
    metadata = json.dumps({"userName": user_name, "userType": user_type, "color": "#123456"})
    token = suite.agent_token(sub=identity, video={"room": room, "roomJoin": True}, metadata=metadata)
    return identity, token


async def joined(node: str, suite: Any, room: str, token: str) -> Client:
    c = await client(node, f"{suite.edge}/{room}", "--token", token)
    await c.connected()
    await c.until("event", "connection-success")
    return c


def chat(text: str, identity: str = "p1", user_type: str = "user") -> dict[str, Any]:
    return {
        "identity": identity, "chat_identity": "c-" + identity, "userName": "Guest-12", "userType": user_type,
        "text": text, "files": [{"name": "a.png"}], "color": "#FF5733", "replyToMessageId": 0,
    }  # fmt: skip


async def room_user(suite: Any, room: str, identity: str) -> dict[str, Any] | None:
    rows = await suite.query(
        "conference",
        "SELECT identity, userName, userType, status, socketId, camera, microphone, conference, color"
        " FROM room_user WHERE room = %s AND identity = %s",
        (room, identity),
    )
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


# ---- realtime's namespace registry ---------------------------------------------------------------------------
async def namespaces(suite: Any) -> list[str]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{suite.edge}/namespace")
    assert response.status_code == 200
    return response.json()


async def wait_registered(suite: Any, namespace: str, present: bool = True) -> None:
    deadline = time.monotonic() + 10
    while (namespace in await namespaces(suite)) != present:
        assert time.monotonic() < deadline, f"{namespace} registered={not present} after 10 s"
        await asyncio.sleep(0.1)


# ---- events for realtime, and what it forwards ---------------------------------------------------------------
REALTIME_CONSUMERS = (("link", "realtime-link"), ("conference", "realtime-conference"))


async def wait_for_consumers(nats_url: str, consumers: tuple[tuple[str, str], ...] = REALTIME_CONSUMERS) -> None:
    """Durable consumers deliver only events published after they exist: wait for ``consumers`` ((stream owner,
    durable) pairs; by default realtime's of link's and conference's streams)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + 15
        for owner, durable in consumers:
            while True:
                try:
                    await js.consumer_info(stream_name(owner), durable)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def publish(nats_url: str, owner: str, subject: str, data: dict[str, Any], event_id: str | None = None) -> str:
    """Publish an event envelope to ``owner``'s stream the way servicekit's outbox relay does."""
    event_id = event_id or uuid.uuid4().hex
    envelope = {"id": event_id, "subject": subject, "version": 1, "occurred_at": "2025-01-01T00:00:00.000+00:00"}
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.publish(
            subject,
            json.dumps({**envelope, "data": data}).encode(),
            stream=stream_name(owner),
            headers={"Nats-Msg-Id": f"{event_id}-{uuid.uuid4().hex[:6]}"},
        )
    finally:
        await nc.close()
    return event_id


def link_id() -> str:
    return "L" + uuid.uuid4().hex[:8]


def room_name() -> str:
    return "Room" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:8])


def link_created(link: str, room: str, room_created: bool = True) -> dict[str, Any]:
    return {
        "linkID": link,
        "room": room,
        "linkType": "video",
        "userType": "user",
        "userName": "0812345678",
        "mobile": "0812345678",
        "service": 999,
        "roomCreated": room_created,
    }


def location_event(link: str, room: str, ts: int) -> dict[str, Any]:
    return {
        "linkID": link,
        "room": room,
        "userType": "user",
        "position": {
            "latitude": 13.7563,
            "longitude": 100.5018,
            "accuracy": 12.5,
            "altitude": 4.0,
            "altitudeAccuracy": 3.0,
            "heading": 90.0,
            "speed": 1.5,
        },
        "timestamp": ts,
    }


class Requests:
    """Requests made on a subject, seen by a plain subscription (link's queue-group responder still answers)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def count(self, expected: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.seen) < expected:
            assert time.monotonic() < deadline, self.seen
            await asyncio.sleep(0.05)
        return self.seen


async def watch(nc: Any, subject: str) -> tuple[Requests, Any]:
    requests = Requests()

    async def on_request(msg: Any) -> None:
        requests.seen.append(json.loads(msg.data))

    subscription = await nc.subscribe(subject, cb=on_request)
    await nc.flush()  # the server has the subscription before the test makes realtime ask
    return requests, subscription

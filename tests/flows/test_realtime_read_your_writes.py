"""Read-your-writes for namespaces: once POST /link/create has answered, the official socket.io-client connects
to the link's /data/<linkID> and the room's /<room> at once and is never refused, on either of two realtime
instances, while the suite is under load. A name that never existed is still refused with "Invalid namespace"."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from realtime.repository import NAMESPACES_KEY
from tests.instances import nginx_conf, running_nginx, start_instance, stop_instance
from tests.sockets import JS_DIR, listen, wait_for_consumers, wait_registered

CREATE_CONNECT_ROUNDS = int(os.environ.get("READ_YOUR_WRITES_ROUNDS", "50"))  # more for a longer proof
LOAD_CONCURRENCY = 16
LOAD_LIMIT_SECONDS = 240  # the load stops by itself even if the clients hang


@pytest.fixture(scope="module")
def needs_owners(suite: Any) -> None:
    if not {"link", "conference", "realtime"} <= set(suite.services):
        pytest.skip("needs link, conference and realtime")


def balancer_conf(port: int, edge: str, realtimes: list[str], run_dir: Path) -> str:
    """An edge in front of two realtime instances: Socket.IO round-robin across both (websocket clients, one TCP
    connection each), everything else to the suite's edge."""
    return nginx_conf(
        port,
        run_dir,
        " ".join(f"server {address};" for address in realtimes),
        f"location /socket.io/ {{ proxy_pass http://realtime; proxy_read_timeout 60s; }}"
        f" location / {{ proxy_pass http://{edge}; }}",
    )


@pytest.fixture(scope="module")
def two_instance_edge(suite: Any, needs_owners: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from deploy.local import free_port

    run_dir = tmp_path_factory.mktemp("ryw-edge")
    process, url = start_instance(suite, "realtime-ryw")
    port = free_port()
    realtimes = [suite.url("realtime").removeprefix("http://"), url.removeprefix("http://")]
    conf = balancer_conf(port, suite.edge.removeprefix("http://"), realtimes, run_dir)
    try:
        with running_nginx(conf, run_dir, f"http://127.0.0.1:{port}/health"):
            yield f"http://127.0.0.1:{port}"
    finally:
        stop_instance(process)


async def _load(edge: str, token: str, stop: asyncio.Event) -> int:
    """Position updates and page loads through the edge until ``stop`` (bounded in time): they keep the
    services, the outbox relay and realtime's consumers busy while the namespaces are asked for."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=20) as client:
        created = await client.post(
            f"{edge}/link/create",
            json={"room": "Rywload" + os.urandom(4).hex(), "mobile": "0812345678", "userName": "Load", "service": 999},
            headers=headers,
        )
        assert created.status_code == 200, created.text
        link = created.json()
        deadline = time.monotonic() + LOAD_LIMIT_SECONDS
        sent = 0

        async def worker(n: int) -> None:
            nonlocal sent
            while not stop.is_set() and time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if n % 2:
                        await client.post(
                            f"{edge}/link/update/latlng",
                            json={"linkID": link["linkID"], "room": link["room"], "userType": "user",
                                  "latitude": 13.75, "longitude": 100.5},
                        )  # fmt: skip
                    else:
                        await client.get(f"{edge}/link/getdetail", params={"linkID": link["linkID"]})
                sent += 1

        await asyncio.gather(*(worker(n) for n in range(LOAD_CONCURRENCY)))
        return sent


async def test_namespaces_are_ready_when_link_create_answers(
    suite: Any,
    two_instance_edge: str,
    node_client: str,
) -> None:
    await wait_for_consumers(suite.nats_url)
    token = suite.agent_token()
    stop = asyncio.Event()
    load = asyncio.create_task(_load(suite.edge, token, stop))
    try:
        await asyncio.sleep(1.0)  # the load is running before the first create
        proc = await asyncio.create_subprocess_exec(
            node_client, str(JS_DIR / "create-connect.mjs"),
            "--api", two_instance_edge, "--socket", two_instance_edge, "--token", token,
            "--count", str(CREATE_CONNECT_ROUNDS),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=LOAD_LIMIT_SECONDS)
    finally:
        stop.set()
        sent = await load
    assert proc.returncode == 0, err.decode()[-2000:]
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert sent > 0
    assert summary["failures"] == []
    assert summary["attempts"] == 2 * CREATE_CONNECT_ROUNDS
    assert summary["connected"] == summary["attempts"]
    assert [(u["ok"], u.get("message")) for u in summary["unknown"]] == [(False, "Invalid namespace")] * 2


async def _connect_outcome(node: str, url: str, token: str) -> dict[str, Any]:
    listener = await listen(node, url, "--transport", "websocket", "--token", token, "--timeout", "8000")
    try:
        return await listener.next(12)
    finally:
        await listener.close()


async def test_a_registry_miss_is_answered_by_the_owner(suite: Any, needs_owners: None, node_client: str) -> None:
    """The registry (Redis) lost the names, as if their events were still on the way: the link's and the open
    room's namespaces still connect (the owners say so), a closed room's does not."""
    await wait_for_consumers(suite.nats_url)
    token = suite.agent_token()
    headers = {"Authorization": f"Bearer {token}"}
    room = "Rywmiss" + os.urandom(4).hex()
    async with httpx.AsyncClient(base_url=suite.edge, timeout=20) as client:
        created = await client.post(
            "/link/create", json={"room": room, "mobile": "0812345678", "userName": "Somchai", "service": 999},
            headers=headers,
        )  # fmt: skip
        assert created.status_code == 200, created.text
        link_id, room = created.json()["linkID"], created.json()["room"]
        names = [f"/data/{link_id}", f"/{room}"]
        for name in names:
            await wait_registered(suite, name)
        redis = Redis.from_url(suite.redis_url)
        try:
            await redis.srem(NAMESPACES_KEY, *names)
            for name in names:
                outcome = await _connect_outcome(node_client, f"{suite.edge}{name}", token)
                assert outcome["type"] == "connect", (name, outcome)

            closed = await client.put("/room/close", json={"room": room}, headers=headers)
            assert closed.status_code == 200, closed.text
            await wait_registered(suite, f"/{room}", present=False)
            await redis.srem(NAMESPACES_KEY, *names)  # whatever the close left, the owners decide
        finally:
            await redis.aclose()
        refused = await _connect_outcome(node_client, f"{suite.edge}/{room}", token)
        assert refused == {"type": "connect_error", "message": "Invalid namespace", "data": None}
        # the link outlives its room's close, as in the original (its /data namespace was never closed)
        outcome = await _connect_outcome(node_client, f"{suite.edge}/data/{link_id}", token)
        assert outcome["type"] == "connect", outcome

"""JetStream replicas follow NATS_STREAM_REPLICAS: the streams and durable consumers a service creates get that
count (1 on one server, 3 on a cluster), existing ones are changed to it, and a count the servers cannot hold
stops the service instead of leaving it without its stream. Consumers' ack wait follows NATS_ACK_WAIT_SECONDS the
same way. Runs private nats-servers (one, and a three-node JetStream cluster on 127.0.0.1), not the suite's."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.js.api import ConsumerConfig

from servicekit.bus import Bus, Event, stream_name
from servicekit.settings import CommonSettings, load_settings

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_servers(data: Path, nodes: int) -> tuple[list[str], list[subprocess.Popen[bytes]]]:
    client_ports = [_free_port() for _ in range(nodes)]
    cluster_ports = [_free_port() for _ in range(nodes)]
    routes = ",".join(f"nats://127.0.0.1:{port}" for port in cluster_ports)
    procs = []
    for i in range(nodes):
        command = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(client_ports[i]), "-js", "-sd", str(data / f"n{i}")]
        if nodes > 1:
            command += ["-n", f"n{i}", "--cluster_name", "ems-test"]
            command += ["--cluster", f"nats://127.0.0.1:{cluster_ports[i]}", "--routes", routes]
        procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return [f"nats://127.0.0.1:{port}" for port in client_ports], procs


async def _jetstream_ready(url: str, timeout: float = 15.0) -> None:
    """Until the (cluster's) JetStream answers: a cluster first elects its meta leader."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            nc = await nats.connect(url, connect_timeout=1, max_reconnect_attempts=0)
            try:
                await nc.jetstream().account_info()
                return
            finally:
                await nc.close()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict[str, str]]:
    """{"single": url of one server, "cluster": url of node 0 of a three-node cluster}."""
    data = tmp_path_factory.mktemp("nats")
    single, single_procs = _start_servers(data / "single", 1)
    cluster, cluster_procs = _start_servers(data / "cluster", 3)
    try:
        asyncio.run(_jetstream_ready(single[0]))
        asyncio.run(_jetstream_ready(cluster[0]))
        yield {"single": single[0], "cluster": cluster[0]}
    finally:
        for proc in single_procs + cluster_procs:
            proc.terminate()
        for proc in single_procs + cluster_procs:
            proc.wait(timeout=10)


@pytest.fixture
async def admin(servers) -> AsyncIterator[dict[str, nats.aio.client.Client]]:
    clients = {name: await nats.connect(url) for name, url in servers.items()}
    yield clients
    for client in clients.values():
        await client.close()


async def _noop(event: Event) -> None:
    return None


async def _consumer_replicas(bus: Bus, owner: str, durable: str, expected: int, start: bool = True) -> int:
    """Start consuming through ``durable`` (unless started); its replica count once it is ``expected`` or after
    10 s (the consume loop creates or changes the consumer in the background)."""
    if start:
        bus.consume(owner, durable, _noop)
    deadline = time.monotonic() + 10
    replicas = -1
    while replicas != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        try:
            replicas = (await bus.js.consumer_info(stream_name(owner), durable)).config.num_replicas
        except (nats.js.errors.NotFoundError, nats.js.errors.ServiceUnavailableError, nats.errors.TimeoutError):
            continue
    return replicas


def test_the_setting_is_read_from_the_environment() -> None:
    assert load_settings(CommonSettings, {}).nats_stream_replicas == 1
    assert load_settings(CommonSettings, {"NATS_STREAM_REPLICAS": "3"}).nats_stream_replicas == 3


async def test_one_replica_on_a_single_server_and_three_is_refused(servers, admin) -> None:
    bus = await Bus.connect(servers["single"], "replone", 1)
    try:
        await bus.ensure_stream()
        info = await admin["single"].jetstream().stream_info(stream_name("replone"))
        assert info.config.num_replicas == 1
        assert await _consumer_replicas(bus, "replone", "replone-reader", 1) == 1
        # A consumer made before the setting existed (no count: it followed its stream's) gets the count too.
        await bus.js.add_consumer(stream_name("replone"), ConsumerConfig(durable_name="replone-old"))
        assert await _consumer_replicas(bus, "replone", "replone-old", 1) == 1
    finally:
        await bus.close()
    # A production setting against one server: start-up fails loudly rather than running without the stream.
    bus = await Bus.connect(servers["single"], "replthree", 3)
    try:
        with pytest.raises(nats.js.errors.Error):
            await bus.ensure_stream()
    finally:
        await bus.close()


async def test_three_replicas_on_a_cluster_and_existing_ones_are_rescaled(servers, admin) -> None:
    js = admin["cluster"].jetstream()
    # Made before the deployment moved to the cluster's count.
    bus = await Bus.connect(servers["cluster"], "replscale", 1)
    try:
        await bus.ensure_stream()
        assert await _consumer_replicas(bus, "replscale", "replscale-reader", 1) == 1
    finally:
        await bus.close()
    assert (await js.stream_info(stream_name("replscale"))).config.num_replicas == 1

    bus = await Bus.connect(servers["cluster"], "replscale", 3)
    try:
        await bus.ensure_stream()
        info = await js.stream_info(stream_name("replscale"))
        assert info.config.num_replicas == 3
        assert info.cluster is not None and len(info.cluster.replicas or []) >= 2  # copies on the other nodes
        assert await _consumer_replicas(bus, "replscale", "replscale-reader", 3) == 3
        assert await _consumer_replicas(bus, "replscale", "replscale-new", 3) == 3
    finally:
        await bus.close()


async def test_consumers_take_the_ack_wait_and_existing_ones_change_to_it(servers, admin) -> None:
    assert load_settings(CommonSettings, {}).nats_ack_wait_seconds == 30.0
    assert load_settings(CommonSettings, {"NATS_ACK_WAIT_SECONDS": "5"}).nats_ack_wait_seconds == 5.0
    js = admin["single"].jetstream()

    async def ack_wait_of(durable: str, expected: float) -> float:
        deadline = time.monotonic() + 10
        seen = -1.0
        while seen != expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            try:
                seen = (await js.consumer_info(stream_name("ackwait"), durable)).config.ack_wait or -1.0
            except nats.js.errors.NotFoundError:
                continue
        return seen

    for ack_wait in (7.0, 30.0):  # made with 7 s, then started again with the default
        bus = await Bus.connect(servers["single"], "ackwait", 1, ack_wait)
        try:
            await bus.ensure_stream()
            bus.consume("ackwait", "ackwait-reader", _noop)
            assert await ack_wait_of("ackwait-reader", ack_wait) == ack_wait
        finally:
            await bus.close()


async def test_a_consumer_that_cannot_start_keeps_trying(servers, caplog) -> None:
    # A consumer task must not die on a JetStream error at start (leaders being elected after a server loss or a
    # rescale): here the stream cannot be made with 3 replicas on one server until the count is fixed.
    bus = await Bus.connect(servers["single"], "replretry", 3)
    try:
        bus.consume("replretry", "replretry-reader", _noop)
        await asyncio.sleep(1.5)
        assert not bus._tasks[0].done()
        assert any(record.getMessage() == "consumer not started; retrying" for record in caplog.records)
        bus.replicas = 1
        assert await _consumer_replicas(bus, "replretry", "replretry-reader", 1, start=False) == 1
    finally:
        await bus.close()


# A service's start-up as create_app runs it, in a child process (its logging and gc settings stay there).
STARTUP = """
import asyncio
from servicekit.settings import CommonSettings, load_settings
from servicekit.web import ServiceSpec, create_app

async def main() -> None:
    settings = load_settings(CommonSettings)
    app = create_app(ServiceSpec(settings, [], uses_db=False, uses_redis=False))
    async with app.lifespan():
        pass

asyncio.run(main())
"""


async def test_a_service_start_up_takes_the_count_from_the_environment(servers, admin) -> None:
    env = {**os.environ, "NATS_URL": servers["cluster"], "SERVICE_NAME": "replenv", "NATS_STREAM_REPLICAS": "3"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STARTUP, env=env, cwd=ROOT, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    info = await admin["cluster"].jetstream().stream_info(stream_name("replenv"))
    assert info.config.num_replicas == 3

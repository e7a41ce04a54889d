"""Prometheus metrics (servicekit.metrics and the services' own): every service serves /metrics on its own port,
the edge refuses it, and the counters move when the things they count happen."""

from __future__ import annotations

import asyncio
import struct
import uuid
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import yaml
from prometheus_client import REGISTRY

from contracts.conference import RPC_ROOM_SOCKET_LIVE
from contracts.link import RPC_LINK_ROOM
from deploy.edge.routes import load
from servicekit import metrics
from servicekit.bus import Bus, Event, OutboxRelay, RpcError, add_event, new_event, stream_name
from servicekit.db import Database, migrate
from servicekit.settings import CommonSettings
from servicekit.web import Runtime
from tests.fakes import livekit_webhooks as webhooks
from tests.sockets import joined, link_id, listen, participant, room_name
from tests.support import sample, scrape, until

ROOT = Path(__file__).resolve().parents[2]
WITH_DATABASE = ("conference", "link", "telemetry", "recording")  # auth and realtime have no tables


async def test_each_service_serves_its_metrics_on_its_own_port(suite: Any) -> None:
    for service in suite.services:
        async with httpx.AsyncClient(timeout=20) as client:
            response = await client.get(f"{suite.url(service)}/metrics")
        assert response.status_code == 200, service
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4"), service
        samples = await scrape(suite.url(service))
        assert sample(samples, "ems_service_ready") == 1, service
        assert sample(samples, "process_cpu_seconds_total") > 0, service  # prometheus-client's process collector
        assert sample(samples, "ems_http_requests_total", route="/metrics", method="GET", status="200") >= 1, service
        if service in WITH_DATABASE:
            assert sample(samples, "ems_dependency_up", dependency="mysql") == 1, service
            assert sample(samples, "ems_db_pool_connections_max") >= 1, service
            assert (
                0 <= sample(samples, "ems_db_pool_connections_in_use") <= sample(samples, "ems_db_pool_connections_max")
            ), service
            assert "ems_outbox_pending_rows" in samples and "ems_outbox_oldest_pending_age_seconds" in samples, service
            assert sample(samples, "ems_outbox_oldest_pending_age_seconds") < 30, service
        else:
            assert sample(samples, "ems_outbox_pending_rows") == sample(samples, "ems_db_pool_connections_max") == 0


async def test_the_edge_refuses_metrics(suite: Any, client: httpx.AsyncClient) -> None:
    for path in ("/metrics", "/metrics/", "/metrics?name[]=ems_http_requests_total", "/METRICS"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json() == {"status": "FAIL", "message": "Not Found"}, path
        assert "x-served-by" not in response.headers, path  # nginx answered: no service was asked


def test_no_route_of_the_edge_or_the_gateway_covers_metrics() -> None:
    """The nginx edge and the HTTPRoutes route only the route table's paths; none of them may reach /metrics."""
    for route in load().routes:
        covered = "/metrics".startswith(route.location) if route.is_prefix else route.location == "/metrics"
        assert not covered, route.path
    docs = list(yaml.safe_load_all((ROOT / "k8s" / "base" / "edge" / "httproute.yaml").read_text(encoding="utf-8")))
    for doc in docs:
        for rule in doc["spec"]["rules"]:
            for match in rule["matches"]:
                kind, value = match["path"]["type"], match["path"]["value"]
                prefix = value.rstrip("/")
                if kind == "PathPrefix":
                    covered = prefix == "/metrics" or "/metrics".startswith(prefix + "/")
                else:
                    assert kind == "Exact", match  # a regular expression would need its own check here
                    covered = value == "/metrics"
                assert not covered, (doc["metadata"]["name"], match)


def test_each_service_runs_one_worker_process() -> None:
    """The metrics live in the process's default registry (no multiprocess mode): each service is one process
    (servicekit.serve), locally and in the image; replicas are scraped one by one."""
    from deploy.local import service_argv

    assert service_argv("link", 1)[1:3] == ["-m", "servicekit.serve"]
    [cmd] = [
        line for line in (ROOT / "deploy" / "docker" / "Dockerfile").read_text().splitlines() if line.startswith("CMD")
    ]
    assert "servicekit.serve" in cmd and "granian" not in cmd and "--workers" not in cmd


async def test_http_requests_are_counted_by_route_template(suite: Any) -> None:
    base = suite.url("telemetry")
    before = await scrape(base)
    # /radio/device/{id} only: other tests may have counted the list route /radio/device too
    template_labels = {
        dict(key)["route"] for key in before.get("ems_http_requests_total", {}) if "radio/device/" in dict(key)["route"]
    }
    ids = [uuid.uuid4().hex[:8] for _ in range(3)]
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for device in ids:
            await client.get(f"/radio/device/{device}")
        unknown = await client.get(f"/no/such/{ids[0]}")
    assert unknown.status_code == 404
    after = await scrape(base)
    routes = {dict(key)["route"] for key in after["ems_http_requests_total"]}
    device_routes = {r for r in routes if r.startswith("/radio/device/")}
    assert len(device_routes) == 1 and device_routes >= template_labels, device_routes  # the template, not paths
    [template] = device_routes
    assert "{" in template and not any(device in r for r in routes for device in ids)
    moved = sample(after, "ems_http_requests_total", route=template, method="GET") - sample(
        before, "ems_http_requests_total", route=template, method="GET"
    )
    assert moved == 3
    timed = sample(after, "ems_http_request_duration_seconds_count", route=template) - sample(
        before, "ems_http_request_duration_seconds_count", route=template
    )
    assert timed == 3
    unmatched = sample(after, "ems_http_requests_total", route="unmatched", status="404") - sample(
        before, "ems_http_requests_total", route="unmatched", status="404"
    )
    assert unmatched == 1


async def test_consumer_and_outbox_metrics_move(suite: Any, client: httpx.AsyncClient) -> None:
    realtime = suite.url("realtime")
    labels = {"stream": stream_name("link"), "consumer": "realtime-link"}
    before = await scrape(realtime)
    token = {"Authorization": f"Bearer {suite.agent_token()}"}
    created = await client.post("/link/create", json={"room": room_name(), "mobile": "0812345678"}, headers=token)
    assert created.status_code == 200, created.text

    async def handled() -> Any:
        now = await scrape(realtime)
        count = "ems_consumer_handle_duration_seconds_count"
        return now if sample(now, count, **labels) > sample(before, count, **labels) else None

    after = await until(handled)
    # a series per consumer, labelled with its stream (in no particular order: consumers start side by side)
    assert any(("stream", stream_name("link")) in key for key in after["ems_consumer_pending_messages"])
    assert sample(after, "ems_consumer_pending_messages", **labels) >= 0
    # An event no consumer can decode is dropped and counted as a failure.
    nc = await nats.connect(suite.nats_url)
    try:
        await nc.jetstream().publish("link.metrics.garbage", b"not an event")
    finally:
        await nc.close()

    async def failed() -> bool:
        now = await scrape(realtime)
        return sample(now, "ems_consumer_failures_total", **labels) > sample(
            before, "ems_consumer_failures_total", **labels
        )

    await until(failed)
    link = await scrape(suite.url("link"))
    assert sample(link, "ems_outbox_oldest_pending_age_seconds") < 30


async def test_request_reply_and_handshake_metrics(suite: Any, node_client: str, room: str) -> None:
    realtime = suite.url("realtime")
    before = await scrape(realtime)
    # A room namespace realtime has not registered is asked of conference (request/reply), then refused.
    unknown = await listen(node_client, f"{suite.edge}/{room_name()}", "--token", suite.agent_token())
    line = await unknown.next(15)
    await unknown.close()
    assert line["type"] == "connect_error" and line["message"] == "Invalid namespace", line
    # So is a /data namespace of a link that does not exist (link answers not_found).
    missing = await listen(node_client, f"{suite.edge}/data/{link_id()}", "--token", suite.agent_token())
    line = await missing.next(15)
    await missing.close()
    assert line["type"] == "connect_error", line
    # A dashboard without a token is refused for its credential.
    anonymous = await listen(node_client, f"{suite.edge}/newqueue")
    line = await anonymous.next(15)
    await anonymous.close()
    assert line["type"] == "connect_error" and line["message"] == "Authentication error", line
    # A participant in a room: connected, and greeted with emits.
    _, token = participant(suite, room, "user", "Metrics Patient")
    socket = await joined(node_client, suite, room, token)
    try:
        during = await scrape(realtime)
    finally:
        await socket.leave()
    subject = {"subject": RPC_ROOM_SOCKET_LIVE}

    def moved(name: str, **labels: str) -> float:
        return sample(during, name, **labels) - sample(before, name, **labels)

    assert moved("ems_rpc_request_duration_seconds_count", **subject) >= 1
    assert moved("ems_rpc_request_errors_total", code="not_found", subject=RPC_LINK_ROOM) >= 1
    assert moved("ems_realtime_handshakes_refused_total", reason="invalid_namespace") >= 2
    assert moved("ems_realtime_handshakes_refused_total", reason="authentication") >= 1
    assert sample(during, "ems_realtime_connections", kind="room") >= 1
    assert moved("ems_realtime_emits_total", kind="room") >= 2  # log, connection-success (and user-connection)
    assert not any(room in value for key in during["ems_realtime_connections"] for _, value in key)

    async def left() -> bool:
        now = await scrape(realtime)
        return sample(now, "ems_realtime_connections", kind="room") < sample(
            during, "ems_realtime_connections", kind="room"
        )

    await until(left)


async def test_sms_job_metrics(suite: Any, sender: str) -> None:
    bases = (sender, suite.url("link"))  # the job runs on whichever link replica picks it
    sent = {"outcome": "sent", "attempt": "1"}
    before = sum([sample(await scrape(base), "ems_sms_jobs_total", **sent) for base in bases])
    async with httpx.AsyncClient(timeout=20) as client:
        response = await client.post(
            f"{sender}/link/create",
            json={"room": room_name(), "mobile": "08" + str(uuid.uuid4().int)[:8]},
            headers={"Authorization": f"Bearer {suite.agent_token()}"},
        )
    assert response.status_code == 200, response.text

    async def counted() -> bool:
        return sum([sample(await scrape(base), "ems_sms_jobs_total", **sent) for base in bases]) > before

    await until(counted)


def _mp4(seconds: int) -> bytes:
    ftyp = struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00" + b"isomiso2"
    mvhd_body = b"\x00\x00\x00\x00" + b"\x00" * 8 + struct.pack(">II", 1000, seconds * 1000) + b"\x00" * 80
    mvhd = struct.pack(">I", 8 + len(mvhd_body)) + b"mvhd" + mvhd_body
    moov = struct.pack(">I", 8 + len(mvhd)) + b"moov" + mvhd
    return ftyp + moov + b"\x00" * 2048


async def test_encode_job_webhook_and_egress_metrics(suite: Any, client: httpx.AsyncClient) -> None:
    recording = suite.url("recording")
    before = await scrape(recording)
    upload = await client.post("/upload/video", files={"myVideo": ("clip.mp4", _mp4(3), "video/mp4")})
    assert upload.status_code == 200, upload.text
    key, secret = suite.env["LIVEKIT_API_KEY"], suite.env["LIVEKIT_API_SECRET"]
    event = webhooks.event("room_started", room=room_name())
    assert (await webhooks.post(client, event, key, secret)).status_code == 200
    assert (await webhooks.post(client, event, key, secret)).status_code == 200  # the same id again
    assert (await webhooks.post(client, event, key, "not-the-secret-not-the-secret!!")).status_code == 401

    def moved(now: Any, name: str, **labels: str) -> float:
        return sample(now, name, **labels) - sample(before, name, **labels)

    async def encoded() -> Any:
        now = await scrape(recording)
        return now if moved(now, "ems_encode_jobs_total", outcome="sent", attempt="1") >= 1 else None

    after = await until(encoded)
    assert moved(after, "ems_webhooks_total", event="room_started", verdict="applied") == 1
    assert moved(after, "ems_webhooks_total", event="room_started", verdict="duplicate") == 1
    assert moved(after, "ems_webhooks_total", event="unknown", verdict="refused_signature") == 1
    assert sample(after, "ems_recording_egress_limit") == int(suite.env["EGRESS_LIMIT"])
    assert sample(after, "ems_recording_egresses") >= 0


# ---- servicekit's mechanics in this process (prometheus-client's default registry of the test process) -------
@pytest.fixture
async def kit(suite: Any) -> Any:
    """A database (pool of one) and a bus of a throwaway service, in this process."""
    name = f"{suite.db_name('metrics')}_{uuid.uuid4().hex[:6]}"
    settings = CommonSettings(
        service_name="metricstest", mysql_database=name, nats_url=suite.nats_url, mysql_pool_size=1
    )
    db = await Database.connect(settings)
    await migrate(db, None)
    bus = await Bus.connect(suite.nats_url, "metricstest")
    await bus.ensure_stream()
    yield db, bus
    await bus.close()
    await db.execute(f"DROP DATABASE `{name}`")  # noqa: S608 - generated test name
    await db.close()


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_failing_handler_counts_a_failure_and_a_redelivery(kit: Any) -> None:
    db, bus = kit
    durable = f"metrics-{uuid.uuid4().hex[:6]}"
    labels = {"stream": stream_name("metricstest"), "consumer": durable}
    calls: list[str] = []
    done = asyncio.Event()

    async def handler(event: Event) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("first delivery fails")
        done.set()

    bus.consume("metricstest", durable, handler)
    await asyncio.sleep(0.5)  # the durable consumer exists (it starts at new events)
    await bus.publish_event(new_event("metricstest.thing.done", {"n": 1}))
    await asyncio.wait_for(done.wait(), 15)
    await asyncio.sleep(0.2)  # the ack and its observation
    assert value("ems_consumer_failures_total", **labels) == 1
    assert value("ems_consumer_redeliveries_total", **labels) == 1
    assert value("ems_consumer_handle_duration_seconds_count", **labels) == 2
    runtime = Runtime(settings=CommonSettings(service_name="metricstest"), db=db, bus=bus)
    runtime.relay = OutboxRelay(db, bus)  # not started: rows stay pending
    async with db.transaction() as conn:
        await add_event(conn, "metricstest.thing.done", {"n": 2})
    await asyncio.sleep(0.05)
    await metrics.refresh(runtime, {"mysql": True, "nats": True}, None)
    assert value("ems_outbox_pending_rows") == 1
    assert 0 < value("ems_outbox_oldest_pending_age_seconds") < 30
    assert value("ems_consumer_pending_messages", **labels) == 0
    assert value("ems_service_ready") == 1


async def test_request_reply_timeouts_and_pool_waits_are_counted(kit: Any) -> None:
    db, bus = kit
    subject = f"rpc.metricstest.{uuid.uuid4().hex[:6]}"

    async def slow(_: Any) -> None:
        await asyncio.sleep(1)

    await bus.serve(subject, dict, slow)
    with pytest.raises(RpcError):
        await bus.request(subject, Event(id="x", subject="s", occurred_at="", data={}), timeout=0.2)
    with pytest.raises(RpcError):
        await bus.request(subject + ".nobody", Event(id="x", subject="s", occurred_at="", data={}), timeout=0.2)
    assert value("ems_rpc_request_errors_total", subject=subject, code="timeout") == 1
    assert value("ems_rpc_request_errors_total", subject=subject + ".nobody", code="unavailable") == 1
    assert value("ems_rpc_request_duration_seconds_count", subject=subject) == 1
    waits = value("ems_db_pool_waits_total")
    async with db.connection():  # the pool's only connection: the next acquire waits for it
        blocked = asyncio.create_task(db.fetch_one("SELECT 1 AS one"))
        await asyncio.sleep(0.1)
        assert not blocked.done()
    assert await blocked == {"one": 1}
    assert value("ems_db_pool_waits_total") == waits + 1

"""The test harness: the whole suite as real processes (granian services, nginx edge) against real MariaDB,
and a private NATS (JetStream) and Redis per test run, so concurrent runs never see each other's data.

``SUITE_SERVICES=auth,link`` limits which services start (default: every service under services/).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncmy
import httpx
import jwt
import nats
import pytest

from contracts.conference import RPC_ROOM_ENSURE
from deploy.local import DEFAULT_ENV, LocalSuite, discover_services
from servicekit.bus import Bus
from tests.fakes.encode_api import FakeEncodeApi
from tests.fakes.livekit import FakeLiveKit
from tests.fakes.radio_api import FakeRadioApi
from tests.fakes.sms_gateway import SmsGateway, start_link_replica
from tests.instances import descendants, private_suite
from tests.sockets import JS_DIR, room_name, wait_for_consumers, wait_registered
from tests.support import query, rpc

ROOT = Path(__file__).resolve().parents[1]


class TestSuite:
    """What tests get: URLs, env, direct DB reads, tokens."""

    __test__ = False

    def __init__(self, local: LocalSuite, env: dict[str, str]) -> None:
        self.local = local
        self.edge = local.edge
        self.env = env
        self.nats_url = local.nats_url
        self.redis_url = local.redis_url
        self.services = list(local.service_ports)

    def url(self, service: str) -> str:
        return self.local.url(service)

    def db_name(self, service: str) -> str:
        return self.local.db_name(service)

    async def connect(self, service: str) -> Any:
        return await asyncmy.connect(
            host="127.0.0.1", port=3306, user="root", password="", db=self.db_name(service), autocommit=True
        )

    async def query(self, service: str, sql: str, args: Any = ()) -> list[dict[str, Any]]:
        return await query(self.db_name(service), sql, args)

    async def execute(self, service: str, sql: str, args: Any = ()) -> int:
        """Direct write, for test set-up only (e.g. rows as an old installation left them)."""
        conn = await self.connect(service)
        try:
            async with conn.cursor() as cur:
                return await cur.execute(sql, args)
        finally:
            conn.close()

    def signal_service(self, service: str, signum: int) -> None:
        """Signal a service's granian process and its workers (e.g. SIGSTOP/SIGCONT to freeze it)."""
        root = self.local.processes[service].pid
        for pid in [root, *descendants(root)]:
            os.kill(pid, signum)

    def agent_token(self, ttl: int = 3600, **claims: Any) -> str:
        """A LiveKit access token like the agent console's (GET /auth/create)."""
        now = int(time.time())
        payload = {
            "iss": self.env["LIVEKIT_API_KEY"],
            "sub": "agent-" + uuid.uuid4().hex[:6],
            "name": "Example",
            "video": {"roomJoin": False},
            "nbf": now - 5,
            "exp": now + ttl,
            **claims,
        }
        return jwt.encode(payload, self.env["LIVEKIT_API_SECRET"], algorithm="HS256")


@pytest.fixture
async def client(suite: TestSuite) -> Any:
    """An HTTP client of the edge, as a frontend sees the suite."""
    async with httpx.AsyncClient(base_url=suite.edge, timeout=30) as http:
        yield http


@pytest.fixture
def livekit(suite: TestSuite) -> Iterator[FakeLiveKit]:
    """The suite's fake LiveKit, answering promptly before and after the test."""
    fake = suite.livekit
    fake.delay, fake.down = 0.0, False
    yield fake
    fake.delay, fake.down = 0.0, False


@pytest.fixture(scope="module")
def sender(suite: TestSuite, request: pytest.FixtureRequest) -> Iterator[str]:
    """A second link replica with SMS_ENABLE=true (the suite's own runs with it off); its base URL."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")  # e.g. link-sms
    base, process = start_link_replica(suite, name, SMS_ENABLE="true")
    try:
        yield base
    finally:
        process.terminate()
        process.wait(20)


@pytest.fixture(scope="module")
async def nc(suite: TestSuite) -> Any:
    """A NATS connection to the suite's server (requests and JetStream as the services see them)."""
    client = await nats.connect(suite.nats_url)
    yield client
    await client.close()


# ---- Socket.IO clients and realtime (helpers in tests/sockets.py) ------------------------------------------
@pytest.fixture(scope="session")
def node_client() -> str:
    """Path of node with socket.io-client installed in tests/js (installed on first use)."""
    node = shutil.which("node")
    assert node, "node is required for the Socket.IO client tests"
    if not (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        npm = shutil.which("npm")
        assert npm, "npm is required to install socket.io-client"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, capture_output=True)
    return node


@pytest.fixture(scope="session")
async def consumers_ready(suite: TestSuite) -> None:
    """Realtime's durable consumers of link's and conference's streams exist (they get only later events)."""
    await wait_for_consumers(suite.nats_url)


@pytest.fixture
async def room(suite: TestSuite, nc: Any) -> str:
    """A room conference has opened (RPC_ROOM_ENSURE) and realtime has registered as the namespace /<room>."""
    name = room_name()
    reply = await rpc(nc, RPC_ROOM_ENSURE, {"room": name, "service": 999})
    assert reply["ok"], reply
    await wait_registered(suite, f"/{name}")
    return name


# ---- recording (helpers in tests/egress.py) -------------------------------------------------------------------
@pytest.fixture
def lk(livekit: FakeLiveKit, suite: TestSuite) -> Iterator[FakeLiveKit]:
    """The fake LiveKit sending its egress webhooks to the edge; egress state cleared around the test."""
    livekit.egresses.clear()
    livekit.egress_failure = ""
    livekit.webhook_url = suite.edge + "/webhook"
    yield livekit
    livekit.webhook_url, livekit.egress_failure = "", ""


@pytest.fixture(scope="module")
async def conference_bus(nc: Any) -> Bus:
    """A bus publishing on conference's stream as conference does (its events for recording)."""
    bus = Bus(nc, "test-conference")
    await bus.ensure_stream("conference")
    return bus


@pytest.fixture(scope="session")
def suite() -> Iterator[TestSuite]:
    run_dir = Path(tempfile.mkdtemp(prefix="ems-test-"))
    wanted = os.environ.get("SUITE_SERVICES")
    services = [s for s in discover_services() if not wanted or s in wanted.split(",")]
    sms_gateway = SmsGateway().start()
    livekit = FakeLiveKit(DEFAULT_ENV["LIVEKIT_API_KEY"], DEFAULT_ENV["LIVEKIT_API_SECRET"]).start()
    radio_api = FakeRadioApi().start()  # telemetry's third-party radio location API (tests/fakes/radio_api.py)
    encode_api = FakeEncodeApi().start()  # recording's encode API (tests/fakes/encode_api.py)
    extra_env = {
        # Off for the suite (link creations record `disabled` SMS rows in their own transaction); the SMS tests
        # start a second link replica with SMS_ENABLE=true (tests/fakes/sms_gateway.py start_link_replica).
        "SMS_ENABLE": "false",
        "SMS_API_URL": sms_gateway.url,
        "SMS_API_KEY": sms_gateway.api_key,
        "AUTH_API_KEY": "test-operator-key",
        # Wide open as in the original (the default), whatever the developer's shell says;
        # tests/flows/test_edge_cors.py starts a second suite with a list.
        "CORS_ALLOWED_ORIGINS": "*",
        "CUSTOM_CHARSET": "abcdefghijklmopqrstuvwxyzABCDEFGHIJKLMOPQRSTUVWXYZ",
        # tests write node_livekit rows directly and expect them used at once
        "LIVEKIT_NODE_CACHE_SECONDS": "0",
        "LIVEKIT_HOST": livekit.url,  # every conference RoomService call hits the fake (tests/fakes/livekit.py)
        # recording: its media directory, and a small per-file upload limit the tests can exceed
        "RECORD_PATH": str(run_dir / "media"),
        "FILE_SIZE_LIMIT": "2000000",
        "ENCODE_API": encode_api.url,
        "EGRESS_LIMIT": "5",
        "RADIO_LOCATION_API_URL": radio_api.url,
        "RADIO_LOCATION_API_CREDENTIALS_USERNAME": radio_api.username,
        "RADIO_LOCATION_API_CREDENTIALS_PASSWORD": radio_api.password,
        "RADIO_LOCATION_API_TIMEOUT_SECONDS": "1.5",
    }
    env = {**DEFAULT_ENV, **extra_env}
    try:
        with private_suite(services, extra_env, run_dir=run_dir) as local:
            test_suite = TestSuite(local, env)
            test_suite.livekit = livekit
            test_suite.radio_api = radio_api
            test_suite.encode_api = encode_api
            yield test_suite
    finally:
        sms_gateway.stop()
        livekit.stop()
        radio_api.stop()
        encode_api.stop()

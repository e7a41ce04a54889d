"""The cutover profile (servicekit.compat) through the edge, and the local runner's first-token walk-through.

With the defaults (the session's suite) every tightened area refuses a caller without credentials. A second,
smaller suite started here with COMPAT_OPEN_AUTH_CREATE, COMPAT_OPEN_DASHBOARDS and COMPAT_OPEN_WRITES on lets
the same calls through, and each service logs the start-up warning and one use line per call (read from the
service's log file, as an operator would).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from deploy.local import LocalSuite, dev_operator_key, discover_services
from servicekit import compat
from servicekit.tokens import MISSING_TOKEN_BODY, TokenRejected
from tests.instances import private_suite
from tests.sockets import client as socket_client
from tests.sockets import listen
from tests.support import until

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node") or "node"
COMPAT_ENV = {"COMPAT_OPEN_AUTH_CREATE": "true", "COMPAT_OPEN_DASHBOARDS": "1", "COMPAT_OPEN_WRITES": "yes"}
COMPAT_SERVICES = ["auth", "link", "realtime"]  # one area each is enough; fewer processes on a shared machine
USE_MESSAGE = "compat: answered without a valid credential"
SPOOFED = "203.0.113.7"  # a client-supplied X-Forwarded-For hop
TENANT_UPDATE = {"service": 999, "latitude": 13.75, "longitude": 100.5}

# One request per tightened area and service: (service, method, path, JSON body).
TIGHTENED = [
    ("link", "PUT", "/service/update", TENANT_UPDATE),
    ("link", "POST", "/link/create/hls", {"room": "NoSuchRoom", "mobile": "0812345678"}),
    ("conference", "PUT", "/room/close", {"room": "NoSuchRoom"}),
    ("conference", "POST", "/case/create", {"room": "NoSuchRoom", "service": 999}),
    ("telemetry", "POST", "/car/task", {"room": "NoSuchRoom", "mobile": "0812345678"}),
    ("recording", "GET", "/record/stopall", None),
    ("realtime", "GET", "/api/realtime/rooms/SomeRoom", None),
]


def _bad_token(suite: Any) -> str:
    return jwt.encode({"iss": suite.env["LIVEKIT_API_KEY"], "exp": 9999999999}, "not-the-secret" * 3, "HS256")


# ---- pure pieces -------------------------------------------------------------------------------------------
def test_client_address_prefers_the_edges_header() -> None:
    assert compat.client_address("10.0.0.9", f"{SPOOFED}, 10.0.0.9", "127.0.0.1") == "10.0.0.9"
    assert compat.client_address(None, f" {SPOOFED} , 10.0.0.9", "127.0.0.1") == SPOOFED  # a gateway's XFF only
    assert compat.client_address("", "", "192.0.2.1") == "192.0.2.1"
    assert compat.client_address(None, None, None) == "unknown"


def test_rejection_reasons() -> None:
    assert compat.rejection(TokenRejected(MISSING_TOKEN_BODY)) == "missing"
    expired = TokenRejected({"status": "FAIL", "data": {"name": "TokenExpiredError", "message": "jwt expired"}})
    assert compat.rejection(expired) == "invalid: jwt expired"


def test_dev_operator_key_is_random_owner_only_and_yields_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run" / "dev-operator-key"
    monkeypatch.delenv("AUTH_API_KEY", raising=False)
    first = dev_operator_key(path)
    assert first.startswith("dev-") and len(first) > 20
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dev_operator_key(path) != first  # a new one per run
    monkeypatch.setenv("AUTH_API_KEY", "from-the-environment")
    assert dev_operator_key(path) == "from-the-environment"
    assert not path.exists()  # no stale key of an earlier run is left for deploy/dev_token.py


# What each service marks as opened by a setting, read in a separate process (importing an app sets up its
# logging, which would take over pytest's).
_MARKED = """
import importlib, json
from servicekit import compat
from servicekit.compat import SETTINGS
opened = {}
for service in SERVICES:
    module = importlib.import_module(f"{service}.app")
    app = getattr(module, "http_app", None) or module.app
    for area, routes in compat.handler_routes(app.routes).items():
        opened.setdefault(SETTINGS[area], []).extend(routes)
realtime = importlib.import_module("realtime.sockets.server")
opened["COMPAT_OPEN_DASHBOARDS"] += list(realtime.COMPAT_NAMESPACES)
print(json.dumps(opened))
"""
_ROUTE = re.compile(r"`((?:GET|POST|PUT|DELETE) /[^`]*)`")
_NAMESPACE = re.compile(r"Socket\.IO `(/[a-z]+)`")


def _normal(route: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", route)  # README writes {id}, the code {notification_id}


def test_readme_cutover_table_lists_exactly_what_the_code_opens() -> None:
    code = f"SERVICES = {discover_services()!r}\n{_MARKED}"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    marked: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    readme = (ROOT / "README.md").read_text(encoding="utf-8").split("## Cutover from the original", 1)[1]
    listed: dict[str, set[str]] = {}
    for row in readme.splitlines():
        cells = row.split(" | ")
        if not row.startswith("| ") or len(cells) != 5:
            continue
        found = re.search(r"COMPAT_OPEN_[A-Z_]+", cells[3])
        setting = found.group(0) if found else cells[3].strip()
        names = {_normal(r) for r in _ROUTE.findall(cells[0])} | set(_NAMESPACE.findall(cells[0]))
        listed.setdefault(setting, set()).update(names)
    for setting in compat.SETTINGS.values():
        routes = {_normal(r) for r in marked.get(setting, []) if not r.startswith("socket.io")}
        namespaces = {r.split()[1] for r in marked.get(setting, []) if r.startswith("socket.io")}
        assert listed.get(setting, set()) == routes | namespaces, setting
    assert listed["COMPAT_OPEN_AUTH_CREATE"] == {"GET /auth/create"}


# ---- the defaults: every area refuses --------------------------------------------------------------------
async def test_auth_create_refuses_without_key_or_token(suite: Any, client: httpx.AsyncClient) -> None:
    if "auth" not in suite.services:
        pytest.skip("needs auth")
    for headers in ({}, {"x-api-key": "wrong"}, {"authorization": f"Bearer {_bad_token(suite)}"}):
        response = await client.get("/auth/create", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["status"] == "FAIL"


@pytest.mark.parametrize(("service", "method", "path", "body"), TIGHTENED)
async def test_tightened_routes_refuse_without_a_valid_token(
    suite: Any, client: httpx.AsyncClient, service: str, method: str, path: str, body: Any
) -> None:
    if service not in suite.services:
        pytest.skip(f"needs {service}")
    missing = await client.request(method, path, json=body)
    assert (missing.status_code, missing.json()) == (200, MISSING_TOKEN_BODY)
    forged = await client.request(method, path, json=body, headers={"authorization": f"Bearer {_bad_token(suite)}"})
    assert forged.json() == {"status": "FAIL", "data": {"name": "JsonWebTokenError", "message": "invalid signature"}}


@pytest.mark.usefixtures("node_client")
async def test_newqueue_refuses_a_socket_without_an_agent_token(suite: Any) -> None:
    if "realtime" not in suite.services:
        pytest.skip("needs realtime")
    for args in ([], ["--token", _bad_token(suite)]):
        listener = await listen(NODE, f"{suite.edge}/newqueue", *args, "--timeout", "8000")
        try:
            line = await listener.next(12)
            assert line == {"type": "connect_error", "message": "Authentication error", "data": None}, args
        finally:
            await listener.close()


def test_no_compat_warning_with_the_defaults(suite: Any) -> None:
    for service in suite.services:
        text = (suite.local.run_dir / f"{service}.log").read_text(errors="replace")
        assert "COMPAT_OPEN_" not in text and USE_MESSAGE not in text, service


# ---- the profile on ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compat_suite(suite: Any) -> Iterator[LocalSuite]:
    """auth, link and realtime with every COMPAT_OPEN_* on, on their own brokers, databases and ports."""
    services = [s for s in COMPAT_SERVICES if s in discover_services()]
    with private_suite(services, {**suite.env, **COMPAT_ENV}, label="compat") as local:
        yield local


def log_lines(local: LocalSuite, service: str) -> list[dict[str, Any]]:
    """The service's JSON log lines so far."""
    lines = []
    for raw in (local.run_dir / f"{service}.log").read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
    return lines


def uses(local: LocalSuite, service: str, route: str) -> list[dict[str, Any]]:
    return [
        line
        for line in log_lines(local, service)
        if line.get("msg") == USE_MESSAGE and line.get("route") == route and line.get("level") == "warning"
    ]


async def use_line(local: LocalSuite, service: str, route: str, seen: int = 0) -> dict[str, Any]:
    """The use line logged after the ``seen`` earlier ones of ``route``."""

    async def probe() -> dict[str, Any] | None:
        found = uses(local, service, route)
        return found[seen] if len(found) > seen else None

    return await until(probe, timeout=10)


def test_each_setting_warns_at_start_up_with_what_it_opens(compat_suite: LocalSuite) -> None:
    def startup(service: str, setting: str) -> list[str]:
        found = [
            line for line in log_lines(compat_suite, service) if line.get("setting") == setting and "routes" in line
        ]
        assert len(found) == 1 and found[0]["level"] == "warning", (service, setting)
        assert setting in found[0]["msg"]
        return found[0]["routes"]

    assert startup("auth", "COMPAT_OPEN_AUTH_CREATE") == ["GET /auth/create"]
    link_routes = startup("link", "COMPAT_OPEN_WRITES")
    assert {"PUT /service/update", "POST /link/create/hls", "POST /link/cartracking", "POST /link/idems"} <= set(
        link_routes
    )
    assert "POST /sms/custom" in link_routes and "POST /link/create" not in link_routes
    realtime = startup("realtime", "COMPAT_OPEN_DASHBOARDS")
    assert {"GET /api/realtime/rooms/{room}", "GET /api/realtime/presence/{room}", "GET /api/realtime/chat/{room}"} <= (
        set(realtime)
    )
    assert {"socket.io /queue", "socket.io /notification"} <= set(realtime)
    # a setting that opens nothing in a service is not announced there
    assert not [line for line in log_lines(compat_suite, "auth") if line.get("setting") == "COMPAT_OPEN_WRITES"]


async def test_auth_create_mints_without_credentials_and_logs_the_use(compat_suite: LocalSuite) -> None:
    async with httpx.AsyncClient(base_url=compat_suite.edge, timeout=30) as http:
        before = len(uses(compat_suite, "auth", "GET /auth/create"))
        response = await http.get("/auth/create", headers={"x-forwarded-for": SPOOFED})
        assert response.status_code == 200 and response.json()["status"] == "OK"
        claims = jwt.decode(response.json()["token"], options={"verify_signature": False})
        assert claims["exp"] - claims["nbf"] <= 90 * 86400  # the original's 9999 days do not come back
        line = await use_line(compat_suite, "auth", "GET /auth/create", before)
        assert line["setting"] == "COMPAT_OPEN_AUTH_CREATE" and line["credential"] == "missing"
        assert line["client"] == "127.0.0.1"  # the edge's X-Real-IP, not the client-supplied hop
        assert line["forwarded_for"] == f"{SPOOFED}, 127.0.0.1" and line["service"] == "auth"
        # the operator key still works and is no use of the profile
        keyed = await http.get("/auth/create", headers={"x-api-key": compat_suite.extra_env["AUTH_API_KEY"]})
        assert keyed.json()["status"] == "OK"
        assert len(uses(compat_suite, "auth", "GET /auth/create")) == before + 1


async def test_writes_answer_without_a_token_and_log_each_use(compat_suite: LocalSuite) -> None:
    route = "PUT /service/update"
    secret = compat_suite.extra_env["LIVEKIT_API_SECRET"]
    valid = jwt.encode({"iss": "devkey", "sub": "agent", "exp": 9999999999, "video": {"roomJoin": False}}, secret)
    expired = jwt.encode({"iss": "devkey", "sub": "agent", "exp": 1}, secret)
    async with httpx.AsyncClient(base_url=compat_suite.edge, timeout=30) as http:
        before = len(uses(compat_suite, "link", route))
        response = await http.put("/service/update", json=TENANT_UPDATE, headers={"x-forwarded-for": SPOOFED})
        assert (response.status_code, response.json()) == (200, {"message": "Service updated successfully"})
        line = await use_line(compat_suite, "link", route, before)
        assert (line["setting"], line["credential"], line["client"]) == ("COMPAT_OPEN_WRITES", "missing", "127.0.0.1")
        # an invalid token is not refused (the original never read it) but is no credential either: logged
        response = await http.put("/service/update", json=TENANT_UPDATE, headers={"authorization": expired})
        assert response.json() == {"message": "Service updated successfully"}
        assert (await use_line(compat_suite, "link", route, before + 1))["credential"] == "invalid: jwt expired"
        # a valid token is handled as usual: no use line
        response = await http.put("/service/update", json=TENANT_UPDATE, headers={"authorization": f"Bearer {valid}"})
        assert response.json() == {"message": "Service updated successfully"}
        # routes outside every area keep their token check: the original required one for /link/create too
        response = await http.post("/link/create", json={"room": "CompatRoom", "mobile": "0812345678"})
        assert response.json() == MISSING_TOKEN_BODY
    # straight at the service (no edge): the first X-Forwarded-For hop is the best there is
    async with httpx.AsyncClient(base_url=compat_suite.url("link"), timeout=30) as direct:
        response = await direct.put("/service/update", json=TENANT_UPDATE, headers={"x-forwarded-for": SPOOFED})
        assert response.json() == {"message": "Service updated successfully"}
    line = await use_line(compat_suite, "link", route, before + 2)
    assert line["client"] == SPOOFED
    assert len(uses(compat_suite, "link", route)) == before + 3


async def test_realtime_views_answer_without_an_agent_token(compat_suite: LocalSuite, suite: Any) -> None:
    route = "GET /api/realtime/rooms/SomeRoom"
    patient = jwt.encode(
        {"iss": "devkey", "sub": "p1", "exp": 9999999999, "video": {"room": "SomeRoom", "roomJoin": True}},
        compat_suite.extra_env["LIVEKIT_API_SECRET"],
    )
    async with httpx.AsyncClient(base_url=compat_suite.edge, timeout=30) as http:
        before = len(uses(compat_suite, "realtime", route))
        response = await http.get("/api/realtime/rooms/SomeRoom")
        assert response.status_code == 200
        assert response.json()["success"] is True and response.json()["room"] == "SomeRoom"
        line = await use_line(compat_suite, "realtime", route, before)
        assert (line["setting"], line["credential"]) == ("COMPAT_OPEN_DASHBOARDS", "missing")
        response = await http.get("/api/realtime/rooms/SomeRoom", headers={"authorization": patient})
        assert response.status_code == 200 and response.json()["success"] is True  # not 403 while the profile is on
        assert (await use_line(compat_suite, "realtime", route, before + 1))["credential"] == "not an agent token"


@pytest.mark.usefixtures("node_client")
async def test_dashboard_sockets_connect_without_a_token_and_get_queue_pages(compat_suite: LocalSuite) -> None:
    before = len(uses(compat_suite, "realtime", "socket.io /newqueue"))
    pages_before = len(uses(compat_suite, "realtime", "socket.io /newqueue queue"))
    dashboard = await socket_client(NODE, f"{compat_suite.edge}/newqueue")
    try:
        await dashboard.connected()
        assert (await dashboard.until("event", "connection-success"))["data"] == {"room": "newqueue"}
        line = await use_line(compat_suite, "realtime", "socket.io /newqueue", before)
        assert (line["setting"], line["credential"], line["client"]) == (
            "COMPAT_OPEN_DASHBOARDS",
            "missing",
            "127.0.0.1",
        )
        # the dashboards' history page, answered to the anonymous socket as the original did; each is a use
        await dashboard.send("queue", {"status": "init", "service": 999, "page": 1, "maxRow": 5})
        page = await dashboard.until("event", "queue", timeout=15)
        assert isinstance(page["data"], dict) and page["data"].get("status") == "data"
        await use_line(compat_suite, "realtime", "socket.io /newqueue queue", pages_before)
    finally:
        await dashboard.close()
    for namespace in ("/queue", "/notification"):
        seen = len(uses(compat_suite, "realtime", f"socket.io {namespace}"))
        listener = await listen(NODE, f"{compat_suite.edge}{namespace}", "--timeout", "3000")
        try:
            assert (await listener.next(12))["type"] == "connect", namespace
        finally:
            await listener.close()
        await use_line(compat_suite, "realtime", f"socket.io {namespace}", seen)


# ---- README: the first token, a link and its detail -----------------------------------------------------------
def readme_walkthrough() -> str:
    """The shell block of README's "First requests"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### First requests", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README: no ```sh block under 'First requests'"
    return match.group(1)


async def test_readme_walkthrough_runs(suite: Any) -> None:
    if not {"auth", "link", "conference"} <= set(suite.services):
        pytest.skip("needs auth, link and conference")
    just = shutil.which("just")
    assert just, "`just` is needed (./dev installs it)"
    port = suite.local.edge_port
    script = readme_walkthrough()
    assert "just token" in script and "localhost:5500" in script
    env = {**os.environ, "PORT": str(port), "AUTH_API_KEY": suite.env["AUTH_API_KEY"]}
    done = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-euo", "pipefail", "-c", script.replace("localhost:5500", f"127.0.0.1:{port}")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    detail = json.loads(done.stdout)
    assert detail["status"] == "OK", detail
    assert detail["data"]["room"] == "DemoRoom" and detail["data"]["token"]
    links = await suite.query("link", "SELECT room FROM link_connect WHERE linkID = %s", (detail["data"]["linkID"],))
    assert links == [{"room": "DemoRoom"}]

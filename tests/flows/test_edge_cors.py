"""CORS through the edge, generated from the route table: every route answers a browser's preflight (204 with the
allow headers, never the route's 404/405) and puts exactly one Access-Control-Allow-Origin on its actual answers;
so do the edge's own replies (unknown paths, 413, 503, /health), Socket.IO and the notification stream.

The session suite runs with CORS_ALLOWED_ORIGINS=* (tests/conftest.py); a second, smaller suite (link, conference,
realtime) runs with a list of origins to check reflection, Vary, credentials and refusals.
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from deploy.edge.routes import Route, load
from deploy.local import LocalSuite
from tests.instances import private_suite

TABLE = load()
ROUTE_ID = {"ids": lambda r: f"{r.service}:{r.path}"}
ORIGIN = "https://app.example"
LISTED = ("https://console.example", "https://patient.example")
UNLISTED = "https://evil.example"
RESTRICTED_SERVICES = ("conference", "link", "realtime")  # a Litestar app, the bare-ASGI hot path, Socket.IO
REQUEST_HEADERS = "authorization,content-type"


def _method(route: Route) -> str:
    """What a browser's preflight asks for: the route's first non-GET method, else GET."""
    return next((m for m in route.methods if m != "GET"), "GET")


def _path(route: Route) -> str:
    """A concrete path; for Socket.IO an Engine.IO long-polling handshake."""
    return route.location + "?EIO=4&transport=polling" if route.websocket else route.sample_path()


def allow_origin(response: httpx.Response) -> str | None:
    """The response's one Access-Control-Allow-Origin (None: absent). Fails on duplicates, which browsers refuse,
    and on ``*`` with credentials, which they refuse too."""
    values = response.headers.get_list("access-control-allow-origin")
    assert len(values) <= 1, f"{len(values)} allow-origin headers: {values}"
    if values == ["*"]:
        assert "access-control-allow-credentials" not in response.headers
    return values[0] if values else None


def varies_on_origin(response: httpx.Response) -> bool:
    return any("origin" in value.lower() for value in response.headers.get_list("vary", split_commas=True))


async def preflight(client: httpx.AsyncClient, path: str, method: str, origin: str) -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": REQUEST_HEADERS,
    }
    return await client.options(path, headers=headers)


async def actual(client: httpx.AsyncClient, route: Route, origin: str) -> httpx.Response:
    """The route's request as a page of ``origin`` sends it; a stream (SSE) is left after its headers."""
    method = _method(route)
    body: dict = {}
    if route.max_body:  # uploads: a real multipart body
        body = {"files": {"myFiles": ("cors.pdf", b"%PDF-1.4\n% cors\n" + b"0" * 200, "application/pdf")}}
    elif method != "GET":
        body = {"json": {}}
    async with client.stream(method, _path(route), headers={"Origin": origin}, **body) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            await response.aread()
    return response


def assert_preflight_allowed(response: httpx.Response, method: str, origin: str) -> None:
    assert response.status_code == 204, (response.status_code, response.text[:200])
    assert allow_origin(response) == origin
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert {method, "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} <= methods
    allowed_headers = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed_headers
    assert int(response.headers["access-control-max-age"]) > 0


# ---- CORS_ALLOWED_ORIGINS=* (the session suite) -------------------------------------------------------------------
@pytest.mark.parametrize("route", TABLE.routes, **ROUTE_ID)
async def test_every_route_answers_a_preflight(suite, client: httpx.AsyncClient, route: Route) -> None:
    response = await preflight(client, _path(route), _method(route), ORIGIN)
    assert_preflight_allowed(response, _method(route), "*")
    assert response.headers["access-control-allow-headers"].lower() == REQUEST_HEADERS  # reflected
    if not route.websocket:
        assert response.headers.get("x-served-by") == route.service  # answered by the owner, not by nginx


@pytest.mark.parametrize("route", TABLE.routes, **ROUTE_ID)
async def test_every_route_answers_with_one_allow_origin(suite, client: httpx.AsyncClient, route: Route) -> None:
    response = await actual(client, route, ORIGIN)
    assert allow_origin(response) == "*", (response.status_code, response.headers)
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
    if not route.websocket:
        assert response.headers.get("x-served-by") == route.service


async def test_a_request_without_origin_gets_the_any_origin_header(suite, client: httpx.AsyncClient) -> None:
    """As the original's cors(): a cached answer fetched without CORS stays readable cross-origin later."""
    for path, served_by in (("/link/getdetail", "link"), ("/no/such/path", None)):
        response = await client.get(path, params={"id": "nope"})
        assert response.headers.get("x-served-by") == served_by
        cors = {name.lower(): value for name, value in response.headers.items() if name.lower().startswith("access-")}
        assert cors == {"access-control-allow-origin": "*"}, (path, response.headers)


async def test_a_multipart_upload_goes_through_with_cors(suite, client: httpx.AsyncClient) -> None:
    pdf = b"%PDF-1.4\n% cors\n" + b"0" * 5000
    response = await client.post(
        "/upload/file",
        params={"linkID": "C" + uuid.uuid4().hex[:8]},
        files={"myFiles": ("cors.pdf", pdf, "application/pdf")},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 200, response.text
    assert allow_origin(response) == "*"


async def test_the_notification_stream_and_socketio_carry_one_allow_origin(suite, client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/notification/events", headers={"Origin": ORIGIN}) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert allow_origin(stream) == "*"
    handshake = await client.get("/socket.io/", params={"EIO": "4", "transport": "polling"}, headers={"Origin": ORIGIN})
    assert handshake.status_code == 200 and '"sid"' in handshake.text
    assert allow_origin(handshake) == "*"


async def test_the_edges_own_replies_carry_cors(suite, client: httpx.AsyncClient) -> None:
    health = await client.get("/health", headers={"Origin": ORIGIN})
    assert health.status_code == 200 and allow_origin(health) == "*"
    root = await client.get("/", headers={"Origin": ORIGIN})
    assert root.json() == {"message": "SMS Link Backend"} and allow_origin(root) == "*"
    unknown = await client.get("/no/such/path", headers={"Origin": ORIGIN})
    assert unknown.status_code == 404 and unknown.json() == {"status": "FAIL", "message": "Not Found"}
    assert allow_origin(unknown) == "*"
    assert_preflight_allowed(await preflight(client, "/no/such/path", "POST", ORIGIN), "POST", "*")
    too_large = await client.post(
        "/link/create", content=b"x" * (1024 * 1024 + 1), headers={"Origin": ORIGIN, "Content-Type": "application/json"}
    )
    assert too_large.status_code == 413 and too_large.json()["status"] == "FAIL"
    assert allow_origin(too_large) == "*"


# ---- CORS_ALLOWED_ORIGINS=<list> (a second suite) -----------------------------------------------------------------
@pytest.fixture(scope="module")
def restricted() -> Iterator[LocalSuite]:
    """link, conference and realtime behind their own edge, with private brokers and databases, allowing LISTED."""
    env = {"CORS_ALLOWED_ORIGINS": ",".join(LISTED), "SMS_ENABLE": "false"}
    with private_suite(RESTRICTED_SERVICES, env, label="cors") as local:
        yield local


@pytest.fixture
async def restricted_client(restricted: LocalSuite) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=restricted.edge, timeout=30) as http:
        yield http


@pytest.mark.parametrize("route", [r for r in TABLE.routes if r.service in RESTRICTED_SERVICES], **ROUTE_ID)
async def test_a_listed_origin_is_reflected_and_others_get_nothing(restricted_client, route: Route) -> None:
    client, method = restricted_client, _method(route)
    for origin in LISTED:
        allowed = await preflight(client, _path(route), method, origin)
        assert_preflight_allowed(allowed, method, origin)
        assert allowed.headers["access-control-allow-credentials"] == "true" and varies_on_origin(allowed)
        answer = await actual(client, route, origin)
        assert allow_origin(answer) == origin, (answer.status_code, answer.headers)
        assert answer.headers["access-control-allow-credentials"] == "true" and varies_on_origin(answer)
    refused = await preflight(client, _path(route), method, UNLISTED)
    assert refused.status_code == 204 and allow_origin(refused) is None
    assert "access-control-allow-methods" not in refused.headers and varies_on_origin(refused)
    answer = await actual(client, route, UNLISTED)  # still served (the browser hides it), without allow headers
    assert allow_origin(answer) is None and "access-control-allow-credentials" not in answer.headers
    if not route.websocket:
        assert answer.headers.get("x-served-by") == route.service


async def test_edge_replies_follow_the_list(restricted_client: httpx.AsyncClient) -> None:
    client, origin = restricted_client, LISTED[1]
    absent = next(r for r in TABLE.routes if r.service not in RESTRICTED_SERVICES and not r.is_prefix)
    for path, status in (("/no/such/path", 404), (absent.path, 503), ("/health", 200)):
        listed = await client.get(path, headers={"Origin": origin})
        assert listed.status_code == status and listed.json()["status"] in ("FAIL", "OK")
        assert allow_origin(listed) == origin and listed.headers["access-control-allow-credentials"] == "true"
        assert varies_on_origin(listed)
        refused = await client.get(path, headers={"Origin": UNLISTED})
        assert refused.status_code == status and allow_origin(refused) is None
        assert "access-control-allow-credentials" not in refused.headers
    assert_preflight_allowed(await preflight(client, "/no/such/path", "PUT", origin), "PUT", origin)
    for path in ("/no/such/path", "/link/getdetail"):  # no Origin: only what does not depend on it
        plain = await client.get(path)
        assert varies_on_origin(plain) and allow_origin(plain) is None
    refused = await preflight(client, "/no/such/path", "PUT", UNLISTED)
    assert refused.status_code == 204 and allow_origin(refused) is None


async def _websocket_status(edge: str, origin: str) -> int:
    """Status line of a websocket upgrade of /socket.io/ through the edge (101 accepted, 403 refused)."""
    url = urlsplit(edge)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: {url.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key}\r\nOrigin: {origin}\r\n\r\n"
        ).encode()
    )
    try:
        line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    return int(line.split()[1])


async def test_a_websocket_upgrade_from_an_unlisted_origin_is_refused(restricted: LocalSuite) -> None:
    # Browsers apply no CORS to websockets: the Origin check is the only guard.
    assert await _websocket_status(restricted.edge, LISTED[0]) == 101
    assert await _websocket_status(restricted.edge, UNLISTED) == 403

"""The authorization matrix (README "Authorization matrix"): every operation of the route table, called through the
edge with no token, an expired token, a token signed with another secret, a participant token of another room and
the right credential, answers as its declared policy (deploy/routes.toml ``policy``) says.

Refused: 401/403 in the original's envelope, or, on bearer-token routes, the original's auth failure (HTTP 200
``{"status":"FAIL","message":"Invalid token"}`` / ``{"status":"FAIL","data":{"name":..}}``; README). Not refused:
anything else (bad example input may still answer a FAIL envelope), never a 500.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from deploy.edge.openapi import DOCUMENT, owning_route
from deploy.edge.routes import POLICIES, RouteTable, load, problems
from tests.fakes.livekit_webhooks import sign

TABLE = load()
DOC: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
OPERATIONS = [(m, p, op) for p, ops in DOC["paths"].items() for m, op in ops.items()]
CASES = ("none", "expired", "other_secret", "other_room", "own_room", "right")
# Which cases each policy refuses (the rest must not be refused). own_room: a participant token of the room the
# request names (the examples' room).
REFUSES: dict[str, set[str]] = {
    "open": set(),
    "link": set(),
    "token": {"none", "expired", "other_secret"},
    "room": {"none", "expired", "other_secret", "other_room"},
    "agent": {"none", "expired", "other_secret", "other_room", "own_room"},
    "operator": {"none", "expired", "other_secret", "other_room", "own_room"},
    "livekit": {"none", "expired", "other_secret", "other_room", "own_room"},
}
JWT_ERRORS = {"TokenExpiredError", "JsonWebTokenError", "NotBeforeError"}
ROOM = f"authz{uuid.uuid4().hex[:8]}"  # the examples' room, so the calls touch nothing of other tests
OTHER_ROOM = f"other{uuid.uuid4().hex[:8]}"
WEBHOOK_BODY = json.dumps({"event": "room_started", "id": f"EV_{uuid.uuid4().hex[:12]}",
                           "room": {"sid": "RM_authz", "name": ROOM}}).encode()  # fmt: skip


def test_every_operation_declares_a_known_policy_matching_the_document() -> None:
    assert len(OPERATIONS) > 80 and set(REFUSES) == set(POLICIES)
    for method, path, op in OPERATIONS:
        route = owning_route(TABLE, path, method)
        assert route is not None, (method, path)
        assert route.policy(method) in POLICIES, (method, path)
        assert op["x-policy"] == route.policy(method), (method, path)
    test = next(r for r in TABLE.routes if r.path == "/test")  # unmute everyone in a room
    assert test.policy("GET") == "agent" and test.is_destructive("GET")


def test_destructive_routes_are_never_open() -> None:
    assert problems(TABLE) == []
    open_writes = [
        f"{m} {r.path}" for r in TABLE.routes for m in r.methods if r.is_destructive(m) and r.policy(m) == "open"
    ]
    assert open_writes == []
    # The check itself bites: the same table with GET /test declared open is refused.
    routes = tuple(
        r if r.path != "/test" else type(r)(**{**r.__dict__, "policies": {"GET": "open"}}) for r in TABLE.routes
    )
    bad = RouteTable(TABLE.edge_port, TABLE.service_ports, routes, TABLE.rate_limits)
    assert problems(bad) == ["GET /test changes state and is open"]


def _token(secret: str, *, exp_in: int = 3600, room: str | None = None) -> str:
    now = int(time.time())
    video: dict[str, Any] = {"roomJoin": room is not None}
    claims: dict[str, Any] = {"iss": "devkey", "sub": "authz-" + uuid.uuid4().hex[:6], "name": "Authz", "nbf": now - 5}
    if room:
        video["room"] = room
        claims["metadata"] = json.dumps({"userType": "user", "linkID": "AbCdEfGh"})
    claims |= {"video": video, "exp": now + exp_in}
    return jwt.encode(claims, secret, algorithm="HS256")


def _headers(suite: Any, case: str, policy: str, method: str, path: str) -> dict[str, str]:
    secret, key = suite.env["LIVEKIT_API_SECRET"], suite.env["LIVEKIT_API_KEY"]
    if case == "none":
        return {}
    if case == "expired":
        return {"authorization": f"Bearer {_token(secret, exp_in=-3600)}"}
    if case == "other_secret":
        return {"authorization": f"Bearer {_token('not-' + secret)}"}
    if case == "other_room":
        return {"authorization": f"Bearer {_token(secret, room=OTHER_ROOM)}"}
    if case == "own_room":
        return {"authorization": f"Bearer {_token(secret, room=ROOM)}"}
    if policy in ("token", "room", "agent"):
        return {"authorization": f"Bearer {suite.agent_token()}"}
    if policy == "operator":
        return {"x-api-key": suite.env["AUTH_API_KEY"]}
    if policy == "livekit":
        return {"authorization": sign(WEBHOOK_BODY, key, secret), "content-type": "application/webhook+json"}
    return {}


def _example(name: str, value: Any) -> Any:
    return ROOM if name in ("room", "roomName") else value


def _request(method: str, path: str, op: dict[str, Any]) -> dict[str, Any]:
    url, params = path, {}
    for param in op.get("parameters", []):
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", str(param.get("example", "1")))
        elif param["in"] == "query" and "example" in param:
            params[param["name"]] = _example(param["name"], param["example"])
    request: dict[str, Any] = {"url": url, "params": params}
    content = op.get("requestBody", {}).get("content", {})
    if path == "/webhook":
        request["content"] = WEBHOOK_BODY
    elif "multipart/form-data" in content:
        fields = content["multipart/form-data"]["schema"]["properties"]
        request["files"] = {n: ("authz.txt", b"x") for n, s in fields.items() if s.get("format") == "binary"}
        request["data"] = {n: "text" for n, s in fields.items() if s.get("format") != "binary"}
    elif "application/json" in content:
        example = content["application/json"].get("example") or {}
        request["json"] = {k: _example(k, v) for k, v in example.items()}
    return request


async def _call(client: httpx.AsyncClient, method: str, request: dict[str, Any], headers: dict[str, str]) -> Any:
    """(status, decoded JSON answer or None); a Server-Sent Events stream is left after its head."""
    async with client.stream(method.upper(), **request, headers=headers) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response.status_code, None
        await response.aread()
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def refused(status: int, answer: Any) -> bool:
    """A refusal in the original's envelope: 401/403 with a FAIL body, or the original's auth failure (HTTP 200).
    The /api/realtime/* views keep the original realtime proxy's ``{"success":false}`` envelope."""
    if not isinstance(answer, dict):
        return False
    failed = answer.get("status") == "FAIL" or answer.get("success") is False
    if status in (401, 403):
        assert failed, f"a {status} answer not in the envelope: {answer}"
        return True
    data = answer.get("data")
    jwt_failure = isinstance(data, dict) and data.get("name") in JWT_ERRORS
    return (
        status == 200 and answer.get("status") == "FAIL" and (answer.get("message") == "Invalid token" or jwt_failure)
    )


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in OPERATIONS], ids=lambda v: str(v))
async def test_every_operation_answers_as_its_policy_says(suite, method: str, path: str) -> None:
    op = DOC["paths"][path][method]
    policy = op["x-policy"]
    route = owning_route(TABLE, path, method)
    assert route is not None and route.service in suite.services
    request = _request(method, path, op)
    wrong = []
    async with httpx.AsyncClient(base_url=suite.edge, timeout=20) as client:
        for case in CASES:
            status, answer = await _call(client, method, request, _headers(suite, case, policy, method, path))
            assert status != 500 and status != 429, (case, status, answer)
            if refused(status, answer) != (case in REFUSES[policy]):
                wrong.append((case, status, str(answer)[:160]))
        if policy == "link":  # the link's credential is in the request: without it, a FAIL answer
            bare = {"url": request["url"], "params": {}, **({"json": {}} if method != "get" else {})}
            status, answer = await _call(client, method, bare, {})
            if not (status >= 400 or isinstance(answer, dict) and answer.get("status") == "FAIL"):
                wrong.append(("no link credential", status, str(answer)[:160]))
    assert wrong == [], f"{method.upper()} {path} is declared {policy!r}"

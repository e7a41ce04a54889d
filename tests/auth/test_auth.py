"""/auth/* through the edge: agent tokens and link password checks."""

from __future__ import annotations

import hashlib
import time

import httpx
import jwt
import pytest

from auth.domain import IDENTITY_ALPHABET


@pytest.fixture
async def edge(suite):
    async with httpx.AsyncClient(base_url=suite.edge, timeout=15) as client:
        yield client


def _decode(suite, token: str) -> dict:
    return jwt.decode(token, suite.env["LIVEKIT_API_SECRET"], algorithms=["HS256"])


async def test_create_token_refuses_anonymous_callers(edge) -> None:
    response = await edge.get("/auth/create")
    assert response.status_code == 401
    assert response.json() == {"status": "FAIL", "message": "Invalid token"}
    response = await edge.get("/auth/create", headers={"x-api-key": "wrong"})
    assert response.status_code == 401


async def test_create_token_with_operator_key_has_the_original_claims(suite, edge) -> None:
    response = await edge.get("/auth/create", headers={"x-api-key": suite.env["AUTH_API_KEY"]})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "OK" and set(body) == {"status", "token"}
    claims = _decode(suite, body["token"])
    assert claims["name"] == "Example"
    assert claims["video"] == {"roomJoin": False}
    assert claims["iss"] == suite.env["LIVEKIT_API_KEY"]
    assert len(claims["sub"]) == 10 and set(claims["sub"]) <= set(IDENTITY_ALPHABET)
    lifetime_days = (claims["exp"] - claims["nbf"]) / 86400
    assert 29.9 < lifetime_days < 30.1  # capped, not the original's 9999 days
    assert abs(claims["nbf"] - time.time()) < 60


async def test_create_token_with_a_valid_agent_token(suite, edge) -> None:
    response = await edge.get("/auth/create", headers={"Authorization": f"Bearer {suite.agent_token()}"})
    assert response.status_code == 200 and response.json()["status"] == "OK"
    # a raw token without the "Bearer " prefix works too, as in the original
    response = await edge.get("/auth/create", headers={"Authorization": suite.agent_token()})
    assert response.status_code == 200


async def test_a_participant_token_does_not_renew_into_an_agent_token(suite, edge) -> None:
    """GET /link/getdetail mints room-bound participant tokens for anybody holding a link: 403, no token."""
    patient = suite.agent_token(video={"room": "SomeRoom", "roomJoin": True})
    response = await edge.get("/auth/create", headers={"Authorization": f"Bearer {patient}"})
    assert (response.status_code, response.json()) == (403, {"status": "FAIL", "message": "Forbidden"})


@pytest.mark.parametrize(
    ("token", "name", "message"),
    [
        ("not-a-jwt", "JsonWebTokenError", "jwt malformed"),
        (jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "other-secret", "HS256"), "JsonWebTokenError",
         "invalid signature"),
    ],
)  # fmt: skip
async def test_create_token_rejects_bad_tokens(edge, token, name, message) -> None:
    response = await edge.get("/auth/create", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json() == {"status": "FAIL", "data": {"name": name, "message": message}}


async def test_create_token_rejects_expired_tokens(suite, edge) -> None:
    expired = suite.agent_token(ttl=-120)
    response = await edge.get("/auth/create", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["data"] == {"name": "TokenExpiredError", "message": "jwt expired"}


async def test_verifyuser_unknown_link(edge) -> None:
    response = await edge.post("/auth/verifyuser", json={"linkID": "zzzzzz", "password": "x", "userName": "a"})
    assert response.status_code == 200
    assert response.json() == {"status": "FAIL", "message": "invalid id or password"}


@pytest.mark.parametrize(
    "body",
    [{}, {"linkID": ""}, {"linkID": ["a"]}, {"linkID": "x" * 51}, {"linkID": "abc", "password": {"$ne": 1}}],
)
async def test_verifyuser_bad_input(edge, body) -> None:
    response = await edge.post("/auth/verifyuser", json=body)
    assert response.status_code == 400
    assert response.json()["status"] == "FAIL"


async def test_verifyuser_garbage_json(edge) -> None:
    response = await edge.post("/auth/verifyuser", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"status": "FAIL", "message": "Invalid JSON body"}


async def _create_link(suite, edge, **fields) -> dict:
    headers = {"Authorization": f"Bearer {suite.agent_token()}"}
    body = {"room": "authroom", "mobile": "0812345678", "linkType": "video", "sms": 0, **fields}
    response = await edge.post("/link/create", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_verifyuser_password_flow(suite, edge) -> None:
    link = await _create_link(suite, edge, password="s3cret", userName="Nurse", isAdmin="1")
    wrong = await edge.post("/auth/verifyuser", json={"linkID": link["linkID"], "password": "nope"})
    assert wrong.json() == {"status": "FAIL", "message": "invalid id or password"}
    # form bodies work like JSON bodies, as with the original's body parsers
    ok = await edge.post("/auth/verifyuser", data={"linkID": link["linkID"], "password": "s3cret", "userName": "N"})
    body = ok.json()
    assert body["status"] == "OK", body
    data = body["data"]
    assert set(data) >= {"identity", "userName", "token", "conference", "color"}
    claims = _decode(suite, data["token"])
    assert claims["video"]["room"] == link["room"]
    assert claims["video"]["roomJoin"] is True
    assert '"userType":"admin"' in claims["metadata"].replace(" ", "")


async def test_verifyuser_accepts_an_old_md5_password_once_then_rehashes(suite, edge) -> None:
    link = await _create_link(suite, edge, password="placeholder")
    legacy = hashlib.md5(b"legacy-pw").hexdigest()  # noqa: S324 - a hash as the original stored it
    await suite.execute("link", "UPDATE link_connect SET password = %s WHERE linkID = %s", (legacy, link["linkID"]))
    ok = await edge.post("/auth/verifyuser", json={"linkID": link["linkID"], "password": "legacy-pw"})
    assert ok.json()["status"] == "OK"
    rows = await suite.query("link", "SELECT password FROM link_connect WHERE linkID = %s", (link["linkID"],))
    assert rows[0]["password"].startswith("$argon2")
    again = await edge.post("/auth/verifyuser", json={"linkID": link["linkID"], "password": "legacy-pw"})
    assert again.json()["status"] == "OK"

"""Per-client rate limits at the edge (README "Rate limits"): past a zone's limit the edge answers 429 in the
original's envelope; under it nothing is refused; the limit is per client address; exempt addresses are never
limited. A private suite (link and auth behind their own edge) with low limits from settings and no loopback
exemption, so the harness's suite and the benchmarks keep theirs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from deploy.edge.generate import rate_limits_from, render_nginx
from deploy.edge.routes import RateLimit, load
from deploy.local import LOOPBACK, LocalSuite
from tests.instances import private_suite

TOO_MANY = {"status": "FAIL", "message": "Too Many Requests"}
LIMITED_ENV = {
    "CORS_ALLOWED_ORIGINS": "*",
    "EDGE_RATE_LIMIT_EXEMPT": "127.0.0.3",
    "EDGE_RATE_LIMIT_LINK_DETAIL": "1r/s,3",
    "EDGE_RATE_LIMIT_LINK_WRITE": "5r/s,0",
    "EDGE_RATE_LIMIT_PASSWORD": "2r/m,1",
}


def test_settings_override_the_tables_limits() -> None:
    table = load()
    limits, exempt = rate_limits_from(table, {"EDGE_RATE_LIMIT_PASSWORD": "3r/m"}, exempt_default=LOOPBACK)
    assert limits["password"] == RateLimit("3r/m", table.rate_limits["password"].burst)
    assert limits["webhook"] == table.rate_limits["webhook"] and exempt == ["127.0.0.1", "::1"]
    assert rate_limits_from(table, {"EDGE_RATE_LIMIT_EXEMPT": ""}, exempt_default=LOOPBACK)[1] == []
    assert rate_limits_from(table, {"EDGE_RATE_LIMITS": "off"}) == ({}, [])
    for bad in ({"EDGE_RATE_LIMIT_UPLOAD": "lots"}, {"EDGE_RATE_LIMIT_EXEMPT": "localhost"}):
        with pytest.raises(ValueError):
            rate_limits_from(table, bad)


def test_every_public_route_is_limited_in_the_generated_edge() -> None:
    table = load()
    limited = {r.path for r in table.routes if r.rate_limit}
    public = {"/link/getdetail", "/user/joingenerate", "/auth/verifyuser", "/webhook", "/upload/file", "/upload/video",
              "/link/update/latlng", "/link/multilatlng/send"}  # fmt: skip
    assert public <= limited
    conf = render_nginx(table, {s: f"127.0.0.1:{p}" for s, p in table.service_ports.items()}, listen="5500")
    for route in table.routes:
        if route.rate_limit:
            assert f"location = {route.location} {{ proxy_pass http://svc_{route.service}; limit_req zone=" in conf
    assert "error_page 429 = @too_many;" in conf and "geo $edge_rate_exempt { default 0; }" in conf


@pytest.fixture(scope="module")
def limited() -> Iterator[LocalSuite]:
    with private_suite(["link", "auth"], LIMITED_ENV, label="ratelimit") as local:
        yield local


def _client(edge: str, source: str) -> httpx.AsyncClient:
    """A client of the edge from the loopback address ``source`` (127.0.0.x: another client address)."""
    return httpx.AsyncClient(base_url=edge, timeout=10, transport=httpx.AsyncHTTPTransport(local_address=source))


async def test_past_the_limit_the_edge_answers_429_in_the_envelope(limited: LocalSuite) -> None:
    async with _client(limited.edge, "127.0.0.1") as client:
        answers = [await client.get("/link/getdetail", params={"linkId": "nosuchlk"}) for _ in range(12)]
        codes = [a.status_code for a in answers]
        # 1 r/s with a burst of 3: the first four get the service's answer, most of the rest 429.
        assert 429 not in codes[:4] and codes.count(429) >= 6, codes
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.json() == TOO_MANY and refused.headers["retry-after"] == "1"
        assert refused.headers.get("x-served-by") is None  # answered by the edge, never reaching link
        assert refused.headers.get("access-control-allow-origin") == "*"  # a browser can read why
    async with _client(limited.edge, "127.0.0.2") as other:  # another client address has its own allowance
        assert (await other.get("/link/getdetail", params={"linkId": "nosuchlk"})).status_code != 429
    async with _client(limited.edge, "127.0.0.3") as exempt:  # EDGE_RATE_LIMIT_EXEMPT
        codes = [(await exempt.get("/link/getdetail", params={"linkId": "nosuchlk"})).status_code for _ in range(12)]
        assert 429 not in codes, codes


async def test_password_checks_are_limited_per_minute(limited: LocalSuite) -> None:
    async with _client(limited.edge, "127.0.0.4") as client:
        body = {"linkID": "nosuchlk", "password": "guess"}
        codes = [(await client.post("/auth/verifyuser", json=body)).status_code for _ in range(5)]
        assert 429 not in codes[:2] and codes[2:] == [429, 429, 429], codes


async def test_under_the_limit_nothing_is_refused(limited: LocalSuite) -> None:
    async with _client(limited.edge, "127.0.0.5") as client:
        for _ in range(8):  # 5 r/s without burst: one request every 250 ms stays under it
            answer = await client.post("/link/update/latlng", json={"linkID": "nosuchlk", "lat": 13.7, "lng": 100.5})
            assert answer.status_code != 429, answer.text
            await asyncio.sleep(0.25)


async def test_the_harness_suite_exempts_loopback(suite) -> None:
    """The shared suite (and the benchmarks) run the local edge with loopback exempt: no 429 at any pace."""
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as client:
        codes = [(await client.post("/auth/verifyuser", json={"linkID": "nosuchlk"})).status_code for _ in range(15)]
    assert 429 not in codes, codes

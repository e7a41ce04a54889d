"""The route table, the generated edge configs and the running services agree."""

from __future__ import annotations

import re

import httpx
import pytest

from deploy.edge import generate
from deploy.edge.routes import Route, load
from deploy.local import discover_services

TABLE = load()


def _openapi_path(route: Route) -> str:
    return re.sub(r":(\w+)", r"{\1}", route.path)


def test_generated_edge_files_are_up_to_date() -> None:
    assert generate.main(["--check"]) == 0, "run `python -m deploy.edge.generate` and commit the result"


def test_every_route_is_owned_by_an_existing_service() -> None:
    services = set(discover_services())
    unowned = [r.path for r in TABLE.routes if r.service not in services]
    assert unowned == []
    assert set(TABLE.service_ports) == services


def test_no_path_is_claimed_twice() -> None:
    seen: dict[tuple[bool, str], str] = {}
    for route in TABLE.routes:
        key = (route.is_prefix, route.location)
        assert seen.setdefault(key, route.service) == route.service, route.path


@pytest.fixture(scope="module")
async def openapi(suite) -> dict[str, dict]:
    paths: dict[str, dict] = {}
    async with httpx.AsyncClient(timeout=20) as client:
        for service in suite.services:
            response = await client.get(f"{suite.url(service)}/schema/openapi.json")
            assert response.status_code == 200 and "paths" in response.json(), (service, response.text[:500])
            paths[service] = response.json()["paths"]
    return paths


@pytest.mark.parametrize("route", TABLE.routes, ids=lambda r: f"{r.service}:{r.path}")
async def test_route_reaches_its_owner(suite, openapi, route: Route) -> None:
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as client:
        if route.websocket:
            # Socket.IO: an Engine.IO long-polling handshake through the edge.
            response = await client.get(route.location, params={"EIO": "4", "transport": "polling"})
            if route.state == "built":
                assert response.status_code == 200 and '"sid"' in response.text
            else:
                assert response.headers.get("x-served-by") == route.service
            return
        # Streamed: a Server-Sent Events route (/notification/events) never ends, so only its head is read.
        async with client.stream(route.methods[0], route.sample_path()) as response:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                await response.aread()
    assert response.headers.get("x-served-by") == route.service, (response.status_code, response.text[:200])
    served = _openapi_path(route) in openapi[route.service] or (
        route.is_prefix and any(p.startswith(route.location) for p in openapi[route.service])
    )
    if route.state == "built":
        assert served, f"{route.service} does not serve {route.path}"
    else:
        # Planned: the edge already routes it to the owner; mark it built when the owner serves it.
        assert not served, f'{route.path} is served now: set state = "built" in deploy/routes.toml'
        assert response.status_code == 404
        assert response.json() == {"status": "FAIL", "message": "Not Found"}


async def test_edge_root_and_aggregated_health(suite) -> None:
    async with httpx.AsyncClient(base_url=suite.edge, timeout=10) as client:
        root = await client.get("/")
        assert root.json() == {"message": "SMS Link Backend"}
        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json() == {"status": "OK", "service": "edge", "checks": dict.fromkeys(suite.services, True)}
        unknown = await client.get("/no/such/path")
        assert unknown.status_code == 404
        assert unknown.json() == {"status": "FAIL", "message": "Not Found"}

"""Tenants of link: GET /service, GET /service/get, PUT /service/update (through the edge)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


async def _tenant(suite: Any, service: int) -> dict[str, Any]:
    rows = await suite.query("link", "SELECT * FROM services WHERE id = %s", (service,))
    assert len(rows) == 1
    return rows[0]


async def _make_tenant(suite: Any, service: int) -> None:
    await suite.execute(
        "link",
        "INSERT IGNORE INTO services (id, name, webTitle, prefixTextVideoSMS, prefixTextLocationSMS, domainsVideo, "
        "domainsLocation, smsSenderName, logo, titleColor, latitude, longitude) "
        "VALUES (%s, 'Tenant', 'Title', 'Video', 'Loc', 'https://v1.example,https://v2.example', "
        "'https://loc.example', 'SENDER', ' t.png ', '#112233', 13.5, 100.25)",
        (service,),
    )


async def test_get_service_answers_public_fields_with_logo_url(suite: Any) -> None:
    await _make_tenant(suite, 501)
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.get(f"{suite.edge}/service", params={"service": "501"})
        default = await client.get(f"{suite.edge}/service", params={"service": "999"})
    assert reply.status_code == 200
    assert reply.json() == {
        "serviceId": 501,
        "name": "Tenant",
        "webTitle": "Title",
        "logo": "/logo/t.png",  # API_URL is empty in the suite
        "titleColor": "#112233",
        "latitude": "13.500000000",
        "longitude": "100.250000000",
    }
    assert default.json()["serviceId"] == 999 and default.json()["logo"] == "/logo/service1.png"


@pytest.mark.parametrize("value", ["", "12345678", "abc", "1' OR '1'='1", "99999999999", "-1"])
async def test_get_service_unknown_is_404_text(suite: Any, value: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.get(f"{suite.edge}/service", params={"service": value})
    assert reply.status_code == 404 and reply.text == "Invalid service"


async def test_service_by_room(suite: Any) -> None:
    await _make_tenant(suite, 502)
    async with httpx.AsyncClient(timeout=15) as client:
        created = await client.post(
            f"{suite.edge}/link/create", json={"room": "TenantRoom", "service": 502}, headers=_auth(suite)
        )
        assert created.status_code == 200, created.text
        found = await client.get(f"{suite.edge}/service/get", params={"room": "TenantRoom"})
        missing = await client.get(f"{suite.edge}/service/get", params={"room": "NoSuchRoomAtAll"})
        empty = await client.get(f"{suite.edge}/service/get")
        injected = await client.get(f"{suite.edge}/service/get", params={"room": "x' OR '1'='1"})
    assert found.status_code == 200 and found.json()["serviceId"] == 502 and found.json()["name"] == "Tenant"
    assert missing.status_code == 404
    assert missing.json() == {"error": "Room not found or has no associated service"}
    assert empty.status_code == 400 and empty.json() == {"error": "Room parameter is required"}
    assert injected.status_code == 404


async def test_update_service_requires_token(suite: Any) -> None:
    await _make_tenant(suite, 503)
    before = await _tenant(suite, 503)
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.put(
            f"{suite.edge}/service/update", json={"service": 503, "name": "Hacked", "latitude": 1, "longitude": 2}
        )
    assert reply.status_code == 200 and reply.json() == {"status": "FAIL", "message": "Invalid token"}
    assert await _tenant(suite, 503) == before


async def test_update_service_sets_fields(suite: Any) -> None:
    await _make_tenant(suite, 504)
    body = {
        "service": 504,
        "name": "New name",
        "latitude": "14.25",
        "longitude": 101.5,
        "domainsVideo": "https://a.example, https://b.example:8443/app",
        "smsSenderName": "NEWSENDER",
        "titleColor": "#abcdef",
    }
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.put(f"{suite.edge}/service/update", json=body, headers=_auth(suite))
    assert reply.status_code == 200 and reply.json() == {"message": "Service updated successfully"}
    row = await _tenant(suite, 504)
    assert (row["name"], str(row["latitude"]), str(row["longitude"])) == ("New name", "14.250000000", "101.500000000")
    assert row["domainsVideo"] == "https://a.example, https://b.example:8443/app"
    assert (row["smsSenderName"], row["titleColor"], row["webTitle"]) == ("NEWSENDER", "#abcdef", "Title")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"service": 505, "name": "x"}, 400),  # no position
        ({"latitude": 1, "longitude": 2}, 400),  # no service
        ({"service": 505, "latitude": 91, "longitude": 2}, 400),
        ({"service": 505, "latitude": 1, "longitude": "east"}, 400),
        ({"service": "505; DROP TABLE services", "latitude": 1, "longitude": 2}, 400),
        ({"service": 505, "latitude": 1, "longitude": 2, "name": "n" * 201}, 400),
        ({"service": 505, "latitude": 1, "longitude": 2, "domainsVideo": "javascript:alert(1)"}, 400),
        ({"service": 505, "latitude": 1, "longitude": 2, "domainsLocation": "https://ok.example,not a url"}, 400),
        ({"service": 505, "latitude": 1, "longitude": 2, "logo": "../../etc/passwd"}, 400),
        ({"service": 505, "latitude": 1, "longitude": 2, "titleColor": "red;}"}, 400),
        ({"service": 505, "latitude": 1, "longitude": 2, "unknownColumn": "x"}, 400),
        ({"service": 505, "latitude": 1, "longitude": 2, "name": ["list"]}, 400),
        ({"service": 98765, "latitude": 1, "longitude": 2, "name": "ghost"}, 404),
    ],
)
async def test_update_service_bad_input_writes_nothing(suite: Any, body: dict[str, Any], status: int) -> None:
    await _make_tenant(suite, 505)
    before = await _tenant(suite, 505)
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.put(f"{suite.edge}/service/update", json=body, headers=_auth(suite))
    assert reply.status_code == status, reply.text
    assert await _tenant(suite, 505) == before
    assert await suite.query("link", "SELECT id FROM services WHERE id = 98765") == []

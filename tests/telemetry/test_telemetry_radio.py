"""GET /radio/* through the edge: a read-through proxy to the radio location API (tests/fakes/radio_api.py).

The API's body comes back unchanged, what it answered is cached in radio_devices / radio_locations (latest fix
per radio), HTTP Basic credentials are sent, the API down / slow / answering garbage gives a 502/503 envelope
and nothing written, and a path id that is not a plain token is refused with a 400 before any API call."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import httpx
import pytest


@pytest.fixture
async def client(suite: Any):
    suite.radio_api.reset()
    async with httpx.AsyncClient(base_url=suite.edge, timeout=15) as c:
        yield c
    suite.radio_api.reset()


def _id() -> int:
    return random.randint(100_000, 2_000_000_000)


async def _device(suite: Any, ident: int) -> list[dict[str, Any]]:
    return await suite.query(
        "telemetry", "SELECT id, radioNo, radioName, status, serialNo FROM radio_devices WHERE id = %s", (ident,)
    )


async def _location(suite: Any, ident: int) -> list[dict[str, Any]]:
    return await suite.query("telemetry", "SELECT * FROM radio_locations WHERE id = %s", (ident,))


async def test_device_list_is_passed_through_and_cached(suite: Any, client: httpx.AsyncClient) -> None:
    api = suite.radio_api
    ident = _id()
    api.devices[str(ident)] = {
        "id": ident, "radioNo": "R-001", "radioName": "Ambulance 1", "status": "active", "serialNo": "SN123",
        "firmware": "2.1",  # fields the cache ignores still reach the client
    }  # fmt: skip
    answer = await client.get("/radio/device")
    assert answer.status_code == 200
    assert answer.headers["x-served-by"] == "telemetry"
    assert answer.json() == {"status": "1", "message": "Success", "resultData": [api.devices[str(ident)]]}
    assert [c.path for c in api.calls] == ["/Device"]
    assert api.calls[0].authorization == api.expected_authorization
    assert await _device(suite, ident) == [
        {"id": ident, "radioNo": "R-001", "radioName": "Ambulance 1", "status": "active", "serialNo": "SN123"}
    ]
    api.devices[str(ident)]["radioName"] = "Ambulance 1B"
    api.devices[str(ident)]["status"] = "inactive"
    assert (await client.get("/radio/device")).status_code == 200
    rows = await _device(suite, ident)
    assert len(rows) == 1 and rows[0]["radioName"] == "Ambulance 1B" and rows[0]["status"] == "inactive"


async def test_device_list_without_success_is_answered_but_not_cached(suite: Any, client: httpx.AsyncClient) -> None:
    ident = _id()
    body = {"status": "0", "message": "Quota exceeded", "resultData": [{"id": ident, "radioNo": "R-9"}]}
    suite.radio_api.override("/Device", 200, body)
    answer = await client.get("/radio/device")
    assert answer.status_code == 200 and answer.json() == body
    assert await _device(suite, ident) == []


async def test_one_device(suite: Any, client: httpx.AsyncClient) -> None:
    api = suite.radio_api
    ident = _id()
    api.devices[str(ident)] = {
        "id": ident,
        "radioNo": "R-7",
        "radioName": "Unit 7",
        "status": "active",
        "serialNo": None,
    }
    answer = await client.get(f"/radio/device/{ident}")
    assert answer.status_code == 200
    assert answer.json() == {"status": "1", "message": "Success", "resultData": api.devices[str(ident)]}
    assert api.calls[-1].path == f"/Device/{ident}"
    assert await _device(suite, ident) == [
        {"id": ident, "radioNo": "R-7", "radioName": "Unit 7", "status": "active", "serialNo": None}
    ]
    unknown = _id()
    missing = await client.get(f"/radio/device/{unknown}")
    assert missing.status_code == 200
    assert missing.json() == {"status": "1", "message": "Success", "resultData": None}
    assert await _device(suite, unknown) == []


async def test_locations_keep_the_latest_fix_per_radio(suite: Any, client: httpx.AsyncClient) -> None:
    api = suite.radio_api
    ident = _id()
    radio_no = f"R-{ident}"
    fix = {
        "logId": 9981, "id": ident, "radioNo": radio_no, "radioName": "Ambulance 1", "accuracy": 5,
        "gpsDateTime": "2024-05-01 10:00:00", "latitude": 13.75, "longitude": 100.5, "speed": 40, "emergency": 0,
    }  # fmt: skip
    api.locations[radio_no] = fix
    answer = await client.get("/radio/location")
    assert answer.status_code == 200
    assert answer.json() == {"status": "1", "message": "Success", "resultData": [fix]}
    [row] = await _location(suite, ident)
    assert row["logId"] == 9981 and row["radioNo"] == radio_no and row["radioName"] == "Ambulance 1"
    assert row["latitude"] == Decimal("13.750000000") and row["longitude"] == Decimal("100.500000000")
    assert row["accuracy"] == 5 and row["speed"] == 40 and row["emergency"] == 0
    assert str(row["gpsDateTime"]) == "2024-05-01 10:00:00"

    api.locations[radio_no] = {**fix, "logId": 9990, "latitude": 13.8, "emergency": 1}
    one = await client.get(f"/radio/location/{radio_no}")
    assert one.status_code == 200 and one.json()["resultData"] == api.locations[radio_no]
    assert api.calls[-1].path == f"/Location/{radio_no}"
    rows = await _location(suite, ident)
    assert len(rows) == 1
    assert rows[0]["logId"] == 9990 and rows[0]["latitude"] == Decimal("13.800000000") and rows[0]["emergency"] == 1


async def test_unusable_items_are_skipped_and_odd_values_stored_as_null(suite: Any, client: httpx.AsyncClient) -> None:
    api = suite.radio_api
    good, other = _id(), _id()
    api.locations["bad"] = {"id": "xyz'; DROP TABLE radio_locations; --", "radioNo": "bad"}
    api.locations["odd"] = {"id": good, "radioNo": "odd", "latitude": 999, "longitude": "abc", "gpsDateTime": "soon"}
    api.locations["list"] = {"id": other, "radioNo": {"nested": True}, "speed": "fast", "emergency": [1]}
    answer = await client.get("/radio/location")
    assert answer.status_code == 200 and len(answer.json()["resultData"]) == 3
    [row] = await _location(suite, good)
    assert row["latitude"] is None and row["longitude"] is None and row["gpsDateTime"] is None
    [row] = await _location(suite, other)
    assert row["radioNo"] is None and row["speed"] is None and row["emergency"] is None
    assert (await suite.query("telemetry", "SELECT COUNT(*) AS n FROM radio_locations"))[0]["n"] >= 2


@pytest.mark.parametrize(
    ("mode", "delay", "status", "error"),
    [
        ("down", 0.0, 502, "API request failed with status 503"),
        ("garbage", 0.0, 502, "radio location API answered with a body that is not JSON"),
        ("drop", 0.0, 502, None),
        ("ok", 3.0, 503, "radio location API timed out"),
    ],
)
async def test_api_failure_is_an_envelope_and_nothing_is_written(
    suite: Any, client: httpx.AsyncClient, mode: str, delay: float, status: int, error: str | None
) -> None:
    api = suite.radio_api
    ident = _id()
    api.devices[str(ident)] = {"id": ident, "radioNo": "R-1"}
    api.locations["R-1"] = {"id": ident, "radioNo": "R-1", "latitude": 1.0}
    api.mode, api.delay = mode, delay
    for path, message in [
        ("/radio/device", "Failed to fetch devices"),
        ("/radio/location", "Failed to fetch locations"),
    ]:
        answer = await client.get(path)
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert body["status"] == "ERROR" and body["message"] == message
        if error:
            assert body["error"] == error
        else:
            assert body["error"]
    one = await client.get(f"/radio/device/{ident}")
    assert one.status_code == status and one.json()["message"] == "Failed to fetch device"
    one = await client.get("/radio/location/R-1")
    assert one.status_code == status and one.json()["message"] == "Failed to fetch location for radio"
    assert await _device(suite, ident) == []
    assert await _location(suite, ident) == []


async def test_rejected_credentials_or_bad_shapes_are_502(suite: Any, client: httpx.AsyncClient) -> None:
    api = suite.radio_api
    api.override("/Device", 401, {"status": "0", "message": "Unauthorized"})
    answer = await client.get("/radio/device")
    assert answer.status_code == 502
    assert answer.json() == {
        "status": "ERROR", "message": "Failed to fetch devices", "error": "API request failed with status 401",
    }  # fmt: skip
    api.override("/Location", 200, [1, 2, 3])  # JSON, but not the API's object
    answer = await client.get("/radio/location")
    assert answer.status_code == 502 and answer.json()["status"] == "ERROR"


@pytest.mark.parametrize(
    "segment",
    [
        "1%27%20OR%20%271%27%3D%271",  # 1' OR '1'='1
        "1%3B%20DROP%20TABLE%20radio_devices",
        "a%20b",
        "%3Cscript%3E",
        "x" * 200,
    ],
)
async def test_bad_path_ids_are_400_and_never_forwarded(suite: Any, client: httpx.AsyncClient, segment: str) -> None:
    api = suite.radio_api
    before = (await suite.query("telemetry", "SELECT COUNT(*) AS n FROM radio_devices"))[0]["n"]
    for path, message in [(f"/radio/device/{segment}", "invalid device id"),
                          (f"/radio/location/{segment}", "invalid radio number")]:  # fmt: skip
        answer = await client.get(path)
        assert answer.status_code == 400, answer.text
        assert answer.json() == {"status": "FAIL", "message": message}
    assert api.calls == []
    assert (await suite.query("telemetry", "SELECT COUNT(*) AS n FROM radio_devices"))[0]["n"] == before

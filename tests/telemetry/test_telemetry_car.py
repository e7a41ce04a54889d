"""GET /car/list through the edge: a room's car_track rows, newest first, every column in the original's JSON
types (DECIMAL as strings, DATETIME as UTC ISO strings); missing room / no tasks -> 404 NOT FOUND, a bad
``limit`` -> 400 FAIL (the original interpolated it into SQL)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

COLUMNS = [
    "id", "uid", "status", "mobile", "userName", "room", "latitude", "longitude", "accuracy", "speed", "heading",
    "altitude", "altitudeAccuracy", "dtmUpdated", "dtmCreated", "dtmStarted", "dtmArrived", "dtmCanceled",
    "dtmCompleted",
]  # fmt: skip


async def _seed(suite: Any, room: str, uid: str, status: str = "open", **extra: Any) -> None:
    columns = {"uid": uid, "room": room, "status": status, "mobile": "0812345678",
               "dtmCreated": "2024-05-01 10:00:00", "dtmUpdated": "2024-05-01 10:05:00", **extra}  # fmt: skip
    names = ", ".join(f"`{c}`" for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    await suite.execute("telemetry", f"INSERT INTO car_track ({names}) VALUES ({marks})", tuple(columns.values()))  # noqa: S608 (test-owned column names)


async def test_list_is_newest_first_with_the_original_types(suite: Any, client: httpx.AsyncClient) -> None:
    room = "car" + uuid.uuid4().hex[:10]
    await _seed(suite, room, "AAAAAA", "cancel", dtmCanceled="2024-05-01 10:06:00")
    await _seed(suite, room, "BBBBBB", "start", latitude=13.7, longitude=100.5, accuracy=12.5, speed=40,
                heading=90, altitude=1.5, altitudeAccuracy=3, dtmStarted="2024-05-01 10:10:00")  # fmt: skip
    await _seed(suite, "other" + room, "CCCCCC")
    answer = await client.get("/car/list", params={"room": room})
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "OK" and [r["uid"] for r in body["data"]] == ["BBBBBB", "AAAAAA"]
    newest, oldest = body["data"]
    assert list(newest) == COLUMNS
    assert newest["latitude"] == "13.700000000" and newest["longitude"] == "100.500000000"
    assert newest["accuracy"] == "12.500000" and newest["speed"] == 40 and newest["heading"] == 90
    assert newest["altitude"] == 1.5 and newest["altitudeAccuracy"] == 3
    assert newest["dtmCreated"] == "2024-05-01T03:00:00.000Z" and newest["dtmStarted"] == "2024-05-01T03:10:00.000Z"
    assert newest["room"] == room and newest["mobile"] == "0812345678" and newest["userName"] is None
    assert oldest["status"] == "cancel" and oldest["dtmCanceled"] == "2024-05-01T03:06:00.000Z"
    assert oldest["latitude"] is None and oldest["dtmArrived"] is None

    limited = await client.get("/car/list", params={"room": room, "limit": "1"})
    assert [r["uid"] for r in limited.json()["data"]] == ["BBBBBB"]


@pytest.mark.parametrize("params", [{}, {"room": ""}, {"room": "no-such-room"}, {"room": "x' OR '1'='1"},
                                    {"room": "r" * 300}])  # fmt: skip
async def test_missing_or_unknown_room_is_404(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    answer = await client.get("/car/list", params=params)
    assert answer.status_code == 404
    assert answer.json() == {"status": "NOT FOUND", "message": "invalid room"}


@pytest.mark.parametrize("limit", ["abc", "-1", "0", "1; DROP TABLE car_track", "1.5", "9" * 20, "\u0665", "\x8d"])
async def test_bad_limit_is_400_and_the_table_survives(suite: Any, client: httpx.AsyncClient, limit: str) -> None:
    room = "car" + uuid.uuid4().hex[:10]
    await _seed(suite, room, "DDDDDD")
    answer = await client.get("/car/list", params={"room": room, "limit": limit})
    assert answer.status_code == 400
    assert answer.json() == {"status": "FAIL", "message": "invalid limit"}
    rows = await suite.query("telemetry", "SELECT uid FROM car_track WHERE room = %s", (room,))
    assert [r["uid"] for r in rows] == ["DDDDDD"]

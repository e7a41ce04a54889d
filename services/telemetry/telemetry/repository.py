"""SQL of the telemetry service (always parameterised)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from servicekit.db import Connection

_DEVICE_UPSERT = (
    "INSERT INTO radio_devices (id, radioNo, radioName, status, serialNo) VALUES (%s, %s, %s, %s, %s)"
    " ON DUPLICATE KEY UPDATE radioNo = VALUES(radioNo), radioName = VALUES(radioName),"
    " status = VALUES(status), serialNo = VALUES(serialNo)"
)
_LOCATION_UPSERT = (
    "INSERT INTO radio_locations (logId, id, radioNo, radioName, accuracy, gpsDateTime, latitude, longitude,"
    " speed, emergency) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON DUPLICATE KEY UPDATE logId = VALUES(logId), radioNo = VALUES(radioNo), radioName = VALUES(radioName),"
    " accuracy = VALUES(accuracy), gpsDateTime = VALUES(gpsDateTime), latitude = VALUES(latitude),"
    " longitude = VALUES(longitude), speed = VALUES(speed), emergency = VALUES(emergency)"
)


async def upsert_devices(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    for row in rows:
        await conn.execute(_DEVICE_UPSERT, row)


async def upsert_locations(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    for row in rows:
        await conn.execute(_LOCATION_UPSERT, row)


async def add_data_log(conn: Connection, data: str, created: datetime) -> int:
    return await conn.insert("INSERT INTO data_log (data, dtmCreated) VALUES (%s, %s)", (data, created))


async def car_tasks_of_room(db: Any, room: str, limit: int) -> list[dict[str, Any]]:
    return await db.fetch_all("SELECT * FROM car_track WHERE room = %s ORDER BY id DESC LIMIT %s", (room, limit))

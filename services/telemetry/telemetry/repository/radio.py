"""SQL of the radio proxy's cache, radio_devices and radio_locations (always parameterised)."""

from __future__ import annotations

from collections.abc import Sequence
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

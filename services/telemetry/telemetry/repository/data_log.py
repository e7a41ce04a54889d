"""SQL of data_log: every LiveKit webhook, raw, as the original's webhook receiver wrote it."""

from __future__ import annotations

from datetime import datetime

from servicekit.db import Connection


async def add_data_log(conn: Connection, data: str, created: datetime) -> int:
    return await conn.insert("INSERT INTO data_log (data, dtmCreated) VALUES (%s, %s)", (data, created))

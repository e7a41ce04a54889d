"""SQL of data_log: every LiveKit webhook, raw, as the original's webhook receiver wrote it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from servicekit.db import Connection, Database


async def add_data_log(conn: Connection, data: str, created: datetime) -> int:
    return await conn.insert("INSERT INTO data_log (data, dtmCreated) VALUES (%s, %s)", (data, created))


async def data_log_page(db: Connection | Database, after: int, limit: int) -> list[dict[str, Any]]:
    """data_log rows with id > ``after``, by id (rebuilding the statistics' stats_track)."""
    return await db.fetch_all("SELECT id, data FROM data_log WHERE id > %s ORDER BY id LIMIT %s", (after, limit))

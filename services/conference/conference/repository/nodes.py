"""SQL of ``node_livekit``: the LiveKit nodes and their health checks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from servicekit.db import Connection, Database

_NODE_COLUMNS = "id, nodeName, livekitHost, livekitLocal, livekitApiKey, livekitApiSecret, lastHealthCheck"


async def livekit_nodes(db: Connection | Database) -> list[dict[str, Any]]:
    return await db.fetch_all(f"SELECT {_NODE_COLUMNS} FROM node_livekit ORDER BY id")  # noqa: S608


async def mark_node_healthy(conn: Connection | Database, node_id: int, now: datetime) -> int:
    return await conn.execute("UPDATE node_livekit SET lastHealthCheck = %s WHERE id = %s", (now, node_id))

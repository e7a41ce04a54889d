"""SQL of the recording service (its own tables only: record_media, files, webhook_receipt)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from servicekit.db import Connection, Database


async def record_receipt(conn: Connection, event_id: str, event: str, room: str, created_at: int) -> bool:
    """True the first time this webhook event id is seen (inside the applying transaction)."""
    changed = await conn.execute(
        "INSERT IGNORE INTO webhook_receipt (eventId, event, room, createdAt) VALUES (%s, %s, %s, %s)",
        (event_id, event[:50], room[:100], created_at),
    )
    return changed == 1


async def mark_egress_ended(conn: Connection, egress_id: str, status: str, at: datetime) -> int:
    return await conn.execute(
        "UPDATE record_media SET endRecord = COALESCE(endRecord, %s), dtmUpdated = %s, status = %s WHERE egressId = %s",
        (at, at, status[:20], egress_id),
    )


async def insert_file(conn: Connection, row: dict[str, Any]) -> int:
    return await conn.insert(
        "INSERT INTO files (linkId, elementId, filename, url, thumbnail, fileType, size, mimetype, width, height) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            row["linkId"],
            row["elementId"],
            row["filename"],
            row["url"],
            row["thumbnail"],
            row["fileType"],
            row["size"],
            row["mimetype"],
            row["width"],
            row["height"],
        ),
    )


async def insert_record_media(conn: Connection, row: dict[str, Any]) -> int:
    return await conn.insert(
        "INSERT INTO record_media (egressId, room, fileName, encode, recordType, fileSize, duration, filePath, "
        "uploader, startRecord, dtmCreated, dtmUpdated) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            row["egressId"],
            row["room"],
            row["fileName"],
            row["encode"],
            row["recordType"],
            row["fileSize"],
            row["duration"],
            row["filePath"],
            row["uploader"],
            row["startRecord"],
            row["startRecord"],
            row["startRecord"],
        ),
    )


async def video_page(db: Database, record_type: str, limit: int, offset: int) -> list[dict[str, Any]]:
    return await db.fetch_all(
        "SELECT * FROM record_media WHERE recordType = %s ORDER BY startRecord DESC, id DESC LIMIT %s OFFSET %s",
        (record_type, limit, offset),
    )


async def video_count(db: Database, record_type: str) -> int:
    row = await db.fetch_one("SELECT COUNT(*) AS total FROM record_media WHERE recordType = %s", (record_type,))
    return int(row["total"]) if row else 0

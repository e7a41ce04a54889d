"""SQL of ``notification`` (the /notification/* routes), always parameterised."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from servicekit.db import Connection, Database

NOTIFICATION_COLUMNS = (
    "notificationId, userName, mobile, message, caseId, `read`, notificationType, relatedUrl, dtmRead, dtmCreated"
)


async def notification_by_id(db: Connection | Database, notification_id: int) -> dict[str, Any] | None:
    return await db.fetch_one(
        f"SELECT {NOTIFICATION_COLUMNS} FROM notification WHERE notificationId = %s",  # noqa: S608
        (notification_id,),
    )


async def unread_notifications(db: Database, limit: int) -> list[dict[str, Any]]:
    return await db.fetch_all(
        f"SELECT {NOTIFICATION_COLUMNS} FROM notification WHERE `read` = 0"  # noqa: S608
        " ORDER BY dtmCreated DESC, notificationId DESC LIMIT %s",
        (limit,),
    )


async def list_notifications(
    db: Database,
    *,
    page: int,
    limit: int,
    read: int | None,
    notification_type: str | None,
    user_name: str | None,
    start: datetime | None,
    end: datetime | None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the filtered notifications, newest first, and how many match in all."""
    clauses: list[str] = []
    args: list[Any] = []
    if read is not None:
        clauses.append("`read` = %s")
        args.append(read)
    if notification_type:
        clauses.append("notificationType = %s")
        args.append(notification_type)
    if user_name:
        clauses.append("userName = %s")
        args.append(user_name)
    if start is not None:
        clauses.append("dtmCreated >= %s")
        args.append(start)
    if end is not None:
        clauses.append("dtmCreated <= %s")
        args.append(end)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    total_row = await db.fetch_one(f"SELECT COUNT(*) AS n FROM notification {where}", args)  # noqa: S608
    total = int(total_row["n"]) if total_row else 0
    rows = await db.fetch_all(
        f"SELECT {NOTIFICATION_COLUMNS} FROM notification {where}"  # noqa: S608
        " ORDER BY dtmCreated DESC, notificationId DESC LIMIT %s OFFSET %s",
        (*args, limit, (page - 1) * limit),
    )
    return rows, total


async def insert_notification(conn: Connection, values: dict[str, Any], now: datetime) -> int:
    """A new unread notification; returns its notificationId."""
    return await conn.insert(
        "INSERT INTO notification (userName, mobile, message, caseId, `read`, notificationType, relatedUrl,"
        " dtmCreated) VALUES (%s, %s, %s, %s, 0, %s, %s, %s)",
        (
            values.get("userName"),
            values.get("mobile"),
            values["message"],
            values.get("caseId"),
            values.get("notificationType"),
            values.get("relatedUrl"),
            now,
        ),
    )


async def set_read(conn: Connection, notification_id: int, read: int, dtm_read: datetime | None) -> int:
    return await conn.execute(
        "UPDATE notification SET `read` = %s, dtmRead = %s WHERE notificationId = %s",
        (read, dtm_read, notification_id),
    )


async def notification_stats(db: Database) -> dict[str, int]:
    row = await db.fetch_one("SELECT COUNT(*) AS total, COALESCE(SUM(`read` = 0), 0) AS unread FROM notification")
    total = int(row["total"]) if row else 0
    unread = int(row["unread"]) if row else 0
    return {"total": total, "unread": unread, "read": total - unread}

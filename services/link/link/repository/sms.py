"""SQL of ``sms_message``, the record of every outgoing SMS (its ``id`` is the message's idempotency key); the
statements link.events.sms's retried job runs on it."""

from __future__ import annotations

from datetime import datetime

from link import domain
from servicekit.db import Connection

# The statements of servicekit.jobs.RetriedJob (see its load_sql, claim_sql, retry_sql, stale_sql).
LOAD_SQL = "SELECT id, linkID, room, mobile, sender, text, kind, status, attempts FROM sms_message WHERE id = %s"
CLAIM_SQL = "UPDATE sms_message SET attempts = %s, dtmUpdated = %s WHERE id = %s AND status = %s"
RETRY_SQL = "UPDATE sms_message SET last_error = %s, dtmUpdated = %s WHERE id = %s AND status = %s"
STALE_SQL = "SELECT id FROM sms_message WHERE status = %s AND dtmCreated < %s ORDER BY dtmCreated LIMIT 500"


async def insert_message(
    conn: Connection,
    key: str,
    *,
    link_id: str,
    room: str,
    message: domain.sms.SmsMessage,
    kind: str,
    status: str,
    error: str,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO sms_message (id, linkID, room, mobile, sender, text, kind, status, attempts, last_error, "
        "dtmCreated, dtmUpdated) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s)",
        (key, link_id, room, message.mobile, message.sender, message.text, kind, status, error, now, now),
    )


async def finish_message(conn: Connection, key: str, status: str, attempts: int, error: str, now: datetime) -> bool:
    """The row's outcome (``sent`` or ``failed``), only while it is still ``queued``; True when it was."""
    changed = await conn.execute(
        "UPDATE sms_message SET status = %s, attempts = %s, last_error = %s, dtmUpdated = %s, dtmSent = %s "
        "WHERE id = %s AND status = %s",
        (status, attempts, error[:500], now, now if status == domain.sms.SENT else None, key, domain.sms.QUEUED),
    )
    return changed == 1


async def message_exists(conn: Connection, key: str) -> bool:
    return await conn.fetch_one("SELECT id FROM sms_message WHERE id = %s", (key,)) is not None

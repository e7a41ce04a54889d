"""Storage of the recording service. Here: the SQL on its own tables (record_media, files, webhook_receipt,
room_setting, room_egress, track_state, encode_job); :mod:`.media` holds the media files on disk."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from recording import domain
from servicekit.clock import now_local
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
    # createdAt is written (local time, like every other date we store) rather than left to the column default,
    # which is the DB session's clock (UTC): the row and its recording.file.stored event carry the same time.
    return await conn.insert(
        "INSERT INTO files (linkId, elementId, filename, url, thumbnail, fileType, size, mimetype, width, height, "
        "createdAt, updatedAt) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
            row["createdAt"],
            row["createdAt"],
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


# ---- room settings (read model of conference's rooms) ---------------------------------------------------
_NEWER = "VALUES(version) >= version"  # the row's version is assigned last: these read the old one


_SETTING_HEAD = (
    "INSERT INTO room_setting (room, autoRecord, recordType, encodingOptionsPreset, service, status, dtmUpdated,"
    " version) VALUES"
)
_SETTING_ROW = "(%s, %s, %s, %s, %s, %s, CURRENT_TIMESTAMP(3), %s)"
_SETTING_UPDATE = (
    f"ON DUPLICATE KEY UPDATE autoRecord = IF({_NEWER}, VALUES(autoRecord), autoRecord),"
    f" recordType = IF({_NEWER}, VALUES(recordType), recordType),"
    f" encodingOptionsPreset = IF({_NEWER}, VALUES(encodingOptionsPreset), encodingOptionsPreset),"
    f" service = IF({_NEWER}, COALESCE(VALUES(service), service), service),"
    f" status = IF({_NEWER}, VALUES(status), status), dtmUpdated = IF({_NEWER}, VALUES(dtmUpdated), dtmUpdated),"
    " version = GREATEST(version, VALUES(version))"
)


def _setting_values(room: str, setting: dict[str, Any], version: int) -> tuple[Any, ...]:
    return (
        room,
        int(setting.get("autoRecord") or 0),
        str(setting.get("recordType") or "")[:50],
        str(setting.get("encodingOptionsPreset") or "")[:50],
        setting.get("service"),
        str(setting.get("status") or "")[:20],
        version,
    )


async def upsert_room_setting(conn: Connection, room: str, setting: dict[str, Any], version: int = 0) -> int:
    """The room's settings from a room event (or a snapshot) of time ``version`` (epoch ms); an older one than the
    row's changes nothing."""
    return await conn.execute(
        f"{_SETTING_HEAD} {_SETTING_ROW} {_SETTING_UPDATE}", _setting_values(room, setting, version)
    )


async def upsert_room_settings(conn: Connection, settings: list[tuple[str, dict[str, Any]]], version: int) -> int:
    """upsert_room_setting for many rooms (a rebuild's page), in their order, in multi-row statements."""
    rows = [_setting_values(room, setting, version) for room, setting in settings]
    return await conn.execute_rows(_SETTING_HEAD, _SETTING_ROW, _SETTING_UPDATE, rows)


async def room_setting(db: Connection | Database, room: str) -> dict[str, Any] | None:
    return await db.fetch_one("SELECT * FROM room_setting WHERE room = %s", (room,))


# ---- the one egress of a room ---------------------------------------------------------------------------
async def drop_stale_claims(conn: Connection, before: datetime) -> int:
    """Claims whose LiveKit answer never came (a crash between claim and start)."""
    return await conn.execute("DELETE FROM room_egress WHERE egressId = '' AND dtmClaimed < %s", (before,))


async def egress_count(conn: Connection | Database) -> int:
    row = await conn.fetch_one("SELECT COUNT(*) AS n FROM room_egress")
    return int(row["n"]) if row else 0


async def claim_room(conn: Connection, room: str, record_type: str, at: datetime) -> bool:
    # dtmClaimed in local time like every other timestamp we compare (the DB session's clock is UTC)
    changed = await conn.execute(
        "INSERT IGNORE INTO room_egress (room, recordType, state, dtmClaimed) VALUES (%s, %s, 'starting', %s)",
        (room, record_type, at),
    )
    return changed == 1


async def activate_claim(conn: Connection, room: str, egress_id: str) -> int:
    return await conn.execute(
        "UPDATE room_egress SET egressId = %s, state = 'active' WHERE room = %s AND egressId = ''", (egress_id, room)
    )


async def release_claim(conn: Connection | Database, room: str) -> int:
    return await conn.execute("DELETE FROM room_egress WHERE room = %s AND egressId = ''", (room,))


async def room_egress(db: Connection | Database, room: str) -> dict[str, Any] | None:
    return await db.fetch_one("SELECT * FROM room_egress WHERE room = %s", (room,))


async def held_egresses(db: Database) -> list[dict[str, Any]]:
    """The egresses held (started, not just claimed): room and egressId."""
    return await db.fetch_all("SELECT room, egressId FROM room_egress WHERE egressId <> ''")


async def egress_seen_started(conn: Connection, room: str, egress_id: str, insert: bool) -> int:
    """egress_started: the claim becomes active; with ``insert``, an egress we did not start (another tool) is
    held too, so it counts against the limit. Without ``insert`` (ours: its record_media row was written with
    the claim's activation) only its own claim is touched: a late webhook of an egress already stopped must not
    take over a newer start's pending claim (egressId '')."""
    if not insert:
        return await conn.execute(
            "UPDATE room_egress SET state = 'active' WHERE room = %s AND egressId = %s", (room, egress_id)
        )
    return await conn.execute(
        "INSERT INTO room_egress (room, egressId, state) VALUES (%s, %s, 'active') ON DUPLICATE KEY UPDATE"
        " state = IF(egressId = VALUES(egressId) OR egressId = '', 'active', state),"
        " egressId = IF(egressId = '', VALUES(egressId), egressId)",
        (room[:50], egress_id[:50]),
    )


async def drop_egress(conn: Connection | Database, egress_id: str) -> int:
    return await conn.execute("DELETE FROM room_egress WHERE egressId = %s", (egress_id,))


# ---- record_media of egresses ---------------------------------------------------------------------------
async def insert_egress_media(
    conn: Connection, egress_id: str, room: str, file_name: str, record_type: str, at: datetime
) -> int:
    """The original's row (egressId, room, filename, recordType, startRecord, dtmUpdated; status default)."""
    return await conn.insert(
        "INSERT INTO record_media (egressId, room, fileName, recordType, startRecord, dtmUpdated)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (egress_id, room, file_name, record_type, at, at),
    )


async def stop_media(conn: Connection | Database, egress_id: str, at: datetime) -> int:
    return await conn.execute(
        "UPDATE record_media SET endRecord = COALESCE(endRecord, %s), dtmUpdated = %s WHERE egressId = %s",
        (at, at, egress_id),
    )


async def media_of_egress(conn: Connection | Database, egress_id: str) -> dict[str, Any] | None:
    return await conn.fetch_one("SELECT * FROM record_media WHERE egressId = %s ORDER BY id LIMIT 1", (egress_id,))


async def file_history(db: Database, room: str) -> list[dict[str, Any]]:
    return await db.fetch_all("SELECT * FROM record_media WHERE room = %s ORDER BY id", (room,))


# ---- TrackComposite track state -------------------------------------------------------------------------
async def remember_participant(conn: Connection, room: str, identity: str) -> int:
    return await conn.execute(
        "INSERT IGNORE INTO track_state (room, identity) VALUES (%s, %s)", (room[:50], identity[:100])
    )


async def forget_participant(conn: Connection, room: str, identity: str) -> int:
    return await conn.execute("DELETE FROM track_state WHERE room = %s AND identity = %s", (room, identity))


async def forget_room_tracks(conn: Connection, room: str) -> int:
    return await conn.execute("DELETE FROM track_state WHERE room = %s", (room,))


async def remember_track(conn: Connection, room: str, identity: str, kind: str, track_sid: str) -> int:
    column = "videoTrack" if kind == "video" else "audioTrack"  # fixed names, never input
    return await conn.execute(
        f"UPDATE track_state SET {column} = %s WHERE room = %s AND identity = %s",  # noqa: S608
        (track_sid[:100], room, identity),
    )


async def take_track_pair(conn: Connection, room: str, identity: str) -> dict[str, Any] | None:
    """Both tracks known and not recorded yet: mark recorded (once, whatever the concurrency) and return them."""
    changed = await conn.execute(
        "UPDATE track_state SET record = 1 WHERE room = %s AND identity = %s AND record = 0"
        " AND videoTrack <> '' AND audioTrack <> ''",
        (room, identity),
    )
    if changed != 1:
        return None
    return await conn.fetch_one(
        "SELECT videoTrack, audioTrack FROM track_state WHERE room = %s AND identity = %s", (room, identity)
    )


# ---- encode jobs ----------------------------------------------------------------------------------------
async def add_encode_job(conn: Connection, record_id: int, at: datetime) -> int:
    return await conn.execute(
        "INSERT IGNORE INTO encode_job (recordId, status, dtmCreated, dtmUpdated) VALUES (%s, 'queued', %s, %s)",
        (record_id, at, at),
    )


# The encode job's statements, run by servicekit's RetriedJob (recording.events.encode), parameters in its order.
ENCODE_JOB_LOAD = "SELECT status, attempts FROM encode_job WHERE recordId = %s"
ENCODE_JOB_CLAIM = "UPDATE encode_job SET attempts = %s, dtmUpdated = %s WHERE recordId = %s AND status = %s"
ENCODE_JOB_RETRY = "UPDATE encode_job SET lastError = %s, dtmUpdated = %s WHERE recordId = %s AND status = %s"
ENCODE_JOB_STALE = "SELECT recordId FROM encode_job WHERE status = %s AND dtmUpdated < %s ORDER BY dtmCreated LIMIT 500"


async def end_encode_job(conn: Connection, record_id: int, status: str, attempts: int, error: str, at: datetime) -> int:
    """A queued job's final state (1 when it was still queued)."""
    return await conn.execute(
        "UPDATE encode_job SET status = %s, attempts = %s, lastError = %s, dtmUpdated = %s"
        " WHERE recordId = %s AND status = %s",
        (status, attempts, error[:500], at, record_id, domain.QUEUED),
    )


async def mark_encode_failed(conn: Connection, record_id: int, at: datetime) -> int:
    return await conn.execute(
        "UPDATE record_media SET encode = %s, dtmUpdated = %s WHERE id = %s", (domain.ENCODE_FAILED, at, record_id)
    )


# ---- state for /test/mp4/queue --------------------------------------------------------------------------
async def queued_encode_jobs(db: Database) -> list[dict[str, Any]]:
    return await db.fetch_all(
        "SELECT recordId, status, attempts, lastError, dtmCreated, dtmUpdated FROM encode_job WHERE status = %s"
        " ORDER BY dtmCreated, recordId LIMIT 1000",
        (domain.QUEUED,),
    )


async def remove_encode_jobs(db: Database, record_id: int | None = None) -> int:
    """Take queued rows out of the queue (a job already running finishes; a removed row is never sent)."""
    now = now_local()
    if record_id is None:
        return await db.execute(
            "UPDATE encode_job SET status = %s, dtmUpdated = %s WHERE status = %s", (domain.REMOVED, now, domain.QUEUED)
        )
    return await db.execute(
        "UPDATE encode_job SET status = %s, dtmUpdated = %s WHERE recordId = %s AND status = %s",
        (domain.REMOVED, now, record_id, domain.QUEUED),
    )


# ---- snapshot (rebuilding other services' read models) ----------------------------------------------------------
async def egress_media_page(db: Connection | Database, after: int, limit: int) -> list[dict[str, Any]]:
    """record_media rows of LiveKit egresses (an egressId) with id > ``after``, by id, with their room's tenant
    (room_setting.service: the folder of the egress's file)."""
    return await db.fetch_all(
        "SELECT m.id, m.egressId, m.room, m.fileName, m.recordType, m.status, m.startRecord, m.endRecord, s.service"
        " FROM record_media m LEFT JOIN room_setting s ON s.room = m.room"
        " WHERE m.id > %s AND m.egressId IS NOT NULL AND m.egressId != '' ORDER BY m.id LIMIT %s",
        (after, limit),
    )


async def files_page(db: Connection | Database, after: int, limit: int) -> list[dict[str, Any]]:
    """`files` rows with id > ``after``, by id."""
    return await db.fetch_all(
        "SELECT id, linkId, filename, url, width, height, createdAt FROM files WHERE id > %s ORDER BY id LIMIT %s",
        (after, limit),
    )

"""SQL of the link service (link_connect, usage_status_log, services); always bound parameters."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from asyncmy.errors import IntegrityError

from link import domain
from servicekit.clock import js_iso, now_local
from servicekit.db import Connection, Database

DUPLICATE_KEY = 1062
ID_ATTEMPTS = 20

LINK_DETAIL_COLUMNS = (
    "linkID, room, enabled, mobile, isAdmin, userName, userType, linkType, requireJoinPermission, crmSender, "
    "requireUserName, requirePassword, oneTimeLink, dtmCreated, dtmExpired"
)


def plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the original's JSON showed it: dates as UTC ISO strings, DECIMAL as text."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            out[key] = js_iso(value)
        elif isinstance(value, Decimal):
            out[key] = str(value)
        else:
            out[key] = value
    return out


# ---- tenants ---------------------------------------------------------------------------------------------
async def get_tenant(conn: Connection, service: int) -> dict[str, Any] | None:
    return await conn.fetch_one(
        "SELECT id, prefixTextVideoSMS, prefixTextLocationSMS, prefixHLSRecordVideoSMS, domainsVideo, "
        "domainsLocation, smsSenderName FROM services WHERE id = %s",
        (service,),
    )


# ---- links -----------------------------------------------------------------------------------------------
_INSERT_LINK = (
    "INSERT INTO link_connect (share, mobile, linkID, room, recordId, crmSender, userType, linkType, userName, "
    "isAdmin, requireJoinPermission, requireUserName, requirePassword, oneTimeLink, password, service, sms, "
    "dtmCreated, dtmExpired, userAgent) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


async def insert_link(conn: Connection, charset: str, fields: dict[str, Any]) -> str:
    """Insert a link under a fresh random ID (retrying on the unique key); returns the ID."""
    for _ in range(ID_ATTEMPTS):
        link_id = domain.random_id(charset)
        args = (
            fields.get("share", 0),
            fields.get("mobile", ""),
            link_id,
            fields["room"],
            fields.get("recordId", 0),
            fields.get("crmSender", ""),
            fields.get("userType"),
            fields.get("linkType", "video"),
            fields.get("userName"),
            fields.get("isAdmin", "0"),
            fields.get("requireJoinPermission", 0),
            fields.get("requireUserName", 0),
            fields.get("requirePassword", 0),
            fields.get("oneTimeLink", 0),
            fields.get("password", ""),
            fields.get("service"),
            fields.get("sms", 1),
            fields["dtmCreated"],
            fields["dtmExpired"],
            fields.get("userAgent", ""),
        )
        try:
            await conn.execute(_INSERT_LINK, args)
        except IntegrityError as exc:
            if exc.args and exc.args[0] == DUPLICATE_KEY:
                continue  # only this statement failed; the transaction goes on
            raise
        return link_id
    raise RuntimeError("no free link ID after several attempts; CUSTOM_CHARSET too small?")


async def get_link_detail(conn: Connection, link_id: str) -> dict[str, Any] | None:
    return await conn.fetch_one(
        f"SELECT {LINK_DETAIL_COLUMNS} FROM link_connect WHERE linkID = %s",  # noqa: S608 - constant columns
        (link_id,),
    )


async def mark_one_time_used(conn: Connection, link_id: str) -> bool:
    changed = await conn.execute(
        "UPDATE link_connect SET oneTimeLink = %s WHERE linkID = %s AND oneTimeLink = %s",
        (domain.ONE_TIME_USED, link_id, domain.ONE_TIME_UNUSED),
    )
    return changed == 1


async def update_link_agent(conn: Connection, link_id: str, user_agent: str, os_name: str) -> None:
    await conn.execute(
        "UPDATE link_connect SET userAgent = %s, os = %s WHERE linkID = %s", (user_agent, os_name, link_id)
    )


async def user_links_of_room(conn: Connection | Database, room: str) -> list[dict[str, Any]]:
    return await conn.fetch_all(
        "SELECT id, mobile, share, userName, accuracy, latitude, longitude, errorLocation FROM link_connect "
        "WHERE room = %s AND userType = 'user' ORDER BY id DESC",
        (room,),
    )


async def lock_link(conn: Connection, link_id: str) -> dict[str, Any] | None:
    return await conn.fetch_one(
        "SELECT id, linkID, room, userType, mobile, linkType FROM link_connect WHERE linkID = %s FOR UPDATE",
        (link_id,),
    )


async def update_position(conn: Connection, link_id: str, latitude: float, longitude: float, accuracy: str) -> None:
    await conn.execute(
        "UPDATE link_connect SET latitude = %s, longitude = %s, accuracy = %s WHERE linkID = %s",
        (latitude, longitude, accuracy, link_id),
    )


# ---- share and history -----------------------------------------------------------------------------------
async def room_service(conn: Connection, room: str) -> int | None:
    """The tenant of a room, from its links (each link records the tenant it was created for)."""
    row = await conn.fetch_one(
        "SELECT service FROM link_connect WHERE room = %s AND service IS NOT NULL ORDER BY id ASC LIMIT 1",
        (room,),
    )
    return int(row["service"]) if row else None


async def share_link_id(conn: Connection, room: str, user_name: str) -> str | None:
    row = await conn.fetch_one(
        "SELECT linkID FROM link_connect WHERE room = %s AND share = 1 AND userName = %s ORDER BY id ASC LIMIT 1",
        (room, user_name),
    )
    return row["linkID"] if row else None


_HISTORY_FROM = "FROM link_connect WHERE room = %s AND mobile != '' AND share = 0"


async def history_rows(conn: Connection, room: str, offset: int) -> list[dict[str, Any]]:
    return await conn.fetch_all(
        "SELECT linkID, room, mobile, linkType, crmSender, latitude, longitude, patientLatitude, "
        f"patientLongitude, patientUpdated, dtmCreated {_HISTORY_FROM} "  # noqa: S608 - constant text
        "ORDER BY dtmCreated ASC, id ASC LIMIT %s OFFSET %s",
        (room, domain.HISTORY_PAGE_SIZE, offset),
    )


async def history_count(conn: Connection, room: str) -> int:
    row = await conn.fetch_one(f"SELECT COUNT(*) AS n {_HISTORY_FROM}", (room,))  # noqa: S608 - constant text
    return int(row["n"]) if row else 0


async def room_agent(conn: Connection, room: str) -> str | None:
    row = await conn.fetch_one(
        "SELECT userName FROM link_connect WHERE room = %s AND userType = 'admin' ORDER BY id ASC LIMIT 1",
        (room,),
    )
    return row["userName"] if row else None


_ACTIVE_LOG = (
    "SELECT linkID, mobile, status, linkType, dtmCreated, userType, latitude, longitude, data FROM usage_status_log "
    "WHERE linkID = %s AND status IN (%s, %s, %s, %s, %s, %s) AND (userType = 'user' OR %s) "
    "ORDER BY dtmCreated ASC, id ASC LIMIT 100"
)


async def active_log(conn: Connection, link_id: str, every_user_type: bool = False) -> list[dict[str, Any]]:
    """The original's getCRMLinkStatusLog: a link's activity rows, oldest first (user rows only unless
    ``every_user_type``, which the original used for location links)."""
    rows = await conn.fetch_all(_ACTIVE_LOG, (link_id, *domain.ACTIVE_LOG_STATUSES, every_user_type))
    out = []
    for row in rows:
        data = row.pop("data")
        item = plain(row)
        if row["status"] == "MultiLatLng" and data:
            try:
                parsed = msgspec.json.decode(data)
            except msgspec.DecodeError:
                parsed = {}
            if isinstance(parsed, dict):
                item["currentLocation"] = parsed.get("currentLocation")
                item["pickLocation"] = parsed.get("pickLocation")
        out.append(item)
    return out


# ---- passwords -------------------------------------------------------------------------------------------
async def link_credentials(conn: Connection, link_id: str) -> dict[str, Any] | None:
    return await conn.fetch_one(
        "SELECT linkID, room, userName, userType, linkType, mobile, isAdmin, requireJoinPermission, "
        "requirePassword, password FROM link_connect WHERE linkID = %s",
        (link_id,),
    )


async def replace_password_hash(conn: Connection, link_id: str, old: str, new: str) -> bool:
    """Store ``new`` only if the row still holds ``old`` (a concurrent check re-hashes once)."""
    changed = await conn.execute(
        "UPDATE link_connect SET password = %s WHERE linkID = %s AND password = %s", (new, link_id, old)
    )
    return changed == 1


# ---- usage log -------------------------------------------------------------------------------------------
async def add_usage(
    conn: Connection,
    *,
    status: str,
    link_id: str = "",
    room: str = "",
    identity: str = "",
    user_name: str = "",
    user_type: str = "",
    mobile: str = "",
    link_type: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    user_agent: str = "",
    data: Any = None,
) -> None:
    await conn.execute(
        "INSERT INTO usage_status_log (linkID, room, identity, userName, userType, mobile, linkType, latitude, "
        "longitude, status, userAgent, dtmCreated, data) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            link_id,
            room,
            identity,
            user_name,
            user_type,
            mobile,
            link_type,
            latitude,
            longitude,
            status,
            user_agent,
            now_local(),
            msgspec.json.encode(data).decode() if data is not None else None,
        ),
    )


# ---- tenants (routes/tenants.py) -------------------------------------------------------------------------
TENANT_PUBLIC_COLUMNS = "id AS serviceId, name, webTitle, logo, titleColor, latitude, longitude"


async def tenant_public(conn: Connection, service: int) -> dict[str, Any] | None:
    return await conn.fetch_one(
        f"SELECT {TENANT_PUBLIC_COLUMNS} FROM services WHERE id = %s LIMIT 1",  # noqa: S608 - constant columns
        (service,),
    )


TENANT_EDITABLE = (
    "name", "webTitle", "prefixHLSRecordVideoSMS", "prefixTextVideoSMS", "prefixTextLocationSMS", "domainsVideo",
    "domainsLocation", "smsSenderName", "logo", "titleColor", "latitude", "longitude",
)  # fmt: skip


async def update_tenant(conn: Connection, service: int, values: dict[str, Any]) -> bool:
    """Set the given editable columns of a tenant; False when the tenant does not exist."""
    row = await conn.fetch_one("SELECT id FROM services WHERE id = %s FOR UPDATE", (service,))
    if row is None:
        return False
    columns = [name for name in TENANT_EDITABLE if name in values]
    if columns:
        assignments = ", ".join(f"{name} = %s" for name in columns)  # names from the constant tuple only
        await conn.execute(
            f"UPDATE services SET {assignments} WHERE id = %s",  # noqa: S608 - constant column names
            (*[values[name] for name in columns], service),
        )
    return True


# ---- usage log reads and link errors (routes/usage.py) ---------------------------------------------------
STATUS_LOG_LIMIT = 1000


async def room_status_log(conn: Connection, room: str) -> list[dict[str, Any]]:
    return await conn.fetch_all(
        "SELECT id, linkID, room, identity, mobile, status, userAgent, data, dtmCreated FROM usage_status_log "
        "WHERE room = %s ORDER BY id DESC LIMIT %s",
        (room, STATUS_LOG_LIMIT),
    )


async def set_link_error(conn: Connection, link_id: str, column: str, error: str) -> None:
    assert column in ("errorLocation", "errorVideo")
    await conn.execute(f"UPDATE link_connect SET {column} = %s WHERE linkID = %s", (error, link_id))  # noqa: S608


# ---- other link kinds (routes/link_kinds.py) -------------------------------------------------------------
async def previous_domain_index(conn: Connection, link_id: str) -> int | None:
    """The domain index of the newest other link (the original's round robin over a tenant's domains)."""
    row = await conn.fetch_one(
        "SELECT IFNULL(domainIndex, 0) AS domainIndex FROM link_connect WHERE linkID != %s ORDER BY id DESC LIMIT 1",
        (link_id,),
    )
    return int(row["domainIndex"]) if row else None


async def set_domain_index(conn: Connection, link_id: str, index: int) -> None:
    await conn.execute("UPDATE link_connect SET domainIndex = %s WHERE linkID = %s", (index, link_id))


async def link_service(conn: Connection, link_id: str) -> int | None:
    row = await conn.fetch_one("SELECT service FROM link_connect WHERE linkID = %s", (link_id,))
    return int(row["service"]) if row and row["service"] is not None else None


async def disable_links_of_type(conn: Connection, room: str, link_type: str) -> int:
    return await conn.execute(
        "UPDATE link_connect SET enabled = 0 WHERE room = %s AND linkType = %s AND enabled = 1", (room, link_type)
    )


async def update_patient_position(
    conn: Connection, link_id: str, latitude: float | None, longitude: float | None
) -> int:
    return await conn.execute(
        "UPDATE link_connect SET patientLatitude = %s, patientLongitude = %s, patientUpdated = %s WHERE linkID = %s",
        (latitude, longitude, now_local(), link_id),
    )

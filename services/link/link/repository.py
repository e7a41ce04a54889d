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


async def insert_link(conn: Connection, charset: str, fields: dict[str, Any]) -> tuple[str, int]:
    """Insert a link under a fresh random ID (retrying on the unique key); returns the ID and the row's id
    (link_connect.id, which LinkCreated carries as ``linkRowId``)."""
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
            row_id = await conn.insert(_INSERT_LINK, args)
        except IntegrityError as exc:
            if exc.args and exc.args[0] == DUPLICATE_KEY:
                continue  # only this statement failed; the transaction goes on
            raise
        return link_id, row_id
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


_HISTORY_FROM = (
    "FROM link_connect l LEFT JOIN room_case_view c ON c.room = l.room"
    " WHERE l.room = %s AND l.mobile != '' AND l.share = 0"
)


async def history_rows(
    conn: Connection, room: str, offset: int, limit: int = domain.HISTORY_PAGE_SIZE, newest_first: bool = False
) -> list[dict[str, Any]]:
    """The room's patient links joined with its cases (one row per link and case, as the original's join with
    case_data), in the original's column order; ``id`` (the room's id) is filled in by the caller."""
    order = "DESC" if newest_first else "ASC"
    return await conn.fetch_all(
        "SELECT c.caseRowId AS caseId, l.linkID, c.status AS caseStatus, c.hn, c.patientMobile, l.room, NULL AS id,"
        " l.mobile, l.linkType, l.crmSender, l.latitude, l.longitude, l.patientLatitude, l.patientLongitude,"
        f" l.patientUpdated, l.dtmCreated {_HISTORY_FROM}"  # noqa: S608 - constant text
        f" ORDER BY l.dtmCreated {order}, l.id {order}, c.caseId LIMIT %s OFFSET %s",
        (room, limit, offset),
    )


async def history_count(conn: Connection, room: str) -> int:
    row = await conn.fetch_one(f"SELECT COUNT(*) AS n {_HISTORY_FROM}", (room,))  # noqa: S608 - constant text
    return int(row["n"]) if row else 0


async def room_state(conn: Connection, room: str) -> dict[str, Any] | None:
    """The room's id and status from the room read model (None: not known here)."""
    return await conn.fetch_one("SELECT id, status FROM room_view WHERE room = %s", (room,))


async def room_recordings(conn: Connection, room: str) -> list[dict[str, Any]]:
    return await conn.fetch_all(
        "SELECT egressId, room, filename, recordType, startRecord, endRecord, dtmUpdated FROM room_record_view"
        " WHERE room = %s ORDER BY startRecord, egressId LIMIT 100",
        (room,),
    )


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
_USAGE_COLUMNS = (
    "linkID, room, identity, userName, userType, mobile, linkType, latitude, longitude, status, userAgent, "
    "dtmCreated, data"
)
_USAGE_MARKS = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def usage_row(
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
) -> tuple[Any, ...]:
    """The values of one usage_status_log row (in _USAGE_COLUMNS order), stamped now."""
    return (
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
    )


async def add_usage(conn: Connection, **fields: Any) -> None:
    """One usage row (keyword arguments of :func:`usage_row`), inside the caller's transaction if any."""
    await insert_usage_rows(conn, [usage_row(**fields)])


async def insert_usage_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Several usage rows in one statement (all or none)."""
    marks = ", ".join([_USAGE_MARKS] * len(rows))
    await conn.execute(
        f"INSERT INTO usage_status_log ({_USAGE_COLUMNS}) VALUES {marks}",  # noqa: S608 - constant text, marks
        tuple(value for row in rows for value in row),
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


async def set_domain_index(conn: Connection, link_id: str, index: int) -> bool:
    """True when the link exists (its domainIndex is now ``index``)."""
    row = await conn.fetch_one("SELECT id FROM link_connect WHERE linkID = %s FOR UPDATE", (link_id,))
    if row is None:
        return False
    await conn.execute("UPDATE link_connect SET domainIndex = %s WHERE id = %s", (index, row["id"]))
    return True


async def link_service(conn: Connection, link_id: str) -> int | None:
    row = await conn.fetch_one("SELECT service FROM link_connect WHERE linkID = %s", (link_id,))
    return int(row["service"]) if row and row["service"] is not None else None


async def disable_links_of_type(conn: Connection, room: str, link_type: str) -> list[str]:
    """Disable the room's enabled links of a type; returns their IDs."""
    rows = await conn.fetch_all(
        "SELECT id, linkID FROM link_connect WHERE room = %s AND linkType = %s AND enabled = 1 FOR UPDATE",
        (room, link_type),
    )
    if rows:
        await disable_links(conn, [row["id"] for row in rows])
    return [row["linkID"] for row in rows if row["linkID"]]


async def update_patient_position(
    conn: Connection, link_id: str, latitude: float | None, longitude: float | None
) -> int:
    return await conn.execute(
        "UPDATE link_connect SET patientLatitude = %s, patientLongitude = %s, patientUpdated = %s WHERE linkID = %s",
        (latitude, longitude, now_local(), link_id),
    )


# ---- expiry sweep (jobs.py) ------------------------------------------------------------------------------
# The earliest real DATETIME. Below it lie MySQL's zero dates ('0000-00-00 ...'), which migrated rows may hold and
# the driver gives as text: such a link has no expiry (getdetail reads it the same way), so the sweep skips it.
EARLIEST_DATETIME = datetime(1000, 1, 1)


async def lock_expired_links(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Enabled links past their expiry, locked (SKIP LOCKED: a racing sweep takes other rows or none)."""
    return await conn.fetch_all(
        "SELECT id, linkID, room, linkType, dtmExpired FROM link_connect"
        " WHERE dtmExpired >= %s AND dtmExpired < %s AND enabled = 1"
        " ORDER BY dtmExpired, id LIMIT %s FOR UPDATE SKIP LOCKED",
        (EARLIEST_DATETIME, now, limit),
    )


async def disable_links(conn: Connection, ids: list[int]) -> int:
    marks = ", ".join(["%s"] * len(ids))
    return await conn.execute(
        f"UPDATE link_connect SET enabled = 0 WHERE enabled = 1 AND id IN ({marks})",  # noqa: S608 - only marks
        tuple(ids),
    )


async def add_case_usage(conn: Connection, *, user_name: str, status_log: str, at: datetime) -> None:
    """The usage row of a case action (the original's addStatusLog({data, userName}) in the case routes)."""
    await conn.execute(
        "INSERT INTO usage_status_log (linkID, room, identity, userName, userType, mobile, linkType, latitude,"
        " longitude, status, userAgent, dtmCreated, data) VALUES (NULL, '', '', %s, '', '', '', NULL, NULL, '', '',"
        " %s, %s)",
        (user_name, at, msgspec.json.encode(status_log).decode()),
    )


# ---- positions from room sockets (RPC_LINK_USER_POSITION) -------------------------------------------------
async def lock_link_in_room(conn: Connection, link_id: str, room: str) -> dict[str, Any] | None:
    """The link if it belongs to ``room`` (compared by the column's collation, as every room lookup is)."""
    return await conn.fetch_one(
        "SELECT id, linkID, room, userType FROM link_connect WHERE linkID = %s AND room = %s FOR UPDATE",
        (link_id, room),
    )


# ---- the socket `queue` page (RPC_LINK_QUEUE_PAGE) ---------------------------------------------------------
# The original's getSMSLinkHistory over a tenant's rooms: the patient links (mobile set, not share links) of rooms
# conference knows, joined with their cases. `roomStatus` and `agent` (the room's first admin link) serve the
# searches and are moved into the row's `status` / `agent` by the caller.
_QUEUE_AGENT = (
    "(SELECT a.userName FROM link_connect a WHERE a.room = l.room AND a.userType = 'admin' ORDER BY a.id LIMIT 1)"
)
_QUEUE_FROM = (
    "FROM link_connect l JOIN room_view r ON r.room = l.room LEFT JOIN room_case_view c ON c.room = l.room"
    " WHERE l.service = %s AND l.mobile != '' AND l.share = 0"
)


def _queue_where(search: domain.QueueSearch) -> tuple[str, list[Any]]:
    """The search's conditions (appended to _QUEUE_FROM) and their arguments; user text only as LIKE arguments."""
    sql: list[str] = []
    args: list[Any] = [search.service]
    if search.text:
        pattern = domain.like_contains(search.text)
        alternatives = [
            "DATE_FORMAT(l.dtmCreated, %s) LIKE %s",
            "l.mobile LIKE %s",
            f"{_QUEUE_AGENT} LIKE %s",
        ]
        args += ["%Y-%m-%d %H:%i:%s", pattern, pattern, pattern]
        if search.room_statuses:
            alternatives.append(f"r.status IN ({', '.join(['%s'] * len(search.room_statuses))})")
            args += search.room_statuses
        if search.link_types:
            alternatives.append(f"l.linkType IN ({', '.join(['%s'] * len(search.link_types))})")
            args += search.link_types
        sql.append(f" AND ({' OR '.join(alternatives)})")
    if search.mobile:
        sql.append(" AND l.mobile LIKE %s")
        args.append(domain.like_contains(search.mobile))
    if search.agent:
        sql.append(f" AND {_QUEUE_AGENT} LIKE %s")
        args.append(domain.like_contains(search.agent))
    if search.nothing:
        sql.append(" AND FALSE")
    if search.room_status:
        sql.append(" AND r.status LIKE %s")
        args.append(domain.like_contains(search.room_status))
    if search.created_from is not None and search.created_to is not None:
        # room_view.detail carries conference's dtmCreated as a UTC ISO string: same-format strings compare in order
        sql.append(" AND JSON_VALUE(r.detail, '$.dtmCreated') BETWEEN %s AND %s")
        args += [js_iso(search.created_from), js_iso(search.created_to)]
    return "".join(sql), args


async def queue_rows(conn: Connection, search: domain.QueueSearch) -> list[dict[str, Any]]:
    where, args = _queue_where(search)
    return await conn.fetch_all(
        "SELECT DISTINCT c.caseRowId AS caseId, l.linkID, c.status AS caseStatus, c.hn, c.patientMobile, l.room,"
        " r.id, l.mobile, l.linkType, l.crmSender, l.latitude, l.longitude, l.patientLatitude,"
        " l.patientLongitude, l.patientUpdated, l.dtmCreated, r.status AS roomStatus,"
        f" {_QUEUE_AGENT} AS agent, l.id AS linkRowId {_QUEUE_FROM}{where}"  # noqa: S608 - constant text, marks
        " ORDER BY l.dtmCreated DESC, l.id DESC, c.caseId LIMIT %s OFFSET %s",
        (*args, search.limit, search.offset),
    )


async def queue_count(conn: Connection, search: domain.QueueSearch) -> int:
    where, args = _queue_where(search)
    row = await conn.fetch_one(
        "SELECT COUNT(*) AS n FROM (SELECT DISTINCT c.caseId, l.id "  # noqa: S608 - constant text, marks
        f"{_QUEUE_FROM}{where}) AS matched",
        tuple(args),
    )
    return int(row["n"]) if row else 0

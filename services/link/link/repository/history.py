"""SQL of the SMS-link history (the original's getSMSLinkHistory): a room's patient links with their cases
(GET /link/history, realtime's closeRoom row) and a tenant's, searched and paged (the socket ``queue``)."""

from __future__ import annotations

from typing import Any

from link import domain
from servicekit.clock import js_iso
from servicekit.db import Connection

# ---- a room's history (GET /link/history) ---------------------------------------------------------------
_HISTORY_FROM = (
    "FROM link_connect l LEFT JOIN room_case_view c ON c.room = l.room"
    " WHERE l.room = %s AND l.mobile != '' AND l.share = 0"
)


async def history_rows(
    conn: Connection, room: str, offset: int, limit: int = domain.history.HISTORY_PAGE_SIZE, newest_first: bool = False
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


async def room_agent(conn: Connection, room: str) -> str | None:
    row = await conn.fetch_one(
        "SELECT userName FROM link_connect WHERE room = %s AND userType = 'admin' ORDER BY id ASC LIMIT 1",
        (room,),
    )
    return row["userName"] if row else None


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


def _queue_where(search: domain.history.QueueSearch) -> tuple[str, list[Any]]:
    """The search's conditions (appended to _QUEUE_FROM) and their arguments; user text only as LIKE arguments."""
    sql: list[str] = []
    args: list[Any] = [search.service]
    if search.text:
        pattern = domain.history.like_contains(search.text)
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
        args.append(domain.history.like_contains(search.mobile))
    if search.agent:
        sql.append(f" AND {_QUEUE_AGENT} LIKE %s")
        args.append(domain.history.like_contains(search.agent))
    if search.nothing:
        sql.append(" AND FALSE")
    if search.room_status:
        sql.append(" AND r.status LIKE %s")
        args.append(domain.history.like_contains(search.room_status))
    if search.created_from is not None and search.created_to is not None:
        # room_view.detail carries conference's dtmCreated as a UTC ISO string: same-format strings compare in order
        sql.append(" AND JSON_VALUE(r.detail, '$.dtmCreated') BETWEEN %s AND %s")
        args += [js_iso(search.created_from), js_iso(search.created_to)]
    return "".join(sql), args


async def queue_rows(conn: Connection, search: domain.history.QueueSearch) -> list[dict[str, Any]]:
    where, args = _queue_where(search)
    return await conn.fetch_all(
        "SELECT DISTINCT c.caseRowId AS caseId, l.linkID, c.status AS caseStatus, c.hn, c.patientMobile, l.room,"
        " r.id, l.mobile, l.linkType, l.crmSender, l.latitude, l.longitude, l.patientLatitude,"
        " l.patientLongitude, l.patientUpdated, l.dtmCreated, r.status AS roomStatus,"
        f" {_QUEUE_AGENT} AS agent, l.id AS linkRowId {_QUEUE_FROM}{where}"  # noqa: S608 - constant text, marks
        " ORDER BY l.dtmCreated DESC, l.id DESC, c.caseId LIMIT %s OFFSET %s",
        (*args, search.limit, search.offset),
    )


async def queue_count(conn: Connection, search: domain.history.QueueSearch) -> int:
    where, args = _queue_where(search)
    row = await conn.fetch_one(
        "SELECT COUNT(*) AS n FROM (SELECT DISTINCT c.caseId, l.id "  # noqa: S608 - constant text, marks
        f"{_QUEUE_FROM}{where}) AS matched",
        tuple(args),
    )
    return int(row["n"]) if row else 0

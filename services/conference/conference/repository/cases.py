"""SQL of ``case_data`` (always parameterised): the original's case.service queries.

caseId is a running number per service (the last case's caseId + 1, as the original). Allocation holds a
per-service MySQL user lock until the insert commits (:func:`case_allocation`), so concurrent creations never
share a caseId.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from conference.domain import HistoryQuery, like_pattern
from servicekit.clock import js_iso
from servicekit.db import Connection, Database

CASE_LOCK_TIMEOUT_SECONDS = 10
HISTORY_COLUMNS = (
    "case_data.caseId AS caseId, case_data.operationNumber, case_data.hn, case_data.patientMobile,"
    " case_data.mobileCreated, case_data.dtmCreated, room_conference.messageUnread, case_data.status"
)
HISTORY_FROM = "FROM case_data LEFT JOIN room_conference ON room_conference.id = case_data.roomId"
SEARCH_ALL_COLUMNS = (
    "case_data.caseId",
    "case_data.operationNumber",
    "case_data.hn",
    "case_data.patientMobile",
    "case_data.mobileCreated",
    "case_data.dtmCreated",
    "case_data.status",
)


# ---- create ----------------------------------------------------------------------------------------------
@asynccontextmanager
async def case_allocation(db: Database, service: int) -> AsyncIterator[Connection]:
    """One transaction holding the service's case lock until after it commits."""
    digest = hashlib.sha1(str(service).encode(), usedforsecurity=False).hexdigest()
    async with db.locked_transaction(f"conference.case.{digest}", CASE_LOCK_TIMEOUT_SECONDS) as conn:
        yield conn


async def next_case_id(conn: Connection, service: int) -> int:
    """The next caseId of ``service``, on a connection holding the service's case lock."""
    last = await conn.fetch_one("SELECT caseId FROM case_data WHERE service = %s ORDER BY id DESC LIMIT 1", (service,))
    return (int(last["caseId"]) if last else 0) + 1


async def insert_case(
    conn: Connection,
    *,
    case_id: int,
    service: int,
    room_id: int,
    user_name: str | None,
    mobile: str | None,
    link_type: str | None,
    organization: str,
    now: datetime,
) -> int:
    """Insert the case (status ``On Case``); returns its case_data.id."""
    return await conn.insert(
        "INSERT INTO case_data (caseId, service, roomId, status, userName, mobileCreated, caseType, dtmCreated,"
        " organization) VALUES (%s, %s, %s, 'On Case', %s, %s, %s, %s, %s)",
        (case_id, service, room_id, user_name, mobile or "", link_type or "", now, organization),
    )


async def opened_request(conn: Connection, request_key: str) -> dict[str, Any] | None:
    """The case an rpc.conference.case.open request already opened (caseId, caseRowId), or None."""
    return await conn.fetch_one("SELECT caseId, caseRowId FROM case_open_request WHERE requestKey = %s", (request_key,))


async def record_open_request(conn: Connection, request_key: str, row_id: int, case_id: int, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO case_open_request (requestKey, caseRowId, caseId, dtmCreated) VALUES (%s, %s, %s, %s)",
        (request_key, row_id, case_id, now),
    )


# ---- read ------------------------------------------------------------------------------------------------
async def case_detail(db: Database, service: int, case_id: int) -> dict[str, Any] | None:
    """The case row with its room's name, status and type (None when the case does not exist)."""
    return await db.fetch_one(
        "SELECT case_data.*, room_conference.room AS roomName, room_conference.status AS roomStatus,"
        " room_conference.roomType AS roomType, room_conference.id AS roomRowId"
        " FROM case_data LEFT JOIN room_conference ON case_data.roomId = room_conference.id"
        " WHERE case_data.caseId = %s AND case_data.service = %s ORDER BY case_data.id LIMIT 1",
        (case_id, service),
    )


async def case_room_name(conn: Connection | Database, case_id: int, service: int | None) -> str | None:
    """The room of a case (case_data.roomId -> room_conference.id), by caseId and service."""
    row = await conn.fetch_one(
        "SELECT room_conference.room FROM case_data JOIN room_conference ON case_data.roomId = room_conference.id"
        " WHERE case_data.caseId = %s AND case_data.service <=> %s ORDER BY case_data.id DESC LIMIT 1",
        (case_id, service),
    )
    return row["room"] if row else None


async def first_case_of_room(db: Connection | Database, room: str) -> dict[str, Any] | None:
    """The room's first case (lowest case_data.id) with the columns GET /car/task merges (RPC_CASE_OF_ROOM)."""
    return await db.fetch_one(
        "SELECT case_data.service, case_data.caseId, case_data.operationNumber, case_data.hn,"
        " case_data.patientMobile, case_data.userName, case_data.mobileCreated, case_data.dtmCreated,"
        " case_data.status FROM case_data JOIN room_conference ON case_data.roomId = room_conference.id"
        " WHERE room_conference.room = %s ORDER BY case_data.id LIMIT 1",
        (room,),
    )


# ---- history (GET /case/history) --------------------------------------------------------------------------
def history_where(query: HistoryQuery) -> tuple[str, list[Any]]:
    clauses = ["case_data.service = %s"]
    args: list[Any] = [query.service]
    if query.mode == "searchAll":
        pattern = like_pattern(query.text)
        clauses.append("(" + " OR ".join(f"{col} LIKE %s" for col in SEARCH_ALL_COLUMNS) + ")")
        args.extend([pattern] * len(SEARCH_ALL_COLUMNS))
    elif query.mode == "searchAdvanced":
        if query.statuses is None:
            clauses.append("case_data.status NOT IN ('On Case', 'Process', 'Closed')")
        elif query.statuses:
            clauses.append("case_data.status IN (" + ", ".join(["%s"] * len(query.statuses)) + ")")
            args.extend(query.statuses)
        else:
            clauses.append("FALSE")
        if query.date_start is not None and query.date_end is not None:
            clauses.append("case_data.dtmCreated BETWEEN %s AND %s")
            args.extend([query.date_start, query.date_end])
        for column, text in query.likes.items():
            clauses.append(f"case_data.{column} LIKE %s")
            args.append(like_pattern(text))
    return " AND ".join(clauses), args


async def case_history(db: Database, query: HistoryQuery) -> tuple[list[dict[str, Any]], int]:
    where, args = history_where(query)
    offset = (query.page - 1) * query.limit if query.page > 1 else 0
    rows = await db.fetch_all(
        f"SELECT {HISTORY_COLUMNS} {HISTORY_FROM} WHERE {where}"  # noqa: S608 - fixed SQL, values bound
        " ORDER BY case_data.caseId DESC, case_data.id DESC LIMIT %s OFFSET %s",
        (*args, query.limit, offset),
    )
    if not rows:  # the original answered count 0 whenever the page was empty
        return [], 0
    counted = await db.fetch_one(f"SELECT COUNT(*) AS n {HISTORY_FROM} WHERE {where}", args)  # noqa: S608
    for row in rows:
        row["dtmCreated"] = js_iso(row["dtmCreated"])
    return rows, int(counted["n"]) if counted else 0


# ---- update ----------------------------------------------------------------------------------------------
async def update_case_fields(conn: Connection, *, service: int, case_id: int, changes: dict[str, Any]) -> None:
    """Apply ``changes`` (column -> value; columns from the caller's fixed list) to the case."""
    sets = ", ".join(f"`{column}` = %s" for column in changes)
    await conn.execute(
        f"UPDATE case_data SET {sets} WHERE caseId = %s AND service = %s",  # noqa: S608 - fixed columns
        (*changes.values(), case_id, service),
    )


async def case_changed_row(conn: Connection, case_id: int, service: int) -> dict[str, Any] | None:
    """What CASE_UPDATED carries of the case (its first row by the case key), with its room's name."""
    return await conn.fetch_one(
        "SELECT case_data.id, case_data.status, case_data.organization, case_data.hn, case_data.patientMobile,"
        " room_conference.room FROM case_data"
        " LEFT JOIN room_conference ON room_conference.id = case_data.roomId"
        " WHERE case_data.caseId = %s AND case_data.service = %s ORDER BY case_data.id LIMIT 1",
        (case_id, service),
    )


async def cases_page(conn: Connection | Database, after: int, limit: int) -> list[dict[str, Any]]:
    """What CASE_UPDATED carries of each case (its first row by the case key, as case_changed_row reads it) with
    id > ``after``, by id."""
    return await conn.fetch_all(
        "SELECT c.id, c.caseId, c.service, c.status, c.organization, c.hn, c.patientMobile, r.room FROM case_data c"
        " LEFT JOIN room_conference r ON r.id = c.roomId"
        " WHERE c.id > %s AND c.caseId IS NOT NULL AND c.service IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM case_data o WHERE o.service = c.service AND o.caseId = c.caseId AND o.id < c.id)"
        " ORDER BY c.id LIMIT %s",
        (after, limit),
    )

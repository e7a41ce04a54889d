"""Cases (``case_data``): the original's case.service rules and SQL, always parameterised.

* caseId is a running number per service (the last case's caseId + 1, as the original). Allocation holds a
  per-service MySQL user lock until the insert commits, so concurrent creations never share a caseId.
* Every change writes its event (``conference.case.created`` / ``conference.case.updated``) through the
  outbox in the same transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec
from livekit import api

from conference import repository
from conference.domain import random_identity
from contracts.conference import CASE_CREATED, CASE_ROOM_OPENED, CASE_UPDATED, CaseChanged, CaseRoomOpened
from servicekit.bus import add_event
from servicekit.clock import js_iso, now_local
from servicekit.db import Connection, Database

CASE_LOCK_TIMEOUT_SECONDS = 10
CRM_TOKEN_TTL = timedelta(days=365)
ROOM_SOCKET_REOPEN = timedelta(days=1)  # the original's updateExpired in getDetail
CASE_STATUSES = ("On Case", "Process", "Closed")
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


def parse_id(value: object) -> int | None:
    """A non-negative id given as a number or a string of ASCII digits that fits an INT column; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= 2_147_483_647 else None
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= 2_147_483_647:
            return int(text)
    return None


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` matched literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def crm_token(api_key: str, api_secret: str) -> str:
    """The original ``createToken({name:"crm", days:365})``: random identity, name ``crm``, no room join."""
    return (
        api.AccessToken(api_key, api_secret)
        .with_identity(random_identity())
        .with_name("crm")
        .with_grants(api.VideoGrants(room_join=False))
        .with_ttl(CRM_TOKEN_TTL)
        .to_jwt()
    )


def js_text(value: object) -> str:
    """A value as a JavaScript template string rendered it (the original's usage-log texts): absent
    ``undefined``, null ``null``, booleans lower-case."""
    if value is msgspec.UNSET:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def created_log(case_id: int, user_name: object, organization: object) -> str:
    """usage_status_log.data text of POST /case/create (the original's wording)."""
    return f"Update Case id:{case_id} userName:{js_text(user_name)} organization:{js_text(organization)}"


def updated_log(body: dict[str, object]) -> str:
    """usage_status_log.data text of PUT /case/update; ``body`` maps field -> value (UNSET when absent)."""

    def field(name: str) -> str:
        return js_text(body.get(name, msgspec.UNSET))

    return (
        f"Update Case operationNumber:{field('operationNumber')} id:{field('caseId')} status:{field('status')}"
        f" hn:{field('hn')} patientMobile{field('patientMobile')} userName:{field('userName')}"
    )


# ---- create ----------------------------------------------------------------------------------------------
@asynccontextmanager
async def case_allocation(db: Database, service: int) -> AsyncIterator[Connection]:
    """One transaction holding the service's case lock until after it commits."""
    digest = hashlib.sha1(str(service).encode(), usedforsecurity=False).hexdigest()
    async with db.locked_transaction(f"conference.case.{digest}", CASE_LOCK_TIMEOUT_SECONDS) as conn:
        yield conn


async def room_id_of(db: Database, room: str) -> int | None:
    row = await db.fetch_one("SELECT id FROM room_conference WHERE room = %s ORDER BY id LIMIT 1", (room,))
    return None if row is None else int(row["id"])


async def _insert_case(
    conn: Connection,
    *,
    service: int,
    room: str,
    room_id: int,
    user_name: str | None,
    mobile: str | None,
    link_type: str | None,
    organization: str,
    status_log: Callable[[int], str],
) -> tuple[int, int]:
    """Insert the case (status ``On Case``) with the next caseId of ``service`` and its CASE_CREATED event, on a
    connection holding the service's case lock; returns (caseId, case_data.id). ``status_log`` makes the
    event's log text from the allocated caseId."""
    last = await conn.fetch_one("SELECT caseId FROM case_data WHERE service = %s ORDER BY id DESC LIMIT 1", (service,))
    case_id = (int(last["caseId"]) if last else 0) + 1
    row_id = await conn.insert(
        "INSERT INTO case_data (caseId, service, roomId, status, userName, mobileCreated, caseType, dtmCreated,"
        " organization) VALUES (%s, %s, %s, 'On Case', %s, %s, %s, %s, %s)",
        (case_id, service, room_id, user_name, mobile or "", link_type or "", now_local(), organization),
    )
    changed = CaseChanged(
        caseId=case_id, service=service, room=room, status="On Case", userName=user_name, statusLog=status_log(case_id),
        organization=organization, caseRowId=row_id,
    )  # fmt: skip
    await add_event(conn, CASE_CREATED, changed)
    return case_id, row_id


async def create_case(
    db: Database,
    *,
    service: int,
    room: str,
    room_id: int,
    user_name: str | None,
    mobile: str | None,
    link_type: str | None,
    organization: str,
    log_user_name: object = None,
) -> int:
    """POST /case/create: the next case of ``service``; returns its caseId. ``log_user_name`` is userName as
    the request gave it (UNSET when absent), for the usage-log text."""
    async with case_allocation(db, service) as conn:
        case_id, _ = await _insert_case(
            conn, service=service, room=room, room_id=room_id, user_name=user_name, mobile=mobile,
            link_type=link_type, organization=organization,
            status_log=lambda case_id: created_log(case_id, log_user_name, organization),
        )  # fmt: skip
    return case_id


@dataclass
class OpenedCase:
    case_id: int
    row_id: int
    created: bool


async def open_case(
    db: Database,
    *,
    service: int,
    room: str,
    room_id: int | None,
    user_name: str,
    mobile: str,
    case_type: str,
    organization: str,
) -> OpenedCase | None:
    """rpc.conference.case.open (link's IDEMS case): the case of ``room``, opened once per (service, room): a
    retry answers the case already opened. None when no room has that name (or ``room_id`` is not its id)."""
    request_key = f"{service}:{room}"
    async with case_allocation(db, service) as conn:
        done = await conn.fetch_one(
            "SELECT caseId, caseRowId FROM case_open_request WHERE requestKey = %s", (request_key,)
        )
        if done is not None:
            return OpenedCase(int(done["caseId"]), int(done["caseRowId"]), created=False)
        found = await conn.fetch_one("SELECT id FROM room_conference WHERE room = %s ORDER BY id LIMIT 1", (room,))
        if found is None or (room_id is not None and int(found["id"]) != room_id):
            return None
        # The original's IDEMS route wrote no usage log for its case: statusLog stays "".
        case_id, row_id = await _insert_case(
            conn, service=service, room=room, room_id=int(found["id"]), user_name=user_name, mobile=mobile,
            link_type=case_type, organization=organization, status_log=lambda _: "",
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO case_open_request (requestKey, caseRowId, caseId, dtmCreated) VALUES (%s, %s, %s, %s)",
            (request_key, row_id, case_id, now_local()),
        )
    return OpenedCase(case_id, row_id, created=True)


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


async def reopen_room_socket(db: Database, room: str, case_id: int, service: int) -> bool:
    """GET /case/get's side effect: a room without a live namespace (closed, or expired) gets dtmExpired = now
    + 1 day and CASE_ROOM_OPENED (realtime registers /{room}). True when it did."""
    now = now_local()
    expires = now + ROOM_SOCKET_REOPEN
    async with db.transaction() as conn:
        if not await repository.reopen_room_socket(conn, room, now, expires):
            return False
        opened = CaseRoomOpened(
            room=room, caseId=case_id, service=service, dtmExpired=expires.strftime("%Y-%m-%d %H:%M:%S")
        )
        await add_event(conn, CASE_ROOM_OPENED, opened)
    return True


@dataclass
class HistoryQuery:
    service: int | None
    mode: str  # "list" | "searchAll" | "searchAdvanced"
    page: int
    limit: int
    text: str = ""
    statuses: tuple[str, ...] | None = CASE_STATUSES  # None = "none of the three"
    date_start: datetime | None = None
    date_end: datetime | None = None
    likes: dict[str, str] = field(default_factory=dict)  # column -> text


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
async def update_case(
    db: Database, *, service: int, case_id: int, changes: dict[str, Any], user_name: str | None, status_log: str
) -> int:
    """Apply ``changes`` (column -> value) to the case in one transaction and record the event; returns the
    number of rows matched by the case key (0 when the case does not exist)."""
    async with db.transaction() as conn:
        if changes:
            sets = ", ".join(f"`{column}` = %s" for column in changes)
            await conn.execute(
                f"UPDATE case_data SET {sets} WHERE caseId = %s AND service = %s",  # noqa: S608 - fixed columns
                (*changes.values(), case_id, service),
            )
        found = await conn.fetch_one(
            "SELECT case_data.id, case_data.status, case_data.organization, case_data.hn, case_data.patientMobile,"
            " room_conference.room FROM case_data"
            " LEFT JOIN room_conference ON room_conference.id = case_data.roomId"
            " WHERE case_data.caseId = %s AND case_data.service = %s ORDER BY case_data.id LIMIT 1",
            (case_id, service),
        )
        if found is not None:
            await add_event(
                conn,
                CASE_UPDATED,
                CaseChanged(
                    caseId=case_id,
                    service=service,
                    room=found["room"],
                    status=found["status"],
                    organization=found["organization"],
                    userName=user_name,
                    statusLog=status_log,
                    hn=found["hn"],
                    patientMobile=found["patientMobile"],
                    caseRowId=found["id"],
                ),
            )
    return 0 if found is None else 1

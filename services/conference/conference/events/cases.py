"""Cases over NATS: every change of ``case_data`` writes its event (``conference.case.created`` /
``conference.case.updated``) through the outbox in the same transaction; GET /case/get's socket reopening
publishes CASE_ROOM_OPENED. caseId allocation (a running number per service, under a per-service lock) is in
``repository.cases``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from conference import repository
from conference.domain import created_log
from contracts.conference import (
    CASE_CREATED,
    CASE_ROOM_OPENED,
    CASE_UPDATED,
    CaseChanged,
    CaseOpen,
    CaseRoomOpened,
)
from servicekit.bus import add_event
from servicekit.clock import now_local
from servicekit.db import Connection, Database

ROOM_SOCKET_REOPEN = timedelta(days=1)  # the original's updateExpired in getDetail


# ---- create ----------------------------------------------------------------------------------------------
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
    case_id = await repository.cases.next_case_id(conn, service)
    row_id = await repository.cases.insert_case(
        conn, case_id=case_id, service=service, room_id=room_id, user_name=user_name, mobile=mobile,
        link_type=link_type, organization=organization, now=now_local(),
    )  # fmt: skip
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
    async with repository.cases.case_allocation(db, service) as conn:
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


async def open_case(db: Database, req: CaseOpen) -> OpenedCase | None:
    """rpc.conference.case.open (link's IDEMS case): the case of ``req.room``, opened once per (service, room): a
    retry answers the case already opened. None when no room has that name (or ``req.roomId`` is not its id)."""
    service, room, room_id = req.service, req.room, req.roomId
    request_key = f"{service}:{room}"
    async with repository.cases.case_allocation(db, service) as conn:
        done = await repository.cases.opened_request(conn, request_key)
        if done is not None:
            return OpenedCase(int(done["caseId"]), int(done["caseRowId"]), created=False)
        found = await repository.rooms.room_id_of(conn, room)
        if found is None or (room_id is not None and found != room_id):
            return None
        # The original's IDEMS route wrote no usage log for its case: statusLog stays "".
        case_id, row_id = await _insert_case(
            conn, service=service, room=room, room_id=found, user_name=req.userName, mobile=req.mobileCreated,
            link_type=req.caseType, organization=req.organization, status_log=lambda _: "",
        )  # fmt: skip
        await repository.cases.record_open_request(conn, request_key, row_id, case_id, now_local())
    return OpenedCase(case_id, row_id, created=True)


# ---- read ------------------------------------------------------------------------------------------------
async def reopen_room_socket(db: Database, room: str, case_id: int, service: int) -> bool:
    """GET /case/get's side effect: a room without a live namespace (closed, or expired) gets dtmExpired = now
    + 1 day and CASE_ROOM_OPENED (realtime registers /{room}). True when it did."""
    now = now_local()
    expires = now + ROOM_SOCKET_REOPEN
    async with db.transaction() as conn:
        if not await repository.rooms.reopen_room_socket(conn, room, now, expires):
            return False
        opened = CaseRoomOpened(
            room=room, caseId=case_id, service=service, dtmExpired=expires.strftime("%Y-%m-%d %H:%M:%S")
        )
        await add_event(conn, CASE_ROOM_OPENED, opened)
    return True


# ---- update ----------------------------------------------------------------------------------------------
async def update_case(
    db: Database, *, service: int, case_id: int, changes: dict[str, Any], user_name: str | None, status_log: str
) -> int:
    """Apply ``changes`` (column -> value) to the case in one transaction and record the event; returns the
    number of rows matched by the case key (0 when the case does not exist)."""
    async with db.transaction() as conn:
        if changes:
            await repository.cases.update_case_fields(conn, service=service, case_id=case_id, changes=changes)
        found = await repository.cases.case_changed_row(conn, case_id, service)
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

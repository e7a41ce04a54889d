"""The car task writes that publish, each in the transaction that writes the task (outbox): a new task with the
SMS command to link (TASK_SMS_REQUESTED), and a status change realtime pushes to the crew app
(TASK_STATUS_CHANGED)."""

from __future__ import annotations

import uuid
from typing import Any

from contracts.telemetry import TASK_SMS_REQUESTED, TASK_STATUS_CHANGED, TaskSmsRequested, TaskStatusChanged
from servicekit.bus import add_event
from servicekit.clock import now_local
from servicekit.db import Database, retry_rolled_back
from servicekit.web import Runtime, fail
from telemetry.domain import tasks as domain
from telemetry.repository import tasks as repository

UID_ATTEMPTS = 20
TASK_LOCK_TIMEOUT_SECONDS = 10


async def create_task(runtime: Runtime, lock: str, room: str, mobile: str, service: int | None, charset: str) -> str:
    """Cancel the room's running tasks, insert the new one and the SMS command, in one transaction; its uid. Run
    again when InnoDB rolls it back (its insert's gap locks against another room's creation or a consumer's)."""
    return await retry_rolled_back(lambda: _create_task(runtime, lock, room, mobile, service, charset))


async def _create_task(runtime: Runtime, lock: str, room: str, mobile: str, service: int | None, charset: str) -> str:
    assert runtime.db is not None
    now = now_local()
    async with runtime.db.locked_transaction(lock, TASK_LOCK_TIMEOUT_SECONDS) as conn:
        uid = ""
        for _ in range(UID_ATTEMPTS):
            candidate = domain.random_uid(charset)
            if not await repository.uid_taken(conn, candidate):
                uid = candidate
                break
        if not uid:
            raise fail("could not allocate a task id", 503)
        await repository.cancel_open_tasks(conn, room, now)
        await repository.insert_task(conn, uid, room, mobile, now)
        # The SMS belongs to link (tenant sender, domains, gateway): a command in the same transaction.
        await add_event(
            conn,
            TASK_SMS_REQUESTED,
            TaskSmsRequested(
                messageId=uuid.uuid4().hex,
                mobile=mobile,
                room=room,
                linkID=uid,
                path=f"/app/{uid}",
                service=service,
            ),
        )
    return uid


async def change_status(
    db: Database, row: dict[str, Any], uid: str, status: str, destination: dict[str, Any] | None
) -> None:
    """Set the task's status and its timestamp column, and tell the crew app (TASK_STATUS_CHANGED)."""
    async with db.transaction() as conn:
        await repository.set_task_status(conn, row["id"], status, domain.STATUS_COLUMNS[status], now_local())
        await add_event(
            conn,
            TASK_STATUS_CHANGED,
            TaskStatusChanged(uid=uid, room=row["room"], status=status, destination=destination),
        )

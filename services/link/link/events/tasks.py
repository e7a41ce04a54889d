"""What link does for telemetry's car tasks (issue 6 contract in contracts.telemetry and contracts.link):

* ``RPC_TENANT_DETAIL`` (ServiceQuery): a tenant's {id, name, latitude, longitude} (DECIMAL as text, as the
  original's driver gave it), code ``not_found`` when there is no such tenant.
* ``TASK_SMS_REQUESTED`` (TaskSmsRequested): a command from telemetry's outbox (POST /car/task texts the crew its
  app link). Applied once per event (handled_once) and once per ``messageId`` (the sms_message row id is derived
  from it), through link's own SMS path: tenant = ``service`` or the tenant of the room's links, domain = the
  tenant's next domain for ``linkID`` (round robin), text = prefix + domain + path, sender = smsSenderName.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from contracts.link import RPC_TENANT_DETAIL, ServiceQuery
from contracts.telemetry import TASK_SMS_REQUESTED, TaskSmsRequested
from link import domain, repository
from link.events import sms
from servicekit.bus import Event, apply_once, event_payload
from servicekit.db import Connection
from servicekit.web import Runtime

log = logging.getLogger(__name__)

TASK_CONSUMER = "link-task-sms"
_HEX_KEY = re.compile(r"^[0-9a-f]{32}$")


def sms_key(message_id: str) -> str:
    """The sms_message id (CHAR(32)) of a command: its messageId when it is 32 hex digits, else a digest of it."""
    return message_id if _HEX_KEY.match(message_id) else hashlib.sha256(message_id.encode()).hexdigest()[:32]


def task_sms_text(prefix: str, base: str, path: str) -> str:
    return f"{prefix}{base}{path}"


async def tenant_detail(runtime: Runtime, request: ServiceQuery) -> dict[str, Any]:
    assert runtime.db is not None
    row = await repository.tenants.tenant_detail(runtime.db, request.service)
    if row is None:
        raise LookupError("no such service")
    return domain.rows.plain(row)


async def apply_task_sms(runtime: Runtime, event: Event) -> str | None:
    """Record the crew's SMS of a task command; returns the queued message key (None: nothing to send)."""
    assert runtime.db is not None
    if event.subject != TASK_SMS_REQUESTED:
        return None
    command = event_payload(event, TaskSmsRequested)
    if command is None or not command.messageId or len(command.messageId) > 200:
        return None
    if len(command.room) > 50 or len(command.linkID) > 50 or len(command.path) > 200 or len(command.prefix) > 200:
        log.warning("task sms command refused: oversized field", extra={"messageId": command.messageId})
        return None
    key = sms_key(command.messageId)

    async def apply(conn: Connection) -> str | None:
        if await repository.sms.message_exists(conn, key):
            return None  # the same command published twice (two events): sent once
        service = (
            command.service if command.service is not None else await repository.links.room_service(conn, command.room)
        )
        tenant = await repository.tenants.get_tenant(conn, service) if service is not None else None
        pool = domain.links.domain_pool(tenant, command.linkType or "video")
        if not pool:
            log.warning("task sms not sent: no tenant domain", extra={"messageId": command.messageId})
            return None
        _index, base = domain.links.next_domain(
            pool, await repository.links.previous_domain_index(conn, command.linkID)
        )
        message = domain.sms.SmsMessage(
            sender=(tenant or {}).get("smsSenderName") or "",
            mobile=command.mobile.strip()[:20],
            text=task_sms_text(command.prefix, base, command.path),
        )
        return await sms.record(
            conn,
            message,
            enabled=runtime.settings.sms_enable,
            link_id=command.linkID,
            room=command.room,
            kind=(command.kind or "task")[:20],
            key=key,
        )

    queued = await apply_once(runtime.db, TASK_CONSUMER, event, apply)
    if queued:
        await sms.enqueue(runtime, queued)
    return queued


async def start(runtime: Runtime) -> None:
    assert runtime.bus is not None

    async def on_tenant(request: ServiceQuery) -> dict[str, Any]:
        return await tenant_detail(runtime, request)

    await runtime.bus.serve(RPC_TENANT_DETAIL, ServiceQuery, on_tenant)

    async def on_task_event(event: Event) -> None:
        await apply_task_sms(runtime, event)

    runtime.bus.consume("telemetry", TASK_CONSUMER, on_task_event, filter_subject="telemetry.sms.>")

"""The data_log consumer: ``recording.webhook.received`` (WebhookReceived), every LiveKit webhook recording
accepted, raw, written to ``data_log`` as the original's webhook receiver did (``data`` = the body as received,
``dtmCreated`` = when recording received it, local time). Durable, applied once each (``apply_once`` in the
applying transaction)."""

from __future__ import annotations

from datetime import datetime

from contracts.recording import WebhookReceived
from servicekit.bus import Event, apply_once, event_payload
from servicekit.clock import now_local, parse_local
from servicekit.db import Connection, Database
from telemetry.repository import data_log as repository

DATA_LOG_CONSUMER = "telemetry-data-log"


def _received_at(event: Event) -> datetime:
    return parse_local(event.occurred_at) or now_local()


async def apply_webhook(db: Database, event: Event) -> bool:
    """Write one webhook event to data_log; False when malformed or already applied."""
    hook = event_payload(event, WebhookReceived)
    if hook is None:
        return False

    async def apply(conn: Connection) -> bool:
        await repository.add_data_log(conn, hook.data, _received_at(event))
        return True

    return bool(await apply_once(db, DATA_LOG_CONSUMER, event, apply))

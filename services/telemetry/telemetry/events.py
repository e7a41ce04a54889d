"""Events telemetry consumes.

* ``recording.webhook.received`` (WebhookReceived): every LiveKit webhook recording accepted, raw — written to
  ``data_log`` as the original's webhook receiver did (``data`` = the body as received, ``dtmCreated`` = when
  recording received it, local time). Durable consumer, applied once per event (``handled_once`` in the
  inserting transaction).
"""

from __future__ import annotations

import logging
from datetime import datetime

from servicekit.bus import apply_once, event_payload
from servicekit.clock import now_local, parse_local
from servicekit.db import Connection, Database
from servicekit.events import RECORDING_WEBHOOK_RECEIVED, Event, WebhookReceived
from servicekit.web import Runtime
from telemetry import repository

log = logging.getLogger(__name__)

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


def start(runtime: Runtime) -> None:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db

    async def on_webhook(event: Event) -> None:
        if event.subject == RECORDING_WEBHOOK_RECEIVED:
            await apply_webhook(db, event)

    runtime.bus.consume("recording", DATA_LOG_CONSUMER, on_webhook, filter_subject=RECORDING_WEBHOOK_RECEIVED)

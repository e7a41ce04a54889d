"""Outgoing SMS: recorded in ``sms_message``, sent by an arq job through the SMS gateway's HTTP API.

Flow: a route calls :func:`record` inside its own transaction (the row is the record of the message; its ``id``
is the idempotency key), then :func:`enqueue` after the commit. The arq job id is that key, so a message is never
queued twice; the arq worker runs inside every replica of the link service (started in ``on_startup``).

The job (:func:`send_job`) sends only a row still ``queued``; it posts form-encoded ``src``/``dst``/``message``
with the ``x-api-key`` header (never logged, never stored, never in an event) and:

* 2xx: the row becomes ``sent`` and ``link.sms.sent`` is published (same transaction, outbox);
* network error or 5xx: retried with exponential back-off, at most :data:`MAX_ATTEMPTS` attempts, then ``failed``;
* 4xx: not retried, ``failed`` at once; ``link.sms.failed`` is published.

Exactly once: the gateway gets a message again only when the previous attempt did not succeed as far as we
know. One case is ambiguous: the gateway accepted the request but its answer was lost (connection dropped,
read timeout). We chose to retry then (an emergency link SMS that never arrives is worse than a duplicate) and
send the key as an ``Idempotency-Key`` header on every attempt, so a gateway that honours it (the test fake
does) drops the repeat. The row is also marked before each attempt, so two workers never send the same row
concurrently (arq's job lock) and a finished row is never sent again.

``SMS_ENABLE=false``: rows are recorded with status ``disabled`` and nothing is sent.
Rows left ``queued`` (a crash between commit and enqueue) are enqueued again by :func:`requeue_stale`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from arq import Retry

from contracts.link import LINK_SMS_FAILED, LINK_SMS_SENT, SmsOutcome
from link import domain
from servicekit.bus import add_event
from servicekit.clock import now_local
from servicekit.db import Connection
from servicekit.jobs import JobRunner
from servicekit.jobs import backoff as doubling_backoff
from servicekit.web import Runtime

log = logging.getLogger(__name__)

QUEUE = "arq:link:sms"
JOB = "send_sms"
MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
STALE_AFTER = timedelta(minutes=2)

QUEUED, SENT, FAILED, DISABLED = "queued", "sent", "failed", "disabled"


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): 0.5, 1, 2, 4... capped."""
    return doubling_backoff(attempt, BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS)


# ---- recording -------------------------------------------------------------------------------------------
async def record(
    conn: Connection,
    message: domain.SmsMessage,
    *,
    enabled: bool,
    link_id: str = "",
    room: str = "",
    kind: str = "link",
    key: str | None = None,
) -> str | None:
    """Insert the message row (inside the caller's transaction); returns its key, or None when there is
    nothing to send (``disabled``, or a number the gateway cannot take: ``failed`` at once, with its event)."""
    key = key or uuid.uuid4().hex  # a caller's idempotency key (a command's messageId), else a new one
    now = now_local()
    status, error = (QUEUED, "") if enabled else (DISABLED, "")
    if enabled and not domain.valid_mobile(message.mobile):
        status, error = FAILED, "invalid mobile"
    await conn.execute(
        "INSERT INTO sms_message (id, linkID, room, mobile, sender, text, kind, status, attempts, last_error, "
        "dtmCreated, dtmUpdated) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s)",
        (key, link_id, room, message.mobile, message.sender, message.text, kind, status, error, now, now),
    )
    if status == FAILED:
        await add_event(
            conn,
            LINK_SMS_FAILED,
            SmsOutcome(messageId=key, status=FAILED, mobile=message.mobile, linkID=link_id, room=room, kind=kind,
                       error=error),
        )  # fmt: skip
    return key if status == QUEUED else None


def _runner(runtime: Runtime) -> JobRunner | None:
    return runtime.extras.get("sms_jobs")


async def enqueue(runtime: Runtime, key: str) -> bool:
    """Queue the sending job (after the row is committed). A failure leaves the row for :func:`requeue_stale`."""
    runner = _runner(runtime)
    return False if runner is None else await runner.enqueue(key, key)


async def requeue_stale(runtime: Runtime) -> int:
    """Enqueue rows still ``queued`` long after creation (job id = key, so live jobs are not duplicated)."""
    assert runtime.db is not None
    rows = await runtime.db.fetch_all(
        "SELECT id FROM sms_message WHERE status = %s AND dtmCreated < %s ORDER BY dtmCreated LIMIT 500",
        (QUEUED, now_local() - STALE_AFTER),
    )
    count = 0
    for row in rows:
        count += await enqueue(runtime, row["id"])
    return count


# ---- sending ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    ok: bool
    retry: bool
    error: str = ""


async def post(client: httpx.AsyncClient, url: str, api_key: str, key: str, row: dict[str, Any]) -> Attempt:
    """One request to the gateway."""
    try:
        response = await client.post(
            url,
            data={"src": row["sender"], "dst": row["mobile"], "message": row["text"]},
            headers={"x-api-key": api_key, "Idempotency-Key": key},
        )
    except httpx.TransportError as exc:  # connect/read errors, timeouts, dropped connections
        return Attempt(ok=False, retry=True, error=f"{type(exc).__name__}")
    if response.is_success:
        return Attempt(ok=True, retry=False)
    error = f"HTTP {response.status_code}"
    return Attempt(ok=False, retry=response.status_code >= 500 or response.status_code == 429, error=error)


async def _finish(runtime: Runtime, row: dict[str, Any], status: str, attempts: int, error: str) -> None:
    assert runtime.db is not None
    now = now_local()
    async with runtime.db.transaction() as conn:
        changed = await conn.execute(
            "UPDATE sms_message SET status = %s, attempts = %s, last_error = %s, dtmUpdated = %s, dtmSent = %s "
            "WHERE id = %s AND status = %s",
            (status, attempts, error[:500], now, now if status == SENT else None, row["id"], QUEUED),
        )
        if changed != 1:
            return
        await add_event(
            conn,
            LINK_SMS_SENT if status == SENT else LINK_SMS_FAILED,
            SmsOutcome(
                messageId=row["id"],
                status=status,
                mobile=row["mobile"],
                linkID=row["linkID"],
                room=row["room"],
                kind=row["kind"],
                attempts=attempts,
                error=error,
            ),
        )
    log.info("sms %s", status, extra={"sms": row["id"], "attempts": attempts, "error": error})


async def send_job(ctx: dict[str, Any], key: str) -> str:
    """The arq job: one attempt at sending message ``key``; raises ``Retry`` for a retryable failure."""
    runtime: Runtime = ctx["runtime"]
    client: httpx.AsyncClient = ctx["http"]
    assert runtime.db is not None
    row = await runtime.db.fetch_one(
        "SELECT id, linkID, room, mobile, sender, text, kind, status, attempts FROM sms_message WHERE id = %s",
        (key,),
    )
    if row is None or row["status"] != QUEUED:
        return "skipped"
    settings = runtime.settings
    url, api_key = getattr(settings, "sms_api_url", ""), getattr(settings, "sms_api_key", "")
    if not url:
        await _finish(runtime, row, FAILED, row["attempts"], "SMS_API_URL is not set")
        return FAILED
    attempts = int(row["attempts"]) + 1
    await runtime.db.execute(
        "UPDATE sms_message SET attempts = %s, dtmUpdated = %s WHERE id = %s AND status = %s",
        (attempts, now_local(), key, QUEUED),
    )
    result = await post(client, url, api_key, key, row)
    if result.ok:
        await _finish(runtime, row, SENT, attempts, "")
        return SENT
    if result.retry and attempts < MAX_ATTEMPTS:
        await runtime.db.execute(
            "UPDATE sms_message SET last_error = %s, dtmUpdated = %s WHERE id = %s AND status = %s",
            (result.error[:500], now_local(), key, QUEUED),
        )
        log.warning("sms attempt failed, retrying", extra={"sms": key, "attempt": attempts, "error": result.error})
        raise Retry(defer=backoff(attempts))
    await _finish(runtime, row, FAILED, attempts, result.error)
    return FAILED


# ---- the in-process worker -------------------------------------------------------------------------------
async def start(runtime: Runtime) -> None:
    """Start the arq worker in this process (every replica processes jobs) and the queue used to enqueue; every
    replica re-enqueues stale rows now and then (harmless twice: the job id is the row key)."""
    runner = JobRunner(
        queue=QUEUE,
        job_name=JOB,
        job=send_job,
        max_tries=MAX_ATTEMPTS + 2,
        max_jobs=20,
        http_timeout=HTTP_TIMEOUT,
        sweep=requeue_stale,
        sweep_every=STALE_AFTER.total_seconds() / 2,
    )
    await runner.start(runtime)
    runtime.extras["sms_jobs"] = runner


async def stop(runtime: Runtime) -> None:
    """Stop picking jobs, let in-flight sends finish (bounded), then close."""
    runner: JobRunner | None = runtime.extras.pop("sms_jobs", None)
    if runner is not None:
        await runner.stop()

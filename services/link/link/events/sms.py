"""Outgoing SMS: recorded in ``sms_message`` (SQL in link.repository.sms), sent by an arq job through the SMS
gateway's HTTP API (the request in link.clients).

Flow: a route calls :func:`record` inside its own transaction (the row is the record of the message; its ``id``
is the idempotency key), then :func:`enqueue` after the commit. The arq job id is that key, so a message is never
queued twice; the arq worker runs inside every replica of the link service (started in ``on_startup``).

The job (:class:`SmsJob`, a servicekit RetriedJob) sends only a row still ``queued``; it posts form-encoded
``src``/``dst``/``message`` with the ``x-api-key`` header (never logged, never stored, never in an event) and:

* 2xx: the row becomes ``sent`` and ``link.sms.sent`` is published (same transaction, outbox);
* network error, 429 or 5xx: retried with exponential back-off, at most 5 attempts (RetriedJob's), then ``failed``;
* 4xx: not retried, ``failed`` at once; ``link.sms.failed`` is published.

Exactly once: the gateway gets a message again only when the previous attempt did not succeed as far as we
know. One case is ambiguous: the gateway accepted the request but its answer was lost (connection dropped,
read timeout). We chose to retry then (an emergency link SMS that never arrives is worse than a duplicate) and
send the key as an ``Idempotency-Key`` header on every attempt, so a gateway that honours it (the test fake
does) drops the repeat. The row is also marked before each attempt, so two workers never send the same row
concurrently (arq's job lock) and a finished row is never sent again.

``SMS_ENABLE=false``: rows are recorded with status ``disabled`` and nothing is sent.
Rows left ``queued`` (a crash between commit and enqueue) are enqueued again by ``requeue_stale`` (the sweep).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
from prometheus_client import Counter

from contracts.link import LINK_SMS_FAILED, LINK_SMS_SENT, SmsOutcome
from link import clients, domain, repository
from link.domain.sms import DISABLED, FAILED, QUEUED, SENT
from servicekit.bus import add_event
from servicekit.clock import now_local
from servicekit.db import Connection, Database
from servicekit.jobs import Outcome, RetriedJob
from servicekit.settings import CommonSettings

log = logging.getLogger(__name__)

QUEUE = "arq:link:sms"
JOB = "send_sms"
# Each attempt's outcome: sent, retry (failed, tried again) or failed (given up); attempt 0 = never tried.
SMS_JOBS = Counter("ems_sms_jobs_total", "SMS job attempts by outcome and attempt number", ["outcome", "attempt"])


# ---- recording -------------------------------------------------------------------------------------------
async def record(
    conn: Connection,
    message: domain.sms.SmsMessage,
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
    if enabled and not domain.sms.valid_mobile(message.mobile):
        status, error = FAILED, "invalid mobile"
    await repository.sms.insert_message(
        conn, key, link_id=link_id, room=room, message=message, kind=kind, status=status, error=error, now=now
    )
    if status == FAILED:
        await add_event(
            conn,
            LINK_SMS_FAILED,
            SmsOutcome(messageId=key, status=FAILED, mobile=message.mobile, linkID=link_id, room=room, kind=kind,
                       error=error),
        )  # fmt: skip
    return key if status == QUEUED else None


# ---- sending ---------------------------------------------------------------------------------------------
async def _finish(db: Database, row: dict[str, Any], status: str, attempts: int, error: str) -> None:
    now = now_local()
    async with db.transaction() as conn:
        if not await repository.sms.finish_message(conn, row["id"], status, attempts, error, now):
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


class SmsJob(RetriedJob):
    """Sending one ``sms_message`` row (its ``id`` is the key); attempts, retries and the sweep are RetriedJob's."""

    load_sql = repository.sms.LOAD_SQL
    claim_sql = repository.sms.CLAIM_SQL
    retry_sql = repository.sms.RETRY_SQL
    stale_sql = repository.sms.STALE_SQL
    pending = QUEUED

    def request(
        self, client: httpx.AsyncClient, settings: CommonSettings, key: str, row: dict[str, Any]
    ) -> httpx.Request:
        return clients.sms_request(client, settings, key, row)

    async def finish(self, db: Database, key: str, row: dict[str, Any], attempts: int, outcome: Outcome) -> None:
        await _finish(db, row, SENT if outcome.ok else FAILED, attempts, outcome.error)
        SMS_JOBS.labels(SENT if outcome.ok else FAILED, str(attempts)).inc()

    def retrying(self, key: str, attempts: int, error: str) -> None:
        SMS_JOBS.labels("retry", str(attempts)).inc()
        log.warning("sms attempt failed, retrying", extra={"sms": key, "attempt": attempts, "error": error})


# ---- the in-process worker (every replica) ---------------------------------------------------------------
SMS_JOB = SmsJob(queue=QUEUE, job_name=JOB, max_jobs=20)
enqueue = SMS_JOB.enqueue  # (runtime, key) after the commit; a failure leaves the row to requeue_stale
requeue_stale = SMS_JOB.requeue_stale
start = SMS_JOB.start
stop = SMS_JOB.stop
for _attempt in range(SMS_JOB.max_attempts + 1):  # exported at 0, so a first failure shows in increase()
    for _outcome in (SENT, FAILED, "retry"):
        SMS_JOBS.labels(_outcome, str(_attempt))

"""The encode queue: after an egress wrote its file (egress_ended) or a video was uploaded, the encode API is
asked to encode the record_media row (POST ``<ENCODE_API>/record/encode`` ``{"recordId": id, "hls": true}``,
which the original fired and forgot).

Flow: the writer inserts an ``encode_job`` row (status ``queued``) in its own transaction, then :func:`enqueue`
after the commit; the arq job id is the row id, so a row is never queued twice. The arq worker runs in every
replica (started by the app). The job:

* 2xx: ``sent`` (the encode API owns the encoding from then on);
* network error, 429 or 5xx: retried with exponential back-off, at most 5 attempts (servicekit's RetriedJob);
* 4xx, or attempts exhausted: ``failed``, and ``record_media.encode`` = 2 (failed).

Rows left ``queued`` (a crash between commit and enqueue, Redis down) are enqueued again by the sweep.
``GET /test/mp4/queue`` shows the queued rows; ``DELETE`` removes one or all of them (status ``removed``).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from servicekit.clock import now_local
from servicekit.db import Database
from servicekit.jobs import NotConfigured, Outcome, RetriedJob
from servicekit.settings import CommonSettings

log = logging.getLogger(__name__)

QUEUE = "arq:recording:encode"
JOB = "encode_record"

QUEUED, SENT, FAILED, REMOVED = "queued", "sent", "failed", "removed"
ENCODE_FAILED = 2  # record_media.encode


async def _finish(db: Database, record_id: int, status: str, attempts: int, error: str) -> None:
    now = now_local()
    async with db.transaction() as conn:
        changed = await conn.execute(
            "UPDATE encode_job SET status = %s, attempts = %s, lastError = %s, dtmUpdated = %s"
            " WHERE recordId = %s AND status = %s",
            (status, attempts, error[:500], now, record_id, QUEUED),
        )
        if changed == 1 and status == FAILED:
            await conn.execute(
                "UPDATE record_media SET encode = %s, dtmUpdated = %s WHERE id = %s", (ENCODE_FAILED, now, record_id)
            )
    log.info("encode %s", status, extra={"record_id": record_id, "attempts": attempts, "error": error})


class EncodeJob(RetriedJob):
    """Asking the encode API for one ``encode_job`` row (its ``recordId`` is the key); attempts, retries and the
    sweep are RetriedJob's."""

    load_sql = "SELECT status, attempts FROM encode_job WHERE recordId = %s"
    claim_sql = "UPDATE encode_job SET attempts = %s, dtmUpdated = %s WHERE recordId = %s AND status = %s"
    retry_sql = "UPDATE encode_job SET lastError = %s, dtmUpdated = %s WHERE recordId = %s AND status = %s"
    stale_sql = "SELECT recordId FROM encode_job WHERE status = %s AND dtmUpdated < %s ORDER BY dtmCreated LIMIT 500"
    pending = QUEUED

    def job_id(self, key: int) -> str:
        return f"encode:{key}"

    def request(
        self, client: httpx.AsyncClient, settings: CommonSettings, key: int, row: dict[str, Any]
    ) -> httpx.Request:
        base = str(getattr(settings, "encode_api", "") or "").rstrip("/")
        if not base:
            raise NotConfigured("ENCODE_API is not set")
        return client.build_request("POST", f"{base}/record/encode", json={"recordId": key, "hls": True})

    async def finish(self, db: Database, key: int, row: dict[str, Any], attempts: int, outcome: Outcome) -> None:
        await _finish(db, key, SENT if outcome.ok else FAILED, attempts, outcome.error)

    def retrying(self, key: int, attempts: int, error: str) -> None:
        log.warning("encode attempt failed, retrying", extra={"record_id": key, "attempt": attempts})


# ---- state for /test/mp4/queue --------------------------------------------------------------------------
async def queued(db: Database) -> list[dict[str, Any]]:
    return await db.fetch_all(
        "SELECT recordId, status, attempts, lastError, dtmCreated, dtmUpdated FROM encode_job WHERE status = %s"
        " ORDER BY dtmCreated, recordId LIMIT 1000",
        (QUEUED,),
    )


async def remove(db: Database, record_id: int | None = None) -> int:
    """Take queued rows out of the queue (a job already running finishes; a removed row is never sent)."""
    now = now_local()
    if record_id is None:
        return await db.execute(
            "UPDATE encode_job SET status = %s, dtmUpdated = %s WHERE status = %s", (REMOVED, now, QUEUED)
        )
    return await db.execute(
        "UPDATE encode_job SET status = %s, dtmUpdated = %s WHERE recordId = %s AND status = %s",
        (REMOVED, now, record_id, QUEUED),
    )


# ---- the in-process worker (every replica) ---------------------------------------------------------------
ENCODE_JOB = EncodeJob(queue=QUEUE, job_name=JOB, max_jobs=10)
enqueue = ENCODE_JOB.enqueue  # (runtime, record_id) after the commit; a failure leaves the row to the sweep
requeue_stale = ENCODE_JOB.requeue_stale
start = ENCODE_JOB.start
stop = ENCODE_JOB.stop

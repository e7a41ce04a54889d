"""The encode queue: after an egress wrote its file (egress_ended) or a video was uploaded, the encode API is
asked to encode the record_media row (POST ``<ENCODE_API>/record/encode`` ``{"recordId": id, "hls": true}``,
which the original fired and forgot).

Flow: the writer inserts an ``encode_job`` row (status ``queued``) in its own transaction, then :func:`enqueue`
after the commit; the arq job id is the row id, so a row is never queued twice. The arq worker runs in every
replica (started by the app). The job:

* 2xx: ``sent`` (the encode API owns the encoding from then on);
* network error, 429 or 5xx: retried with exponential back-off, at most :data:`MAX_ATTEMPTS` attempts;
* 4xx, or attempts exhausted: ``failed``, and ``record_media.encode`` = 2 (failed).

Rows left ``queued`` (a crash between commit and enqueue, Redis down) are enqueued again by the sweep.
``GET /test/mp4/queue`` shows the queued rows; ``DELETE`` removes one or all of them (status ``removed``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx
from arq import Retry

from servicekit.clock import now_local
from servicekit.db import Database
from servicekit.jobs import JobRunner
from servicekit.jobs import backoff as doubling_backoff
from servicekit.web import Runtime

log = logging.getLogger(__name__)

QUEUE = "arq:recording:encode"
JOB = "encode_record"
MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
STALE_AFTER = timedelta(minutes=2)

QUEUED, SENT, FAILED, REMOVED = "queued", "sent", "failed", "removed"
ENCODE_FAILED = 2  # record_media.encode


def backoff(attempt: int) -> float:
    return doubling_backoff(attempt, BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS)


def job_id(record_id: int) -> str:
    return f"encode:{record_id}"


async def enqueue(runtime: Runtime, record_id: int) -> bool:
    """Queue the job of a committed encode_job row; a failure leaves it to the sweep."""
    runner: JobRunner | None = runtime.extras.get("encode_jobs")
    return False if runner is None else await runner.enqueue(job_id(record_id), record_id)


async def requeue_stale(runtime: Runtime, older_than: timedelta = STALE_AFTER) -> int:
    assert runtime.db is not None
    rows = await runtime.db.fetch_all(
        "SELECT recordId FROM encode_job WHERE status = %s AND dtmUpdated < %s ORDER BY dtmCreated LIMIT 500",
        (QUEUED, now_local() - older_than),
    )
    count = 0
    for row in rows:
        count += await enqueue(runtime, int(row["recordId"]))
    return count


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


async def encode_job(ctx: dict[str, Any], record_id: int) -> str:
    """The arq job: one call to the encode API; raises ``Retry`` for a retryable failure."""
    runtime: Runtime = ctx["runtime"]
    client: httpx.AsyncClient = ctx["http"]
    db = runtime.db
    assert db is not None
    row = await db.fetch_one("SELECT status, attempts FROM encode_job WHERE recordId = %s", (record_id,))
    if row is None or row["status"] != QUEUED:
        return "skipped"
    base = str(getattr(runtime.settings, "encode_api", "") or "").rstrip("/")
    attempts = int(row["attempts"]) + 1
    if not base:
        await _finish(db, record_id, FAILED, attempts - 1, "ENCODE_API is not set")
        return FAILED
    await db.execute(
        "UPDATE encode_job SET attempts = %s, dtmUpdated = %s WHERE recordId = %s AND status = %s",
        (attempts, now_local(), record_id, QUEUED),
    )
    error, retry = "", False
    try:
        response = await client.post(f"{base}/record/encode", json={"recordId": record_id, "hls": True})
        if response.is_success:
            await _finish(db, record_id, SENT, attempts, "")
            return SENT
        error = f"HTTP {response.status_code}"
        retry = response.status_code >= 500 or response.status_code == 429
    except httpx.TransportError as exc:
        error, retry = type(exc).__name__, True
    if retry and attempts < MAX_ATTEMPTS:
        await db.execute(
            "UPDATE encode_job SET lastError = %s, dtmUpdated = %s WHERE recordId = %s AND status = %s",
            (error[:500], now_local(), record_id, QUEUED),
        )
        log.warning("encode attempt failed, retrying", extra={"record_id": record_id, "attempt": attempts})
        raise Retry(defer=backoff(attempts))
    await _finish(db, record_id, FAILED, attempts, error)
    return FAILED


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


# ---- the in-process worker -------------------------------------------------------------------------------
async def start(runtime: Runtime) -> None:
    runner = JobRunner(
        queue=QUEUE,
        job_name=JOB,
        job=encode_job,
        max_tries=MAX_ATTEMPTS + 2,
        max_jobs=10,
        http_timeout=HTTP_TIMEOUT,
        sweep=requeue_stale,
        sweep_every=STALE_AFTER.total_seconds() / 2,
    )
    await runner.start(runtime)
    runtime.extras["encode_jobs"] = runner


async def stop(runtime: Runtime) -> None:
    runner: JobRunner | None = runtime.extras.pop("encode_jobs", None)
    if runner is not None:
        await runner.stop()

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

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import httpx
from arq import Retry
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, func

from servicekit.clock import now_local
from servicekit.db import Database
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
    return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))


def _pool(runtime: Runtime) -> ArqRedis | None:
    return runtime.extras.get("encode_pool")


def job_id(record_id: int) -> str:
    return f"encode:{record_id}"


async def enqueue(runtime: Runtime, record_id: int) -> bool:
    """Queue the job of a committed encode_job row; a failure leaves it to the sweep."""
    pool = _pool(runtime)
    if pool is None:
        return False
    try:
        job = await pool.enqueue_job(JOB, record_id, _job_id=job_id(record_id), _queue_name=QUEUE)
    except Exception:  # noqa: BLE001 - Redis down: the sweep enqueues it later
        log.warning("encode enqueue failed; left for the sweep", extra={"record_id": record_id}, exc_info=True)
        return False
    return job is not None


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
    pool = await create_pool(RedisSettings.from_dsn(runtime.settings.redis_dsn), default_queue_name=QUEUE)
    client = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
    worker = Worker(
        functions=[func(encode_job, name=JOB, max_tries=MAX_ATTEMPTS + 2)],
        redis_pool=pool,
        queue_name=QUEUE,
        handle_signals=False,
        ctx={"runtime": runtime, "http": client},
        poll_delay=0.2,
        max_jobs=10,
        job_timeout=60,
        keep_result=3600,
        log_results=False,
    )
    runtime.extras.update(encode_pool=pool, encode_http=client, encode_worker=worker)
    runtime.extras["encode_task"] = asyncio.create_task(worker.async_run())
    runtime.background.append(asyncio.create_task(_sweep(runtime)))


async def _sweep(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(STALE_AFTER.total_seconds() / 2)
        try:
            await requeue_stale(runtime)
        except Exception:  # noqa: BLE001 - next round
            log.warning("encode sweep failed", exc_info=True)


async def stop(runtime: Runtime) -> None:
    worker: Worker | None = runtime.extras.pop("encode_worker", None)
    task: asyncio.Task[None] | None = runtime.extras.pop("encode_task", None)
    if worker is not None:
        worker.allow_pick_jobs = False
        pending = [t for t in worker.tasks.values() if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=12)
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await worker.close()
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    client: httpx.AsyncClient | None = runtime.extras.pop("encode_http", None)
    if client is not None:
        await client.aclose()
    pool: ArqRedis | None = runtime.extras.pop("encode_pool", None)
    if pool is not None:
        with contextlib.suppress(Exception):
            await pool.aclose()

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
``GET /test/mp4/queue`` shows the queued rows; ``DELETE`` removes one or all of them (status ``removed``): the
rows' SQL and the job's statements are recording.repository's, the call recording.clients.encode's.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from prometheus_client import Counter

from recording import repository
from recording.clients.encode import encode_request
from recording.domain import FAILED, QUEUED, SENT
from servicekit.clock import now_local
from servicekit.db import Database
from servicekit.jobs import Outcome, RetriedJob
from servicekit.settings import CommonSettings

log = logging.getLogger(__name__)

QUEUE = "arq:recording:encode"
JOB = "encode_record"
# Each attempt's outcome: sent, retry (failed, tried again) or failed (given up); attempt 0 = never tried.
ENCODE_JOBS = Counter("ems_encode_jobs_total", "Encode job attempts by outcome and attempt", ["outcome", "attempt"])


async def _finish(db: Database, record_id: int, status: str, attempts: int, error: str) -> None:
    now = now_local()
    async with db.transaction() as conn:
        changed = await repository.end_encode_job(conn, record_id, status, attempts, error, now)
        if changed == 1 and status == FAILED:
            await repository.mark_encode_failed(conn, record_id, now)
    log.info("encode %s", status, extra={"record_id": record_id, "attempts": attempts, "error": error})


class EncodeJob(RetriedJob):
    """Asking the encode API for one ``encode_job`` row (its ``recordId`` is the key); attempts, retries and the
    sweep are RetriedJob's."""

    load_sql = repository.ENCODE_JOB_LOAD
    claim_sql = repository.ENCODE_JOB_CLAIM
    retry_sql = repository.ENCODE_JOB_RETRY
    stale_sql = repository.ENCODE_JOB_STALE
    pending = QUEUED

    def job_id(self, key: int) -> str:
        return f"encode:{key}"

    def request(
        self, client: httpx.AsyncClient, settings: CommonSettings, key: int, row: dict[str, Any]
    ) -> httpx.Request:
        return encode_request(client, str(getattr(settings, "encode_api", "") or ""), key)

    async def finish(self, db: Database, key: int, row: dict[str, Any], attempts: int, outcome: Outcome) -> None:
        await _finish(db, key, SENT if outcome.ok else FAILED, attempts, outcome.error)
        ENCODE_JOBS.labels(SENT if outcome.ok else FAILED, str(attempts)).inc()

    def retrying(self, key: int, attempts: int, error: str) -> None:
        ENCODE_JOBS.labels("retry", str(attempts)).inc()
        log.warning("encode attempt failed, retrying", extra={"record_id": key, "attempt": attempts})


# ---- the in-process worker (every replica) ---------------------------------------------------------------
ENCODE_JOB = EncodeJob(queue=QUEUE, job_name=JOB, max_jobs=10)
enqueue = ENCODE_JOB.enqueue  # (runtime, record_id) after the commit; a failure leaves the row to the sweep
requeue_stale = ENCODE_JOB.requeue_stale
start = ENCODE_JOB.start
stop = ENCODE_JOB.stop
for _attempt in range(ENCODE_JOB.max_attempts + 1):  # exported at 0, so a first failure shows in increase()
    for _outcome in (SENT, FAILED, "retry"):
        ENCODE_JOBS.labels(_outcome, str(_attempt))

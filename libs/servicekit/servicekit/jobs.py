"""Durable background jobs run inside the service process (arq on the service's Redis).

Every replica runs a worker, so jobs survive the loss of one. A job's state of record lives in the service's own
table (written in the business transaction); the queue only carries the row key, used as the arq job id so one row
is never queued twice. A sweep re-enqueues rows that a crash between commit and enqueue (or Redis being down) left
behind.

:class:`RetriedJob` is the job of that kind that hands a row to an HTTP API: the attempt loop, the outcome of a
call (2xx done; network error, 429 or 5xx retried with doubling back-off; other statuses, or the attempts used up,
given up), the sweep and the runner; the service supplies the statements on its own table, its request and what
it stores and publishes when the row is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import httpx
from arq import Retry
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, func

from servicekit.clock import now_local
from servicekit.db import Database
from servicekit.settings import CommonSettings
from servicekit.web import Runtime

log = logging.getLogger(__name__)

# In-flight jobs get this long to finish at shutdown before they are cancelled (and retried by another replica).
STOP_GRACE_SECONDS = 12


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before retry number ``attempt`` (1-based): doubling from ``base``, at most ``cap``."""
    return min(cap, base * 2 ** (attempt - 1))


class JobRunner:
    """One job function on one queue: the arq pool to enqueue with, a worker, an HTTP client for the job and a
    periodic sweep. The job function gets arq's ctx with ``runtime`` and ``http`` in it."""

    def __init__(
        self,
        *,
        queue: str,
        job_name: str,
        job: Callable[..., Awaitable[Any]],
        max_tries: int,
        max_jobs: int,
        http_timeout: httpx.Timeout,
        sweep: Callable[[Runtime], Awaitable[int]] | None = None,
        sweep_every: float = 60.0,
    ) -> None:
        self.queue = queue
        self.job_name = job_name
        self._job = job
        self._max_tries = max_tries
        self._max_jobs = max_jobs
        self._http_timeout = http_timeout
        self._sweep = sweep
        self._sweep_every = sweep_every
        self.pool: ArqRedis | None = None
        self._http: httpx.AsyncClient | None = None
        self._worker: Worker | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self, runtime: Runtime) -> None:
        self.pool = await create_pool(RedisSettings.from_dsn(runtime.settings.redis_dsn), default_queue_name=self.queue)
        self._http = httpx.AsyncClient(timeout=self._http_timeout)
        self._worker = Worker(
            functions=[func(self._job, name=self.job_name, max_tries=self._max_tries)],
            redis_pool=self.pool,
            queue_name=self.queue,
            handle_signals=False,
            ctx={"runtime": runtime, "http": self._http},
            poll_delay=0.2,
            max_jobs=self._max_jobs,
            job_timeout=60,
            keep_result=3600,
            log_results=False,
        )
        self._tasks.append(asyncio.create_task(self._worker.async_run()))
        if self._sweep is not None:
            self._tasks.append(asyncio.create_task(self._sweep_forever(runtime, self._sweep)))

    async def enqueue(self, key: str, *args: Any) -> bool:
        """Queue the job for ``key`` (its job id); False when not queued now (the sweep will)."""
        if self.pool is None:
            return False
        try:
            job = await self.pool.enqueue_job(self.job_name, *args, _job_id=key, _queue_name=self.queue)
        except Exception:  # noqa: BLE001 - Redis down: the sweep enqueues it later
            log.warning("enqueue failed; left for the sweep", extra={"queue": self.queue, "job": key}, exc_info=True)
            return False
        return job is not None

    async def _sweep_forever(self, runtime: Runtime, sweep: Callable[[Runtime], Awaitable[int]]) -> None:
        while True:
            await asyncio.sleep(self._sweep_every)
            try:
                await sweep(runtime)
            except Exception:  # noqa: BLE001 - next round
                log.warning("job sweep failed", extra={"queue": self.queue}, exc_info=True)

    async def stop(self) -> None:
        """Stop picking jobs, let in-flight ones finish (bounded), then close."""
        if self._worker is not None:
            self._worker.allow_pick_jobs = False
            pending = [t for t in self._worker.tasks.values() if not t.done()]
            if pending:
                await asyncio.wait(pending, timeout=STOP_GRACE_SECONDS)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._worker.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if self._http is not None:
            await self._http.aclose()
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await self.pool.aclose()


# ---- a row handed to an HTTP API, retried ----------------------------------------------------------------
SENT, FAILED, SKIPPED = "sent", "failed", "skipped"  # what RetriedJob.run returns (arq keeps it as the result)


@dataclass(frozen=True)
class Outcome:
    """What one call came to: ``ok`` (2xx); else ``retry`` (worth another attempt) and the ``error`` to store."""

    ok: bool
    retry: bool = False
    error: str = ""


def classify(response: httpx.Response) -> Outcome:
    """2xx is done; 429 and 5xx are worth a retry; any other status is final (``HTTP <status>``)."""
    if response.is_success:
        return Outcome(ok=True)
    status = response.status_code
    return Outcome(ok=False, retry=status >= 500 or status == 429, error=f"HTTP {status}")


async def call(client: httpx.AsyncClient, request: httpx.Request) -> Outcome:
    """Send ``request`` once; a network error (connect/read errors, timeouts, dropped connections) is retried."""
    try:
        response = await client.send(request)
    except httpx.TransportError as exc:
        return Outcome(ok=False, retry=True, error=type(exc).__name__)
    return classify(response)


class NotConfigured(Exception):
    """Raised by :meth:`RetriedJob.request` when there is nowhere to send: the row is given up at once, with the
    exception's text as its error and no attempt counted."""


@dataclass(frozen=True, kw_only=True, eq=False)
class RetriedJob(ABC):
    """A job that hands the row of ``key`` in the service's job table to an HTTP API, at most ``max_attempts``
    times.

    One run (:meth:`run`) is one attempt: the row is loaded (gone or no longer pending: skipped), the attempt is
    counted in the row before the call, then the call's :class:`Outcome` decides: ok, :meth:`finish`; retryable
    with attempts left, the error noted in the row and ``arq.Retry`` raised after :func:`backoff`; otherwise
    :meth:`finish` as given up. ``enqueue`` queues ``key`` under :meth:`job_id` (so a row is never queued twice);
    the sweep re-enqueues the pending rows left behind; ``start``/``stop`` run the worker in the service process.

    The service's part: its statements on its own table (servicekit runs them, never writes them; each guards on
    the row still being ``pending``, so a row finished or removed meanwhile is left alone), its :meth:`request`,
    and :meth:`finish`, which stores the final state and writes the service's events in one transaction."""

    # the service's statements, with their parameters in this order
    load_sql: ClassVar[str]  # (key) -> the row, with ``status`` and ``attempts`` (attempts made so far)
    claim_sql: ClassVar[str]  # (attempts, now, key, pending): the attempt about to be made is number ``attempts``
    retry_sql: ClassVar[str]  # (error, now, key, pending): that attempt failed with ``error`` (<= 500 characters)
    stale_sql: ClassVar[str]  # (pending, before) -> pending rows older than ``before``, key in first column
    pending: ClassVar[str] = "queued"  # the status of a row still to be sent

    queue: str
    job_name: str
    max_jobs: int
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    http_timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(10.0, connect=5.0))
    stale_after: timedelta = timedelta(minutes=2)

    # ---- the service's part
    def job_id(self, key: Any) -> str:
        return str(key)

    @abstractmethod
    def request(
        self, client: httpx.AsyncClient, settings: CommonSettings, key: Any, row: dict[str, Any]
    ) -> httpx.Request:
        """The call for the row (``client.build_request``); raise :class:`NotConfigured` when there is no target."""

    @abstractmethod
    async def finish(self, db: Database, key: Any, row: dict[str, Any], attempts: int, outcome: Outcome) -> None:
        """The row is done: sent when ``outcome.ok``, else given up with ``outcome.error``."""

    def retrying(self, key: Any, attempts: int, error: str) -> None:
        """Log attempt number ``attempts`` failing with ``error``, to be retried."""
        log.warning("job attempt failed, retrying", extra={"job": self.job_name, "key": key, "attempt": attempts})

    # ---- the mechanism
    def backoff(self, attempt: int) -> float:
        return backoff(attempt, self.backoff_base, self.backoff_cap)

    async def run(self, ctx: dict[str, Any], key: Any) -> str:
        """The arq job: one attempt for ``key``; raises ``Retry`` for a retryable failure."""
        runtime: Runtime = ctx["runtime"]
        client: httpx.AsyncClient = ctx["http"]
        db = runtime.db
        assert db is not None
        row = await db.fetch_one(self.load_sql, (key,))
        if row is None or row["status"] != self.pending:
            return SKIPPED
        made = int(row["attempts"])
        try:
            request = self.request(client, runtime.settings, key, row)
        except NotConfigured as exc:
            await self.finish(db, key, row, made, Outcome(ok=False, error=str(exc)))
            return FAILED
        attempts = made + 1
        await db.execute(self.claim_sql, (attempts, now_local(), key, self.pending))
        outcome = await call(client, request)
        if not outcome.ok and outcome.retry and attempts < self.max_attempts:
            await db.execute(self.retry_sql, (outcome.error[:500], now_local(), key, self.pending))
            self.retrying(key, attempts, outcome.error)
            raise Retry(defer=self.backoff(attempts))
        await self.finish(db, key, row, attempts, outcome)
        return SENT if outcome.ok else FAILED

    def _runner(self, runtime: Runtime) -> JobRunner | None:
        return runtime.extras.get(self.queue)

    async def enqueue(self, runtime: Runtime, key: Any) -> bool:
        """Queue the job of a committed row; a failure leaves it to the sweep."""
        runner = self._runner(runtime)
        return False if runner is None else await runner.enqueue(self.job_id(key), key)

    async def requeue_stale(self, runtime: Runtime) -> int:
        """Enqueue the rows still pending after ``stale_after`` (the job id is the row's, so live jobs are not
        duplicated)."""
        assert runtime.db is not None
        rows = await runtime.db.fetch_all(self.stale_sql, (self.pending, now_local() - self.stale_after))
        count = 0
        for row in rows:
            count += await self.enqueue(runtime, next(iter(row.values())))
        return count

    async def start(self, runtime: Runtime) -> None:
        """Start the arq worker in this process (every replica processes jobs) and the queue used to enqueue; every
        replica re-enqueues stale rows now and then (harmless twice: the job id is the row's)."""
        runner = JobRunner(
            queue=self.queue,
            job_name=self.job_name,
            job=self.run,
            max_tries=self.max_attempts + 2,
            max_jobs=self.max_jobs,
            http_timeout=self.http_timeout,
            sweep=self.requeue_stale,
            sweep_every=self.stale_after.total_seconds() / 2,
        )
        await runner.start(runtime)
        runtime.extras[self.queue] = runner

    async def stop(self, runtime: Runtime) -> None:
        """Stop picking jobs, let in-flight ones finish (bounded), then close."""
        runner: JobRunner | None = runtime.extras.pop(self.queue, None)
        if runner is not None:
            await runner.stop()

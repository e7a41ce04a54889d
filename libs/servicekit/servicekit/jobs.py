"""Durable background jobs run inside the service process (arq on the service's Redis).

Every replica runs a worker, so jobs survive the loss of one. A job's state of record lives in the service's own
table (written in the business transaction); the queue only carries the row key, used as the arq job id so one row
is never queued twice. A sweep re-enqueues rows that a crash between commit and enqueue (or Redis being down) left
behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, func

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

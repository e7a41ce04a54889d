"""Periodic jobs that run once per slot across all replicas of a service.

Slots are aligned to the local wall clock (Asia/Bangkok by default): a job "every 30 minutes" runs at :00 and
:30. Each replica wakes at every slot; the first to take the Redis key ``schedule:<service>:<job>:<slot>``
(SET NX with a TTL) runs the job, the others skip it. Jobs must be idempotent (a sweep that finds nothing to
do does nothing), so a run that fails half-way is simply done again at the next slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis.asyncio import Redis

from servicekit.clock import LOCAL_TZ

log = logging.getLogger(__name__)


def slot_start(now: datetime, every: timedelta) -> datetime:
    """The start of the slot containing ``now`` (aware), counted from local midnight."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    slots = (now - midnight) // every
    return midnight + slots * every


@dataclass
class Job:
    name: str
    every: timedelta
    run: Callable[[], Awaitable[object]]
    runs: int = 0
    last_error: str = ""


@dataclass
class Scheduler:
    redis: Redis
    service: str
    jobs: list[Job] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def every(self, name: str, every: timedelta, run: Callable[[], Awaitable[object]]) -> Job:
        job = Job(name, every, run)
        self.jobs.append(job)
        return job

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(job)) for job in self.jobs]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_slot(self, job: Job, slot: datetime) -> bool:
        """Run ``job`` for ``slot`` unless another replica already took it; True when this one ran it."""
        key = f"schedule:{self.service}:{job.name}:{slot.strftime('%Y%m%dT%H%M%S')}"
        ttl = max(int(job.every.total_seconds() * 2), 60)
        if not await self.redis.set(key, "1", nx=True, ex=ttl):
            return False
        try:
            await job.run()
            job.runs += 1
            job.last_error = ""
        except Exception as exc:  # the next slot tries again
            job.last_error = repr(exc)
            log.exception("scheduled job failed", extra={"job": job.name})
        return True

    async def _loop(self, job: Job) -> None:
        while True:
            now = datetime.now(LOCAL_TZ)
            next_slot = slot_start(now, job.every) + job.every
            await asyncio.sleep((next_slot - now).total_seconds())
            await self.run_slot(job, next_slot)

"""Scheduled jobs: slots on the local clock, once per slot however many replicas run."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from redis.asyncio import Redis

from servicekit.clock import LOCAL_TZ
from servicekit.schedule import Job, Scheduler, slot_start


def test_slots_align_to_local_wall_clock() -> None:
    now = datetime(2026, 11, 29, 14, 47, 12, tzinfo=LOCAL_TZ)
    assert slot_start(now, timedelta(minutes=30)) == datetime(2026, 11, 29, 14, 30, tzinfo=LOCAL_TZ)
    assert slot_start(now, timedelta(minutes=10)) == datetime(2026, 11, 29, 14, 40, tzinfo=LOCAL_TZ)
    assert slot_start(now, timedelta(hours=1)) == datetime(2026, 11, 29, 14, 0, tzinfo=LOCAL_TZ)


async def test_a_slot_runs_once_across_replicas(suite) -> None:
    calls: list[str] = []

    async def sweep() -> None:
        await asyncio.sleep(0.05)
        calls.append("ran")

    replicas = [Scheduler(Redis.from_url(suite.redis_url), "schedtest") for _ in range(5)]
    jobs = [replica.every("sweep", timedelta(minutes=30), sweep) for replica in replicas]
    slot = datetime(2026, 11, 29, 15, 0, tzinfo=LOCAL_TZ)
    ran = await asyncio.gather(*(r.run_slot(j, slot) for r, j in zip(replicas, jobs, strict=True)))
    assert sorted(ran) == [False, False, False, False, True]
    assert calls == ["ran"]
    # the next slot runs again
    assert await replicas[0].run_slot(jobs[0], slot + timedelta(minutes=30)) is True
    assert calls == ["ran", "ran"]
    for replica in replicas:
        await replica.redis.aclose()


async def test_a_failing_job_is_recorded_and_does_not_stop_the_scheduler(suite) -> None:
    async def broken() -> None:
        raise RuntimeError("database away")

    scheduler = Scheduler(Redis.from_url(suite.redis_url), "schedtest")
    job: Job = scheduler.every("broken", timedelta(minutes=10), broken)
    assert await scheduler.run_slot(job, datetime(2026, 11, 29, 15, 10, tzinfo=LOCAL_TZ)) is True
    assert "database away" in job.last_error and job.runs == 0
    await scheduler.redis.aclose()

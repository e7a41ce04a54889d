"""Link's expiry sweep (link.events.jobs) on two Scheduler "replicas" against the suite's database and Redis: it runs
once per slot, disables only expired enabled links, publishes link.link.expired once per link, and a later slot
finds nothing to do."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from link.events import jobs
from servicekit.clock import LOCAL_TZ
from servicekit.db import Database
from servicekit.schedule import Scheduler
from servicekit.settings import CommonSettings


def _now_local() -> datetime:
    return datetime.now(LOCAL_TZ).replace(tzinfo=None, microsecond=0)


async def _insert(suite: Any, link_id: str, expires: datetime, enabled: int = 1) -> None:
    await suite.execute(
        "link",
        "INSERT INTO link_connect (linkID, room, mobile, userName, userType, linkType, enabled, dtmCreated,"
        " dtmExpired) VALUES (%s, 'Sweep Room', '', 'u', 'user', 'video', %s, %s, %s)",
        (link_id, enabled, _now_local() - timedelta(days=2), expires),
    )


async def _expired_events(suite: Any, link_id: str) -> list[dict[str, Any]]:
    rows = await suite.query("link", "SELECT payload FROM outbox WHERE subject = 'link.link.expired'")
    payloads = [json.loads(r["payload"])["data"] for r in rows]
    return [p for p in payloads if p["linkID"] == link_id]


async def test_expiry_sweep_runs_once_across_replicas(suite: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    expired, fresh, already_off = f"x{tag}", f"f{tag}", f"o{tag}"
    await _insert(suite, expired, _now_local() - timedelta(minutes=5))
    await _insert(suite, fresh, _now_local() + timedelta(hours=5))
    await _insert(suite, already_off, _now_local() - timedelta(hours=5), enabled=0)

    db = await Database.connect(CommonSettings(mysql_database=suite.db_name("link")), create=False)
    service = f"link-test-{tag}"
    replicas = [Scheduler(Redis.from_url(suite.redis_url), service) for _ in range(2)]
    for replica in replicas:
        jobs.schedule(replica, db)
    try:
        slot = datetime(2026, 11, 29, 16, 0, tzinfo=LOCAL_TZ)
        sweeps = [next(j for j in r.jobs if j.name == "expire-links") for r in replicas]
        assert all(j.every == timedelta(minutes=30) for j in sweeps)
        ran = await asyncio.gather(*(r.run_slot(j, slot) for r, j in zip(replicas, sweeps, strict=True)))
        assert sorted(ran) == [False, True]
        assert sum(j.runs for j in sweeps) == 1 and all(j.last_error == "" for j in sweeps)

        rows = await suite.query("link", "SELECT linkID, enabled FROM link_connect WHERE linkID IN (%s, %s, %s)",
                                 (expired, fresh, already_off))  # fmt: skip
        assert {r["linkID"]: r["enabled"] for r in rows} == {expired: 0, fresh: 1, already_off: 0}
        events = await _expired_events(suite, expired)
        assert len(events) == 1 and events[0]["room"] == "Sweep Room" and events[0]["linkType"] == "video"
        assert await _expired_events(suite, already_off) == [] and await _expired_events(suite, fresh) == []
        changed = await suite.query("link", "SELECT payload FROM outbox WHERE subject = 'link.link.fields_changed'"
                                    " AND payload LIKE %s", (f"%{expired}%",))  # fmt: skip
        assert [json.loads(r["payload"])["data"]["fields"] for r in changed] == [{"enabled": 0}]

        # The next slot finds nothing for these links and publishes nothing again.
        assert await replicas[1].run_slot(sweeps[1], slot + timedelta(minutes=30)) is True
        assert len(await _expired_events(suite, expired)) == 1
        assert expired not in await jobs.expire_links(db)
    finally:
        await db.close()
        for replica in replicas:
            await replica.redis.aclose()


async def test_concurrent_sweeps_expire_each_link_once(suite: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = [f"c{tag}{i}" for i in range(30)]
    for link_id in ids:
        await _insert(suite, link_id, _now_local() - timedelta(minutes=1))
    db = await Database.connect(CommonSettings(mysql_database=suite.db_name("link")), create=False)
    try:
        results = await asyncio.gather(jobs.expire_links(db), jobs.expire_links(db))
        mine = [link_id for result in results for link_id in result if link_id in ids]
        assert sorted(mine) == sorted(ids)  # each once, none twice
        for link_id in ids[:3]:
            assert len(await _expired_events(suite, link_id)) == 1
    finally:
        await db.close()


async def test_a_zero_expiry_date_never_expires_and_does_not_stop_the_sweep(suite: Any) -> None:
    """Migrated MySQL rows may hold '0000-00-00 00:00:00': no expiry (as getdetail reads it); others still expire."""
    tag = uuid.uuid4().hex[:8]
    zero, expired = f"z{tag}", f"e{tag}"
    await suite.execute(
        "link",
        "INSERT INTO link_connect (linkID, room, mobile, userName, userType, linkType, enabled, dtmCreated,"
        " dtmExpired) VALUES (%s, 'Sweep Room', '', 'u', 'user', 'video', 1, %s, '0000-00-00 00:00:00')",
        (zero, _now_local()),
    )
    await _insert(suite, expired, _now_local() - timedelta(minutes=1))
    db = await Database.connect(CommonSettings(mysql_database=suite.db_name("link")), create=False)
    try:
        done = await jobs.expire_links(db)
    finally:
        await db.close()
    assert expired in done and zero not in done
    sql = "SELECT linkID, enabled FROM link_connect WHERE linkID IN (%s, %s)"
    rows = await suite.query("link", sql, (zero, expired))
    assert {r["linkID"]: r["enabled"] for r in rows} == {zero: 1, expired: 0}

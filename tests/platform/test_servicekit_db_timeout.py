"""MYSQL_TIMEOUT (servicekit.db): a statement, a commit or a wait for a pooled connection that MariaDB leaves
unanswered fails with StatementTimeout after the timeout instead of holding the request until the server is back
(``just chaos``'s mariadb-stop freezes the server); the connection is dropped, the pool serves afterwards, and a
group commit whose server does not answer fails its whole batch at once instead of retrying each item."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from servicekit.batching import GroupCommit
from servicekit.db import Connection, StatementTimeout, server_unreachable
from tests.support import kit_service


@pytest.fixture
async def kit(suite):
    async with kit_service(suite, "dbtimeout") as (db, bus):
        yield db, bus


async def test_a_statement_past_the_timeout_fails_and_the_pool_serves_afterwards(kit) -> None:
    db, _bus = kit
    db.timeout = 0.3
    started = time.monotonic()
    with pytest.raises(StatementTimeout) as failed:
        await db.fetch_one("SELECT SLEEP(3) AS slept")
    assert time.monotonic() - started < 2
    assert server_unreachable(failed.value)
    assert await db.ping()
    with pytest.raises(StatementTimeout):  # a commit-time or in-transaction statement alike
        async with db.transaction() as conn:
            await conn.execute("SELECT SLEEP(3)")
    assert await db.ping()


async def test_a_wait_for_a_pooled_connection_is_bounded_too(kit) -> None:
    db, _bus = kit
    db.timeout = 0.3
    held = [await db.pool.acquire() for _ in range(db.pool.maxsize)]  # every connection lent out
    try:
        started = time.monotonic()
        with pytest.raises(StatementTimeout):
            await db.fetch_one("SELECT 1 AS ok")
        assert time.monotonic() - started < 2
    finally:
        for raw in held:
            db.pool.release(raw)
    assert await db.ping()


async def test_a_group_commit_on_an_unanswering_server_fails_its_batch_at_once(kit) -> None:
    db, _bus = kit
    db.timeout = 0.3

    async def apply(conn: Connection, items: Sequence[int]) -> list[int]:
        await conn.execute("SELECT SLEEP(3)")  # the server does not answer in time
        return list(items)

    writer: GroupCommit[int, int] = GroupCommit(db, "test-stalled", apply)
    writer.start()
    started = time.monotonic()
    results = await asyncio.gather(*(writer.submit(n) for n in range(20)), return_exceptions=True)
    took = time.monotonic() - started
    await writer.stop()
    assert all(isinstance(r, StatementTimeout) for r in results), results
    assert took < 3, took  # one by one it would be 20 x 0.3 s at least

"""Connection.execute_later: a transaction's queued rows of one statement shape are written as one multi-row
statement, in order, before any other write of the transaction and before it commits; rolled back with it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from servicekit.db import Connection, Database
from servicekit.settings import CommonSettings

HEAD = "INSERT INTO later_probe (k, v, n) VALUES"
ROW = "(%s, %s, %s)"
TAIL = "ON DUPLICATE KEY UPDATE v = VALUES(v), n = n + VALUES(n)"


@pytest.fixture
async def db(suite: Any) -> AsyncIterator[Database]:
    name = f"{suite.db_name('kit')}_{uuid.uuid4().hex[:6]}"
    database = await Database.connect(CommonSettings(service_name="kittest", mysql_database=name))
    try:
        await database.execute("CREATE TABLE later_probe (k VARCHAR(10) PRIMARY KEY, v VARCHAR(10), n INT)")
        await database.execute("CREATE TABLE later_log (id INT AUTO_INCREMENT PRIMARY KEY, seen INT)")
        yield database
    finally:
        await database.execute(f"DROP DATABASE `{name}`")  # noqa: S608 - generated test name
        await database.close()


async def _inserts(conn: Connection) -> int:
    """INSERT statements this connection's session has run."""
    row = await conn.fetch_one("SHOW SESSION STATUS LIKE 'Com_insert'")
    assert row is not None
    return int(row["Value"])


async def test_queued_rows_are_one_statement_per_run_applied_in_order(db: Database) -> None:
    async with db.transaction() as conn:
        before = await _inserts(conn)
        for n, value in enumerate(["a", "b", "c"]):
            await conn.execute_later(HEAD, ROW, TAIL, ("x", value, n + 1))
        await conn.execute_later(HEAD, ROW, TAIL + " ", ("y", "z", 10))  # another shape: a run of its own
        assert await conn.fetch_all("SELECT * FROM later_probe") == []  # nothing written before a write or commit
        await conn.write_later()
        assert await _inserts(conn) - before == 2  # four rows, two statements
    rows = {r["k"]: (r["v"], r["n"]) for r in await db.fetch_all("SELECT k, v, n FROM later_probe")}
    assert rows == {"x": ("c", 6), "y": ("z", 10)}  # each row applied in turn, as its own statement would be


async def test_the_commit_writes_them(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute_later(HEAD, ROW, TAIL, ("x", "a", 1))
        await conn.execute_later(HEAD, ROW, TAIL, ("x", "b", 1))
    assert await db.fetch_all("SELECT v, n FROM later_probe") == [{"v": "b", "n": 2}]


async def test_another_write_first_writes_the_queued_rows(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute_later(HEAD, ROW, TAIL, ("x", "a", 1))
        await conn.execute("INSERT INTO later_log (seen) SELECT COUNT(*) FROM later_probe")  # sees the row above
        await conn.execute_later(HEAD, ROW, TAIL, ("x", "b", 1))
    assert await db.fetch_all("SELECT seen FROM later_log") == [{"seen": 1}]
    assert await db.fetch_all("SELECT v, n FROM later_probe") == [{"v": "b", "n": 2}]


async def test_a_failed_transaction_writes_none_of_them(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute_later(HEAD, ROW, TAIL, ("x", "a", 1))
            await conn.execute("INSERT INTO later_log (seen) VALUES (1)")
            await conn.execute_later(HEAD, ROW, TAIL, ("x", "b", 1))
            raise RuntimeError("the handler failed")
    assert await db.fetch_all("SELECT * FROM later_probe") == []
    assert await db.fetch_all("SELECT * FROM later_log") == []


async def test_outside_a_transaction_the_row_is_written_at_once(db: Database) -> None:
    async with db.connection() as conn:
        await conn.execute_later(HEAD, ROW, TAIL, ("x", "a", 1))
    assert await db.fetch_all("SELECT v, n FROM later_probe") == [{"v": "a", "n": 1}]

"""servicekit's pieces under a migrated installation's data: a snapshot page of wide rows is split to fit NATS's
max_payload (a reply over it is never delivered) and still pages through every row once; the original's zero dates
read as NULL (as its own driver answered them) instead of a string where a datetime is expected; a row a read model
cannot hold is reported (the rebuild's reply, a log line, deploy/rebuild.py's exit status), never dropped silently."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

import msgspec

import deploy.rebuild
from servicekit.bus import Bus
from servicekit.db import Database
from servicekit.rebuild import pages, rebuild_from, serve_rebuild, serve_snapshot, too_wide
from servicekit.settings import CommonSettings


class WideRow(msgspec.Struct):
    id: int
    text: str


async def test_a_page_over_max_payload_is_split_and_paging_still_sees_every_row_once(suite) -> None:
    rows = [WideRow(id=i, text="ข" * 4000) for i in range(1, 601)]  # ~7 MB as one page of 600

    async def reader(after: int, limit: int) -> tuple[list[WideRow], int | None]:
        page = [row for row in rows if row.id > after][:limit]
        return page, (page[-1].id if len(page) == limit else None)

    subject = f"rpc.kittest{uuid.uuid4().hex[:6]}.snapshot"
    owner = await Bus.connect(suite.nats_url, "kittest")
    asker = await Bus.connect(suite.nats_url, "kittest-asker")
    try:
        await serve_snapshot(owner, subject, {"wide": reader})
        await owner.nc.flush()  # the subscription reaches the server before the first request
        seen: list[int] = []
        page_sizes: list[int] = []
        async for _, page in pages(asker, subject, "wide", WideRow, limit=600):
            seen += [row.id for row in page]
            page_sizes.append(len(page))
        assert seen == [row.id for row in rows]
        assert len(page_sizes) > 1 and max(page_sizes) < 600  # split, not refused
    finally:
        await asker.close()
        await owner.close()


async def test_zero_dates_read_as_null(suite) -> None:
    name = f"{suite.db_name('kit')}_{uuid.uuid4().hex[:6]}"
    db = await Database.connect(CommonSettings(service_name="kittest", mysql_database=name))
    try:
        async with db.connection() as conn:
            await conn.execute("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")  # as the original's server allowed
            await conn.execute("CREATE TABLE t (id int PRIMARY KEY, at datetime NULL, day date, ts timestamp NULL)")
            await conn.execute(
                "INSERT INTO t VALUES (1, '0000-00-00 00:00:00', '0000-00-00', '0000-00-00 00:00:00'),"
                " (2, '2024-01-02 03:04:05', '2024-01-02', '2024-01-02 03:04:05')"
            )
        rows = await db.fetch_all("SELECT id, at, day, ts FROM t ORDER BY id")
        assert rows[0] == {"id": 1, "at": None, "day": None, "ts": None}
        assert rows[1]["at"].isoformat() == "2024-01-02T03:04:05" and rows[1]["day"].isoformat() == "2024-01-02"
        stored = await db.fetch_one("SELECT CAST(at AS CHAR) AS text FROM t WHERE id = 1")
        assert stored == {"text": "0000-00-00 00:00:00"}  # only the reading changes: the row keeps what was carried
    finally:
        await db.execute(f"DROP DATABASE `{name}`")  # noqa: S608 - generated test name
        await db.close()


class _NoDatabase:
    """rebuild.write's transaction, without a database: the step's save only records what it was given."""

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield None


async def test_rows_a_read_model_cannot_hold_are_reported_in_the_reply_the_log_and_the_exit_status(
    suite, monkeypatch, caplog
) -> None:
    service = f"kittest{uuid.uuid4().hex[:6]}"
    rows = [WideRow(id=i, text="x" * (60 if i in (3, 7) else 10)) for i in range(1, 11)]
    saved: list[int] = []

    async def reader(after: int, limit: int) -> tuple[list[WideRow], int | None]:
        page = [row for row in rows if row.id > after][:limit]
        return page, (page[-1].id if len(page) == limit else None)

    async def save(_conn: None, page: list[WideRow], _version: int) -> None:
        saved.extend(row.id for row in page)

    owner = await Bus.connect(suite.nats_url, service)
    try:
        subject = f"rpc.{service}.snapshot"
        await serve_snapshot(owner, subject, {"wide": reader})

        async def step() -> int:
            return await rebuild_from(
                owner, _NoDatabase(), subject, "wide", WideRow, save,  # type: ignore[arg-type]
                fits=lambda row: too_wide({"text": row.text}, {"text": 50}), describe=lambda row: str(row.id),
            )  # fmt: skip

        await serve_rebuild(owner, {"wide_view": step})
        await owner.nc.flush()
        monkeypatch.setattr(deploy.rebuild, "SERVICES", (service,))
        with caplog.at_level(logging.WARNING, logger="servicekit.rebuild"):
            (summary,) = await deploy.rebuild.rebuild([service], suite.nats_url, timeout=30)
        (model,) = summary.readModels
        assert saved == [1, 2, 4, 5, 6, 8, 9, 10] and model.rows == 8
        assert model.notRebuilt == 2 and model.notRebuiltRows == [
            "wide 3: text has 60 characters (column: 50)", "wide 7: text has 60 characters (column: 50)"
        ]  # fmt: skip
        assert [r.row for r in caplog.records if r.getMessage() == "read-model row not rebuilt"] == ["wide 3", "wide 7"]
        assert "NOT REBUILT: 2 rows" in deploy.rebuild.report(summary)[0]
        status = await asyncio.to_thread(deploy.rebuild.main, [service, "--nats-url", suite.nats_url])
        assert status == deploy.rebuild.EXIT_NOT_REBUILT
    finally:
        await owner.close()

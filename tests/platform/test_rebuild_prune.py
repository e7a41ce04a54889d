"""Pruning after a rebuild (servicekit.rebuild.Prune): upserts alone keep a row whose owner row is gone, so a step that
opts in deletes, after a complete pass, the rows older than the pass's pages. A row the owner deleted between two
rebuilds goes; a row a live event wrote during the pass stays; a step that does not opt in, a pass that failed and a
pass that left an owner row unwritten remove nothing. Real MariaDB table and NATS, an in-memory owner."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest

import deploy.rebuild
from servicekit.bus import Bus
from servicekit.db import Connection, Database
from servicekit.rebuild import Prune, now_ms, rebuild_from, serve_rebuild, serve_snapshot, too_wide
from servicekit.settings import CommonSettings

PAGE = 2  # rows per snapshot page, whatever the limit asked: a pass of several pages


class Item(msgspec.Struct):
    id: int
    name: str


class Owner:
    """The owner's rows, paged by id; ``on_page(after)`` runs as each page is read (a live write, a failure)."""

    def __init__(self, ids: range) -> None:
        self.rows = {i: Item(id=i, name=f"n{i}") for i in ids}
        self.on_page: Callable[[int], Awaitable[None]] | None = None

    async def read(self, after: int, _limit: int) -> tuple[list[Item], int | None]:
        if self.on_page is not None:
            await self.on_page(after)
        page = [self.rows[i] for i in sorted(self.rows) if i > after][:PAGE]
        more = bool(page) and any(i > page[-1].id for i in self.rows)
        return page, (page[-1].id if more else None)


@asynccontextmanager
async def database(suite: Any) -> AsyncIterator[Database]:
    name = f"{suite.db_name('kit')}_{uuid.uuid4().hex[:6]}"
    db = await Database.connect(CommonSettings(service_name="kittest", mysql_database=name))
    try:
        for table in ("pruned_view", "kept_view"):
            await db.execute(
                f"CREATE TABLE {table} (id int PRIMARY KEY, name varchar(10), version bigint NOT NULL DEFAULT 0)"
            )
        yield db
    finally:
        await db.execute(f"DROP DATABASE `{name}`")  # noqa: S608 - generated test name
        await db.close()


def saver(table: str) -> Callable[[Connection, list[Item], int], Awaitable[None]]:
    async def save(conn: Connection, items: list[Item], version: int) -> None:
        for item in items:  # as a versioned read model's consumer writes
            await conn.execute(
                f"INSERT INTO {table} (id, name, version) VALUES (%s, %s, %s) ON DUPLICATE KEY UPDATE"  # noqa: S608
                " name = IF(VALUES(version) >= version, VALUES(name), name),"
                " version = GREATEST(version, VALUES(version))",
                (item.id, item.name, version),
            )

    return save


async def ids(db: Database, table: str) -> list[int]:
    return [r["id"] for r in await db.fetch_all(f"SELECT id FROM {table} ORDER BY id")]  # noqa: S608


@pytest.fixture
async def served(suite: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, Owner, Database]]:
    """A service with two steps over the same owner: pruned_view opts in, kept_view does not."""
    service = f"kittest{uuid.uuid4().hex[:6]}"
    owner = Owner(range(1, 6))
    bus = await Bus.connect(suite.nats_url, service)
    async with database(suite) as db:
        try:
            subject = f"rpc.{service}.snapshot"
            await serve_snapshot(bus, subject, {"items": owner.read})

            def step(table: str, prune: Prune | None) -> Callable[[], Awaitable[int]]:
                async def run() -> int:
                    return await rebuild_from(
                        bus, db, subject, "items", Item, saver(table), prune=prune,
                        fits=lambda item: too_wide({"name": item.name}, {"name": 10}), describe=lambda i: str(i.id),
                    )  # fmt: skip

                return run

            steps = {
                "pruned_view": step("pruned_view", Prune("pruned_view", ("id",))),
                "kept_view": step("kept_view", None),
            }
            await serve_rebuild(bus, steps)
            await bus.nc.flush()
            monkeypatch.setattr(deploy.rebuild, "SERVICES", (service,))
            yield service, owner, db
        finally:
            await bus.close()


async def rebuilt(suite: Any, service: str) -> dict[str, Any]:
    (summary,) = await deploy.rebuild.rebuild([service], suite.nats_url, timeout=30)
    return {model.readModel: model for model in summary.readModels} | {"_lines": deploy.rebuild.report(summary)}


async def test_a_row_the_owner_deleted_goes_and_a_live_one_stays(suite: Any, served: Any) -> None:
    service, owner, db = served
    first = await rebuilt(suite, service)
    assert await ids(db, "pruned_view") == await ids(db, "kept_view") == [1, 2, 3, 4, 5]
    assert first["pruned_view"].pruned == 0 and first["kept_view"].pruned is None  # kept_view never prunes

    del owner.rows[3]  # deleted at the owner (a catch-up copied an original's delete)
    await db.execute("INSERT INTO pruned_view (id, name, version) VALUES (50, 'old', 1)")  # gone long ago

    async def live(after: int) -> None:
        if after == 2:  # while the pass reads: an event (its time now) writes an entity the pages will not show
            sql = "INSERT IGNORE INTO pruned_view (id, name, version) VALUES (99, 'live', %s)"  # once: kept_view's pass
            await db.execute(sql, (now_ms(),))

    owner.on_page = live
    second = await rebuilt(suite, service)
    assert await ids(db, "pruned_view") == [1, 2, 4, 5, 99]
    assert await ids(db, "kept_view") == [1, 2, 3, 4, 5]  # a step that does not opt in is untouched
    assert second["pruned_view"].pruned == 2 and second["kept_view"].pruned is None
    lines = second["_lines"]
    assert "pruned 2" in lines[0] and "pruned" not in lines[1], lines


async def test_a_pass_that_fails_prunes_nothing(suite: Any, served: Any) -> None:
    service, owner, db = served
    await rebuilt(suite, service)
    del owner.rows[1]

    async def fail(after: int) -> None:
        if after > 0:  # the second page: the first one's rows rewritten, the pass incomplete
            raise RuntimeError("owner down")

    owner.on_page = fail
    with pytest.raises(deploy.rebuild.RebuildFailed):
        await rebuilt(suite, service)
    assert await ids(db, "pruned_view") == [1, 2, 3, 4, 5]


async def test_a_pass_that_leaves_an_owner_row_unwritten_prunes_nothing(suite: Any, served: Any) -> None:
    service, owner, db = served
    await rebuilt(suite, service)
    del owner.rows[1]
    owner.rows[4] = Item(id=4, name="x" * 11)  # too wide for the view: reported, its old copy kept
    summary = await rebuilt(suite, service)
    assert await ids(db, "pruned_view") == [1, 2, 3, 4, 5]
    model = summary["pruned_view"]
    assert model.notRebuilt == 1 and model.pruned is None and "not written" in model.notPruned

"""Group commit of usage_status_log rows written outside any other transaction (GET /link/getdetail's
``GetLinkDetail`` row, the hot path).

The guarantee stays the same as one INSERT per request: a request's row is committed before the request is
answered (the caller awaits it). What changes is the cost: rows of concurrent requests share one multi-row INSERT
(one statement, one commit, one round trip). The writer never waits to collect rows: it takes whatever queued
while the previous INSERT ran, so a lone request pays no extra latency. If a batch fails, its rows are inserted one
by one, so only a bad row's own request fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from link import repository
from servicekit.db import Database

log = logging.getLogger(__name__)

MAX_BATCH = 200


class UsageBatcher:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _row, waiter in self._queue:  # never left hanging
            if not waiter.done():
                waiter.set_exception(RuntimeError("usage log writer stopped"))
        self._queue.clear()

    async def add(self, **fields: Any) -> None:
        """Queue one row (the keyword arguments of :func:`repository.usage_row`); returns once it is committed."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((repository.usage_row(**fields), waiter))
        self._wakeup.set()
        await waiter

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                await self._write(batch)

    async def _write(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[None]]]) -> None:
        try:
            async with self.db.connection() as conn:
                await repository.insert_usage_rows(conn, [row for row, _ in batch])
        except Exception:
            if len(batch) == 1:
                _fail(batch[0][1])
                return
            log.warning("usage batch failed; inserting its rows one by one", exc_info=True)
            for item in batch:
                await self._write([item])
            return
        for _row, waiter in batch:
            if not waiter.done():
                waiter.set_result(None)


def _fail(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(RuntimeError("usage row not written"))

"""Group commit: the concurrent writes of a service applied in one transaction, one commit (one fsync) per batch.

A hot route (a position update, a usage row, a webhook) hands its write to a :class:`GroupCommit` and awaits the
result. One writer task takes everything queued, applies it with the service's ``apply_batch`` in a single
transaction and commits; each caller resumes only after the commit that holds its write (nothing is answered
before it is durable). While a batch commits, the next one gathers, so batches grow with the load and a lone
request waits for nobody (no timer on the quiet path).

One bad item never sinks the others: when a batch's transaction fails, its items are applied again one per
transaction, and only the failing one raises to its caller. ``apply_batch`` must therefore be all-or-nothing per
call (it is: it runs inside the transaction) and must not keep state between calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from prometheus_client import Histogram

from servicekit.db import Connection, Database

log = logging.getLogger("servicekit.batching")

Item = TypeVar("Item")
Result = TypeVar("Result")

BATCH_SIZE = Histogram(
    "ems_group_commit_batch_size",
    "Items committed together by a group commit",
    ["writer"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)

ApplyBatch = Callable[[Connection, Sequence[Item]], Awaitable[Sequence[Result]]]


class WriterStopped(RuntimeError):
    """The service is shutting down: a write queued but not committed is refused, never left hanging."""


class GroupCommit(Generic[Item, Result]):
    """Gathers items submitted concurrently and commits them together (see the module docstring).

    ``apply_batch(conn, items)`` runs inside the batch's transaction and returns one result per item, in order.
    ``max_items`` bounds a batch (statement size, lock time); ``linger`` (seconds, default none) lets a batch wait
    for more items when the caller prefers fewer commits to lower latency.
    """

    def __init__(
        self,
        db: Database,
        name: str,
        apply_batch: ApplyBatch[Item, Result],
        *,
        max_items: int = 256,
        linger: float = 0.0,
    ) -> None:
        self.db = db
        self.name = name
        self.apply_batch = apply_batch
        self.max_items = max_items
        self.linger = linger
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sizes = BATCH_SIZE.labels(name)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"group-commit {self.name}")

    async def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued (within ``timeout``), then stop; anything submitted afterwards is refused."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wakeup.set()
            try:
                await asyncio.wait_for(task, timeout)
            except (TimeoutError, asyncio.CancelledError):
                pass
        for _item, waiter in self._queue:
            if not waiter.done():
                waiter.set_exception(WriterStopped(f"{self.name} writer stopped"))
        self._queue.clear()

    async def submit(self, item: Item) -> Result:
        """Queue ``item``; returns its result once the transaction that applied it committed."""
        if self._task is None:
            raise WriterStopped(f"{self.name} writer is not running")
        waiter: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, waiter))
        self._wakeup.set()
        return await waiter

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self.linger:
                await asyncio.sleep(self.linger)
            while self._queue:
                batch, self._queue = self._queue[: self.max_items], self._queue[self.max_items :]
                await self._commit(batch)
            if self._stopping:
                return

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:  # a caller that gave up waiting (cancelled) still has its write applied: it may have been seen
            results = await self._apply([item for item, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to the caller(s), never lost
            if len(batch) == 1:
                _settle_error(batch[0][1], exc)
                return
            log.warning("group commit of %d items failed; applying them one by one", len(batch), exc_info=True)
            for item in batch:
                await self._commit([item])
            return
        self._sizes.observe(len(batch))
        for (_item, waiter), result in zip(batch, results, strict=True):
            if not waiter.done():
                waiter.set_result(result)

    async def _apply(self, items: list[Item]) -> Sequence[Result]:
        async with self.db.transaction() as conn:
            results = await self.apply_batch(conn, items)
            if len(results) != len(items):  # rolled back: a result must reach every caller
                raise RuntimeError(f"{self.name}: {len(results)} results for {len(items)} items")
        return results


def _settle_error(waiter: asyncio.Future[Result], exc: BaseException) -> None:
    if not waiter.done():
        waiter.set_exception(exc)

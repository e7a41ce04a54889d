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
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from prometheus_client import Histogram

from servicekit.db import Connection, Database, retry_rolled_back, server_unreachable

log = logging.getLogger("servicekit.batching")

Item = TypeVar("Item")
Result = TypeVar("Result")

BATCH_SIZE = Histogram(
    "ems_group_commit_batch_size",
    "Items committed together by a group commit",
    ["writer"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)

RETRY_ATTEMPTS = 5  # a batch InnoDB rolled back (deadlock victim, lock wait) runs again, up to this many times

ApplyBatch = Callable[[Connection, Sequence[Item]], Awaitable[Sequence[Result]]]


class WriterStopped(RuntimeError):
    """The service is shutting down: a write queued but not committed is refused, never left hanging."""


class GroupCommit(Generic[Item, Result]):
    """Gathers items submitted concurrently and commits them together (see the module docstring).

    ``apply_batch(conn, items)`` runs inside the batch's transaction and returns one result per item, in order.
    ``max_items`` bounds a batch (statement size, lock time). ``writers`` > 1 commits several batches at once (for
    batches whose statements are many round trips; each writer holds a pool connection while it commits).
    A transaction InnoDB rolled back as a deadlock victim or after a lock wait timeout is run again
    (``servicekit.db.retry_rolled_back``).
    """

    def __init__(
        self,
        db: Database,
        name: str,
        apply_batch: ApplyBatch[Item, Result],
        *,
        max_items: int = 256,
        writers: int = 1,
    ) -> None:
        self.db = db
        self.name = name
        self.apply_batch = apply_batch
        self.max_items = max_items
        self.writer_count = writers
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._sizes = BATCH_SIZE.labels(name)

    def start(self) -> None:
        if not self._running:
            self._running = True
            self._tasks = [
                asyncio.create_task(self._run(), name=f"group-commit {self.name} {n}") for n in range(self.writer_count)
            ]

    async def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued (within ``timeout``), then stop; anything submitted afterwards is refused."""
        self._running = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._queue.join()  # every queued item committed (or failed) and settled
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        while not self._queue.empty():
            _item, waiter = self._queue.get_nowait()
            _settle_error(waiter, WriterStopped(f"{self.name} writer stopped"))

    async def submit(self, item: Item) -> Result:
        """Queue ``item``; returns its result once the transaction that applied it committed."""
        if not self._running:
            raise WriterStopped(f"{self.name} writer is not running")
        waiter: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, waiter))
        return await waiter

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_items and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:  # a caller that gave up waiting (cancelled) still has its write applied: it may have been seen
            results = await self._apply([item for item, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to the caller(s), never lost
            if server_unreachable(exc):  # one by one would only wait on the server again per item; so would the
                for _item, waiter in batch + self._take_queued():  # writes queued meanwhile: they fail with it
                    _settle_error(waiter, exc)
                return
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

    def _take_queued(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        taken = []
        while not self._queue.empty():
            taken.append(self._queue.get_nowait())
            self._queue.task_done()
        return taken

    async def _apply(self, items: list[Item]) -> Sequence[Result]:
        async def transaction() -> Sequence[Result]:
            async with self.db.transaction() as conn:
                results = await self.apply_batch(conn, items)
                if len(results) != len(items):  # rolled back: a result must reach every caller
                    raise RuntimeError(f"{self.name}: {len(results)} results for {len(items)} items")
            return results

        return await retry_rolled_back(transaction, attempts=RETRY_ATTEMPTS)


def _settle_error(waiter: asyncio.Future[Result], exc: BaseException) -> None:
    if not waiter.done():
        waiter.set_exception(exc)

"""Rebuilding read models from their owners: the mechanics every service shares (no service's subjects or rows).

Read models are fed by events, but streams keep events for 7 days and a copy of tables (a migration) publishes
none, so a stream is never the source of truth of a read model. Instead:

* An owner serves a paged **snapshot** of the entities others keep copies of (:func:`serve_snapshot`, on a subject
  of its contract): ``{entity, after, limit}`` -> ``{rows, next}``, rows in the shapes of the owner's event
  payloads, ``after``/``next`` the owner's row id (a stable cursor: pages never skip or repeat a row).
* A consumer reads each page (:func:`pages`) and applies its rows with the repository functions its event consumers
  use (read-model writes only, none of their side effects). Each page comes with the time taken just before it was
  asked for (epoch ms, less a margin: VERSION_MARGIN_MS): read models keep a ``version`` (the time of the event
  that wrote the row) and store the page's rows with it, so an event newer than the read wins over the page and
  none is lost (:func:`event_version`, :func:`versioned_update`).
* Every service answers ``rpc.<service>.rebuild`` (:func:`serve_rebuild`; one replica per request, queue group):
  it runs the service's rebuild steps (one per read model, or a subset) and replies a summary
  (:class:`RebuildSummary`). deploy/rebuild.py sends it (``just rebuild-read-models SERVICE``).

A rebuild is repeatable: steps upsert by the rows' keys, so a second run changes nothing.

Nothing is left out silently: a row a read model cannot hold (a value wider than its column, a key it lacks) is
named by :func:`not_rebuilt` (``fits`` of :func:`rebuild_from`): logged as a WARNING and counted in the step's
summary (``notRebuilt``, the first NOT_REBUILT_LISTED named in ``notRebuiltRows``), which deploy/rebuild.py prints
and turns into its exit status. Rows a read model does not take by design (``keep``: what its consumer would not
store from the same event either) are not reported.

Upserts alone never remove a row whose owner row is gone (a row the original deleted between two catch-ups of a
migration). A step that keeps one row per owner entity may opt in to **pruning** (``prune`` of :func:`rebuild_from`,
a :class:`Prune`): once its pass over the snapshot has completed, the rows of its table whose ``version`` is older
than the pass's oldest page version are deleted (:func:`prune_older`), and the count is in the step's summary
(``pruned``). Every row the pass wrote carries at least its page's version, and a live event applied meanwhile
carries its own time, newer than that (VERSION_MARGIN_MS), so only rows of entities the owner no longer has are
left older. A pass that fails prunes nothing; nor does one that left an owner row unwritten (``keep``, ``fits``),
since that row's old copy would look gone (``notPruned`` says why).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from asyncmy.errors import OperationalError

from servicekit.bus import Bus, Event
from servicekit.db import Connection, Database

log = logging.getLogger(__name__)
T = TypeVar("T")

PAGE_ROWS = 2000  # rows per snapshot page: one request and one transaction per page
MAX_PAGE_ROWS = 5000
PAYLOAD_SHARE = 0.9  # of NATS's max_payload a page may fill (the reply envelope takes the rest)
SNAPSHOT_TIMEOUT = 30.0  # one page
# A page's version is taken this long before it is asked for: an owner's change whose event was stamped before the
# page but committed after the owner read it (a transaction open that long; InnoDB's lock wait is 50 s) is still
# newer than the page, and clocks of different hosts may differ by that much. Events inside the margin are applied
# over the page in stream order, so the row ends as the owner's latest state either way.
VERSION_MARGIN_MS = 60_000
REBUILD_SUBJECT = "rpc.{service}.rebuild"
RETRYABLE = {1205, 1213}  # lock wait timeout, deadlock (with a live consumer writing the same rows): run it again
WRITE_ATTEMPTS = 5
NOT_REBUILT_LISTED = 20  # rows named per step in the summary (all are logged)
PRUNE_ROWS = 500  # rows deleted per transaction by prune_older (each by its key: only those rows are locked)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SnapshotQuery(msgspec.Struct, kw_only=True):
    entity: str
    after: int = 0  # the owner's row id the previous page ended with (0: from the start)
    limit: int = PAGE_ROWS


class SnapshotPage(msgspec.Struct, kw_only=True):
    rows: list[Any]
    next: int | None = None  # ``after`` of the next page; None: this was the last


class RebuildRequest(msgspec.Struct, kw_only=True):
    readModels: list[str] | None = None  # step names (None: every one)


class RebuiltModel(msgspec.Struct, kw_only=True):
    readModel: str
    rows: int  # rows (or entries) written or confirmed
    seconds: float
    notRebuilt: int = 0  # rows of the owners the read model could not hold (not_rebuilt): each one logged
    notRebuiltRows: list[str] = []  # the first NOT_REBUILT_LISTED of them, "<row>: <why>"
    pruned: int | None = None  # rows deleted after the pass (their owner row is gone); None: the step never prunes
    notPruned: str = ""  # why a step that prunes did not this time


class RebuildSummary(msgspec.Struct, kw_only=True):
    service: str
    readModels: list[RebuiltModel]


# Reads one page of an entity: (after, limit) -> (rows, next cursor or None).
Reader = Callable[[int, int], Awaitable[tuple[list[Any], int | None]]]
# Rebuilds one read model; returns the number of rows it applied.
Step = Callable[[], Awaitable[int]]


@dataclass(frozen=True)
class Prune:
    """A step's opt-in to pruning (:func:`rebuild_from`): its read model's ``table``, which has a ``version`` column,
    and the columns of its primary ``key``. Names come from code, never from input."""

    table: str
    key: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.key or not all(_IDENTIFIER.fullmatch(name) for name in (self.table, *self.key)):
            raise ValueError(f"not a table and key: {self.table!r} {self.key!r}")


class _NotRebuilt:
    def __init__(self, read_model: str) -> None:
        self.read_model = read_model
        self.count = 0
        self.rows: list[str] = []
        self.pruned: int | None = None
        self.not_pruned = ""


_not_rebuilt: ContextVar[_NotRebuilt | None] = ContextVar("not_rebuilt", default=None)


def not_rebuilt(row: str, reason: str) -> None:
    """Report a row of an owner that the read model being rebuilt cannot hold (too wide for a column, no key): a
    WARNING log line and, inside a step run by :func:`serve_rebuild`, a count and a line in that step's summary."""
    tally = _not_rebuilt.get()
    read_model = tally.read_model if tally is not None else None
    log.warning("read-model row not rebuilt", extra={"read_model": read_model, "row": row, "reason": reason})
    if tally is not None:
        tally.count += 1
        if len(tally.rows) < NOT_REBUILT_LISTED:
            tally.rows.append(f"{row}: {reason}")


def too_wide(values: dict[str, str | None], widths: dict[str, int]) -> str | None:
    """Why a row's text values cannot be stored in columns of ``widths`` (characters), or None when they fit."""
    over = [f"{name} has {len(value)} characters (column: {widths[name]})"
            for name, value in values.items() if value is not None and len(value) > widths[name]]  # fmt: skip
    return "; ".join(over) or None


def now_ms() -> int:
    return int(time.time() * 1000)


def event_version(event: Event) -> int:
    """A read-model row's ``version`` from the event that writes it: the event's time (epoch ms), comparable with a
    snapshot page's (:func:`pages`); now when the event's time is unreadable."""
    try:
        at = datetime.fromisoformat(event.occurred_at)
    except ValueError:
        return now_ms()
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() * 1000)


def versioned_update(columns: dict[str, str]) -> str:
    """An ON DUPLICATE KEY UPDATE list for a read model with a ``version`` column: a write at least as new as the row
    sets each column to its new value (``columns``: column -> SQL of the new value, e.g. ``VALUES(room)``); an older
    write only fills the columns the row lacks (NULL). The version is assigned last, so every test reads the row's
    old version. Column names come from code, never from input."""
    newer = "VALUES(`version`) >= `version`"
    parts = [f"`{c}` = IF({newer}, {new}, COALESCE(`{c}`, {new}))" for c, new in columns.items()]
    return ", ".join([*parts, "`version` = GREATEST(`version`, VALUES(`version`))"])


_page_encoder = msgspec.json.Encoder()


async def serve_snapshot(bus: Bus, subject: str, readers: dict[str, Reader]) -> None:
    """Answer ``subject`` with pages of the named entities (unknown entity: ``not_found``)."""

    async def answer(query: SnapshotQuery) -> SnapshotPage:
        reader = readers.get(query.entity)
        if reader is None:
            raise LookupError(f"no snapshot of {query.entity!r}; known: {sorted(readers)}")
        if query.after < 0 or not 1 <= query.limit <= MAX_PAGE_ROWS:
            raise msgspec.ValidationError(f"after >= 0 and 1 <= limit <= {MAX_PAGE_ROWS}")
        limit = query.limit
        while True:
            rows, following = await reader(query.after, limit)
            page = SnapshotPage(rows=rows, next=following)
            # A reply over the server's max_payload (1 MB by default) is never delivered: wide rows (a room's whole
            # detail) get fewer per page. The reader sets the cursor, so a shorter page pages on correctly.
            if limit == 1 or len(_page_encoder.encode(page)) <= bus.nc.max_payload * PAYLOAD_SHARE:
                return page
            limit = max(1, limit // 2)

    await bus.serve(subject, SnapshotQuery, answer)


async def pages(
    bus: Bus, subject: str, entity: str, row_type: type[Any], limit: int = PAGE_ROWS
) -> AsyncIterator[tuple[int, list[Any]]]:
    """Every page of ``entity`` from its owner, as ``(version, rows)``: ``version`` = the time (epoch ms) taken
    just before the page was asked for, less VERSION_MARGIN_MS; rows converted to ``row_type``. Raises
    servicekit.bus.RpcError when the owner does not answer (the rebuild stops; run it again: it is repeatable).

    The next page is asked for while the caller writes this one (the owner reads it meanwhile); its version is
    still taken just before it is asked for."""

    async def fetch(after: int) -> tuple[int, SnapshotPage]:
        version = now_ms() - VERSION_MARGIN_MS
        reply = await bus.request(subject, SnapshotQuery(entity=entity, after=after, limit=limit), SNAPSHOT_TIMEOUT)
        return version, msgspec.convert(reply, SnapshotPage)

    after = 0
    ahead: asyncio.Task[tuple[int, SnapshotPage]] = asyncio.ensure_future(fetch(after))
    try:
        while True:
            version, page = await ahead
            last = page.next is None or page.next <= after
            if not last:
                after = page.next or 0
                ahead = asyncio.ensure_future(fetch(after))
            yield version, [msgspec.convert(row, row_type) for row in page.rows]
            if last:
                return
    finally:
        if not ahead.done():
            ahead.cancel()
        elif not ahead.cancelled():
            ahead.exception()  # retrieved: a page asked ahead and not used fails nothing


async def rebuild_from(
    bus: Bus,
    db: Database,
    subject: str,
    entity: str,
    row_type: type[T],
    save: Callable[..., Awaitable[Any]],
    keep: Callable[[list[T]], list[Any]] | None = None,
    fits: Callable[[T], str | None] | None = None,
    describe: Callable[[T], str] = repr,
    prune: Prune | None = None,
) -> int:
    """Every page of ``entity`` from its owner (:func:`pages`), the rows the read model takes (``keep``, default all)
    written by ``save(conn, rows, version)`` in one transaction per page (:func:`write`); returns the rows written.

    ``fits``: why a row cannot be held by the read model (None: it can); such a row is left out and reported
    (:func:`not_rebuilt`, the row named by ``describe``), never dropped silently. ``keep`` is for rows the read model
    does not take by design (as its consumer would not from the same event): they are not reported.

    ``prune``: after the last page, delete the rows of ``prune.table`` older than every page (:func:`prune_older`),
    unless a row of the owner was left unwritten."""
    count, left_out = 0, 0
    oldest: int | None = None  # the clock may step back during a pass: the oldest page decides
    async for version, rows in pages(bus, subject, entity, row_type):
        oldest = version if oldest is None else min(oldest, version)
        total = len(rows)
        if fits is not None:
            fitting = []
            for row in rows:
                reason = fits(row)
                if reason is None:
                    fitting.append(row)
                else:
                    not_rebuilt(f"{entity} {describe(row)}", reason)
            rows = fitting
        kept = rows if keep is None else keep(rows)
        await write(db, save, kept, version)
        count += len(kept)
        left_out += total - len(kept)
    if prune is not None and oldest is not None:
        tally = _not_rebuilt.get()
        if left_out:
            reason = f"{left_out} rows of the owner not written (their old copies would look gone)"
            log.warning("read model not pruned", extra={"table": prune.table, "reason": reason})
            if tally is not None:
                tally.not_pruned = reason
        else:
            pruned = await prune_older(db, prune, oldest)
            if tally is not None:
                tally.pruned = pruned
    return count


async def prune_older(db: Database, prune: Prune, before: int) -> int:
    """Delete the rows of ``prune.table`` whose ``version`` is below ``before``; returns how many. Candidates are
    read without locks, then deleted by key with the version tested again, so a row a live event rewrote meanwhile
    stays and only the deleted rows are locked."""
    columns = ", ".join(f"`{name}`" for name in prune.key)
    where = f"FROM `{prune.table}` WHERE `version` < %s"
    select = f"SELECT {columns} {where} ORDER BY {columns} LIMIT {PRUNE_ROWS}"  # noqa: S608 - names from code
    match = "(" + " AND ".join(f"`{name}` = %s" for name in prune.key) + ")"
    deleted = [0]  # of the transaction that committed (write may run it again)

    async def delete(conn: Connection, keys: list[tuple[Any, ...]]) -> None:
        sql = f"DELETE {where} AND ({' OR '.join([match] * len(keys))})"  # noqa: S608 - names from code
        deleted[0] = await conn.execute(sql, [before, *(value for key in keys for value in key)])

    total = 0
    while True:
        rows = await db.fetch_all(select, (before,))
        if not rows:
            return total
        keys = [tuple(row[name] for name in prune.key) for row in rows]
        await write(db, delete, keys)
        total += deleted[0]
        log.info(
            "read-model rows pruned",
            extra={"table": prune.table, "rows": deleted[0], "keys": [list(map(str, k)) for k in keys[:10]]},
        )
        if not deleted[0]:  # every candidate was rewritten meanwhile: nothing older is left
            return total


async def write(db: Database, apply: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """``apply(conn, *args)``, one page's writes, in one transaction; run again when InnoDB rolls it back for a
    deadlock or a lock wait with the service's consumers, which keep writing the same rows meanwhile."""
    for attempt in range(WRITE_ATTEMPTS):
        try:
            async with db.transaction() as conn:
                await apply(conn, *args)
            return
        except OperationalError as exc:
            if exc.args[0] not in RETRYABLE or attempt == WRITE_ATTEMPTS - 1:
                raise
            log.info("rebuild page retried", extra={"code": exc.args[0], "attempt": attempt + 1})
            await asyncio.sleep(0.05 * (attempt + 1) + random.random() * 0.05)  # noqa: S311 (jitter)


async def serve_rebuild(bus: Bus, steps: dict[str, Step]) -> None:
    """Answer ``rpc.<service>.rebuild``: run the requested steps in their order and reply a RebuildSummary."""

    async def answer(request: RebuildRequest) -> RebuildSummary:
        names = list(steps) if not request.readModels else request.readModels
        unknown = [name for name in names if name not in steps]
        if unknown:
            raise LookupError(f"no read model {unknown}; known: {list(steps)}")
        done = []
        for name in names:
            started = time.monotonic()
            tally = _NotRebuilt(name)
            token = _not_rebuilt.set(tally)
            try:
                rows = await steps[name]()
            finally:
                _not_rebuilt.reset(token)
            seconds = round(time.monotonic() - started, 3)
            log.info(
                "read model rebuilt",
                extra={
                    "read_model": name, "rows": rows, "seconds": seconds, "not_rebuilt": tally.count,
                    "pruned": tally.pruned,
                },
            )  # fmt: skip
            done.append(
                RebuiltModel(
                    readModel=name, rows=rows, seconds=seconds, notRebuilt=tally.count, notRebuiltRows=tally.rows,
                    pruned=tally.pruned, notPruned=tally.not_pruned,
                )
            )  # fmt: skip
        return RebuildSummary(service=bus.service, readModels=done)

    await bus.serve(REBUILD_SUBJECT.format(service=bus.service), RebuildRequest, answer)

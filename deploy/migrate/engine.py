"""The copy and its check, one table at a time, in chunks of keys.

A pass walks the source table in key order, ``batch`` keys per chunk, and makes the target's rows of that key
range equal to the source's:

* both sides' chunk aggregate (row count and a sum of per-row CRC32 of the kept columns) is compared first; an
  equal chunk costs two index-range scans and no row transfer (a rerun, or a catch-up of unchanged rows);
* a chunk the target has nothing of is copied straight (the first run);
* any other chunk is compared row by row (normalised, so two servers printing a FLOAT differently still agree):
  new and changed rows are upserted, rows gone from the source are deleted.

The chunk's writes and the table's checkpoint (last key done) commit in one transaction, so ``kill -9`` at any
point loses at most the chunk in flight, which the rerun redoes. A finished table is skipped by a plain rerun;
``--catch-up`` starts a new pass over it (rows added, changed or deleted since, found by comparing chunks rather
than by trusting the original's update columns, which it did not always set).

A catch-up makes the target equal to the source, so it deletes or overwrites whatever the suite itself stored in
those tables: after cutover, medical records. Two guards (:func:`check_target`) refuse a run before it writes
anything, unless forced:

* the cutover marker: the final catch-up (``--final``) stamps each table's checkpoint (``dtmFinal``); a later copy
  or catch-up is refused (a repeated final one is not: it is how a crashed final run resumes);
* the target's own rows: each checkpoint keeps the row count and checksum of the target table as the migration
  left it (``targetRows``, ``targetSum``: set when a pass starts, moved by each chunk's before/after aggregate in
  the chunk's transaction). A target that no longer matches them was written by someone else since: the suite
  served. This needs no operator to remember a flag and no service to cooperate (a write that publishes no
  event, or whose outbox row was purged, still changes the table).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from deploy.migrate.db import DatabaseError, execute, fetch_all, fetch_one, quote
from deploy.migrate.plan import TablePlan

CHECKPOINTS = "migration_checkpoint"
_FLOAT_TYPES = {"float", "double", "real"}
_NULL = "\x00NULL"  # stands for NULL inside a row's checksum text: no real value contains NUL here
# Errors of one row's data (too long, bad value, duplicate key, ...): the row is reported, the rest goes on.
_ROW_ERRORS = {1048, 1062, 1264, 1265, 1292, 1366, 1406, 1452, 3140}

CREATE_CHECKPOINTS = f"""
CREATE TABLE IF NOT EXISTS `{CHECKPOINTS}` (
  `tableName` varchar(64) NOT NULL,
  `pass` int NOT NULL DEFAULT 1,
  `lastKey` bigint DEFAULT NULL COMMENT 'last source key of the pass done; NULL = none yet',
  `complete` tinyint NOT NULL DEFAULT 0,
  `rowsWritten` bigint NOT NULL DEFAULT 0,
  `dtmStarted` datetime NOT NULL,
  `dtmUpdated` datetime NOT NULL,
  PRIMARY KEY (`tableName`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT 'deploy.migrate progress per table'
"""
# Added after the first version of the table: created by ensure_checkpoints on targets that lack them.
GUARD_COLUMNS = {
    "targetRows": "bigint DEFAULT NULL COMMENT 'rows of the target table as the migration left it'",
    "targetSum": "decimal(40,0) DEFAULT NULL COMMENT 'their checksum: sum of per-row CRC32 of the kept columns'",
    "targetColumns": "char(16) DEFAULT NULL COMMENT 'fingerprint of the kept columns the checksum covers'",
    "dtmFinal": "datetime DEFAULT NULL COMMENT 'UTC end of the final catch-up (--final) of the cutover'",
}


async def ensure_checkpoints(conn: Any) -> None:
    await execute(conn, CREATE_CHECKPOINTS)
    have = {
        row[0]
        for row in await fetch_all(
            conn,
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (CHECKPOINTS,),
        )
    }
    for name, definition in GUARD_COLUMNS.items():
        if name not in have:
            await execute(conn, f"ALTER TABLE `{CHECKPOINTS}` ADD COLUMN {quote(name)} {definition}")


@dataclass
class NotCarried:
    table: str
    key: str
    reason: str
    detail: str = ""


@dataclass
class TableResult:
    table: str
    service: str
    source_rows: int = 0
    scanned: int = 0
    written: int = 0
    deleted: int = 0
    skipped_chunks: int = 0
    seconds: float = 0.0
    state: str = "copied"
    dropped_columns: list[str] = field(default_factory=list)
    not_carried: list[NotCarried] = field(default_factory=list)
    notes: list[NotCarried] = field(default_factory=list)


@dataclass(frozen=True)
class Columns:
    """The columns a table keeps (in both schemas) and which of them the target stores as floating point."""

    kept: tuple[str, ...]
    floats: frozenset[int]
    dropped: tuple[str, ...]

    def select_list(self) -> str:
        return ", ".join(quote(c) for c in self.kept)

    def checksum_sql(self) -> str:
        parts = ", ".join(f"COALESCE({quote(c)}, '\\0')" for c in self.kept)
        return f"COALESCE(SUM(CRC32(CONCAT_WS('|', {parts}))), 0)"

    def normalise(self, row: Iterable[Any]) -> tuple[Any, ...]:
        return tuple(None if v is None else (f"{float(v):.6g}" if i in self.floats else v) for i, v in enumerate(row))

    def fingerprint(self) -> str:
        """Names the columns a stored checksum covers: a later run with other kept columns (a service migration added
        one) cannot compare checksums, only row counts."""
        return hashlib.sha256(",".join(self.kept).encode()).hexdigest()[:16]


async def aggregate(
    conn: Any, table: str, columns: Columns, where: str = "", args: tuple[Any, ...] = ()
) -> tuple[int, int]:
    """Row count and checksum (sum of per-row CRC32 of the kept columns) of ``table`` (or of a key range of it)."""
    sql = f"SELECT COUNT(*), {columns.checksum_sql()} FROM {quote(table)}{where}"  # noqa: S608
    row = await fetch_one(conn, sql, args)
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def table_columns(conn: Any, database: str, table: str) -> list[tuple[str, str]]:
    rows = await fetch_all(
        conn,
        "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
        "ORDER BY ORDINAL_POSITION",
        (database, table),
    )
    return [(name, dtype.lower()) for name, dtype in rows]


async def resolve_columns(source: Any, source_db: str, target: Any, target_db: str, plan: TablePlan) -> Columns:
    source_cols = await table_columns(source, source_db, plan.name)
    if not source_cols:
        raise LookupError(f"source has no table {plan.name}")
    target_types = dict(await table_columns(target, target_db, plan.name))
    if not target_types:
        raise LookupError(f"target {target_db} has no table {plan.name} (service migrations not applied?)")
    kept = tuple(name for name, _ in source_cols if name in target_types)
    if plan.key not in kept:
        raise LookupError(f"{plan.name}: key {plan.key} missing on one side")
    floats = frozenset(i for i, name in enumerate(kept) if target_types[name] in _FLOAT_TYPES)
    dropped = tuple(name for name, _ in source_cols if name not in target_types)
    return Columns(kept, floats, dropped)


# ---- checkpoints --------------------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    pass_no: int
    last_key: int | None
    complete: bool
    rows_written: int
    target_rows: int | None = None  # the target table as the migration left it (None: not recorded)
    target_sum: int | None = None
    target_columns: str | None = None
    final: str | None = None  # when the final catch-up finished the table (UTC), if one did


async def read_checkpoint(target: Any, table: str) -> Checkpoint | None:
    row = await fetch_one(
        target,
        "SELECT `pass`, `lastKey`, `complete`, `rowsWritten`, `targetRows`, `targetSum`, `targetColumns`, `dtmFinal` "  # noqa: S608
        f"FROM `{CHECKPOINTS}` WHERE `tableName` = %s",
        (table,),
    )
    if row is None:
        return None
    number = lambda v: None if v is None else int(v)  # noqa: E731
    return Checkpoint(int(row[0]), number(row[1]), row[2] == "1", int(row[3]), number(row[4]), number(row[5]),
                      row[6], row[7])  # fmt: skip


async def start_pass(target: Any, table: str, pass_no: int) -> None:
    await execute(
        target,
        f"INSERT INTO `{CHECKPOINTS}` (`tableName`, `pass`, `lastKey`, `complete`, `rowsWritten`, `dtmStarted`, "  # noqa: S608
        "`dtmUpdated`) VALUES (%s, %s, NULL, 0, 0, UTC_TIMESTAMP(), UTC_TIMESTAMP()) ON DUPLICATE KEY UPDATE "
        "`pass` = VALUES(`pass`), `lastKey` = NULL, `complete` = 0, `rowsWritten` = 0, `dtmStarted` = UTC_TIMESTAMP(), "
        "`dtmUpdated` = UTC_TIMESTAMP()",
        (table, pass_no),
    )


async def record_target(target: Any, table: str, state: tuple[int, int], columns: Columns) -> None:
    """The target table as a pass starts (or resumes): the baseline its chunks move. A pass that writes clears the
    cutover marker; only the final one sets it again, when it completes."""
    await execute(
        target,
        f"UPDATE `{CHECKPOINTS}` SET `targetRows` = %s, `targetSum` = %s, `targetColumns` = %s, `dtmFinal` = NULL "  # noqa: S608
        "WHERE `tableName` = %s",
        (state[0], state[1], columns.fingerprint(), table),
    )


# ---- the guards: never delete or overwrite what the suite stored --------------------------------------------------
@dataclass
class Refusal:
    table: str
    service: str
    reason: str


class Refused(Exception):
    """A copy or catch-up that would delete or overwrite rows the suite wrote after the migration's: nothing was
    written (every table is checked before the first one is copied)."""

    def __init__(self, refusals: list[Refusal]) -> None:
        super().__init__("; ".join(f"{r.service}.{r.table}: {r.reason}" for r in refusals))
        self.refusals = refusals


async def check_target(
    plan: TablePlan, target: Any, columns: Columns, *, final_run: bool
) -> tuple[tuple[int, int], list[Refusal]]:
    """The target table's row count and checksum now, and why a run must not write it: the final catch-up of the
    cutover ran (unless this is a final run again: a crashed final catch-up is resumed by repeating it), or the
    table is no longer as the migration left it."""
    state = await aggregate(target, plan.name, columns)
    checkpoint = await read_checkpoint(target, plan.name)
    refusals: list[Refusal] = []
    if checkpoint is None:
        return state, refusals
    if checkpoint.final is not None and not final_run:
        refusals.append(Refusal(plan.name, plan.service, f"the final catch-up (--final) finished it at "
                                                         f"{checkpoint.final} UTC"))  # fmt: skip
    if checkpoint.target_rows is not None:
        rows = state[0] - checkpoint.target_rows
        same_columns = checkpoint.target_columns == columns.fingerprint()
        if rows or (same_columns and state[1] != checkpoint.target_sum):
            change = f"{abs(rows):,} row(s) {'more' if rows > 0 else 'fewer'}" if rows else "rows changed"
            counts = f"{checkpoint.target_rows:,} rows then, {state[0]:,} now"
            refusals.append(
                Refusal(plan.name, plan.service, f"written since the migration left it ({change}; {counts})")
            )
    return state, refusals


# ---- one pass over one table --------------------------------------------------------------------------------
class TableCopy:
    def __init__(
        self, plan: TablePlan, source: Any, target: Any, columns: Columns, batch: int,
        on_progress: Callable[[int], None] = lambda _: None,
    ) -> None:  # fmt: skip
        self.plan = plan
        self.source = source
        self.target = target
        self.columns = columns
        self.batch = batch
        self.on_progress = on_progress
        self.table = quote(plan.name)
        self.key = quote(plan.key)
        self.key_index = columns.kept.index(plan.key)
        self.result = TableResult(plan.name, plan.service, dropped_columns=list(columns.dropped))
        self.skip_keys: set[str] = set()
        self.final = False
        self._checksum = columns.checksum_sql()  # the same expression for every chunk of both sides

    async def run(
        self, catch_up: bool, *, final: bool = False, target_state: tuple[int, int] | None = None
    ) -> TableResult:
        """One pass (or the rest of one); ``final`` marks the table cut over when the pass completes;
        ``target_state`` is the target table's aggregate as :func:`check_target` found it (else read here)."""
        started = time.monotonic()
        self.final = final
        self.result.source_rows = await self._count(self.source)
        checkpoint = await read_checkpoint(self.target, self.plan.name)
        if checkpoint is None:
            checkpoint = Checkpoint(1, None, False, 0)
            await start_pass(self.target, self.plan.name, 1)
        elif checkpoint.complete and not catch_up:
            self.result.state = "done earlier"
            self.on_progress(self.result.source_rows)
            return self.result
        elif checkpoint.complete:
            checkpoint = Checkpoint(checkpoint.pass_no + 1, None, False, 0)
            await start_pass(self.target, self.plan.name, checkpoint.pass_no)
        else:
            self.result.state = "resumed" if checkpoint.last_key is not None else "copied"
        if target_state is None:
            target_state = await aggregate(self.target, self.plan.name, self.columns)
        await record_target(self.target, self.plan.name, target_state, self.columns)
        await self.find_duplicates()
        lower = checkpoint.last_key
        if lower is not None:  # resumed: what the checkpoint covers counts as scanned
            self.on_progress(await self._count(self.source, upper=lower))
        while True:
            upper = await self._chunk_upper(lower)
            await self._sync_chunk(lower, upper)
            if upper is None:
                break
            lower = upper
        await self._align_auto_increment()
        await self._report_orphans()
        self.result.seconds = time.monotonic() - started
        return self.result

    async def _count(self, conn: Any, upper: int | None = None) -> int:
        where, args = ("", ()) if upper is None else (f" WHERE {self.key} <= %s", (upper,))
        row = await fetch_one(conn, f"SELECT COUNT(*) FROM {self.table}{where}", args)  # noqa: S608
        return int(row[0]) if row else 0

    async def find_duplicates(self) -> None:
        """Rows the target's extra UNIQUE keys would refuse: all but the lowest key of each value."""
        self.skip_keys = set()
        for column in self.plan.unique:
            col = quote(column)
            rows = await fetch_all(
                self.source,
                f"SELECT t.{self.key}, t.{col} FROM {self.table} t JOIN (SELECT {col} AS v, MIN({self.key}) AS first "  # noqa: S608
                f"FROM {self.table} WHERE {col} IS NOT NULL GROUP BY {col} HAVING COUNT(*) > 1) d ON t.{col} = d.v "
                f"WHERE t.{self.key} <> d.first ORDER BY t.{self.key}",
            )
            for key, value in rows:
                self.skip_keys.add(key)
                detail = f"{column}={value!r} kept on a lower {self.plan.key}"
                self.result.not_carried.append(NotCarried(self.plan.name, key, f"duplicate {column}", detail))

    def _range(self, lower: int | None, upper: int | None) -> tuple[str, tuple[Any, ...]]:
        conditions, args = [], []
        if lower is not None:
            conditions.append(f"{self.key} > %s")
            args.append(lower)
        if upper is not None:
            conditions.append(f"{self.key} <= %s")
            args.append(upper)
        return (" WHERE " + " AND ".join(conditions) if conditions else ""), tuple(args)

    async def _chunk_upper(self, lower: int | None) -> int | None:
        """The key ending the chunk after ``lower``; None = the rest of the table is one (last) chunk."""
        where, args = self._range(lower, None)
        row = await fetch_one(
            self.source,
            f"SELECT {self.key} FROM {self.table}{where} ORDER BY {self.key} LIMIT 1 OFFSET %s",  # noqa: S608
            (*args, self.batch - 1),
        )
        return None if row is None else int(row[0])

    async def _aggregate(self, conn: Any, where: str, args: tuple[Any, ...]) -> tuple[int, int]:
        row = await fetch_one(conn, f"SELECT COUNT(*), {self._checksum} FROM {self.table}{where}", args)  # noqa: S608
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def _rows(self, conn: Any, where: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        sql = f"SELECT {self.columns.select_list()} FROM {self.table}{where} ORDER BY {self.key}"  # noqa: S608
        return await fetch_all(conn, sql, args)

    async def _sync_chunk(self, lower: int | None, upper: int | None) -> None:
        where, args = self._range(lower, upper)
        before = await self._aggregate(self.target, where, args)
        target_count = before[0]
        if target_count:
            source_agg = await self._aggregate(self.source, where, args)
            if source_agg == before:
                self.result.skipped_chunks += 1
                self.result.scanned += source_agg[0]
                self.on_progress(source_agg[0])
                await self._save_checkpoint(self.target, upper, 0)
                return
        source_rows = await self._rows(self.source, where, args)
        self.result.scanned += len(source_rows)
        wanted = [row for row in source_rows if row[self.key_index] not in self.skip_keys]
        deletes: list[Any] = []
        if target_count:
            have = {
                row[self.key_index]: self.columns.normalise(row) for row in await self._rows(self.target, where, args)
            }
            wanted_keys = {row[self.key_index] for row in wanted}
            deletes = [key for key in have if key not in wanted_keys]
            wanted = [row for row in wanted if have.get(row[self.key_index]) != self.columns.normalise(row)]
        await self._write(wanted, deletes, upper, (where, args), before)
        self.on_progress(len(source_rows))

    async def _save_checkpoint(
        self, conn: Any, upper: int | None, written: int, moved: tuple[int, int] = (0, 0)
    ) -> None:
        """The chunk done; ``moved``: how the chunk changed the target's row count and checksum."""
        done = "`complete` = 1" if upper is None else "`lastKey` = %s"
        final = ", `dtmFinal` = UTC_TIMESTAMP()" if upper is None and self.final else ""
        await execute(
            conn,
            f"UPDATE `{CHECKPOINTS}` SET {done}, `rowsWritten` = `rowsWritten` + %s, `targetRows` = `targetRows` + %s, "  # noqa: S608
            f"`targetSum` = `targetSum` + %s, `dtmUpdated` = UTC_TIMESTAMP(){final} WHERE `tableName` = %s",
            (*(() if upper is None else (upper,)), written, moved[0], moved[1], self.plan.name),
        )

    def _upsert_sql(self, rows: int) -> str:
        cols = self.columns.select_list()
        group = "(" + ", ".join(["%s"] * len(self.columns.kept)) + ")"
        updates = ", ".join(f"{quote(c)} = VALUES({quote(c)})" for c in self.columns.kept if c != self.plan.key)
        return (
            f"INSERT INTO {self.table} ({cols}) VALUES {', '.join([group] * rows)} "  # noqa: S608
            f"ON DUPLICATE KEY UPDATE {updates}"
        )

    async def _write(
        self, rows: list[tuple[Any, ...]], deletes: list[Any], upper: int | None,
        chunk: tuple[str, tuple[Any, ...]], before: tuple[int, int],
    ) -> None:  # fmt: skip
        """Upserts, deletes and the checkpoint in one transaction; a chunk the server refuses as a whole is
        redone row by row, and each refused row is reported with the server's reason. The checkpoint's record of
        the target moves by the chunk's aggregate after the writes less ``before``, in the same transaction."""
        conn = self.target
        await conn.begin()
        try:
            written = len(rows)
            if rows:
                try:
                    await execute(conn, self._upsert_sql(len(rows)), [v for row in rows for v in row])
                except DatabaseError as error:
                    if _error_code(error) not in _ROW_ERRORS:
                        raise
                    written = await self._write_rows_apart(rows)
            if deletes:
                marks = ", ".join(["%s"] * len(deletes))
                await execute(conn, f"DELETE FROM {self.table} WHERE {self.key} IN ({marks})", deletes)  # noqa: S608
            after = await self._aggregate(conn, *chunk)
            moved = (after[0] - before[0], after[1] - before[1])
            await self._save_checkpoint(conn, upper, written + len(deletes), moved)
        except BaseException:
            await conn.rollback()
            raise
        await conn.commit()
        self.result.written += written
        self.result.deleted += len(deletes)

    async def _write_rows_apart(self, rows: list[tuple[Any, ...]]) -> int:
        # MySQL undoes only the failed statement, so the transaction (and the rows before) stays usable.
        sql = self._upsert_sql(1)
        written = 0
        for row in rows:
            try:
                await execute(self.target, sql, list(row))
                written += 1
            except DatabaseError as error:
                if _error_code(error) not in _ROW_ERRORS:
                    raise
                self.result.not_carried.append(
                    NotCarried(self.plan.name, row[self.key_index], "refused by the target", str(error.args[-1]))
                )
        return written

    async def _align_auto_increment(self) -> None:
        """Keep ids never handed out again that the original already handed out (its counter can be past the
        highest row left: deleted notifications, rolled-back inserts). The counter is information_schema's, fresh
        because the source session asks for uncached statistics (db.connect_source); MAX(key) + 1 bounds it from
        below should a server still answer a cached one."""
        row = await fetch_one(
            self.source,
            "SELECT t.AUTO_INCREMENT, c.COLUMN_NAME FROM information_schema.TABLES t "
            "LEFT JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME "
            "AND c.EXTRA LIKE %s "
            "WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_NAME = %s",
            ("%auto_increment%", self.plan.name),
        )
        if not row or row[0] is None:
            return
        counter = int(row[0])
        if row[1] is not None:
            highest = await fetch_one(self.source, f"SELECT MAX({quote(row[1])}) FROM {self.table}")  # noqa: S608
            if highest and highest[0] is not None:
                counter = max(counter, int(highest[0]) + 1)
        await execute(self.target, f"ALTER TABLE {self.table} AUTO_INCREMENT = {counter}")

    async def _report_orphans(self) -> None:
        for orphan in self.plan.orphans:
            col, parent, parent_key = quote(orphan.column), quote(orphan.parent_table), quote(orphan.parent_key)
            try:
                rows = await fetch_all(
                    self.source,
                    f"SELECT t.{self.key}, t.{col} FROM {self.table} t WHERE t.{col} IS NOT NULL AND NOT EXISTS "  # noqa: S608
                    f"(SELECT 1 FROM {parent} p WHERE p.{parent_key} = t.{col}) ORDER BY t.{self.key}",
                )
            except DatabaseError:  # a source without the parent table: nothing to say
                continue
            for key, value in rows:
                if key not in self.skip_keys:
                    detail = f"{orphan.column}={value} has no {orphan.parent_table} row"
                    self.result.notes.append(NotCarried(self.plan.name, key, "carried, orphan", detail))


def _error_code(error: BaseException) -> int:
    return error.args[0] if error.args and isinstance(error.args[0], int) else -1


# ---- verification -------------------------------------------------------------------------------------------
@dataclass
class TableCheck:
    table: str
    service: str
    source_rows: int
    target_rows: int
    source_checksum: str
    target_checksum: str
    not_carried: int
    differing_keys: list[Any]

    @property
    def ok(self) -> bool:
        return self.source_checksum == self.target_checksum and self.source_rows - self.not_carried == self.target_rows


async def verify_table(plan: TablePlan, source: Any, target: Any, columns: Columns, batch: int) -> TableCheck:
    """Counts and a SHA-256 of every kept column of every row (normalised, in key order) on both sides; rows the
    migration does not carry (duplicates of a target-only UNIQUE key, listed in the report) are left out of the
    source's side."""
    copy = TableCopy(plan, source, target, columns, batch)
    await copy.find_duplicates()
    skip_keys = copy.skip_keys
    source_hash, target_hash = hashlib.sha256(), hashlib.sha256()
    source_count = target_count = 0
    differing: list[Any] = []
    lower: int | None = None
    while True:
        upper = await copy._chunk_upper(lower)  # noqa: SLF001 - same chunking as the copy
        where, args = copy._range(lower, upper)  # noqa: SLF001
        source_rows, target_rows = await asyncio.gather(
            copy._rows(source, where, args), copy._rows(target, where, args)
        )  # noqa: SLF001
        source_count += len(source_rows)
        target_count += len(target_rows)
        carried = [columns.normalise(r) for r in source_rows if r[copy.key_index] not in skip_keys]
        stored = [columns.normalise(r) for r in target_rows]
        for row in carried:
            source_hash.update(repr(row).encode())
        for row in stored:
            target_hash.update(repr(row).encode())
        if carried != stored and len(differing) < 20:
            mine = {r[copy.key_index]: r for r in stored}
            theirs = {r[copy.key_index]: r for r in carried}
            differing += sorted(
                (k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)), key=_key_order
            )
        if upper is None:
            break
        lower = upper
    return TableCheck(
        plan.name, plan.service, source_count, target_count, source_hash.hexdigest()[:16], target_hash.hexdigest()[:16],
        len(skip_keys), differing[:20],
    )  # fmt: skip


def _key_order(key: Any) -> tuple[int, Any]:
    try:
        return (0, int(key))
    except (TypeError, ValueError):
        return (1, str(key))

"""MySQL/MariaDB access: one asyncmy pool per service, always parameterised SQL, ordered SQL migrations."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import asyncmy
import asyncmy.errors
import msgspec
from asyncmy import converters
from asyncmy.constants import FIELD_TYPE
from asyncmy.cursors import DictCursor

from servicekit import metrics
from servicekit.settings import CommonSettings

log = logging.getLogger(__name__)

Args = Sequence[Any] | dict[str, Any]
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")
MULTI_ROW_BATCH = 500  # rows per multi-row statement (Connection.execute_rows): well under max_allowed_packet


def _date_or_none(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The driver's date parser, with None for what it cannot parse (it returns the text): the original's zero dates
    (``0000-00-00 00:00:00``, carried as stored by deploy.migrate) read as NULL, as the original's own driver
    answered them (null), instead of a string where the code expects a datetime."""

    def decode(value: Any) -> Any:
        parsed = parse(value)
        return None if isinstance(parsed, (str, bytes)) else parsed

    return decode


# The driver's conversions, zero dates read as NULL (DATETIME, TIMESTAMP, DATE).
CONVERSIONS: dict[Any, Any] = {
    **converters.conversions,
    FIELD_TYPE.DATETIME: _date_or_none(converters.convert_datetime),
    FIELD_TYPE.TIMESTAMP: _date_or_none(converters.convert_datetime),
    FIELD_TYPE.DATE: _date_or_none(converters.convert_date),
}


def json_row_sql(columns: Sequence[str], alias: str = "") -> str:
    """A SELECT item giving ``columns`` as ONE JSON document named ``doc`` (read with ``fetch_json_row``).

    The driver parses a column definition and a value per column on every query; for a hot read of many columns
    that costs more client CPU than the rest of the request's SQL handling, while msgspec decodes one document in
    microseconds. JSON keeps numbers, strings and nulls; DATETIMEs come as text (``fetch_json_row`` parses the
    ones it is told about); DECIMALs come as JSON numbers (CAST them AS CHAR in the query to keep them exact).
    Column names come from code, never from input."""
    prefix = f"{alias}." if alias else ""
    return "JSON_OBJECT(" + ", ".join(f"'{column}', {prefix}`{column}`" for column in columns) + ") AS doc"


def json_datetime(text: str | None) -> datetime | None:
    """A DATETIME as JSON_OBJECT gives it, as the driver would: a datetime, None for NULL and zero dates."""
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:  # '0000-00-00 00:00:00' in migrated rows: no date (CONVERSIONS reads it so too)
        return None


_json_decode = msgspec.json.Decoder().decode


def decode_json_row(raw: str | bytes, dates: Iterable[str] = ()) -> dict[str, Any]:
    row: dict[str, Any] = _json_decode(raw)
    for column in dates:
        row[column] = json_datetime(row.get(column))
    return row


class StatementTimeout(asyncmy.errors.OperationalError):
    """MariaDB did not answer a statement within the connection's ``timeout`` (a stalled or unreachable server).
    The connection is closed (its protocol state is unknown) and dropped by the pool; the statement's outcome is
    unknown too, so callers treat it as any lost connection: the request answers an error, nothing is acknowledged."""


def server_unreachable(exc: BaseException) -> bool:
    """The error says the server could not be reached or did not answer (the client's own error codes, 2000-2999:
    cannot connect, gone away, lost connection, a StatementTimeout), nothing about the statement or its data."""
    return isinstance(exc, asyncmy.errors.OperationalError) and bool(exc.args) and 2000 <= exc.args[0] < 3000


@asynccontextmanager
async def _bounded(raw: Any, seconds: float | None) -> AsyncIterator[None]:
    """Fail with StatementTimeout when the block waits on the server longer than ``seconds`` (None: no limit)."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raw.close()  # a cancelled exchange leaves the protocol desynced: never reuse this connection
        raise StatementTimeout(2013, f"no answer from MySQL within {seconds} s") from exc


class _BoundedAcquire:
    """A checkout that waits at most ``timeout`` when no connection is free: the pool opens new connections under
    its lock, and the driver's handshake has no timeout of its own, so a stalled server would hold every caller."""

    def __init__(self, pool: Any, timeout: float) -> None:
        self.pool, self.timeout, self.raw = pool, timeout, None

    async def __aenter__(self) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                self.raw = await self.pool.acquire()
        except TimeoutError as exc:
            raise StatementTimeout(2013, f"no MySQL connection within {self.timeout} s") from exc
        return self.raw

    async def __aexit__(self, *_: object) -> None:
        released = self.pool.release(self.raw)
        if inspect.isawaitable(released):
            await released


class Connection:
    """A pooled connection; inside :meth:`Database.transaction` everything runs in one transaction. Each statement
    fails with :class:`StatementTimeout` after ``timeout`` seconds without an answer (None: waits as long as the
    server takes, e.g. for migrations)."""

    def __init__(self, raw: Any, in_transaction: bool = False, timeout: float | None = None) -> None:
        self.raw = raw
        self.timeout = timeout
        self.in_transaction = in_transaction
        self.events_added = 0  # outbox rows written in this transaction
        self.outbox_rows: list[tuple[Any, ...]] = []  # servicekit.bus: events waiting for the commit
        # Run, in order, just before the transaction commits (inside it: a failure rolls everything back). The
        # outbox uses it to write all of a transaction's events in one statement.
        self.before_commit: list[Callable[[], Awaitable[None]]] = []
        # execute_later's rows not yet written: runs of one statement shape, in the order they were queued.
        self._later: list[tuple[tuple[str, str, str], list[Sequence[Any]]]] = []

    async def run_before_commit(self) -> None:
        hooks, self.before_commit = self.before_commit, []
        for hook in hooks:
            await hook()

    async def fetch_one(self, sql: str, args: Args = ()) -> dict[str, Any] | None:
        async with _bounded(self.raw, self.timeout), self.raw.cursor(DictCursor) as cur:
            await cur.execute(sql, args)
            return await cur.fetchone()

    async def fetch_json_row(self, sql: str, args: Args = (), dates: Iterable[str] = ()) -> dict[str, Any] | None:
        """The first row of a query whose first column is a :func:`json_row_sql` document, decoded."""
        async with _bounded(self.raw, self.timeout), self.raw.cursor() as cur:
            await cur.execute(sql, args)
            found = await cur.fetchone()
        return None if found is None else decode_json_row(found[0], dates)

    async def fetch_all(self, sql: str, args: Args = ()) -> list[dict[str, Any]]:
        async with _bounded(self.raw, self.timeout), self.raw.cursor(DictCursor) as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall())

    async def execute_later(self, head: str, row: str, tail: str, values: Sequence[Any]) -> None:
        """One row of a multi-row statement (as :meth:`execute_rows`), written with the transaction's later rows of
        the same statement: a batched consumer's per-event upserts become one statement per run of events instead
        of one round trip each. The rows are written, in order, at the transaction's next write or just before it
        commits, so the order of writes is kept; the transaction must not READ them back before then. Outside a
        transaction the row is written at once."""
        if not self.in_transaction:
            await self.execute(f"{head} {row} {tail}", values)
            return
        shape = (head, row, tail)
        if not self._later:
            self.before_commit.append(self.write_later)
        if self._later and self._later[-1][0] == shape:
            self._later[-1][1].append(values)
        else:
            self._later.append((shape, [values]))

    async def write_later(self) -> None:
        """Write the rows :meth:`execute_later` queued (called before any other write and before the commit)."""
        runs, self._later = self._later, []
        for (head, row, tail), rows in runs:
            await self.execute_rows(head, row, tail, rows)

    async def execute(self, sql: str, args: Args = ()) -> int:
        """Run a statement; returns the number of rows it changed."""
        if self._later:
            await self.write_later()
        async with _bounded(self.raw, self.timeout), self.raw.cursor() as cur:
            return await cur.execute(sql, args)

    async def execute_rows(
        self, head: str, row: str, tail: str, rows: Sequence[Sequence[Any]], batch: int = MULTI_ROW_BATCH
    ) -> int:
        """``head`` + ``row`` once per row + ``tail`` (e.g. ``INSERT INTO t (a, b) VALUES``, ``(%s, %s)``,
        ``ON DUPLICATE KEY UPDATE ...``) as multi-row statements of up to ``batch`` rows: MySQL applies the rows in
        order, each as the single-row statement would (``VALUES(col)`` is the row's own), in far fewer round trips.
        SQL text only from code; the rows' values are parameters. Returns the rows changed."""
        if self._later:
            await self.write_later()
        changed = 0
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            sql = f"{head} {', '.join([row] * len(chunk))} {tail}"
            async with _bounded(self.raw, self.timeout), self.raw.cursor() as cur:
                changed += await cur.execute(sql, [value for values in chunk for value in values])
        return changed

    async def insert(self, sql: str, args: Args = ()) -> int:
        """Run an INSERT; returns the new AUTO_INCREMENT id."""
        if self._later:
            await self.write_later()
        async with _bounded(self.raw, self.timeout), self.raw.cursor() as cur:
            await cur.execute(sql, args)
            return cur.lastrowid


# The driver's base exception (a failed query or lost connection): services catch it without importing the driver.
DatabaseError = asyncmy.errors.Error


T = TypeVar("T")
# Lock wait timeout, deadlock: InnoDB rolled the transaction back; running it again is the documented remedy.
RETRYABLE = {1205, 1213}


async def retry_rolled_back(work: Callable[[], Awaitable[T]], attempts: int = 3) -> T:
    """``work()`` (one whole transaction), run again when InnoDB picked it as a deadlock victim or its lock wait
    timed out: concurrent inserts of the same kind take gap locks that can deadlock each other. A short random
    pause first, so the transactions that collided do not collide again."""
    for attempt in range(attempts):
        try:
            return await work()
        except asyncmy.errors.OperationalError as exc:
            if exc.args[0] not in RETRYABLE or attempt == attempts - 1:
                raise
            log.info("transaction rolled back by InnoDB; running it again", extra={"code": exc.args[0]})
            await asyncio.sleep(0.01 * (attempt + 1) + random.random() * 0.02)  # noqa: S311 - jitter
    raise AssertionError("unreachable")


class LockTimeout(Exception):
    """Another holder kept a named lock longer than the caller would wait."""


class Database:
    def __init__(self, pool: Any, timeout: float | None = None) -> None:
        self.pool = pool
        self.timeout = timeout  # per statement, commit and connect (CommonSettings.mysql_timeout); None: no limit
        # Run after a transaction that wrote outbox events commits: the relay publishes without polling delay.
        self.on_events_committed: list[Callable[[], None]] = []

    @classmethod
    async def connect(cls, settings: CommonSettings, create: bool = True) -> Database:
        if not _IDENTIFIER.match(settings.mysql_database):
            raise ValueError(f"invalid MYSQL_DATABASE name: {settings.mysql_database!r}")
        common = dict(
            host=settings.mysql_host,
            port=settings.mysql_port,
            user=settings.mysql_user,
            password=settings.mysql_password,
            charset="utf8mb4",
            autocommit=True,
            conv=CONVERSIONS,
        )
        timeout = settings.mysql_timeout or None
        if timeout:
            common["connect_timeout"] = max(1, round(timeout))  # the driver takes whole seconds
        if create:
            conn = await asyncmy.connect(**common)
            try:
                async with conn.cursor() as cur:
                    # The name is checked against _IDENTIFIER above; identifiers cannot be bound parameters.
                    await cur.execute(
                        f"CREATE DATABASE IF NOT EXISTS `{settings.mysql_database}` "  # noqa: S608
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
            finally:
                conn.close()
        pool = await asyncmy.create_pool(
            db=settings.mysql_database, minsize=1, maxsize=settings.mysql_pool_size, pool_recycle=3600, **common
        )
        return cls(pool, timeout)

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()

    def _acquire(self) -> Any:
        pool = self.pool
        if not pool.freesize and pool.size >= pool.maxsize:  # every connection is lent out: this acquire waits
            metrics.DB_POOL_WAITS.inc()
        if pool.freesize or self.timeout is None:
            return pool.acquire()
        return _BoundedAcquire(pool, self.timeout)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        async with self._acquire() as raw:
            yield Connection(raw, timeout=self.timeout)

    @asynccontextmanager
    async def transaction(self, read_committed: bool = False) -> AsyncIterator[Connection]:
        """All-or-nothing: commits when the block ends, rolls back on any exception.

        ``read_committed`` runs it at READ COMMITTED, where locking reads take no gap locks (the outbox relay
        scans pending rows with FOR UPDATE while other transactions insert new ones)."""
        async with self._acquire() as raw:
            conn = Connection(raw, in_transaction=True, timeout=self.timeout)
            if read_committed:  # applies to the next transaction of this connection only
                await conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            async with _bounded(raw, self.timeout):
                await raw.begin()
            try:
                yield conn
                await conn.run_before_commit()
            except BaseException:
                await self._rollback(raw)
                raise
            async with _bounded(raw, self.timeout):
                await raw.commit()
        self._committed(conn)

    async def _rollback(self, raw: Any) -> None:
        if raw.connected:  # a statement that timed out closed it: the server rolls back on its own
            async with _bounded(raw, self.timeout):
                await raw.rollback()

    @asynccontextmanager
    async def locked_transaction(self, lock: str, timeout: float) -> AsyncIterator[Connection]:
        """A transaction holding the MySQL named lock ``lock`` until after it commits, so concurrent work on the
        same key (e.g. creating a room of one name) is serialised across replicas without a unique key."""
        async with self.connection() as conn:
            conn.timeout = None if self.timeout is None else self.timeout + timeout  # GET_LOCK waits up to timeout
            got = await conn.fetch_one("SELECT GET_LOCK(%s, %s) AS got", (lock, timeout))
            conn.timeout = self.timeout
            if not got or got["got"] != 1:
                raise LockTimeout(lock)
            try:
                async with _bounded(conn.raw, self.timeout):
                    await conn.raw.begin()
                conn.in_transaction = True
                try:
                    yield conn
                    await conn.run_before_commit()
                except BaseException:
                    await self._rollback(conn.raw)
                    raise
                async with _bounded(conn.raw, self.timeout):
                    await conn.raw.commit()
            finally:
                if conn.raw.connected:  # else the lock went with the connection
                    await conn.fetch_one("SELECT RELEASE_LOCK(%s) AS released", (lock,))
        self._committed(conn)

    def _committed(self, conn: Connection) -> None:
        if conn.events_added:
            for hook in self.on_events_committed:
                hook()

    async def fetch_one(self, sql: str, args: Args = ()) -> dict[str, Any] | None:
        async with self.connection() as conn:
            return await conn.fetch_one(sql, args)

    async def fetch_json_row(self, sql: str, args: Args = (), dates: Iterable[str] = ()) -> dict[str, Any] | None:
        async with self.connection() as conn:
            return await conn.fetch_json_row(sql, args, dates)

    async def fetch_all(self, sql: str, args: Args = ()) -> list[dict[str, Any]]:
        async with self.connection() as conn:
            return await conn.fetch_all(sql, args)

    async def execute(self, sql: str, args: Args = ()) -> int:
        async with self.connection() as conn:
            return await conn.execute(sql, args)

    async def ping(self) -> bool:
        row = await self.fetch_one("SELECT 1 AS ok")
        return bool(row and row["ok"] == 1)


def _split_statements(script: str) -> list[str]:
    """Split a migration on ``;`` at line ends; migrations keep one statement per ``;``-terminated block."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [stmt.strip() for stmt in re.split(r";\s*$", "\n".join(lines), flags=re.M) if stmt.strip()]


def _migration_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix == ".sql")


async def migrate(db: Database, service_migrations: Path | None) -> list[str]:
    """Apply the kit's tables (outbox, handled events) then the service's own SQL files, in order, once each.

    A named lock serialises replicas starting together; each applied file is recorded in ``schema_migrations``.
    """
    kit_dir = Path(str(resources.files("servicekit") / "migrations"))
    own = [("service", service_migrations)] if service_migrations and service_migrations.is_dir() else []
    sources = [("servicekit", kit_dir), *own]
    applied_now: list[str] = []
    async with db.connection() as conn:
        conn.timeout = None  # DDL on a large table takes as long as it takes
        await conn.fetch_one("SELECT GET_LOCK('schema_migrations', 60) AS got")
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version VARCHAR(191) NOT NULL PRIMARY KEY,"
                " applied_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP"
                ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
            )
            done = {r["version"] for r in await conn.fetch_all("SELECT version FROM schema_migrations")}
            for origin, directory in sources:
                for path in _migration_files(directory):
                    version = f"{origin}:{path.name}"
                    if version in done:
                        continue
                    # MySQL DDL commits implicitly, so each file should be safe to re-run (IF NOT EXISTS).
                    for statement in _split_statements(path.read_text(encoding="utf-8")):
                        await conn.execute(statement)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                    applied_now.append(version)
                    log.info("migration applied", extra={"version": version})
        finally:
            await conn.fetch_one("SELECT RELEASE_LOCK('schema_migrations') AS released")
    return applied_now

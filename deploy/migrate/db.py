"""Connections of the migration: the source read-only, the targets with the session settings that carry every
value as it is. Values travel as the server's own text (no decoders): a zero date, a DECIMAL's digits or a
TIMESTAMP arrive and leave unchanged, and no time is spent parsing what is only copied."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncmy
import asyncmy.errors
from asyncmy import converters

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# Encoders only: every column decodes to str (or None), whatever its type.
_AS_TEXT = {key: value for key, value in converters.conversions.items() if not isinstance(key, int)}

# STRICT: a value the target cannot hold fails its row (reported), it is never truncated. No NO_ZERO_DATE: the
# original's zero dates are carried. NO_AUTO_VALUE_ON_ZERO: a key 0 stays 0, as in the original's own dumps.
TARGET_SQL_MODE = "STRICT_TRANS_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"

DatabaseError = asyncmy.errors.Error


@dataclass(frozen=True)
class Dsn:
    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def parse(cls, text: str) -> Dsn:
        """``mysql://user:password@host:port/database`` (user info URL-encoded where needed)."""
        parts = urlsplit(text)
        if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
            raise ValueError(f"not a mysql:// DSN: {redact(text)}")
        database = parts.path.lstrip("/")
        if not _IDENTIFIER.match(database):
            raise ValueError(f"DSN without a valid database name: {redact(text)}")
        return cls(
            host=parts.hostname, port=parts.port or 3306, user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""), database=database,
        )  # fmt: skip

    def with_database(self, database: str) -> Dsn:
        return Dsn(self.host, self.port, self.user, self.password, database)

    def __str__(self) -> str:  # never print a password
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"


def redact(text: str) -> str:
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", text)


async def connect(dsn: Dsn, *, database: bool = True) -> Any:
    return await asyncmy.connect(
        host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password,
        db=dsn.database if database else None, charset="utf8mb4", autocommit=True, conv=_AS_TEXT,
    )  # fmt: skip


async def connect_source(dsn: Dsn, time_zone: str | None = None) -> Any:
    """A connection that cannot write: the server refuses any change in a READ ONLY session.

    TIMESTAMP columns are read as the wall time of ``time_zone``: by default the server's own zone, the one the
    original's sessions saw (it never set one); the target is written in its own default zone, the services'.
    So a TIMESTAMP shows the same wall time through the suite as it did through the original."""
    conn = await connect(dsn)
    if time_zone:
        await execute(conn, "SET SESSION time_zone = %s", (time_zone,))
    await execute(conn, "SET SESSION TRANSACTION READ ONLY")
    # Whole-table aggregates (verify, catch-up) may run long on a big table: do not let the server cut them off.
    await execute(conn, "SET SESSION net_write_timeout = 600")
    await uncached_statistics(conn)
    return conn


async def uncached_statistics(conn: Any) -> bool:
    """MySQL 8+ answers information_schema.TABLES (AUTO_INCREMENT among them) from a cache up to
    information_schema_stats_expiry seconds old (default a day): the counter the copy carries over would be stale.
    0 reads the storage engine's. MariaDB has no such cache and no such variable. True when it was set."""
    if not await fetch_all(conn, "SHOW VARIABLES LIKE %s", ("information_schema_stats_expiry",)):
        return False
    await execute(conn, "SET SESSION information_schema_stats_expiry = 0")
    return True


async def connect_target(dsn: Dsn) -> Any:
    conn = await connect(dsn)
    await execute(conn, f"SET SESSION sql_mode = '{TARGET_SQL_MODE}'")
    # The owner's FKs (room_conference -> node_livekit) would refuse the original's orphans; they are carried and
    # reported instead, as the original held them.
    await execute(conn, "SET SESSION foreign_key_checks = 0")
    return conn


async def execute(conn: Any, sql: str, args: Any = ()) -> int:
    async with conn.cursor() as cur:
        return await cur.execute(sql, args)


async def fetch_all(conn: Any, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(sql, args)
        return list(await cur.fetchall())


async def fetch_one(conn: Any, sql: str, args: Any = ()) -> tuple[Any, ...] | None:
    async with conn.cursor() as cur:
        await cur.execute(sql, args)
        return await cur.fetchone()


def quote(identifier: str) -> str:
    """A table or column name in backquotes; names come from information_schema and the plan, checked here."""
    if not _IDENTIFIER.match(identifier):
        raise ValueError(f"unexpected identifier {identifier!r}")
    return f"`{identifier}`"

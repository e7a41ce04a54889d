"""SQL of the statistics read model (always parameterised; column names only from fixed lists)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from servicekit.db import Connection, Database
from servicekit.rebuild import versioned_update
from telemetry.domain import statistics as domain

# A link joined to the cases of its room: the original's link_connect -> room_conference -> case_data join.
_SUMMARY_FROM = "FROM stats_link l JOIN stats_case c ON c.room = l.room WHERE l.mobile != ''"
_SUMMARY_COLUMNS = (
    "COALESCE(l.linkRowId, l.id) AS id, c.caseId, c.organization, l.recordId, l.mobile, l.domainIndex, l.share, "
    "l.enabled, l.userName, l.room, l.userType, l.crmSender, l.accuracy, l.latitude, l.longitude, "
    "l.patientLatitude, l.patientLongitude, l.service, l.errorVideo, l.errorLocation, l.os, l.userAgent, "
    "l.oneTimeLink, l.dtmCreated, l.dtmExpired, l.linkType"
)


# ---- writes (event consumers) -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)  # a handful of column sets; the same strings let execute_later join the rows
def _link_statement(columns: tuple[str, ...]) -> tuple[str, str, str]:
    names = ", ".join(["linkID", *(f"`{c}`" for c in columns), "version"])
    head = f"INSERT INTO stats_link ({names}) VALUES"  # noqa: S608 (column names from domain.LINK_COLUMNS)
    row = "(" + ", ".join(["%s"] * (len(columns) + 2)) + ")"
    return head, row, "ON DUPLICATE KEY UPDATE " + versioned_update({c: f"VALUES(`{c}`)" for c in columns})


async def upsert_link(conn: Connection, link_id: str, values: dict[str, Any], version: int = 0) -> None:
    """Insert the link or update the given columns (events of one link may carry different columns); a write older
    than the row (``version``, epoch ms) only fills the columns it lacks."""
    columns = tuple(c for c in values if c in domain.LINK_COLUMNS)
    # With the batch's other upserts of the same columns (its positions, mostly) as one statement.
    await conn.execute_later(*_link_statement(columns), (link_id, *(values[c] for c in columns), version))


async def upsert_links(conn: Connection, links: list[tuple[str | None, dict[str, Any]]], version: int) -> None:
    """upsert_link of many (linkID, values) (a rebuild's page), in their order: each run of links with the same
    columns as one multi-row statement. A link without linkID (an original's row) is keyed by ``linkRowId`` (unique
    too), which its values then carry."""
    runs: list[tuple[tuple[str, ...], list[tuple[Any, ...]]]] = []
    for link_id, values in links:
        columns = tuple(c for c in values if c in domain.LINK_COLUMNS)
        if not runs or runs[-1][0] != columns:
            runs.append((columns, []))
        runs[-1][1].append((link_id, *(values[c] for c in columns), version))
    for columns, rows in runs:
        await conn.execute_rows(*_link_statement(columns), rows)


# organization is kept when an event does not carry it (publishers that predate the field send None)
_UPSERT_CASE = versioned_update(
    {"room": "COALESCE(VALUES(room), room)", "status": "VALUES(status)",
     "organization": "COALESCE(VALUES(organization), organization)"}
)  # fmt: skip


async def upsert_case(
    conn: Connection, service: int, case_id: int, room: str | None, status: str | None, organization: str | None,
    version: int = 0,
) -> None:  # fmt: skip
    await conn.execute(
        "INSERT INTO stats_case (service, caseId, room, status, organization, version) VALUES (%s, %s, %s, %s, %s, %s)"  # noqa: S608
        f" ON DUPLICATE KEY UPDATE {_UPSERT_CASE}",
        (service, case_id, room, status, organization, version),
    )


_UPSERT_PARTICIPANT = versioned_update({"userName": "VALUES(userName)", "userType": "VALUES(userType)"})


async def upsert_participant(
    conn: Connection, room: str, identity: str, user_name: str | None, user_type: str | None, version: int = 0
) -> None:
    await conn.execute(
        "INSERT INTO stats_participant (room, identity, userName, userType, version) VALUES (%s, %s, %s, %s, %s)"  # noqa: S608
        f" ON DUPLICATE KEY UPDATE {_UPSERT_PARTICIPANT}",
        (room, identity, user_name, user_type, version),
    )


async def add_track(
    conn: Connection, event_id: str, identity: str | None, room_name: str | None, source: str | None, data: str
) -> None:
    await conn.execute_later(_TRACK_HEAD, _TRACK_ROW, "", (event_id, identity, room_name, source, data))


_TRACK_HEAD = "INSERT IGNORE INTO stats_track (eventId, identity, roomName, source, data) VALUES"
_TRACK_ROW = "(%s, %s, %s, %s, %s)"


async def add_tracks(conn: Connection, tracks: list[tuple[str, str | None, str | None, str | None, str]]) -> None:
    """add_track of many (eventId, identity, roomName, source, data), in multi-row statements (a rebuild's page)."""
    await conn.execute_rows(_TRACK_HEAD, _TRACK_ROW, "", tracks)


# ---- reads (routes) -----------------------------------------------------------------------------------------
def _where(query: domain.SummaryQuery) -> str:
    return "".join(f" AND {clause}" for clause in query.where)


async def summary_count(db: Database, query: domain.SummaryQuery) -> int:
    row = await db.fetch_one(f"SELECT COUNT(*) AS n {_SUMMARY_FROM}{_where(query)}", query.args)  # noqa: S608
    return int(row["n"]) if row else 0


async def summary_rows(db: Database, query: domain.SummaryQuery) -> list[dict[str, Any]]:
    # order_by / order come from fixed maps (domain.SORT_COLUMNS, ASC|DESC); l.id keeps pages stable on ties
    sql = (
        f"SELECT {_SUMMARY_COLUMNS} {_SUMMARY_FROM}{_where(query)}"  # noqa: S608
        f" ORDER BY {query.order_by} {query.order}, l.id {query.order} LIMIT %s OFFSET %s"
    )
    return await db.fetch_all(sql, [*query.args, query.limit, query.offset])


def _created_filter(window: tuple[datetime, datetime | None] | None) -> tuple[str, list[Any]]:
    if window is None:
        return "", []
    start, end = window
    if end is None:
        return " AND dtmCreated >= %s", [start]
    return " AND dtmCreated BETWEEN %s AND %s", [start, end]


async def count_by_os(db: Database, window: tuple[datetime, datetime | None] | None) -> list[dict[str, Any]]:
    clause, args = _created_filter(window)
    return await db.fetch_all(
        f"SELECT os, COUNT(*) AS `COUNT` FROM stats_link WHERE mobile != ''{clause} GROUP BY os",  # noqa: S608
        args,
    )


async def count_by_link_type(db: Database, window: tuple[datetime, datetime | None] | None) -> list[dict[str, Any]]:
    clause, args = _created_filter(window)
    return await db.fetch_all(
        f"SELECT linkType, COUNT(*) AS count FROM stats_link WHERE mobile != ''{clause} GROUP BY linkType",  # noqa: S608
        args,
    )


# /stats/gen: per link, the OLDEST `user` participant of its room (the original overwrote its values user by user
# over the room's users newest first, so the oldest one won) and whether that identity ever published a camera /
# microphone track.
_GENERATE = (
    "SELECT l.linkID, l.os, l.linkType, l.dtmCreated, l.latitude, l.longitude, u.identity, t.video, t.audio"
    " FROM stats_link l"
    " LEFT JOIN (SELECT p.room, p.identity FROM stats_participant p JOIN"
    "   (SELECT room, MIN(id) AS id FROM stats_participant WHERE userType = 'user' GROUP BY room) f ON f.id = p.id"
    " ) u ON u.room = l.room"
    " LEFT JOIN (SELECT identity, MAX(source = 'CAMERA') AS video, MAX(source = 'MICROPHONE') AS audio"
    "   FROM stats_track GROUP BY identity) t ON t.identity = u.identity"
    " WHERE l.mobile != ''"
)


async def generate_rows(db: Database, query: domain.GenerateQuery) -> list[dict[str, Any]]:
    sql, args = _GENERATE, []
    if query.os_is_null:
        sql += " AND l.os IS NULL"
    elif query.os is not None:
        sql += " AND l.os = %s"
        args.append(query.os)
    if query.start is not None and query.end is not None:
        sql += " AND l.dtmCreated >= %s AND l.dtmCreated <= %s"
        args += [query.start, query.end]
    return await db.fetch_all(sql + " ORDER BY l.id DESC", args)  # l.id: the order links were made


async def newest_user_identity(db: Database, mobile: str) -> str | None:
    row = await db.fetch_one(
        "SELECT identity FROM stats_participant WHERE userName = %s AND userType = 'user' ORDER BY id DESC LIMIT 1",
        (mobile,),
    )
    return row["identity"] if row else None


async def tracks_of(db: Database, identity: str) -> list[dict[str, Any]]:
    return await db.fetch_all(
        "SELECT identity, roomName, data FROM stats_track WHERE identity = %s ORDER BY id", (identity,)
    )

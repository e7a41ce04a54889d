"""Storage of the usage log (usage_status_log): its rows, the reads of a room's log and a link's activity, and
the group commit of rows written outside any other transaction (GET /link/getdetail's ``GetLinkDetail`` row, the
hot path, through :func:`usage_writer`, a servicekit group commit).

The batcher's guarantee stays the same as one INSERT per request: a request's row is committed before the
request is answered (the caller awaits it). What changes is the cost: rows of concurrent requests share one
multi-row INSERT (one statement, one commit, one round trip). The writer never waits to collect rows: it takes
whatever queued while the previous INSERT ran, so a lone request pays no extra latency. If a batch fails, its rows
are inserted one by one, so only a bad row's own request fails.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from link import domain
from servicekit.batching import GroupCommit
from servicekit.clock import now_local
from servicekit.db import Connection, Database

log = logging.getLogger(__name__)

MAX_BATCH = 200


# ---- rows ------------------------------------------------------------------------------------------------
_USAGE_COLUMNS = (
    "linkID, room, identity, userName, userType, mobile, linkType, latitude, longitude, status, userAgent, "
    "dtmCreated, data"
)
_USAGE_MARKS = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def usage_row(
    *,
    status: str,
    link_id: str = "",
    room: str = "",
    identity: str = "",
    user_name: str = "",
    user_type: str = "",
    mobile: str = "",
    link_type: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    user_agent: str = "",
    data: Any = None,
) -> tuple[Any, ...]:
    """The values of one usage_status_log row (in _USAGE_COLUMNS order), stamped now."""
    return (
        link_id,
        room,
        identity,
        user_name,
        user_type,
        mobile,
        link_type,
        latitude,
        longitude,
        status,
        user_agent,
        now_local(),
        msgspec.json.encode(data).decode() if data is not None else None,
    )


async def add_usage(conn: Connection, **fields: Any) -> None:
    """One usage row (keyword arguments of :func:`usage_row`), inside the caller's transaction if any."""
    await insert_usage_rows(conn, [usage_row(**fields)])


async def insert_usage_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Several usage rows in one statement (all or none)."""
    marks = ", ".join([_USAGE_MARKS] * len(rows))
    await conn.execute(
        f"INSERT INTO usage_status_log ({_USAGE_COLUMNS}) VALUES {marks}",  # noqa: S608 - constant text, marks
        tuple(value for row in rows for value in row),
    )


async def add_case_usage(conn: Connection, *, user_name: str, status_log: str, at: datetime) -> None:
    """The usage row of a case action (the original's addStatusLog({data, userName}) in the case routes)."""
    await conn.execute(
        "INSERT INTO usage_status_log (linkID, room, identity, userName, userType, mobile, linkType, latitude,"
        " longitude, status, userAgent, dtmCreated, data) VALUES (NULL, '', '', %s, '', '', '', NULL, NULL, '', '',"
        " %s, %s)",
        (user_name, at, msgspec.json.encode(status_log).decode()),
    )


# ---- reads -----------------------------------------------------------------------------------------------
STATUS_LOG_LIMIT = 1000


async def room_status_log(conn: Connection, room: str) -> list[dict[str, Any]]:
    return await conn.fetch_all(
        "SELECT id, linkID, room, identity, mobile, status, userAgent, data, dtmCreated FROM usage_status_log "
        "WHERE room = %s ORDER BY id DESC LIMIT %s",
        (room, STATUS_LOG_LIMIT),
    )


async def active_log(conn: Connection, link_id: str, every_user_type: bool = False) -> list[dict[str, Any]]:
    """The original's getCRMLinkStatusLog: a link's activity rows, oldest first (user rows only unless
    ``every_user_type``, which the original used for location links)."""
    return (await active_logs(conn, [(link_id, every_user_type)]))[0]


async def active_logs(conn: Connection, links: Sequence[tuple[str, bool]]) -> list[list[dict[str, Any]]]:
    """active_log of many (linkID, every_user_type) in one round trip: one indexed LIMIT query per link, joined by
    UNION ALL; the answers in the order asked."""
    if not links:
        return []
    part = (
        "(SELECT %s AS q, id, linkID, mobile, status, linkType, dtmCreated, userType, latitude, longitude, data"
        " FROM usage_status_log WHERE linkID = %s AND status IN (%s, %s, %s, %s, %s, %s)"
        " AND (userType = 'user' OR %s) ORDER BY dtmCreated ASC, id ASC LIMIT %s)"
    )
    args: list[Any] = []
    for index, (link_id, every_user_type) in enumerate(links):
        args += [index, link_id, *domain.links.ACTIVE_LOG_STATUSES, every_user_type, domain.history.TIMELINE_ROWS]
    rows = await conn.fetch_all(" UNION ALL ".join([part] * len(links)), args)
    # UNION ALL promises no order: each link's rows back in its own (dtmCreated, id) order.
    # (MySQL sorts NULL, and a zero date read as NULL, first.)
    rows.sort(key=lambda row: (row["q"], row["dtmCreated"] is not None, row["dtmCreated"] or _EPOCH, row["id"]))
    answers: list[list[dict[str, Any]]] = [[] for _ in links]
    for row in rows:
        index = row.pop("q")
        del row["id"]
        answers[index].append(_timeline_item(row))
    return answers


_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - only a sort key beside naive local times


def _timeline_item(row: dict[str, Any]) -> dict[str, Any]:
    data = row.pop("data")
    item = domain.rows.plain(row)
    if row["status"] == "MultiLatLng" and data:
        try:
            parsed = msgspec.json.decode(data)
        except msgspec.DecodeError:
            parsed = {}
        if isinstance(parsed, dict):
            item["currentLocation"] = parsed.get("currentLocation")
            item["pickLocation"] = parsed.get("pickLocation")
    return item


# ---- group commit ----------------------------------------------------------------------------------------
async def apply_usage_batch(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> list[None]:
    """servicekit.batching's apply step for rows written on their own: one multi-row INSERT per batch."""
    await insert_usage_rows(conn, list(rows))
    return [None] * len(rows)


def usage_writer(db: Database) -> GroupCommit[tuple[Any, ...], None]:
    """The group commit of usage rows (see the module docstring); started and stopped by the app."""
    return GroupCommit(db, "link-usage", apply_usage_batch, max_items=MAX_BATCH)

"""The SMS-link history pages, free of I/O: GET /link/history's paging and the socket ``queue`` search."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from servicekit.clock import parse_local

HISTORY_PAGE_SIZE = 5


def history_offset(page: str | None) -> int:
    """The original: OFFSET 5*page-5 only when page > 1."""
    try:
        number = int(str(page).strip()) if page is not None else 1
    except ValueError:
        number = 1
    number = min(max(number, 1), 1_000_000)
    return HISTORY_PAGE_SIZE * number - HISTORY_PAGE_SIZE if number > 1 else 0


# ---- a link's timeline (the ``history`` emit, RPC_LINK_STATUS_HISTORY) ----------------------------------------
TIMELINE_ROWS = 100  # repository.usage.active_log: a link's oldest activity rows


class FullTimelines:
    """Timelines that can no longer change: a link's timeline is its oldest TIMELINE_ROWS activity rows, and rows are
    only ever added, later than the ones before, so a full one is final. Realtime asks for the timeline of every link
    that reported a position in the last second; a busy link's answer then comes from here instead of a query of
    100 rows. The least recently used are dropped past ``size``; each is kept ``seconds`` at most (rows copied in by
    a migration's catch-up are seen after that)."""

    def __init__(self, size: int = 10_000, seconds: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.size, self.seconds, self.clock = size, seconds, clock
        self._kept: OrderedDict[Hashable, tuple[float, list[dict[str, Any]]]] = OrderedDict()

    def get(self, key: Hashable) -> list[dict[str, Any]] | None:
        kept = self._kept.get(key)
        if kept is None:
            return None
        if self.clock() >= kept[0]:
            del self._kept[key]
            return None
        self._kept.move_to_end(key)
        return kept[1]

    def put(self, key: Hashable, rows: list[dict[str, Any]]) -> None:
        """Keep ``rows`` when they are a full timeline (a shorter one still grows)."""
        if len(rows) < TIMELINE_ROWS:
            return
        self._kept[key] = (self.clock() + self.seconds, rows)
        self._kept.move_to_end(key)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)


# ---- the socket `queue` page (RPC_LINK_QUEUE_PAGE, realtime.md §9) -----------------------------------------
QUEUE_STATUSES = ("init", "changePage", "searchAll", "searchAdvanced")
QUEUE_DEFAULT_SERVICE = 1
QUEUE_DEFAULT_ROWS = 5
QUEUE_MAX_ROWS = 500  # the original had no bound; a page this size already takes seconds to enrich
# The dashboard's free-text search matched these Thai labels of the room status and the link type.
ROOM_STATUS_THAI = {"open": "กำลังสนทนา", "close": "สิ้นสุดการสนทนา"}
LINK_TYPE_THAI = {"video": "วิดีโอ", "location": "พิกัด"}
INT_MAX = 2_147_483_647


class BadQueueRequest(ValueError):
    """A socket ``queue`` request the original crashed on (no reply then)."""


@dataclass(frozen=True)
class QueueSearch:
    """What one socket ``queue`` request selects: the tenant's patient links, newest first, optionally
    narrowed by a free-text search (``text``) or the advanced search's fields (substring matches)."""

    service: int
    limit: int
    offset: int
    text: str = ""  # searchAll: matched against room status / link type labels, created time, mobile, agent
    room_statuses: tuple[str, ...] = ()  # searchAll: the room statuses whose label contains ``text``
    link_types: tuple[str, ...] = ()  # searchAll: the link types whose label contains ``text``
    mobile: str = ""  # searchAdvanced
    agent: str = ""  # searchAdvanced
    room_status: str = ""  # searchAdvanced: substring of the room status ("" any)
    nothing: bool = False  # searchAdvanced with room status "disable": the original matched no row
    created_from: datetime | None = None  # searchAdvanced: the room's creation time range (local), both or none
    created_to: datetime | None = None


def _whole_number(raw: int | str | None, name: str) -> int | None:
    if raw is None:
        return None
    try:
        return int(str(raw).strip())
    except ValueError as exc:
        raise BadQueueRequest(f"invalid {name}") from exc


def queue_search(
    status: str,
    *,
    service: int | str | None = None,
    page: int | str | None = None,
    max_row: int | str | None = None,
    value: str | None = None,
    mobile: str | None = None,
    agent_name: str | None = None,
    room_status: str | None = None,
    date_start: str | None = None,
    date_end: str | None = None,
) -> QueueSearch:
    """A socket ``queue`` request as a :class:`QueueSearch`. The original's rules: service 1 when absent, maxRow
    5, OFFSET maxRow*(page-1) only when page > 1 (any other page: 0); ``all`` room status = any and ``disable``
    = none. Where it crashed (service or maxRow not a number, searchAll without ``value``, a malformed date)
    this raises BadQueueRequest. Missing advanced-search fields match anything (the original compared them as
    the text "undefined", so its dashboard always sent them)."""
    if status not in QUEUE_STATUSES:
        raise BadQueueRequest("unknown queue status")
    tenant = _whole_number(service, "service")
    tenant = QUEUE_DEFAULT_SERVICE if tenant is None else tenant
    if not 0 <= tenant <= INT_MAX:
        raise BadQueueRequest("invalid service")
    limit = _whole_number(max_row, "maxRow")
    limit = QUEUE_DEFAULT_ROWS if limit is None else limit
    if limit < 0:
        raise BadQueueRequest("invalid maxRow")
    limit = min(limit, QUEUE_MAX_ROWS)
    try:
        page_number = int(str(page).strip()) if page is not None else 1
    except ValueError:
        page_number = 1
    page_number = min(page_number, 1_000_000)
    offset = limit * (page_number - 1) if page_number > 1 else 0
    if status == "searchAll":
        if value is None:
            raise BadQueueRequest("searchAll needs a value")
        text = value.strip()
        if not text:
            return QueueSearch(service=tenant, limit=limit, offset=offset)
        return QueueSearch(
            service=tenant,
            limit=limit,
            offset=offset,
            text=text,
            room_statuses=tuple(key for key, label in ROOM_STATUS_THAI.items() if text in label),
            link_types=tuple(key for key, label in LINK_TYPE_THAI.items() if text in label),
        )
    if status == "searchAdvanced":
        wanted_status = room_status if room_status is not None else ""
        created_from = created_to = None
        if date_start is not None and date_end is not None:
            created_from, created_to = parse_local(date_start), parse_local(date_end)
            if created_from is None or created_to is None:
                raise BadQueueRequest("invalid dateTimeStart or dateTimeEnd")
        return QueueSearch(
            service=tenant,
            limit=limit,
            offset=offset,
            mobile=mobile or "",
            agent=agent_name or "",
            room_status="" if wanted_status in ("all", "disable") else wanted_status,
            nothing=wanted_status == "disable",
            created_from=created_from,
            created_to=created_to,
        )
    return QueueSearch(service=tenant, limit=limit, offset=offset)


def like_contains(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its wildcards and escape character taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"

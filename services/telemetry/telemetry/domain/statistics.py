"""Pure rules of the statistics routes (no I/O): query parameters as the original read them, turned into
validated values, and rows shaped as the original's driver answered them."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from servicekit.clock import js_iso, parse_local


class BadQuery(ValueError):
    """A query parameter the original would have pasted into its SQL unchecked; answered 400."""


# The text the original's frontends send for an unset filter.
UNSET = "undefined"
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SUMMARY_DEFAULT_LIMIT = 100
SUMMARY_MAX_LIMIT = 500
FILTER_MAX_CHARS = 100
SORT_COLUMNS = {
    "dtmCreated": "l.dtmCreated",
    "mobile": "l.mobile",
    "linkType": "l.linkType",
    "userType": "l.userType",
    "service": "l.service",
    "organization": "c.organization",
}
# Fields of a /stats/summary row, in the original's order.
SUMMARY_FIELDS = (
    "id", "caseId", "organization", "recordId", "mobile", "domainIndex", "share", "enabled", "userName", "room",
    "userType", "crmSender", "accuracy", "latitude", "longitude", "patientLatitude", "patientLongitude", "service",
    "errorVideo", "errorLocation", "os", "userAgent", "oneTimeLink", "dtmCreated", "dtmExpired", "linkType",
)  # fmt: skip
# link_connect columns the read model keeps, with how an event value is checked before it is stored.
TEXT_COLUMNS = {
    "mobile": 20, "userName": 100, "room": 50, "userType": 10, "linkType": 100, "crmSender": 100, "accuracy": 50,
    "errorVideo": 65535, "errorLocation": 65535, "os": 65535, "userAgent": 65535,
}  # fmt: skip
INT_COLUMNS = ("linkRowId", "recordId", "domainIndex", "share", "enabled", "service", "oneTimeLink")
DECIMAL_COLUMNS = ("latitude", "longitude", "patientLatitude", "patientLongitude")
DATE_COLUMNS = ("dtmCreated", "dtmExpired")
LINK_COLUMNS = (*TEXT_COLUMNS, *INT_COLUMNS, *DECIMAL_COLUMNS, *DATE_COLUMNS)
INT_MAX = 2_147_483_647


def _given(value: str | None) -> str | None:
    """A filter value, or None when absent, empty or the text ``undefined`` (the original's "not set")."""
    if value is None or value == "" or value == UNSET:
        return None
    if len(value) > FILTER_MAX_CHARS:
        raise BadQuery("invalid parameter: too long")
    return value


def _date(value: str | None, name: str, end_of_day: bool = False) -> datetime | None:
    """A date or date-time parameter; date-only values become 00:00:00 (or 23:59:59 with ``end_of_day``)."""
    text = _given(value)
    if text is None:
        return None
    if end_of_day and DATE_ONLY.match(text.strip()):
        text = text.strip() + " 23:59:59"
    parsed = parse_local(text)
    if parsed is None:
        raise BadQuery(f"invalid {name}")
    return parsed


def _positive_int(value: str | None, default: int) -> int:
    """The original's ``parseInt`` with fallback: leading digits count, NaN or <= 0 gives ``default``."""
    match = re.match(r"^\s*[+-]?\d+", value or "")
    if not match:
        return default
    number = int(match.group())
    return number if number > 0 else default


@dataclass
class SummaryQuery:
    """GET /stats/summary (and /link/list) parameters, validated. ``where`` / ``args`` is the SQL filter."""

    limit: int
    page: int
    order_by: str
    order: str
    where: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def summary_query(params: dict[str, str]) -> SummaryQuery:
    sort_by = params.get("sortBy") or "dtmCreated"
    sort_order = (params.get("sortOrder") or "DESC").upper()
    limit = min(_positive_int(params.get("limit"), SUMMARY_DEFAULT_LIMIT), SUMMARY_MAX_LIMIT)
    page = _positive_int(params.get("page"), 1)
    if page > INT_MAX // limit:
        raise BadQuery("invalid page")
    query = SummaryQuery(
        limit=limit,
        page=page,
        order_by=SORT_COLUMNS.get(sort_by, SORT_COLUMNS["dtmCreated"]),
        order=sort_order if sort_order in ("ASC", "DESC") else "DESC",
    )
    start = _date(params.get("dateTimeStart"), "dateTimeStart")
    end = _date(params.get("dateTimeEnd"), "dateTimeEnd", end_of_day=True)
    if start is not None and end is not None:  # the original filtered on dates only when both were given
        query.where.append("l.dtmCreated BETWEEN %s AND %s")
        query.args += [start, end]
    service = _given(params.get("service"))
    if service is not None:  # an integer column: MySQL would compare a text's numeric prefix
        if not re.fullmatch(r"-?\d{1,10}", service) or not -INT_MAX - 1 <= int(service) <= INT_MAX:
            raise BadQuery("invalid service")
        query.where.append("c.service = %s")
        query.args.append(int(service))
    equal = {"linkType": "l.linkType", "userType": "l.userType"}
    for name, column in equal.items():
        value = _given(params.get(name))
        if value is not None:
            query.where.append(f"{column} = %s")
            query.args.append(value)
    search = _given(params.get("search"))
    if search is not None:
        query.where.append("(l.mobile LIKE %s OR l.crmSender LIKE %s OR l.linkType LIKE %s)")
        query.args += [contains(search)] * 3
    substring = {"organization": "c.organization", "mobile": "l.mobile", "crmSender": "l.crmSender"}
    for name, column in substring.items():
        value = _given(params.get(name))
        if value is not None:
            query.where.append(f"{column} LIKE %s")
            query.args.append(contains(value))
    return query


def contains(value: str) -> str:
    """A LIKE pattern matching ``value`` as a plain substring (the original's ``%value%``, wildcards escaped)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def created_range(params: dict[str, str]) -> tuple[datetime, datetime | None] | None:
    """The /stats/device and /stats/type date filter: ``dateTimeStart`` [and ``dateTimeEnd``], compared as
    given (no date-only expansion, as in the original). A start without an end is open-ended (the original
    compared with the text ``undefined`` and matched nothing)."""
    start = _date(params.get("dateTimeStart"), "dateTimeStart")
    if start is None:
        return None
    return start, _date(params.get("dateTimeEnd"), "dateTimeEnd")


@dataclass
class GenerateQuery:
    os_is_null: bool = False
    os: str | None = None
    start: datetime | None = None
    end: datetime | None = None


def generate_query(params: dict[str, str]) -> GenerateQuery:
    """GET /stats/gen: ``os`` (``other`` = no OS known), ``dtmStart`` / ``dtmEnd`` (dates, both or neither)."""
    query = GenerateQuery()
    os_name = params.get("os")
    if os_name == "other":
        query.os_is_null = True
    elif os_name is not None:
        if len(os_name) > FILTER_MAX_CHARS:
            raise BadQuery("invalid os")
        query.os = os_name
    start, end = params.get("dtmStart"), params.get("dtmEnd")
    if start is not None and end is not None:
        for name, value in (("dtmStart", start), ("dtmEnd", end)):
            if not DATE_ONLY.match(value) or parse_local(value) is None:
                raise BadQuery(f"invalid {name}")
        query.start = parse_local(f"{start} 00:00:00")
        query.end = parse_local(f"{end} 23:59:59")
    return query


def user_mobile(params: dict[str, str]) -> str:
    mobile = params.get("mobile") or ""
    if len(mobile) > FILTER_MAX_CHARS:
        raise BadQuery("invalid mobile")
    return mobile


# ---- shaping replies ---------------------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """A column value as the original's driver gave it to ``res.json``."""
    if isinstance(value, datetime):
        return js_iso(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def summary_row(row: dict[str, Any]) -> dict[str, Any]:
    return {name: plain(row.get(name)) for name in SUMMARY_FIELDS}


def generate_item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "linkID": row["linkID"],
        "os": row["os"],
        "type": row["linkType"],
        "identity": row["identity"] if row["identity"] is not None else "",
        "dtmCreated": plain(row["dtmCreated"]),
        "location": 1 if row["latitude"] is not None and row["longitude"] is not None else 0,
        "video": int(row["video"] or 0),
        "audio": int(row["audio"] or 0),
    }


def track_log(row: dict[str, Any]) -> dict[str, Any]:
    return {"EVENT": "track_published", "identity": row["identity"], "roomName": row["roomName"], "data": row["data"]}


def total_pages(count: int, limit: int) -> int:
    return math.ceil(count / limit)


# ---- events -> read model values -----------------------------------------------------------------------------
def column_value(column: str, value: Any) -> tuple[bool, Any]:
    """(usable, value to store) of one link_connect column from an event; unusable values are not applied."""
    if value is None:
        return True, None
    if column in TEXT_COLUMNS:
        if isinstance(value, (dict, list, bool)):
            return False, None
        text = value if isinstance(value, str) else str(value)
        return len(text) <= TEXT_COLUMNS[column], text
    if column in INT_COLUMNS:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return False, None
        try:
            number = int(value)
        except ValueError:
            return False, None
        return -INT_MAX - 1 <= number <= INT_MAX, number
    if column in DECIMAL_COLUMNS:
        return decimal_value(value)
    if column in DATE_COLUMNS:
        parsed = parse_local(value) if isinstance(value, str) else None
        return parsed is not None, parsed
    return False, None


def decimal_value(value: Any) -> tuple[bool, Decimal | None]:
    """A DECIMAL(12,9) position value (rounded as MySQL stores it)."""
    if value is None:
        return True, None
    if isinstance(value, bool):
        return False, None
    try:
        number = Decimal(str(value)).quantize(Decimal("0.000000001"))
    except (InvalidOperation, ValueError):
        return False, None
    return number.is_finite() and abs(number) < 1000, number


def accuracy_text(value: float | None) -> str:
    """``accuracy`` as link stores it (a VARCHAR): "0" when absent, integers without a fraction."""
    if value is None:
        return "0"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def link_values(fields: dict[str, Any]) -> dict[str, Any]:
    """The known, well-formed columns of an event's ``fields`` (others are dropped)."""
    values: dict[str, Any] = {}
    for column, value in fields.items():
        if column not in LINK_COLUMNS:
            continue
        ok, stored = column_value(column, value)
        if ok:
            values[column] = stored
    return values


@dataclass
class TrackPublished:
    identity: str | None
    room_name: str | None
    source: str | None


def track_published(raw: str) -> TrackPublished | None:
    """The facts of a raw ``track_published`` webhook body; None for any other event or unparseable text."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("event") != "track_published":
        return None

    def text_at(obj: Any, key: str) -> str | None:
        value = obj.get(key) if isinstance(obj, dict) else None
        return value if isinstance(value, str) else None

    return TrackPublished(
        identity=text_at(body.get("participant"), "identity"),
        room_name=text_at(body.get("room"), "name"),
        source=text_at(body.get("track"), "source"),
    )


def webhook_key(raw: str) -> str:
    """The key of a raw webhook body in stats_track: recording's receipt key (WebhookReceived.eventId), LiveKit's
    id, or a digest of the body when the id is missing or longer than 64 characters."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    event_id = body.get("id") if isinstance(body, dict) else None
    if isinstance(event_id, str) and 0 < len(event_id) <= 64:
        return event_id
    return "sha-" + hashlib.sha256(raw.encode()).hexdigest()[:40]

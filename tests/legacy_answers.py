"""The original gateway's answers, computed from a legacy source database (tests/legacy.py): what its JavaScript
(old.src/ and src/*.js of the original, not its TypeScript rewrite) would have replied to a route, given that
database, written here as parameterised SQL plus the same post-processing. One of the topic modules of test
helpers listed in support.py; the migration flow compares these with what the suite answers through the edge
(the comparisons are at the end: ``compare_detail``, ``compare_summary``, ``compare_counts``, ``same``).

Values are rendered as the original's mysql2 driver and ``res.json`` did: DATETIME/TIMESTAMP as ISO UTC strings of
local (Asia/Bangkok) times, a zero date as ``null`` (an invalid JS Date), DECIMAL as strings, JSON ``null`` for
NULL, and keys the JS code deleted or set to ``undefined`` left out.

Where the original's code differs from its own intent, a function answers what the code did and says so
(``ORIGINAL_DEFECTS`` lists those found while writing them).
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jwt
from asyncmy.cursors import DictCursor
from asyncmy.errors import OperationalError, ProgrammingError

from servicekit.clock import js_iso
from tests.legacy import SOURCE_TIME_ZONE

TIME_DEPENDENT = "<time-dependent>"  # a value that depends on the moment of the request (recordDuration)

ORIGINAL_DEFECTS = {
    "room_picture": "GET /room/picture joins files.linkId (utf8mb4_0900_ai_ci) to link_connect.linkID "
    "(utf8mb4_unicode_ci): MySQL refuses the comparison (ERROR 1267 Illegal mix of collations), so on its own schema "
    "the original always answered 404 'No pictures found for this room'.",
    "record_file_url": "GET /record/file builds url from item.filename, but the column is fileName: every url ended "
    "in '/undefined'.",
    "record_file_tenant": "GET /record/file takes the room's tenant from case_data (RoomService.getServiceId), so a "
    "room without a case answered 404 'Room not found'.",
    "duplicate_link": "GET /link/getdetail answered 'invalid linkID' when its WHERE linkID = ? found two rows: a "
    "duplicated linkID, or two IDs that differ only in letter case (utf8mb4_unicode_ci compares them equal).",
    "zero_expiry": "A link whose dtmExpired is the zero date never expired: mysql2 reads it as an invalid Date, "
    "which no comparison finds earlier than now.",
    "stats_gen": "GET /stats/gen read .track.source on data_log's TEXT and threw when a track log matched; the "
    "intended values (the parsed JSON) are computed here, as the spec asks.",
}


def js(value: Any) -> Any:
    """One column value as the original's JSON carried it."""
    if value is None:
        return None
    if isinstance(value, (datetime, date)):
        return js_iso(value)
    if isinstance(value, str) and value.startswith("0000-00-00"):
        return None  # an invalid JS Date serialises as null
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return value.decode()
    return value


def js_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: js(v) for k, v in row.items()}


async def query_rows(conn: Any, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows of a parameterised query on the source, as dicts, read as the original's Bangkok server did."""
    async with conn.cursor(DictCursor) as cur:
        await cur.execute("SET SESSION time_zone = %s", (SOURCE_TIME_ZONE,))  # the original's server: Asia/Bangkok
        await cur.execute(sql, args)
        return list(await cur.fetchall())


def _is_zero(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("0000-00-00")


# ---- /link/getdetail ---------------------------------------------------------------------------------------
LINK_COLUMNS = ("linkID, room, enabled, mobile, isAdmin, userName, userType, linkType, requireJoinPermission,"
                " crmSender, requireUserName, requirePassword, oneTimeLink, dtmCreated, dtmExpired")  # fmt: skip
ROOM_COLUMNS = ("id, status, room, roomType, recordId, autoRecord, recordType, encodingOptionsPreset, chatEnabled,"
                " messageUnread, userAgent, dtmCreated, dtmStartRecord, dtmStopRecord, webSocketURL")  # fmt: skip


async def room_detail(conn: Any, room: str | None) -> dict[str, Any] | None:
    """room.service getRoomDetail: the first row of the room, recordDuration when recording started."""
    rows = await query_rows(conn, f"SELECT {ROOM_COLUMNS} FROM room_conference WHERE room = %s LIMIT 1", (room,))  # noqa: S608
    if not rows:
        return None
    detail = js_row(rows[0])
    if rows[0]["dtmStartRecord"] is not None:
        detail["recordDuration"] = TIME_DEPENDENT
    return detail


async def position_user(conn: Any, room: str, user_type: str = "user") -> list[dict[str, Any]]:
    """link.service getLatLngGroup: the room's links of a user type, newest first, one per userName (the newest),
    NULL positions as 0, share links only with a position."""
    rows = await query_rows(
        conn,
        "SELECT id, mobile, share, userName, accuracy, latitude, longitude, errorLocation FROM link_connect"
        " WHERE room = %s AND userType = %s ORDER BY id DESC",
        (room, user_type),
    )
    out: list[dict[str, Any]] = []
    for row in rows:
        if any(kept["userName"] == row["userName"] for kept in out):
            continue
        item = js_row(row)
        item["latitude"] = 0 if row["latitude"] is None else item["latitude"]
        item["longitude"] = 0 if row["longitude"] is None else item["longitude"]
        if row["share"] == 0 or (row["share"] == 1 and item["latitude"] != 0 and item["longitude"] != 0):
            out.append(item)
    return out


HEALTHY_WITHIN = timedelta(minutes=30)  # conference's: a node checked since is preferred for a room without one


async def _signing_node(conn: Any, room: str, now: datetime) -> dict[str, Any] | None:
    """The key and secret a room's token is signed with when they are not the suite's own (None: LIVEKIT_API_KEY).
    The original signed with LIVEKIT_API_KEY always (its code never read node_livekit); the suite uses the nodes of
    node_livekit when it has rows (DESIGN.md: several LiveKit nodes): the room's remembered node, else the first one
    checked healthy within HEALTHY_WITHIN, else the first; a node without its own key signs with the suite's."""
    nodes = await query_rows(conn, "SELECT id, livekitApiKey AS `key`, livekitApiSecret AS secret, lastHealthCheck"
                                   " FROM node_livekit ORDER BY id")  # fmt: skip
    if not nodes:
        return None
    rooms = await query_rows(conn, "SELECT nodeLivekitId FROM room_conference WHERE room = %s ORDER BY id LIMIT 1",
                             (room,))  # fmt: skip
    remembered = rooms[0]["nodeLivekitId"] if rooms else None
    healthy = [n for n in nodes if isinstance(n["lastHealthCheck"], datetime) and now - n["lastHealthCheck"]
               <= HEALTHY_WITHIN]  # fmt: skip
    node = next((n for n in nodes if n["id"] == remembered), None) or (healthy or nodes)[0]
    return {"key": node["key"], "secret": node["secret"]} if node["key"] and node["secret"] else None


async def link_detail(conn: Any, link_id: str, now: datetime) -> dict[str, Any]:
    """GET /link/getdetail?linkId= (no identity), as the original answered at local time ``now``.

    The participant token's parts are random in the original (identity, colour, the token itself); the answer
    carries ``expected_token`` instead: the claims the token had to have (``name`` None = a generated name)."""
    links = await query_rows(conn, f"SELECT {LINK_COLUMNS} FROM link_connect WHERE linkID = %s", (link_id,))  # noqa: S608
    if len(links) != 1:
        return {"status": "FAIL", "message": "invalid linkID"}
    raw = links[0]
    link = js_row(raw)
    if raw["oneTimeLink"] == 2:
        return {"status": "FAIL", "message": "linkID expired"}
    room = await room_detail(conn, raw["room"])
    if room is None:
        return {"status": "FAIL", "message": "invalid room"}
    expired = raw["dtmExpired"]
    if expired is not None and not _is_zero(expired) and now > expired:
        return {"status": "FAIL", "message": "linkID expired", "data": {**link, "status": "linkExpired"}}
    room["listParticipants"] = []  # the suite's LiveKit has nobody in an old room
    data: dict[str, Any] = {"id": link_id, **link, **room}
    if raw["requirePassword"] == 0:
        data["expected_token"] = {
            "node": await _signing_node(conn, raw["room"], now),
            "name": raw["userName"],
            "room": raw["room"],
            "roomJoin": raw["requireJoinPermission"] != 1,
            "metadata": {"userName": raw["userName"], "userType": raw["userType"], "linkType": raw["linkType"],
                         "mobile": raw["mobile"], "linkID": link_id},
        }  # fmt: skip
    data["positionUser"] = await position_user(conn, raw["room"])
    return {"status": "OK", "data": data}


# ---- /link/history ------------------------------------------------------------------------------------------
async def crm_link_status_log(conn: Any, link_id: str) -> list[dict[str, Any]] | bool:
    """usageLog.service getCRMLinkStatusLog (linkType ''): a link's patient-side log, oldest first, at most 100."""
    rows = await query_rows(
        conn,
        "SELECT linkID, mobile, status, linkType, dtmCreated, userType, latitude, longitude, data"
        " FROM usage_status_log WHERE linkID = %s AND status IN ('CreateLink', 'Disconnect', 'Connection',"
        " 'GetLinkDetail', 'UpdateLatLngLinkDetail', 'MultiLatLng') AND userType = 'user'"
        " ORDER BY dtmCreated ASC, id ASC LIMIT 100",
        (link_id,),
    )
    if not rows:
        return False
    out = []
    for row in rows:
        item = js_row({k: v for k, v in row.items() if k != "data"})
        if row["status"] == "MultiLatLng":
            parsed = json.loads(row["data"])
            for key in ("currentLocation", "pickLocation"):
                if parsed.get(key) is not None:
                    item[key] = parsed[key]
        out.append(item)
    return out


async def status_log(conn: Any, room: str) -> dict[str, Any]:
    """GET /status?room=: the room's usage log, newest first, each row's data parsed (kept as text when it is not
    JSON); ``Invalid Room`` when the room has none."""
    rows = await query_rows(
        conn,
        "SELECT id, linkID, room, identity, mobile, status, userAgent, data, dtmCreated FROM usage_status_log"
        " WHERE room = %s ORDER BY id DESC",
        (room,),
    )
    if not rows:
        return {"status": "FAIL", "message": "Invalid Room"}
    out = []
    for row in rows:
        item = js_row(row)
        if item["data"] is not None:
            try:
                item["data"] = json.loads(item["data"])
            except ValueError:
                pass
        out.append(item)
    return {"status": "OK", "data": out}


async def link_history(conn: Any, room_name: str, page: int = 1, limit: int = 5) -> dict[str, Any]:
    """GET /link/history?roomName=&page=: the room's SMS links (mobile, not share) with their cases, oldest first,
    five a page; count = all rows."""
    select = (
        "SELECT DISTINCT case_data.id AS caseId, link_connect.linkID, case_data.status AS caseStatus, case_data.hn,"
        " case_data.patientMobile, room_conference.room, room_conference.id, link_connect.mobile,"
        " link_connect.linkType, link_connect.crmSender, link_connect.latitude, link_connect.longitude,"
        " link_connect.patientLatitude, link_connect.patientLongitude, link_connect.patientUpdated,"
        " link_connect.dtmCreated"
        " FROM room_conference LEFT JOIN link_connect ON link_connect.room = room_conference.room"
        " LEFT JOIN case_data ON case_data.roomId = room_conference.id"
        " WHERE link_connect.mobile != '' AND room_conference.room = %s AND share = 0"
        " ORDER BY link_connect.dtmCreated ASC, link_connect.id ASC, case_data.id ASC"
    )
    everything = await query_rows(conn, select, (room_name,))
    offset = 0 if page <= 1 else limit * page - limit
    rows = everything[offset : offset + limit]
    data = []
    for row in rows:
        item = js_row(row)
        agents = await query_rows(
            conn, "SELECT userName FROM link_connect WHERE room = %s AND userType = 'admin' ORDER BY id LIMIT 1",
            (row["room"],),
        )  # fmt: skip
        item["agent"] = agents[0]["userName"] if agents else False
        statuses = await query_rows(conn, "SELECT status FROM room_conference WHERE room = %s", (row["room"],))
        item["status"] = statuses[0]["status"] if statuses else False
        item["activeLog"] = await crm_link_status_log(conn, row["linkID"])
        item["recordVideos"] = []
        for key in ("latitude", "longitude"):  # null became undefined: the key is gone from the JSON
            if row[key] is None:
                del item[key]
        data.append(item)
    return {"data": data, "count": len(everything)}


# ---- /chat/history ------------------------------------------------------------------------------------------
async def chat_history(conn: Any, room: str) -> list[dict[str, Any]]:
    rows = await query_rows(
        conn,
        "SELECT id, room, identity, chat_identity, userName, userType, text, color, files, replyToMessageId,"
        " replyToUserName, replyToText, dtmCreated FROM chat_message WHERE room = %s ORDER BY dtmCreated ASC, id ASC",
        (room,),
    )
    out = [js_row(r) for r in rows]
    try:
        for item in out:
            if item["files"] != "":
                item["files"] = None if item["files"] is None else json.loads(item["files"])
    except ValueError:
        pass  # the original logged it and returned the rows, the rest unparsed
    return out


# ---- /record/file and /upload/list --------------------------------------------------------------------------
async def room_case_service(conn: Any, room: str) -> Any:
    """room.service getServiceId: the tenant of the room's first case (not room_conference.service)."""
    rows = await query_rows(
        conn,
        "SELECT case_data.service FROM case_data LEFT JOIN room_conference ON case_data.roomId = room_conference.id"
        " WHERE room_conference.room = %s",
        (room,),
    )
    return rows[0]["service"] if rows else None


async def record_file(conn: Any, room: str, api_url: str) -> tuple[int, dict[str, Any]]:
    """GET /record/file?room= (HTTP status, body). The url is the original's literal one (ORIGINAL_DEFECTS)."""
    service = await room_case_service(conn, room)
    if not service:
        return 404, {"status": "FAIL", "message": "Room not found"}
    rows = await query_rows(conn, "SELECT * FROM record_media WHERE room = %s ORDER BY id", (room,))
    return 200, {"status": "OK", "data": [{**js_row(r), "url": f"{api_url}/record/{service}/undefined"} for r in rows]}


async def upload_list(conn: Any, api_url: str, record_type: str = "", page: int = 1, limit: int = 10) -> dict[str, Any]:
    """GET /upload/list?recordType=&page=&limit=: record_media rows of a record type, newest start first."""
    page, limit = max(1, page), min(100, max(1, limit))
    total = (
        await query_rows(conn, "SELECT COUNT(*) AS total FROM record_media WHERE recordType = %s", (record_type,))
    )[0]
    rows = await query_rows(
        conn,
        "SELECT *, CONCAT(%s, filePath, '/', CASE WHEN hls IS NULL THEN fileName ELSE hls END) AS url"
        " FROM record_media WHERE recordType = %s ORDER BY startRecord DESC, id DESC LIMIT %s OFFSET %s",
        (api_url, record_type, limit, (page - 1) * limit),
    )
    pages = math.ceil(total["total"] / limit)
    return {
        "status": "OK",
        "data": [js_row(r) for r in rows],
        "pagination": {"totalItems": total["total"], "totalPages": pages, "currentPage": page, "itemsPerPage": limit,
                       "hasNextPage": page < pages, "hasPreviousPage": page > 1},
    }  # fmt: skip


# ---- /room/picture -----------------------------------------------------------------------------------------
async def room_picture(conn: Any, room: str, api_url: str, *, intended: bool = False) -> tuple[int, dict[str, Any]]:
    """GET /room/picture?room= (HTTP status, body). As written, the original's join compares two collations and
    fails (ORIGINAL_DEFECTS): 404. ``intended=True``: the list the query meant (the comparison in one collation)."""
    on = "files.linkId = link_connect.linkID" + (" COLLATE utf8mb4_unicode_ci" if intended else "")
    sql = (
        "SELECT files.filename, CONCAT(%s, files.url) AS url, files.width, files.height, files.createdAt"  # noqa: S608
        f" FROM files LEFT JOIN link_connect ON {on} WHERE link_connect.room = %s ORDER BY files.id"
    )
    try:
        rows = await query_rows(conn, sql, (api_url, room))
    except (OperationalError, ProgrammingError):
        return 404, {"status": "FAIL", "message": "No pictures found for this room"}
    return 200, {"status": "OK", "data": [js_row(r) for r in rows]}


# ---- /car/list ------------------------------------------------------------------------------------------------
async def car_list(conn: Any, room: str, limit: int = 100) -> tuple[int, dict[str, Any]]:
    rows = await query_rows(conn, "SELECT * FROM car_track WHERE room = %s ORDER BY id DESC LIMIT %s", (room, limit))
    if not rows:
        return 404, {"status": "NOT FOUND", "message": "invalid room"}
    return 200, {"status": "OK", "data": [js_row(r) for r in rows]}


# ---- /stats/* ------------------------------------------------------------------------------------------------
SORT_FIELDS = {"dtmCreated": "link_connect.dtmCreated", "mobile": "link_connect.mobile",
               "linkType": "link_connect.linkType", "userType": "link_connect.userType",
               "service": "link_connect.service", "organization": "case_data.organization"}  # fmt: skip
SUMMARY_COLUMNS = (
    "link_connect.id, case_data.caseId, case_data.organization, link_connect.recordId, link_connect.mobile,"
    " link_connect.domainIndex, link_connect.share, link_connect.enabled, link_connect.userName, link_connect.room,"
    " link_connect.userType, link_connect.crmSender, link_connect.accuracy, link_connect.latitude,"
    " link_connect.longitude, link_connect.patientLatitude, link_connect.patientLongitude, link_connect.service,"
    " link_connect.errorVideo, link_connect.errorLocation, link_connect.os, link_connect.userAgent,"
    " link_connect.oneTimeLink, link_connect.dtmCreated, link_connect.dtmExpired, link_connect.linkType"
)


def _given(value: str | None) -> bool:
    return value is not None and value != "" and value != "undefined"


async def stats_summary(conn: Any, **query: str) -> dict[str, Any]:
    """GET /stats/summary with the query parameters as strings (the statistics controller's normalisation)."""
    start, end = query.get("dateTimeStart"), query.get("dateTimeEnd")
    if start and len(start) == 10:
        start += " 00:00:00"
    if end and len(end) == 10:
        end += " 23:59:59"
    sort_by = query.get("sortBy") or "dtmCreated"
    sort_by = sort_by if sort_by in SORT_FIELDS else "dtmCreated"
    order = (query.get("sortOrder") or "DESC").upper()
    order = order if order in ("ASC", "DESC") else "DESC"
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        limit = 100
    try:
        page = int(query.get("page", "1"))
    except ValueError:
        page = 1
    limit = 100 if limit <= 0 else min(limit, 500)
    page = 1 if page <= 0 else page
    where, args = ["link_connect.mobile != ''", "case_data.caseId IS NOT NULL"], []
    if _given(start) and _given(end):
        where.append("link_connect.dtmCreated BETWEEN %s AND %s")
        args += [start, end]
    for key, column in (("linkType", "link_connect.linkType"), ("userType", "link_connect.userType")):
        if _given(query.get(key)):
            where.append(f"{column} = %s")
            args.append(query[key])
    if _given(query.get("search")):
        where.append("(link_connect.mobile LIKE %s OR link_connect.crmSender LIKE %s OR link_connect.linkType LIKE %s)")
        args += [f"%{query['search']}%"] * 3
    if _given(query.get("service")):
        where.append("case_data.service = %s")
        args.append(query["service"])
    for key, column in (("organization", "case_data.organization"), ("mobile", "link_connect.mobile"),
                        ("crmSender", "link_connect.crmSender")):  # fmt: skip
        if _given(query.get(key)):
            where.append(f"{column} LIKE %s")
            args.append(f"%{query[key]}%")
    joins = (
        " FROM link_connect LEFT JOIN room_conference ON room_conference.room = link_connect.room"
        " LEFT JOIN case_data ON case_data.roomId = room_conference.id WHERE " + " AND ".join(where)
    )
    count = (await query_rows(conn, "SELECT COUNT(*) AS count" + joins, tuple(args)))[0]["count"]  # noqa: S608
    rows = await query_rows(
        conn,
        f"SELECT {SUMMARY_COLUMNS}{joins} ORDER BY {SORT_FIELDS[sort_by]} {order}, link_connect.id {order},"  # noqa: S608
        " case_data.id LIMIT %s OFFSET %s",
        (*args, limit, (page - 1) * limit),
    )
    return {"count": count, "currentPage": page, "totalPages": math.ceil(count / limit), "limit": limit,
            "data": [js_row(r) for r in rows]}  # fmt: skip


def _range(start: str | None, end: str | None) -> tuple[str, tuple[Any, ...]]:
    """device/type: a start date (not 'undefined') adds BETWEEN start AND end; a missing end was the text
    'undefined', which no DATETIME is between."""
    if start is None or start == "undefined":
        return "", ()
    return " AND link_connect.dtmCreated BETWEEN %s AND %s", (start, "undefined" if end is None else end)


async def stats_device(conn: Any, start: str | None = None, end: str | None = None) -> list[dict[str, Any]]:
    cond, args = _range(start, end)
    sql = f"SELECT os, COUNT(*) AS COUNT FROM link_connect WHERE mobile != ''{cond} GROUP BY os"  # noqa: S608
    rows = await query_rows(conn, sql, args)
    return [js_row(r) for r in rows]


async def stats_type(conn: Any, start: str | None = None, end: str | None = None) -> list[dict[str, Any]]:
    cond, args = _range(start, end)
    sql = f"SELECT linkType, COUNT(*) AS count FROM link_connect WHERE mobile != ''{cond} GROUP BY linkType"  # noqa: S608
    rows = await query_rows(conn, sql, args)
    return [js_row(r) for r in rows]


async def _track_logs(conn: Any) -> list[dict[str, Any]]:
    """data_log's track_published webhooks in insertion order, parsed (MySQL's JSON_EXTRACT on the TEXT)."""
    rows = await query_rows(
        conn, "SELECT id, data FROM data_log WHERE data LIKE %s ORDER BY id", ("%track_published%",)
    )
    out = []
    for row in rows:
        try:
            body = json.loads(row["data"])
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("event") == "track_published":
            out.append({"raw": row["data"], "body": body})
    return out


async def stats_generate(
    conn: Any, os: str | None = None, dtm_start: str | None = None, dtm_end: str | None = None
) -> list[list[dict[str, Any]]]:
    """GET /stats/gen (and /stats/generate): per SMS link, newest first, its media and location use; identity,
    video and audio of the LAST user iterated (the room's oldest `user` room_user row)."""
    where, args = ["mobile != ''"], []
    if os == "other":
        where.append("os IS NULL")
    elif os is not None:
        where.append("os = %s")
        args.append(os)
    if dtm_start is not None and dtm_end is not None:
        where.append("(dtmCreated >= %s AND dtmCreated <= %s)")
        args += [f"{dtm_start} 00:00:00", f"{dtm_end} 23:59:59"]
    links = await query_rows(
        conn,
        "SELECT linkID, os, linkType, dtmCreated, room, latitude, longitude FROM link_connect WHERE "  # noqa: S608
        + " AND ".join(where)
        + " ORDER BY id DESC LIMIT 999999",
        tuple(args),
    )
    users = await query_rows(conn, "SELECT room, identity FROM room_user WHERE userType = 'user' ORDER BY id DESC")
    by_room: dict[str, list[str]] = {}
    for user in users:
        by_room.setdefault(str(user["room"]).lower(), []).append(user["identity"])
    media: dict[str, dict[str, int]] = {}
    for log in await _track_logs(conn):
        identity = (log["body"].get("participant") or {}).get("identity")
        source = (log["body"].get("track") or {}).get("source")
        seen = media.setdefault(str(identity), {"video": 0, "audio": 0})
        if source == "CAMERA":
            seen["video"] = 1
        if source == "MICROPHONE":
            seen["audio"] = 1
    out = []
    for link in links:
        item = {"linkID": link["linkID"], "os": link["os"], "type": link["linkType"], "identity": "",
                "dtmCreated": js(link["dtmCreated"]), "location": 0, "video": 0, "audio": 0}  # fmt: skip
        for identity in by_room.get(str(link["room"]).lower(), []):
            item["identity"] = identity
            item["video"] = media.get(identity, {}).get("video", 0)
            item["audio"] = media.get(identity, {}).get("audio", 0)
        if link["latitude"] is not None and link["longitude"] is not None:
            item["location"] = 1
        out.append(item)
    return [out]


async def stats_user(conn: Any, mobile: str = "") -> dict[str, Any]:
    """GET /stats/user, /stats/case and /user/log?mobile=: the track_published logs of the mobile's newest `user`
    participant; ``{"message": "invalid user"}`` when there is none."""
    rows = await query_rows(
        conn, "SELECT identity FROM room_user WHERE userName = %s AND userType = 'user' ORDER BY id DESC LIMIT 1",
        (mobile,),
    )  # fmt: skip
    if not rows:
        return {"message": "invalid user"}
    identity = rows[0]["identity"]
    logs = []
    for log in await _track_logs(conn):
        body = log["body"]
        if (body.get("participant") or {}).get("identity") == identity:
            logs.append({"EVENT": body.get("event"), "identity": identity,
                         "roomName": (body.get("room") or {}).get("name"), "data": log["raw"]})  # fmt: skip
    return {"track_logs": logs}


# ---- the suite's answers through the edge, compared with the original's ------------------------------------------
# Shared by the migration's edge test and the cutover test: each asks the suite's edge and compares with the
# functions above over the source the migration carried.
BANGKOK = ZoneInfo("Asia/Bangkok")
TOKEN_PARTS = ("identity", "token", "conference", "color")  # random per request in the original too


def bangkok_now() -> datetime:
    """The original's clock: local Bangkok time, naive, as its queries compared dates."""
    return datetime.now(BANGKOK).replace(tzinfo=None)


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected`` (JSON values), one line per leaf; empty when equal."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual), key=str):
            if key not in actual:
                out.append(f"{path}.{key}: missing (expected {expected[key]!r})")
            elif key not in expected:
                out.append(f"{path}.{key}: unexpected {actual[key]!r}")
            else:
                out += differences(expected[key], actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(actual)} items, expected {len(expected)}"]
        return [line for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for line in differences(e, a, f"{path}[{i}]")]  # fmt: skip
    if expected != actual and not (_number(expected) and _number(actual) and float(expected) == float(actual)):
        return [f"{path}: {actual!r}, expected {expected!r}"]
    return []


def same(expected: Any, actual: Any, label: Any = "") -> None:
    """Assert ``actual`` equals ``expected``, naming every differing field."""
    lines = differences(expected, actual)
    assert not lines, f"{label}: " + "; ".join(lines[:12]) + (f" (+{len(lines) - 12} more)" if len(lines) > 12 else "")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


async def edge_get(edge: httpx.AsyncClient, path: str, **params: Any) -> httpx.Response:
    return await edge.get(path, params={k: v for k, v in params.items() if v is not None})


def check_token(data: dict[str, Any], expected: dict[str, Any], key: str, secret: str) -> None:
    """getdetail's token: signed with the room's LiveKit node's key (else the suite's ``key``/``secret``), for the
    identity, room and name the original would have put in it."""
    key, secret = (expected["node"]["key"], expected["node"]["secret"]) if expected["node"] else (key, secret)
    claims = jwt.decode(data["token"], secret, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["iss"] == key
    assert claims["sub"] == data["identity"] and data["identity"]
    assert claims["video"]["room"] == expected["room"]
    assert claims["video"]["roomJoin"] is expected["roomJoin"]
    assert claims["exp"] > datetime.now().timestamp()
    metadata = json.loads(claims["metadata"])
    want = {k: v for k, v in expected["metadata"].items() if v is not None}
    assert {k: metadata.get(k) for k in want} == want, metadata
    if expected["name"] is not None:
        assert claims["name"] == expected["name"] == data["userName"]
    else:
        assert data["userName"] and claims["name"] == data["userName"]  # a generated name, as the original made
    assert data["color"], data


async def compare_detail(edge: httpx.AsyncClient, conn: Any, link_id: str, key: str, secret: str) -> dict[str, Any]:
    """GET /link/getdetail of ``link_id`` through the edge equals the original's answer from ``conn`` (the random
    token fields checked for what they must hold); returns the suite's answer."""
    want = await link_detail(conn, link_id, bangkok_now())
    reply = await edge_get(edge, "/link/getdetail", linkId=link_id)
    assert reply.status_code == 200, reply.text
    got = reply.json()
    if want["status"] != "OK":
        same(want, got, (link_id, got))
        return got
    expected = dict(want["data"])
    token = expected.pop("expected_token", None)
    actual = dict(got.get("data") or {})
    for part in TOKEN_PARTS:
        actual.pop(part, None)
    assert actual.pop("listParticipants", None) == expected.pop("listParticipants"), got
    if token is None or token["name"] is None:
        actual.pop("userName", None)
        expected.pop("userName", None)
    if expected.get("recordDuration") == TIME_DEPENDENT:
        assert isinstance(actual.pop("recordDuration", None), int)
        expected.pop("recordDuration")
    assert got["status"] == "OK", got
    same(expected, actual, link_id)
    if token is not None:
        check_token(got["data"], token, key, secret)
    else:
        assert "token" not in got["data"], got  # a password link: no token before the password is given
    return got


async def compare_summary(edge: httpx.AsyncClient, source: Any, query: dict[str, str]) -> None:
    """GET /stats/summary with ``query`` equals the original's."""
    want = await stats_summary(source, **query)
    reply = await edge_get(edge, "/stats/summary", **query)
    assert reply.status_code == 200, reply.text
    got = reply.json()
    # rows tie on the sort column (a link fans out per case; links made in one second): the order of the sort
    # column must be the original's, the rows a set (of the whole result when one page holds it)
    column = query.get("sortBy", "dtmCreated")
    mine, theirs = [(r[column], r["id"]) for r in got["data"]], [(r[column], r["id"]) for r in want["data"]]
    first = next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a[0] != b[0]), 0)
    assert [m[0] for m in mine] == [t[0] for t in theirs], (
        f"sort order: count {got['count']} vs {want['count']}, rows {len(mine)} vs {len(theirs)}, from {first}:"
        f" {mine[first : first + 3]} vs {theirs[first : first + 3]}; ids only in the suite's"
        f" {sorted({m[1] for m in mine} - {t[1] for t in theirs})}, only in the original's"
        f" {sorted({t[1] for t in theirs} - {m[1] for m in mine})}"
    )
    key = lambda row: (row["id"], row["caseId"])  # noqa: E731
    if want["count"] <= want["limit"]:
        same({**want, "data": sorted(want["data"], key=key)}, {**got, "data": sorted(got["data"], key=key)}, query)
    else:
        same({**want, "data": len(want["data"])}, {**got, "data": len(got["data"])}, query)


async def compare_counts(route: str, span: tuple[str | None, str | None], edge: httpx.AsyncClient, source: Any) -> None:
    """GET /stats/device or /stats/type over ``span`` equals the original's."""
    compute = stats_device if route == "/stats/device" else stats_type
    # a start without an end: the original's BETWEEN start AND 'undefined' matched nothing; the suite takes it as
    # open-ended, as the spec asks (http-telemetry.md §8, defect 12)
    start, end = span[0], span[1] if span[1] is not None or span[0] is None else "9999-12-31 23:59:59"
    want = await compute(source, start, end)
    reply = await edge_get(edge, route, dateTimeStart=span[0], dateTimeEnd=span[1])
    assert reply.status_code == 200, reply.text
    order = lambda row: json.dumps(row, sort_keys=True)  # noqa: E731 - the original's group order was unspecified
    same(sorted(want, key=order), sorted(reply.json(), key=order), span)

"""Rules of rooms, participant tokens, LiveKit nodes, cases, chat and notifications, free of I/O (the original's
room.service / user.service / case.service logic; time is passed in)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from servicekit import tokens
from servicekit.clock import LOCAL_TZ, js_iso

log = logging.getLogger(__name__)

IDENTITY_ALPHABET = tokens.IDENTITY_ALPHABET
TOKEN_TTL = timedelta(hours=6)  # the LiveKit SDK default the original relied on
ROOM_NAME_MAX = 50  # room_conference.room is varchar(50)
LIVEKIT_EMPTY_TIMEOUT = 600  # CreateRoom options of the original
LIVEKIT_MAX_PARTICIPANTS = 100

# Columns of the original's getRoomDetail, in its order.
DETAIL_COLUMNS = (
    "id",
    "status",
    "room",
    "roomType",
    "recordId",
    "autoRecord",
    "recordType",
    "encodingOptionsPreset",
    "chatEnabled",
    "messageUnread",
    "userAgent",
    "dtmCreated",
    "dtmStartRecord",
    "dtmStopRecord",
    "webSocketURL",
)
DETAIL_DATE_COLUMNS = ("dtmCreated", "dtmStartRecord", "dtmStopRecord")


# ---- rooms -----------------------------------------------------------------------------------------------
def room_status_and_type(link_type: str | None) -> tuple[str, str]:
    """A location-only link makes a closed ``location`` room; everything else an open ``conference`` room."""
    if link_type == "location":
        return "close", "location"
    return "open", "conference"


def converts_location_room(room_type: str | None, link_type: str | None) -> bool:
    """A video/conference link for a ``location`` room turns it into an open conference room."""
    return room_type == "location" and link_type in ("video", "conference")


def room_lock_name(room: str) -> str:
    """Name of the MySQL user lock serialising creation of one room name (the column compares case- and
    trailing-space-insensitively, so the lock does too; hashed to stay under the 64-character limit)."""
    digest = hashlib.sha1(room.rstrip(" ").lower().encode("utf-8"), usedforsecurity=False).hexdigest()
    return f"conference.room.{digest}"


def fast_js_iso(value: datetime | None) -> str | None:
    """``servicekit.clock.js_iso`` for the naive local DATETIMEs rows carry, without its timezone conversion and
    strftime (GET /room/detail's hot path: a third of the handler's own time went there); same output."""
    if value is None or type(value) is not datetime or value.tzinfo is not None:
        return js_iso(value)
    offset = LOCAL_TZ.utcoffset(value)
    utc = value - offset if offset else value
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}."
        f"{utc.microsecond // 1000:03d}Z"
    )


def room_detail(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The original getRoomDetail object: its 15 columns (dates as JS ISO strings) and, when a recording has
    started, ``recordDuration`` = |dtmStartRecord - now| in milliseconds. ``now`` is timezone-aware."""
    detail = {column: row.get(column) for column in DETAIL_COLUMNS}
    for column in DETAIL_DATE_COLUMNS:
        detail[column] = fast_js_iso(detail[column])
    started = row.get("dtmStartRecord")
    if started is not None:
        aware = started.replace(tzinfo=LOCAL_TZ) if started.tzinfo is None else started
        detail["recordDuration"] = abs(int((aware - now).total_seconds() * 1000))
    return detail


def room_event_fields(room: str, row: dict[str, Any], now: datetime, uses_default_key: bool) -> dict[str, Any]:
    """What RoomChanged (and the snapshot's RoomState) says of a room row with its detail columns, nodeLivekitId,
    service and recordStatus. ``recordDuration`` is left out of the detail: readers compute it at read time."""
    detail = room_detail(row, now)
    detail.pop("recordDuration", None)
    return {
        "room": room, "roomType": row["roomType"] or "", "status": row["status"] or "", "detail": detail,
        "nodeLivekitId": row["nodeLivekitId"], "usesDefaultKey": uses_default_key, "service": row["service"],
        "recordStatus": row["recordStatus"],
    }  # fmt: skip


def picture_json(row: dict[str, Any], api_url: str) -> dict[str, Any]:
    """A GET /room/picture item: the original's CONCAT(API_URL, files.url) and createdAt as a JS ISO date."""
    return {
        "filename": row["filename"],
        "url": f"{api_url}{row['url']}",
        "width": row["width"],
        "height": row["height"],
        "createdAt": js_iso(row["createdAt"]),
    }


# ---- participants ----------------------------------------------------------------------------------------
# The participant rules live in servicekit.tokens: link mints the same tokens for /link/getdetail.
random_identity = tokens.random_identity
participant_identity = tokens.participant_identity
participant_user_name = tokens.participant_user_name
generated_user_name = tokens.generated_user_name


CASE_OF_ROOM_KEYS = (
    "service", "caseId", "operationNumber", "hn", "patientMobile", "userName", "mobileCreated", "dtmCreated", "status"
)  # fmt: skip


def case_of_room_json(row: dict[str, Any]) -> dict[str, Any]:
    """RPC_CASE_OF_ROOM's reply: the case columns with the original driver's JSON types (dtmCreated a UTC ISO
    string, as mysql2 gave a DATETIME to ``res.json``)."""
    found = {key: row[key] for key in CASE_OF_ROOM_KEYS}
    found["dtmCreated"] = js_iso(found["dtmCreated"])
    return found


def pick_color(colors: list[str]) -> str | None:
    return secrets.choice(colors) if colors else None


participant_metadata = tokens.participant_metadata


@dataclass(frozen=True)
class SigningKey:
    api_key: str
    api_secret: str


def participant_token(
    key: SigningKey,
    *,
    identity: str,
    user_name: str | None,
    metadata: str,
    room: str,
    room_join: bool,
    ttl: timedelta = TOKEN_TTL,
) -> str:
    """A LiveKit access token with exactly the original's grants (no admin, hidden or record grants)."""
    return tokens.participant_token(
        key.api_key,
        key.api_secret,
        identity=identity,
        user_name=user_name,
        metadata=metadata,
        room=room,
        room_join=room_join,
        ttl_seconds=int(ttl.total_seconds()),
    )


# ---- LiveKit nodes -------------------------------------------------------------------------------------------
# Nodes come from table ``node_livekit`` when it has rows (the room's remembered ``nodeLivekitId``, else the first
# healthy node, else the first node); otherwise the env default node (``LIVEKIT_HOST`` + key/secret).
# Server-to-server calls use a node's ``livekitLocal`` URL when set, else its ``livekitHost``.

# A node whose last successful health probe is older than this is not preferred for new rooms.
HEALTHY_WITHIN = timedelta(minutes=30)


@dataclass(frozen=True)
class Node:
    id: int | None  # None: the env default node
    name: str
    api_url: str  # "" when no server is configured (tokens only)
    key: SigningKey


def http_url(url: str) -> str:
    """RoomService speaks HTTP(S); accept the ws(s):// form operators often configure."""
    if url.startswith("wss://"):
        return "https://" + url[6:]
    if url.startswith("ws://"):
        return "http://" + url[5:]
    return url


def node_from_row(row: dict[str, Any], default_key: SigningKey) -> Node:
    url = (row.get("livekitLocal") or row.get("livekitHost") or "").strip()
    key = SigningKey(
        row.get("livekitApiKey") or default_key.api_key, row.get("livekitApiSecret") or default_key.api_secret
    )
    return Node(id=row["id"], name=row.get("nodeName") or f"node-{row['id']}", api_url=http_url(url), key=key)


def choose_node(rows: list[dict[str, Any]], remembered_id: int | None, default: Node, now: datetime) -> Node:
    """Pure choice among ``node_livekit`` rows (see above); ``now`` is local time, as lastHealthCheck."""
    if not rows:
        return default
    default_key = default.key
    if remembered_id is not None:
        for row in rows:
            if row["id"] == remembered_id:
                return node_from_row(row, default_key)
    for row in rows:
        checked = row.get("lastHealthCheck")
        if checked is not None and now - checked <= HEALTHY_WITHIN:
            return node_from_row(row, default_key)
    return node_from_row(rows[0], default_key)


# ---- LiveKit objects as JSON -----------------------------------------------------------------------------
_INT64_TYPES = {3, 4, 6, 16, 18}  # FieldDescriptor TYPE_INT64, TYPE_UINT64, TYPE_FIXED64, TYPE_SFIXED64, TYPE_SINT64


def proto_to_json(message: Any) -> dict[str, Any]:
    """A LiveKit protobuf object as the plain JSON object the original's SDK (1.x) returned: camelCase keys,
    every field present, enums as numbers, 64-bit integers as numbers (not the protobuf-JSON strings)."""
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            out[field.json_name] = {
                k: proto_to_json(v) if value_field.message_type is not None else v for k, v in value.items()
            }
        elif field.message_type is not None:
            if _is_repeated(field):
                out[field.json_name] = [proto_to_json(item) for item in value]
            elif message.HasField(field.name):
                out[field.json_name] = proto_to_json(value)
            else:
                out[field.json_name] = None
        elif _is_repeated(field):
            out[field.json_name] = [_scalar(field, item) for item in value]
        else:
            out[field.json_name] = _scalar(field, value)
    return out


def _is_repeated(field: Any) -> bool:
    is_repeated = getattr(field, "is_repeated", None)
    if is_repeated is not None:
        return bool(is_repeated)
    return field.label == field.LABEL_REPEATED


def _scalar(field: Any, value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if field.type in _INT64_TYPES:
        return int(value)
    return value


# ---- cases -----------------------------------------------------------------------------------------------
CASE_STATUSES = ("On Case", "Process", "Closed")


def parse_id(value: object) -> int | None:
    """A non-negative id given as a number or a string of ASCII digits that fits an INT column; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= 2_147_483_647 else None
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= 2_147_483_647:
            return int(text)
    return None


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` matched literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def js_text(value: object) -> str:
    """A value as a JavaScript template string rendered it (the original's usage-log texts): absent
    ``undefined``, null ``null``, booleans lower-case."""
    if value is msgspec.UNSET:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def created_log(case_id: int, user_name: object, organization: object) -> str:
    """usage_status_log.data text of POST /case/create (the original's wording)."""
    return f"Update Case id:{case_id} userName:{js_text(user_name)} organization:{js_text(organization)}"


def updated_log(body: dict[str, object]) -> str:
    """usage_status_log.data text of PUT /case/update; ``body`` maps field -> value (UNSET when absent)."""

    def field(name: str) -> str:
        return js_text(body.get(name, msgspec.UNSET))

    return (
        f"Update Case operationNumber:{field('operationNumber')} id:{field('caseId')} status:{field('status')}"
        f" hn:{field('hn')} patientMobile{field('patientMobile')} userName:{field('userName')}"
    )


@dataclass
class HistoryQuery:
    service: int | None
    mode: str  # "list" | "searchAll" | "searchAdvanced"
    page: int
    limit: int
    text: str = ""
    statuses: tuple[str, ...] | None = CASE_STATUSES  # None = "none of the three"
    date_start: datetime | None = None
    date_end: datetime | None = None
    likes: dict[str, str] = dataclasses.field(default_factory=dict)  # column -> text


# ---- chat and notifications --------------------------------------------------------------------------------
def decode_files(rows: list[dict[str, Any]]) -> None:
    """The original parsed each row's ``files`` JSON text in place; ``""`` and NULL stay as they are, and a
    parse error stops parsing of the remaining rows (which keep their text)."""
    for row in rows:
        files = row.get("files")
        if files is None or files == "":
            continue
        try:
            row["files"] = json.loads(files)
        except ValueError:
            log.warning("chat files not JSON; later rows left as text", extra={"id": row.get("id")})
            return


def reply_text(value: str | None) -> str:
    # The original interpolated missing reply fields as the literal 'null' (§4.1); frontends expect it.
    return "null" if value is None else value


def notification_json(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["dtmRead"] = js_iso(row.get("dtmRead"))
    out["dtmCreated"] = js_iso(row.get("dtmCreated"))
    return out

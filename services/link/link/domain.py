"""Link rules, free of I/O: IDs, room names, tenant domains, URLs, passwords, positions, history paging."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import string
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from servicekit import tokens
from servicekit.clock import parse_local

# The original's sample CUSTOM_CHARSET: Latin letters without N/n.
DEFAULT_CHARSET = "".join(c for c in string.ascii_letters if c not in "Nn")
LINK_ID_LENGTH = 6
DEFAULT_SERVICE = 999
MAX_SERVICE_ID = 4_294_967_295  # services.id is INT UNSIGNED
HISTORY_PAGE_SIZE = 5

# Link defaults of the original's createSMS.
DEFAULT_RECORD_TYPE = "RoomCompositeVideoAudio"
DEFAULT_ENCODING_PRESET = "H264_720P_30"

# Usage log statuses.
STATUS_CREATE_LINK = "CreateLink"
STATUS_GET_LINK_DETAIL = "GetLinkDetail"
STATUS_UPDATE_LATLNG = "UpdateLatLngLinkDetail"
ACTIVE_LOG_STATUSES = (
    "CreateLink",
    "Disconnect",
    "Connection",
    "GetLinkDetail",
    "UpdateLatLngLinkDetail",
    "MultiLatLng",
)

# oneTimeLink values.
ONE_TIME_OFF, ONE_TIME_UNUSED, ONE_TIME_USED = 0, 1, 2


# ---- IDs and names ---------------------------------------------------------------------------------------
def random_id(charset: str, length: int = LINK_ID_LENGTH) -> str:
    alphabet = charset or DEFAULT_CHARSET
    return "".join(secrets.choice(alphabet) for _ in range(length))


_NOT_ROOM_CHAR = re.compile(r"[^a-zA-Z ]")


def sanitize_room(raw: str) -> str:
    """Every character that is not a Latin letter or a space is removed (as the original did)."""
    return _NOT_ROOM_CHAR.sub("", raw)


def service_id(raw: Any) -> int:
    """The tenant id of a request: the leading digits of the value (like parseInt), else the default 999."""
    if isinstance(raw, bool) or raw is None:
        return DEFAULT_SERVICE
    if isinstance(raw, int):
        value = raw
    else:
        match = re.match(r"\s*(\d{1,10})", str(raw))
        if not match:
            return DEFAULT_SERVICE
        value = int(match.group(1))
    return value if 0 <= value <= MAX_SERVICE_ID else DEFAULT_SERVICE


# ---- tenant domains, URLs and the SMS seam ---------------------------------------------------------------
@dataclass(frozen=True)
class LinkTarget:
    domain: str | None
    sms_prefix: str | None


def _first(domains: str | None) -> str | None:
    if not domains:
        return None
    first = domains.split(",")[0].strip()
    return first or None


def link_target(tenant: dict[str, Any] | None, link_type: str, fallback_domain: str = "") -> LinkTarget:
    """Domain and SMS prefix of a link type for a tenant row of ``services``.

    The original knew only video, location and hls (a ``conference`` link crashed it); conference links open
    the video page, so they use the video domain. Other types use MY_WEBUI_VIDEO_DOMAIN when set.
    """
    tenant = tenant or {}
    if link_type in ("video", "conference"):
        return LinkTarget(_first(tenant.get("domainsVideo")), tenant.get("prefixTextVideoSMS"))
    if link_type == "location":
        return LinkTarget(_first(tenant.get("domainsLocation")), tenant.get("prefixTextLocationSMS"))
    if link_type == "hls":
        return LinkTarget(_first(tenant.get("domainsVideo")), tenant.get("prefixHLSRecordVideoSMS"))
    return LinkTarget(_first(fallback_domain) or _first(tenant.get("domainsVideo")), None)


def link_url(domain: str, link_type: str, link_id: str) -> str:
    if link_type in ("video", "conference"):
        return f"{domain}/video/{link_id}"
    if link_type == "location":
        return f"{domain}/location/{link_id}"
    return f"{domain}/{link_type}/{link_id}"


@dataclass(frozen=True)
class SmsMessage:
    sender: str
    mobile: str
    text: str


def sms_for_link(
    *, mobile: str, sms: int, link_type: str, prefix: str | None, url: str, sender: str | None
) -> SmsMessage | None:
    """The SMS a new link should send (the original: video and location links, when a mobile is given and the
    request's ``sms`` is 1). link.sms records and sends it (SMS_ENABLE, gateway, retries); this only decides."""
    if not mobile or sms != 1 or link_type not in ("video", "location"):
        return None
    return SmsMessage(sender=sender or "", mobile=mobile, text=f"{prefix or ''}\n{url}")


# ---- passwords -------------------------------------------------------------------------------------------
_hasher = PasswordHasher()
_MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def is_legacy_md5(stored: str | None) -> bool:
    return bool(stored and _MD5_HEX.match(stored))


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    rehash: bool = False  # store a fresh argon2 hash (legacy MD5 row, or argon2 parameters changed)


def check_password(stored: str | None, given: str) -> PasswordCheck:
    if not stored:
        return PasswordCheck(False)
    if is_legacy_md5(stored):
        digest = hashlib.md5(given.encode("utf-8")).hexdigest()  # noqa: S324 - reading the original's rows
        return PasswordCheck(hmac.compare_digest(digest, stored.lower()), rehash=True)
    try:
        _hasher.verify(stored, given)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return PasswordCheck(False)
    return PasswordCheck(True, rehash=_hasher.check_needs_rehash(stored))


# ---- dates and the user agent ---------------------------------------------------------------------------
def is_expired(expires: datetime | None, now: datetime) -> bool:
    return expires is not None and now > expires


_OS_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"Windows Phone", "Windows Phone"),
    (r"Windows", "Windows"),
    (r"iPhone|iPad|iPod", "iOS"),
    (r"Android", "Android"),
    (r"CrOS", "Chrome OS"),
    (r"Mac OS X|Macintosh", "Mac OS"),
    (r"Ubuntu", "Ubuntu"),
    (r"Fedora", "Fedora"),
    (r"Linux", "Linux"),
)


@functools.lru_cache(maxsize=1024)  # getdetail asks on every request; clients send the same few agents
def os_name(user_agent: str) -> str:
    """Operating system name of a user agent, in the names UAParser gave the original ("" when unknown)."""
    for pattern, name in _OS_PATTERNS:
        if re.search(pattern, user_agent):
            return name
    return ""


# ---- positions and history -------------------------------------------------------------------------------
def _decimal_text(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def position_users(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The room's user links, newest first (rows come ordered by id DESC), one per userName; missing
    coordinates become 0; share links only when they have a position."""
    seen: set[Any] = set()
    result: list[dict[str, Any]] = []
    for row in rows:
        if row["userName"] in seen:
            continue
        seen.add(row["userName"])
        has_position = row["latitude"] is not None and row["longitude"] is not None
        if row["share"] == 1 and not has_position:
            continue
        result.append(
            {
                "id": row["id"],
                "mobile": row["mobile"],
                "share": row["share"],
                "userName": row["userName"],
                "accuracy": row["accuracy"],
                "latitude": _decimal_text(row["latitude"]) if row["latitude"] is not None else 0,
                "longitude": _decimal_text(row["longitude"]) if row["longitude"] is not None else 0,
                "errorLocation": row["errorLocation"],
            }
        )
    return result


def history_offset(page: str | None) -> int:
    """The original: OFFSET 5*page-5 only when page > 1."""
    try:
        number = int(str(page).strip()) if page is not None else 1
    except ValueError:
        number = 1
    number = min(max(number, 1), 1_000_000)
    return HISTORY_PAGE_SIZE * number - HISTORY_PAGE_SIZE if number > 1 else 0


def number_text(value: float | None) -> str:
    """A coordinate-ish number as text (``accuracy`` is a VARCHAR column)."""
    if value is None:
        return "0"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# ---- SMS -------------------------------------------------------------------------------------------------
_MOBILE = re.compile(r"^\+?[0-9]{6,15}$")
SMS_TEXT_MAX = 1000  # characters; longer custom messages are refused


def valid_mobile(mobile: str) -> bool:
    """A phone number the gateway can take: digits only (6-15), optionally a leading ``+``."""
    return bool(_MOBILE.match(mobile))


def tracking_sms_text(link_type: str, car_registration: str, url: str) -> str:
    """The SMS of a car-tracking link (the original's two Thai texts)."""
    if link_type == "userTracking":
        return f'ติดตามรถเจ้าหน้าที่เลขทะเบียน "{car_registration}\n{url}'
    return f"ลิ้งติดตามพิกัด\n{url}"


# ---- tenants and the domain round robin -------------------------------------------------------------------
_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")


def valid_domains(value: str) -> bool:
    """Comma-separated http(s) base URLs (no query, no spaces inside), at least one."""
    parts = [part.strip() for part in value.split(",")]
    return bool(parts) and all(_URL.match(part) for part in parts)


def domain_pool(tenant: dict[str, Any] | None, link_type: str) -> list[str]:
    """The tenant's domains for a link type (video and hls share the video domains)."""
    tenant = tenant or {}
    column = "domainsLocation" if link_type == "location" else "domainsVideo"
    return [part.strip() for part in (tenant.get(column) or "").split(",") if part.strip()]


def next_domain(pool: list[str], previous_index: int | None) -> tuple[int, str]:
    """The original's round robin: the domain after the one the newest other link got (first when none)."""
    if previous_index is None or previous_index >= len(pool) - 1 or previous_index < 0:
        return 0, pool[0]
    return previous_index + 1, pool[previous_index + 1]


# ---- IDEMS links (POST /link/idems) ----------------------------------------------------------------------
IDEMS_SERVICE = 1  # the original created every IDEMS link for tenant 1
IDEMS_LINK_TYPES = ("video", "location")
IDEMS_TOKEN_TTL_SECONDS = 24 * 3600


def websocket_base(api_url: str) -> str:
    """API_URL as a WebSocket origin (http -> ws, https -> wss; no scheme counts as http), as the original
    built it; ``ws://localhost:5500`` when API_URL is not set."""
    if not api_url:
        return "ws://localhost:5500"
    scheme, sep, rest = api_url.partition("://")
    if not sep:
        scheme, rest = "http", api_url
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest.rstrip('/')}"


def data_socket_token(api_key: str, api_secret: str, name: str, now: int | None = None) -> str:
    """The token of a /data/<linkID> socket: a LiveKit access token (random identity, ``name``, only grant
    ``roomJoin: false``, valid one day), as the original's createToken({name, days: 1}) made it."""
    issued = int(time.time()) if now is None else now
    claims = {
        "name": name,
        "video": {"roomJoin": False},
        "sub": tokens.random_identity(),
        "iss": api_key,
        "nbf": issued,
        "exp": issued + IDEMS_TOKEN_TTL_SECONDS,
    }
    return jwt.encode(claims, api_secret, algorithm="HS256")


def sms_flag(raw: Any) -> int:
    """The request's ``sms`` as parseInt read it (missing: 1; not a number: no SMS)."""
    if raw is None:
        return 1
    if isinstance(raw, bool):
        return int(raw)
    match = re.match(r"\s*(-?\d+)", str(raw))
    return int(match.group(1)) if match else 0


# ---- password brute force ----------------------------------------------------------------------------------
# Every password check of a link reserves an attempt first (so parallel guesses count too); a success clears
# them. Past MAX_PASSWORD_ATTEMPTS in PASSWORD_WINDOW_SECONDS the link is locked until the window ends, even for
# the right password.
MAX_PASSWORD_ATTEMPTS = 5
PASSWORD_WINDOW_SECONDS = 15 * 60
LOCKED_MESSAGE = "too many failed attempts: link locked, try again later"


def password_attempts_key(link_id: str) -> str:
    return f"link:password-attempts:{link_id}"


def password_locked(attempts: int) -> bool:
    """``attempts`` counts this one: the first MAX_PASSWORD_ATTEMPTS of a window are checked, the rest refused."""
    return attempts > MAX_PASSWORD_ATTEMPTS


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

"""Link rules, free of I/O: IDs, room names, tenant domains and URLs, expiry, the user agent, IDEMS links."""

from __future__ import annotations

import functools
import re
import secrets
import string
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt

from servicekit import tokens

# The original's sample CUSTOM_CHARSET: Latin letters without N/n.
DEFAULT_CHARSET = "".join(c for c in string.ascii_letters if c not in "Nn")
LINK_ID_LENGTH = 6
DEFAULT_SERVICE = 999
MAX_SERVICE_ID = 4_294_967_295  # services.id is INT UNSIGNED

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


# ---- tenant domains and URLs ----------------------------------------------------------------------------
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
    value = int(match.group(1)) if match else 0
    if not SMS_FLAG_MIN <= value <= SMS_FLAG_MAX:  # the original's INSERT failed on it: refused here instead
        raise ValueError(f"sms must be a number from {SMS_FLAG_MIN} to {SMS_FLAG_MAX}")
    return value


SMS_FLAG_MIN, SMS_FLAG_MAX = -(2**31), 2**31 - 1  # link_connect.sms is an INT

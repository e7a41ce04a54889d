"""Link rules, free of I/O: IDs, room names, tenant domains, URLs, passwords, positions, history paging."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

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

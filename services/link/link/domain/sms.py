"""The SMS rules, free of I/O: a message's statuses, which SMS a new link sends, mobile numbers, tracking texts."""

from __future__ import annotations

import re
from dataclasses import dataclass

# sms_message.status: waiting for the gateway, accepted by it, given up, or recorded with sending switched off.
QUEUED, SENT, FAILED, DISABLED = "queued", "sent", "failed", "disabled"


@dataclass(frozen=True)
class SmsMessage:
    sender: str
    mobile: str
    text: str


def sms_for_link(
    *, mobile: str, sms: int, link_type: str, prefix: str | None, url: str, sender: str | None
) -> SmsMessage | None:
    """The SMS a new link should send (the original: video and location links, when a mobile is given and the
    request's ``sms`` is 1). link.events.sms records and sends it (SMS_ENABLE, gateway, retries); this only
    decides."""
    if not mobile or sms != 1 or link_type not in ("video", "location"):
        return None
    return SmsMessage(sender=sender or "", mobile=mobile, text=f"{prefix or ''}\n{url}")


# ---- numbers and texts ---------------------------------------------------------------------------------
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

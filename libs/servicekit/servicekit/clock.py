"""Time as the original wrote and read it.

The original wrote DATETIME columns as local-time strings (the server's zone, Asia/Bangkok in production) and
its MySQL driver read them back as JS Dates, which JSON-serialise as UTC ISO strings with milliseconds.
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo(os.environ.get("APP_TIMEZONE", "Asia/Bangkok"))


def now_local() -> datetime:
    """Naive local wall-clock time, as stored in DATETIME columns."""
    return datetime.now(LOCAL_TZ).replace(tzinfo=None, microsecond=0)


def js_iso(value: datetime | date | None) -> str | None:
    """A naive local DATETIME rendered like the original's ``res.json`` of a JS Date."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return _js_iso(value)


@functools.lru_cache(maxsize=8192)  # hot rows show the same few timestamps (a link's created/expired) again and again
def _js_iso(value: datetime) -> str:
    aware = value.replace(tzinfo=LOCAL_TZ) if value.tzinfo is None else value
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{aware.microsecond // 1000:03d}Z"


def parse_local(text: str) -> datetime | None:
    """Parse the original's ``YYYY-MM-DD HH:mm:ss`` (or ISO) input; None when it is not a date."""
    text = text.strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(LOCAL_TZ).replace(tzinfo=None)
    return parsed.replace(microsecond=0)


def parse_lifetime(raw: str, default_days: float = 1) -> timedelta:
    """``ROOM_DAY_DEFAULT_TIMEOUT``: a number of days (``1``) or hours written ``24H``."""
    text = (raw or "").strip().upper()
    try:
        if text.endswith("H"):
            return timedelta(hours=float(text[:-1]))
        if text.endswith("D"):
            return timedelta(days=float(text[:-1]))
        return timedelta(days=float(text)) if text else timedelta(days=default_days)
    except ValueError:
        return timedelta(days=default_days)

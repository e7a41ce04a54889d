"""Rules of the radio read-through proxy (no I/O): which path ids are forwarded, what of the radio API's answers
is cached, and how."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from servicekit.clock import parse_local

# Path segments forwarded to the radio API (the original inserted them raw): letters, digits, - _ . only.
RADIO_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
INT_MAX = 2_147_483_647


def valid_radio_key(value: str) -> bool:
    return bool(RADIO_KEY.match(value)) and value not in {".", ".."}


def is_success(body: Any) -> bool:
    """The list-of-devices check of the original: ``status === "1"`` and ``message === "Success"``."""
    return isinstance(body, dict) and body.get("status") == "1" and body.get("message") == "Success"


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value if -INT_MAX - 1 <= value <= INT_MAX else None
    if isinstance(value, float) and value.is_integer():
        return _int(int(value))
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,10}", value.strip()):
        return _int(int(value.strip()))
    return None


def _float(value: Any, limit: float = 1e15) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and abs(number) <= limit else None


def _text(value: Any, size: int) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)[:size]


def _when(value: Any) -> datetime | None:
    return parse_local(value) if isinstance(value, str) else None


def device_row(item: Any) -> tuple[Any, ...] | None:
    """``radio_devices`` values (id, radioNo, radioName, status, serialNo) of one API item; None: not cacheable."""
    if not isinstance(item, dict):
        return None
    ident = _int(item.get("id"))
    if ident is None or ident <= 0:
        return None
    return (
        ident,
        _text(item.get("radioNo"), 50),
        _text(item.get("radioName"), 50),
        _text(item.get("status"), 20),
        _text(item.get("serialNo"), 50),
    )


def location_row(item: Any) -> tuple[Any, ...] | None:
    """``radio_locations`` values (logId, id, radioNo, radioName, accuracy, gpsDateTime, latitude, longitude,
    speed, emergency) of one API item; None: not cacheable (no usable id)."""
    if not isinstance(item, dict):
        return None
    ident = _int(item.get("id"))
    if ident is None or ident <= 0:
        return None
    return (
        _int(item.get("logId")),
        ident,
        _text(item.get("radioNo"), 50),
        _text(item.get("radioName"), 100),
        _float(item.get("accuracy")),
        _when(item.get("gpsDateTime")),
        _float(item.get("latitude"), 90),
        _float(item.get("longitude"), 180),
        _float(item.get("speed")),
        _int(item.get("emergency")),
    )


def rows_of(result: Any, convert: Any) -> list[tuple[Any, ...]]:
    """Rows to cache from ``resultData`` (a list of items or one item); unusable items are skipped."""
    items = result if isinstance(result, list) else [result]
    rows = [convert(item) for item in items]
    return [row for row in rows if row is not None]

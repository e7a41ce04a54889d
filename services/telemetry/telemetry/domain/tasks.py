"""Rules of the car tasks (no I/O): GET /car/list, POST/GET/PUT /car/task and the /mobile contract (task uids,
positions and their bounds, where the crew drives, the replies' shapes)."""

from __future__ import annotations

import math
import re
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from servicekit.clock import js_iso

# ---- car tasks ---------------------------------------------------------------------------------------------
CAR_LIST_DEFAULT_LIMIT = 100
CAR_LIST_MAX_LIMIT = 1000
CAR_TRACK_COLUMNS = (
    "id", "uid", "status", "mobile", "userName", "room", "latitude", "longitude", "accuracy", "speed", "heading",
    "altitude", "altitudeAccuracy", "dtmUpdated", "dtmCreated", "dtmStarted", "dtmArrived", "dtmCanceled",
    "dtmCompleted",
)  # fmt: skip


def car_list_limit(raw: str | None) -> int | None:
    """``limit`` of GET /car/list: default 100, a positive integer up to 1000; None when invalid."""
    if raw is None or raw.strip() == "":
        return CAR_LIST_DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,6}", raw.strip()):  # ASCII digits: int() would also take other scripts' digits
        return None
    value = int(raw)
    return min(value, CAR_LIST_MAX_LIMIT) if value > 0 else None


def car_row_json(row: dict[str, Any]) -> dict[str, Any]:
    """A car_track row as the original's driver answered it: DECIMAL as strings, DATETIME as UTC ISO strings."""
    out: dict[str, Any] = {}
    for column in CAR_TRACK_COLUMNS:
        value = row.get(column)
        if isinstance(value, datetime):
            value = js_iso(value)
        elif isinstance(value, Decimal):
            value = str(value)
        out[column] = value
    return out


# ---- car tasks: POST/GET/PUT /car/task and the /mobile contract (pure rules) ------------------------------
TASK_STATUSES = ("arrive", "cancel", "complete", "start")
# The timestamp column each status sets (the original's mapping).
STATUS_COLUMNS = {"start": "dtmStarted", "arrive": "dtmArrived", "cancel": "dtmCanceled", "complete": "dtmCompleted"}
TASK_UID_LENGTH = 6  # the original's randomstring length (car_track.uid is varchar(10))
DEFAULT_CHARSET = "".join(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in "Nn")
_TASK_UID = re.compile(r"^[A-Za-z0-9]{1,10}$")
# Rooms are made of Latin letters (link strips the rest) or conference's names: letters, digits, space, - and _.
_ROOM = re.compile(r"^[A-Za-z0-9 _\-]{1,50}$")
_MOBILE = re.compile(r"^\+?[0-9]{6,15}$")
_USER_NAME_MAX = 100

# Bounds of a car position: beyond them the input is garbage (or an attack), never stored.
MAX_FUTURE_MS = 5 * 60 * 1000  # a device clock this far ahead of ours is wrong
_MEASURE_BOUNDS = {
    "accuracy": (0.0, 1e9),
    "speed": (-1e5, 1e5),  # int column
    "heading": (-360.0, 360.0),  # int column
    "altitude": (-1e5, 1e6),
    "altitudeAccuracy": (0.0, 1e9),
}
# Positions accepted per device (task uid, or room + userName) per window; more is a flood and is refused.
POSITION_RATE_LIMIT = 30
POSITION_RATE_WINDOW_SECONDS = 10


def valid_task_uid(value: str) -> bool:
    return bool(_TASK_UID.match(value))


def valid_room(value: str) -> bool:
    return bool(_ROOM.match(value)) and bool(value.strip())


def valid_mobile(value: str) -> bool:
    return bool(_MOBILE.match(value))


def valid_user_name(value: str) -> bool:
    return 0 < len(value.strip()) and len(value) <= _USER_NAME_MAX and value.isprintable()


def task_uid_charset(configured: str) -> str:
    """``CUSTOM_CHARSET`` without characters a uid cannot hold (the original used it raw, ``undefined`` if unset)."""
    usable = "".join(dict.fromkeys(c for c in configured if c.isascii() and c.isalnum()))
    return usable if len(usable) >= 10 else DEFAULT_CHARSET


def web_socket_url(api_url: str, uid: str) -> str:
    """The original: API_URL with its leading ``http`` turned into ``ws``, plus ``/mobile?task=<uid>``."""
    base = api_url.rstrip("/")
    if base.startswith("http"):
        base = "ws" + base[4:]
    return f"{base}/mobile?task={uid}"


class PositionRejected(ValueError):
    """A car position that is not stored (the message says why)."""


def car_position(values: dict[str, Any], timestamp_ms: int | None, now_ms: int) -> dict[str, Any]:
    """The car_track position columns of a crew-app / carTracking position, or :class:`PositionRejected`.

    Latitude and longitude are required and range-checked; the other measures are range-checked and, as in the
    original, stored as 0 when absent or zero; speed and heading are int columns (rounded)."""
    if timestamp_ms is not None and timestamp_ms > now_ms + MAX_FUTURE_MS:
        raise PositionRejected("timestamp is in the future")
    latitude, longitude = values.get("latitude"), values.get("longitude")
    if latitude is None or longitude is None:
        raise PositionRejected("latitude and longitude are required")
    for name, number, bound in (("latitude", latitude, 90.0), ("longitude", longitude, 180.0)):
        if not math.isfinite(number) or abs(number) > bound:
            raise PositionRejected(f"{name} out of range")
    position: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    for name, (low, high) in _MEASURE_BOUNDS.items():
        number = values.get(name)
        if number is None:
            number = 0.0
        if not math.isfinite(number) or not low <= number <= high:
            raise PositionRejected(f"{name} out of range")
        position[name] = round(number) if name in ("speed", "heading") else number
    return position


def _decimal_text(value: Any) -> Any:
    """A coordinate in the original's JSON type: DECIMAL(12,9) as a string; None stays None."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.9f}"
    return value


def _pair(latitude: Any, longitude: Any) -> dict[str, Any]:
    return {"latitude": _decimal_text(latitude), "longitude": _decimal_text(longitude)}


ZERO = {"latitude": 0, "longitude": 0}


def task_destination(status: str, link: dict[str, Any] | None, service_location: dict[str, Any] | None) -> dict:
    """Where the crew drives (the original's rule, realtime.md §7 / http-telemetry.md §1.2).

    ``link`` is the room's newest ``user`` link (latitude, longitude, patientLatitude, patientLongitude) or None;
    ``service_location`` the tenant's {latitude, longitude} or None. Unknown -> 0/0 (the original crashed)."""
    if status in ("cancel", "complete"):
        return dict(ZERO)
    if status == "arrive":
        if service_location is None:
            return dict(ZERO)
        return _pair(service_location.get("latitude"), service_location.get("longitude"))
    if link is None:
        return dict(ZERO)
    pick = _pair(link.get("patientLatitude"), link.get("patientLongitude"))
    if status == "start":
        return pick
    if link.get("latitude") is None or link.get("longitude") is None:
        return pick
    if link.get("patientLatitude") is None or link.get("patientLongitude") is None:
        return _pair(link.get("latitude"), link.get("longitude"))
    return dict(ZERO)


def task_detail(row: dict[str, Any], destination: dict[str, Any]) -> dict[str, Any]:
    """The /mobile ``connection`` payload (and the task part of GET /car/task) of a car_track row."""
    return {
        "task": row["uid"],
        "status": row["status"],
        "dtmCreated": js_iso(row.get("dtmCreated")),
        "dtmUpdated": js_iso(row.get("dtmUpdated")),
        "room": row["room"],
        "current": _pair(row.get("latitude"), row.get("longitude")),
        "destination": destination,
    }


CASE_FIELDS = (
    "service", "caseId", "operationNumber", "hn", "patientMobile", "userName", "mobileCreated", "dtmCreated", "status",
)  # fmt: skip


def service_object(tenant: dict[str, Any] | None, service_id: int | None) -> dict[str, Any]:
    """GET /car/task's ``service``: {id, name, latitude, longitude}; nulls when the tenant is unknown."""
    if tenant is None:
        return {"id": None, "name": None, "latitude": None, "longitude": None}
    return {
        "id": tenant.get("id", service_id),
        "name": tenant.get("name"),
        "latitude": _decimal_text(tenant.get("latitude")),
        "longitude": _decimal_text(tenant.get("longitude")),
    }


def task_reply(case: dict[str, Any] | None, detail: dict[str, Any], web_socket: str, service: dict) -> dict:
    """GET /car/task ``data``: the original's shallow merge, later keys winning: case fields, task detail with
    ``webSocket``, then ``service`` (so the first key is ``service``, replacing the case's numeric one)."""
    merged: dict[str, Any] = {}
    if case:
        merged.update({key: case.get(key) for key in CASE_FIELDS if key in case})
    merged.update(detail)
    merged["webSocket"] = web_socket
    merged["service"] = service
    # Key order as the original's object: a key keeps the place of its first assignment.
    order = ["service", *[k for k in merged if k != "service"]] if "service" in (case or {}) else list(merged)
    return {key: merged[key] for key in order}


def random_uid(charset: str) -> str:
    return "".join(secrets.choice(charset) for _ in range(TASK_UID_LENGTH))


def patient_destination(link: dict[str, Any]) -> dict[str, Any]:
    """The room namespace ``destination`` of a carTracking ``getDestination`` (DECIMAL columns as strings)."""
    return {
        "userName": link.get("userName"),
        "mobile": link.get("mobile"),
        "latitude": _decimal_text(link.get("latitude")),
        "longitude": _decimal_text(link.get("longitude")),
        "patientLatitude": _decimal_text(link.get("patientLatitude")),
        "patientLongitude": _decimal_text(link.get("patientLongitude")),
    }

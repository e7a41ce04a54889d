"""Telemetry's contract: the events telemetry publishes (``telemetry.*``) and the requests it serves
(``rpc.telemetry.*``)."""

from __future__ import annotations

from typing import Any

import msgspec

# ---- telemetry: ambulance tasks and positions (issues 6 and 8: /car/task, /mobile, room ``carTracking``) ----
# Realtime asks telemetry over request/reply; telemetry owns car_track and publishes what realtime emits.
# RPC_TASK_DETAIL (TaskQuery): the /mobile ``connection`` payload of task ``uid`` (reply data = that payload:
#   {task, status, dtmCreated, dtmUpdated, room, current:{latitude,longitude}, destination:{latitude,longitude}});
#   code "not_found" for an unknown uid (realtime then emits status failed / "invalid task id" and disconnects).
# RPC_TASK_LOCATION (TaskLocation): a /mobile ``location`` from the crew app: store it on the task; reply data
#   {"stored": true}; code "bad_request" for out-of-range or far-future positions, "not_found" for unknown uid.
# RPC_CAR_TRACKING (CarTracking): a room namespace ``carTracking`` payload: upsert the car position of
#   (room, userName); reply data {"stored": true} ({"stored": false} when the payload has no position) or code
#   "bad_request"; with status "getDestination" the reply also carries ``destination`` = the room's newest user
#   link with a mobile {userName, mobile, latitude, longitude, patientLatitude, patientLongitude} (absent: none).
RPC_TASK_DETAIL = "rpc.telemetry.task.detail"
RPC_TASK_LOCATION = "rpc.telemetry.task.location"
RPC_CAR_TRACKING = "rpc.telemetry.car.tracking"
# Events (JetStream, through telemetry's outbox):
# TASK_STATUS_CHANGED (TaskStatusChanged): PUT /car/task. Realtime: to /mobile sockets of task ``uid`` (socket.io
#   room ``task:<uid>``) emit ``status`` {status} then ``message`` {"message": "task status update"}; when
#   ``destination`` is set (status "arrive": the service location) also ``destination`` {latitude, longitude} then
#   ``message`` {"message": "destination update"}.
# TASK_DESTINATION_CHANGED (TaskDestination): the patient's position changed (telemetry consumed
#   link.location.updated): to /mobile sockets of ``uid`` emit ``destination`` ``position`` then ``message``
#   {"message": "destination update"}.
# CAR_POSITION_UPDATED (CarPositionUpdated): a stored car position (from /mobile ``location`` or HTTP). Realtime:
#   emit ``car-position`` with ``row`` (the car_track row, original JSON types) on /{room}.
TASK_STATUS_CHANGED = "telemetry.task.status_changed"
TASK_DESTINATION_CHANGED = "telemetry.task.destination_changed"
CAR_POSITION_UPDATED = "telemetry.car.position_updated"


class TaskQuery(msgspec.Struct, kw_only=True):
    uid: str


class TaskLocation(msgspec.Struct, kw_only=True):
    uid: str
    latitude: float | None = None
    longitude: float | None = None
    accuracy: float | None = None
    speed: float | None = None
    heading: float | None = None
    altitude: float | None = None
    altitudeAccuracy: float | None = None
    timestamp: int | None = None  # the device's clock in ms, when it sends one (far future -> bad_request)


class CarTracking(msgspec.Struct, kw_only=True):
    room: str
    userName: str
    status: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy: float | None = None
    speed: float | None = None
    heading: float | None = None
    altitude: float | None = None
    altitudeAccuracy: float | None = None
    timestamp: int | None = None  # added by telemetry: the device's clock in ms, when known (far future -> bad_request)


class TaskStatusChanged(msgspec.Struct, kw_only=True):
    uid: str
    room: str | None = None
    status: str
    destination: dict[str, Any] | None = None  # {latitude, longitude} for "arrive"


class TaskDestination(msgspec.Struct, kw_only=True):
    uid: str
    room: str
    position: dict[str, Any]  # {latitude, longitude, accuracy, altitude, altitudeAccuracy, heading, speed}


class CarPositionUpdated(msgspec.Struct, kw_only=True):
    room: str
    uid: str | None = None
    row: dict[str, Any]  # the car_track row as /car/list shows it


# Realtime also reads an optional ``destination`` in RPC_CAR_TRACKING's reply (status "getDestination"): the
# room's patient position {userName, mobile, latitude, longitude, patientLatitude, patientLongitude}; when it is
# present realtime broadcasts it as ``destination`` on /{room} (realtime.md §4.5).


# ---- telemetry: what car tasks need from link and conference (issue 6, /car/task) ------------------------
# TASK_SMS_REQUESTED (TaskSmsRequested): a COMMAND to link, published through telemetry's outbox by POST /car/task
#   (the original texted the crew its app link). Link consumes it (durable, once per ``messageId``): tenant =
#   ``service`` (None: the tenant of the room's links); domain = the tenant's next ``linkType`` domain for
#   ``linkID`` (the original's getDomain({service, type: "video", linkID: <task uid>})); text = ``prefix`` +
#   domain + ``path`` (the original's "Task \n<domain>/app/<uid>"); sender = the tenant's smsSenderName ('' if
#   none); then link's own SMS path (sms_message row of ``kind``, SMS_ENABLE honoured, link.sms.sent / failed).
TASK_SMS_REQUESTED = "telemetry.sms.requested"
# Telemetry asks RPC_TENANT_DETAIL (contracts.link) and RPC_CASE_OF_ROOM (contracts.conference) with a short
# timeout; while unanswered, GET /car/task answers without case fields and with the tenant of the room's links as
# ``service`` (null fields when unknown), and "arrive" sends destination 0/0.
# RPC_ROOM_CAR_POSITION (contracts.conference.RoomQuery), served by telemetry: the room's newest car_track row
#   (the room namespace ``car-position`` a connecting ``user`` gets; same JSON types as CarPositionUpdated.row), or
#   null when none.
RPC_ROOM_CAR_POSITION = "rpc.telemetry.car.newest"


class TaskSmsRequested(msgspec.Struct, kw_only=True):
    messageId: str  # idempotency key (the consumer must apply it once)
    mobile: str
    room: str
    linkID: str  # the task uid
    path: str  # "/app/<uid>"
    service: int | None = None
    linkType: str = "video"
    prefix: str = "Task \n"
    kind: str = "task"

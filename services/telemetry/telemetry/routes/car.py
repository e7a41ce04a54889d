"""HTTP routes of the car tasks: the task list of a room (GET /car/list) and the car task (POST/GET/PUT
/car/task) the crew app follows. A bad or unknown room / task id -> 404 ``{"status":"NOT FOUND","message":...}``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post, put

from servicekit import compat
from servicekit.db import LockTimeout
from servicekit.web import ApiError, Runtime, fail, parse_body
from telemetry.domain import tasks as domain
from telemetry.events import lookups
from telemetry.events.tasks import change_status, create_task
from telemetry.repository import tasks as repository


def _not_found(message: str) -> ApiError:
    return ApiError(message, 404, {"status": "NOT FOUND", "message": message})


class CarController(Controller):
    path = "/car"
    tags = ["car"]

    @get("/list")
    async def task_list(self, request: Request, runtime: Runtime) -> Response:
        """Tasks of a room, newest first: ``?room=`` (required), ``&limit=`` (default 100, at most 1000)."""
        room = request.query_params.get("room") or ""
        if not room.strip() or len(room) > 50:
            raise _not_found("invalid room")
        limit = domain.car_list_limit(request.query_params.get("limit"))
        if limit is None:
            raise fail("invalid limit")
        assert runtime.db is not None
        rows = await repository.car_tasks_of_room(runtime.db, room, limit)
        if not rows:
            raise _not_found("invalid room")
        return Response({"status": "OK", "data": [domain.car_row_json(r) for r in rows]}, status_code=200)


# ---- POST / GET / PUT /car/task ------------------------------------------------------------------------------
class CreateTaskBody(msgspec.Struct, kw_only=True):
    room: str | None = None
    mobile: str | None = None


class UpdateTaskBody(msgspec.Struct, kw_only=True):
    id: str | None = None
    task: str | None = None  # the original's API doc named it so; the code read only ``id``
    status: str | None = None


def _text(value: object) -> str:
    """A body value as text: the original read numbers as given (``mobile`` may arrive as a JSON number)."""
    if value is None or isinstance(value, bool):
        return ""
    return value if isinstance(value, str) else str(value) if isinstance(value, int) else ""


def _public_base(request: Request, runtime: Runtime) -> str:
    """API_URL; when it is not configured, the base URL the caller reached (the edge forwards Host and scheme)."""
    configured = runtime.settings.api_url  # type: ignore[attr-defined]
    if configured:
        return configured
    scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
    return f"{scheme}://{request.headers.get('host') or request.url.netloc}"


class CarTaskController(Controller):
    path = "/car/task"
    tags = ["car"]

    @post("/", status_code=200, opt=compat.opens("writes"))
    async def create(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """Cancel the room's running tasks, create a task (status ``open``) and text the crew its app link.

        Agents' console only: the original was open (anyone could create tasks and SMS any number); the agent
        bearer token is required, a missing/bad one gets the original's FAIL body."""
        runtime.require_agent_token_unless_compat(request)
        raw = await parse_body(request, dict[str, Any])
        body = CreateTaskBody(room=_text(raw.get("room")), mobile=_text(raw.get("mobile")))
        room, mobile = (body.room or "").strip(), (body.mobile or "").strip()
        if not room or not domain.valid_room(room):
            raise _not_found("invalid room")
        if not mobile or not domain.valid_mobile(mobile):
            raise _not_found("invalid mobile")
        assert runtime.db is not None
        service = await repository.room_service(runtime.db, room)
        charset = domain.task_uid_charset(runtime.settings.custom_charset)  # type: ignore[attr-defined]
        # One creation per room at a time across replicas: two must not both leave an open task behind.
        lock = "telemetry.task." + hashlib.sha1(room.encode(), usedforsecurity=False).hexdigest()
        try:
            uid = await create_task(runtime, lock, room, mobile, service, charset)
        except LockTimeout as exc:
            raise fail("another task of this room is being created: try again", 503) from exc
        return {"status": "OK", "message": "success", "data": {"uid": uid}}

    @get("/")
    async def detail(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """The task, its destination, the room's case and tenant, for the crew app (no token: the app has none;
        the task id is its key)."""
        uid = request.query_params.get("id") or ""
        if not uid or not domain.valid_task_uid(uid):
            raise _not_found("invalid task id")
        assert runtime.db is not None
        row = await repository.task_by_uid(runtime.db, uid)
        if row is None:
            raise _not_found("invalid task id")
        if row["status"] == "cancel":
            raise fail("task is cancel")
        room = row["room"] or ""
        case = await lookups.case_of_room(runtime, room) if room else None
        room_service = await repository.room_service(runtime.db, room) if room else None
        case_service = case.get("service") if case and isinstance(case.get("service"), int) else None
        service_id = case_service if case_service is not None else room_service
        tenant = await lookups.tenant(runtime, service_id)
        status = row["status"] or "open"
        link = await repository.newest_user_link(runtime.db, room) if status != "arrive" else None
        if status == "arrive" and room_service is not None and room_service != service_id:
            location_source = await lookups.tenant(runtime, room_service)
        else:
            location_source = tenant
        location = (
            {"latitude": location_source.get("latitude"), "longitude": location_source.get("longitude")}
            if location_source
            else None
        )
        detail = domain.task_detail(row, domain.task_destination(status, link, location))
        web_socket = domain.web_socket_url(_public_base(request, runtime), uid)
        data = domain.task_reply(case, detail, web_socket, domain.service_object(tenant, service_id))
        return {"status": "OK", "message": "success", "data": data}

    @put("/", status_code=200)
    async def update(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """Set the task's status (and its timestamp); the crew app is told through TASK_STATUS_CHANGED.

        Open like the original: the crew app calls it with no token, the task id is its key."""
        raw = await parse_body(request, dict[str, Any])
        body = UpdateTaskBody(id=_text(raw.get("id")) or _text(raw.get("task")), status=_text(raw.get("status")))
        uid = body.id or ""
        if not uid or not domain.valid_task_uid(uid):
            raise _not_found("invalid task id")
        status = body.status or ""
        if status not in domain.TASK_STATUSES:
            raise fail("invalid status")
        assert runtime.db is not None
        row = await repository.task_by_uid(runtime.db, uid)
        if row is None:
            raise _not_found("task not found")
        destination = None
        if status == "arrive":
            location = await lookups.service_location(runtime, row["room"] or "")
            destination = domain.task_destination("arrive", None, location)
        await change_status(runtime.db, row, uid, status, destination)
        return {"status": "OK", "message": "success", "data": {"task": uid, "status": status}}

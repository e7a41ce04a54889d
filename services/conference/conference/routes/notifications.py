"""/notification/*: the original gateway's routes and reply shapes (``{"success": ...}``), served from
conference's own ``notification`` table instead of a proxied notification service.

Writes (POST, PUT) require the LiveKit bearer token. ``GET /notification/events`` is a Server-Sent Events
stream: one ``gateway_connected`` event, then every new notification (``data: <notification JSON>``) from any
replica, with a keep-alive comment every 15 seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.response import ServerSentEvent, ServerSentEventMessage

from conference import repository
from conference.domain import notification_json, parse_id
from conference.events.notifications import NotificationHub, create_notification, set_notification_read
from conference.routes.cases import js_parse_int
from servicekit import compat
from servicekit.clock import parse_local
from servicekit.web import ApiError, Runtime, parse_body

KEEPALIVE_SECONDS = 15.0
LIMIT_MAX = 1000
FILTER_MAX = 100
# CORS headers come from servicekit's middleware (CORS_ALLOWED_ORIGINS), as on every route: none set here.
SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",  # nginx (the edge) passes each event on at once
}


def failure(message: str, status_code: int = 400) -> ApiError:
    return ApiError(message, status_code, {"success": False, "message": message})


def iso_now() -> str:
    """JavaScript's ``new Date().toISOString()``."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def hub_of(runtime: Runtime) -> NotificationHub:
    return runtime.extras.setdefault("notification_hub", NotificationHub())


def _limit(raw: str | None) -> int:
    """The original's ``parseInt(limit) || 50``; bounded."""
    limit = js_parse_int(raw) or 50
    if limit < 1 or limit > LIMIT_MAX:
        raise failure(f"limit must be between 1 and {LIMIT_MAX}")
    return limit


def _notification_id(raw: str) -> int:
    notification_id = parse_id(raw)
    if notification_id is None:
        raise failure("Invalid notification ID")
    return notification_id


Str20 = Annotated[str, msgspec.Meta(max_length=20)]
Str50 = Annotated[str, msgspec.Meta(max_length=50)]
Str100 = Annotated[str, msgspec.Meta(max_length=100)]
Str500 = Annotated[str, msgspec.Meta(max_length=500)]


class NotificationBody(msgspec.Struct, kw_only=True):
    userName: Str100 | None = None
    mobile: Str20 | None = None
    message: Str500 | None = None
    caseId: Annotated[int, msgspec.Meta(ge=-2_147_483_648, le=2_147_483_647)] | None = None
    notificationType: Str50 | None = None
    relatedUrl: Str500 | None = None


class ReadBody(msgspec.Struct, kw_only=True):
    read: int | str | None = None


async def _parse(request: Request, schema: type[Any]) -> Any:
    """The body in ``schema``, with this family's error shape (``{"success":false,"message":...}``)."""
    try:
        return await parse_body(request, schema)
    except ApiError as exc:
        raise failure(str(exc)) from exc


class NotificationController(Controller):
    path = "/notification"
    tags = ["notification"]

    @get("/health", sync_to_thread=False)
    def health(self) -> dict[str, str]:
        return {"status": "ok", "service": "notification-routes-gateway"}

    @get("/events")
    async def events(self, runtime: Runtime) -> ServerSentEvent:
        """Server-Sent Events: ``gateway_connected`` first, then each new notification as it is created."""
        hub = hub_of(runtime)
        assert runtime.bus is not None
        await hub.start(runtime.bus.nc)

        async def stream() -> AsyncIterator[str | ServerSentEventMessage]:
            async with hub.client() as queue:
                yield msgspec.json.encode(
                    {
                        "type": "gateway_connected",
                        "message": "Connected to notification service via gateway",
                        "timestamp": iso_now(),
                    }
                ).decode()
                while True:
                    try:
                        notification = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield ServerSentEventMessage(comment="keep-alive")
                        continue
                    yield msgspec.json.encode(notification).decode()

        return ServerSentEvent(stream(), headers=SSE_HEADERS)

    @get("/unread")
    async def unread(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        limit = _limit(request.query_params.get("limit"))
        assert runtime.db is not None
        rows = [
            notification_json(row) for row in await repository.notifications.unread_notifications(runtime.db, limit)
        ]
        return {"success": True, "data": rows, "count": len(rows), "timestamp": iso_now(), "via": "gateway"}

    @get("/service/stats")
    async def stats(self, runtime: Runtime) -> dict[str, Any]:
        assert runtime.db is not None
        return {
            "success": True,
            "data": {
                "gateway": {
                    "activeSSEConnections": hub_of(runtime).active,
                    "timestamp": iso_now(),
                    "service": "api-node-backend-gateway",
                },
                "notificationService": await repository.notifications.notification_stats(runtime.db),
            },
        }

    @get("/")
    async def list_notifications(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """Filters: page, limit, read (0/1), notificationType, userName, startDate, endDate."""
        params = request.query_params
        page = js_parse_int(params.get("page")) or 1
        if page < 1 or page > 1_000_000:
            raise failure("page must be a positive number")
        limit = _limit(params.get("limit"))
        read = None
        if params.get("read") is not None:
            read = js_parse_int(params.get("read"))
            if read not in (0, 1):
                raise failure("read must be 0 or 1")
        texts: dict[str, str | None] = {}
        for name in ("notificationType", "userName", "startDate", "endDate"):
            value = params.get(name) or None
            if value is not None and len(value) > FILTER_MAX:
                raise failure(f"{name} must be at most {FILTER_MAX} characters")
            texts[name] = value
        start = end = None
        if texts["startDate"] is not None and (start := parse_local(texts["startDate"])) is None:
            raise failure("startDate must be a date")
        if texts["endDate"] is not None and (end := parse_local(texts["endDate"])) is None:
            raise failure("endDate must be a date")
        assert runtime.db is not None
        rows, total = await repository.notifications.list_notifications(
            runtime.db,
            page=page,
            limit=limit,
            read=read,
            notification_type=texts["notificationType"],
            user_name=texts["userName"],
            start=start,
            end=end,
        )
        return {
            "success": True,
            "data": [notification_json(row) for row in rows],
            "pagination": {"page": page, "limit": limit, "total": total, "totalPages": -(-total // limit)},
            "via": "gateway",
        }

    @post("/", opt=compat.opens("writes"))
    async def create(self, request: Request, runtime: Runtime) -> Response:
        """Store a notification; 201 with the new row. Requires the bearer token."""
        runtime.require_token_unless_compat(request)
        body = await _parse(request, NotificationBody)
        if not body.message:
            raise failure("Message is required")
        assert runtime.db is not None
        notification = await create_notification(runtime.db, msgspec.structs.asdict(body))
        return Response(
            {
                "success": True,
                "message": "Notification created successfully",
                "data": notification,
                "via": "gateway",
            },
            status_code=201,
        )

    @get("/{notification_id:str}")
    async def get_one(self, notification_id: str, runtime: Runtime) -> dict[str, Any]:
        assert runtime.db is not None
        row = await repository.notifications.notification_by_id(runtime.db, _notification_id(notification_id))
        if row is None:
            raise failure("Notification not found", 404)
        return {"success": True, "data": notification_json(row), "via": "gateway"}

    @put("/{notification_id:str}", opt=compat.opens("writes"))
    async def update(self, notification_id: str, request: Request, runtime: Runtime) -> dict[str, Any]:
        """Body ``{"read": 0|1}``: 1 marks read (dtmRead = now), 0 unread. Requires the bearer token."""
        return await _update(notification_id, request, runtime)

    @put("/update/{notification_id:str}", opt=compat.opens("writes"))
    async def update_legacy(self, notification_id: str, request: Request, runtime: Runtime) -> dict[str, Any]:
        """The original's legacy alias of ``PUT /notification/:notificationId``."""
        return await _update(notification_id, request, runtime)


async def _update(raw_id: str, request: Request, runtime: Runtime) -> dict[str, Any]:
    runtime.require_token_unless_compat(request)
    notification_id = _notification_id(raw_id)
    body = await _parse(request, ReadBody)
    if body.read is None:
        raise failure("Read status is required")
    read = body.read if isinstance(body.read, int) else {"0": 0, "1": 1}.get(str(body.read).strip())
    if read not in (0, 1):
        raise failure("read must be 0 or 1")
    assert runtime.db is not None
    result = await set_notification_read(runtime.db, notification_id, read)
    if result is None:
        raise failure("Notification not found", 404)
    notification = result.pop("notification")
    return {
        "success": True,
        "message": "Notification updated successfully",
        "data": result,
        "notification": notification,
    }

"""Usage log and custom SMS: GET /status, POST /log, POST /sms/custom."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post

from link import domain, events, repository
from link.events import sms
from servicekit import compat
from servicekit.web import ApiError, Runtime, fail, parse_body, parse_query

LOG_DATA_MAX = 65_536  # characters of a /log `log` value once encoded


class StatusQuery(msgspec.Struct, kw_only=True):
    room: str = ""


class LogBody(msgspec.Struct, kw_only=True):
    linkID: Annotated[str, msgspec.Meta(max_length=100)] = ""
    status: Annotated[str, msgspec.Meta(max_length=50)] = ""
    identity: Annotated[str, msgspec.Meta(max_length=100)] = ""
    userAgent: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    log: Any = None


class CustomSmsBody(msgspec.Struct, kw_only=True):
    message: str | None = None
    mobile: str | None = None
    room: str | None = None


def _decoded(data: str | None) -> Any:
    if data is None:
        return None
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return data


def _text_404(message: str) -> ApiError:
    return ApiError(message, 404, message)


class UsageController(Controller):
    path = "/"
    tags = ["usage"]

    @get("/status")
    async def status(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """A room's usage log, newest first (``data`` parsed back from its JSON text)."""
        query = parse_query(request, StatusQuery)
        assert runtime.db is not None
        room = query.room.strip()
        rows: list[dict[str, Any]] = []
        if room and len(room) <= 100:
            async with runtime.db.connection() as conn:
                rows = await repository.usage.room_status_log(conn, room)
        if not rows:
            return {"status": "FAIL", "message": "Invalid Room"}
        data = []
        for row in rows:
            item = domain.rows.plain(row)
            item["data"] = _decoded(row["data"])
            data.append(item)
        return {"status": "OK", "data": data}

    @post("/log", status_code=200)
    async def add_log(self, request: Request, runtime: Runtime) -> dict[str, str]:
        """A client-side status row; ``ErrorLocation`` / ``ErrorVideo`` also set the link's error text."""
        body = await parse_body(request, LogBody)
        assert runtime.db is not None
        if not body.status.strip():
            raise fail("Invalid parameter: status is required")
        encoded = msgspec.json.encode(body.log).decode() if body.log is not None else ""
        if len(encoded) > LOG_DATA_MAX:
            raise fail("Invalid parameter: log is too long")
        error_text = body.log if isinstance(body.log, str) else encoded
        async with runtime.db.transaction() as conn:
            await repository.usage.add_usage(
                conn,
                status=body.status,
                link_id=body.linkID,
                identity=body.identity,
                user_agent=body.userAgent,
                data=body.log if body.log is not None else "",
            )
            if body.linkID and body.status in ("ErrorLocation", "ErrorVideo"):
                column = "errorLocation" if body.status == "ErrorLocation" else "errorVideo"
                await repository.links.set_link_error(conn, body.linkID, column, error_text)
                await events.link_fields_changed(conn, body.linkID, {column: error_text})
        return {"status": "OK"}

    @post("/sms/custom", status_code=200, opt=compat.opens("writes"))
    async def custom_sms(self, request: Request, runtime: Runtime) -> dict[str, str]:
        """Send a free text (e.g. a survey) to a mobile with the room tenant's sender; usage row ``smsSurvey``.
        The original was open (an SMS relay for anybody); the agent console's bearer token is required here."""
        runtime.require_agent_token_unless_compat(request)
        body = await parse_body(request, CustomSmsBody)
        assert runtime.db is not None
        if body.message is None:
            raise _text_404("Invalid url")
        if body.mobile is None or not domain.sms.valid_mobile(body.mobile.strip()):
            raise _text_404("Invalid mobile")
        room = (body.room or "").strip()
        service = None
        if room and len(room) <= 50:
            async with runtime.db.connection() as conn:
                service = await repository.links.room_service(conn, room)
        if not service:
            raise _text_404("Invalid room")
        text = body.message.strip()
        if not text:
            raise _text_404("message is empty")
        if len(body.message) > domain.sms.SMS_TEXT_MAX:
            raise fail(f"Invalid parameter: message is longer than {domain.sms.SMS_TEXT_MAX} characters")
        mobile = body.mobile.strip()
        async with runtime.db.transaction() as conn:
            tenant = await repository.tenants.get_tenant(conn, service)
            sender = (tenant or {}).get("smsSenderName") or ""
            key = await sms.record(
                conn,
                domain.sms.SmsMessage(sender=sender, mobile=mobile, text=body.message),
                enabled=runtime.settings.sms_enable,
                room=room,
                kind="custom",
            )
            await repository.usage.add_usage(conn, status="smsSurvey", room=room, mobile=mobile, data=body.message)
        if key is not None:
            await sms.enqueue(runtime, key)
        return {"message": "Send sms complete"}

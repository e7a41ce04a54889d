"""POST /case/create, GET /case/get, GET /case/history, PUT /case/update (the original's case.controller).

Reply shapes are the original's. Unlike the original, create and update require the LiveKit bearer token
(``runtime.require_token``), SQL is parameterised, caseId allocation is atomic per service, and the search-all
history keeps the service filter on every condition.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put

from conference import repository
from conference.clients import crm_token
from conference.domain import CASE_STATUSES, HistoryQuery, parse_id, updated_log
from conference.events import cases
from conference.events.link import service_exists
from servicekit import compat
from servicekit.bus import RpcError
from servicekit.clock import js_iso, parse_local
from servicekit.web import ApiError, Runtime, fail, parse_body

Int32 = Annotated[int, msgspec.Meta(ge=0, le=2_147_483_647)]
HISTORY_LIMIT_MAX = 1000
SEARCH_TEXT_MAX = 100


Str20 = Annotated[str, msgspec.Meta(max_length=20)]
Str50 = Annotated[str, msgspec.Meta(max_length=50)]
Str100 = Annotated[str, msgspec.Meta(max_length=100)]


class CaseCreateBody(msgspec.Struct, kw_only=True):
    userName: Str100 | None = None
    room: Str50 | None = None
    mobile: Str50 | None = None
    linkType: Str50 | None = None
    service: Int32 | None = None
    organization: Str50 | None = ""


class CaseUpdateBody(msgspec.Struct, kw_only=True):
    service: Any = msgspec.UNSET
    caseId: Any = msgspec.UNSET
    operationNumber: Str100 | None | msgspec.UnsetType = msgspec.UNSET
    status: Str50 | None | msgspec.UnsetType = msgspec.UNSET
    hn: Str50 | None | msgspec.UnsetType = msgspec.UNSET
    patientMobile: Str20 | None | msgspec.UnsetType = msgspec.UNSET
    userName: Str100 | None | msgspec.UnsetType = msgspec.UNSET


_LEADING_INT = re.compile(r"^\s*([+-]?\d+)")


def js_parse_int(text: str | None) -> int | None:
    """JavaScript's ``parseInt`` of a query value: leading digits, else None (NaN)."""
    match = _LEADING_INT.match(text or "")
    return int(match.group(1)) if match else None


def _history_query(params: Any) -> HistoryQuery:
    def text(name: str, default: str = "") -> str:
        value = params.get(name)
        if value is None:
            return default
        if len(value) > SEARCH_TEXT_MAX:
            raise fail(f"{name} must be at most {SEARCH_TEXT_MAX} characters")
        return value

    page = js_parse_int(params.get("page"))
    limit = js_parse_int(params.get("limit"))
    page = 1 if page is None else page
    limit = 10 if limit is None else limit
    if limit < 0 or limit > HISTORY_LIMIT_MAX:
        raise fail(f"limit must be between 0 and {HISTORY_LIMIT_MAX}")
    if page > 1_000_000 or page < -1_000_000:
        raise fail("page is out of range")
    search_all = params.get("searchAllText")
    if text("isAdvancedSearch") == "true":
        mode = "searchAdvanced"
    elif search_all != "":  # absent counts as a search-all (the original's test was `!== ""`)
        mode = "searchAll"
    else:
        mode = "list"
    query = HistoryQuery(service=parse_id(params.get("service") or ""), mode=mode, page=page, limit=limit)
    query.text = text("searchAllText").strip()
    if mode == "searchAdvanced":
        flags = {
            "On Case": text("isStatusOnCase", "true"),
            "Process": text("isStatusProcess", "true"),
            "Closed": text("isStatusClosed", "true"),
        }
        if all(flag == "false" for flag in flags.values()):
            query.statuses = None
        else:
            query.statuses = tuple(status for status in CASE_STATUSES if flags[status] == "true")
        start_text = text("dateTimeStart")
        end_text = text("dateTimeEnd")
        start_text = "" if start_text == "undefined" else start_text
        end_text = "" if end_text == "undefined" else end_text
        if start_text and end_text:
            query.date_start = parse_local(start_text)
            query.date_end = parse_local(end_text)
            if query.date_start is None or query.date_end is None:
                raise fail("dateTimeStart and dateTimeEnd must be dates (YYYY-MM-DD HH:mm:ss)")
        for column in ("operationNumber", "caseId", "hn", "mobileCreated", "patientMobile"):
            value = text(column).strip()
            if value:
                query.likes[column] = value
    return query


async def _service_exists(runtime: Runtime, service: int) -> bool:
    assert runtime.bus is not None
    try:
        return await service_exists(runtime.bus, service)
    except RpcError as exc:
        raise fail("service directory unavailable", 503) from exc


class CaseController(Controller):
    path = "/case"
    tags = ["case"]

    @post("/create", status_code=200, opt=compat.opens("writes"))
    async def create(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """Open a case (status ``On Case``) for the room: ``{"status":"OK","data":{"userName","caseId"}}``.
        Unknown service: 404 ``{"message":"Service not found"}``; unknown room: ``{"status":"FAIL",
        "message":"invalid room"}``. Requires the bearer token."""
        runtime.require_token_unless_compat(request)
        body = await parse_body(request, CaseCreateBody)
        if body.service is None or not await _service_exists(runtime, body.service):
            raise ApiError("Service not found", 404, {"message": "Service not found"})
        assert runtime.db is not None
        room_id = await repository.rooms.room_id_of(runtime.db, body.room) if body.room else None
        if room_id is None:
            raise fail("invalid room", 200)
        organization = body.organization or ""
        case_id = await cases.create_case(
            runtime.db,
            service=body.service,
            room=body.room or "",
            room_id=room_id,
            user_name=body.userName,
            mobile=body.mobile,
            link_type=body.linkType,
            organization=organization,
            log_user_name=msgspec.UNSET if body.userName is None else body.userName,
        )
        data: dict[str, Any] = {} if body.userName is None else {"userName": body.userName}
        data["caseId"] = case_id
        return {"status": "OK", "data": data}

    @get("/get")
    async def detail(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """The case with its room's status/type and a 365-day ``crm`` token (the original's shape)."""
        raw_case_id = request.query_params.get("caseId")
        if raw_case_id is None or raw_case_id == "":
            return {"message": "invalid parameter"}
        case_id = parse_id(raw_case_id)
        service = parse_id(request.query_params.get("service") or "")
        assert runtime.db is not None
        row = None
        if case_id is not None and service is not None:
            row = await repository.cases.case_detail(runtime.db, service, case_id)
        if row is None:
            return {"message": "invalid caseId"}
        reply: dict[str, Any] = {
            "caseId": raw_case_id,
            "mobileCreated": row["mobileCreated"],
            "operationNumber": row["operationNumber"],
            "caseStatus": row["status"],
            "hn": row["hn"],
            "patientMobile": row["patientMobile"],
        }
        if row["roomRowId"] is not None:  # the original's JSON dropped these when the room was missing
            reply["roomStatus"] = row["roomStatus"]
            reply["roomType"] = row["roomType"]
        if row["roomName"]:
            assert case_id is not None and service is not None
            await cases.reopen_room_socket(runtime.db, row["roomName"], case_id, service)
        settings = runtime.settings
        reply.update(
            {
                "caseType": row["caseType"],
                "roomName": row["roomName"] if row["roomName"] is not None else False,
                "userName": row["userName"],
                "dtmCreated": js_iso(row["dtmCreated"]),
                "token": crm_token(settings.livekit_api_key, settings.livekit_api_secret),
            }
        )
        return reply

    @get("/history")
    async def history(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """``{"history": [...], "count": n}`` of a service's cases: plain list, search-all or advanced search."""
        query = _history_query(request.query_params)
        if query.service is None:
            return {"history": [], "count": 0}
        assert runtime.db is not None
        rows, count = await repository.cases.case_history(runtime.db, query)
        return {"history": rows, "count": count}

    @put("/update", opt=compat.opens("writes"))
    async def update(self, request: Request, runtime: Runtime) -> Response:
        """Change a case's fields; replies the echo ``{caseId, status, hn, patientMobile}`` (absent fields
        omitted). Missing/invalid ``caseId`` or ``service``: 404 text ``Invalid Parameter``. Requires the
        bearer token."""
        runtime.require_token_unless_compat(request)
        body = await parse_body(request, CaseUpdateBody)
        case_id = parse_id(body.caseId) if body.caseId is not msgspec.UNSET else None
        service = parse_id(body.service) if body.service is not msgspec.UNSET else None
        if case_id is None or service is None:
            raise ApiError("Invalid Parameter", 404, "Invalid Parameter")
        changes: dict[str, Any] = {}
        if body.operationNumber is not msgspec.UNSET:
            changes["operationNumber"] = body.operationNumber or ""
        if body.userName is not msgspec.UNSET:
            changes["userName"] = body.userName
        if body.status is not msgspec.UNSET:
            changes["status"] = body.status
        if body.hn is not msgspec.UNSET and body.patientMobile is not msgspec.UNSET:  # only together
            changes["hn"] = body.hn or ""
            changes["patientMobile"] = body.patientMobile or ""
        assert runtime.db is not None
        fields = ("service", "caseId", "operationNumber", "status", "hn", "patientMobile", "userName")
        status_log = updated_log({name: getattr(body, name) for name in fields})
        user_name = body.userName if isinstance(body.userName, str) else None
        await cases.update_case(
            runtime.db, service=service, case_id=case_id, changes=changes, user_name=user_name, status_log=status_log
        )
        echo: dict[str, Any] = {"caseId": body.caseId}
        for name in ("status", "hn", "patientMobile"):
            value = getattr(body, name)
            if value is not msgspec.UNSET:
                echo[name] = value
        return Response(echo)

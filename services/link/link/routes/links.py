"""HTTP controllers of /link/* (create, getdetail, update/latlng, share, history)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, asgi, get, post
from litestar.exceptions import MethodNotAllowedException
from litestar.openapi.spec import OpenAPIResponse, OpenAPIType, Operation, Parameter, PathItem, Schema
from litestar.types import Receive, Scope, Send

from contracts.conference import (
    RPC_PARTICIPANT_TOKEN,
    RPC_ROOM_DETAIL,
    EnsureRoom,
    ParticipantTokenRequest,
    RoomQuery,
)
from contracts.link import LinkCreated, LinkUsed, ParticipantSeen, Position
from link import domain, events, repository
from link.events import readmodels, sms
from servicekit.bus import RpcError
from servicekit.clock import now_local, parse_lifetime, parse_local
from servicekit.web import ApiError, Runtime, fail, parse_body, parse_query

RPC_TIMEOUT = 5.0
_encode_json = msgspec.json.Encoder().encode
INT_MAX = 2_147_483_647
IDENTITY_MAX = 100  # usage_status_log.identity

Count = Annotated[int, msgspec.Meta(ge=0, le=INT_MAX)]
Flag = Annotated[int, msgspec.Meta(ge=0, le=1)]


Str10 = Annotated[str, msgspec.Meta(max_length=10)]
Str11 = Annotated[str, msgspec.Meta(max_length=11)]
Str20 = Annotated[str, msgspec.Meta(max_length=20)]
Str40 = Annotated[str, msgspec.Meta(max_length=40)]
Str50 = Annotated[str, msgspec.Meta(max_length=50)]
Str100 = Annotated[str, msgspec.Meta(max_length=100)]
Str200 = Annotated[str, msgspec.Meta(max_length=200)]
LinkType = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


class CreateLinkBody(msgspec.Struct, kw_only=True):
    service: int | str | None = None
    mobile: Str20 = ""
    room: Str200 | None = None
    autoRecord: Count = 0
    recordType: Str50 = domain.links.DEFAULT_RECORD_TYPE
    encodingOptionsPreset: Str50 = domain.links.DEFAULT_ENCODING_PRESET
    isAdmin: Count | Str11 = "0"
    crmSender: Str100 = ""
    userType: Str10 = "user"
    linkType: LinkType = "video"
    requireUserName: Count = 0
    userName: Str100 | None = None
    password: Str200 = ""
    requireJoinPermission: Count = 0
    dtmExpired: Str40 | None = None
    oneTimeLink: Flag = 0
    chatEnabled: Count = 1
    caseId: int | Str50 | None = None
    sms: Count = 1


class DetailQuery(msgspec.Struct, kw_only=True):
    linkId: str = ""
    identity: str = ""


Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180)]
Measure = Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)]


class LatLngBody(msgspec.Struct, kw_only=True):
    linkID: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    room: Str50 = ""
    userType: Str10 = ""
    latitude: Latitude
    longitude: Longitude
    accuracy: Measure | None = None
    altitude: Measure | None = None
    altitudeAccuracy: Measure | None = None
    heading: Measure | None = None
    speed: Measure | None = None


_OPTIONAL_MEASURES = ("accuracy", "altitude", "altitudeAccuracy", "heading", "speed")
_EMPTY_VALUES = ("", "null", "undefined")


class ShareQuery(msgspec.Struct, kw_only=True):
    room: str = ""


class HistoryQuery(msgspec.Struct, kw_only=True):
    roomName: str = ""
    page: str | None = None


def _rpc_failure(exc: RpcError) -> ApiError:
    if exc.code == "bad_request":
        return fail(f"Invalid parameter: {exc.message}", 400)
    return fail("conference service unavailable", 503)


def _user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")


async def link_detail(request: Request[Any, Any, Any], runtime: Runtime) -> dict[str, Any]:
    """GET /link/getdetail's answer.

    One hop: answered from link's database alone (the room, room users and participants are read models
    fed by events, the token is signed here with the shared LiveKit key). A room not in the read model yet,
    or on a LiveKit node with its own key, is asked of conference once (see link.events.readmodels)."""
    query = parse_query(request, DetailQuery)
    assert runtime.db is not None and runtime.bus is not None
    link_id = query.linkId.strip()
    identity = query.identity.strip()
    if len(identity) > IDENTITY_MAX:
        raise fail(f"Invalid parameter: identity is longer than {IDENTITY_MAX} characters")
    user_agent = _user_agent(request)

    found = None
    if 0 < len(link_id) <= 50:
        async with runtime.db.connection() as conn:
            found = await repository.readmodels.lookup(conn, link_id, identity)
    if found is None:
        raise ApiError("invalid linkID", 200)
    row = found.link
    if row["oneTimeLink"] == domain.links.ONE_TIME_USED:
        raise ApiError("linkID expired", 200)
    link = domain.rows.plain(row)
    room = row["room"] or ""

    if domain.links.is_expired(row["dtmExpired"], now_local()):
        # The original answered "invalid room" first when the room was gone; no token for an expired link.
        if found.detail is None:
            try:
                await runtime.bus.request(RPC_ROOM_DETAIL, RoomQuery(room=room), timeout=RPC_TIMEOUT)
            except RpcError as exc:
                if exc.code == "not_found":
                    raise ApiError("invalid room", 200) from exc
                raise _rpc_failure(exc) from exc
        raise ApiError(
            "linkID expired",
            200,
            {"status": "FAIL", "message": "linkID expired", "data": {**link, "status": "linkExpired"}},
        )

    settings = runtime.settings
    palette: readmodels.Palette = runtime.extras["palette"]
    seen = None
    if found.detail is not None and found.uses_default_key and palette.known:
        # The one-hop path.
        room_reply = domain.detail.room_reply(found.detail)
        token_reply = domain.detail.mint(
            api_key=settings.livekit_api_key,
            api_secret=settings.livekit_api_secret,
            room=room,
            identity=identity or None,
            user_name=row["userName"],
            user_type=row["userType"] or "user",
            link_type=row["linkType"],
            mobile=row["mobile"],
            link_id=row["linkID"],
            room_join=row["requireJoinPermission"] != 1,
            known=found.user,
            color=palette.pick(),
        )
        position_rows = found.positions
        participants = found.participants
        if position_rows is None or participants is None:  # an aggregate too long for the server: rows apart
            async with runtime.db.connection() as conn:
                position_rows = await repository.links.user_links_of_room(conn, room)
                participants = await repository.readmodels.participants(conn, room)
        # room_user's user agent belongs to conference: handed over as an event, unless the read model
        # shows it would change nothing (same agent, or no such user in a room known since its creation).
        if identity and identity != "null":
            known = found.user
            if (known is None and not found.complete) or (known is not None and known.user_agent != user_agent):
                seen = ParticipantSeen(room=room, identity=identity, userAgent=user_agent, linkID=link_id)
    else:
        token_request = ParticipantTokenRequest(
            room=room,
            identity=identity or None,
            userName=row["userName"],
            userType=row["userType"] or "user",
            linkType=row["linkType"],
            mobile=row["mobile"],
            linkID=row["linkID"],
            roomJoin=row["requireJoinPermission"] != 1,
            isAddUser=False,
            userAgent=user_agent[:255],
            withParticipants=True,
            useKnownUser=True,
            withRoom=True,
        )
        # Conference brings the room detail, the token and the participants (and updates room_user); the
        # positions of the room's users are read meanwhile.
        token_reply, position_rows = await asyncio.gather(
            runtime.bus.request(RPC_PARTICIPANT_TOKEN, token_request, timeout=RPC_TIMEOUT),
            repository.links.user_links_of_room(runtime.db, room),
            return_exceptions=True,
        )
        if isinstance(token_reply, RpcError):
            if token_reply.code == "not_found":
                raise ApiError("invalid room", 200)
            raise _rpc_failure(token_reply)
        for reply in (token_reply, position_rows):
            if isinstance(reply, BaseException):
                raise reply
        assert isinstance(token_reply, dict) and isinstance(position_rows, list)
        room_reply = token_reply.pop("room")
        participants = token_reply.pop("listParticipants", [])
        # The read model learns the room, so the next request of it is answered in one hop.
        await repository.readmodels.store_room(
            runtime.db,
            room_reply,
            room=room,
            node_id=None,
            uses_default_key=domain.detail.signed_with(
                token_reply.get("token"), settings.livekit_api_key, settings.livekit_api_secret
            ),
            complete=False,
            version=int(time.time() * 1000),
        )

    token = token_reply if int(row["requirePassword"] or 0) == 0 else {}
    side_user_type = "admin" if str(row["isAdmin"]) == "1" else "user"
    os_name = domain.links.os_name(user_agent)
    agent_changed = found.link_agent != user_agent or found.link_os != os_name
    one_time = row["oneTimeLink"] == domain.links.ONE_TIME_UNUSED
    usage = {
        "status": domain.links.STATUS_GET_LINK_DETAIL,
        "link_id": link_id,
        "room": room,
        "identity": str(token_reply.get("identity") or ""),
        "user_type": side_user_type,
        "link_type": row["linkType"] or "",
        "user_agent": user_agent,
        "data": link,
    }
    if one_time or agent_changed or seen is not None:
        async with runtime.db.transaction() as conn:
            if one_time:
                if not await repository.links.mark_one_time_used(conn, link_id):
                    raise ApiError("linkID expired", 200)
                await events.link_used(
                    conn, LinkUsed(linkID=link_id, room=room, identity=str(token_reply.get("identity") or ""))
                )
                await events.link_fields_changed(conn, link_id, {"oneTimeLink": domain.links.ONE_TIME_USED})
            if agent_changed:
                await repository.links.update_link_agent(conn, link_id, user_agent, os_name)
                await events.link_fields_changed(conn, link_id, {"userAgent": user_agent, "os": os_name})
            await repository.usage.add_usage(conn, **usage)
            if seen is not None:
                await events.participant_seen(conn, seen)
    else:  # one row on its own: group-committed with concurrent requests' rows, committed before replying
        await runtime.extras["usage"].submit(repository.usage.usage_row(**usage))
    positions = domain.positions.position_users(position_rows)
    data = {
        "id": link_id,
        **link,
        **room_reply,
        "listParticipants": participants,
        **token,
        "positionUser": positions,
    }
    return {"status": "OK", "data": data}


# GET /link/getdetail is a bare ASGI handler, which Litestar does not document: its OpenAPI entry by hand.
DETAIL_OPENAPI = {
    "/link/getdetail": PathItem(
        get=Operation(
            tags=["link"],
            summary="Link detail",
            description="A link with its room, the room's participants, a participant token and the users' "
            "positions (the patient's page load).",
            operation_id="LinkGetdetailGetDetail",
            parameters=[
                Parameter(name=name, param_in="query", required=False, schema=Schema(type=OpenAPIType.STRING))
                for name in ("linkId", "identity")
            ],
            responses={"200": OpenAPIResponse(description='{"status": "OK", "data": {...}} or a FAIL envelope')},
        )
    )
}


class LinkController(Controller):
    path = "/link"
    tags = ["link"]

    # ---- POST /link/create -----------------------------------------------------------------------------
    @post("/create", status_code=200)
    async def create(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """A link to a room (the room is made by conference when missing), with its usage log row and event."""
        runtime.require_agent_token(request)
        body = await parse_body(request, CreateLinkBody)
        settings = runtime.settings
        assert runtime.db is not None and runtime.bus is not None

        service = domain.links.service_id(body.service)
        room = domain.links.sanitize_room(body.room or "")
        if not room.strip():
            room = domain.links.sanitize_room(
                domain.links.random_id(settings.custom_charset)
            ) or domain.links.random_id(domain.links.DEFAULT_CHARSET)
        if len(room) > 50:
            raise fail("Invalid parameter: room is longer than 50 characters")
        now = now_local()
        if body.dtmExpired:
            expires = parse_local(body.dtmExpired)
            if expires is None:
                raise fail("Invalid parameter: dtmExpired")
        else:
            expires = now + parse_lifetime(settings.room_day_default_timeout)
        default_expiry = now + parse_lifetime(settings.room_day_default_timeout)

        async with runtime.db.connection() as conn:
            tenant = await repository.tenants.get_tenant(conn, service)
        if tenant is None:
            raise fail("Invalid service")
        target = domain.links.link_target(tenant, body.linkType, settings.my_webui_video_domain)
        if not target.domain:
            raise fail("Invalid link type: the service has no domain for it")

        user_agent = _user_agent(request)
        try:
            ensured = await events.ensure_room(
                runtime.bus,
                EnsureRoom(
                    room=room,
                    service=service,
                    linkType=body.linkType,
                    autoRecord=body.autoRecord,
                    recordType=body.recordType,
                    encodingOptionsPreset=body.encodingOptionsPreset,
                    chatEnabled=body.chatEnabled,
                    userAgent=user_agent[:255],
                ),
            )
        except RpcError as exc:
            raise _rpc_failure(exc) from exc
        room_created = bool(ensured.get("created"))
        room_detail = ensured.get("room") or {}

        password_hash = await asyncio.to_thread(domain.passwords.hash_password, body.password) if body.password else ""
        user_name = body.userName if body.userName is not None else body.mobile
        is_admin = str(body.isAdmin)
        fields = {
            "share": 0,
            "mobile": body.mobile,
            "room": room,
            "crmSender": body.crmSender,
            "userType": body.userType,
            "linkType": body.linkType,
            "userName": user_name,
            "isAdmin": is_admin,
            "requireJoinPermission": body.requireJoinPermission,
            "requireUserName": body.requireUserName,
            "requirePassword": 1 if body.password else 0,
            "oneTimeLink": body.oneTimeLink,
            "password": password_hash,
            "service": service,
            "sms": body.sms,
            "dtmCreated": now,
            "dtmExpired": expires,
            "userAgent": user_agent,
        }
        async with runtime.db.transaction() as conn:
            # A new room gets its Guest and Viewer share links; so does a room whose first link creation failed
            # after conference had made the room (the room is no longer "created" on the retry).
            if room_created or await repository.links.share_link_id(conn, room, "Guest") is None:
                for share_name, share_type in (("Guest", "user"), ("Viewer", "viewer")):
                    share_fields = {
                        "share": 1,
                        "room": room,
                        "userType": share_type,
                        "linkType": "video",
                        "userName": share_name,
                        "service": service,
                        "dtmCreated": now,
                        "dtmExpired": default_expiry,
                    }
                    share_id, share_row = await repository.links.insert_link(
                        conn, settings.custom_charset, share_fields
                    )
                    await events.share_link_created(conn, share_id, share_row, share_fields, room_created=room_created)
            link_id, row_id = await repository.links.insert_link(conn, settings.custom_charset, fields)
            url = domain.links.link_url(target.domain, body.linkType, link_id)
            link = {
                "linkID": link_id,
                "isAdmin": body.isAdmin,
                "requireJoinPermission": body.requireJoinPermission,
                "userName": user_name,
                "dtmExpired": expires.strftime("%Y-%m-%d %H:%M:%S"),
                "url": url,
                "linkType": body.linkType,
            }
            await repository.usage.add_usage(
                conn,
                status=domain.links.STATUS_CREATE_LINK,
                link_id=link_id,
                room=room,
                user_type=body.userType,
                mobile=body.mobile,
                link_type=body.linkType,
                data=link,
            )
            await events.link_created(
                conn,
                LinkCreated(
                    linkID=link_id,
                    linkRowId=row_id,
                    room=room,
                    linkType=body.linkType,
                    userType=body.userType,
                    userName=user_name or "",
                    mobile=body.mobile,
                    service=service,
                    roomCreated=room_created,
                    # the link_connect values telemetry's /stats/summary lists
                    crmSender=body.crmSender,
                    oneTimeLink=body.oneTimeLink,
                    share=0,
                    recordId=0,
                    dtmCreated=str(now),
                    dtmExpired=link["dtmExpired"],
                    userAgent=user_agent,
                ),
            )
            # The SMS row is written with the link (the row is the message's record); sent by an arq job.
            message = domain.sms.sms_for_link(
                mobile=body.mobile,
                sms=body.sms,
                link_type=body.linkType,
                prefix=target.sms_prefix,
                url=url,
                sender=tenant.get("smsSenderName"),
            )
            sms_key = None
            if message is not None:
                sms_key = await sms.record(
                    conn, message, enabled=settings.sms_enable, link_id=link_id, room=room, kind="link"
                )
        if sms_key is not None:
            await sms.enqueue(runtime, sms_key)
        return {**link, **room_detail}

    # ---- GET /link/getdetail ---------------------------------------------------------------------------
    @asgi("/getdetail", copy_scope=False)
    async def get_detail(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A link with its room, the room's participants, a participant token and the users' positions.

        The page load of every patient, so a bare ASGI handler: it skips Litestar's per-request signature
        model, dependency injection and response objects (a quarter of the route's CPU). Errors still go through
        the app's exception handlers, which give them the usual envelope."""
        if scope["method"] != "GET":
            raise MethodNotAllowedException(headers={"Allow": "GET"})
        request: Request[Any, Any, Any] = Request(scope, receive)
        body = _encode_json(await link_detail(request, request.app.state.runtime))
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # ---- POST /link/update/latlng ----------------------------------------------------------------------
    @post("/update/latlng", status_code=200)
    async def update_latlng(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """A link's current position: stored, logged and published (realtime emits it)."""
        raw = await parse_body(request, dict[str, Any])
        for key in _OPTIONAL_MEASURES:
            if raw.get(key) in _EMPTY_VALUES:
                raw[key] = None
        try:
            body = msgspec.convert(raw, LatLngBody, strict=False)
        except msgspec.ValidationError as exc:
            raise fail(f"Invalid parameter: {exc}") from exc
        report = domain.positions.PositionReport(
            link_id=body.linkID,
            room=body.room,
            user_type=body.userType,
            latitude=body.latitude,
            longitude=body.longitude,
            accuracy=body.accuracy,
            position=Position(
                latitude=body.latitude,
                longitude=body.longitude,
                accuracy=body.accuracy,
                altitude=body.altitude,
                altitudeAccuracy=body.altitudeAccuracy,
                heading=body.heading,
                speed=body.speed,
            ),
            timestamp=int(time.time() * 1000),
        )
        # Group-committed with the other positions arriving now (link.events.positions); answered after the commit.
        if not await runtime.extras["positions"].submit(report):
            return {"status": "FAIL"}
        return {"status": "OK"}

    # ---- GET /link/share -------------------------------------------------------------------------------
    @get("/share")
    async def share(self, request: Request, runtime: Runtime) -> dict[str, str]:
        """The room's guest and viewer share URLs."""
        query = parse_query(request, ShareQuery)
        assert runtime.db is not None
        room = query.room.strip()
        if not room or len(room) > 50:
            raise ApiError("invalid", 404, "invalid")
        async with runtime.db.connection() as conn:
            service = await repository.links.room_service(conn, room)
            if service is None:
                raise ApiError("invalid", 404, "invalid")
            tenant = await repository.tenants.get_tenant(conn, service)
            guest = await repository.links.share_link_id(conn, room, "Guest")
            viewer = await repository.links.share_link_id(conn, room, "Viewer")
        target = domain.links.link_target(tenant, "video")
        guest_url = f"{target.domain}/video/{guest}" if target.domain and guest else "-"
        viewer_url = f"{target.domain}/viewer/{viewer}" if target.domain and viewer else "-"
        return {"url": guest_url, "guest": guest_url, "viewer": viewer_url}

    # ---- GET /link/history -----------------------------------------------------------------------------
    @get("/history")
    async def history(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """The room's patient links (5 a page, oldest first) with their activity log."""
        query = parse_query(request, HistoryQuery)
        assert runtime.db is not None and runtime.bus is not None
        room = query.roomName.strip()
        if not room:
            raise ApiError("Invalid parameter", 404, "Invalid parameter")
        if len(room) > 50:
            return {"data": [], "count": 0}
        try:
            data, count = await readmodels.history(runtime, room, domain.history.history_offset(query.page))
        except RpcError as exc:
            raise _rpc_failure(exc) from exc
        return {"data": data, "count": count}

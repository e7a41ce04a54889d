"""Other link kinds: GET /link/get/domain, POST /link/create/hls, /link/cartracking, /link/multilatlng/send."""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post

from contracts.link import LinkCreated, LinkMultiLatLng
from link import domain, events, repository
from link.events import sms
from servicekit import compat
from servicekit.bus import RpcError
from servicekit.clock import now_local, parse_lifetime
from servicekit.web import ApiError, Runtime, fail, parse_body, parse_query

RoomName = Annotated[str, msgspec.Meta(max_length=50)]
Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180)]
Measure = Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)]


class DomainQuery(msgspec.Struct, kw_only=True):
    linkID: Annotated[str, msgspec.Meta(max_length=50)] = ""
    type: Annotated[str, msgspec.Meta(max_length=20)] = "video"
    sender: Annotated[str, msgspec.Meta(max_length=100)] = ""
    service: str = ""


class HlsBody(msgspec.Struct, kw_only=True):
    recordId: int | str | None = None
    agentUsername: Annotated[str, msgspec.Meta(max_length=100)] = ""
    room: RoomName = ""
    mobile: Annotated[str, msgspec.Meta(max_length=20)] = ""
    service: int | str | None = None


class CarTrackingBody(msgspec.Struct, kw_only=True):
    carRegisNumber: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    room: RoomName | None = None
    mobile: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    service: int | str | None = None
    linkType: str = "agentCar"


class CurrentLocation(msgspec.Struct, kw_only=True, omit_defaults=True):
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    accuracy: Measure | None = None
    altitude: Measure | None = None
    altitudeAccuracy: Measure | None = None
    heading: Measure | None = None
    speed: Measure | None = None


class PickLocation(msgspec.Struct, kw_only=True, omit_defaults=True):
    # patientLatitude/patientLongitude are DECIMAL UNSIGNED in the original schema
    latitude: Annotated[float, msgspec.Meta(ge=0, le=90)] | None = None
    longitude: Annotated[float, msgspec.Meta(ge=0, le=180)] | None = None


class MultiLatLngBody(msgspec.Struct, kw_only=True):
    linkID: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    room: RoomName = ""
    userType: Annotated[str, msgspec.Meta(max_length=10)] = ""
    currentLocation: CurrentLocation | None = None
    pickLocation: PickLocation | None = None


_MEASURES = ("latitude", "longitude", "accuracy", "altitude", "altitudeAccuracy", "heading", "speed")


async def _room_exists(runtime: Runtime, room: str) -> bool:
    assert runtime.bus is not None
    try:
        await events.room_detail(runtime.bus, room)
    except RpcError as exc:
        if exc.code == "not_found":
            return False
        raise fail("conference service unavailable", 503) from exc
    return True


def _not_found(message: str) -> ApiError:
    return ApiError(message, 404, {"message": message})


class LinkKindsController(Controller):
    path = "/link"
    tags = ["link"]

    # ---- GET /link/get/domain --------------------------------------------------------------------------
    @get("/get/domain")
    async def get_domain(self, request: Request, runtime: Runtime) -> Response[str]:
        """The next domain of the tenant's pool for a link (round robin, as the original), as plain text.

        The original passed no tenant and crashed; here the tenant is ``service`` or the link's own."""
        query = parse_query(request, DomainQuery)
        assert runtime.db is not None
        link_id = query.linkID.strip()
        async with runtime.db.transaction() as conn:
            service = domain.links.service_id(query.service) if query.service.strip() else None
            if service is None and link_id:
                service = await repository.links.link_service(conn, link_id)
            tenant = await repository.tenants.get_tenant(conn, service) if service is not None else None
            pool = domain.links.domain_pool(tenant, query.type or "video")
            if not pool:
                raise ApiError("Invalid service", 404, "Invalid service")
            index, chosen = domain.links.next_domain(pool, await repository.links.previous_domain_index(conn, link_id))
            if link_id and await repository.links.set_domain_index(conn, link_id, index):
                await events.link_fields_changed(conn, link_id, {"domainIndex": index})
        return Response(chosen, media_type="text/html")

    # ---- POST /link/create/hls -------------------------------------------------------------------------
    @post("/create/hls", status_code=200, opt=compat.opens("writes"))
    async def create_hls(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """A link to a room's HLS recording (agent token required; the original sent no SMS for it)."""
        runtime.require_agent_token_unless_compat(request)
        body = await parse_body(request, HlsBody)
        assert runtime.db is not None
        room = body.room.strip()
        if not room:
            raise fail("Invalid parameter: room")
        service = domain.links.service_id(body.service)
        async with runtime.db.connection() as conn:
            tenant = await repository.tenants.get_tenant(conn, service)
        if tenant is None:
            raise fail("Invalid service")
        if not await _room_exists(runtime, room):
            raise fail("Invalid room")
        try:
            record_id = int(str(body.recordId)) if body.recordId is not None else 0
        except ValueError:
            record_id = 0
        record_id = record_id if 0 <= record_id <= 2_147_483_647 else 0
        now = now_local()
        expires = now + parse_lifetime(runtime.settings.room_day_default_timeout)
        async with runtime.db.transaction() as conn:
            link_id, row_id = await repository.links.insert_link(
                conn,
                runtime.settings.custom_charset,
                {
                    "share": 0,
                    "mobile": body.mobile,
                    "room": room,
                    "recordId": record_id,
                    "crmSender": body.agentUsername,
                    "userType": "user",
                    "linkType": "hls",
                    "userName": body.mobile,
                    "service": service,
                    "dtmCreated": now,
                    "dtmExpired": expires,
                    "userAgent": request.headers.get("user-agent", ""),
                },
            )
            await events.link_created(
                conn,
                LinkCreated(
                    linkID=link_id,
                    linkRowId=row_id,
                    room=room,
                    linkType="hls",
                    userType="user",
                    userName=body.mobile,
                    mobile=body.mobile,
                    service=service,
                    roomCreated=False,
                    crmSender=body.agentUsername,
                    recordId=record_id,
                    share=0,
                    oneTimeLink=0,
                    dtmCreated=now.strftime("%Y-%m-%d %H:%M:%S"),
                    dtmExpired=expires.strftime("%Y-%m-%d %H:%M:%S"),
                    userAgent=request.headers.get("user-agent", ""),
                ),
            )
        return {
            "linkID": link_id,
            "isAdmin": 0,
            "requireJoinPermission": 0,
            "userName": body.mobile,
            "dtmExpired": expires.strftime("%Y-%m-%d %H:%M:%S"),
        }

    # ---- POST /link/cartracking ------------------------------------------------------------------------
    @post("/cartracking", status_code=200, opt=compat.opens("writes"))
    async def car_tracking(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """A tracking link for a car (``agentCar``: earlier ones of the room are disabled) or a user
        (``userTracking``), with its SMS. The original was open: anybody could make links and send SMS to any
        number; the agent console's bearer token is required here."""
        runtime.require_agent_token_unless_compat(request)
        body = await parse_body(request, CarTrackingBody)
        assert runtime.db is not None
        if body.carRegisNumber is None or not body.carRegisNumber.strip():
            raise _not_found("Invalid carRegisNumber")
        if body.service is None:
            raise _not_found("Invalid service")
        if body.mobile is None or not domain.sms.valid_mobile(body.mobile):
            raise _not_found("Invalid mobile")
        room = (body.room or "").strip()
        if not room:
            raise _not_found("Invalid room")
        service = domain.links.service_id(body.service)
        async with runtime.db.connection() as conn:
            tenant = await repository.tenants.get_tenant(conn, service)
        pool = domain.links.domain_pool(tenant, "video")
        if tenant is None or not pool:
            raise _not_found("Invalid service")
        if not await _room_exists(runtime, room):
            raise _not_found("Invalid room")
        if body.linkType not in ("userTracking", "agentCar"):
            raise _not_found("Invalid link type")
        now = now_local()
        expires = now + parse_lifetime(runtime.settings.room_day_default_timeout)
        sms_key = None
        async with runtime.db.transaction() as conn:
            if body.linkType == "agentCar":
                for disabled in await repository.links.disable_links_of_type(conn, room, "agentCar"):
                    await events.link_fields_changed(conn, disabled, {"enabled": 0})
            link_id, row_id = await repository.links.insert_link(
                conn,
                runtime.settings.custom_charset,
                {
                    "mobile": body.mobile,
                    "room": room,
                    "userType": "user",
                    "linkType": body.linkType,
                    "userName": body.carRegisNumber,
                    "service": service,
                    "dtmCreated": now,
                    "dtmExpired": expires,
                    "userAgent": request.headers.get("user-agent", ""),
                },
            )
            index, chosen = domain.links.next_domain(pool, await repository.links.previous_domain_index(conn, link_id))
            await repository.links.set_domain_index(conn, link_id, index)
            await events.link_fields_changed(conn, link_id, {"domainIndex": index})
            url = f"{chosen}/tracking/{link_id}"
            await events.link_created(
                conn,
                LinkCreated(
                    linkID=link_id,
                    linkRowId=row_id,
                    room=room,
                    linkType=body.linkType,
                    userType="user",
                    userName=body.carRegisNumber,
                    mobile=body.mobile,
                    service=service,
                    roomCreated=False,
                    crmSender="",
                    recordId=0,
                    share=0,
                    oneTimeLink=0,
                    dtmCreated=now.strftime("%Y-%m-%d %H:%M:%S"),
                    dtmExpired=expires.strftime("%Y-%m-%d %H:%M:%S"),
                    userAgent=request.headers.get("user-agent", ""),
                ),
            )
            # The original's text carries the bare domain; the link's own URL is more useful to the receiver.
            text = domain.sms.tracking_sms_text(body.linkType, body.carRegisNumber, url)
            sms_key = await sms.record(
                conn,
                domain.sms.SmsMessage(sender=(tenant.get("smsSenderName") or ""), mobile=body.mobile, text=text),
                enabled=runtime.settings.sms_enable,
                link_id=link_id,
                room=room,
                kind="tracking",
            )
        if sms_key is not None:
            await sms.enqueue(runtime, sms_key)
        return {"status": "OK", "data": {"linkID": link_id, "room": room, "domain": url}}

    # ---- POST /link/multilatlng/send -------------------------------------------------------------------
    @post("/multilatlng/send", status_code=200)
    async def multi_latlng(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """The patient position picked on the map: stored on the link, logged, published; answers the emit."""
        body = await parse_body(request, MultiLatLngBody)
        assert runtime.db is not None
        current = body.currentLocation
        pick = body.pickLocation
        emit: dict[str, Any] = {"linkID": body.linkID, "service": 2, "userType": body.userType, "room": body.room}
        for key in _MEASURES:
            emit[key] = (getattr(current, key) if current else None) or 0
        emit["currentLocation"] = msgspec.to_builtins(current) if current else None
        emit["pickLocation"] = msgspec.to_builtins(pick) if pick else None
        emit["timestamp"] = int(time.time() * 1000)
        async with runtime.db.transaction() as conn:
            row = await repository.links.link_row(conn, body.linkID)
            if row is None:
                raise ApiError("Failed to update location", 404, {"error": "Failed to update location"})
            await repository.links.update_patient_position(
                conn, body.linkID, pick.latitude if pick else None, pick.longitude if pick else None
            )
            await repository.usage.add_usage(
                conn,
                status="MultiLatLng",
                link_id=body.linkID,
                room=body.room,
                user_type=body.userType,
                latitude=emit["latitude"],
                longitude=emit["longitude"],
                data=emit,
            )
            await events.link_multi_latlng(
                conn, LinkMultiLatLng(linkID=body.linkID, room=body.room or row["room"], emit=emit)
            )
        return emit

"""Tenants (`services` rows): GET /service, GET /service/get, PUT /service/update."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, put

from link import domain, repository
from servicekit import compat
from servicekit.web import ApiError, Runtime, parse_body, parse_query

ServiceId = Annotated[int, msgspec.Meta(ge=1, le=domain.links.MAX_SERVICE_ID)]
Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180)]


Text11Sender = Annotated[str, msgspec.Meta(max_length=11, pattern=r"^[A-Za-z0-9 ._-]*$")]
Text50 = Annotated[str, msgspec.Meta(max_length=50)]
Text100 = Annotated[str, msgspec.Meta(max_length=100)]
Text200 = Annotated[str, msgspec.Meta(max_length=200)]
Domains = Annotated[str, msgspec.Meta(max_length=2000)]
LogoFile = Annotated[str, msgspec.Meta(max_length=200, pattern=r"^[A-Za-z0-9._-]*$")]
Colour = Annotated[str, msgspec.Meta(max_length=30, pattern=r"^(#[0-9A-Fa-f]{3,8}|[A-Za-z]{0,30})$")]


class ServiceQuery(msgspec.Struct, kw_only=True):
    service: str = ""


class RoomQuery(msgspec.Struct, kw_only=True):
    room: str = ""


class UpdateServiceBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    service: ServiceId | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    name: Text200 | None = None
    webTitle: Text100 | None = None
    prefixHLSRecordVideoSMS: Text50 | None = None
    prefixTextVideoSMS: Text50 | None = None
    prefixTextLocationSMS: Text50 | None = None
    domainsVideo: Domains | None = None
    domainsLocation: Domains | None = None
    smsSenderName: Text11Sender | None = None
    logo: LogoFile | None = None
    titleColor: Colour | None = None


def _public(row: dict[str, Any], api_url: str) -> dict[str, Any]:
    """A tenant as the original answered it: the logo as a URL under API_URL (or "")."""
    tenant = domain.rows.plain(row)
    logo = (row.get("logo") or "").strip()
    tenant["logo"] = f"{api_url}/logo/{logo}" if logo else ""
    return tenant


def _service_number(raw: str) -> int | None:
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    return value if value <= domain.links.MAX_SERVICE_ID else None


class TenantController(Controller):
    path = "/service"
    tags = ["tenants"]

    @get("/")
    async def get_service(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """GET /service?service=: a tenant's public fields; unknown -> 404 text ``Invalid service``."""
        query = parse_query(request, ServiceQuery)
        assert runtime.db is not None
        service = _service_number(query.service)
        row = None
        if service is not None:
            async with runtime.db.connection() as conn:
                row = await repository.tenants.tenant_public(conn, service)
        if row is None:
            raise ApiError("Invalid service", 404, "Invalid service")
        return _public(row, runtime.settings.api_url)

    @get("/get")
    async def get_by_room(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """GET /service/get?room=: the tenant of a room (from the room's links)."""
        query = parse_query(request, RoomQuery)
        assert runtime.db is not None
        room = query.room.strip()
        if not room:
            raise ApiError("Room parameter is required", 400, {"error": "Room parameter is required"})
        service = None
        if len(room) <= 50:
            async with runtime.db.connection() as conn:
                service = await repository.links.room_service(conn, room)
        if not service:
            message = "Room not found or has no associated service"
            raise ApiError(message, 404, {"error": message})
        async with runtime.db.connection() as conn:
            row = await repository.tenants.tenant_public(conn, service)
        if row is None:
            raise ApiError("Service not found", 404, {"error": "Service not found"})
        return _public(row, runtime.settings.api_url)

    @put("/update", status_code=200, opt=compat.opens("writes"))
    async def update(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """PUT /service/update (agent token): name and position, and the other tenant settings when given."""
        runtime.require_agent_token_unless_compat(request)
        body = await parse_body(request, UpdateServiceBody)
        assert runtime.db is not None
        if body.service is None or body.latitude is None or body.longitude is None:
            message = "Service and location parameters are required"
            raise ApiError(message, 400, {"error": message})
        values = {
            name: getattr(body, name)
            for name in repository.tenants.TENANT_EDITABLE
            if getattr(body, name, None) is not None
        }
        for column in ("domainsVideo", "domainsLocation"):
            if column in values and not domain.links.valid_domains(values[column]):
                message = f"Invalid parameter: {column} must be comma-separated http(s) URLs"
                raise ApiError(message, 400, {"error": message})
        async with runtime.db.transaction() as conn:
            found = await repository.tenants.update_tenant(conn, body.service, values)
        if not found:
            raise ApiError("Service not found", 404, {"error": "Service not found"})
        return {"message": "Service updated successfully"}

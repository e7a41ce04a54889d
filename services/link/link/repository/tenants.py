"""SQL of the tenants (``services``): what a link of a tenant needs, its detail for telemetry, its public fields
and its editable ones."""

from __future__ import annotations

from typing import Any

from servicekit.db import Connection, Database


async def get_tenant(conn: Connection, service: int) -> dict[str, Any] | None:
    return await conn.fetch_one(
        "SELECT id, prefixTextVideoSMS, prefixTextLocationSMS, prefixHLSRecordVideoSMS, domainsVideo, "
        "domainsLocation, smsSenderName FROM services WHERE id = %s",
        (service,),
    )


async def tenant_detail(db: Database, service: int) -> dict[str, Any] | None:
    """A tenant's id, name and position (RPC_TENANT_DETAIL)."""
    return await db.fetch_one("SELECT id, name, latitude, longitude FROM services WHERE id = %s", (service,))


TENANT_PUBLIC_COLUMNS = "id AS serviceId, name, webTitle, logo, titleColor, latitude, longitude"


async def tenant_public(conn: Connection, service: int) -> dict[str, Any] | None:
    return await conn.fetch_one(
        f"SELECT {TENANT_PUBLIC_COLUMNS} FROM services WHERE id = %s LIMIT 1",  # noqa: S608 - constant columns
        (service,),
    )


TENANT_EDITABLE = (
    "name", "webTitle", "prefixHLSRecordVideoSMS", "prefixTextVideoSMS", "prefixTextLocationSMS", "domainsVideo",
    "domainsLocation", "smsSenderName", "logo", "titleColor", "latitude", "longitude",
)  # fmt: skip


async def update_tenant(conn: Connection, service: int, values: dict[str, Any]) -> bool:
    """Set the given editable columns of a tenant; False when the tenant does not exist."""
    row = await conn.fetch_one("SELECT id FROM services WHERE id = %s FOR UPDATE", (service,))
    if row is None:
        return False
    columns = [name for name in TENANT_EDITABLE if name in values]
    if columns:
        assignments = ", ".join(f"{name} = %s" for name in columns)  # names from the constant tuple only
        await conn.execute(
            f"UPDATE services SET {assignments} WHERE id = %s",  # noqa: S608 - constant column names
            (*[values[name] for name in columns], service),
        )
    return True

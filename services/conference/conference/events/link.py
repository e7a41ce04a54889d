"""What conference asks link over NATS request/reply (``contracts.link``); each raises ``RpcError`` when link does
not answer or refuses, and the caller decides what that means for its reply."""

from __future__ import annotations

from typing import Any

from contracts.link import RPC_LINK_ROOM, RPC_LINK_SERVICE_EXISTS, LinkRoomQuery, ServiceQuery
from servicekit.bus import Bus

LINK_TIMEOUT = 3.0


async def service_exists(bus: Bus, service: int) -> bool:
    """Whether link's service directory has ``service`` (POST /case/create)."""
    return bool(await bus.request(RPC_LINK_SERVICE_EXISTS, ServiceQuery(service=service), timeout=LINK_TIMEOUT))


async def link_room(bus: Bus, link_id: str) -> Any:
    """The link's reply to RPC_LINK_ROOM (its ``room`` among others; POST /user/joingenerate)."""
    return await bus.request(RPC_LINK_ROOM, LinkRoomQuery(linkID=link_id), timeout=LINK_TIMEOUT)

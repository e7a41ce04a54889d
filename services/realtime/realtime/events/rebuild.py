"""Rebuilding read models (servicekit.rebuild), realtime's part: ``rpc.realtime.rebuild``.

``namespace_registry``: the Redis registry of dynamic namespaces (realtime.repository.Registry), filled from the
owners' snapshots as the events fill it: ``/{room}`` for every room that takes socket connections now (conference's
RoomState.socketLive, what RPC_ROOM_SOCKET_LIVE answers) and ``/data/{linkID}`` for every link not expired
(link's LinkState.live; asked of link as LinkSnapshot.LIVE_LINKS, only those). Names are only added (a set: a
second run changes nothing); a name that should not be there any more is removed by its owner's event (a room
closed), as always.
"""

from __future__ import annotations

import asyncio

import msgspec

from contracts.conference import RPC_CONFERENCE_SNAPSHOT, ConferenceSnapshot
from contracts.link import RPC_LINK_SNAPSHOT, LinkSnapshot, LiveLink
from realtime.domain import data_namespace, room_namespace
from realtime.repository import Registry
from servicekit import rebuild
from servicekit.bus import RpcError
from servicekit.web import Runtime


class RoomLive(msgspec.Struct, kw_only=True):
    """What the registry needs of a RoomState (the rest of the row is not converted)."""

    room: str
    socketLive: bool = False


class LinkLive(msgspec.Struct, kw_only=True):
    """What the registry needs of a LinkState."""

    linkID: str | None = None  # None: a link without one (no namespace)
    live: bool = False


async def rebuild_registry(runtime: Runtime) -> int:
    """Rooms and links read side by side (two owners): each page's names added in one command."""
    assert runtime.bus is not None and runtime.redis is not None
    bus, registry = runtime.bus, Registry(runtime.redis)

    async def rooms() -> int:
        count = 0
        async for _version, page in rebuild.pages(bus, RPC_CONFERENCE_SNAPSHOT, ConferenceSnapshot.ROOMS, RoomLive):
            names = [name for room in page if room.socketLive and (name := room_namespace(room.room))]
            await registry.add(*names)
            count += len(names)
        return count

    async def links(entity: str, row_type: type[LiveLink | LinkLive]) -> int:
        count = 0
        async for _version, page in rebuild.pages(bus, RPC_LINK_SNAPSHOT, entity, row_type):
            names = [
                name
                for link in page
                if link.linkID and getattr(link, "live", True) and (name := data_namespace(link.linkID))
            ]
            await registry.add(*names)
            count += len(names)
        return count

    async def live_links() -> int:
        try:
            return await links(LinkSnapshot.LIVE_LINKS, LiveLink)
        except RpcError as exc:  # a link that does not page live links yet (an older replica): every link, filtered
            if exc.code != "not_found":
                raise
            return await links(LinkSnapshot.LINKS, LinkLive)

    return sum(await asyncio.gather(rooms(), live_links()))


async def serve(runtime: Runtime) -> None:
    assert runtime.bus is not None
    await rebuild.serve_rebuild(runtime.bus, {"namespace_registry": lambda: rebuild_registry(runtime)})

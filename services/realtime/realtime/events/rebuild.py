"""Rebuilding read models (servicekit.rebuild), realtime's part: ``rpc.realtime.rebuild``.

``namespace_registry``: the Redis registry of dynamic namespaces (realtime.repository.Registry), filled from the
owners' snapshots as the events fill it: ``/{room}`` for every room that takes socket connections now (conference's
RoomState.socketLive, what RPC_ROOM_SOCKET_LIVE answers) and ``/data/{linkID}`` for every link not expired
(link's LinkState.live). Names are only added (a set: a second run changes nothing); a name that should not be
there any more is removed by its owner's event (a room closed), as always.
"""

from __future__ import annotations

from contracts.conference import RPC_CONFERENCE_SNAPSHOT, ConferenceSnapshot, RoomState
from contracts.link import RPC_LINK_SNAPSHOT, LinkSnapshot, LinkState
from realtime.domain import data_namespace, room_namespace
from realtime.repository import Registry
from servicekit import rebuild
from servicekit.web import Runtime


async def rebuild_registry(runtime: Runtime) -> int:
    assert runtime.bus is not None and runtime.redis is not None
    registry = Registry(runtime.redis)
    count = 0
    async for _version, rooms in rebuild.pages(
        runtime.bus, RPC_CONFERENCE_SNAPSHOT, ConferenceSnapshot.ROOMS, RoomState
    ):
        names = [name for room in rooms if room.socketLive and (name := room_namespace(room.room))]
        await registry.add(*names)
        count += len(names)
    async for _version, links in rebuild.pages(runtime.bus, RPC_LINK_SNAPSHOT, LinkSnapshot.LINKS, LinkState):
        names = [name for link in links if link.live and (name := data_namespace(link.linkID))]
        await registry.add(*names)
        count += len(names)
    return count


async def serve(runtime: Runtime) -> None:
    assert runtime.bus is not None
    await rebuild.serve_rebuild(runtime.bus, {"namespace_registry": lambda: rebuild_registry(runtime)})

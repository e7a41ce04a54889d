"""The periodic jobs (servicekit.schedule: once per slot across replicas).

* ``auto-close-rooms`` (every 30 minutes, env ``AUTO_CLOSE_ROOM``; ``false`` or empty turns it off as in the
  original): open rooms whose ``dtmExpired`` has passed are closed in the database (ROOM_CLOSED + detail, so
  realtime drops the ``/{room}`` namespace and link's read model follows) and deleted on their LiveKit node.
  Idempotent: a room is closed by the transaction that still finds it open and expired; a second run finds
  nothing. ``GET /room/checkexpired`` runs the same sweep on demand.
* ``livekit-health`` (every 10 minutes): ``node_livekit.lastHealthCheck`` = now for every node whose ListRooms
  answers; a node that does not answer keeps its old value (and stops being preferred for new rooms).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from livekit import api

from conference import repository
from conference.clients import LiveKitError, LiveKitNodes, LiveKitUnavailable
from conference.events.rooms import publish_room_detail
from contracts.conference import ROOM_CLOSED
from servicekit.clock import now_local
from servicekit.db import Database
from servicekit.schedule import Scheduler

log = logging.getLogger(__name__)

AUTO_CLOSE_EVERY = timedelta(minutes=30)
HEALTH_EVERY = timedelta(minutes=10)


def auto_close_enabled(value: str) -> bool:
    """The original's switch: the strings ``false`` and ``""`` disable the sweep, anything else enables it."""
    return value.strip().lower() not in ("false", "")


async def delete_livekit_room(nodes: LiveKitNodes, room: str) -> bool:
    """DeleteRoom on the room's node; True when deleted or already gone. Never raises."""
    node = await nodes.node_of_room(room)
    try:
        await nodes.call(node, "delete_room", api.DeleteRoomRequest(room=room))
    except LiveKitError as exc:
        return exc.code == "not_found"
    except LiveKitUnavailable as exc:
        log.warning("LiveKit DeleteRoom failed", extra={"room": room, "node": node.name, "error": str(exc)})
        return False
    return True


async def close_expired_rooms(db: Database, nodes: LiveKitNodes) -> list[str]:
    """The expiry sweep; returns the rooms this run closed."""
    closed: list[str] = []
    now = now_local()
    for room in await repository.rooms.expired_open_rooms(db, now):
        async with db.transaction() as conn:
            if not await repository.rooms.close_expired_room(conn, room, now):
                continue  # closed meanwhile (another replica, an HTTP close)
            await publish_room_detail(conn, nodes, ROOM_CLOSED, room, closed_by="expired")
        closed.append(room)
        await delete_livekit_room(nodes, room)
    # Namespaces GET /case/get reopened for a day on closed rooms (the original's socket sweep dropped them).
    for room in await repository.rooms.expired_reopened_rooms(db, now):
        async with db.transaction() as conn:
            if await repository.rooms.drop_reopened_socket(conn, room, now):
                await publish_room_detail(conn, nodes, ROOM_CLOSED, room, closed_by="expired")
    if closed:
        log.info("expired rooms closed", extra={"count": len(closed)})
    return closed


async def check_node_health(db: Database, nodes: LiveKitNodes) -> dict[int, bool]:
    """Probe every node_livekit row; returns {node id: healthy}."""
    result: dict[int, bool] = {}
    for node in await nodes.all_nodes():
        if node.id is None:
            continue
        healthy = await nodes.is_healthy(node)
        result[node.id] = healthy
        if healthy:
            await repository.nodes.mark_node_healthy(db, node.id, now_local())
        else:
            log.warning("LiveKit node unhealthy", extra={"node": node.name})
    return result


def schedule(scheduler: Scheduler, db: Database, nodes: LiveKitNodes, auto_close_room: str) -> None:
    """Register the jobs on ``scheduler`` (the caller starts and stops it)."""

    async def auto_close() -> None:
        if auto_close_enabled(auto_close_room):
            await close_expired_rooms(db, nodes)

    async def health() -> None:
        await check_node_health(db, nodes)

    scheduler.every("auto-close-rooms", AUTO_CLOSE_EVERY, auto_close)
    scheduler.every("livekit-health", HEALTH_EVERY, health)

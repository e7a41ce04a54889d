"""The ``/mobile`` namespace of the ambulance crew app (realtime.md §7) and the room ``carTracking`` event (§4.2).

Telemetry owns car_track: realtime asks it for the task (``connection`` payload), hands it the crew's
positions, and emits what telemetry publishes. Task sockets join the socket.io room ``task:<uid>`` so pushes
reach them by uid on every instance (the original matched ``query.id`` numerically and missed most of them).
"""

from __future__ import annotations

import logging
from typing import Any

from contracts.telemetry import (
    RPC_CAR_TRACKING,
    RPC_TASK_DETAIL,
    RPC_TASK_LOCATION,
    CarTracking,
    TaskLocation,
    TaskQuery,
)
from realtime import domain
from realtime.domain import NamespaceInfo, SocketUser
from realtime.repository import AgentCars
from realtime.sockets.emitter import Emitter
from servicekit.bus import RpcError
from servicekit.web import Runtime

log = logging.getLogger("realtime.sockets.mobile")

MOBILE = "/mobile"
RPC_TIMEOUT = 3.0


class MobileEvents:
    def __init__(self, runtime: Runtime, sockets: Emitter) -> None:
        assert runtime.redis is not None
        self.runtime = runtime
        self.sockets = sockets
        self.agent_cars = AgentCars(runtime.redis)

    async def _request(self, subject: str, payload: Any) -> Any:
        assert self.runtime.bus is not None
        return await self.runtime.bus.request(subject, payload, timeout=RPC_TIMEOUT)

    async def _to(self, sid: str, *emits: tuple[str, Any]) -> None:
        for event, data in emits:
            await self.sockets.emit(event, data, MOBILE, to=sid)

    # ---- /mobile --------------------------------------------------------------------------------------------
    async def connected(self, sid: str, uid: str | None) -> None:
        """``message``/``status``/``connection`` for a known task; ``status`` failed + ``message`` invalid task
        id and a disconnect otherwise (without the original's emits after the disconnect)."""
        detail: Any = None
        if uid:
            try:
                detail = await self._request(RPC_TASK_DETAIL, TaskQuery(uid=uid))
            except RpcError as exc:
                if exc.code != "not_found":
                    log.warning("task detail unavailable", extra={"uid": uid, "code": exc.code})
                detail = None
        if not isinstance(detail, dict):
            await self._to(sid, ("status", dict(domain.MOBILE_FAILED)), ("message", dict(domain.MOBILE_INVALID_TASK)))
            await self.sockets.disconnect(sid, namespace=MOBILE)
            return
        assert uid is not None
        await self.sockets.enter_room(sid, domain.task_room(uid), namespace=MOBILE)
        await self.sockets.save_session(sid, {"task": uid}, namespace=MOBILE)
        await self._to(
            sid,
            ("message", {"message": "connection success"}),
            ("status", {"status": "connection-success"}),
            ("connection", detail),
        )

    async def handle(self, event: str, sid: str, data: Any) -> None:
        if event != "location":
            return  # ``status`` was accepted and ignored by the original
        try:
            session = await self.sockets.get_session(sid, namespace=MOBILE)
        except KeyError:
            return
        uid = session.get("task")
        position = domain.mobile_location(data)
        if not uid or position is None:
            return  # no task (refused connection) or an unparseable payload: ignored like the original
        try:
            await self._request(RPC_TASK_LOCATION, TaskLocation(uid=uid, **position))
        except RpcError as exc:
            log.info("task location refused", extra={"uid": uid, "code": exc.code})
            return
        await self._to(sid, ("message", {"message": "received location"}))

    # ---- pushes from telemetry's events ---------------------------------------------------------------------
    async def task_status(self, uid: str, status: str, destination: Any) -> None:
        room = domain.task_room(uid)
        await self.sockets.emit("status", {"status": status}, MOBILE, to=room)
        await self.sockets.emit("message", {"message": "task status update"}, MOBILE, to=room)
        if isinstance(destination, dict):
            await self.task_destination(uid, destination)

    async def task_destination(self, uid: str, position: dict[str, Any]) -> None:
        room = domain.task_room(uid)
        await self.sockets.emit("destination", position, MOBILE, to=room)
        await self.sockets.emit("message", {"message": "destination update"}, MOBILE, to=room)

    # ---- room namespace ``carTracking`` ---------------------------------------------------------------------
    async def car_tracking(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        """``agentCar`` (the room's last car payload, kept in Redis), ``destination`` on ``getDestination``, and
        the position stored by telemetry."""
        if not isinstance(data, dict):
            return
        status = data.get("status")
        if status == "initial":
            await self.sockets.emit("agentCar", await self.agent_cars.last(info.name), info.name)
        else:
            await self.agent_cars.save(info.name, data)
            await self.sockets.emit("agentCar", data, info.name)
        tracking = domain.car_tracking(info.key, data)
        if tracking is None:
            return  # no userName: the original skipped the write too
        try:
            reply = await self._request(RPC_CAR_TRACKING, CarTracking(**tracking))
        except RpcError as exc:
            log.info("car tracking refused", extra={"room": info.key, "code": exc.code})
            return
        destination = reply.get("destination") if isinstance(reply, dict) else None
        if status == "getDestination" and isinstance(destination, dict):
            await self.sockets.emit("destination", destination, info.name)

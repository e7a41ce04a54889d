"""``/api/realtime/*``: read-only views of the rooms, their presence and chat.

``/api/realtime/{rooms,chat,presence}`` are the paths the original forwarded to a separate realtime service
(REALTIME_SERVICE_URL, prefix stripped; 503 ``{"success": false, "message": "Real-time service unavailable"}``
when it was down). That service is not part of the contract, so these are read-only views of what this service
knows, answered in that proxy's ``{"success": ...}`` envelope, for agent tokens only (room names and who is
online are patient data), or for anybody while COMPAT_OPEN_DASHBOARDS is on (the original forwarded them unchecked).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from contracts.conference import RPC_CHAT_HISTORY, ChatHistoryQuery
from realtime.domain import classify, room_namespace
from realtime.repository import Instances, Registry
from servicekit import compat
from servicekit.bus import RpcError
from servicekit.tokens import TokenRejected
from servicekit.web import ApiError, Runtime


def _failure(message: str, status_code: int) -> ApiError:
    return ApiError(message, status_code, {"success": False, "message": message})


def _agent_only(runtime: Runtime, request: Request) -> None:
    """An agent token, or (COMPAT_OPEN_DASHBOARDS) none: the views are then open, the use logged."""
    try:
        claims = runtime.require_token(request)  # the original's FAIL answer without a valid token
    except TokenRejected as exc:
        if runtime.compat_allows(request, compat.rejection(exc)):
            return
        raise
    video = claims.get("video")
    if isinstance(video, dict) and video.get("room"):  # a participant token of one room is not an agent
        if not runtime.compat_allows(request, "not an agent token"):
            raise _failure("Forbidden", 403)


def _room_namespace(room: str) -> str:
    namespace = room_namespace(room)
    info = classify(namespace) if namespace else None
    if info is None or info.kind != "room":
        raise _failure("Invalid room", 400)
    return info.name


class RealtimeApiController(Controller):
    path = "/api/realtime"
    tags = ["realtime"]

    @get("/rooms/{room:str}", opt=compat.opens("dashboards"))
    async def room(self, room: str, request: Request, runtime: Runtime) -> dict[str, Any]:
        """Whether ``/{room}`` takes connections and how many room sockets it has on the live instances."""
        _agent_only(runtime, request)
        namespace = _room_namespace(room)
        assert runtime.redis is not None
        sockets = await Instances(runtime.redis, "").sockets_in(namespace)
        registered = await Registry(runtime.redis).contains(namespace)
        return {"success": True, "room": room, "namespace": namespace, "open": registered, "connections": len(sockets)}

    @get("/presence/{room:str}", opt=compat.opens("dashboards"))
    async def presence(self, room: str, request: Request, runtime: Runtime) -> dict[str, Any]:
        """The room sockets of ``/{room}`` on live instances: identity, userName, socketId."""
        _agent_only(runtime, request)
        namespace = _room_namespace(room)
        assert runtime.redis is not None
        sockets = await Instances(runtime.redis, "").sockets_in(namespace)
        users = [
            {"identity": s.get("identity"), "userName": s.get("userName"), "socketId": s["socketId"]}
            for s in sorted(sockets, key=lambda s: (str(s.get("identity")), s["socketId"]))
        ]
        return {"success": True, "room": room, "users": users}

    @get("/chat/{room:str}", opt=compat.opens("dashboards"))
    async def chat(self, room: str, request: Request, runtime: Runtime) -> dict[str, Any]:
        """The room's chat messages (conference's ``chat-history`` rows), oldest first."""
        _agent_only(runtime, request)
        _room_namespace(room)
        assert runtime.bus is not None
        try:
            rows = await runtime.bus.request(RPC_CHAT_HISTORY, ChatHistoryQuery(room=room), timeout=3.0)
        except RpcError as exc:
            raise _failure("Real-time service unavailable", 503) from exc
        return {"success": True, "room": room, "messages": rows or []}

"""The Socket.IO server: namespace validation at connect time and emits through the Redis manager."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qs

import socketio

from realtime.domain import (
    AUTH_ERROR,
    INVALID_NAMESPACE,
    NamespaceInfo,
    classify,
    connection_success,
    room_label,
    token_room_matches,
)
from realtime.repository import Registry
from servicekit.bus import RpcError
from servicekit.events import RPC_ROOM_DETAIL, RoomQuery
from servicekit.tokens import TokenRejected, bearer_token, verify_token
from servicekit.web import Runtime

log = logging.getLogger("realtime.sockets")

# One pub/sub channel shared by every realtime instance (python-socketio's manager protocol).
MANAGER_CHANNEL = "realtime-socketio"
# Pseudo room used to ask every instance to drop the local sockets of a namespace (room close).
_DISCONNECT_ALL = "\x00disconnect-all"


class RealtimeManager(socketio.AsyncRedisManager):
    """Redis manager that can also disconnect every socket of a namespace on all instances."""

    async def _handle_close_room(self, message: dict[str, Any]) -> None:
        if message.get("room") != _DISCONNECT_ALL:
            await super()._handle_close_room(message)
            return
        namespace = message.get("namespace") or "/"
        sids = [sid for sid, _ in self.get_participants(namespace, None)]
        for sid in sids:
            await self.server.disconnect(sid, namespace=namespace, ignore_queue=True)

    async def disconnect_namespace(self, namespace: str) -> None:
        await self.close_room(_DISCONNECT_ALL, namespace)


class RealtimeSockets:
    """Holds the python-socketio server and the runtime it needs once the service has started."""

    def __init__(self, redis_url: str) -> None:
        self.manager = RealtimeManager(redis_url, channel=MANAGER_CHANNEL)
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=self.manager,
            cors_allowed_origins="*",
            cors_credentials=True,
            ping_interval=25,
            ping_timeout=60,
            transports=["polling", "websocket"],
            namespaces="*",
            logger=False,
            engineio_logger=False,
        )
        self.runtime: Runtime | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sio.on("connect", self._on_connect, namespace="*")
        self.sio.on("disconnect", self._on_disconnect, namespace="*")

    # ---- lifecycle ------------------------------------------------------------------------------------------
    async def start(self, runtime: Runtime) -> None:
        self.runtime = runtime
        if not self.sio.manager_initialized:  # listen to other instances' emits right away
            self.sio.manager_initialized = True
            self.manager.initialize()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        thread = getattr(self.manager, "thread", None)
        if thread is not None:
            thread.cancel()
        redis = getattr(self.manager, "redis", None)
        if redis is not None:
            await redis.aclose()

    @property
    def registry(self) -> Registry:
        assert self.runtime is not None and self.runtime.redis is not None, "realtime not started"
        return Registry(self.runtime.redis)

    # ---- emits (reach the clients of every instance through Redis) -----------------------------------------
    async def emit(self, event: str, data: Any, namespace: str, to: str | None = None) -> None:
        await self.sio.emit(event, data, namespace=namespace, to=to)

    async def close_namespace(self, namespace: str) -> None:
        """Disconnect every socket of ``namespace`` on all instances (clients see "io server disconnect")."""
        await self.manager.disconnect_namespace(namespace)

    # ---- connection ---------------------------------------------------------------------------------------
    async def is_valid(self, namespace: str) -> NamespaceInfo | None:
        info = classify(namespace)
        if info is None:
            return None
        if info.kind == "static" or await self.registry.contains(namespace):
            return info
        return None

    async def _on_connect(self, namespace: str, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        info = await self.is_valid(namespace)
        if info is None:
            raise socketio.exceptions.ConnectionRefusedError(INVALID_NAMESPACE)
        if info.kind in ("room", "data"):
            self._authenticate(info, environ, auth)
        if info.name in ("/", "/queue", "/mobile", "/notification"):
            return
        self._spawn(self._greet(sid, info))

    def _authenticate(self, info: NamespaceInfo, environ: dict[str, Any], auth: Any) -> dict[str, Any]:
        """Room and data namespaces need a valid LiveKit token (``query.token`` like the original, or
        ``auth.token``); a room-bound token only opens its own room."""
        query = parse_qs(environ.get("QUERY_STRING", ""))
        raw = (query.get("token") or [None])[0]
        if not raw and isinstance(auth, dict) and isinstance(auth.get("token"), str):
            raw = auth["token"]
        assert self.runtime is not None
        try:
            claims = verify_token(bearer_token(raw), self.runtime.settings.livekit_api_secret)
        except TokenRejected as exc:
            raise socketio.exceptions.ConnectionRefusedError(AUTH_ERROR) from exc
        if info.kind == "room" and not token_room_matches(claims, info.key):
            raise socketio.exceptions.ConnectionRefusedError(AUTH_ERROR)
        return claims

    async def _greet(self, sid: str, info: NamespaceInfo) -> None:
        """``log`` then ``connection-success`` to the new socket (room row from conference when it has one)."""
        await asyncio.sleep(0)  # after the CONNECT packet has been queued
        await self.emit("log", {"message": "connection success"}, info.name, to=sid)
        room = room_label(info)
        detail = await self._room_detail(info.key) if info.kind == "room" else None
        await self.emit("connection-success", connection_success(room, detail), info.name, to=sid)

    async def _room_detail(self, room: str) -> dict[str, Any] | None:
        assert self.runtime is not None
        if self.runtime.bus is None:
            return None
        try:
            detail = await self.runtime.bus.request(RPC_ROOM_DETAIL, RoomQuery(room=room), timeout=1.5)
        except RpcError as exc:
            if exc.code != "not_found":
                log.warning("room detail unavailable", extra={"room": room, "code": exc.code})
            return None
        return detail if isinstance(detail, dict) else None

    async def _on_disconnect(self, namespace: str, sid: str, reason: Any = None) -> None:
        return None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

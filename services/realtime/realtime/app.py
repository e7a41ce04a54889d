"""Wiring of the realtime service: the Socket.IO server in front, Litestar (health, schema, HTTP) behind it.

Run with ``python -m servicekit.serve realtime.app:app``.
"""

from __future__ import annotations

from typing import Any

import socketio

from realtime.events import EventHandlers, rebuild
from realtime.routes import CONTROLLERS
from realtime.sockets.mobile import MobileEvents
from realtime.sockets.rooms import RoomEvents
from realtime.sockets.server import COMPAT_NAMESPACES, RealtimeSockets
from servicekit.cors import CorsMiddleware, CorsPolicy
from servicekit.settings import CommonSettings, load_settings
from servicekit.web import DrainMiddleware, Runtime, ServiceSpec, create_app


class RealtimeSettings(CommonSettings, kw_only=True):
    # Waiting-room requests are re-sent to the room's admins this often (ms), like the original's env var.
    join_room_repeat_delay: int = 5000


settings = load_settings(RealtimeSettings, service_name="realtime")
sockets = RealtimeSockets(settings.redis_dsn)


async def on_startup(runtime: Runtime) -> None:
    # The socket handlers get the server as their emitter; the server gets them registered (no import either way).
    mobile = MobileEvents(runtime, sockets)
    rooms = RoomEvents(runtime, sockets, settings.join_room_repeat_delay, car_tracking=mobile.car_tracking)
    sockets.register(rooms=rooms, mobile=mobile)
    rooms.start()
    await sockets.start(runtime)
    handlers = EventHandlers(runtime, sockets, mobile)
    runtime.extras["sockets"] = sockets
    runtime.extras["rooms"] = rooms
    runtime.extras["events"] = handlers
    handlers.start()
    await rebuild.serve(runtime)


async def on_scrape(runtime: Runtime) -> None:
    sockets.count_connections()


async def on_shutdown(runtime: Runtime) -> None:
    handlers = runtime.extras.get("events")
    if isinstance(handlers, EventHandlers):
        handlers.stop()
    rooms = runtime.extras.get("rooms")
    if isinstance(rooms, RoomEvents):
        await rooms.stop()
    await sockets.stop()


# No tables and nothing published: realtime consumes and asks; its state is in Redis.
http_app = create_app(
    ServiceSpec(
        settings, CONTROLLERS, uses_db=False, publishes_events=False, on_startup=on_startup, on_shutdown=on_shutdown,
        compat_extra={"dashboards": COMPAT_NAMESPACES}, on_scrape=on_scrape,
    )
)  # fmt: skip
socketio_app = socketio.ASGIApp(sockets.sio, other_asgi_app=http_app, socketio_path="socket.io")
# Litestar's routes get CORS inside create_app; the Socket.IO endpoint never reaches Litestar, so the same
# middleware (same setting) goes in front of it here, with python-socketio's own CORS off: one set of headers; and
# the drain's Connection: close before a shutdown (servicekit.web.DrainMiddleware), as on the other routes.
socketio_cors = DrainMiddleware(CorsMiddleware(socketio_app, CorsPolicy.parse(settings.cors_allowed_origins)))
# The original's router also forwarded /api/realtime/socket.io (a client configured with that path): same server.
PROXIED_SOCKETIO = "/api/realtime/socket.io/"


ENGINEIO_METHODS = ("GET", "POST", "OPTIONS")


async def _method_not_allowed(send: Any) -> None:
    body = b'{"status":"FAIL","message":"Method Not Allowed"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"allow", ", ".join(ENGINEIO_METHODS).encode())]  # fmt: skip
    await send({"type": "http.response.start", "status": 405, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] in ("http", "websocket"):
        path: str = scope["path"]
        if path.startswith(PROXIED_SOCKETIO):
            path = "/socket.io/" + path[len(PROXIED_SOCKETIO) :]
            scope = {**scope, "path": path, "raw_path": path.encode()}
        if path == "/socket.io" or path.startswith("/socket.io/"):  # what socketio.ASGIApp hands to Engine.IO
            if scope["type"] == "http" and scope["method"] not in ENGINEIO_METHODS:
                await _method_not_allowed(send)  # Engine.IO's own answer is a text 405 without Allow
                return
            await socketio_cors(scope, receive, send)
            return
    await socketio_app(scope, receive, send)

"""Wiring of the realtime service: the Socket.IO server in front, Litestar (health, schema, HTTP) behind it.

Run with ``granian --interface asgi realtime.app:app``.
"""

from __future__ import annotations

from typing import Any

import socketio

from realtime.api import NamespaceController, RealtimeApiController
from realtime.events import EventHandlers
from realtime.sockets import COMPAT_NAMESPACES, RealtimeSockets
from servicekit.settings import CommonSettings, load_settings
from servicekit.web import Runtime, ServiceSpec, create_app


class RealtimeSettings(CommonSettings, kw_only=True):
    # Waiting-room requests are re-sent to the room's admins this often (ms), like the original's env var.
    join_room_repeat_delay: int = 5000


settings = load_settings(RealtimeSettings, service_name="realtime")
sockets = RealtimeSockets(settings.redis_dsn)


async def on_startup(runtime: Runtime) -> None:
    await sockets.start(runtime, settings.join_room_repeat_delay)
    handlers = EventHandlers(runtime, sockets)
    runtime.extras["sockets"] = sockets
    runtime.extras["events"] = handlers
    handlers.start()


async def on_shutdown(runtime: Runtime) -> None:
    handlers = runtime.extras.get("events")
    if isinstance(handlers, EventHandlers):
        handlers.stop()
    await sockets.stop()


http_app = create_app(
    ServiceSpec(
        settings=settings,
        route_handlers=[NamespaceController, RealtimeApiController],
        uses_db=False,
        publishes_events=False,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        title="realtime",
        compat_extra={"dashboards": COMPAT_NAMESPACES},
    )
)
socketio_app = socketio.ASGIApp(sockets.sio, other_asgi_app=http_app, socketio_path="socket.io")
# The original's router also forwarded /api/realtime/socket.io (a client configured with that path): same server.
PROXIED_SOCKETIO = "/api/realtime/socket.io/"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] in ("http", "websocket") and scope["path"].startswith(PROXIED_SOCKETIO):
        path = "/socket.io/" + scope["path"][len(PROXIED_SOCKETIO) :]
        scope = {**scope, "path": path, "raw_path": path.encode()}
    await socketio_app(scope, receive, send)

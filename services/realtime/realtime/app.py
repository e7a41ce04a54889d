"""Wiring of the realtime service: the Socket.IO server in front, Litestar (health, schema, HTTP) behind it.

Run with ``granian --interface asgi realtime.app:app``.
"""

from __future__ import annotations

import socketio

from realtime.api import NamespaceController
from realtime.events import EventHandlers
from realtime.sockets import RealtimeSockets
from servicekit.settings import CommonSettings, load_settings
from servicekit.web import Runtime, ServiceSpec, create_app


class RealtimeSettings(CommonSettings, kw_only=True):
    pass


settings = load_settings(RealtimeSettings, service_name="realtime")
sockets = RealtimeSockets(settings.redis_dsn)


async def on_startup(runtime: Runtime) -> None:
    await sockets.start(runtime)
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
        route_handlers=[NamespaceController],
        uses_db=False,
        publishes_events=False,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        title="realtime",
    )
)
app = socketio.ASGIApp(sockets.sio, other_asgi_app=http_app, socketio_path="socket.io")

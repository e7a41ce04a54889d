"""What the socket event handlers (rooms, mobile, events) need of the Socket.IO server.

realtime.sockets.server implements it; realtime.app hands the server to the handlers, so they never import it.
"""

from __future__ import annotations

from typing import Any, Protocol


class Emitter(Protocol):
    async def emit(self, event: str, data: Any, namespace: str, to: str | None = None) -> None:
        """``event`` to ``namespace`` (or to one socket or socket.io room of it), on every instance."""

    async def close_namespace(self, namespace: str) -> None:
        """Disconnect every socket of ``namespace`` on all instances."""

    async def enter_room(self, sid: str, room: str, namespace: str) -> None: ...

    async def get_session(self, sid: str, namespace: str) -> dict[str, Any]:
        """The socket's session (the stored dict itself); KeyError when the socket is gone."""

    async def save_session(self, sid: str, session: dict[str, Any], namespace: str) -> None: ...

    async def disconnect(self, sid: str, namespace: str) -> None: ...

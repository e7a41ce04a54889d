"""GET /chat/history and GET /chat/notification (the original's chat.controller; messages are sent over
Socket.IO and stored through ``rpc.conference.chat.store``)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get

from conference import repository
from conference.domain import parse_id
from servicekit.web import ApiError, Runtime

ROOM_MAX = 255  # chat_message.room is tinytext


class ChatController(Controller):
    path = "/chat"
    tags = ["chat"]

    @get("/history")
    async def history(self, request: Request, runtime: Runtime) -> Response:
        """The room's messages, oldest first, as a bare array (``files`` decoded from its JSON text).
        ``room`` missing: 404 text ``Invalid room`` (the original's answer); over-long: 400 envelope."""
        room = request.query_params.get("room")
        if room is None:
            raise ApiError("Invalid room", 404, "Invalid room")
        if len(room) > ROOM_MAX:
            raise ApiError(f"room must be at most {ROOM_MAX} characters")
        assert runtime.db is not None
        return Response(await repository.chat.chat_history(runtime.db, room))

    @get("/notification")
    async def notification(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """``{"number": <rooms of the service with unread chat>, "caseList": [{"caseId": ..}, ...]}``; a
        missing, empty or non-numeric ``service`` counts nothing (the original's answer)."""
        service = parse_id(request.query_params.get("service") or "")
        if service is None:
            return {"number": 0, "caseList": []}
        assert runtime.db is not None
        return await repository.chat.unread_cases(runtime.db, service)

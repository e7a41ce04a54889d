"""HTTP controllers of the conference area (first slice: GET /room/detail)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get

from conference.domain import ROOM_NAME_MAX
from conference.events import Conference
from servicekit.web import Runtime, parse_query

INVALID_ROOM = {"status": "OK", "data": {"status": "invalid_room"}}  # the original's not-found answer


class RoomDetailQuery(msgspec.Struct, kw_only=True):
    room: Annotated[str, msgspec.Meta(min_length=1, max_length=ROOM_NAME_MAX)]


def conference_of(runtime: Runtime) -> Conference:
    return runtime.extras["conference"]


class RoomController(Controller):
    path = "/room"
    tags = ["room"]

    @get("/detail")
    async def detail(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """The room's row (the original getRoomDetail), or ``{"status":"OK","data":{"status":"invalid_room"}}``.
        A missing, empty or over-long ``room`` answers 400 ``{"status":"FAIL","message":...}``."""
        query = parse_query(request, RoomDetailQuery)
        detail = await conference_of(runtime).detail(query.room)
        if detail is None:
            return INVALID_ROOM
        return {"status": "OK", "data": detail}

"""HTTP controllers of /room/* (the original's room.controller) and GET /test.

Reply shapes are the original's. Unlike the original, every route that changes or deletes state requires the
LiveKit bearer token (``runtime.require_token``); LiveKit calls are bounded (a node that is down or hangs answers
503 ``{"status":"FAIL","message":...}`` within a few seconds, the database untouched).
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from livekit import api

from conference import domain, repository
from conference.clients import LiveKitError, LiveKitUnavailable
from conference.domain import ROOM_NAME_MAX, proto_to_json
from conference.events import jobs
from conference.events.participants import rename_user
from conference.events.rooms import Conference, change_case_room_status, change_room_type, close_room
from contracts.conference import ParticipantTokenRequest
from servicekit import compat
from servicekit.db import DatabaseError
from servicekit.tokens import TokenRejected, bearer_token, verify_token
from servicekit.web import ApiError, Runtime, fail, parse_body, parse_query

log = logging.getLogger(__name__)
INVALID_ROOM = {"status": "OK", "data": {"status": "invalid_room"}}  # the original's not-found answer

RoomName = Annotated[str, msgspec.Meta(min_length=1, max_length=ROOM_NAME_MAX)]
Identity = Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
UserName = Annotated[str, msgspec.Meta(max_length=100)]


class RoomDetailQuery(msgspec.Struct, kw_only=True):
    room: RoomName


class RoomBody(msgspec.Struct, kw_only=True):
    room: RoomName


class UpdateUserBody(msgspec.Struct, kw_only=True):
    room: RoomName
    identity: Identity
    userName: UserName


class UpdateTypeBody(msgspec.Struct, kw_only=True):
    room: RoomName | None = None
    roomType: Annotated[str, msgspec.Meta(min_length=1, max_length=10)] | None = None
    identity: Annotated[str, msgspec.Meta(max_length=50)] | None = None


class UpdateStatusBody(msgspec.Struct, kw_only=True):
    caseId: Annotated[int, msgspec.Meta(ge=0, le=2_147_483_647)] | None = None
    service: Annotated[int, msgspec.Meta(ge=0, le=2_147_483_647)] | None = None
    status: Annotated[str, msgspec.Meta(min_length=1, max_length=10)] | None = None


def conference_of(runtime: Runtime) -> Conference:
    return runtime.extras["conference"]


def unavailable(exc: LiveKitUnavailable) -> ApiError:
    """LiveKit is down or hangs: 503 (no answer in time / unreachable) in the original's FAIL envelope."""
    return fail(str(exc), 503)


def text(body: str, status_code: int = 200) -> Response[str]:
    return Response(body, status_code=status_code, media_type="text/html")


class PictureQuery(msgspec.Struct, kw_only=True):
    room: str | None = None


class RoomController(Controller):
    path = "/room"
    tags = ["room"]

    @get("/detail")
    async def detail(self, request: Request) -> dict[str, Any]:
        """The room's row (the original getRoomDetail), or ``{"status":"OK","data":{"status":"invalid_room"}}``.
        A missing, empty or over-long ``room`` answers 400 ``{"status":"FAIL","message":...}``."""
        # The hottest route: the runtime is read from the app state directly rather than injected (Litestar's
        # dependency resolution builds a State per request).
        query = parse_query(request, RoomDetailQuery)
        detail = await conference_of(request.app.state.runtime).detail(query.room)
        if detail is None:
            return INVALID_ROOM
        return {"status": "OK", "data": detail}

    @get("/listrooms")
    async def list_rooms(self, runtime: Runtime) -> Any:
        """LiveKit ListRooms of the node new rooms go to, bare (a JSON array of Room objects); ``false`` when
        LiveKit refuses; 503 when it is down or does not answer in time."""
        nodes = conference_of(runtime).nodes
        node = await nodes.for_room(None)
        try:
            reply = await nodes.call(node, "list_rooms", api.ListRoomsRequest())
        except LiveKitError:
            return False
        except LiveKitUnavailable as exc:
            raise unavailable(exc) from exc
        return [proto_to_json(room) for room in reply.rooms]

    @get("/checkexpired", opt=compat.opens("writes"))
    async def check_expired(self, request: Request, runtime: Runtime) -> Response[str]:
        """Runs the expiry sweep now (an agent token: it closes rooms); plain text as the original."""
        runtime.require_agent_token_unless_compat(request)
        settings = runtime.settings
        if jobs.auto_close_enabled(getattr(settings, "auto_close_room", "true")):
            conference = conference_of(runtime)
            await jobs.close_expired_rooms(conference.db, conference.nodes)
        return text("Check room expired complete")

    @get("/verifytoken")
    async def verify_token(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """``{"status":"OK","data":<claims>}`` for a valid token with ``video.roomJoin`` true; FAIL otherwise
        (``data`` = the claims, or the jsonwebtoken-style error)."""
        secret = getattr(runtime.settings, "secret_key", "") or runtime.settings.livekit_api_secret
        try:
            claims = verify_token(bearer_token(request.headers.get("authorization")), secret)
        except TokenRejected as exc:
            return exc.body
        video = claims.get("video")
        if isinstance(video, dict) and video.get("roomJoin") is True:
            return {"status": "OK", "data": claims}
        return {"status": "FAIL", "data": claims}

    @get("/picture")
    async def picture(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """Files uploaded through the room's links: ``{"status":"OK","data":[{filename, url, width, height,
        createdAt}]}`` (``[]`` when none; url = API_URL + stored path). Missing room: 400; a failed query: 404
        ``{"status":"FAIL","message":"No pictures found for this room"}`` (the original's answers)."""
        query = parse_query(request, PictureQuery)
        if not query.room:
            raise fail("Room parameter is required")
        if len(query.room) > ROOM_NAME_MAX:
            raise fail(f"room must be at most {ROOM_NAME_MAX} characters")
        api_url = getattr(runtime.settings, "api_url", "").rstrip("/")
        try:
            rows = await repository.pictures.room_pictures(conference_of(runtime).db, query.room)
        except (DatabaseError, OSError) as exc:  # the original's answer when its query failed
            log.warning("room pictures query failed", extra={"room": query.room, "error": repr(exc)})
            raise fail("No pictures found for this room", 404) from exc
        return {"status": "OK", "data": [domain.picture_json(row, api_url) for row in rows]}

    @post("/verifyuser", status_code=200)
    async def verify_user(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """Whether the token's participant may (re)enter body ``room`` (the original's verifyUser)."""
        claims = runtime.require_token(request)
        body = await parse_body(request, RoomBody)
        conference = conference_of(runtime)
        video = claims.get("video") if isinstance(claims.get("video"), dict) else {}
        identity = claims.get("sub")
        token_room = video.get("room")
        if not isinstance(identity, str) or not identity or not isinstance(token_room, str) or not token_room:
            return {"status": "FAIL"}
        nodes = conference.nodes
        node = await nodes.node_of_room(token_room)
        try:
            await nodes.call(node, "get_participant", api.RoomParticipantIdentity(room=token_room, identity=identity))
            connected = True
        except LiveKitError as exc:
            if exc.msg != "participant does not exist":
                return {"status": "FAIL", "data": exc.body()}
            connected = False
        except LiveKitUnavailable as exc:
            raise unavailable(exc) from exc

        if connected:  # a second tab: a fresh identity for the token's room
            return await _token_reply(conference, ParticipantTokenRequest(room=token_room, isAddUser=True))

        user = await repository.participants.room_user_detail(conference.db, body.room, identity)
        if user is not None and user["status"] == "wait":
            return {"status": "FAIL"}
        count = await repository.participants.count_room_user(conference.db, body.room, identity)
        room_join = video.get("roomJoin") is True
        if body.room != token_room:
            if count == 0:
                return {"status": "FAIL", "data": {"message": "no user in room"}}
            assert user is not None
            return await _token_reply(
                conference,
                ParticipantTokenRequest(
                    room=body.room, identity=identity, userName=user["userName"],
                    userType=user["userType"] or "user", roomJoin=room_join, isAddUser=True,
                ),
            )  # fmt: skip
        if count == 0:
            return {"status": "FAIL"}
        try:
            token_name = json.loads(claims.get("metadata") or "{}").get("userName")
        except (ValueError, AttributeError):
            token_name = None
        if user is not None and token_name != user["userName"]:
            return await _token_reply(
                conference,
                ParticipantTokenRequest(
                    room=token_room, userName=user["userName"], userType=user["userType"] or "user", isAddUser=True
                ),
            )
        return {"status": "OK", "data": {"identity": identity, "token": bearer_token(request.headers["authorization"])}}

    @post("/updateuser", status_code=200, opt=compat.opens("writes"))
    async def update_user(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """room_user.userName of (room, identity) (the original's evident intent; it never answered)."""
        claims = runtime.require_token_unless_compat(request)
        body = await parse_body(request, UpdateUserBody)
        runtime.require_room(claims, body.room)
        if not await rename_user(conference_of(runtime).db, body.room, body.identity, body.userName):
            return {"status": "FAIL", "message": "invalid room or identity"}
        return {"status": "OK"}

    @post("/deleteroom", status_code=200, opt=compat.opens("writes"))
    async def delete_room(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """LiveKit DeleteRoom; the room's row is closed too (ROOM_CLOSED). LiveKit down: 503, nothing written."""
        runtime.require_agent_token_unless_compat(request)
        body = await parse_body(request, RoomBody)
        conference = conference_of(runtime)
        node = await conference.nodes.node_of_room(body.room)
        try:
            await conference.nodes.call(node, "delete_room", api.DeleteRoomRequest(room=body.room))
        except LiveKitError as exc:
            return {"status": "FAIL", "message": exc.msg}
        except LiveKitUnavailable as exc:
            raise unavailable(exc) from exc
        await close_room(conference.db, conference.nodes, body.room, closed_by="delete")
        return {"status": "OK", "message": f"Room {body.room} deleted"}

    @put("/updatetype", opt=compat.opens("writes"))
    async def update_type(self, request: Request, runtime: Runtime) -> Any:
        """roomType (default ``conference``) of the room; realtime emits ``room-data`` roomUpdate on /{room}.
        Missing room: 404 text ``Invalid Room``. Only roomType and dtmUpdated change (not the original's resets)."""
        runtime.require_agent_token_unless_compat(request)
        body = await parse_body(request, UpdateTypeBody)
        if body.room is None:
            return text("Invalid Room", 404)
        room_type = body.roomType or "conference"
        conference = conference_of(runtime)
        await change_room_type(conference.db, conference.nodes, body.room, room_type)
        reply: dict[str, Any] = {"status": "roomUpdate", "room": body.room}
        if body.roomType is not None:
            reply["roomType"] = body.roomType
        return reply

    @put("/updatestatus", opt=compat.opens("writes"))
    async def update_status(self, request: Request, runtime: Runtime) -> Any:
        """Status of the case's room (by caseId + service), messageUnread cleared; ``{"status": <status>}``.
        Missing caseId/status: 404 text ``Invalid parameter``."""
        runtime.require_agent_token_unless_compat(request)
        body = await parse_body(request, UpdateStatusBody)
        if body.caseId is None or body.status is None:
            return text("Invalid parameter", 404)
        conference = conference_of(runtime)
        await change_case_room_status(conference.db, conference.nodes, body.caseId, body.service, body.status)
        return {"status": body.status}

    @put("/close", opt=compat.opens("writes"))
    async def close(self, request: Request, runtime: Runtime) -> Any:
        """Close the room (ROOM_CLOSED: realtime drops /{room}); ``{"status":"OK","room":..}``, unknown room
        400 text ``Bad Request``. Closing a closed room answers the same and rewrites nothing."""
        runtime.require_agent_token_unless_compat(request)
        body = await parse_body(request, RoomBody)
        conference = conference_of(runtime)
        rows, _ = await close_room(conference.db, conference.nodes, body.room)
        if rows == 0:
            return text("Bad Request", 400)
        return {"status": "OK", "room": body.room}


async def _token_reply(conference: Conference, req: ParticipantTokenRequest) -> dict[str, Any]:
    try:
        data = await conference.participant_token(req)
    except (LookupError, msgspec.ValidationError):
        return {"status": "FAIL"}
    return {"status": "OK", "data": data}


class TestQuery(msgspec.Struct, kw_only=True):
    room: RoomName


class TestController(Controller):
    """GET /test (the original's testUnMuteAll: lists the room's participants, answers ``OK``)."""

    path = "/test"
    tags = ["test"]

    @get("/", opt=compat.opens("writes"))
    async def unmute_all(self, request: Request, runtime: Runtime) -> Response[str]:
        """Agent token (a room's participants are not for anybody to list or unmute; the original left it open)."""
        runtime.require_agent_token_unless_compat(request)
        query = parse_query(request, TestQuery)
        nodes = conference_of(runtime).nodes
        node = await nodes.node_of_room(query.room)
        try:
            await nodes.call(node, "list_participants", api.ListParticipantsRequest(room=query.room))
        except LiveKitError:
            pass
        except LiveKitUnavailable as exc:
            raise unavailable(exc) from exc
        return text("OK")

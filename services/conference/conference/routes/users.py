"""HTTP controllers of /user/* (the original's user.controller and conference.controller handleTrack).

Reply shapes are the original's (some LiveKit objects bare, some envelopes). Unlike the original, every route
that changes state requires the LiveKit bearer token; /user/joingenerate keeps its optional auth. LiveKit calls
are bounded: a node that is down or hangs answers 503 ``{"status":"FAIL","message":...}``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post, put
from livekit import api

from conference import repository
from conference.clients import LiveKitError, LiveKitUnavailable
from conference.domain import ROOM_NAME_MAX, proto_to_json
from conference.events.link import link_room
from conference.events.participants import publish_track_muted
from conference.routes.rooms import conference_of, unavailable
from contracts.conference import ParticipantTokenRequest
from servicekit import compat
from servicekit.tokens import TokenRejected, bearer_token, verify_token
from servicekit.web import ApiError, Runtime, fail, parse_body, parse_query

RoomName = Annotated[str, msgspec.Meta(min_length=1, max_length=ROOM_NAME_MAX)]
Identity = Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
UserName = Annotated[str, msgspec.Meta(max_length=100)]
TrackSid = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
TOKEN_OK = "Create access token successful"
TWIRP_NOT_FOUND = "participant does not exist"


class RoomIdentityQuery(msgspec.Struct, kw_only=True):
    room: RoomName
    identity: Identity


class OptionalRoomIdentityQuery(msgspec.Struct, kw_only=True):
    room: str | None = None
    identity: str | None = None


class RoomQuery(msgspec.Struct, kw_only=True):
    room: RoomName


class GenerateBody(msgspec.Struct, kw_only=True):
    room: RoomName


class JoinGenerateBody(msgspec.Struct, kw_only=True):
    room: RoomName | None = None
    linkID: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    userName: UserName | None = None


class ChatUserBody(msgspec.Struct, kw_only=True):
    room: RoomName
    userName: UserName | None = None


class UpdateParticipantBody(msgspec.Struct, kw_only=True):
    room: RoomName
    identity: Identity
    userName: UserName


class MuteBody(msgspec.Struct, kw_only=True):
    room: RoomName
    identity: Identity
    track_sid: TrackSid
    muted: bool | str


class HandleTrackBody(msgspec.Struct, kw_only=True):
    room: RoomName
    identity: Identity
    trackSid: TrackSid
    isMuted: bool | str


def strict_bool(value: bool | str, name: str) -> bool:
    """JSON booleans, or the form strings ``true``/``false`` (the original treated "false" as truthy)."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise fail(f"{name} must be true or false")


async def _participant_call(runtime: Runtime, room: str, method: str, request: Any) -> Any:
    nodes = conference_of(runtime).nodes
    node = await nodes.node_of_room(room)
    try:
        return await nodes.call(node, method, request)
    except LiveKitUnavailable as exc:
        raise unavailable(exc) from exc


class UserController(Controller):
    path = "/user"
    tags = ["user"]

    @get("/getuseralreadyinroom")
    async def already_in_room(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """Whether the participant is connected in LiveKit now: ``{"status":"OK","data":<ParticipantInfo>}``,
        else ``{"status":"FAIL","data":{"code":"not_found","msg":"participant does not exist"}}``."""
        query = parse_query(request, RoomIdentityQuery)
        try:
            info = await _participant_call(
                runtime,
                query.room,
                "get_participant",
                api.RoomParticipantIdentity(room=query.room, identity=query.identity),
            )
        except LiveKitError as exc:
            return {"status": "FAIL", "data": exc.body()}
        return {"status": "OK", "data": proto_to_json(info)}

    @get("/getuserdetail")
    async def user_detail(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """``{"status":"OK","data":{"userName":..}}`` or ``{"status":"FAIL","message":"invalid room or identity"}``."""
        query = parse_query(request, OptionalRoomIdentityQuery)
        invalid = {"status": "FAIL", "message": "invalid room or identity"}
        if not query.room or not query.identity or len(query.room) > 100 or len(query.identity) > 50:
            return invalid
        row = await repository.participants.room_user_detail(conference_of(runtime).db, query.room, query.identity)
        if row is None:
            return invalid
        return {"status": "OK", "data": {"userName": row["userName"]}}

    @get("/listparticipants")
    async def list_participants(self, request: Request, runtime: Runtime) -> Any:
        """LiveKit's participants of the room, bare (JSON array); ``false`` when LiveKit refuses."""
        query = parse_query(request, RoomQuery)
        try:
            reply = await _participant_call(
                runtime, query.room, "list_participants", api.ListParticipantsRequest(room=query.room)
            )
        except LiveKitError:
            return False
        return [proto_to_json(p) for p in reply.participants]

    @post("/generate", status_code=200)
    async def generate(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """A new participant (new identity, room_user row) for body ``room`` with the caller's name and type
        (room_user of the token's room and ``sub``); identity/token at the top level."""
        claims = runtime.require_token(request)
        body = await parse_body(request, GenerateBody)
        conference = conference_of(runtime)
        video = claims.get("video") if isinstance(claims.get("video"), dict) else {}
        caller = None
        if isinstance(video.get("room"), str) and isinstance(claims.get("sub"), str):
            caller = await repository.participants.room_user_detail(conference.db, video["room"], claims["sub"])
        req = ParticipantTokenRequest(
            room=body.room,
            userName=caller["userName"]
            if caller
            else claims.get("name")
            if isinstance(claims.get("name"), str)
            else None,
            userType=(caller["userType"] if caller else None) or "user",
            isAddUser=True,
            userAgent=request.headers.get("user-agent", "")[:1000],
        )
        try:
            data = await conference.participant_token(req)
        except (LookupError, msgspec.ValidationError):
            return {"status": "FAIL"}
        return {"status": "OK", "message": TOKEN_OK, "identity": data["identity"], "token": data["token"]}

    @post("/joingenerate", status_code=200)
    async def join_generate(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """Optional auth. With ``linkID``: the link's room, roomJoin true; else body ``room``, roomJoin false
        (the waiting token). Identity = a valid token's ``sub``, else a new one. ``data`` = identity/token."""
        body = await parse_body(request, JoinGenerateBody)
        identity = None
        token = bearer_token(request.headers.get("authorization"))
        if token:
            try:
                sub = verify_token(token, runtime.settings.livekit_api_secret).get("sub")
                identity = sub if isinstance(sub, str) and 0 < len(sub) <= 50 else None
            except TokenRejected:
                identity = None
        room = body.room
        if body.linkID is not None:
            assert runtime.bus is not None
            try:
                link = await link_room(runtime.bus, body.linkID)
            except Exception as exc:
                if getattr(exc, "code", "") == "not_found":
                    return {"status": "FAIL"}
                raise fail("link service unavailable", 503) from exc
            room = link.get("room") if isinstance(link, dict) else None
        if not room:
            return {"status": "FAIL"}
        req = ParticipantTokenRequest(
            room=room, identity=identity, userName=body.userName, userType="user", linkID=body.linkID,
            isAddUser=False, roomJoin=body.linkID is not None, userAgent=request.headers.get("user-agent", "")[:1000],
        )  # fmt: skip
        try:
            data = await conference_of(runtime).participant_token(req)
        except (LookupError, msgspec.ValidationError):
            return {"status": "FAIL"}
        return {"status": "OK", "message": TOKEN_OK, "data": {"identity": data["identity"], "token": data["token"]}}

    @post("/generateChatUser", status_code=200, opt=compat.opens("writes"))
    async def generate_chat_user(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """A chat participant (roomJoin false, room_user row); identity/token at the top level."""
        return await _generate_chat_user(request, runtime)

    @post("/generatechatuser", status_code=200, include_in_schema=False, opt=compat.opens("writes"))
    async def generate_chat_user_lower(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """Express matched paths case-insensitively: the lower-case spelling works too."""
        return await _generate_chat_user(request, runtime)

    @post("/updateparticipants", status_code=200, opt=compat.opens("writes"))
    async def update_participants(self, request: Request, runtime: Runtime) -> Any:
        """LiveKit UpdateParticipant: ``userName`` merged into the participant's metadata (the original replaced
        the whole metadata). The ParticipantInfo bare, or the Twirp error body bare."""
        claims = runtime.require_token_unless_compat(request)
        body = await parse_body(request, UpdateParticipantBody)
        runtime.require_room(claims, body.room)
        ident = api.RoomParticipantIdentity(room=body.room, identity=body.identity)
        try:
            current = await _participant_call(runtime, body.room, "get_participant", ident)
            try:
                metadata = json.loads(current.metadata) if current.metadata else {}
            except ValueError:
                metadata = {}
            if not isinstance(metadata, dict):
                metadata = {}
            metadata["userName"] = body.userName
            info = await _participant_call(
                runtime,
                body.room,
                "update_participant",
                api.UpdateParticipantRequest(room=body.room, identity=body.identity, metadata=json.dumps(metadata)),
            )
        except LiveKitError as exc:
            return exc.body()
        return proto_to_json(info)

    @post("/mutepublishedtrack", status_code=200, opt=compat.opens("writes"))
    async def mute_published_track(self, request: Request, runtime: Runtime) -> Any:
        """LiveKit MutePublishedTrack; the TrackInfo bare, ``false`` when LiveKit refuses."""
        claims = runtime.require_token_unless_compat(request)
        body = await parse_body(request, MuteBody)
        runtime.require_room(claims, body.room)
        muted = strict_bool(body.muted, "muted")
        try:
            reply = await _participant_call(
                runtime,
                body.room,
                "mute_published_track",
                api.MuteRoomTrackRequest(room=body.room, identity=body.identity, track_sid=body.track_sid, muted=muted),
            )
        except LiveKitError:
            return False
        return proto_to_json(reply.track)

    @post("/removeParticipant", status_code=200, opt=compat.opens("writes"))
    async def remove_participant(self, request: Request, runtime: Runtime) -> dict[str, str]:
        """The original's stub: removes nobody, answers ``{"status":"test"}``. Named as a removal, so it takes an
        agent token like the routes that do remove (the original left it open)."""
        return _remove_participant(request, runtime)

    @post("/removeparticipant", status_code=200, include_in_schema=False, opt=compat.opens("writes"))
    async def remove_participant_lower(self, request: Request, runtime: Runtime) -> dict[str, str]:
        return _remove_participant(request, runtime)

    @put("/handle/track", opt=compat.opens("writes"))
    async def handle_track(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        """LiveKit MutePublishedTrack (a refusal is only logged) and ``track-muted-unmuted`` with the body on
        /{room} (via realtime); ``{"success":true}``. LiveKit down: 503 ``{"success":false,"error":..}``."""
        claims = runtime.require_token_unless_compat(request)
        body = await parse_body(request, HandleTrackBody)
        runtime.require_room(claims, body.room)
        muted = strict_bool(body.isMuted, "isMuted")
        raw = await request.body()
        try:
            payload = msgspec.json.decode(raw) if raw.strip().startswith(b"{") else msgspec.to_builtins(body)
        except msgspec.DecodeError:
            payload = msgspec.to_builtins(body)
        conference = conference_of(runtime)
        node = await conference.nodes.node_of_room(body.room)
        try:
            await conference.nodes.call(
                node,
                "mute_published_track",
                api.MuteRoomTrackRequest(room=body.room, identity=body.identity, track_sid=body.trackSid, muted=muted),
            )
        except LiveKitError:
            pass  # the original swallowed LiveKit's refusals
        except LiveKitUnavailable as exc:
            raise ApiError(str(exc), 503, {"success": False, "error": str(exc)}) from exc
        await publish_track_muted(conference.db, body.room, payload)
        return {"success": True}


async def _generate_chat_user(request: Request, runtime: Runtime) -> dict[str, Any]:
    claims = runtime.require_token_unless_compat(request)
    body = await parse_body(request, ChatUserBody)
    runtime.require_room(claims, body.room)
    req = ParticipantTokenRequest(
        room=body.room, userName=body.userName, userType="user", roomJoin=False, isAddUser=True,
        userAgent=request.headers.get("user-agent", "")[:1000],
    )  # fmt: skip
    try:
        data = await conference_of(runtime).participant_token(req)
    except (LookupError, msgspec.ValidationError):
        return {"status": "FAIL"}
    return {"status": "OK", "message": TOKEN_OK, "identity": data["identity"], "token": data["token"]}


def _remove_participant(request: Request, runtime: Runtime) -> dict[str, str]:
    runtime.require_agent_token_unless_compat(request)
    return {"status": "test"}

"""A protocol-level fake of LiveKit's RoomService (Twirp over HTTP), for the test suite.

It answers ``POST /twirp/livekit.RoomService/<Method>`` with protobuf bodies (``application/protobuf``, as the
python livekit-api sends them) or protobuf-JSON bodies (``application/json``, as livekit-server-sdk 2.x sends
them), answering in the request's format. Like LiveKit it checks the ``Authorization: Bearer`` API token: HS256
signed with the node's secret, ``iss`` = the node's key, and the grant the method needs (``roomCreate`` for
CreateRoom/DeleteRoom, ``roomList`` for ListRooms, ``roomAdmin`` + ``room`` = the request's room for the
participant methods). Errors are Twirp JSON bodies ``{"code": ..., "msg": ...}`` with LiveKit's statuses.

Rooms and participants live in memory. It runs in a background thread with its own event loop, so a
session-scoped (synchronous) fixture can start it; the test controls are plain method calls:

* :meth:`add_participant` (with tracks), :meth:`participant`, :meth:`room`;
* :attr:`delay` (seconds before answering: a slow node) and :attr:`down` (answer 503 ``unavailable``);
* :attr:`calls`: every request seen (method, request as a dict, token claims or None), :meth:`reset`.

It also serves LiveKit's Egress API (``POST /twirp/livekit.Egress/<Method>``: StartRoomCompositeEgress,
StartTrackCompositeEgress, StopEgress, ListEgress; grant ``roomRecord``). Egresses live in :attr:`egresses`;
:attr:`egress_failure` makes starts fail with that Twirp code. With :attr:`webhook_url` set it sends the
egress webhooks LiveKit sends (``egress_started`` after a start, ``egress_ended`` after a stop or
:meth:`end_egress`), signed like LiveKit's (tests/fakes/livekit_webhooks.py); :attr:`webhooks_sent` lists
them (event, status of the answer).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message
from livekit.protocol import egress as egress_pb
from livekit.protocol import models
from livekit.protocol import room as room_pb

from deploy.local import free_port

PREFIX = "/twirp/livekit.RoomService/"
EGRESS_PREFIX = "/twirp/livekit.Egress/"


class TwirpFailure(Exception):
    def __init__(self, status: int, code: str, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


@dataclass
class Call:
    method: str
    request: dict[str, Any]
    claims: dict[str, Any] | None


@dataclass
class FakeLiveKit:
    key: str = "devkey"
    secret: str = "secret"
    port: int = 0
    delay: float = 0.0  # seconds before every answer (a slow node)
    down: bool = False  # answer every call with 503 unavailable
    rooms: dict[str, models.Room] = field(default_factory=dict)
    participants: dict[str, dict[str, models.ParticipantInfo]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sid: int = 0
    # Like LiveKit's random ids: two fakes (two nodes) never hand out the same room/egress/webhook id.
    _tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    # ---- Egress API ----
    egresses: dict[str, egress_pb.EgressInfo] = field(default_factory=dict)
    egress_failure: str = ""  # a Twirp code ("resource_exhausted", "unavailable"...): egress starts fail
    webhook_url: str = ""  # where egress webhooks go ("" = none sent)
    webhooks_sent: list[tuple[str, int]] = field(default_factory=list)
    _pending: set[Any] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> FakeLiveKit:
        self.port = self.port or free_port()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-livekit", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post(PREFIX + "{method}", self._handle)
        app.router.add_post(EGRESS_PREFIX + "{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    # ---- test controls ------------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.rooms.clear()
            self.participants.clear()
            self.calls.clear()
            self.delay, self.down = 0.0, False
            self.egresses.clear()
            self.webhooks_sent.clear()
            self.egress_failure, self.webhook_url = "", ""

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in list(self.calls) if c.method == method]

    def ensure_room(self, name: str) -> models.Room:
        with self._lock:
            room = self.rooms.get(name)
            if room is None:
                room = models.Room(
                    sid=self._next("RM_"), name=name, empty_timeout=300, max_participants=0,
                    creation_time=int(time.time()),
                )  # fmt: skip
                self.rooms[name] = room
                self.participants.setdefault(name, {})
            return room

    def add_participant(
        self,
        room: str,
        identity: str,
        *,
        name: str = "",
        metadata: str = "",
        tracks: list[dict[str, Any]] | None = None,
    ) -> models.ParticipantInfo:
        """A connected participant; ``tracks``: ``{"sid", "type" ("audio"|"video"), "muted", "source", "name"}``."""
        self.ensure_room(room)
        info = models.ParticipantInfo(
            sid=self._next("PA_"), identity=identity, name=name, metadata=metadata,
            state=models.ParticipantInfo.State.ACTIVE, joined_at=int(time.time()), version=1, is_publisher=bool(tracks),
            permission=models.ParticipantPermission(can_subscribe=True, can_publish=True, can_publish_data=True),
        )  # fmt: skip
        for track in tracks or []:
            info.tracks.append(
                models.TrackInfo(
                    sid=track.get("sid") or self._next("TR_"),
                    type=models.TrackType.AUDIO if track.get("type") == "audio" else models.TrackType.VIDEO,
                    name=track.get("name", ""),
                    muted=bool(track.get("muted", False)),
                    source=models.TrackSource.MICROPHONE if track.get("type") == "audio" else models.TrackSource.CAMERA,
                )
            )
        with self._lock:
            self.participants[room][identity] = info
            self.rooms[room].num_participants = len(self.participants[room])
        return info

    def participant(self, room: str, identity: str) -> models.ParticipantInfo | None:
        return self.participants.get(room, {}).get(identity)

    def _next(self, prefix: str) -> str:
        self._sid += 1
        return f"{prefix}{self._tag}{self._sid:06d}"

    # ---- protocol -----------------------------------------------------------------------------------------
    def _claims(self, request: web.Request) -> dict[str, Any]:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise TwirpFailure(401, "unauthenticated", "no authorization header")
        try:
            claims = jwt.decode(header[7:], self.secret, algorithms=["HS256"], leeway=5)
        except jwt.InvalidTokenError as exc:
            raise TwirpFailure(401, "unauthenticated", f"invalid token: {exc}") from exc
        if claims.get("iss") != self.key:
            raise TwirpFailure(401, "unauthenticated", "invalid API key")
        return claims

    @staticmethod
    def _need(claims: dict[str, Any], grant: str, room: str | None = None) -> None:
        video = claims.get("video") or {}
        if not video.get(grant):
            raise TwirpFailure(403, "permission_denied", f"missing grant {grant}")
        if room is not None and video.get("room") != room:
            raise TwirpFailure(403, "permission_denied", "token is for another room")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        table = _EGRESS_METHODS if request.path.startswith(EGRESS_PREFIX) else _METHODS
        spec = table.get(method)
        as_json = "json" in request.headers.get("Content-Type", "")
        body = await request.read()
        claims: dict[str, Any] | None = None
        try:
            if spec is None:
                raise TwirpFailure(404, "bad_route", f"no handler for {method}")
            request_type, handler = spec
            try:
                message = request_type()
                if as_json:
                    json_format.Parse(body or b"{}", message, ignore_unknown_fields=True)
                else:
                    message.ParseFromString(body)
            except Exception as exc:
                raise TwirpFailure(400, "malformed", f"bad request body: {exc}") from exc
            record = Call(method, json_format.MessageToDict(message), None)
            self.calls.append(record)
            claims = self._claims(request)
            record.claims = claims
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.down:
                raise TwirpFailure(503, "unavailable", "node is down")
            reply = handler(self, claims, message)
        except TwirpFailure as failure:
            return web.json_response({"code": failure.code, "msg": failure.msg}, status=failure.status)
        if as_json:
            return web.json_response(json_format.MessageToDict(reply))
        return web.Response(body=reply.SerializeToString(), content_type="application/protobuf")

    # ---- RoomService methods -------------------------------------------------------------------------------
    def _room_or_404(self, name: str) -> models.Room:
        room = self.rooms.get(name)
        if room is None:
            raise TwirpFailure(404, "not_found", "requested room does not exist")
        return room

    def _participant_or_404(self, room: str, identity: str) -> models.ParticipantInfo:
        info = self.participants.get(room, {}).get(identity)
        if info is None:
            raise TwirpFailure(404, "not_found", "participant does not exist")
        return info

    def create_room(self, claims: dict[str, Any], req: room_pb.CreateRoomRequest) -> Message:
        self._need(claims, "roomCreate")
        room = self.ensure_room(req.name)
        room.empty_timeout, room.max_participants = req.empty_timeout, req.max_participants
        if req.metadata:
            room.metadata = req.metadata
        return room

    def list_rooms(self, claims: dict[str, Any], req: room_pb.ListRoomsRequest) -> Message:
        self._need(claims, "roomList")
        rooms = [r for n, r in list(self.rooms.items()) if not req.names or n in req.names]
        return room_pb.ListRoomsResponse(rooms=rooms)

    def delete_room(self, claims: dict[str, Any], req: room_pb.DeleteRoomRequest) -> Message:
        self._need(claims, "roomCreate")
        with self._lock:
            if req.room not in self.rooms:
                raise TwirpFailure(404, "not_found", "requested room does not exist")
            del self.rooms[req.room]
            self.participants.pop(req.room, None)
        return room_pb.DeleteRoomResponse()

    def list_participants(self, claims: dict[str, Any], req: room_pb.ListParticipantsRequest) -> Message:
        self._need(claims, "roomAdmin", req.room)
        return room_pb.ListParticipantsResponse(participants=list(self.participants.get(req.room, {}).values()))

    def get_participant(self, claims: dict[str, Any], req: room_pb.RoomParticipantIdentity) -> Message:
        self._need(claims, "roomAdmin", req.room)
        return self._participant_or_404(req.room, req.identity)

    def remove_participant(self, claims: dict[str, Any], req: room_pb.RoomParticipantIdentity) -> Message:
        self._need(claims, "roomAdmin", req.room)
        self._participant_or_404(req.room, req.identity)
        with self._lock:
            del self.participants[req.room][req.identity]
        return room_pb.RemoveParticipantResponse()

    def mute_published_track(self, claims: dict[str, Any], req: room_pb.MuteRoomTrackRequest) -> Message:
        self._need(claims, "roomAdmin", req.room)
        info = self._participant_or_404(req.room, req.identity)
        for track in info.tracks:
            if track.sid == req.track_sid:
                track.muted = req.muted
                return room_pb.MuteRoomTrackResponse(track=track)
        raise TwirpFailure(404, "not_found", "track is not found")

    def update_participant(self, claims: dict[str, Any], req: room_pb.UpdateParticipantRequest) -> Message:
        self._need(claims, "roomAdmin", req.room)
        info = self._participant_or_404(req.room, req.identity)
        if req.metadata:
            info.metadata = req.metadata
        if req.name:
            info.name = req.name
        if req.HasField("permission"):
            info.permission.CopyFrom(req.permission)
        info.version += 1
        return info

    def update_room_metadata(self, claims: dict[str, Any], req: room_pb.UpdateRoomMetadataRequest) -> Message:
        self._need(claims, "roomAdmin", req.room)
        room = self._room_or_404(req.room)
        room.metadata = req.metadata
        return room

    # ---- Egress methods -----------------------------------------------------------------------------------
    def _new_egress(self, room: str, filepath: str) -> egress_pb.EgressInfo:
        self._need_record()
        room_info = self.rooms.get(room)
        info = egress_pb.EgressInfo(
            egress_id=self._next("EG_"), room_id=room_info.sid if room_info else "", room_name=room,
            status=egress_pb.EgressStatus.EGRESS_STARTING, started_at=time.time_ns(), updated_at=time.time_ns(),
        )  # fmt: skip
        info.file_results.append(egress_pb.FileInfo(filename=filepath, started_at=info.started_at))
        return info

    def _need_record(self) -> None:
        if self.egress_failure:
            raise TwirpFailure(
                503 if self.egress_failure == "unavailable" else 400, self.egress_failure, "egress failed"
            )

    def _started(self, info: egress_pb.EgressInfo) -> egress_pb.EgressInfo:
        with self._lock:
            self.egresses[info.egress_id] = info
        reply = egress_pb.EgressInfo()
        reply.CopyFrom(info)
        active = egress_pb.EgressInfo()
        active.CopyFrom(info)
        active.status = egress_pb.EgressStatus.EGRESS_ACTIVE
        info.status = egress_pb.EgressStatus.EGRESS_ACTIVE
        self._send_egress_event("egress_started", active)
        return reply

    def start_room_composite(self, claims: dict[str, Any], req: egress_pb.RoomCompositeEgressRequest) -> Message:
        self._need(claims, "roomRecord")
        path = req.file_outputs[0].filepath if req.file_outputs else req.file.filepath
        info = self._new_egress(req.room_name, path)
        info.room_composite.CopyFrom(req)
        return self._started(info)

    def start_track_composite(self, claims: dict[str, Any], req: egress_pb.TrackCompositeEgressRequest) -> Message:
        self._need(claims, "roomRecord")
        path = req.file_outputs[0].filepath if req.file_outputs else req.file.filepath
        info = self._new_egress(req.room_name, path)
        info.track_composite.CopyFrom(req)
        return self._started(info)

    def stop_egress(self, claims: dict[str, Any], req: egress_pb.StopEgressRequest) -> Message:
        self._need(claims, "roomRecord")
        info = self.egresses.get(req.egress_id)
        if info is None:
            raise TwirpFailure(404, "not_found", "egress does not exist")
        if info.status != egress_pb.EgressStatus.EGRESS_ACTIVE:
            raise TwirpFailure(412, "failed_precondition", "egress is not active")
        info.status = egress_pb.EgressStatus.EGRESS_ENDING
        reply = egress_pb.EgressInfo()
        reply.CopyFrom(info)
        self.end_egress(req.egress_id)
        return reply

    def list_egress(self, claims: dict[str, Any], req: egress_pb.ListEgressRequest) -> Message:
        self._need(claims, "roomRecord")
        items = [
            e
            for e in list(self.egresses.values())
            if (not req.room_name or e.room_name == req.room_name)
            and (not req.egress_id or e.egress_id == req.egress_id)
            and (not req.active or e.status < egress_pb.EgressStatus.EGRESS_COMPLETE)
        ]
        return egress_pb.ListEgressResponse(items=items)

    def end_egress(self, egress_id: str, status: str = "EGRESS_COMPLETE") -> None:
        """LiveKit finished an egress (stopped, failed, room gone): the egress_ended webhook goes out."""
        info = self.egresses[egress_id]
        info.status = egress_pb.EgressStatus.Value(status)
        info.ended_at = info.updated_at = time.time_ns()
        for result in info.file_results:
            result.ended_at, result.size, result.duration = info.ended_at, 1_000_000, 5_000_000_000
        self._send_egress_event("egress_ended", info)

    # ---- webhooks -----------------------------------------------------------------------------------------
    def _send_egress_event(self, name: str, info: egress_pb.EgressInfo) -> None:
        if not self.webhook_url:
            return
        body = {
            "event": name,
            "id": self._next("EV_"),
            "createdAt": str(int(time.time())),
            "egressInfo": json_format.MessageToDict(info),
        }
        self.send_webhook(body)

    def send_webhook(self, body: dict[str, Any]) -> None:
        """POST a webhook event to :attr:`webhook_url`, signed like LiveKit's, from the fake's loop (after the
        answer that caused it, as LiveKit does)."""
        from tests.fakes import livekit_webhooks as lkw

        raw = lkw.encode(body)
        token = lkw.sign(raw, self.key, self.secret)
        url, name = self.webhook_url, str(body.get("event"))

        async def deliver() -> None:
            await asyncio.sleep(0.02)
            async with aiohttp.ClientSession() as session:
                headers = {"Authorization": token, "Content-Type": lkw.CONTENT_TYPE}
                async with session.post(url, data=raw, headers=headers) as response:
                    self.webhooks_sent.append((name, response.status))

        def schedule() -> None:
            task = asyncio.ensure_future(deliver())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        assert self._loop is not None
        self._loop.call_soon_threadsafe(schedule)


_METHODS: dict[str, tuple[type[Message], Any]] = {
    "CreateRoom": (room_pb.CreateRoomRequest, FakeLiveKit.create_room),
    "ListRooms": (room_pb.ListRoomsRequest, FakeLiveKit.list_rooms),
    "DeleteRoom": (room_pb.DeleteRoomRequest, FakeLiveKit.delete_room),
    "ListParticipants": (room_pb.ListParticipantsRequest, FakeLiveKit.list_participants),
    "GetParticipant": (room_pb.RoomParticipantIdentity, FakeLiveKit.get_participant),
    "RemoveParticipant": (room_pb.RoomParticipantIdentity, FakeLiveKit.remove_participant),
    "MutePublishedTrack": (room_pb.MuteRoomTrackRequest, FakeLiveKit.mute_published_track),
    "UpdateParticipant": (room_pb.UpdateParticipantRequest, FakeLiveKit.update_participant),
    "UpdateRoomMetadata": (room_pb.UpdateRoomMetadataRequest, FakeLiveKit.update_room_metadata),
}

_EGRESS_METHODS: dict[str, tuple[type[Message], Any]] = {
    "StartRoomCompositeEgress": (egress_pb.RoomCompositeEgressRequest, FakeLiveKit.start_room_composite),
    "StartTrackCompositeEgress": (egress_pb.TrackCompositeEgressRequest, FakeLiveKit.start_track_composite),
    "StopEgress": (egress_pb.StopEgressRequest, FakeLiveKit.stop_egress),
    "ListEgress": (egress_pb.ListEgressRequest, FakeLiveKit.list_egress),
}

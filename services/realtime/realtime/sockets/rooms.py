"""The room namespace ``/{room}``: presence (realtime.md §6) and client->server events (§4.2, §4.4).

Writes go to conference over NATS request/reply (room_user, chat_message are conference's tables); the state
the original kept in process memory (socket ids by identity, admin sockets, the waiting room and its re-send
timer) is in Redis, so it is right with several instances and survives a restart of one.
Privileged events (§13.3) are accepted only from admins (token metadata userType ``admin``, or an agent token
not bound to a room); an unknown or malformed event is ignored like the original ignored it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from contracts.conference import (
    RPC_CHAT_HISTORY,
    RPC_CHAT_STORE,
    RPC_CONFERENCE_PARTICIPANTS,
    RPC_CONFERENCE_TRACK_MUTE,
    RPC_PRESENCE_ADMIT,
    RPC_PRESENCE_CONNECT,
    RPC_PRESENCE_DISCONNECT,
    RPC_PRESENCE_UPDATE,
    ChatHistoryQuery,
    ChatMessageStore,
    PresenceAdmit,
    PresenceConnect,
    PresenceDisconnect,
    PresenceUpdate,
    RoomQuery,
    TrackMute,
)
from contracts.link import (
    RPC_LINK_POSITION_GROUP,
    RPC_LINK_QUEUE_PAGE,
    RPC_LINK_USER_POSITION,
    LinkUserPosition,
    QueuePage,
)
from contracts.recording import RPC_RECORDING_TOGGLE
from contracts.telemetry import RPC_ROOM_CAR_POSITION
from realtime import domain
from realtime.domain import NamespaceInfo, SocketUser
from realtime.repository import Instances, Sessions, WaitingRoom
from realtime.sockets.emitter import Emitter
from servicekit import compat
from servicekit.bus import RpcError
from servicekit.web import Runtime

log = logging.getLogger("realtime.sockets.rooms")

RPC_TIMEOUT = 3.0
# The record toggle waits for LiveKit's egress start/stop, which recording bounds at 10 s.
RECORD_TOGGLE_TIMEOUT = 11.0
NEWQUEUE = "/newqueue"
# Events the original accepted and ignored (handler bodies commented out).
_IGNORED = {"camera-microphone-status", "case-list-data", "case-list-page"}
# Each instance refreshes its heartbeat this often; a heartbeat older than HEARTBEAT_TTL means the instance died
# and a survivor marks its room sockets disconnected (the original reset every "connection" row at start-up).
HEARTBEAT_INTERVAL = 2.0
HEARTBEAT_TTL = 6.0
# A room socket event's handler: (namespace, socket id, user, session, payload).
RoomEventHandler = Callable[[NamespaceInfo, str, SocketUser, Any, Any], Awaitable[None]]


class RoomEvents:
    def __init__(
        self, runtime: Runtime, sockets: Emitter, repeat_delay_ms: int, car_tracking: RoomEventHandler | None = None
    ) -> None:
        assert runtime.redis is not None
        self.runtime = runtime
        self.sockets = sockets
        self.sessions = Sessions(runtime.redis)
        self.waiting = WaitingRoom(runtime.redis)
        self.repeat_delay_ms = max(100, int(repeat_delay_ms))
        self.instances = Instances(runtime.redis, uuid.uuid4().hex)
        self._loop: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._handlers = {
            "chat-message": self.chat_message,
            "get-chat-history": self.get_chat_history,
            "user-conference": self.user_conference,
            "update-microphone-status": self.update_microphone_status,
            "update-camera-status": self.update_camera_status,
            "update-username": self.update_username,
            "get-user-detail": self.get_user_detail,
            "case-data": self.case_data,
            "agent-close-room": self.agent_close_room,
            "joinChat": self.join_chat,
            "position": self.position,
            "force-leave-conference": self.force_leave,
            "force-stop-sharescreen": self.force_stop_sharescreen,
            "auth-join-conference": self.auth_join,
            "auth-join-conference-answer": self.auth_join_answer,
            "user-position": self.user_position,
            "get-user-position-group": self.get_user_position_group,
            "get-user-list": self.get_user_list,
            "track-muted-unmuted": self.track_muted_unmuted,
            "room-record": self.room_record,
            "queue": self.queue,
        }
        if car_tracking is not None:  # realtime.sockets.mobile's (telemetry owns car tracking)
            self._handlers["carTracking"] = car_tracking

    # ---- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.create_task(self._repeat_waiting_lists())
        self._sweeper = asyncio.create_task(self._beat_and_sweep())

    async def stop(self) -> None:
        for task in (self._loop, self._sweeper):
            if task is not None:
                task.cancel()
        try:
            await self.instances.stopped()
        except Exception:
            log.warning("heartbeat not cleared on stop", exc_info=True)

    async def _request(self, subject: str, payload: Any, timeout: float = RPC_TIMEOUT) -> Any:
        assert self.runtime.bus is not None
        return await self.runtime.bus.request(subject, payload, timeout=timeout)

    async def _emit(self, event: str, data: Any, info: NamespaceInfo, to: str | None = None) -> None:
        await self.sockets.emit(event, data, info.name, to=to)

    # ---- presence -------------------------------------------------------------------------------------------
    async def connected(self, info: NamespaceInfo, sid: str, user: SocketUser) -> None:
        """Handshake write (room_user via conference), socket id in Redis, ``user-connection`` to the room."""
        await self.sessions.connected(info.name, user.identity, sid, user.admin)
        await self.instances.add_socket(sid, domain.socket_entry(info.name, user))
        row: dict[str, Any] | None = None
        try:
            row = await self._request(
                RPC_PRESENCE_CONNECT,
                PresenceConnect(
                    room=info.key,
                    identity=user.identity,
                    socketId=sid,
                    hasMetadata=user.has_metadata,
                    userName=user.userName,
                    userType=user.userType,
                    color=user.color,
                ),
            )
        except RpcError as exc:
            log.warning("presence connect failed", extra={"room": info.key, "code": exc.code})
        try:
            session = await self.sockets.get_session(sid, namespace=info.name)
            session["row"] = row if isinstance(row, dict) else None
        except KeyError:  # gone already: its disconnect handler may have run before this handshake write
            await self.instances.remove_socket(sid)
            await self.sessions.disconnected(info.name, user.identity, sid)
            with contextlib.suppress(RpcError):
                await self._request(
                    RPC_PRESENCE_DISCONNECT, PresenceDisconnect(room=info.key, identity=user.identity, socketId=sid)
                )
            return
        await self._emit("user-connection", domain.user_connection(session["row"]), info)
        if (session["row"] or {}).get("userType") == "user":  # a patient joined: show them the car, if any
            await self._car_position(info)

    async def _car_position(self, info: NamespaceInfo) -> None:
        try:
            row = await self._request(RPC_ROOM_CAR_POSITION, RoomQuery(room=info.key))
        except RpcError as exc:
            if exc.code not in ("not_found", "unavailable"):
                log.warning("car position unavailable", extra={"room": info.key, "code": exc.code})
            return
        if isinstance(row, dict) and row:
            await self._emit("car-position", row, info)

    async def disconnected(self, info: NamespaceInfo, sid: str, session: dict[str, Any]) -> None:
        user: SocketUser | None = session.get("user")
        row = session.get("row") or (
            {"identity": user.identity, "userName": user.userName} if user is not None else None
        )
        if await self.waiting.remove(info.name, sid):
            await self._send_waiting_list(info)
        await self._emit("user-disconnect", domain.user_disconnect(row), info)
        if user is None:
            return
        await self.sessions.disconnected(info.name, user.identity, sid)
        await self.instances.remove_socket(sid)
        try:
            await self._request(
                RPC_PRESENCE_DISCONNECT, PresenceDisconnect(room=info.key, identity=user.identity, socketId=sid)
            )
        except RpcError as exc:
            log.warning("presence disconnect failed", extra={"room": info.key, "code": exc.code})

    # ---- dispatch -------------------------------------------------------------------------------------------
    async def handle(self, event: str, info: NamespaceInfo, sid: str, session: dict[str, Any], data: Any) -> None:
        handler = self._handlers.get(event)
        if handler is None:
            if event not in _IGNORED:
                log.info("unhandled socket event", extra={"event": event, "room": info.key})
            return
        user: SocketUser | None = session.get("user")
        if user is None:
            return
        await handler(info, sid, user, session, data)

    # ---- chat -----------------------------------------------------------------------------------------------
    async def chat_message(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        if not isinstance(data, dict):
            return
        fields = {name: data.get(name) for name in domain.CHAT_FIELDS if data.get(name) is not None}
        try:
            stored = await self._request(RPC_CHAT_STORE, ChatMessageStore(room=info.key, **fields))
        except RpcError as exc:
            log.warning("chat message not stored", extra={"room": info.key, "code": exc.code})
            return
        await self._emit("chat-message", domain.chat_broadcast(data, stored), info)
        if stored.get("messageUnread"):
            await self.sockets.emit("case-data", domain.message_unread(info.key), NEWQUEUE)

    async def get_chat_history(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, _: Any) -> None:
        """The namespace's room (not the client's ``room``), to the requester only (§13.4)."""
        try:
            rows = await self._request(RPC_CHAT_HISTORY, ChatHistoryQuery(room=info.key))
        except RpcError as exc:
            log.warning("chat history unavailable", extra={"room": info.key, "code": exc.code})
            return
        await self._emit("chat-history", rows if rows else False, info, to=sid)

    # ---- user state -----------------------------------------------------------------------------------------
    async def _update(self, info: NamespaceInfo, identity: Any, **values: Any) -> bool:
        if not isinstance(identity, str) or not identity:
            return False
        # frontends may send the 0/1 flags as booleans
        values = {name: int(value) if isinstance(value, bool) else value for name, value in values.items()}
        try:
            await self._request(RPC_PRESENCE_UPDATE, PresenceUpdate(room=info.key, identity=identity, **values))
        except RpcError as exc:
            log.warning("presence update refused", extra={"room": info.key, "code": exc.code})
            return False
        return True

    async def user_conference(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        if isinstance(data, dict) and await self._update(info, data.get("identity"), conference=data.get("conference")):
            await self._emit("user-conference", data, info)

    async def update_microphone_status(
        self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any
    ) -> None:
        if isinstance(data, dict) and await self._update(info, data.get("identity"), microphone=data.get("microphone")):
            await self._emit("update-microphone-status", data, info)

    async def update_camera_status(
        self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any
    ) -> None:
        if isinstance(data, dict):
            await self._update(info, data.get("identity"), camera=data.get("camera"))

    async def update_username(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("userName"), str):
            return
        if await self._update(info, data.get("identity"), userName=data["userName"]):
            await self._emit("update-username", data, info)
            await self._emit("user-list", {"status": "updateUserName", "userList": data}, info)

    async def get_user_detail(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        row = session.get("row")
        if not row:
            return
        identity = data.get("identity") if isinstance(data, dict) else None
        await self._emit(
            "user-detail", {"identity": identity, "userName": row.get("userName"), "userType": row.get("userType")},
            info, to=sid,
        )  # fmt: skip

    # ---- plain relays ---------------------------------------------------------------------------------------
    async def case_data(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        await self._emit("case-data", data, info)

    async def agent_close_room(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        if user.admin:
            await self._emit("agent-close-room", data, info)

    async def join_chat(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        if isinstance(data, str) and data and len(data) <= domain.MAX_NAME_LENGTH:
            await self.sockets.enter_room(sid, data, namespace=info.name)

    async def position(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        """Forwarded as is to ``/data/{linkID}`` (the CRM's live map)."""
        if not isinstance(data, dict):
            return
        link_id = data.get("linkID")
        namespace = domain.data_namespace(link_id) if isinstance(link_id, str) else None
        if namespace:
            await self.sockets.emit("position", data, namespace)

    # ---- forwarded to the owning service (contracts.<owner>, "remaining room socket events") ------------
    async def _ask(
        self, info: NamespaceInfo, subject: str, payload: Any, timeout: float = RPC_TIMEOUT
    ) -> tuple[bool, Any]:
        try:
            return True, await self._request(subject, payload, timeout)
        except RpcError as exc:
            log.warning("socket event not applied", extra={"room": info.key, "subject": subject, "code": exc.code})
            return False, None

    async def user_position(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        fields = domain.user_position(info.key, data)
        if fields is None:
            return
        ok, group = await self._ask(info, RPC_LINK_USER_POSITION, LinkUserPosition(**fields))
        if ok:
            await self._emit("user-position-group", group if group is not None else [], info)

    async def get_user_position_group(
        self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any
    ) -> None:
        ok, group = await self._ask(info, RPC_LINK_POSITION_GROUP, RoomQuery(room=info.key))
        if ok:
            await self._emit("user-position-group", group if group is not None else [], info, to=sid)

    async def get_user_list(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        ok, participants = await self._ask(info, RPC_CONFERENCE_PARTICIPANTS, RoomQuery(room=info.key))
        await self._emit("user-list", {"userList": participants if ok else False}, info, to=sid)

    async def track_muted_unmuted(
        self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any
    ) -> None:
        mute = domain.track_mute(info.key, data)
        if not user.admin or mute is None:
            return
        ok, _ = await self._ask(info, RPC_CONFERENCE_TRACK_MUTE, TrackMute(**mute))
        if ok:
            await self._emit("track-muted-unmuted", data, info)

    async def room_record(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        if not user.admin:
            return
        ok, result = await self._ask(info, RPC_RECORDING_TOGGLE, RoomQuery(room=info.key), RECORD_TOGGLE_TIMEOUT)
        if ok and result is not None:
            await self._emit("room-record", result, info)

    async def queue(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        """The SMS-link history page, to agents only (the original answered anyone on /newqueue), or to a
        socket COMPAT_OPEN_DASHBOARDS let in (each page it gets is a logged use)."""
        page = domain.queue_page(data)
        compat_client = session.get("compat_client") if isinstance(session, dict) else None
        if page is None or not (user.admin or compat_client):
            return
        if not user.admin:
            compat.log_use("dashboards", f"socket.io {info.name} queue", compat_client, "none (anonymous socket)")
        ok, reply = await self._ask(info, RPC_LINK_QUEUE_PAGE, QueuePage(**page))
        if ok and reply is not None:
            await self._emit("queue", reply, info, to=sid)

    # ---- admin commands -------------------------------------------------------------------------------------
    async def _command(self, info: NamespaceInfo, user: SocketUser, data: Any, event: str, payload: Any) -> None:
        if not user.admin or not isinstance(data, dict) or not isinstance(data.get("identity"), str):
            return
        target = await self.sessions.sid_of(info.name, domain.screen_owner(data["identity"]))
        if target:
            await self._emit(event, dict(payload), info, to=target)

    async def force_leave(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        await self._command(info, user, data, "force-leave-conference", domain.FORCE_LEAVE)

    async def force_stop_sharescreen(
        self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any
    ) -> None:
        await self._command(info, user, data, "force-stop-sharescreen", domain.FORCE_STOP_SHARESCREEN)

    # ---- waiting room (§6.2) --------------------------------------------------------------------------------
    async def auth_join(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        user_name = data.get("userName") if isinstance(data, dict) else None
        if user_name is not None and (not isinstance(user_name, str) or len(user_name) > 100):
            return
        await self.waiting.add(info.name, domain.waiting_entry(info.key, user_name, sid), time.time())
        await self._send_waiting_list(info, skip=sid)

    async def auth_join_answer(self, info: NamespaceInfo, sid: str, user: SocketUser, session: Any, data: Any) -> None:
        if not user.admin or not isinstance(data, dict):
            return
        answer, target = data.get("authJoin"), data.get("socketID")
        if answer not in ("admit", "deny") or not isinstance(target, str):
            return
        entry = next((e for e in await self.waiting.entries(info.name) if e.get("socketID") == target), None)
        if entry is None:
            return  # not waiting here (answered already, left, or another room's socket)
        user_name = data.get("userName") if isinstance(data.get("userName"), str) else entry.get("userName")
        identity = token = None
        if answer == "admit":
            try:
                issued = await self._request(
                    RPC_PRESENCE_ADMIT, PresenceAdmit(room=info.key, socketId=target, userName=user_name)
                )
            except RpcError as exc:
                log.warning("admit failed", extra={"room": info.key, "code": exc.code})
                return
            identity, token, user_name = issued["identity"], issued["token"], issued["userName"]
        await self.waiting.remove(info.name, target)
        await self._emit(
            "auth-join-conference-answer",
            {"authJoin": answer, "identity": identity, "userName": user_name, "token": token},
            info,
            to=target,
        )
        await self._send_waiting_list(info)

    async def _send_waiting_list(self, info: NamespaceInfo, skip: str | None = None) -> None:
        """The room's pending list to its admin sockets (also when it just became empty, §13.14)."""
        entries = await self.waiting.entries(info.name)
        await self.waiting.restart_tick(info.name, self.repeat_delay_ms)
        for admin in await self.sessions.admins(info.name):
            if admin != skip:
                await self._emit("auth-join-conference", entries, info, to=admin)

    async def _repeat_waiting_lists(self) -> None:
        """Every JOIN_ROOM_REPEAT_DELAY, one instance re-sends each non-empty room list (admins who connect
        later see pending requests); the per-room period lives in Redis (SET NX PX)."""
        step = min(1.0, self.repeat_delay_ms / 4000)
        while True:
            try:
                await asyncio.sleep(step)
                for namespace in await self.waiting.rooms():
                    info = domain.classify(namespace)
                    if info is None or info.kind != "room":
                        continue
                    if await self.waiting.take_tick(namespace, self.repeat_delay_ms):
                        entries = await self.waiting.entries(namespace)
                        if not entries:
                            continue
                        for admin in await self.sessions.admins(namespace):
                            await self._emit("auth-join-conference", entries, info, to=admin)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("waiting-room re-send failed")

    # ---- instances that died (§13.10) ----------------------------------------------------------------------
    async def _beat_and_sweep(self) -> None:
        while True:
            try:
                await self.instances.beat(HEARTBEAT_TTL)
                for other in await self.instances.dead():
                    if await self.instances.claim_sweep(other):
                        await self.sweep(other)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat or sweep failed")
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    async def sweep(self, other: str) -> None:
        """Do for each room socket of dead instance ``other`` what its disconnect handler would have done."""
        sockets = await self.instances.sockets_of(other)
        log.warning("sweeping a dead instance", extra={"instance": other, "sockets": len(sockets)})
        for sid, entry in sockets.items():
            info = domain.classify(str(entry.get("namespace") or ""))
            identity = entry.get("identity")
            # an identity that reconnected meanwhile (newer socket id in Redis) is left alone, like §13.12
            current = await self.sessions.sid_of(info.name, identity) if info and isinstance(identity, str) else None
            if info is not None and info.kind == "room" and isinstance(identity, str) and current in (None, sid):
                if await self.waiting.remove(info.name, sid):
                    await self._send_waiting_list(info)
                await self._emit("user-disconnect", domain.user_disconnect(entry), info)
                await self.sessions.disconnected(info.name, identity, sid)
                try:
                    await self._request(
                        RPC_PRESENCE_DISCONNECT, PresenceDisconnect(room=info.key, identity=identity, socketId=sid)
                    )
                except RpcError as exc:
                    log.warning("presence disconnect failed", extra={"room": info.key, "code": exc.code})
                    continue  # kept: the next sweep (lock expiry) retries
            await self.instances.forget(other, sid)
        if not await self.instances.sockets_of(other):
            await self.instances.drop(other)

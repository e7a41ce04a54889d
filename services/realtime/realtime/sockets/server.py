"""The Socket.IO server: namespace validation at connect time, emits through the Redis manager, and dispatch of
socket events to the handlers registered on it (realtime.app registers realtime.sockets.rooms' and
realtime.sockets.mobile's)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol
from urllib.parse import parse_qs

import msgspec
import socketio
import socketio.async_pubsub_manager
import socketio.packet
from prometheus_client import Counter, Gauge

from contracts.conference import RPC_ROOM_DETAIL, RPC_ROOM_SOCKET_LIVE, RoomQuery
from contracts.link import RPC_LINK_ROOM, LinkRoomQuery
from realtime.domain import (
    AUTH_ERROR,
    INVALID_NAMESPACE,
    STATIC_NAMESPACES,
    NamespaceInfo,
    SocketUser,
    classify,
    connection_success,
    is_agent,
    room_label,
    socket_user,
    task_uid,
    token_room_matches,
)
from realtime.repository import Registry
from servicekit import compat
from servicekit.bus import RpcError
from servicekit.tokens import TokenRejected, bearer_token, verify_token
from servicekit.web import Runtime

log = logging.getLogger("realtime.sockets.server")

NEWQUEUE = "/newqueue"
NEWQUEUE_EVENTS = {"queue"}  # the original attached every room handler to /newqueue; dashboards use only this
# Who a /newqueue socket let in by COMPAT_OPEN_DASHBOARDS is: nobody in particular (the original had no user there).
ANONYMOUS_DASHBOARD = SocketUser("", None, None, None, False, False)
# What COMPAT_OPEN_DASHBOARDS opens here besides the /api/realtime/* routes (for the start-up warning).
COMPAT_NAMESPACES = ("socket.io /newqueue (queue page included)", "socket.io /queue", "socket.io /notification")
# One pub/sub channel shared by every realtime instance (python-socketio's manager protocol).
MANAGER_CHANNEL = "realtime-socketio"
RESUBSCRIBE_S = 1.0  # while Redis is away, the pub/sub subscription is tried again this often
# How long a connect waits for the namespace's owner on a registry miss (socket.io-client's own connect
# timeout is 20 s; an owner that is down must not hold the handshake long).
OWNER_TIMEOUT_SECONDS = 1.5
# Pseudo room used to ask every instance to drop the local sockets of a namespace (room close).
_DISCONNECT_ALL = "\x00disconnect-all"

# Metrics (servicekit.metrics serves them): namespaces labelled by kind, never by name (rooms are unbounded).
CONNECTIONS = Gauge("ems_realtime_connections", "Sockets connected to this instance, by namespace kind", ["kind"])
EMITS = Counter("ems_realtime_emits_total", "Events emitted (to a namespace, room or socket)", ["kind"])
REFUSED = Counter("ems_realtime_handshakes_refused_total", "Namespace connects refused, by reason", ["reason"])
REFUSAL_REASONS = {INVALID_NAMESPACE: "invalid_namespace", AUTH_ERROR: "authentication"}
NAMESPACE_KINDS = ("room", "data", *(name.strip("/") or "root" for name in STATIC_NAMESPACES))


def namespace_kind(namespace: str) -> str:
    """A metric label for ``namespace``: ``room``, ``data``, or the static namespace's name (``root`` for /)."""
    info = classify(namespace)
    if info is None:
        return "invalid"
    return (info.key or "root") if info.kind == "static" else info.kind


class _MsgspecJson:
    """The ``json`` module python-socketio encodes packets with, backed by msgspec (several times faster than the
    standard library on every emit). Output is compact UTF-8 JSON, which socket.io clients parse alike."""

    @staticmethod
    def dumps(obj: Any, **_options: Any) -> str:
        return msgspec.json.encode(obj).decode()

    @staticmethod
    def loads(text: str | bytes, **_options: Any) -> Any:
        return msgspec.json.decode(text)


class JsonPacket(socketio.packet.Packet):
    """Socket.IO packets encoded with msgspec, and a quicker binary-attachment check with the same answer:
    python-socketio's recurses and builds a list per level of every payload it emits (a tenth of realtime's CPU
    with 100-row ``history`` emits); this one walks the payload once and stops at the first bytes."""

    json = _MsgspecJson

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        pending = [data]
        while pending:
            item = pending.pop()
            if isinstance(item, list):
                pending.extend(item)
            elif isinstance(item, dict):
                pending.extend(item.values())
            elif isinstance(item, bytes | bytearray):
                return True
        return False


# The pub/sub manager checks every emit for binary data with the module's Packet before publishing it: the same
# class with the quicker check (its (de)construction of binary data is the library's own).
socketio.async_pubsub_manager.Packet = JsonPacket  # type: ignore[attr-defined]


class RealtimeManager(socketio.AsyncRedisManager):
    """Redis manager that can also disconnect every socket of a namespace on all instances.

    Messages for the other instances are published in batches: those queued while a publish is in flight (or in
    the same event-loop turn) go out as one Redis message, and an instance skips its own batches without
    unpacking them (it handled their emits locally already). Only realtime instances share the channel, so
    nothing else needs the single-message format; single messages are still understood.
    """

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel=channel)
        self._outgoing: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._publisher: asyncio.Task[None] | None = None

    async def _publish(self, data: dict[str, Any]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outgoing.append((data, done))
        if self._publisher is None:
            self._publisher = asyncio.create_task(self._publish_queued())
        await done  # the caller resumes once its message is out, as with the one-by-one publish

    async def _publish_queued(self) -> None:
        try:
            while self._outgoing:
                await asyncio.sleep(0)  # let this turn's other emits join the batch
                batch, self._outgoing = self._outgoing, []
                try:
                    await super()._publish({"host_id": self.host_id, "batch": [message for message, _ in batch]})
                finally:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._publisher = None

    async def _redis_listen_with_retries(self) -> Any:
        """The subscription, subscribed again every ``RESUBSCRIBE_S`` while Redis is away (the library's back-off
        doubles up to 60 s): every message published between Redis coming back and the subscription is lost to
        this instance's sockets, so the gap is kept to about a second."""
        subscribed = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    await self.pubsub.subscribe(self.channel)
                    subscribed = True
                async for message in self.pubsub.listen():
                    yield message
            except Exception as exc:  # noqa: BLE001 - any Redis failure: subscribe again
                log.warning("Redis subscription lost; subscribing again", extra={"redis_exception": str(exc)})
                subscribed = False
                await asyncio.sleep(RESUBSCRIBE_S)

    async def _listen(self) -> Any:
        own = f'"host_id": "{self.host_id}"'.encode()
        async for raw in super()._listen():
            if isinstance(raw, bytes) and raw[1 : len(own) + 1] == own:
                continue  # our own batch, told without decoding it
            try:
                message = self.json.loads(raw)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if isinstance(message.get("batch"), list):
                if message.get("host_id") == self.host_id:
                    continue
                for item in message["batch"]:
                    if isinstance(item, dict):
                        yield item
            else:
                yield message

    def is_local(self, sid: str, namespace: str) -> bool:
        """Whether socket ``sid`` is connected (or connecting) to this instance."""
        return self.is_connected(sid, namespace) or self.is_pre_connected(sid, namespace)

    async def _handle_close_room(self, message: dict[str, Any]) -> None:
        if message.get("room") != _DISCONNECT_ALL:
            await super()._handle_close_room(message)
            return
        namespace = message.get("namespace") or "/"
        sids = [sid for sid, _ in self.get_participants(namespace, None)]
        for sid in sids:
            await self.server.disconnect(sid, namespace=namespace, ignore_queue=True)

    async def disconnect_namespace(self, namespace: str) -> None:
        await self.close_room(_DISCONNECT_ALL, namespace)


class RoomHandlers(Protocol):
    """Where the room namespaces' sockets (and /newqueue's ``queue``) go: connect, events, disconnect."""

    async def connected(self, info: NamespaceInfo, sid: str, user: SocketUser) -> None: ...

    async def handle(self, event: str, info: NamespaceInfo, sid: str, session: dict[str, Any], data: Any) -> None: ...

    async def disconnected(self, info: NamespaceInfo, sid: str, session: dict[str, Any]) -> None: ...


class MobileHandlers(Protocol):
    """Where the ``/mobile`` sockets go: connect (with the task uid of the handshake) and events."""

    async def connected(self, sid: str, uid: str | None) -> None: ...

    async def handle(self, event: str, sid: str, data: Any) -> None: ...


class RealtimeSockets:
    """Holds the python-socketio server, the runtime it needs once the service has started, and the handlers
    registered on it (``register``); it implements realtime.sockets.emitter.Emitter for them."""

    def __init__(self, redis_url: str) -> None:
        self.manager = RealtimeManager(redis_url, channel=MANAGER_CHANNEL)
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=self.manager,
            serializer=JsonPacket,
            # Off here: realtime.app puts servicekit's CORS middleware in front of the Socket.IO endpoint, so its
            # answers carry one set of headers from CORS_ALLOWED_ORIGINS and websocket upgrades are origin-checked.
            cors_allowed_origins=[],
            ping_interval=25,
            ping_timeout=60,
            transports=["polling", "websocket"],
            namespaces="*",
            logger=False,
            engineio_logger=False,
        )
        self.runtime: Runtime | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sio.on("connect", self._counted_connect, namespace="*")
        self.sio.on("disconnect", self._on_disconnect, namespace="*")
        self.sio.on("*", self._on_event, namespace="*")
        self.rooms: RoomHandlers | None = None
        self.mobile: MobileHandlers | None = None
        self._emits: dict[str, Any] = {}  # namespace kind -> EMITS child

    def register(self, *, rooms: RoomHandlers | None = None, mobile: MobileHandlers | None = None) -> None:
        """The handlers of room-namespace and ``/mobile`` sockets (until then their events are ignored)."""
        if rooms is not None:
            self.rooms = rooms
        if mobile is not None:
            self.mobile = mobile

    # ---- lifecycle ------------------------------------------------------------------------------------------
    async def start(self, runtime: Runtime) -> None:
        self.runtime = runtime
        if not self.sio.manager_initialized:  # listen to other instances' emits right away
            self.sio.manager_initialized = True
            self.manager.initialize()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        thread = getattr(self.manager, "thread", None)
        if thread is not None:
            thread.cancel()
        redis = getattr(self.manager, "redis", None)
        if redis is not None:
            await redis.aclose()

    @property
    def registry(self) -> Registry:
        assert self.runtime is not None and self.runtime.redis is not None, "realtime not started"
        return Registry(self.runtime.redis)

    # ---- emits (reach the clients of every instance through Redis) -----------------------------------------
    async def emit(self, event: str, data: Any, namespace: str, to: str | None = None) -> None:
        # A socket of this instance is reached directly: no round trip through Redis for replies to a sender.
        local = to is not None and self.manager.is_local(to, namespace)
        await self.sio.emit(event, data, namespace=namespace, to=to, ignore_queue=local)
        kind = namespace_kind(namespace)
        counter = self._emits.get(kind)
        if counter is None:
            counter = self._emits[kind] = EMITS.labels(kind)
        counter.inc()

    def count_connections(self) -> None:
        """Set ``ems_realtime_connections`` from the sockets this instance holds (read when scraped, so it never
        drifts from missed connects or disconnects)."""
        counts = dict.fromkeys(NAMESPACE_KINDS, 0)
        for namespace, rooms in list(self.manager.rooms.items()):
            kind = namespace_kind(namespace)
            counts[kind] = counts.get(kind, 0) + len(rooms.get(None, ()))
        for kind, count in counts.items():
            CONNECTIONS.labels(kind).set(count)

    async def close_namespace(self, namespace: str) -> None:
        """Disconnect every socket of ``namespace`` on all instances (clients see "io server disconnect")."""
        await self.manager.disconnect_namespace(namespace)

    # ---- per-socket state, for the handlers -----------------------------------------------------------------
    async def enter_room(self, sid: str, room: str, namespace: str) -> None:
        await self.sio.enter_room(sid, room, namespace=namespace)

    async def get_session(self, sid: str, namespace: str) -> dict[str, Any]:
        return await self.sio.get_session(sid, namespace=namespace)

    async def save_session(self, sid: str, session: dict[str, Any], namespace: str) -> None:
        await self.sio.save_session(sid, session, namespace=namespace)

    async def disconnect(self, sid: str, namespace: str) -> None:
        await self.sio.disconnect(sid, namespace=namespace)

    # ---- connection ---------------------------------------------------------------------------------------
    async def is_valid(self, namespace: str) -> NamespaceInfo | None:
        info = classify(namespace)
        if info is None:
            return None
        if info.kind == "static" or await self.registry.contains(namespace):
            return info
        if await self._owner_says_live(info):
            return info
        return None

    async def _owner_says_live(self, info: NamespaceInfo) -> bool:
        """A registry miss is asked of the namespace's owner before the connect is refused.

        The registry is filled from events, which reach realtime some milliseconds (seconds on a busy machine)
        after the HTTP reply that told a client about the namespace; socket.io-client does not retry a refused
        namespace. The owner commits before it answers, so asking it gives read-your-writes on every instance,
        for every way a namespace comes to life (link create, room create, /case/get, a migrated row), without
        making those writes wait for realtime. The answer is not written to the registry: the event does that,
        and a close racing with this question must not be undone by it. Unknown names cost one request."""
        bus = self.runtime.bus if self.runtime is not None else None
        if bus is None or info.kind == "static":
            return False
        try:
            if info.kind == "data":
                await bus.request(RPC_LINK_ROOM, LinkRoomQuery(linkID=info.key), timeout=OWNER_TIMEOUT_SECONDS)
                return True  # a link's /data namespace lives as long as the link (the original never closed it)
            reply = await bus.request(RPC_ROOM_SOCKET_LIVE, RoomQuery(room=info.key), timeout=OWNER_TIMEOUT_SECONDS)
        except RpcError as exc:
            if exc.code != "not_found":
                log.warning("namespace owner unavailable", extra={"namespace": info.name, "code": exc.code})
            return False
        return isinstance(reply, dict) and reply.get("live") is True

    async def _counted_connect(self, namespace: str, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            await self._on_connect(namespace, sid, environ, auth)
        except socketio.exceptions.ConnectionRefusedError as exc:
            message = exc.error_args.get("message") if isinstance(exc.error_args, dict) else None
            REFUSED.labels(REFUSAL_REASONS.get(message or "", "other")).inc()
            raise
        except Exception:
            REFUSED.labels("error").inc()
            raise

    async def _on_connect(self, namespace: str, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        info = await self.is_valid(namespace)
        if info is None:
            raise socketio.exceptions.ConnectionRefusedError(INVALID_NAMESPACE)
        if info.name == "/":
            return
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if info.name == "/mobile":  # the task uid is the crew app's only credential (realtime.md §7)
            if self.mobile is not None:
                self._spawn(self._after_connect(self.mobile.connected(sid, task_uid(query))))
            return
        compat_client: str | None = None
        if info.kind == "static":  # the dashboards: agents only (the original let anyone in)
            claims, problem = self._token(query, auth)
            if claims is None or not is_agent(claims):
                compat_client = self._compat_use(info.name, environ, problem or "not an agent token")
                if compat_client is None:
                    raise socketio.exceptions.ConnectionRefusedError(AUTH_ERROR)
        else:
            claims = self._authenticate(info, query, auth)
        if info.name == "/queue":
            return
        if info.name == "/notification":
            self._spawn(self._emit_soon("log", {"message": "connected to notifications"}, info.name, sid))
            return
        user: SocketUser | None
        if compat_client is not None:  # /newqueue let in by COMPAT_OPEN_DASHBOARDS: anonymous, as the original
            user = ANONYMOUS_DASHBOARD
        elif info.kind == "room" or info.name == NEWQUEUE:
            assert claims is not None
            user = socket_user(claims, (query.get("userName") or [None])[0])
        else:
            user = None
        if info.kind == "room" and user is None:
            raise socketio.exceptions.ConnectionRefusedError(AUTH_ERROR)
        session = {"user": user, "row": None, "compat_client": compat_client}
        await self.sio.save_session(sid, session, namespace=info.name)
        self._spawn(self._greet(sid, info, user))

    def _token(self, query: dict[str, list[str]], auth: Any) -> tuple[dict[str, Any] | None, str]:
        """Claims of the handshake's LiveKit token (``query.token`` like the original, or ``auth.token``), or
        None and why not (servicekit.compat's wording)."""
        raw = (query.get("token") or [None])[0]
        if not raw and isinstance(auth, dict) and isinstance(auth.get("token"), str):
            raw = auth["token"]
        assert self.runtime is not None
        try:
            return verify_token(bearer_token(raw), self.runtime.settings.livekit_api_secret), ""
        except TokenRejected as exc:
            return None, compat.rejection(exc)

    def _authenticate(self, info: NamespaceInfo, query: dict[str, list[str]], auth: Any) -> dict[str, Any]:
        """A valid token; a room-bound token only opens its own room."""
        claims, _ = self._token(query, auth)
        if claims is None or (info.kind == "room" and not token_room_matches(claims, info.key)):
            raise socketio.exceptions.ConnectionRefusedError(AUTH_ERROR)
        return claims

    def _compat_use(self, namespace: str, environ: dict[str, Any], credential: str) -> str | None:
        """The client's address when COMPAT_OPEN_DASHBOARDS lets a dashboard socket in without an agent token
        (the use is logged), else None."""
        assert self.runtime is not None
        if not compat.is_open(self.runtime.settings, "dashboards"):
            return None
        scope = environ.get("asgi.scope") or {}
        peer = scope.get("client")
        forwarded_for = environ.get("HTTP_X_FORWARDED_FOR")
        client = compat.client_address(environ.get("HTTP_X_REAL_IP"), forwarded_for, peer[0] if peer else None)
        compat.log_use("dashboards", f"socket.io {namespace}", client, credential, forwarded_for)
        return client

    async def _after_connect(self, coro: Any) -> None:
        await asyncio.sleep(0)  # after the CONNECT packet has been queued
        await coro

    async def _emit_soon(self, event: str, data: Any, namespace: str, sid: str) -> None:
        await asyncio.sleep(0)  # after the CONNECT packet has been queued
        await self.emit(event, data, namespace, to=sid)

    async def _greet(self, sid: str, info: NamespaceInfo, user: SocketUser | None) -> None:
        """``log`` to the new socket, then (rooms) ``user-connection`` to the namespace, and
        ``connection-success`` (room row fields when the room has one) to the socket."""
        await self._emit_soon("log", {"message": "connection success"}, info.name, sid)
        room = room_label(info)
        if info.kind == "room" and user is not None and self.rooms is not None:
            detail, _ = await asyncio.gather(self._room_detail(info.key), self.rooms.connected(info, sid, user))
        else:
            detail = None
        await self.emit("connection-success", connection_success(room, detail), info.name, to=sid)

    async def _room_detail(self, room: str) -> dict[str, Any] | None:
        assert self.runtime is not None
        if self.runtime.bus is None:
            return None
        try:
            detail = await self.runtime.bus.request(RPC_ROOM_DETAIL, RoomQuery(room=room), timeout=1.5)
        except RpcError as exc:
            if exc.code != "not_found":
                log.warning("room detail unavailable", extra={"room": room, "code": exc.code})
            return None
        return detail if isinstance(detail, dict) else None

    async def _on_disconnect(self, namespace: str, sid: str, reason: Any = None) -> None:
        info = classify(namespace)
        if info is None or info.kind != "room" or self.rooms is None:
            return
        try:
            session = await self.sio.get_session(sid, namespace=namespace)
        except KeyError:
            return
        await self.rooms.disconnected(info, sid, session)

    async def _on_event(self, event: str, namespace: str, sid: str, *args: Any) -> None:
        info = classify(namespace)
        if info is not None and info.name == "/mobile" and self.mobile is not None:
            try:
                await self.mobile.handle(event, sid, args[0] if args else None)
            except Exception:
                log.exception("mobile event failed", extra={"event": event})
            return
        if info is None or self.rooms is None:
            return
        if info.kind != "room" and not (info.name == NEWQUEUE and event in NEWQUEUE_EVENTS):
            return  # /queue, /data/*, /notification: server push only; /newqueue: the dashboards' `queue` only
        try:
            session = await self.sio.get_session(sid, namespace=namespace)
        except KeyError:
            return
        try:
            await self.rooms.handle(event, info, sid, session, args[0] if args else None)
        except Exception:
            log.exception("socket event failed", extra={"event": event, "namespace": namespace})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

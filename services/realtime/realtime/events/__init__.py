"""Events realtime consumes (link, conference and recording streams) and the Socket.IO emits they cause.

Each durable consumer is shared by every realtime instance, so JetStream hands an event to one instance; that
instance emits through the Redis manager, which reaches the clients of all instances. A Redis mark per event
id makes redeliveries harmless. :mod:`.rebuild` refills the namespace registry from the owners' snapshots.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from contracts.conference import (
    CASE_CREATED,
    CASE_ROOM_OPENED,
    CASE_UPDATED,
    NOTIFICATION_CREATED,
    ROOM_CLOSED,
    ROOM_CREATED,
    ROOM_TYPE_CHANGED,
    ROOM_UPDATED,
    RPC_ROOM_DETAIL,
    TRACK_MUTED,
    RoomQuery,
)
from contracts.link import (
    HISTORIES_MAX,
    LINK_CREATED,
    LINK_LOCATION_UPDATED,
    LINK_MULTI_LATLNG,
    RPC_LINK_ROOM_HISTORY,
    RPC_LINK_STATUS_HISTORIES,
    RPC_LINK_STATUS_HISTORY,
    LinkHistoriesQuery,
    LinkHistoryQuery,
    LinkRoomHistoryQuery,
)
from contracts.recording import RECORDING_EGRESS_STARTED
from contracts.telemetry import CAR_POSITION_UPDATED, TASK_DESTINATION_CHANGED, TASK_STATUS_CHANGED
from realtime.domain import (
    UPDATE_LATLNG_CASE_DATA,
    data_namespace,
    egress_room_record,
    position_payload,
    room_data_update,
    room_namespace,
    room_update_case_data,
)
from realtime.repository import HandledEvents, Registry, pending_ttl
from realtime.sockets.emitter import Emitter
from realtime.sockets.mobile import MobileEvents
from servicekit.bus import Event, RpcError
from servicekit.web import Runtime

log = logging.getLogger("realtime.events")

LINK_CONSUMER = "realtime-link"
CONFERENCE_CONSUMER = "realtime-conference"
RECORDING_CONSUMER = "realtime-recording"
TELEMETRY_CONSUMER = "realtime-telemetry"
HISTORY_DELAY_SECONDS = 1.0  # the original pushed `history` one second after the change
HISTORY_TICK_SECONDS = 0.1  # how often due pushes are looked for: each goes out within this of its second


def audience_key(event: Event) -> str:
    """The room (or task, or link) an event is about: events of one key are emitted in stream order."""
    data = event.data
    return str(data.get("room") or data.get("uid") or data.get("linkID") or event.id)


class EventPending(Exception):
    """The event is being applied by another instance (its claim has not lapsed yet)."""


class EventHandlers:
    def __init__(self, runtime: Runtime, sockets: Emitter, mobile: MobileEvents) -> None:
        assert runtime.redis is not None
        self.runtime = runtime
        self.sockets = sockets
        self.mobile = mobile
        self.registry = Registry(runtime.redis)
        self.handled = HandledEvents(runtime.redis, pending_ttl(runtime.settings.nats_ack_wait_seconds))
        self._tasks: set[asyncio.Task[Any]] = set()
        # (linkID, linkType) whose history push is scheduled -> when it is due (time.monotonic())
        self._history_due: dict[tuple[str, str], float] = {}
        self._history_pusher: asyncio.Task[None] | None = None
        self._routes: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            LINK_CREATED: self.link_created,
            LINK_LOCATION_UPDATED: self.link_location_updated,
            LINK_MULTI_LATLNG: self.link_multi_latlng,
            ROOM_CREATED: self.room_created,
            ROOM_CLOSED: self.room_closed,
            ROOM_UPDATED: self.room_updated,
            ROOM_TYPE_CHANGED: self.room_type_changed,
            TRACK_MUTED: self.track_muted,
            CASE_CREATED: self.case_created,
            CASE_UPDATED: self.case_updated,
            CASE_ROOM_OPENED: self.case_room_opened,
            NOTIFICATION_CREATED: self.notification_created,
            RECORDING_EGRESS_STARTED: self.egress_started,
            TASK_STATUS_CHANGED: self.task_status_changed,
            TASK_DESTINATION_CHANGED: self.task_destination_changed,
            CAR_POSITION_UPDATED: self.car_position_updated,
        }

    def start(self) -> None:
        bus = self.runtime.bus
        assert bus is not None
        # Emits of different rooms don't wait for each other; one room's events keep their order.
        for owner, consumer in (("link", LINK_CONSUMER), ("conference", CONFERENCE_CONSUMER),
                                ("recording", RECORDING_CONSUMER), ("telemetry", TELEMETRY_CONSUMER)):  # fmt: skip
            bus.consume(owner, consumer, self._dispatcher(consumer), order_key=audience_key)

    def stop(self) -> None:
        for task in [*self._tasks, *([self._history_pusher] if self._history_pusher else [])]:
            task.cancel()

    def _dispatcher(self, consumer: str) -> Callable[[Event], Awaitable[None]]:
        async def handle(event: Event) -> None:
            route = self._routes.get(event.subject)
            if route is None:
                return
            claim = await self.handled.claim(consumer, event.id)
            if claim == "done":
                log.info("duplicate event skipped", extra={"event_id": event.id, "subject": event.subject})
                return
            if claim == "pending":  # another instance is applying it: nak, look again later
                raise EventPending(event.id)
            try:
                await route(event.data)
            except Exception:
                await self.handled.release(consumer, event.id)  # let the redelivery apply it
                raise
            self.handled.done(consumer, event.id)

        return handle

    # ---- link ---------------------------------------------------------------------------------------------
    async def link_created(self, data: dict[str, Any]) -> None:
        names: list[str] = []
        link_ns = data_namespace(str(data.get("linkID") or ""))
        if link_ns:
            names.append(link_ns)
        room = str(data.get("room") or "")
        room_ns = room_namespace(room)
        if room_ns and (data.get("roomCreated") or await self._room_is_open(room)):
            names.append(room_ns)
        await self.registry.add(*names)

    async def _room_is_open(self, room: str) -> bool:
        """Whether an existing room takes socket connections; when conference cannot say, the new link wins."""
        assert self.runtime.bus is not None
        try:
            detail = await self.runtime.bus.request(RPC_ROOM_DETAIL, RoomQuery(room=room), timeout=2.0)
        except RpcError as exc:
            if exc.code == "not_found":
                return False
            log.warning("room detail unavailable; registering the room", extra={"room": room, "code": exc.code})
            return True
        return isinstance(detail, dict) and detail.get("status") == "open"

    async def link_location_updated(self, data: dict[str, Any]) -> None:
        link_id = str(data.get("linkID") or "")
        link_ns = data_namespace(link_id)
        room_ns = room_namespace(str(data.get("room") or ""))
        # Two namespaces, no order between them: emitted together, so one Redis message carries both.
        await asyncio.gather(
            *([self.sockets.emit("position", position_payload(data), link_ns)] if link_ns else []),
            *([self.sockets.emit("case-data", dict(UPDATE_LATLNG_CASE_DATA), room_ns)] if room_ns else []),
        )
        if link_ns:
            self.schedule_history(link_id, "location")

    # POST /link/multilatlng/send: ``position`` on /data/{linkID} with the object the route answered.
    async def link_multi_latlng(self, data: dict[str, Any]) -> None:
        link_ns = data_namespace(str(data.get("linkID") or ""))
        emit = data.get("emit")
        if link_ns and isinstance(emit, dict):
            await self.sockets.emit("position", emit, link_ns)

    def schedule_history(self, link_id: str, link_type: str) -> None:
        """A ``history`` push one second from now, unless one is already due: that one reads the timeline after
        this change too (its row committed before the event was published), so a link that reports positions
        faster than once a second gets one timeline of up to 100 rows a second, not one per position. The pushes
        due at one moment go out together (:meth:`_push_due_histories`)."""
        key = (link_id, link_type)
        if key in self._history_due:
            return
        self._history_due[key] = time.monotonic() + HISTORY_DELAY_SECONDS
        if self._history_pusher is None or self._history_pusher.done():
            self._history_pusher = asyncio.create_task(self._push_due_histories())

    async def _push_due_histories(self) -> None:
        """While pushes are scheduled: every HISTORY_TICK_SECONDS, those due, asked of link HISTORIES_MAX links a
        request and emitted together (one request and one Redis publish for many links, not one each)."""
        while self._history_due:
            await asyncio.sleep(HISTORY_TICK_SECONDS)
            now = time.monotonic()
            due = [key for key, at in self._history_due.items() if at <= now]
            for key in due:
                del self._history_due[key]  # later changes need a push of their own
            chunks = [due[start : start + HISTORIES_MAX] for start in range(0, len(due), HISTORIES_MAX)]
            for failed in await asyncio.gather(*(self._push_histories(c) for c in chunks), return_exceptions=True):
                if isinstance(failed, Exception):
                    log.error("history pushes failed", exc_info=failed)

    async def _one_history(self, query: LinkHistoryQuery) -> Any:
        assert self.runtime.bus is not None
        try:
            return await self.runtime.bus.request(RPC_LINK_STATUS_HISTORY, query, timeout=2.0)
        except RpcError as exc:
            log.warning("link history unavailable", extra={"linkID": query.linkID, "code": exc.code})
            return None  # not pushed

    async def _push_histories(self, links: list[tuple[str, str]]) -> None:
        """``history`` (each link's status timeline) to each ``/data/{linkID}``."""
        assert self.runtime.bus is not None
        query = LinkHistoriesQuery(links=[LinkHistoryQuery(linkID=link, linkType=kind) for link, kind in links])
        try:
            timelines = await self.runtime.bus.request(RPC_LINK_STATUS_HISTORIES, query, timeout=2.0)
        except RpcError as exc:
            if exc.code != "unavailable":
                log.warning("link histories unavailable", extra={"links": len(links), "code": exc.code})
                return
            # No link instance answers the batched request (link not upgraded yet in a rolling update): one each.
            timelines = await asyncio.gather(*(self._one_history(each) for each in query.links))
        if not isinstance(timelines, list) or len(timelines) != len(links):
            log.error("link histories: a reply that does not match the request", extra={"links": len(links)})
            return
        emits = []
        for (link_id, _kind), rows in zip(links, timelines, strict=True):
            namespace = data_namespace(link_id)
            if namespace is not None and rows is not None:
                emits.append(self.sockets.emit("history", rows if rows else False, namespace))
        for failed in await asyncio.gather(*emits, return_exceptions=True):
            if isinstance(failed, Exception):
                log.error("history push failed", exc_info=failed)

    # ---- conference ---------------------------------------------------------------------------------------
    async def room_created(self, data: dict[str, Any]) -> None:
        room_ns = room_namespace(str(data.get("room") or ""))
        if room_ns:
            await self.registry.add(room_ns)

    async def room_updated(self, data: dict[str, Any]) -> None:
        room_ns = room_namespace(str(data.get("room") or ""))
        if not room_ns:
            return
        if data.get("status") == "open":
            await self.registry.add(room_ns)
        await self.sockets.emit("case-data", room_update_case_data(str(data.get("roomType") or "")), room_ns)

    # PUT /room/updatetype: ``room-data`` roomUpdate on /{room}.
    async def room_type_changed(self, data: dict[str, Any]) -> None:
        room = str(data.get("room") or "")
        room_ns = room_namespace(room)
        if room_ns:
            await self.sockets.emit("room-data", room_data_update(room, data.get("roomType")), room_ns)

    # PUT /user/handle/track: ``track-muted-unmuted`` on /{room} with the request body as the original got it.
    async def track_muted(self, data: dict[str, Any]) -> None:
        room_ns = room_namespace(str(data.get("room") or ""))
        payload = data.get("payload")
        if room_ns and isinstance(payload, dict):
            await self.sockets.emit("track-muted-unmuted", payload, room_ns)

    async def room_closed(self, data: dict[str, Any]) -> None:
        """For PUT /room/close (closedBy "close"): ``queue`` closeRoom to the dashboards on /queue when link has a
        history row for the room. Then every socket of /{room} (and, for the expiry sweep, /data/{room}) is
        disconnected and the namespace unregistered (later connects get "Invalid namespace"), in that order."""
        room = str(data.get("room") or "")
        room_ns = room_namespace(room)
        if not room_ns:
            return
        closed_by = data.get("closedBy")
        if closed_by == "close":
            row = await self._first_history_row(room)
            if row:
                await self.sockets.emit("queue", {"status": "closeRoom", "data": row}, "/queue")
        names = [room_ns]
        data_ns = data_namespace(room)
        if closed_by == "expired" and data_ns:
            names.append(data_ns)
        await self.registry.remove(*names)
        for name in names:
            await self.sockets.close_namespace(name)

    # GET /case/get found the case's room without a live namespace: the original registered /{room} again.
    async def case_room_opened(self, data: dict[str, Any]) -> None:
        room_ns = room_namespace(str(data.get("room") or ""))
        if room_ns:
            await self.registry.add(room_ns)

    async def _first_history_row(self, room: str) -> Any:
        assert self.runtime.bus is not None
        try:
            return await self.runtime.bus.request(RPC_LINK_ROOM_HISTORY, LinkRoomHistoryQuery(room=room), timeout=2.0)
        except RpcError as exc:
            log.warning("room history row unavailable", extra={"room": room, "code": exc.code})
            return None

    # POST /case/create and PUT /case/update: the original emitted on /newqueue right after the change.
    async def case_created(self, data: dict[str, Any]) -> None:
        await self.sockets.emit("case-data", {"action": "caseCreated"}, "/newqueue")

    async def case_updated(self, data: dict[str, Any]) -> None:
        await self.sockets.emit("case-data", {"action": "caseUpdated"}, "/newqueue")

    # The conversion plan's /notification namespace (the Go port's `new` event): the created row, as the
    # /notification REST routes answer it.
    async def notification_created(self, data: dict[str, Any]) -> None:
        await self.sockets.emit("new", data, "/notification")

    # ---- recording ----------------------------------------------------------------------------------------
    # LiveKit's egress_started webhook: ``room-record`` on /{roomName} (egressInfo + dtmStartRecord/StopRecord).
    async def egress_started(self, data: dict[str, Any]) -> None:
        room_ns = room_namespace(str(data.get("room") or ""))
        if room_ns:
            await self.sockets.emit("room-record", egress_room_record(data), room_ns)

    # ---- telemetry (ambulance tasks) -----------------------------------------------------------------------
    async def task_status_changed(self, data: dict[str, Any]) -> None:
        uid, status = data.get("uid"), data.get("status")
        if isinstance(uid, str) and uid and isinstance(status, str):
            await self.mobile.task_status(uid, status, data.get("destination"))

    async def task_destination_changed(self, data: dict[str, Any]) -> None:
        uid, position = data.get("uid"), data.get("position")
        if isinstance(uid, str) and uid and isinstance(position, dict):
            await self.mobile.task_destination(uid, position)

    async def car_position_updated(self, data: dict[str, Any]) -> None:
        room_ns = room_namespace(str(data.get("room") or ""))
        if room_ns and isinstance(data.get("row"), dict):
            await self.sockets.emit("car-position", data["row"], room_ns)

    def _later(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

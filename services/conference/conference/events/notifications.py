"""Notifications over NATS: each write publishes ``conference.notification.created`` / ``.read`` in its
transaction, and the hub feeding the Server-Sent Events stream ``/notification/events``.

The hub listens to ``conference.notification.created`` with a plain NATS subscription (no queue group), so
every replica sees every new notification, whichever replica wrote it, and passes it to its own SSE clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from conference import repository
from conference.domain import notification_json
from contracts.conference import NOTIFICATION_CREATED, NOTIFICATION_READ, NotificationChanged
from servicekit.bus import Event, add_event
from servicekit.clock import now_local
from servicekit.db import Database

log = logging.getLogger(__name__)


async def create_notification(db: Database, values: dict[str, Any]) -> dict[str, Any]:
    """Insert a notification and its ``conference.notification.created`` event in one transaction."""
    async with db.transaction() as conn:
        new_id = await repository.notifications.insert_notification(conn, values, now_local())
        row = await repository.notifications.notification_by_id(conn, new_id)
        assert row is not None
        notification = notification_json(row)
        await add_event(conn, NOTIFICATION_CREATED, msgspec.convert(notification, NotificationChanged))
    return notification


async def set_notification_read(db: Database, notification_id: int, read: int) -> dict[str, Any] | None:
    """Mark read (dtmRead = now) or unread (dtmRead = NULL); None when the notification does not exist."""
    async with db.transaction() as conn:
        changed = await repository.notifications.set_read(
            conn, notification_id, read, now_local() if read == 1 else None
        )
        row = await repository.notifications.notification_by_id(conn, notification_id)
        if row is None:
            return None
        notification = notification_json(row)
        await add_event(conn, NOTIFICATION_READ, msgspec.convert(notification, NotificationChanged))
    return {"notificationId": notification_id, "read": read, "affectedRows": changed, "notification": notification}


# ---- the SSE hub -----------------------------------------------------------------------------------------
QUEUE_SIZE = 100
_event_decoder = msgspec.json.Decoder(Event)


class NotificationHub:
    """Hands every new notification (from any replica, via NATS) to this replica's SSE clients."""

    def __init__(self) -> None:
        self._clients: set[asyncio.Queue[dict[str, Any]]] = set()
        self._subscription: Any = None
        self._lock = asyncio.Lock()

    @property
    def active(self) -> int:
        return len(self._clients)

    async def start(self, nc: Any) -> None:
        async with self._lock:
            if self._subscription is None:
                self._subscription = await nc.subscribe(NOTIFICATION_CREATED, cb=self._on_message)
                await nc.flush(timeout=2)  # registered before the first client's stream starts

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def _on_message(self, msg: Any) -> None:
        try:
            event = _event_decoder.decode(msg.data)
        except msgspec.DecodeError:
            log.warning("undecodable notification event dropped")
            return
        self.publish(event.data)

    def publish(self, notification: dict[str, Any]) -> None:
        for queue in list(self._clients):
            try:
                queue.put_nowait(notification)
            except asyncio.QueueFull:  # a client that does not read loses old news, never blocks the others
                log.warning("SSE client queue full; notification dropped")

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._clients.add(queue)
        try:
            yield queue
        finally:
            self._clients.discard(queue)

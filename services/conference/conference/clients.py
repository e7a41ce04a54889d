"""The third party conference calls: LiveKit. Which server a room lives on, its signing key, and the RoomService
calls we make (:class:`LiveKitNodes`); the ``crm`` token of GET /case/get (:func:`crm_token`).

Nodes come from table ``node_livekit`` when it has rows (the room's remembered ``nodeLivekitId``, else the
first healthy node, else the first node: ``domain.choose_node``); otherwise the env default node (``LIVEKIT_HOST``
+ key/secret). Server-to-server calls use a node's ``livekitLocal`` URL when set, else its ``livekitHost``.
Tokens are signed with the chosen node's key/secret. RoomService calls are bounded by timeouts:
:meth:`LiveKitNodes.call` raises :class:`LiveKitError` (LiveKit answered a Twirp error: ``code``/``msg`` as the
original returned them) or :class:`LiveKitUnavailable` (no server, refused, 5xx, or no answer within the bound).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import aiohttp
from livekit import api

from conference import repository
from conference.domain import (
    LIVEKIT_EMPTY_TIMEOUT,
    LIVEKIT_MAX_PARTICIPANTS,
    Node,
    SigningKey,
    choose_node,
    http_url,
    node_from_row,
    proto_to_json,
    random_identity,
)
from servicekit.clock import now_local
from servicekit.db import Database

log = logging.getLogger(__name__)

CRM_TOKEN_TTL = timedelta(days=365)
CREATE_ROOM_TIMEOUT = 5.0
LIST_PARTICIPANTS_TIMEOUT = 2.0
CALL_TIMEOUT = 3.0  # RoomService calls made for an HTTP request: a hung node costs at most this
HEALTH_TIMEOUT = 5.0


class LiveKitError(Exception):
    """LiveKit answered with a Twirp error (4xx): ``code``/``msg`` as in its JSON error body."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code, self.msg = code, msg

    def body(self) -> dict[str, str]:
        return {"code": self.code, "msg": self.msg}


class LiveKitUnavailable(Exception):
    """No LiveKit server configured, connection failed, a 5xx answer, or no answer in time."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class LiveKitNodes:
    """Resolves nodes and holds one RoomService client per server URL."""

    def __init__(self, db: Database, host: str, api_key: str, api_secret: str, cache_seconds: float = 30.0) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._rows: list[dict[str, Any]] = []
        self._rows_loaded_at = float("-inf")
        self.default = Node(
            id=None, name="default", api_url=http_url(host.strip()), key=SigningKey(api_key, api_secret)
        )
        self._clients: dict[tuple[str, str, str], api.LiveKitAPI] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _cached_rows(self) -> list[dict[str, Any]]:
        # Every token needs a node: the table is read at most once per cache period, not per request.
        if time.monotonic() - self._rows_loaded_at >= self.cache_seconds:
            self._rows = await repository.nodes.livekit_nodes(self.db)
            self._rows_loaded_at = time.monotonic()
        return self._rows

    async def for_room(self, remembered_id: int | None) -> Node:
        return choose_node(await self._cached_rows(), remembered_id, self.default, now_local())

    def _client(self, node: Node) -> api.LiveKitAPI:
        key = (node.api_url, node.key.api_key, node.key.api_secret)
        client = self._clients.get(key)
        if client is None:
            client = api.LiveKitAPI(
                node.api_url,
                node.key.api_key,
                node.key.api_secret,
                timeout=aiohttp.ClientTimeout(total=CREATE_ROOM_TIMEOUT),
                failover=False,
            )
            self._clients[key] = client
        return client

    async def create_room(self, node: Node, room: str) -> bool:
        """CreateRoom as the original (emptyTimeout 600 s, maxParticipants 100); False on any failure."""
        if not node.api_url:
            return False
        try:
            async with asyncio.timeout(CREATE_ROOM_TIMEOUT):
                await self._client(node).room.create_room(
                    api.CreateRoomRequest(
                        name=room, empty_timeout=LIVEKIT_EMPTY_TIMEOUT, max_participants=LIVEKIT_MAX_PARTICIPANTS
                    )
                )
            return True
        except Exception as exc:
            log.warning("LiveKit CreateRoom failed", extra={"room": room, "node": node.name, "error": repr(exc)})
            return False

    def create_room_later(self, node: Node, room: str) -> None:
        """Fire the CreateRoom without holding up the caller (the original did not wait either)."""
        if not node.api_url:
            return
        task = asyncio.create_task(self.create_room(node, room))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def list_participants(self, node: Node, room: str) -> list[dict[str, Any]]:
        """The room's participants as JSON objects; [] without a server or on any failure (2 s bound)."""
        if not node.api_url:
            return []
        try:
            async with asyncio.timeout(LIST_PARTICIPANTS_TIMEOUT):
                reply = await self._client(node).room.list_participants(api.ListParticipantsRequest(room=room))
        except Exception as exc:
            log.warning("LiveKit ListParticipants failed", extra={"room": room, "node": node.name, "error": repr(exc)})
            return []
        return [proto_to_json(p) for p in reply.participants]

    async def call(self, node: Node, method: str, request: Any, timeout: float = CALL_TIMEOUT) -> Any:
        """``RoomService.<method>(request)`` on ``node`` within ``timeout`` seconds (see the module doc)."""
        if not node.api_url:
            raise LiveKitUnavailable("no LiveKit server configured")
        try:
            async with asyncio.timeout(timeout):
                return await getattr(self._client(node).room, method)(request)
        except TimeoutError as exc:
            log.warning("LiveKit call timed out", extra={"method": method, "node": node.name})
            raise LiveKitUnavailable("LiveKit did not answer in time", timed_out=True) from exc
        except api.TwirpError as exc:
            status = getattr(exc, "status", 500) or 500
            if status >= 500:
                log.warning("LiveKit call failed", extra={"method": method, "node": node.name, "error": str(exc)})
                raise LiveKitUnavailable(f"LiveKit error: {exc.message}") from exc
            raise LiveKitError(str(exc.code), exc.message) from exc
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("LiveKit unreachable", extra={"method": method, "node": node.name, "error": repr(exc)})
            raise LiveKitUnavailable("LiveKit unreachable") from exc

    async def node_of_room(self, room: str) -> Node:
        """The node a room lives on (its remembered nodeLivekitId), else the node new rooms go to."""
        head = await repository.rooms.room_head(self.db, room)
        return await self.for_room(head["nodeLivekitId"] if head else None)

    async def by_api_key(self, api_key: str) -> Node | None:
        """The node signing with ``api_key`` (the first by id; the env default key: the default node), or None."""
        if api_key == self.default.key.api_key:
            return self.default
        for row in await self._cached_rows():
            node = node_from_row(row, self.default.key)
            if node.key.api_key == api_key:
                return node
        return None

    async def all_nodes(self) -> list[Node]:
        """Every node_livekit row as a node (fresh read), or just the env default node when the table is empty."""
        rows = await repository.nodes.livekit_nodes(self.db)
        if not rows:
            return [self.default]
        return [node_from_row(row, self.default.key) for row in rows]

    async def is_healthy(self, node: Node) -> bool:
        """ListRooms answers (the health probe of the original's successor)."""
        try:
            await self.call(node, "list_rooms", api.ListRoomsRequest(), timeout=HEALTH_TIMEOUT)
        except (LiveKitError, LiveKitUnavailable):
            return False
        return True

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in self._clients.values():
            try:
                await client.aclose()
            except Exception:
                log.debug("closing a LiveKit client failed", exc_info=True)
        self._clients.clear()


def crm_token(api_key: str, api_secret: str) -> str:
    """The original ``createToken({name:"crm", days:365})``: random identity, name ``crm``, no room join."""
    return (
        api.AccessToken(api_key, api_secret)
        .with_identity(random_identity())
        .with_name("crm")
        .with_grants(api.VideoGrants(room_join=False))
        .with_ttl(CRM_TOKEN_TTL)
        .to_jwt()
    )

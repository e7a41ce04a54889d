"""Which LiveKit node a webhook comes from and a room records on, asked of conference (owner of ``node_livekit``).

Conference answers over core NATS request/reply (contracts.conference, issue 7 section): the node signing with an API
key, and the node a room lives on, each with its URL, key and secret. Answers are kept in-process for
:data:`CACHE_SECONDS`, so a burst of webhooks or egress calls costs one request. The env default node
(LIVEKIT_HOST + key/secret) needs no request for its own key. Secrets are never logged.

Errors: :class:`UnknownKey` (no node signs with that key) and :class:`NodesUnavailable` (conference did not
answer): webhooks answer 401 / 503 for them, egress calls fail with code "unavailable".
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec

from contracts.conference import (
    RPC_LIVEKIT_NODE_BY_KEY,
    RPC_LIVEKIT_NODE_OF_ROOM,
    LiveKitKeyQuery,
    LiveKitNodeCredentials,
    RoomQuery,
)
from recording.clients.egress import EgressClient, http_url
from servicekit.bus import Bus, RpcError

log = logging.getLogger(__name__)

CACHE_SECONDS = 60.0
RPC_TIMEOUT = 1.0
MAX_CACHED = 10_000  # rooms: expired answers are swept once the cache grows past this


class UnknownKey(Exception):
    """No LiveKit node signs with that API key."""


class NodesUnavailable(Exception):
    """Conference did not answer: the node's credentials are unknown for now."""


@dataclass(frozen=True)
class NodeCredentials:
    url: str
    api_key: str
    api_secret: str = field(repr=False)  # never in a repr, hence never in a log line


@dataclass
class _Cache:
    entries: dict[str, tuple[float, NodeCredentials]] = field(default_factory=dict)

    def get(self, key: str) -> NodeCredentials | None:
        entry = self.entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, value: NodeCredentials) -> None:
        now = time.monotonic()
        if len(self.entries) >= MAX_CACHED:
            self.entries = {k: v for k, v in self.entries.items() if v[0] > now}
        self.entries[key] = (now + CACHE_SECONDS, value)


class LiveKitNodes:
    """Node credentials by API key and by room (cached), and one egress client per node."""

    def __init__(self, bus: Bus | None, default: NodeCredentials) -> None:
        self.bus = bus
        self.default = default
        self._by_key = _Cache()
        self._by_room = _Cache()
        self._clients: dict[NodeCredentials, EgressClient] = {}

    async def _ask(self, subject: str, query: msgspec.Struct) -> NodeCredentials:
        if self.bus is None:
            raise NodesUnavailable("no message bus")
        try:
            data: Any = await self.bus.request(subject, query, timeout=RPC_TIMEOUT)
            reply = msgspec.convert(data, LiveKitNodeCredentials)
        except RpcError as exc:
            if exc.code in ("not_found", "bad_request"):  # bad_request: a key no node could have (empty, too long)
                raise UnknownKey("no LiveKit node has that API key") from exc
            log.warning("LiveKit node lookup failed", extra={"subject": subject, "code": exc.code})
            raise NodesUnavailable(f"conference did not answer ({exc.code})") from exc
        except msgspec.ValidationError as exc:
            log.warning("LiveKit node lookup: malformed reply", extra={"subject": subject})
            raise NodesUnavailable("malformed node reply") from exc
        return NodeCredentials(http_url(reply.url.strip()), reply.apiKey, reply.apiSecret)

    async def secret_for_key(self, api_key: str) -> str:
        """The API secret of the node signing with ``api_key`` (raises UnknownKey / NodesUnavailable)."""
        if api_key == self.default.api_key:
            return self.default.api_secret
        node = self._by_key.get(api_key)
        if node is None:
            # Unknown keys are not cached: a node added to node_livekit is accepted on LiveKit's next retry.
            node = await self._ask(RPC_LIVEKIT_NODE_BY_KEY, LiveKitKeyQuery(apiKey=api_key))
            self._by_key.put(api_key, node)
        return node.api_secret

    async def node_of_room(self, room: str) -> NodeCredentials:
        node = self._by_room.get(room)
        if node is None:
            node = await self._ask(RPC_LIVEKIT_NODE_OF_ROOM, RoomQuery(room=room))
            self._by_room.put(room, node)
        return node

    def client(self, node: NodeCredentials) -> EgressClient:
        egress = self._clients.get(node)
        if egress is None:
            egress = self._clients[node] = EgressClient(node.url, node.api_key, node.api_secret)
        return egress

    def default_client(self) -> EgressClient:
        return self.client(self.default)

    async def close(self) -> None:
        for egress in self._clients.values():
            await egress.close()
        self._clients.clear()

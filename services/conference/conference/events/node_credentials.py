"""LiveKit node credentials for recording (contracts.conference, issue 7 section): which node signs with a webhook's
API key, and which node a room lives on, each as {url, apiKey, apiSecret}.

Replies carry API secrets: served on core NATS request/reply only (never an event), and nothing here logs them.
"""

from __future__ import annotations

import msgspec

from conference.clients import LiveKitNodes
from conference.domain import ROOM_NAME_MAX, Node
from contracts.conference import (
    RPC_LIVEKIT_NODE_BY_KEY,
    RPC_LIVEKIT_NODE_OF_ROOM,
    LiveKitKeyQuery,
    LiveKitNodeCredentials,
    RoomQuery,
)
from servicekit.web import Runtime

API_KEY_MAX = 200


def credentials(node: Node) -> LiveKitNodeCredentials:
    return LiveKitNodeCredentials(url=node.api_url, apiKey=node.key.api_key, apiSecret=node.key.api_secret)


async def node_by_key(nodes: LiveKitNodes, query: LiveKitKeyQuery) -> LiveKitNodeCredentials:
    key = query.apiKey
    if not key.strip() or len(key) > API_KEY_MAX:
        raise msgspec.ValidationError(f"apiKey must be 1 to {API_KEY_MAX} characters")  # -> bad_request
    node = await nodes.by_api_key(key)
    if node is None:
        raise LookupError("no LiveKit node has that API key")  # -> not_found (the key is not echoed)
    return credentials(node)


async def node_of_room(nodes: LiveKitNodes, query: RoomQuery) -> LiveKitNodeCredentials:
    room = query.room
    if not room.strip() or len(room) > ROOM_NAME_MAX:
        raise msgspec.ValidationError(f"room must be 1 to {ROOM_NAME_MAX} characters")
    return credentials(await nodes.node_of_room(room))


async def serve_requests(runtime: Runtime, nodes: LiveKitNodes) -> None:
    assert runtime.bus is not None

    async def on_key(query: LiveKitKeyQuery) -> LiveKitNodeCredentials:
        return await node_by_key(nodes, query)

    async def on_room(query: RoomQuery) -> LiveKitNodeCredentials:
        return await node_of_room(nodes, query)

    await runtime.bus.serve(RPC_LIVEKIT_NODE_BY_KEY, LiveKitKeyQuery, on_key)
    await runtime.bus.serve(RPC_LIVEKIT_NODE_OF_ROOM, RoomQuery, on_room)

"""Realtime's shared state in Redis: the namespace registry and handled-event marks (no MySQL)."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

NAMESPACES_KEY = "realtime:namespaces"
HANDLED_PREFIX = "realtime:handled:"
HANDLED_TTL_SECONDS = 86400


class Registry:
    """Dynamic namespaces (``/{room}``, ``/data/{linkID}``) valid on every instance."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def add(self, *namespaces: str) -> None:
        if namespaces:
            await self.redis.sadd(NAMESPACES_KEY, *namespaces)

    async def remove(self, *namespaces: str) -> None:
        if namespaces:
            await self.redis.srem(NAMESPACES_KEY, *namespaces)

    async def contains(self, namespace: str) -> bool:
        return bool(await self.redis.sismember(NAMESPACES_KEY, namespace))

    async def all(self) -> set[str]:
        return set(await self.redis.smembers(NAMESPACES_KEY))


class HandledEvents:
    """At-most-once application of an event per consumer (JetStream may redeliver)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def claim(self, consumer: str, event_id: str) -> bool:
        """True for the first claim of ``event_id`` by ``consumer`` within a day."""
        key = f"{HANDLED_PREFIX}{consumer}:{event_id}"
        return bool(await self.redis.set(key, "1", nx=True, ex=HANDLED_TTL_SECONDS))

    async def release(self, consumer: str, event_id: str) -> None:
        """Undo a claim whose handling failed, so the redelivery is applied."""
        await self.redis.delete(f"{HANDLED_PREFIX}{consumer}:{event_id}")


SESSION_PREFIX = "realtime:sid:"  # realtime:sid:{namespace}:{identity} -> the identity's newest socket id
ADMINS_PREFIX = "realtime:admins:"  # realtime:admins:{namespace} -> set of admin socket ids
SESSION_TTL_SECONDS = 86400
# Delete a key only while it still holds the given value (a newer socket of the same identity keeps its key).
_DELETE_IF = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class Sessions:
    """Socket ids by (namespace, identity) and the admin sockets of each namespace, shared by every instance."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def connected(self, namespace: str, identity: str, sid: str, admin: bool) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(f"{SESSION_PREFIX}{namespace}:{identity}", sid, ex=SESSION_TTL_SECONDS)
            if admin:
                pipe.sadd(f"{ADMINS_PREFIX}{namespace}", sid)
                pipe.expire(f"{ADMINS_PREFIX}{namespace}", SESSION_TTL_SECONDS)
            await pipe.execute()

    async def disconnected(self, namespace: str, identity: str, sid: str) -> None:
        await self.redis.eval(_DELETE_IF, 1, f"{SESSION_PREFIX}{namespace}:{identity}", sid)
        await self.redis.srem(f"{ADMINS_PREFIX}{namespace}", sid)

    async def sid_of(self, namespace: str, identity: str) -> str | None:
        value = await self.redis.get(f"{SESSION_PREFIX}{namespace}:{identity}")
        return value.decode() if isinstance(value, bytes) else value

    async def admins(self, namespace: str) -> list[str]:
        return sorted(
            v.decode() if isinstance(v, bytes) else v for v in await self.redis.smembers(f"{ADMINS_PREFIX}{namespace}")
        )


WAITING_PREFIX = "realtime:waiting:"  # realtime:waiting:{namespace} -> zset of JSON entries (score = arrival)
WAITING_ROOMS = "realtime:waiting-rooms"  # namespaces with pending entries
WAITING_TICK_PREFIX = "realtime:waiting-tick:"  # one re-send per namespace per JOIN_ROOM_REPEAT_DELAY (SET NX PX)


class WaitingRoom:
    """The ask-to-join list of each room namespace (the original kept one global list in process memory)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def add(self, namespace: str, entry: dict[str, Any], now: float) -> None:
        await self.remove(namespace, str(entry["socketID"]))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(f"{WAITING_PREFIX}{namespace}", {json.dumps(entry, separators=(",", ":")): now})
            pipe.expire(f"{WAITING_PREFIX}{namespace}", SESSION_TTL_SECONDS)
            pipe.sadd(WAITING_ROOMS, namespace)
            await pipe.execute()

    async def entries(self, namespace: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in await self.redis.zrange(f"{WAITING_PREFIX}{namespace}", 0, -1)]

    async def remove(self, namespace: str, sid: str) -> bool:
        """Drop ``sid``'s entry; True when there was one."""
        key = f"{WAITING_PREFIX}{namespace}"
        gone = [raw for raw in await self.redis.zrange(key, 0, -1) if json.loads(raw).get("socketID") == sid]
        if not gone:
            return False
        await self.redis.zrem(key, *gone)
        if not await self.redis.exists(key):
            await self.redis.srem(WAITING_ROOMS, namespace)
        return True

    async def rooms(self) -> list[str]:
        return sorted(v.decode() if isinstance(v, bytes) else v for v in await self.redis.smembers(WAITING_ROOMS))

    async def take_tick(self, namespace: str, delay_ms: int) -> bool:
        """True for the one instance that re-sends ``namespace``'s list in this period."""
        return bool(await self.redis.set(f"{WAITING_TICK_PREFIX}{namespace}", "1", nx=True, px=max(1, delay_ms)))

    async def restart_tick(self, namespace: str, delay_ms: int) -> None:
        """A list just sent: the next re-send is a full period away."""
        await self.redis.set(f"{WAITING_TICK_PREFIX}{namespace}", "1", px=max(1, delay_ms))

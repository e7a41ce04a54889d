"""Realtime's shared state in Redis: the namespace registry and handled-event marks (no MySQL)."""

from __future__ import annotations

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

"""Realtime's shared state in Redis: the namespace registry and handled-event marks (no MySQL)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from redis.asyncio import Redis

log = logging.getLogger(__name__)

NAMESPACES_KEY = "realtime:namespaces"
HANDLED_PREFIX = "realtime:handled:"
HANDLED_TTL_SECONDS = 86400
PENDING_TTL_SECONDS = 20  # with the default ack wait (NATS_ACK_WAIT_SECONDS, 30 s); see pending_ttl


def pending_ttl(ack_wait: float) -> int:
    """How long a claim stays "pending": two thirds of the consumers' ack wait, so it has lapsed by the time
    JetStream delivers the event of an instance that died holding it."""
    return max(1, int(ack_wait * 2 / 3))


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


class PipelinedCommands:
    """Redis commands issued in the same event-loop turn go out as one pipeline (one round trip).

    The consumer hands a fetched batch's rooms to concurrent handlers, so their claim (and later done) marks are
    issued together: one round trip per batch instead of one per event. Each caller still gets its own reply.
    """

    def __init__(self, redis: Redis, later_seconds: float = 0.05) -> None:
        self.redis = redis
        self.later_seconds = later_seconds
        self._queued: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any] | None]] = []
        self._later: list[tuple[tuple[Any, ...], dict[str, Any], None]] = []  # run_later's, not yet sent
        self._flush: asyncio.Task[None] | None = None
        self._later_timer: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()  # strong references to the pipelines in flight

    def run(self, *args: Any, **options: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append((args, options, future))
        self._start_flush()
        return future

    def run_later(self, *args: Any, **options: Any) -> None:
        """A command nobody waits for: it rides with the next pipeline (the next batch's claims), or goes out on its
        own within ``later_seconds``; a failure is logged. Saves a round trip per batch where nothing waits."""
        self._later.append((args, options, None))
        if self._later_timer is None:
            self._later_timer = self._track(asyncio.create_task(self._send_later()))

    async def _send_later(self) -> None:
        await asyncio.sleep(self.later_seconds)
        self._later_timer = None
        if self._later:
            self._start_flush()

    def _start_flush(self) -> None:
        if self._flush is None:
            self._flush = self._track(asyncio.create_task(self._send()))

    def _track(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return task

    async def _send(self) -> None:
        await asyncio.sleep(0)  # let the other handlers of this turn queue theirs
        # Later commands start the next pipeline; the ones nobody waits for go first, as they were issued first.
        queued, self._queued, self._flush = [*self._later, *self._queued], [], None
        self._later = []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for args, options, _ in queued:
                    pipe.execute_command(*args, **options)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            log.warning("Redis pipeline failed", extra={"commands": len(queued), "error": repr(exc)})
            for *_, future in queued:
                if future is not None and not future.done():
                    future.set_exception(exc)
            return
        for (*_, future), reply in zip(queued, replies, strict=True):
            if future is None:
                if isinstance(reply, Exception):
                    log.warning("Redis command failed", extra={"error": repr(reply)})
                continue
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)


class HandledEvents:
    """Each event applied once per consumer although JetStream may redeliver it.

    A claim is first "pending" for less than the consumer's ack wait: if the instance holding it dies, the claim
    lapses before JetStream redelivers the event to a survivor, which then applies it (no event lost). Once
    applied the mark is "done" for a day and redeliveries are skipped. Claims and done marks are pipelined
    (PipelinedCommands): they are on the path of every event.
    """

    def __init__(self, redis: Redis, pending_seconds: int = PENDING_TTL_SECONDS) -> None:
        self.redis = redis
        self.commands = PipelinedCommands(redis)
        self.pending_seconds = pending_seconds

    async def claim(self, consumer: str, event_id: str) -> str:
        """ "claimed" (apply it now), "done" (applied already: skip) or "pending" (another instance is on it)."""
        key = f"{HANDLED_PREFIX}{consumer}:{event_id}"
        if await self.commands.run("SET", key, "pending", "NX", "EX", self.pending_seconds):
            return "claimed"
        value = await self.commands.run("GET", key)  # a redelivery: rare, so not in the first pipeline
        return "done" if value in (b"done", "done") else "pending"

    def done(self, consumer: str, event_id: str) -> None:
        """Mark the event applied, without waiting: the mark rides with the next claims (run_later). Nothing is lost
        if it never arrives: the event is acknowledged, so JetStream sends it again only if that ack was lost too,
        and then after the claim lapsed, when it is emitted again (emits are at least once)."""
        self.commands.run_later("SET", f"{HANDLED_PREFIX}{consumer}:{event_id}", "done", "EX", HANDLED_TTL_SECONDS)

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


AGENT_CAR_PREFIX = "realtime:agent-car:"  # realtime:agent-car:{namespace} -> the room's last carTracking payload


class AgentCars:
    """The last ``carTracking`` payload of each room (the original kept it in process memory)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def save(self, namespace: str, payload: Any) -> None:
        await self.redis.set(f"{AGENT_CAR_PREFIX}{namespace}", json.dumps(payload), ex=SESSION_TTL_SECONDS)

    async def last(self, namespace: str) -> Any:
        raw = await self.redis.get(f"{AGENT_CAR_PREFIX}{namespace}")
        return json.loads(raw) if raw else None


INSTANCES_KEY = "realtime:instances"  # ids of instances that hold (or held) sockets
HEARTBEAT_PREFIX = "realtime:heartbeat:"  # realtime:heartbeat:{instance}, expires when the instance stops beating
INSTANCE_SOCKETS_PREFIX = "realtime:instance-sockets:"  # hash sid -> JSON {namespace, identity, userName}
SWEEP_LOCK_PREFIX = "realtime:sweep-lock:"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Instances:
    """Which instance holds which room socket, so the survivors can clean up after an instance that died."""

    def __init__(self, redis: Redis, instance_id: str) -> None:
        self.redis = redis
        self.instance_id = instance_id

    async def beat(self, ttl_seconds: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(INSTANCES_KEY, self.instance_id)
            pipe.set(f"{HEARTBEAT_PREFIX}{self.instance_id}", "1", px=int(ttl_seconds * 1000))
            await pipe.execute()

    async def stopped(self) -> None:
        """A clean shutdown: stop beating at once, so a survivor (or this service's next start) sweeps the
        sockets left behind without waiting for the heartbeat to expire."""
        await self.redis.delete(f"{HEARTBEAT_PREFIX}{self.instance_id}")

    async def add_socket(self, sid: str, entry: dict[str, Any]) -> None:
        await self.redis.hset(f"{INSTANCE_SOCKETS_PREFIX}{self.instance_id}", sid, json.dumps(entry))

    async def remove_socket(self, sid: str) -> None:
        await self.redis.hdel(f"{INSTANCE_SOCKETS_PREFIX}{self.instance_id}", sid)

    async def dead(self) -> list[str]:
        """Instances whose heartbeat expired (other than this one)."""
        ids = [_text(v) for v in await self.redis.smembers(INSTANCES_KEY)]
        gone = []
        for other in ids:
            if other != self.instance_id and not await self.redis.exists(f"{HEARTBEAT_PREFIX}{other}"):
                gone.append(other)
        return sorted(gone)

    async def claim_sweep(self, other: str, seconds: int = 60) -> bool:
        """One survivor sweeps a dead instance."""
        return bool(await self.redis.set(f"{SWEEP_LOCK_PREFIX}{other}", self.instance_id, nx=True, ex=seconds))

    async def sockets_of(self, other: str) -> dict[str, dict[str, Any]]:
        raw = await self.redis.hgetall(f"{INSTANCE_SOCKETS_PREFIX}{other}")
        return {_text(sid): json.loads(value) for sid, value in raw.items()}

    async def forget(self, other: str, sid: str) -> None:
        await self.redis.hdel(f"{INSTANCE_SOCKETS_PREFIX}{other}", sid)

    async def drop(self, other: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"{INSTANCE_SOCKETS_PREFIX}{other}")
            pipe.srem(INSTANCES_KEY, other)
            await pipe.execute()

    async def connections(self) -> int:
        """Room sockets held by live instances."""
        total = 0
        for other in [_text(v) for v in await self.redis.smembers(INSTANCES_KEY)]:
            total += int(await self.redis.hlen(f"{INSTANCE_SOCKETS_PREFIX}{other}"))
        return total

    async def sockets_in(self, namespace: str) -> list[dict[str, Any]]:
        """Room sockets of ``namespace`` on live instances (presence)."""
        found: list[dict[str, Any]] = []
        for other in [_text(v) for v in await self.redis.smembers(INSTANCES_KEY)]:
            if not await self.redis.exists(f"{HEARTBEAT_PREFIX}{other}"):
                continue
            for sid, entry in (await self.sockets_of(other)).items():
                if entry.get("namespace") == namespace:
                    found.append({"socketId": sid, **entry})
        return found

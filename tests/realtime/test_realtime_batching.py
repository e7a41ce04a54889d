"""Realtime's per-event Redis work is batched (the car-position path, tests/bench/positions.py): claim and done
marks of concurrently handled events share one pipeline (realtime.repository.PipelinedCommands), and the messages
for the other instances go out as one Redis message per batch (realtime.sockets.server.RealtimeManager). Against the
suite's real Redis, on a channel and keys of this test alone."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from realtime.repository import HandledEvents, pending_ttl
from realtime.sockets.server import RealtimeManager


@pytest.fixture
async def redis(suite: Any) -> Any:
    client = Redis.from_url(suite.redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_claims_and_done_marks_of_one_turn_share_a_pipeline(redis: Redis, monkeypatch: Any) -> None:
    handled = HandledEvents(redis)
    pipelines: list[int] = []
    make_pipeline = redis.pipeline

    def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        execute = pipe.execute

        async def counted(*a: Any, **k: Any) -> Any:
            pipelines.append(len(pipe.command_stack))
            return await execute(*a, **k)

        pipe.execute = counted
        return pipe

    monkeypatch.setattr(redis, "pipeline", counting_pipeline)
    consumer = "test-" + uuid.uuid4().hex[:8]
    ids = [uuid.uuid4().hex for _ in range(40)]
    assert await asyncio.gather(*(handled.claim(consumer, i) for i in ids)) == ["claimed"] * 40
    assert pipelines == [40]  # one SET NX per event, one round trip for all
    # claimed but not done: another instance must wait; done: skipped; released: applied again
    assert await asyncio.gather(*(handled.claim(consumer, i) for i in ids[:2])) == ["pending", "pending"]
    assert pipelines[1:] == [2, 2]  # the failed SETs, then the GETs telling pending from done
    for i in ids:
        handled.done(consumer, i)  # nothing waits for the marks: they go out within later_seconds
    assert pipelines[-1] == 2
    await asyncio.sleep(handled.commands.later_seconds + 0.05)
    assert pipelines[-1] == 40
    assert await handled.claim(consumer, ids[0]) == "done"
    assert await redis.ttl(f"realtime:handled:{consumer}:{ids[0]}") > 3600
    await handled.release(consumer, ids[1])  # (release is only for claims whose handling failed)
    assert await handled.claim(consumer, ids[1]) == "claimed"


async def test_done_marks_ride_with_the_next_claims(redis: Redis, monkeypatch: Any) -> None:
    """A batch's done marks and the next batch's claims share one round trip (each event costs one, not two)."""
    handled = HandledEvents(redis)
    sent: list[list[str]] = []
    make_pipeline = redis.pipeline

    def recording_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        execute = pipe.execute

        async def recorded(*a: Any, **k: Any) -> Any:
            # SET key <value> ...: the value; GET key: "GET"
            sent.append(
                [str(command[0][2] if len(command[0]) > 2 else command[0][0]) for command in pipe.command_stack]
            )
            return await execute(*a, **k)

        pipe.execute = recorded
        return pipe

    monkeypatch.setattr(redis, "pipeline", recording_pipeline)
    consumer = "test-" + uuid.uuid4().hex[:8]
    first, second = [uuid.uuid4().hex for _ in range(3)], [uuid.uuid4().hex for _ in range(3)]
    assert await asyncio.gather(*(handled.claim(consumer, i) for i in first)) == ["claimed"] * 3
    for i in first:
        handled.done(consumer, i)
    assert await asyncio.gather(*(handled.claim(consumer, i) for i in second)) == ["claimed"] * 3
    assert sent == [["pending"] * 3, ["done"] * 3 + ["pending"] * 3]
    assert await asyncio.gather(*(handled.claim(consumer, i) for i in first)) == ["done"] * 3


async def test_a_failed_command_fails_only_its_caller(redis: Redis) -> None:
    handled = HandledEvents(redis)
    key = "realtime:test:" + uuid.uuid4().hex
    await redis.rpush(key, "x")  # a list: GET on it is a WRONGTYPE error
    wrong, right = await asyncio.gather(
        handled.commands.run("GET", key), handled.commands.run("SET", key + ":ok", "1"), return_exceptions=True
    )
    assert isinstance(wrong, Exception) and "WRONGTYPE" in str(wrong)
    assert right is True and await redis.get(key + ":ok") == "1"


async def test_messages_for_other_instances_go_out_as_one_batch(suite: Any, redis: Redis) -> None:
    channel = "test-socketio-" + uuid.uuid4().hex[:8]
    sender = RealtimeManager(suite.redis_url, channel=channel)
    receiver = RealtimeManager(suite.redis_url, channel=channel)
    raw = redis.pubsub()
    await raw.subscribe(channel)
    received: list[dict[str, Any]] = []
    sender_received: list[dict[str, Any]] = []

    async def receive(manager: RealtimeManager, into: list[dict[str, Any]]) -> None:
        async for message in manager._listen():
            into.append(message)

    listening = [
        asyncio.create_task(receive(receiver, received)),
        asyncio.create_task(receive(sender, sender_received)),
    ]
    try:
        await asyncio.sleep(0.3)  # both have subscribed
        await asyncio.gather(*(sender.emit("car-position", {"n": n}, namespace=f"/room{n}") for n in range(5)))
        await sender.emit("after", {"n": 5}, namespace="/room5")
        published = []
        deadline = asyncio.get_running_loop().time() + 10
        while len(published) < 2:  # (get_message answers None for the subscribe confirmation it skips)
            assert asyncio.get_running_loop().time() < deadline, published
            message = await raw.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                published.append(json.loads(message["data"]))
        assert [[m["data"] for m in p["batch"]] for p in published] == [[[{"n": n}] for n in range(5)], [[{"n": 5}]]]
        assert {p["host_id"] for p in published} == {sender.host_id}
        # the other instance gets every message, in order; the sender skips its own batches
        for _ in range(50):
            if len(received) == 6:
                break
            await asyncio.sleep(0.1)
        assert [(m["event"], m["namespace"], m["data"]) for m in received] == [
            *(("car-position", f"/room{n}", [{"n": n}]) for n in range(5)),
            ("after", "/room5", [{"n": 5}]),
        ]
        # a single (unbatched) message, as python-socketio's own managers publish, is still understood
        await redis.publish(channel, json.dumps({"method": "emit", "event": "single", "host_id": "x"}))
        for _ in range(50):
            if len(received) == 7:
                break
            await asyncio.sleep(0.1)
        assert received[-1]["event"] == "single"
        for _ in range(50):
            if sender_received:
                break
            await asyncio.sleep(0.1)
        assert [m["event"] for m in sender_received] == ["single"]  # its own batches were skipped
    finally:
        for task in listening:
            task.cancel()
        await raw.aclose()
        for manager in (sender, receiver):
            if manager.redis is not None:
                await manager.redis.aclose()


async def test_a_claim_lapses_before_the_ack_wait_sends_the_event_again(redis: Redis) -> None:
    # The claim of an instance that died must be gone when JetStream delivers the event to another one.
    for ack_wait in (1.0, 5.0, 30.0, 120.0):
        assert 1 <= pending_ttl(ack_wait) < ack_wait or ack_wait <= 1
    handled = HandledEvents(redis, pending_ttl(5.0))
    event_id = uuid.uuid4().hex
    assert await handled.claim("ttltest", event_id) == "claimed"
    ttl = await redis.ttl(f"realtime:handled:ttltest:{event_id}")
    assert 0 < ttl <= pending_ttl(5.0) < 5
    await redis.delete(f"realtime:handled:ttltest:{event_id}")

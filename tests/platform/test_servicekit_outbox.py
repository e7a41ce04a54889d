"""The outbox: events commit with the change or not at all, reach JetStream once, and survive a relay restart."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from servicekit.bus import Bus, Event, OutboxRelay, add_event, handled_once, stream_name
from tests.support import kit_service


class Ping(msgspec.Struct):
    n: int


@pytest.fixture
async def kit(suite):
    async with kit_service(suite, "kittest") as (db, bus):
        yield db, bus


async def _collect(bus: Bus, durable: str, expected: int, timeout: float = 5.0) -> list[Event]:
    seen: list[Event] = []
    done = asyncio.Event()

    async def handler(event: Event) -> None:
        seen.append(event)
        if len(seen) >= expected:
            done.set()

    bus.consume("kittest", durable, handler)
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except TimeoutError:
        pass
    await asyncio.sleep(0.3)  # give a duplicate the chance to show up
    return seen


async def test_rolled_back_change_publishes_nothing_committed_change_publishes_once(kit) -> None:
    db, bus = kit
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await add_event(conn, "kittest.ping.sent", Ping(n=1))
            raise RuntimeError("the change failed")
    assert (await db.fetch_one("SELECT COUNT(*) AS n FROM outbox"))["n"] == 0

    relay = OutboxRelay(db, bus)
    durable = f"d{uuid.uuid4().hex[:8]}"
    consumer = asyncio.create_task(_collect(bus, durable, expected=2))
    await asyncio.sleep(0.5)  # the durable consumer starts at new messages
    relay.start()
    async with db.transaction() as conn:
        first = await add_event(conn, "kittest.ping.sent", Ping(n=2))
        second = await add_event(conn, "kittest.ping.sent", Ping(n=3))
    seen = await consumer
    await relay.stop()
    assert [e.id for e in seen] == [first.id, second.id]
    assert [e.data for e in seen] == [{"n": 2}, {"n": 3}]
    pending = await db.fetch_one("SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL")
    assert pending["n"] == 0


async def test_republishing_the_same_event_is_dropped_by_the_stream(kit) -> None:
    db, bus = kit
    async with db.transaction() as conn:
        event = await add_event(conn, "kittest.ping.sent", Ping(n=9))
    before = (await bus.js.stream_info(stream_name("kittest"))).state.messages
    await bus.publish_event(event)
    await bus.publish_event(event)  # e.g. a relay that crashed after publishing, before marking the row
    after = (await bus.js.stream_info(stream_name("kittest"))).state.messages
    assert after - before == 1


async def test_pending_events_are_published_by_a_later_relay(kit) -> None:
    db, bus = kit
    async with db.transaction() as conn:  # written while no relay runs (e.g. the service was down)
        await add_event(conn, "kittest.ping.sent", Ping(n=5))
    relay = OutboxRelay(db, bus)
    assert await relay.flush_once() == 1
    assert await relay.flush_once() == 0


async def test_a_running_relay_finds_rows_it_was_not_woken_for(kit) -> None:
    """Rows committed by another replica (no wake-up here) are published by the relay's poll."""
    db, bus = kit
    relay = OutboxRelay(db, bus, poll_seconds=0.2)
    relay.start()
    try:
        await asyncio.sleep(0.5)  # a few idle polls: nothing pending, nothing published
        assert not await relay.pending()
        db.on_events_committed.remove(relay._wake.set)  # noqa: SLF001 - as if another process committed
        async with db.transaction() as conn:
            await add_event(conn, "kittest.ping.sent", Ping(n=7))
        assert await relay.pending()
        for _ in range(50):
            if not await relay.pending():
                break
            await asyncio.sleep(0.1)
        assert not await relay.pending()
    finally:
        await relay.stop()


async def test_handled_once_applies_an_event_once(kit) -> None:
    db, _ = kit
    async with db.transaction() as conn:
        assert await handled_once(conn, "consumer-a", "e" * 32) is True
        assert await handled_once(conn, "consumer-a", "e" * 32) is False
        assert await handled_once(conn, "consumer-b", "e" * 32) is True

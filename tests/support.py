"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def rpc(nc: Any, subject: str, payload: Any, timeout: float = 10.0) -> dict[str, Any]:
    """A NATS request as another service makes it; returns the decoded RpcReply."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    msg = await nc.request(subject, raw, timeout=timeout)
    return json.loads(msg.data)


async def until(probe: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll ``probe`` until it returns something truthy (events arrive asynchronously; the machine is shared, hence
    the generous timeout); fails the test when it never does."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)

"""Helpers shared by tests (fixtures live in conftest.py): NATS requests as a service makes them, polling.

Test helpers are split by topic, one module each beside this one in tests/:

- support.py (this): ``rpc``, ``until``, ``eventually``;
- sockets.py: the official Socket.IO JS clients, realtime's namespaces, events published for realtime, ``watch``;
- instances.py: more realtime processes beside the suite's, nginx in front of them;
- car_tasks.py: telemetry's car tasks, link's events for telemetry, tenants and linked rooms;
- egress.py: recording's egress state and conference's room settings for it;
- kube.py: kubectl and kustomize for the deployment tests;
- legacy.py: a legacy source (the original's `conference` schema, generated production-like rows) for the migration;
- legacy_answers.py: the original's answers computed from such a source.

A helper two test modules need lives in one of these (a fixture in conftest.py); test modules never import each
other (tests/platform/test_tests_layout.py checks it).
"""

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


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """``until`` with the socket tests' 10 s: ``check``'s first truthy value, else the test fails."""
    return await until(check, timeout)

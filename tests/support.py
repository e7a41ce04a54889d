"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
from typing import Any


async def rpc(nc: Any, subject: str, payload: Any, timeout: float = 10.0) -> dict[str, Any]:
    """A NATS request as another service makes it; returns the decoded RpcReply."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    msg = await nc.request(subject, raw, timeout=timeout)
    return json.loads(msg.data)

"""/test/mp4/queue: the encode queue's waiting jobs (recording.events.encode sends them). The removals need the
agent token (unauthenticated in the original)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get

from recording import domain, repository
from servicekit import compat
from servicekit.web import Runtime, fail


class EncodeQueueController(Controller):
    path = "/test/mp4/queue"
    tags = ["encode"]

    @get("", summary="Encode jobs waiting for the encode API")
    async def show(self, runtime: Runtime) -> dict[str, Any]:
        assert runtime.db is not None
        rows = [domain.json_row(r) for r in await repository.queued_encode_jobs(runtime.db)]
        return {
            "status": "OK",
            "data": {"queueSize": len(rows), "queueItems": rows, "message": "Queue items waiting for processing"},
        }

    @delete(
        "/{record_id:int}",
        status_code=200,
        summary="Remove one waiting encode job (agent token)",
        opt=compat.opens("writes"),
    )
    async def remove_one(self, record_id: int, request: Request, runtime: Runtime) -> dict[str, Any]:
        runtime.require_agent_token_unless_compat(request)
        assert runtime.db is not None
        removed = await repository.remove_encode_jobs(runtime.db, record_id)
        if not removed:
            raise fail("Record ID is not in the queue", 404)
        return {"status": "OK", "data": {"recordId": record_id, "message": "Removed from the encode queue"}}

    @delete("", status_code=200, summary="Remove every waiting encode job (agent token)", opt=compat.opens("writes"))
    async def clear(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        runtime.require_agent_token_unless_compat(request)
        assert runtime.db is not None
        removed = await repository.remove_encode_jobs(runtime.db)
        return {"status": "OK", "data": {"removed": removed, "message": "Encode queue cleared"}}

"""GET /record/* (the original's record routes through LiveKit's egress API) and /test/mp4/queue (the encode
queue). The toggle, stop-all and queue removals need the agent token (unauthenticated in the original)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, delete, get

from contracts import recording as ev
from recording import encode, recorder, repository
from recording.egress import EgressClient, EgressFailed, info_json
from recording.livekit_nodes import LiveKitNodes
from servicekit import compat
from servicekit.bus import add_event
from servicekit.clock import js_iso
from servicekit.web import Runtime, fail

MAX_ROOM = 50


def _room(request: Request) -> str:
    room = (request.query_params.get("room") or "").strip()
    if len(room) > MAX_ROOM:
        raise fail(f"Invalid parameter: room is longer than {MAX_ROOM}")
    return room


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (js_iso(v) if hasattr(v, "year") else v) for k, v in row.items()}


async def _usage(runtime: Runtime, request: Request, room: str, status: str, data: Any) -> None:
    """The original's usage row of a toggle, published for link's usage_status_log."""
    assert runtime.db is not None
    usage = ev.RecordUsage(
        room=room,
        identity=(request.query_params.get("identity") or "")[:100],
        status=status,
        userAgent=(request.headers.get("user-agent") or "")[:500],
        data=data,
    )
    async with runtime.db.transaction() as conn:
        await add_event(conn, ev.RECORDING_RECORD_USAGE, usage)


def _default_client(runtime: Runtime) -> EgressClient:
    nodes: LiveKitNodes = runtime.extras["livekit_nodes"]
    return nodes.default_client()


class RecordController(Controller):
    path = "/record"
    tags = ["record"]

    @get(
        "/request",
        summary="Start the room's recording, or stop it when one runs (agent token)",
        opt=compat.opens("writes"),
    )
    async def request_record(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        runtime.require_token_unless_compat(request)
        room = _room(request)
        if not room:
            return {"status": "FAIL", "message": "invalid query"}
        assert runtime.db is not None
        current = await repository.room_egress(runtime.db, room)
        if current is not None and not current["egressId"]:
            return {"status": "FAIL", "message": "record is starting"}
        if current is None:
            try:
                info = await recorder.start(runtime, room)
            except recorder.RecordRefused as exc:
                if exc.status >= 400:
                    raise fail(exc.message, exc.status) from exc
                await _usage(runtime, request, room, "FailRecord", exc.message)
                return {"status": "FAIL", "message": exc.message}
            except EgressFailed as exc:
                await _usage(runtime, request, room, "FailRecord", exc.body())
                return {"status": "FAIL", "message": exc.msg, "error": exc.body()}
            await _usage(runtime, request, room, "StartRecord", info)
            return {"status": "OK", "message": "start record", "data": info}
        try:
            info = await recorder.stop(runtime, room, str(current["egressId"]))
        except EgressFailed as exc:
            return {"status": "FAIL", "message": exc.msg, "error": exc.body()}
        await _usage(runtime, request, room, "StopRecord", info)
        return {"status": "OK", "message": "stop record", "data": info}

    @get("/list", summary="LiveKit's egress list (optionally of one room)")
    async def list_records(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        room = _room(request)
        try:
            # one room's egresses are on its node; without a room, the default node's
            client = await recorder.client_for_room(runtime, room) if room else _default_client(runtime)
            items = await client.list(room)
        except EgressFailed:
            return {"status": "FAIL"}
        return {"status": "OK", "data": [info_json(i) for i in items]}

    @get("/stopall", summary="Stop every active egress (agent token)", opt=compat.opens("writes"))
    async def stop_all(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        runtime.require_token_unless_compat(request)
        client = _default_client(runtime)  # the default node's egresses (other nodes' rooms: /record/request)
        try:
            items = await client.list(active=True)
        except EgressFailed as exc:
            return {"status": "FAIL", "message": exc.msg}
        stopped = []
        for item in items:
            if item.status != 1:  # EGRESS_ACTIVE, as the original picked them
                continue
            try:
                await recorder.stop(runtime, item.room_name, item.egress_id, client=client)
            except EgressFailed:
                continue
            stopped.append(info_json(item))
        return {"status": "OK", "message": "" if stopped else "no task stop", "data": stopped}

    @get("/file", summary="record_media rows of a room, with their URLs")
    async def file_history(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        room = _room(request)
        if not room:
            raise fail("Room parameter is required", 400)
        setting = await recorder.room_setting(runtime, room)
        if setting is None or setting.get("service") is None:
            raise fail("Room not found", 404)
        assert runtime.db is not None
        api_url: str = runtime.extras["api_url"]
        rows = await repository.file_history(runtime.db, room)
        service = setting["service"]
        return {
            "status": "OK",
            "data": [{**_row(r), "url": f"{api_url}/record/{service}/{quote(r['fileName'] or '')}"} for r in rows],
        }

    @get("/check", summary="Whether another recording may start (EGRESS_LIMIT)")
    async def check(self, runtime: Runtime) -> dict[str, Any]:
        assert runtime.db is not None
        limit = int(getattr(runtime.settings, "egress_limit", 0) or 0)
        if await repository.egress_count(runtime.db) < limit:
            return {"status": "OK", "message": "Record service is ready"}
        return {"status": "FAIL", "message": "Record service not available"}


class EncodeQueueController(Controller):
    path = "/test/mp4/queue"
    tags = ["encode"]

    @get("", summary="Encode jobs waiting for the encode API")
    async def show(self, runtime: Runtime) -> dict[str, Any]:
        assert runtime.db is not None
        rows = [_row(r) for r in await encode.queued(runtime.db)]
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
        runtime.require_token_unless_compat(request)
        assert runtime.db is not None
        removed = await encode.remove(runtime.db, record_id)
        if not removed:
            raise fail("Record ID is not in the queue", 404)
        return {"status": "OK", "data": {"recordId": record_id, "message": "Removed from the encode queue"}}

    @delete("", status_code=200, summary="Remove every waiting encode job (agent token)", opt=compat.opens("writes"))
    async def clear(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        runtime.require_token_unless_compat(request)
        assert runtime.db is not None
        removed = await encode.remove(runtime.db)
        return {"status": "OK", "data": {"removed": removed, "message": "Encode queue cleared"}}

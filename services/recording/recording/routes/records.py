"""GET /record/* (the original's record routes through LiveKit's egress API). The toggle and stop-all need the
agent token (unauthenticated in the original)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, get

from recording import domain, repository
from recording.clients.egress import EgressClient, EgressFailed, info_json
from recording.events import recorder
from recording.events.livekit_nodes import LiveKitNodes
from servicekit import compat
from servicekit.web import Runtime, fail

MAX_ROOM = 50


def _room(request: Request) -> str:
    room = (request.query_params.get("room") or "").strip()
    if len(room) > MAX_ROOM:
        raise fail(f"Invalid parameter: room is longer than {MAX_ROOM}")
    return room


async def _usage(runtime: Runtime, request: Request, room: str, status: str, data: Any) -> None:
    """The usage event of a toggle, with the caller's identity and user agent."""
    identity = request.query_params.get("identity") or ""
    await recorder.record_usage(runtime, room, identity, request.headers.get("user-agent") or "", status, data)


def _default_client(runtime: Runtime) -> EgressClient:
    nodes: LiveKitNodes = runtime.extras["livekit_nodes"]
    return nodes.default_client()


class RecordController(Controller):
    path = "/record"
    tags = ["record"]

    @get(
        "/request",
        summary="Start the room's recording, or stop it when one runs (a token of the room)",
        opt=compat.opens("writes"),
    )
    async def request_record(self, request: Request, runtime: Runtime) -> dict[str, Any]:
        claims = runtime.require_token_unless_compat(request)
        room = _room(request)
        if not room:
            return {"status": "FAIL", "message": "invalid query"}
        runtime.require_room(claims, room)
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
        runtime.require_agent_token_unless_compat(request)
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
            "data": [
                {**domain.json_row(r), "url": f"{api_url}/record/{service}/{quote(r['fileName'] or '')}"} for r in rows
            ],
        }

    @get("/check", summary="Whether another recording may start (EGRESS_LIMIT)")
    async def check(self, runtime: Runtime) -> dict[str, Any]:
        assert runtime.db is not None
        limit = int(getattr(runtime.settings, "egress_limit", 0) or 0)
        if await repository.egress_count(runtime.db) < limit:
            return {"status": "OK", "message": "Record service is ready"}
        return {"status": "FAIL", "message": "Record service not available"}

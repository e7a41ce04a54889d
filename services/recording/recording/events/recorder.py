"""Starting and stopping a room's egress: at most one per room, at most EGRESS_LIMIT in all, across replicas.

Start: the room is claimed first (``room_egress`` row, primary key = room) under a named lock that also counts
the claims against EGRESS_LIMIT; only then is LiveKit asked. LiveKit's answer turns the claim into the active
egress and inserts the record_media row in one transaction; a LiveKit failure drops the claim, so nothing is
half-written. The claim ends when the egress is stopped or LiveKit reports egress_ended.

The room's record settings and tenant come from ``room_setting`` (conference's room events), or from
conference over request/reply when the room is not known yet. LiveKit calls for a room go to the room's node
(conference tells which, with its key: recording.events.livekit_nodes); when conference cannot say, nothing starts.
/record/request's starts, stops and refusals are published as usage events (:func:`record_usage`).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from prometheus_client import Gauge

from contracts import recording as ev
from contracts.conference import RPC_ROOM_DETAIL, RoomQuery
from recording import domain, repository
from recording.clients.egress import EgressClient, EgressFailed, info_json
from recording.events.livekit_nodes import LiveKitNodes, NodesUnavailable, UnknownKey
from servicekit.bus import RpcError, add_event
from servicekit.clock import now_local
from servicekit.db import LockTimeout
from servicekit.web import Runtime

log = logging.getLogger(__name__)

CLAIM_LOCK = "recording.egress.claims"
CLAIM_LOCK_SECONDS = 5
STALE_CLAIM = timedelta(minutes=2)  # longer than any LiveKit start call (bounded at 10 s)
RPC_TIMEOUT = 1.0
EGRESS_NOT_AVAILABLE = "Record service not available"
EGRESSES_ACTIVE = Gauge("ems_recording_egresses", "Egresses claimed or running (counted against EGRESS_LIMIT)")
EGRESS_LIMIT = Gauge("ems_recording_egress_limit", "EGRESS_LIMIT: egresses allowed at once")


class RecordRefused(Exception):
    """The egress was not started: ``message`` is the reply's; ``status`` the HTTP status for routes; ``code``
    says why (not_found, no_service, egress_limit, already_recording, busy) for the socket toggle's reply."""

    def __init__(self, message: str, status: int = 200, code: str = "refused") -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


def _local(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


async def room_setting(runtime: Runtime, room: str) -> dict[str, Any] | None:
    """The room's record settings and tenant; asks conference (and keeps the answer) when not known yet."""
    assert runtime.db is not None
    row = await repository.room_setting(runtime.db, room)
    if row is not None or runtime.bus is None:
        return row
    try:
        detail = await runtime.bus.request(RPC_ROOM_DETAIL, RoomQuery(room=room), timeout=RPC_TIMEOUT)
    except RpcError as exc:
        if exc.code != "not_found":
            log.warning("room settings unavailable", extra={"room": room, "code": exc.code})
        return None
    if not isinstance(detail, dict):
        return None
    async with runtime.db.transaction() as conn:
        await repository.upsert_room_setting(conn, room, detail)
    return await repository.room_setting(runtime.db, room)


async def client_for_room(runtime: Runtime, room: str) -> EgressClient:
    """The egress client of the room's LiveKit node; EgressFailed "unavailable" when conference cannot say which."""
    nodes: LiveKitNodes = runtime.extras["livekit_nodes"]
    try:
        return nodes.client(await nodes.node_of_room(room))
    except (NodesUnavailable, UnknownKey) as exc:
        raise EgressFailed("unavailable", "the room's LiveKit node is unknown: conference did not answer") from exc


async def count_egresses(runtime: Runtime) -> None:
    """Set the egress gauges (read when scraped; every replica sees the same claims)."""
    assert runtime.db is not None
    EGRESSES_ACTIVE.set(await repository.egress_count(runtime.db))
    EGRESS_LIMIT.set(int(getattr(runtime.settings, "egress_limit", 0) or 0))


async def _claim(runtime: Runtime, room: str, record_type: str) -> None:
    assert runtime.db is not None
    limit = int(getattr(runtime.settings, "egress_limit", 0) or 0)
    try:
        async with runtime.db.locked_transaction(CLAIM_LOCK, CLAIM_LOCK_SECONDS) as conn:
            now = now_local()
            await repository.drop_stale_claims(conn, now - STALE_CLAIM)
            if await repository.egress_count(conn) >= limit:
                raise RecordRefused(EGRESS_NOT_AVAILABLE, code="egress_limit")
            if not await repository.claim_room(conn, room, record_type, now):
                raise RecordRefused("room is already recording", code="already_recording")
    except LockTimeout as exc:
        raise RecordRefused("Record service busy, try again", code="busy") from exc


async def start(
    runtime: Runtime,
    room: str,
    *,
    record_type: str = domain.DEFAULT_RECORD_TYPE,
    preset: str | None = None,
    identity: str = "",
    audio_track: str = "",
    video_track: str = "",
    setting: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start the room's egress; returns LiveKit's EgressInfo JSON + dtmStartRecord/dtmStopRecord.
    Raises RecordRefused (no tenant, limit, already recording) or EgressFailed (LiveKit's error)."""
    assert runtime.db is not None
    setting = setting if setting is not None else await room_setting(runtime, room)
    if setting is None:
        raise RecordRefused("Room not found", 404, code="not_found")
    if setting.get("service") is None:
        raise RecordRefused("room has no service: it cannot record", code="no_service")
    file_name = domain.record_file_name(record_type, room, identity, int(time.time() * 1000))
    file_path = domain.record_file_path(int(setting["service"]), file_name)
    client = await client_for_room(runtime, room)  # before the claim: a failed lookup writes nothing
    await _claim(runtime, room, record_type)
    try:
        if record_type == domain.TRACK_COMPOSITE:
            info = await client.start_track_composite(room, file_path, audio_track, video_track)
        else:
            info = await client.start_room_composite(
                room, file_path, domain.preset_or_default(preset), record_type == "RoomCompositeAudio"
            )
    except BaseException:
        await repository.release_claim(runtime.db, room)
        raise
    now = now_local()
    try:
        async with runtime.db.transaction() as conn:
            await repository.activate_claim(conn, room, info.egress_id)
            await repository.insert_egress_media(conn, info.egress_id, room, file_name, record_type, now)
    except BaseException:
        # LiveKit records but we could not write it down: stop it rather than leave an untracked egress.
        await repository.release_claim(runtime.db, room)
        try:
            await client.stop(info.egress_id)
        except EgressFailed:
            log.error("orphan egress could not be stopped", extra={"room": room, "egress_id": info.egress_id})
        raise
    log.info("egress started", extra={"room": room, "egress_id": info.egress_id, "record_type": record_type})
    return {**info_json(info), "dtmStartRecord": _local(now), "dtmStopRecord": None}


async def stop(runtime: Runtime, room: str, egress_id: str, client: EgressClient | None = None) -> dict[str, Any]:
    """Stop an egress (LiveKit StopEgress, on ``client``'s node, by default the room's); the room's claim ends and
    record_media gets endRecord."""
    assert runtime.db is not None
    if client is None:
        client = await client_for_room(runtime, room)
    try:
        info = await client.stop(egress_id)
    except EgressFailed as exc:
        if exc.code not in ("not_found", "failed_precondition"):
            raise
        # LiveKit no longer knows it as running: whatever we hold about it is stale.
        async with runtime.db.transaction() as conn:
            await repository.drop_egress(conn, egress_id)
            await repository.stop_media(conn, egress_id, now_local())
        raise
    now = now_local()
    async with runtime.db.transaction() as conn:
        await repository.drop_egress(conn, egress_id)
        await repository.stop_media(conn, egress_id, now)
    log.info("egress stopped", extra={"room": room, "egress_id": egress_id})
    return {**info_json(info), "dtmStartRecord": None, "dtmStopRecord": _local(now)}


async def toggle(runtime: Runtime, room: str) -> dict[str, Any]:
    """The room socket's ``room-record`` (realtime asks over RPC_RECORDING_TOGGLE): stop the room's egress when it
    has one, else start one with the defaults (the original's toggle ignored the room's record settings and wrote
    no usage row). Returns the ``room-record`` payload; refusals and LiveKit failures become ``{status: "ERROR",
    code, message}`` with nothing written. Raises LookupError for a room nobody knows (the original crashed:
    nothing was emitted)."""
    assert runtime.db is not None
    current = await repository.room_egress(runtime.db, room)
    if current is not None and not current["egressId"]:
        return _toggle_error("starting", "record is starting")
    if current is None:
        try:
            info = await start(runtime, room)
        except RecordRefused as exc:
            if exc.code == "not_found":
                raise LookupError(exc.message) from exc
            if exc.code == "egress_limit":
                return {"status": "egressNotAvailable", "message": EGRESS_NOT_AVAILABLE}
            return _toggle_error(exc.code, exc.message)
        except EgressFailed as exc:
            return _toggle_error(exc.code, exc.msg)
        return {"status": "startRecord", "data": info}
    try:
        info = await stop(runtime, room, str(current["egressId"]))
    except EgressFailed as exc:
        return _toggle_error(exc.code, exc.msg)
    return {"status": "stopRecord", "data": info}


def _toggle_error(code: str, message: str) -> dict[str, Any]:
    return {"status": "ERROR", "code": code, "message": message}


async def start_quietly(runtime: Runtime, room: str, **options: Any) -> dict[str, Any] | None:
    """Auto-record from a webhook: refusals and LiveKit failures are logged, never raised."""
    try:
        return await start(runtime, room, **options)
    except RecordRefused as exc:
        log.info("auto-record not started", extra={"room": room, "reason": exc.message})
    except EgressFailed as exc:
        log.warning("auto-record failed", extra={"room": room, "code": exc.code, "error": exc.msg})
    except Exception:
        log.exception("auto-record failed", extra={"room": room})
    return None


async def reconcile(runtime: Runtime) -> tuple[int, int]:
    """At start-up (the original reset every room's record state): hold what the default node says is running,
    drop held egresses LiveKit no longer runs (ended while no replica listened). A held egress the default node
    does not run is looked for on its room's node; when that node (or conference) cannot say, it stays held.
    Returns (held, dropped); nothing changes when the default node does not answer."""
    assert runtime.db is not None
    nodes: LiveKitNodes = runtime.extras["livekit_nodes"]
    default = nodes.default_client()
    try:
        running = await default.list(active=True)
    except EgressFailed as exc:
        log.warning("egress reconcile skipped: LiveKit did not answer", extra={"code": exc.code})
        return 0, 0
    active = {i.egress_id: i.room_name for i in running if i.room_name}
    gone: list[str] = []
    for row in await repository.held_egresses(runtime.db):
        if row["egressId"] in active:
            continue
        try:
            client = await client_for_room(runtime, row["room"])
            if client is not default:
                items = await client.list(row["room"], active=True)
                if any(item.egress_id == row["egressId"] for item in items):
                    continue  # still running on the room's own node
        except EgressFailed:
            continue  # cannot tell: keep it held
        gone.append(row["egressId"])
    dropped = 0
    async with runtime.db.transaction() as conn:
        for egress_id, room in active.items():
            ours = await repository.media_of_egress(conn, egress_id) is not None
            await repository.egress_seen_started(conn, room, egress_id, insert=True)
            if not ours:
                log.info("egress held from LiveKit's list", extra={"room": room, "egress_id": egress_id})
        for egress_id in gone:
            dropped += await repository.drop_egress(conn, egress_id)
            await repository.stop_media(conn, egress_id, now_local())
    return len(active), dropped


async def record_usage(runtime: Runtime, room: str, identity: str, user_agent: str, status: str, data: Any) -> None:
    """The original's usage row of a toggle, published for link's usage_status_log."""
    assert runtime.db is not None
    usage = ev.RecordUsage(
        room=room,
        identity=identity[:100],
        status=status,
        userAgent=user_agent[:500],
        data=data,
    )
    async with runtime.db.transaction() as conn:
        await add_event(conn, ev.RECORDING_RECORD_USAGE, usage)

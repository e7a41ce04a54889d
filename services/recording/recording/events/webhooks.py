"""LiveKit's webhooks (verified by POST /webhook, recording.routes.webhooks), each event id applied once, effects
published as events: the writes of events arriving together are group-committed (servicekit.batching), and what an event
asks for after its commit (auto-record, stopping a finished room's egress, encode jobs) is done by
:func:`follow_up`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import MessageToDict
from livekit.protocol.webhook import WebhookEvent

from contracts import recording as ev
from recording import domain, repository
from recording.events import encode, recorder
from servicekit.batching import GroupCommit
from servicekit.bus import add_event
from servicekit.clock import now_local
from servicekit.db import Connection
from servicekit.web import Runtime

log = logging.getLogger("recording.webhooks")


def _json(message: Any) -> dict[str, Any]:
    return MessageToDict(message, always_print_fields_with_no_presence=True)


def _local(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class FollowUp:
    """What an applied event asks for after its transaction committed (LiveKit calls, queue pushes)."""

    room: str = ""
    start_room_composite: dict[str, Any] | None = None  # the room's settings
    start_track_composite: dict[str, Any] | None = None  # identity, tracks, settings
    stop_egress: str = ""
    encode: list[int] = field(default_factory=list)


async def apply(runtime: Runtime, event: WebhookEvent, raw: str) -> FollowUp | None:
    """Apply one verified event; None when its id was applied before (a redelivery)."""
    data = _json(event)
    room = domain.event_room(data)
    setting = None
    if event.event == "participant_joined" and room:
        setting = await recorder.room_setting(runtime, room)  # outside the transaction: may ask conference
    writer: GroupCommit[_Pending, FollowUp | None] = runtime.extras["webhook_writer"]
    return await writer.submit(_Pending(event, raw, data, room, setting))


@dataclass
class _Pending:
    event: WebhookEvent
    raw: str
    data: dict[str, Any]
    room: str
    setting: dict[str, Any] | None


# Batches of webhooks are written by several writers at once (an event is many statements, each a round trip: one
# writer would serialise them); two pool connections are left for the outbox relay, room-setting lookups and the
# routes. Each event keeps its own receipt row, so replays inside a batch are still applied once.
MAX_BATCH = 16
SPARE_CONNECTIONS = 2


def webhook_writer(runtime: Runtime) -> GroupCommit[_Pending, FollowUp | None]:
    """The group commit of webhook events (servicekit.batching), started and stopped by the app."""
    assert runtime.db is not None

    async def apply_batch(conn: Connection, batch: Sequence[_Pending]) -> list[FollowUp | None]:
        return [await _apply_in(conn, p.event, p.raw, p.data, p.room, p.setting) for p in batch]

    writers = max(1, runtime.settings.mysql_pool_size - SPARE_CONNECTIONS)
    return GroupCommit(runtime.db, "recording-webhooks", apply_batch, max_items=MAX_BATCH, writers=writers)


async def _apply_in(
    conn: Connection,
    event: WebhookEvent,
    raw: str,
    data: dict[str, Any],
    room: str,
    setting: dict[str, Any] | None,
) -> FollowUp | None:
    """One event's writes inside the caller's transaction; None when its id was applied before."""
    name = event.event
    event_id = domain.webhook_event_id(event.id, raw)
    timestamp = int(event.created_at) * 1000
    now = now_local()
    follow = FollowUp(room=room)
    if not await repository.record_receipt(conn, event_id, name, room, int(event.created_at)):
        return None
    await add_event(
        conn,
        ev.RECORDING_WEBHOOK_RECEIVED,
        ev.WebhookReceived(eventId=event_id, event=name, room=room, data=raw, createdAt=int(event.created_at)),
    )
    participant = data.get("participant") or {}
    identity = str(participant.get("identity") or "")
    if name in ("participant_joined", "participant_left") and room and identity:
        subject = ev.RECORDING_PARTICIPANT_JOINED if name == "participant_joined" else ev.RECORDING_PARTICIPANT_LEFT
        presence = ev.ParticipantPresence(room=room, identity=identity, participant=participant, timestamp=timestamp)
        await add_event(conn, subject, presence)
        if name == "participant_left":
            await repository.forget_participant(conn, room, identity)
        else:
            if domain.tracks_composite(setting, identity):
                await repository.remember_participant(conn, room, identity)
            if domain.auto_records_on_join(setting, participant):
                follow.start_room_composite = setting
    elif name == "track_published" and room and identity:
        source = str((data.get("track") or {}).get("source") or "")
        track_sid = str((data.get("track") or {}).get("sid") or "")
        kind = domain.TRACK_KINDS.get(source)
        if kind and track_sid and await repository.remember_track(conn, room, identity, kind, track_sid):
            pair = await repository.take_track_pair(conn, room, identity)
            if pair is not None:
                follow.start_track_composite = {"identity": identity, **pair}
    elif name in ("room_started", "room_finished") and room:
        subject = ev.RECORDING_ROOM_STARTED if name == "room_started" else ev.RECORDING_ROOM_FINISHED
        await add_event(
            conn, subject, ev.LiveKitRoomEvent(room=room, roomInfo=data.get("room") or {}, timestamp=timestamp)
        )
        if name == "room_finished":
            await repository.forget_room_tracks(conn, room)
            current = await repository.room_egress(conn, room)
            if current and current["egressId"]:
                follow.stop_egress = str(current["egressId"])
    elif name in domain.EGRESS_EVENTS:
        info = data.get("egressInfo") or {}
        egress_id = str(info.get("egressId") or "")
        if egress_id:
            status = str(info.get("status") or "")
            changed = ev.EgressChanged(
                room=room, recordId=egress_id, status=status, egressInfo=info, timestamp=timestamp
            )
            if name == "egress_started":
                changed.dtmStartRecord = _local(now)
                subject = ev.RECORDING_EGRESS_STARTED
                if room:
                    # ours (record_media row written at start): only confirm a claim still held, so a late
                    # webhook never revives a stopped one; another tool's egress still counts to the limit
                    ours = await repository.media_of_egress(conn, egress_id) is not None
                    await repository.egress_seen_started(conn, room, egress_id, insert=not ours)
            elif name == "egress_ended":
                changed.dtmStopRecord = _local(now)
                subject = ev.RECORDING_EGRESS_ENDED
                await repository.mark_egress_ended(conn, egress_id, domain.media_status(status), now)
                await repository.drop_egress(conn, egress_id)
                media = await repository.media_of_egress(conn, egress_id)
                if media is not None and domain.produced_file(status):
                    if await repository.add_encode_job(conn, int(media["id"]), now):
                        follow.encode.append(int(media["id"]))
            else:
                subject = ev.RECORDING_EGRESS_UPDATED
            await add_event(conn, subject, changed)
    return follow


async def follow_up(runtime: Runtime, follow: FollowUp) -> None:
    """The LiveKit calls and queue pushes of an applied event (after its commit; failures logged)."""
    room = follow.room
    if follow.start_room_composite is not None:
        setting = follow.start_room_composite
        await recorder.start_quietly(
            runtime,
            room,
            record_type=str(setting.get("recordType")),
            preset=setting.get("encodingOptionsPreset"),
            setting=setting,
        )
    if follow.start_track_composite is not None:
        pair = follow.start_track_composite
        await recorder.start_quietly(
            runtime,
            room,
            record_type=domain.TRACK_COMPOSITE,
            identity=pair["identity"],
            audio_track=pair["audioTrack"],
            video_track=pair["videoTrack"],
        )
    if follow.stop_egress:
        try:
            await recorder.stop(runtime, room, follow.stop_egress)
        except Exception as exc:  # noqa: BLE001 - LiveKit ends a finished room's egress itself
            log.warning("egress of a finished room not stopped", extra={"room": room, "error": repr(exc)})
    for record_id in follow.encode:
        await encode.enqueue(runtime, record_id)

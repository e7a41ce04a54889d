"""Events of other services that conference applies (durable, idempotent consumers).

* ``LINK_PARTICIPANT_SEEN`` (ParticipantSeen): /link/getdetail's room_user write, handed over by link — the
  original's ``UPDATE room_user SET userAgent = ? WHERE room = ? AND identity = ?``. Applied once per event
  (``handled_once`` in the applying transaction); a changed row is published again as PARTICIPANT_SAVED.
* ``RECORDING_EGRESS_STARTED`` / ``RECORDING_EGRESS_ENDED`` (EgressChanged): the room's record state in
  room_conference (the original's webhook controller wrote it): started -> recordId, dtmStartRecord,
  recordStatus 1; ended -> recordId "", dtmStopRecord, recordStatus 2. Publishes ROOM_RECORD_CHANGED (detail).
* ``LINK_CREATED`` (LinkCreated) and ``RECORDING_FILE_STORED`` (FileStored): the read models of GET /room/picture
  (which room a link belongs to; the files uploaded through links).
"""

from __future__ import annotations

import logging
from datetime import datetime

from conference import repository
from conference.clients import LiveKitNodes
from conference.events.participants import publish_room_user
from conference.events.rooms import publish_room_detail
from contracts.conference import ROOM_RECORD_CHANGED
from contracts.link import LINK_CREATED, LINK_PARTICIPANT_SEEN, LinkCreated, ParticipantSeen
from contracts.recording import (
    RECORDING_EGRESS_ENDED,
    RECORDING_EGRESS_STARTED,
    RECORDING_FILE_STORED,
    EgressChanged,
    FileStored,
)
from servicekit import rebuild
from servicekit.bus import Event, apply_once, event_payload
from servicekit.clock import now_local, parse_local
from servicekit.db import Connection, Database
from servicekit.web import Runtime

log = logging.getLogger(__name__)

PARTICIPANT_SEEN_CONSUMER = "conference-participant-seen"
EGRESS_CONSUMER = "conference-egress"
LINK_ROOMS_CONSUMER = "conference-link-rooms"
FILES_CONSUMER = "conference-files"
FILE_WIDTHS = {"filename": 255, "url": 512}  # room_file_view's columns (linkId is TEXT, as recording's files.linkId)
LINK_WIDTHS = {"linkID": 100, "room": 50}  # room_link_view's columns


async def apply_participant_seen(db: Database, event: Event) -> bool:
    """Apply one LINK_PARTICIPANT_SEEN event; True when it changed a row."""
    seen = event_payload(event, ParticipantSeen)
    if seen is None:
        return False

    async def apply(conn: Connection) -> int:
        changed = await repository.participants.update_user_agent(conn, seen.room, seen.identity, seen.userAgent)
        if changed:
            await publish_room_user(conn, seen.room, seen.identity)
        return changed

    return bool(await apply_once(db, PARTICIPANT_SEEN_CONSUMER, event, apply))


def _event_time(text: str | None) -> datetime:
    """The local time the recording event carries (when LiveKit's webhook arrived), else now."""
    return (parse_local(text) if text else None) or now_local()


async def apply_egress(db: Database, nodes: LiveKitNodes, event: Event) -> bool:
    """Apply one RECORDING_EGRESS_STARTED/ENDED event to the room's record state; True when a row changed."""
    egress = event_payload(event, EgressChanged)
    if egress is None or not egress.room or not egress.recordId or len(egress.recordId) > 50:
        return False

    async def apply(conn: Connection) -> int:
        if event.subject == RECORDING_EGRESS_STARTED:
            changed = await repository.rooms.record_started(
                conn, egress.room, egress.recordId, _event_time(egress.dtmStartRecord)
            )
        else:
            changed = await repository.rooms.record_ended(
                conn, egress.room, egress.recordId, _event_time(egress.dtmStopRecord)
            )
        if changed:
            await publish_room_detail(conn, nodes, ROOM_RECORD_CHANGED, egress.room)
        return changed

    return bool(await apply_once(db, EGRESS_CONSUMER, event, apply))


async def apply_link_created(db: Database, event: Event) -> bool:
    link = event_payload(event, LinkCreated)
    if link is None or not link.linkID or not link.room:
        return False
    too_wide = rebuild.too_wide({"linkID": link.linkID, "room": link.room}, LINK_WIDTHS)
    if too_wide is not None:  # link's own columns are narrower: not expected, never silent
        log.warning("link not kept for /room/picture", extra={"linkID": link.linkID, "reason": too_wide})
        return False

    async def apply(conn: Connection) -> int:
        return await repository.pictures.save_link_room(conn, link.linkID, link.room)

    return bool(await apply_once(db, LINK_ROOMS_CONSUMER, event, apply))


async def apply_file_stored(db: Database, event: Event) -> bool:
    stored = event_payload(event, FileStored)
    if stored is None:
        return False
    too_wide = rebuild.too_wide({"filename": stored.filename, "url": stored.url}, FILE_WIDTHS)
    if too_wide is not None:  # recording's own columns are as wide: not expected, never silent
        log.warning("file not kept for /room/picture", extra={"fileId": stored.fileId, "reason": too_wide})
        return False
    row = {
        "fileId": stored.fileId,
        "linkId": stored.linkId,
        "filename": stored.filename,
        "url": stored.url,
        "width": stored.width,
        "height": stored.height,
        "createdAt": parse_local(stored.createdAt),
    }

    async def apply(conn: Connection) -> int:
        return await repository.pictures.save_file(conn, row)

    return bool(await apply_once(db, FILES_CONSUMER, event, apply))


def start(runtime: Runtime, nodes: LiveKitNodes) -> None:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db

    async def on_seen(event: Event) -> None:
        if event.subject == LINK_PARTICIPANT_SEEN:
            await apply_participant_seen(db, event)

    async def on_egress(event: Event) -> None:
        if event.subject in (RECORDING_EGRESS_STARTED, RECORDING_EGRESS_ENDED):
            await apply_egress(db, nodes, event)

    async def on_link_created(event: Event) -> None:
        if event.subject == LINK_CREATED:
            await apply_link_created(db, event)

    async def on_file_stored(event: Event) -> None:
        if event.subject == RECORDING_FILE_STORED:
            await apply_file_stored(db, event)

    runtime.bus.consume("link", PARTICIPANT_SEEN_CONSUMER, on_seen, filter_subject=LINK_PARTICIPANT_SEEN, batch_db=db)
    runtime.bus.consume("link", LINK_ROOMS_CONSUMER, on_link_created, filter_subject=LINK_CREATED, batch_db=db)
    runtime.bus.consume("recording", EGRESS_CONSUMER, on_egress, filter_subject="recording.egress.>")
    runtime.bus.consume("recording", FILES_CONSUMER, on_file_stored, filter_subject=RECORDING_FILE_STORED, batch_db=db)

"""Events of other services that conference applies (durable, idempotent consumers).

* ``LINK_PARTICIPANT_SEEN`` (ParticipantSeen): /link/getdetail's room_user write, handed over by link — the
  original's ``UPDATE room_user SET userAgent = ? WHERE room = ? AND identity = ?``. Applied once per event
  (``handled_once`` in the applying transaction); a changed row is published again as PARTICIPANT_SAVED.
"""

from __future__ import annotations

import logging

from conference import repository
from conference.events import publish_room_user
from servicekit.bus import apply_once, event_payload
from servicekit.db import Connection, Database
from servicekit.events import LINK_PARTICIPANT_SEEN, Event, ParticipantSeen
from servicekit.web import Runtime

log = logging.getLogger(__name__)

PARTICIPANT_SEEN_CONSUMER = "conference-participant-seen"


async def apply_participant_seen(db: Database, event: Event) -> bool:
    """Apply one LINK_PARTICIPANT_SEEN event; True when it changed a row."""
    seen = event_payload(event, ParticipantSeen)
    if seen is None:
        return False

    async def apply(conn: Connection) -> int:
        changed = await repository.update_user_agent(conn, seen.room, seen.identity, seen.userAgent)
        if changed:
            await publish_room_user(conn, seen.room, seen.identity)
        return changed

    return bool(await apply_once(db, PARTICIPANT_SEEN_CONSUMER, event, apply))


def start(runtime: Runtime) -> None:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db

    async def on_seen(event: Event) -> None:
        if event.subject == LINK_PARTICIPANT_SEEN:
            await apply_participant_seen(db, event)

    runtime.bus.consume("link", PARTICIPANT_SEEN_CONSUMER, on_seen, filter_subject=LINK_PARTICIPANT_SEEN)

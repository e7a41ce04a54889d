"""The statistics read model's event consumers.

Three durable consumers, each applying an event once (``apply_once``: the read-model write and the
``handled_event`` record share one transaction). They are created with deliver policy ALL, so a fresh
installation (or a read model rebuilt after ``DELETE FROM stats_*`` + ``handled_event`` rows of these consumers
and the consumers themselves) replays what the streams still hold.

* ``link.>`` (``telemetry-stats-link``): LINK_CREATED (a link row), LINK_LOCATION_UPDATED (its position),
  LINK_MULTI_LATLNG (the patient position picked on the map), LINK_FIELDS_CHANGED (any other column).
* ``conference.>`` (``telemetry-stats-conference``): CASE_CREATED / CASE_UPDATED (case of a room),
  PARTICIPANT_SAVED (room_user rows: who the patient of a room is).
* ``recording.webhook.received`` (``telemetry-stats-tracks``): LiveKit ``track_published`` webhooks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from contracts.conference import CASE_CREATED, CASE_UPDATED, PARTICIPANT_SAVED, CaseChanged, RoomUserSaved
from contracts.link import (
    LINK_CREATED,
    LINK_FIELDS_CHANGED,
    LINK_LOCATION_UPDATED,
    LINK_MULTI_LATLNG,
    LinkCreated,
    LinkFieldsChanged,
    LinkLocationUpdated,
    LinkMultiLatLng,
)
from contracts.recording import RECORDING_WEBHOOK_RECEIVED, WebhookReceived
from servicekit.bus import Event, apply_once, event_payload
from servicekit.clock import parse_local
from servicekit.db import Connection, Database
from servicekit.rebuild import event_version
from servicekit.web import Runtime
from telemetry.domain import statistics as domain
from telemetry.repository import statistics as repository

log = logging.getLogger(__name__)

LINK_CONSUMER = "telemetry-stats-link"
CONFERENCE_CONSUMER = "telemetry-stats-conference"
TRACK_CONSUMER = "telemetry-stats-tracks"
CONSUMERS = ((LINK_CONSUMER, "link", None), (CONFERENCE_CONSUMER, "conference", None),
             (TRACK_CONSUMER, "recording", RECORDING_WEBHOOK_RECEIVED))  # fmt: skip

Apply = Callable[[Connection], Awaitable[None]]


# ---- what each event changes ------------------------------------------------------------------------------
def _link_created(event: Event) -> Apply | None:
    link = event_payload(event, LinkCreated)
    if link is None:
        return None
    fields: dict[str, Any] = {
        "mobile": link.mobile, "room": link.room, "linkType": link.linkType, "userType": link.userType,
        "userName": link.userName, "service": link.service,
    }  # fmt: skip
    optional = {
        "linkRowId": link.linkRowId, "crmSender": link.crmSender, "recordId": link.recordId, "share": link.share,
        "oneTimeLink": link.oneTimeLink, "dtmCreated": link.dtmCreated, "dtmExpired": link.dtmExpired,
        "userAgent": link.userAgent,
    }  # fmt: skip
    fields.update({key: value for key, value in optional.items() if value is not None})
    values = domain.link_values(fields)
    if "dtmCreated" not in values:  # a publisher without the field: the event's own time is the closest fact
        values["dtmCreated"] = parse_local(event.occurred_at)
    return lambda conn: repository.upsert_link(conn, link.linkID, values, event_version(event))


def _link_located(event: Event) -> Apply | None:
    moved = event_payload(event, LinkLocationUpdated)
    if moved is None:
        return None
    values = domain.link_values(
        {"latitude": moved.position.latitude, "longitude": moved.position.longitude,
         "accuracy": domain.accuracy_text(moved.position.accuracy)}
    )  # fmt: skip
    return lambda conn: repository.upsert_link(conn, moved.linkID, values, event_version(event))


def _patient_picked(event: Event) -> Apply | None:
    picked = event_payload(event, LinkMultiLatLng)
    if picked is None:
        return None
    pick = picked.emit.get("pickLocation")
    pick = pick if isinstance(pick, dict) else {}
    values = domain.link_values({"patientLatitude": pick.get("latitude"), "patientLongitude": pick.get("longitude")})
    return lambda conn: repository.upsert_link(conn, picked.linkID, values, event_version(event))


def _link_fields(event: Event) -> Apply | None:
    changed = event_payload(event, LinkFieldsChanged)
    if changed is None:
        return None
    values = domain.link_values(changed.fields)
    return lambda conn: repository.upsert_link(conn, changed.linkID, values, event_version(event))


def _case(event: Event) -> Apply | None:
    case = event_payload(event, CaseChanged)
    if case is None:
        return None
    return lambda conn: repository.upsert_case(
        conn, case.service, case.caseId, case.room, case.status, case.organization, event_version(event)
    )


def _participant(event: Event) -> Apply | None:
    user = event_payload(event, RoomUserSaved)
    if user is None:
        return None
    return lambda conn: repository.upsert_participant(
        conn, user.room, user.identity, user.userName, user.userType, event_version(event)
    )


def _webhook(event: Event) -> Apply | None:
    hook = event_payload(event, WebhookReceived)
    if hook is None or hook.event != "track_published":
        return None
    track = domain.track_published(hook.data)
    if track is None:
        return None
    key = hook.eventId or event.id
    return lambda conn: repository.add_track(conn, key, track.identity, track.room_name, track.source, hook.data)


APPLIERS: dict[str, Callable[[Event], Apply | None]] = {
    LINK_CREATED: _link_created,
    LINK_LOCATION_UPDATED: _link_located,
    LINK_MULTI_LATLNG: _patient_picked,
    LINK_FIELDS_CHANGED: _link_fields,
    CASE_CREATED: _case,
    CASE_UPDATED: _case,
    PARTICIPANT_SAVED: _participant,
    RECORDING_WEBHOOK_RECEIVED: _webhook,
}


async def apply_event(db: Database, consumer: str, event: Event) -> bool:
    """Apply one event to the read model; False when irrelevant, malformed or already applied."""
    applier = APPLIERS.get(event.subject)
    change = applier(event) if applier else None
    if change is None:
        return False

    async def apply(conn: Connection) -> bool:
        await change(conn)
        return True

    return bool(await apply_once(db, consumer, event, apply))


# ---- wiring --------------------------------------------------------------------------------------------------
def start(runtime: Runtime) -> None:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db
    for durable, owner, filter_subject in CONSUMERS:

        async def handle(event: Event, consumer: str = durable) -> None:
            await apply_event(db, consumer, event)

        runtime.bus.consume(owner, durable, handle, filter_subject=filter_subject, replay=True, batch_db=db)

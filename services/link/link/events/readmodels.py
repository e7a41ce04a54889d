"""Read models of GET /link/getdetail and /link/history: conference's rooms, room users and cases, LiveKit's
participants and recordings, the colour palette, kept in link's own database and fed by events, so getdetail
answers in one hop (no request to conference) once a room is known.

* ``room_view``: conference's RoomChanged events carrying ``detail`` (conference.room.*). ``complete`` = the
  row began with the room's ``created`` event (so every later room_user change of it reached ``room_user_view``).
* ``room_user_view``: PARTICIPANT_SAVED (room_user inserts/updates) — colour and name reused in tokens.
* ``room_participant_view``: RECORDING_PARTICIPANT_JOINED / LEFT (LiveKit webhooks, via recording), and per room
  ``room_participant_list``: the live ones as one JSON array, what getdetail reads.
* ``room_case_view`` (GET /link/history): conference.case.created / updated (CaseChanged); each also writes the
  case action's usage_status_log row, as the original's case routes did. Own consumer, replayed from the start.
* ``room_record_view`` (GET /link/history ``recordVideos``): recording.egress.* (EgressChanged), replayed too.
* ``palette_view`` / :class:`Palette`: rpc.conference.palette at start-up, then every 5 minutes; the last known
  list is used while conference does not answer.

Consumers are durable and idempotent (``handled_once`` in the applying transaction); an event older than the
row (``version`` = event time, epoch ms) does not overwrite it. The tables' SQL, and getdetail's one-query lookup
of them, are link.repository.readmodels'.

Fallback (slow path, in routes/links.py): a room missing from ``room_view`` (older than the events, or its
event not applied yet), a room whose LiveKit node has its own API key (link signs only with the shared
LIVEKIT_API_KEY/SECRET), or no palette known yet: the request goes to conference (RPC_PARTICIPANT_TOKEN with
withRoom) and the room it returns is stored here, so only the first request of such a room is slow. Whether
the room uses the shared key is learnt by verifying the token conference returned with the shared secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from contracts.conference import (
    CASE_CREATED,
    CASE_UPDATED,
    PARTICIPANT_SAVED,
    ROOM_CREATED,
    RPC_CONFERENCE_PALETTE,
    RPC_ROOM_DETAIL,
    CaseChanged,
    PaletteQuery,
    RoomChanged,
    RoomQuery,
    RoomUserSaved,
)
from contracts.recording import (
    RECORDING_EGRESS_ENDED,
    RECORDING_EGRESS_STARTED,
    RECORDING_EGRESS_UPDATED,
    RECORDING_PARTICIPANT_JOINED,
    RECORDING_PARTICIPANT_LEFT,
    RECORDING_RECORD_USAGE,
    EgressChanged,
    ParticipantPresence,
    RecordUsage,
)
from link import domain, repository
from servicekit.bus import Event, RpcError, apply_once, event_payload
from servicekit.clock import LOCAL_TZ, now_local, parse_local
from servicekit.db import Connection, Database
from servicekit.web import Runtime

log = logging.getLogger(__name__)

CONFERENCE_CONSUMER = "link-readmodels-conference"
RECORDING_CONSUMER = "link-readmodels-recording"
EGRESS_CONSUMER = "link-readmodels-egress"
CASE_CONSUMER = "link-readmodels-cases"
RECORD_USAGE_CONSUMER = "link-record-usage"
CASE_SUBJECTS = (CASE_CREATED, CASE_UPDATED)
EGRESS_SUBJECTS = (RECORDING_EGRESS_STARTED, RECORDING_EGRESS_UPDATED, RECORDING_EGRESS_ENDED)
PALETTE_REFRESH_SECONDS = 300.0
PALETTE_RETRY_SECONDS = 1.0
PALETTE_RPC_TIMEOUT = 2.0
INT_MAX = 2_147_483_647
UINT_MAX = 4_294_967_295
HISTORY_RPC_TIMEOUT = 5.0
_encode = msgspec.json.Encoder()


def event_ms(event: Event) -> int:
    try:
        return int(datetime.fromisoformat(event.occurred_at).timestamp() * 1000)
    except ValueError:
        return int(time.time() * 1000)


# ---- rooms and room users (conference.room.*, conference.participant.saved) ------------------------------
async def apply_conference_event(db: Database, event: Event) -> bool:
    """Apply one conference event to the views; True when it was applied (False: duplicate or not ours)."""
    if event.subject.startswith("conference.room."):
        changed = event_payload(event, RoomChanged)
        if changed is None or not changed.detail:
            return False  # malformed, or a publisher without details: the fallback fills the view

        async def apply_room(conn: Connection) -> bool:
            await repository.readmodels.store_room(
                conn,
                changed.detail,
                room=changed.room,
                node_id=changed.nodeLivekitId,
                uses_default_key=bool(changed.usesDefaultKey),
                complete=event.subject == ROOM_CREATED,
                version=event_ms(event),
            )
            return True

        return bool(await apply_once(db, CONFERENCE_CONSUMER, event, apply_room))
    if event.subject == PARTICIPANT_SAVED:
        user = event_payload(event, RoomUserSaved)
        if user is None or len(user.room) > 100 or len(user.identity) > 50:
            return False

        async def apply_user(conn: Connection) -> bool:
            await repository.readmodels.store_room_user(
                conn, user.room, user.identity, user.color, user.userName, user.userType, user.userAgent,
                event_ms(event),
            )  # fmt: skip
            return True

        return bool(await apply_once(db, CONFERENCE_CONSUMER, event, apply_user))
    return False


# ---- cases (conference.case.*) ----------------------------------------------------------------------------
def event_local(event: Event) -> datetime:
    """The event's time as a naive local DATETIME (usage_status_log.dtmCreated of the original's action)."""
    try:
        at = datetime.fromisoformat(event.occurred_at)
    except ValueError:
        return now_local()
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(LOCAL_TZ).replace(tzinfo=None, microsecond=0)


def case_values(case: CaseChanged) -> tuple[Any, ...] | None:
    """store_case's arguments before the version (None: a case the view cannot hold)."""
    if not (0 <= case.caseId <= INT_MAX) or not (0 <= case.service <= INT_MAX):
        return None
    room = case.room[:50] if case.room else None
    status = case.status[:50] if case.status else None
    row_id = case.caseRowId if case.caseRowId is not None and 0 < case.caseRowId <= UINT_MAX else None
    hn = case.hn[:100] if case.hn is not None else None
    patient_mobile = case.patientMobile[:100] if case.patientMobile is not None else None
    return case.service, case.caseId, row_id, room, status, hn, patient_mobile


async def apply_case_event(db: Database, event: Event) -> bool:
    """A case created/updated: the case read model (row id, room, status, hn, patientMobile) and the action's
    usage_status_log row, as the original's case routes wrote it (linkID NULL, userName, data = the JSON string of
    the log text)."""
    if event.subject not in CASE_SUBJECTS:
        return False
    case = event_payload(event, CaseChanged)
    values = case_values(case) if case is not None else None
    if case is None or values is None:
        return False

    async def apply_case(conn: Connection) -> bool:
        await repository.readmodels.store_case(conn, *values, event_ms(event))
        if case.statusLog:  # a case opened by /link/idems has no log text: the original wrote no row for it
            await repository.usage.add_case_usage(
                conn, user_name=case.userName or "", status_log=case.statusLog, at=event_local(event)
            )
        return True

    return bool(await apply_once(db, CASE_CONSUMER, event, apply_case))


# ---- recording's usage rows (recording.record.usage) -----------------------------------------------------------
async def apply_record_usage(db: Database, event: Event) -> bool:
    """GET /record/request's usage_status_log row (StartRecord / FailRecord / StopRecord), as the original's
    addStatusLog wrote it there: room, identity, status, userAgent and the JSON of ``data`` ("" when absent);
    stamped with the time of the request."""
    if event.subject != RECORDING_RECORD_USAGE:
        return False
    usage = event_payload(event, RecordUsage)
    if usage is None:
        return False
    row = list(
        repository.usage.usage_row(
            status=usage.status[:50],
            room=usage.room[:100],
            identity=usage.identity[:100],
            user_agent=usage.userAgent,
            data=usage.data if usage.data is not None else "",
        )
    )
    row[_USAGE_CREATED_AT] = event_local(event)

    async def apply_usage(conn: Connection) -> bool:
        await repository.usage.insert_usage_rows(conn, [tuple(row)])
        return True

    return bool(await apply_once(db, RECORD_USAGE_CONSUMER, event, apply_usage))


_USAGE_CREATED_AT = 11  # dtmCreated's place in repository.usage.usage_row


# ---- recordings (recording.egress.*) ------------------------------------------------------------------------
def egress_file(info: dict[str, Any]) -> tuple[str, str]:
    """(filename, recordType) of a LiveKit EgressInfo, in the original's record_media terms."""
    filename = ""
    results = info.get("fileResults")
    if isinstance(results, list) and results and isinstance(results[0], dict):
        filename = str(results[0].get("filename") or "")
    if not filename and isinstance(info.get("file"), dict):
        filename = str(info["file"].get("filename") or "")
    record_type = ""
    if isinstance(info.get("roomComposite"), dict):
        record_type = "RoomCompositeAudio" if info["roomComposite"].get("audioOnly") else "RoomCompositeVideoAudio"
    elif isinstance(info.get("trackComposite"), dict):
        record_type = "TrackComposite"
    return filename[:500], record_type


async def apply_egress_event(db: Database, event: Event) -> bool:
    if event.subject not in EGRESS_SUBJECTS:
        return False
    egress = event_payload(event, EgressChanged)
    if egress is None or not egress.recordId or len(egress.recordId) > 100 or len(egress.room) > 50:
        return False
    filename, record_type = egress_file(egress.egressInfo)
    started = parse_local(egress.dtmStartRecord) if egress.dtmStartRecord else None
    ended = parse_local(egress.dtmStopRecord) if egress.dtmStopRecord else None
    version = egress.timestamp or event_ms(event)

    async def apply_record(conn: Connection) -> bool:
        await repository.readmodels.store_record(
            conn, egress.recordId, egress.room, egress.status[:50], filename, record_type, started, ended,
            event_local(event), version,
        )  # fmt: skip
        return True

    return bool(await apply_once(db, EGRESS_CONSUMER, event, apply_record))


async def apply_recording_event(db: Database, event: Event) -> bool:
    """Apply one participant joined/left event to room_participant_view and the room's room_participant_list."""
    if event.subject not in (RECORDING_PARTICIPANT_JOINED, RECORDING_PARTICIPANT_LEFT):
        return False
    presence = event_payload(event, ParticipantPresence)
    if presence is None:
        return False
    if not presence.room or not presence.identity or len(presence.room) > 50 or len(presence.identity) > 255:
        return False
    version = presence.timestamp or event_ms(event)
    joined = event.subject == RECORDING_PARTICIPANT_JOINED
    participant = _encode.encode(presence.participant).decode() if joined else None
    joined_at = presence.participant.get("joinedAt") if joined else 0
    try:
        joined_at = int(joined_at or 0)
    except (TypeError, ValueError):
        joined_at = 0

    async def apply_presence(conn: Connection) -> bool:
        await repository.readmodels.store_presence(
            conn, presence.room, presence.identity, participant, joined_at, version
        )
        return True

    return bool(await apply_once(db, RECORDING_CONSUMER, event, apply_presence))


# ---- the palette -----------------------------------------------------------------------------------------
class Palette:
    """Conference's colour list, held in memory (and in palette_view for restarts)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.colors: list[str] = []
        self.known = False  # a list was learnt (from conference, or stored by an earlier run)

    def pick(self) -> str | None:
        return secrets.choice(self.colors) if self.colors else None

    async def load_stored(self) -> None:
        assert self.runtime.db is not None
        colors = await repository.readmodels.stored_palette(self.runtime.db)
        if colors:
            self.colors = colors
            self.known = True

    async def refresh(self) -> bool:
        """Ask conference; True on success. On failure the last known list stays."""
        assert self.runtime.bus is not None and self.runtime.db is not None
        try:
            reply = await self.runtime.bus.request(RPC_CONFERENCE_PALETTE, PaletteQuery(), timeout=PALETTE_RPC_TIMEOUT)
            colors = msgspec.convert(reply, list[str])
        except (RpcError, msgspec.ValidationError) as exc:
            log.info("palette not refreshed", extra={"error": str(exc)})
            return False
        colors = [c for c in colors if c and len(c) <= 50]
        if colors != self.colors or not self.known:
            async with self.runtime.db.transaction() as conn:
                await repository.readmodels.replace_palette(conn, colors)
        self.colors = colors
        self.known = True
        return True

    async def run(self) -> None:
        """Refresh every 5 minutes; every second until the first success."""
        while True:
            try:
                ok = await self.refresh()
            except Exception:
                log.exception("palette refresh failed")
                ok = False
            await asyncio.sleep(PALETTE_REFRESH_SECONDS if ok else PALETTE_RETRY_SECONDS)


# ---- wiring ----------------------------------------------------------------------------------------------
async def start(runtime: Runtime) -> Palette:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db
    palette = Palette(runtime)
    with contextlib.suppress(Exception):
        await palette.load_stored()
    runtime.background.append(asyncio.create_task(palette.run()))

    async def on_conference(event: Event) -> None:
        await apply_conference_event(db, event)

    async def on_recording(event: Event) -> None:
        await apply_recording_event(db, event)

    runtime.bus.consume("conference", CONFERENCE_CONSUMER, on_conference, batch_db=db)
    runtime.bus.consume(
        "recording", RECORDING_CONSUMER, on_recording, filter_subject="recording.participant.>", batch_db=db
    )

    async def on_egress(event: Event) -> None:
        await apply_egress_event(db, event)

    # New read models: replayed from the streams' first events, so they hold what happened before link consumed.
    runtime.bus.consume(
        "recording", EGRESS_CONSUMER, on_egress, filter_subject="recording.egress.>", replay=True, batch_db=db
    )

    async def on_case(event: Event) -> None:
        await apply_case_event(db, event)

    runtime.bus.consume(
        "conference", CASE_CONSUMER, on_case, filter_subject="conference.case.>", replay=True, batch_db=db
    )

    async def on_record_usage(event: Event) -> None:
        await apply_record_usage(db, event)

    # Replayed: recording may have published rows before link consumed them (each is written once).
    runtime.bus.consume(
        "recording",
        RECORD_USAGE_CONSUMER,
        on_record_usage,
        filter_subject=RECORDING_RECORD_USAGE,
        replay=True,
        batch_db=db,
    )
    return palette


# ---- /link/history rows --------------------------------------------------------------------------------------
async def room_state(runtime: Runtime, room: str) -> dict[str, Any] | None:
    """The room's id and status: from room_view, else asked of conference once (and stored, as getdetail does).
    None when conference has no such room. Raises RpcError when conference cannot answer."""
    assert runtime.db is not None and runtime.bus is not None
    async with runtime.db.connection() as conn:
        state = await repository.readmodels.room_state(conn, room)
    if state is not None:
        return state
    try:
        detail = await runtime.bus.request(RPC_ROOM_DETAIL, RoomQuery(room=room), timeout=HISTORY_RPC_TIMEOUT)
    except RpcError as exc:
        if exc.code == "not_found":
            return None
        raise
    await repository.readmodels.store_room(
        runtime.db,
        detail,
        room=room,
        node_id=None,
        uses_default_key=False,  # not known here: getdetail's first request of the room asks conference
        complete=False,
        version=0,  # any event of the room is newer
    )
    return {"id": detail.get("id"), "status": detail.get("status")}


async def history(
    runtime: Runtime, room: str, offset: int, limit: int = 5, newest_first: bool = False
) -> tuple[list[dict[str, Any]], int]:
    """Rows of the original's SMS-link history of a room (patient links x cases, with the room's id and status,
    the agent, each link's activity log and the room's recordings) and their total count."""
    assert runtime.db is not None
    state = await room_state(runtime, room)
    if state is None:
        return [], 0
    async with runtime.db.connection() as conn:
        rows = await repository.history.history_rows(conn, room, offset, limit, newest_first)
        count = await repository.history.history_count(conn, room)
        if not rows:
            return [], count
        agent = await repository.history.room_agent(conn, room)
        recordings = [domain.rows.plain(r) for r in await repository.readmodels.room_recordings(conn, room)]
        data = []
        for row in rows:
            row["id"] = state["id"]
            data.append(await _history_item(conn, row, agent, state["status"], recordings))
    return data, count


async def _history_item(
    conn: Connection, row: dict[str, Any], agent: str | None, room_status: str | None, recordings: list[Any]
) -> dict[str, Any]:
    """A history row as the original enriched it: its agent, room status, activity log and recordings."""
    item = domain.rows.plain(row)
    for key in ("latitude", "longitude"):
        if item[key] is None:
            del item[key]  # the original set them undefined: absent from the JSON
    log_rows = await repository.usage.active_log(conn, row["linkID"])
    item["agent"] = agent if agent is not None else False
    item["status"] = room_status or False
    item["activeLog"] = log_rows or False
    item["recordVideos"] = recordings
    return item


async def queue_page(runtime: Runtime, search: domain.history.QueueSearch) -> tuple[list[dict[str, Any]], int]:
    """One page of a tenant's SMS-link history (the socket ``queue``), newest first, rows shaped as
    :func:`history`'s, and the number of rows the search matches in all."""
    assert runtime.db is not None
    async with runtime.db.connection() as conn:
        rows = await repository.history.queue_rows(conn, search)
        count = await repository.history.queue_count(conn, search)
        recordings: dict[str, list[Any]] = {}
        data = []
        for row in rows:
            room_status, agent = row.pop("roomStatus"), row.pop("agent")
            row.pop("linkRowId")
            room = row["room"]
            if room not in recordings:
                recordings[room] = [
                    domain.rows.plain(r) for r in await repository.readmodels.room_recordings(conn, room)
                ]
            data.append(await _history_item(conn, row, agent, room_status, recordings[room]))
    return data, count

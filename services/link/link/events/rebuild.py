"""Rebuilding read models (servicekit.rebuild), link's part.

* Owner: RPC_LINK_SNAPSHOT pages of links (LinkState: LINK_CREATED's payload plus the columns the other link events
  carry, and whether ``/data/{linkID}`` is live) for telemetry, conference and realtime.
* Consumer (``rpc.link.rebuild``): the read models of link.events.readmodels from their owners, written with the
  same repository functions and checks as the consumers (and none of their side effects: a case snapshot writes
  no usage_status_log row). Rows are stamped with the time taken before their page was asked for, so an event
  applied meanwhile (newer ``version``) is kept:

  - ``room_view``: conference's rooms; ``room_user_view``: its room users, after which every room counts as
    ``complete`` (every user it had is in the view, later ones come as events);
  - ``room_case_view``: conference's cases; ``room_record_view``: recording's egresses;
  - ``palette_view``: asked of conference (rpc.conference.palette), as the periodic refresh does.

  room_view, room_user_view and room_case_view are pruned after a complete pass (servicekit.rebuild.Prune): a row
  whose owner row is gone (deleted in an original between two catch-ups) goes. Not room_record_view: recording's
  events announce every egress of a room (another tool's too), while its snapshot has only record_media's, so a row
  missing from the snapshot may still be current.

  - ``room_participant_view`` (and each room's ``room_participant_list``): who is in a room now is LiveKit's
    state, which no service keeps in a table: for every open room (and every room the view shows someone in),
    conference is asked for LiveKit's participant list (RPC_CONFERENCE_PARTICIPANTS), and the view is made to
    match it (a participant LiveKit does not list has left) with the participant consumer's store_presence.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec

from contracts.conference import (
    RPC_CONFERENCE_PARTICIPANTS,
    RPC_CONFERENCE_SNAPSHOT,
    CaseChanged,
    ConferenceSnapshot,
    RoomQuery,
    RoomState,
    RoomUserSaved,
)
from contracts.link import RPC_LINK_SNAPSHOT, LinkSnapshot, LinkState, LiveLink
from contracts.recording import RPC_RECORDING_SNAPSHOT, EgressChanged, RecordingSnapshot
from link import repository
from link.events import readmodels
from servicekit import rebuild
from servicekit.bus import RpcError
from servicekit.clock import now_local, parse_local
from servicekit.db import Connection
from servicekit.web import Runtime

# LinkState.fields: link_connect columns the other link events carry (LINK_FIELDS_CHANGED, LINK_LOCATION_UPDATED,
# LINK_MULTI_LATLNG), decimals as numbers.
_FIELDS = ("userAgent", "os", "errorVideo", "errorLocation", "domainIndex", "enabled", "accuracy")
_DECIMALS = ("latitude", "longitude", "patientLatitude", "patientLongitude")
_DATE = "%Y-%m-%d %H:%M:%S"
PROBE_ROOMS = 200  # rooms read per page of open rooms
PROBE_CONCURRENCY = 8  # participant lists asked at once (each is a LiveKit call by conference)
PROBE_TIMEOUT = 5.0
# Columns of the read models (characters): a row wider than one is reported (rebuild.not_rebuilt), never dropped
USER_WIDTHS = {"room": 100, "identity": 50}  # room_user_view
RECORD_WIDTHS = {"egressId": 100, "room": 50}  # room_record_view
PARTICIPANT_WIDTHS = {"identity": 255}  # room_participant_view
_encode = msgspec.json.Encoder()
log = logging.getLogger(__name__)


# ---- owner: snapshot of link's links --------------------------------------------------------------------------
def link_state(row: dict[str, Any]) -> LinkState:
    fields = {key: row[key] for key in _FIELDS}
    fields.update({key: (float(row[key]) if row[key] is not None else None) for key in _DECIMALS})
    fields["service"] = row["service"]  # may be NULL (LinkState.service is 0 then)
    expired = row["dtmExpired"]
    return LinkState(
        linkID=row["linkID"], room=row["room"] or "", linkType=row["linkType"] or "", userType=row["userType"] or "",
        userName=row["userName"] or "", mobile=row["mobile"] or "", service=row["service"] or 0, roomCreated=False,
        linkRowId=row["id"], crmSender=row["crmSender"], recordId=row["recordId"], share=row["share"],
        oneTimeLink=row["oneTimeLink"], userAgent=row["userAgent"],
        dtmCreated=row["dtmCreated"].strftime(_DATE) if row["dtmCreated"] else None,
        dtmExpired=expired.strftime(_DATE) if expired else None,
        fields=fields, live=bool(row["_live"]),
    )  # fmt: skip


async def serve_owner_snapshot(runtime: Runtime) -> None:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db

    async def links(after: int, limit: int) -> tuple[list[Any], int | None]:
        rows = await repository.links.links_page(db, after, limit, now_local())
        return [link_state(row) for row in rows], (int(rows[-1]["id"]) if len(rows) == limit else None)

    async def live_links(after: int, limit: int) -> tuple[list[Any], int | None]:
        rows = await repository.links.live_links_page(db, after, limit, now_local())
        return [LiveLink(linkID=row["linkID"]) for row in rows], (int(rows[-1]["id"]) if len(rows) == limit else None)

    readers = {LinkSnapshot.LINKS: links, LinkSnapshot.LIVE_LINKS: live_links}
    await rebuild.serve_snapshot(runtime.bus, RPC_LINK_SNAPSHOT, readers)


# ---- consumer: link's read models --------------------------------------------------------------------------------
async def _store_rooms(conn: Connection, rooms: list[RoomState], version: int) -> None:
    rows = [(room.detail or {}, room.room, room.nodeLivekitId, bool(room.usesDefaultKey)) for room in rooms]
    await repository.readmodels.store_rooms(conn, rows, complete=False, version=version)


async def rebuild_rooms(runtime: Runtime) -> int:
    assert runtime.bus is not None and runtime.db is not None
    return await rebuild.rebuild_from(
        runtime.bus,
        runtime.db,
        RPC_CONFERENCE_SNAPSHOT,
        ConferenceSnapshot.ROOMS,
        RoomState,
        _store_rooms,
        keep=lambda rooms: [room for room in rooms if room.detail],  # as apply_conference_event
        prune=rebuild.Prune("room_view", ("room",)),
    )


async def _store_users(conn: Connection, users: list[RoomUserSaved], version: int) -> None:
    for u in users:
        await repository.readmodels.store_room_user(
            conn, u.room, u.identity, u.color, u.userName, u.userType, u.userAgent, version
        )


async def rebuild_room_users(runtime: Runtime) -> int:
    assert runtime.bus is not None and runtime.db is not None
    count = await rebuild.rebuild_from(
        runtime.bus,
        runtime.db,
        RPC_CONFERENCE_SNAPSHOT,
        ConferenceSnapshot.ROOM_USERS,
        RoomUserSaved,
        _store_users,
        # as apply_conference_event; conference's room_user is as wide, so none is expected
        fits=lambda u: rebuild.too_wide({"room": u.room, "identity": u.identity}, USER_WIDTHS),
        describe=lambda u: f"{u.room}/{u.identity}",
        prune=rebuild.Prune("room_user_view", ("room", "identity")),
    )
    # Every user of every room known now is in the view, and later ones come as events: what ``complete`` means.
    await repository.readmodels.mark_rooms_complete(runtime.db)
    return count


async def _store_cases(conn: Connection, cases: list[tuple[Any, ...]], version: int) -> None:
    for case in cases:
        await repository.readmodels.store_case(conn, *case, version)


async def rebuild_cases(runtime: Runtime) -> int:
    assert runtime.bus is not None and runtime.db is not None
    return await rebuild.rebuild_from(
        runtime.bus,
        runtime.db,
        RPC_CONFERENCE_SNAPSHOT,
        ConferenceSnapshot.CASES,
        CaseChanged,
        _store_cases,
        keep=lambda cases: [v for v in map(readmodels.case_values, cases) if v is not None],
        fits=lambda c: None if readmodels.case_values(c) is not None else "caseId or service out of the view's range",
        describe=lambda c: f"{c.service}/{c.caseId}",
        prune=rebuild.Prune("room_case_view", ("service", "caseId")),
    )


async def _store_records(conn: Connection, egresses: list[EgressChanged], version: int) -> None:
    updated = now_local()
    for e in egresses:  # as apply_egress_event
        filename, record_type = readmodels.egress_file(e.egressInfo)
        started = parse_local(e.dtmStartRecord) if e.dtmStartRecord else None
        ended = parse_local(e.dtmStopRecord) if e.dtmStopRecord else None
        await repository.readmodels.store_record(
            conn, e.recordId, e.room, e.status[:50], filename, record_type, started, ended,
            ended or started or updated, version,
        )  # fmt: skip


async def rebuild_records(runtime: Runtime) -> int:
    assert runtime.bus is not None and runtime.db is not None
    return await rebuild.rebuild_from(
        runtime.bus,
        runtime.db,
        RPC_RECORDING_SNAPSHOT,
        RecordingSnapshot.EGRESSES,
        EgressChanged,
        _store_records,
        fits=lambda e: "no egressId (recordVideos are keyed by it)" if not e.recordId
        else rebuild.too_wide({"egressId": e.recordId, "room": e.room}, RECORD_WIDTHS),
        describe=lambda e: f"{e.room}/{e.recordId}",
    )  # fmt: skip


async def rebuild_participants(runtime: Runtime) -> int:
    assert runtime.db is not None
    count, after = 0, ""
    limit = asyncio.Semaphore(PROBE_CONCURRENCY)
    # Lists are asked concurrently, written one room at a time: store_presence's inserts of new rooms' list rows
    # deadlock with each other (gap locks) when run side by side.
    writing = asyncio.Lock()
    while rooms := await repository.readmodels.open_rooms(runtime.db, after, PROBE_ROOMS):
        after = rooms[-1]
        count += sum(await asyncio.gather(*(_room_participants(runtime, room, limit, writing) for room in rooms)))
    return count


async def _store_participants(conn: Connection, room: str, live: dict[str, dict[str, Any]], version: int) -> None:
    for identity in await repository.readmodels.live_identities(conn, room):
        if identity not in live:
            await repository.readmodels.store_presence(conn, room, identity, None, 0, version)
    for identity, participant in live.items():
        try:
            joined_at = int(participant.get("joinedAt") or 0)
        except (TypeError, ValueError):
            joined_at = 0
        text = _encode.encode(participant).decode()
        await repository.readmodels.store_presence(conn, room, identity, text, joined_at, version)


async def _room_participants(runtime: Runtime, room: str, limit: asyncio.Semaphore, writing: asyncio.Lock) -> int:
    """The room's participants as LiveKit lists them now; the number stored (0 when conference cannot say)."""
    assert runtime.bus is not None and runtime.db is not None
    async with limit:
        version = rebuild.now_ms() - rebuild.VERSION_MARGIN_MS
        try:
            listed = await runtime.bus.request(RPC_CONFERENCE_PARTICIPANTS, RoomQuery(room=room), PROBE_TIMEOUT)
        except RpcError as exc:  # LiveKit unreachable: the room keeps what it has
            log.warning("participants not rebuilt", extra={"room": room, "code": exc.code})
            return 0
        # False: LiveKit has no such room (nobody is in it)
        live = {}
        for p in listed if isinstance(listed, list) else []:
            if not isinstance(p, dict) or not p.get("identity"):
                continue
            too_wide = rebuild.too_wide({"identity": str(p["identity"])}, PARTICIPANT_WIDTHS)
            if too_wide is None:
                live[str(p["identity"])] = p
            else:
                rebuild.not_rebuilt(f"participant of {room}", too_wide)
        async with writing:
            await rebuild.write(runtime.db, _store_participants, room, live, version)
    return len(live)


async def rebuild_palette(runtime: Runtime) -> int:
    palette: readmodels.Palette = runtime.extras["palette"]
    if not await palette.refresh():
        raise RuntimeError("conference did not answer rpc.conference.palette")
    return len(palette.colors)


async def serve(runtime: Runtime) -> None:
    """Serve the snapshot (owner) and ``rpc.link.rebuild`` (consumer)."""
    assert runtime.bus is not None
    await serve_owner_snapshot(runtime)
    steps = {
        "room_view": lambda: rebuild_rooms(runtime),
        "room_user_view": lambda: rebuild_room_users(runtime),
        "room_case_view": lambda: rebuild_cases(runtime),
        "room_record_view": lambda: rebuild_records(runtime),
        "room_participant_view": lambda: rebuild_participants(runtime),
        "palette_view": lambda: rebuild_palette(runtime),
    }
    await rebuild.serve_rebuild(runtime.bus, steps)

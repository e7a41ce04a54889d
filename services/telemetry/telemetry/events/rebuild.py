"""Rebuilding read models (servicekit.rebuild), telemetry's part: ``rpc.telemetry.rebuild``.

Every read model of telemetry.events.car_rooms and telemetry.events.statistics, from its owner, written with the
consumers' repository functions and checks (none of their side effects: a link's position publishes no task
destination here). Rows are stamped with the time taken before their page was asked for: a newer event keeps
what it wrote, an older write only fills what a row lacks.

* ``car_room_link`` and ``stats_link``: link's links (LinkState: the link and its positions), in link's order, so
  the ids that mean "order first seen" keep link's order; every one of them, share links and links without a
  linkID (keyed by link's row id then) included, as the original read link_connect whole.
* ``car_room``: conference's rooms (their tenant); ``stats_case``: its cases; ``stats_participant``: its room users.
* ``stats_track``: telemetry's own data_log (the raw LiveKit webhooks; a migration copies it): its
  ``track_published`` rows, keyed as the live consumer keys them (recording's receipt key), so none is kept twice.

car_room_link, stats_link, stats_case and stats_participant are pruned after a complete pass (servicekit.rebuild.Prune):
a row whose owner row is gone (deleted in an original between two catch-ups) goes. Not car_room: rooms without a
tenant are not written (as apply_room_event), so the tenant an earlier event gave such a room would look gone.
"""

from __future__ import annotations

from typing import Any

from contracts.conference import RPC_CONFERENCE_SNAPSHOT, CaseChanged, ConferenceSnapshot, RoomState, RoomUserSaved
from contracts.link import RPC_LINK_SNAPSHOT, LinkSnapshot, LinkState
from servicekit import rebuild
from servicekit.clock import now_local
from servicekit.db import Connection
from servicekit.web import Runtime
from telemetry.domain import statistics as stats_domain
from telemetry.events.car_rooms import coordinate
from telemetry.repository import data_log
from telemetry.repository import statistics as stats_repository
from telemetry.repository import tasks as tasks_repository

# Columns of the read models (characters): a row of an owner wider than one is reported, never dropped silently
# (they are as wide as the owners' columns, so none is expected).
CAR_ROOM_WIDTHS = {"room": 50}
CASE_WIDTHS = {"room": 100}
PARTICIPANT_WIDTHS = {"room": 100, "identity": 100, "userType": 50}
CAR_LINK_WIDTHS = {"linkID": 50, "room": 50, "userType": 50}


async def _save_car_links(conn: Connection, links: list[LinkState], version: int) -> None:
    created, positions, picks = [], [], []
    for link in links:
        fields = link.fields
        created.append({
            "linkID": link.linkID, "linkRowId": link.linkRowId, "room": link.room, "userType": link.userType,
            "service": fields.get("service"), "userName": link.userName, "mobile": link.mobile,
        })  # fmt: skip
        key = (link.linkID, link.linkRowId, link.room, link.userType)
        latitude, longitude = coordinate(fields.get("latitude"), 90), coordinate(fields.get("longitude"), 180)
        if latitude is not None or longitude is not None:
            positions.append((*key, latitude, longitude))
        pick_lat, pick_lng = (
            coordinate(fields.get("patientLatitude"), 90),
            coordinate(fields.get("patientLongitude"), 180),
        )
        if pick_lat is not None or pick_lng is not None:
            picks.append((*key, pick_lat, pick_lng))
    await tasks_repository.save_links(conn, created, positions, picks, now_local(), version)


async def rebuild_car_links(runtime: Runtime) -> int:
    """car_room_link as apply_link_event writes it: the link, its own position and the picked patient position."""
    assert runtime.bus is not None and runtime.db is not None
    return await rebuild.rebuild_from(
        runtime.bus, runtime.db, RPC_LINK_SNAPSHOT, LinkSnapshot.LINKS, LinkState, _save_car_links,
        fits=lambda link: _link_key_missing(link) or rebuild.too_wide(
            {"linkID": link.linkID, "room": link.room, "userType": link.userType}, CAR_LINK_WIDTHS
        ),
        describe=_describe_link, prune=rebuild.Prune("car_room_link", ("id",)),
    )  # fmt: skip


def _link_key_missing(link: LinkState) -> str | None:
    return "neither linkID nor row id" if link.linkID is None and link.linkRowId is None else None


def _describe_link(link: LinkState) -> str:
    return f"{link.linkRowId} ({link.linkID})"


async def _save_car_rooms(conn: Connection, rooms: list[RoomState], version: int) -> None:
    services = [(room.room, room.service) for room in rooms if room.service is not None]
    await tasks_repository.save_room_services(conn, services, now_local(), version)


async def rebuild_car_rooms(runtime: Runtime) -> int:
    """car_room as apply_room_event writes it (rooms with a tenant)."""
    assert runtime.bus is not None and runtime.db is not None
    return await rebuild.rebuild_from(
        runtime.bus,
        runtime.db,
        RPC_CONFERENCE_SNAPSHOT,
        ConferenceSnapshot.ROOMS,
        RoomState,
        _save_car_rooms,
        keep=lambda rooms: [r for r in rooms if r.service is not None and r.room],  # as apply_room_event
        fits=lambda room: rebuild.too_wide({"room": room.room}, CAR_ROOM_WIDTHS),
        describe=lambda room: room.room,
    )


async def _save_stats_links(conn: Connection, links: list[LinkState], version: int) -> None:
    rows = []
    for link in links:
        columns = {
            "mobile": link.mobile, "room": link.room, "linkType": link.linkType, "userType": link.userType,
            "userName": link.userName, "linkRowId": link.linkRowId, "crmSender": link.crmSender,
            "recordId": link.recordId, "share": link.share, "oneTimeLink": link.oneTimeLink,
            "dtmCreated": link.dtmCreated, "dtmExpired": link.dtmExpired, **link.fields,
        }  # fmt: skip
        rows.append((link.linkID, stats_domain.link_values(columns)))
    await stats_repository.upsert_links(conn, rows, version)


async def rebuild_stats_links(runtime: Runtime) -> int:
    """stats_link with every column the link events carry (LINK_CREATED's and the others' ``fields``), of every link
    (one without linkID keyed by its row id: the original's statistics counted it)."""
    assert runtime.bus is not None and runtime.db is not None
    return await rebuild.rebuild_from(
        runtime.bus, runtime.db, RPC_LINK_SNAPSHOT, LinkSnapshot.LINKS, LinkState, _save_stats_links,
        fits=_link_key_missing, describe=_describe_link, prune=rebuild.Prune("stats_link", ("id",)),
    )  # fmt: skip


async def _save_stats_cases(conn: Connection, cases: list[CaseChanged], version: int) -> None:
    for c in cases:
        await stats_repository.upsert_case(conn, c.service, c.caseId, c.room, c.status, c.organization, version)


async def rebuild_stats_cases(runtime: Runtime) -> int:
    assert runtime.bus is not None and runtime.db is not None
    return await rebuild.rebuild_from(
        runtime.bus,
        runtime.db,
        RPC_CONFERENCE_SNAPSHOT,
        ConferenceSnapshot.CASES,
        CaseChanged,
        _save_stats_cases,
        fits=lambda case: rebuild.too_wide({"room": case.room}, CASE_WIDTHS),
        describe=lambda case: f"{case.service}/{case.caseId}",
        prune=rebuild.Prune("stats_case", ("id",)),
    )


async def _save_stats_participants(conn: Connection, users: list[RoomUserSaved], version: int) -> None:
    for u in users:
        await stats_repository.upsert_participant(conn, u.room, u.identity, u.userName, u.userType, version)


async def rebuild_stats_participants(runtime: Runtime) -> int:
    assert runtime.bus is not None and runtime.db is not None
    return await rebuild.rebuild_from(
        runtime.bus,
        runtime.db,
        RPC_CONFERENCE_SNAPSHOT,
        ConferenceSnapshot.ROOM_USERS,
        RoomUserSaved,
        _save_stats_participants,
        fits=lambda u: rebuild.too_wide(
            {"room": u.room, "identity": u.identity, "userType": u.userType}, PARTICIPANT_WIDTHS
        ),
        describe=lambda u: f"{u.room}/{u.identity}",
        prune=rebuild.Prune("stats_participant", ("id",)),
    )


async def _save_tracks(conn: Connection, tracks: list[tuple[str, Any, str]]) -> None:
    rows = [(key, track.identity, track.room_name, track.source, raw) for key, track, raw in tracks]
    await stats_repository.add_tracks(conn, rows)


async def rebuild_stats_tracks(runtime: Runtime) -> int:
    """stats_track from data_log's ``track_published`` webhooks (INSERT IGNORE by key: repeatable)."""
    assert runtime.db is not None
    count, after = 0, 0
    while True:
        rows = await data_log.data_log_page(runtime.db, after, rebuild.PAGE_ROWS)
        if not rows:
            return count
        after = int(rows[-1]["id"])
        tracks = []
        for row in rows:
            raw = row["data"] or ""
            track = stats_domain.track_published(raw)
            if track is not None:
                tracks.append((stats_domain.webhook_key(raw), track, raw))
        await rebuild.write(runtime.db, _save_tracks, tracks)
        count += len(tracks)


async def serve(runtime: Runtime) -> None:
    assert runtime.bus is not None
    steps = {
        "car_room_link": lambda: rebuild_car_links(runtime),
        "car_room": lambda: rebuild_car_rooms(runtime),
        "stats_link": lambda: rebuild_stats_links(runtime),
        "stats_case": lambda: rebuild_stats_cases(runtime),
        "stats_participant": lambda: rebuild_stats_participants(runtime),
        "stats_track": lambda: rebuild_stats_tracks(runtime),
    }
    await rebuild.serve_rebuild(runtime.bus, steps)

"""Rebuilding read models (servicekit.rebuild), telemetry's part: ``rpc.telemetry.rebuild``.

Every read model of telemetry.events.car_rooms and telemetry.events.statistics, from its owner, written with the
consumers' repository functions and checks (none of their side effects: a link's position publishes no task
destination here). Rows are stamped with the time taken before their page was asked for: a newer event keeps
what it wrote, an older write only fills what a row lacks.

* ``car_room_link`` and ``stats_link``: link's links (LinkState: the link and its positions), in link's order, so
  the ids that mean "order first seen" keep link's order.
* ``car_room``: conference's rooms (their tenant); ``stats_case``: its cases; ``stats_participant``: its room users.
* ``stats_track``: telemetry's own data_log (the raw LiveKit webhooks; a migration copies it): its
  ``track_published`` rows, keyed as the live consumer keys them (recording's receipt key), so none is kept twice.
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

MAX_ROOM, MAX_IDENTITY = 50, 100  # stats_participant's columns (a longer row would fail its whole page)


async def _save_car_links(conn: Connection, links: list[LinkState], version: int) -> None:
    created, positions, picks = [], [], []
    for link in links:
        fields = link.fields
        created.append({
            "linkID": link.linkID, "room": link.room, "userType": link.userType,
            "service": fields.get("service"), "userName": link.userName, "mobile": link.mobile,
        })  # fmt: skip
        latitude, longitude = coordinate(fields.get("latitude"), 90), coordinate(fields.get("longitude"), 180)
        if latitude is not None or longitude is not None:
            positions.append((link.linkID, link.room, link.userType, latitude, longitude))
        pick_lat, pick_lng = (
            coordinate(fields.get("patientLatitude"), 90),
            coordinate(fields.get("patientLongitude"), 180),
        )
        if pick_lat is not None or pick_lng is not None:
            picks.append((link.linkID, link.room, link.userType, pick_lat, pick_lng))
    await tasks_repository.save_links(conn, created, positions, picks, now_local(), version)


async def rebuild_car_links(runtime: Runtime) -> int:
    """car_room_link as apply_link_event writes it: the link, its own position and the picked patient position."""
    assert runtime.bus is not None and runtime.db is not None
    return await rebuild.rebuild_from(
        runtime.bus, runtime.db, RPC_LINK_SNAPSHOT, LinkSnapshot.LINKS, LinkState, _save_car_links
    )


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
        keep=lambda rooms: [r for r in rooms if r.service is not None and r.room and len(r.room) <= MAX_ROOM],
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
    """stats_link with every column the link events carry (LINK_CREATED's and the others' ``fields``)."""
    assert runtime.bus is not None and runtime.db is not None
    return await rebuild.rebuild_from(
        runtime.bus, runtime.db, RPC_LINK_SNAPSHOT, LinkSnapshot.LINKS, LinkState, _save_stats_links
    )


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
        keep=lambda cases: [c for c in cases if c.room is None or len(c.room) <= MAX_ROOM],
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
        keep=lambda users: [u for u in users if len(u.room) <= MAX_ROOM and len(u.identity) <= MAX_IDENTITY],
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

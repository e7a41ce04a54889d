"""Rebuilding read models (servicekit.rebuild), conference's part.

* Owner: RPC_CONFERENCE_SNAPSHOT pages of rooms (RoomState: RoomChanged as publish_room_detail builds it, plus
  ``socketLive``), room users (RoomUserSaved) and cases (CaseChanged) for link, telemetry, recording and realtime.
* Consumer (``rpc.conference.rebuild``): GET /room/picture's read models from their owners' snapshots, written with
  the consumers' repository functions (conference.events.consumers): ``room_link_view`` from link's links,
  ``room_file_view`` from recording's files. Both are keyed by immutable source rows (a link's room, a stored
  file), so they need no version: a snapshot row and a live event write the same values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from conference import domain, repository
from conference.clients import LiveKitNodes
from conference.events import consumers
from contracts.conference import RPC_CONFERENCE_SNAPSHOT, CaseChanged, ConferenceSnapshot, RoomState, RoomUserSaved
from contracts.link import RPC_LINK_SNAPSHOT, LinkSnapshot, LinkState
from contracts.recording import RPC_RECORDING_SNAPSHOT, FileStored, RecordingSnapshot
from servicekit import rebuild
from servicekit.clock import now_local, parse_local
from servicekit.db import Connection
from servicekit.web import Runtime


# ---- owner: snapshots of conference's rows ---------------------------------------------------------------------
def _next(rows: list[dict[str, Any]], limit: int, key: str) -> int | None:
    return int(rows[-1][key]) if len(rows) == limit else None


async def serve_owner_snapshot(runtime: Runtime, nodes: LiveKitNodes) -> None:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db

    async def rooms(after: int, limit: int) -> tuple[list[Any], int | None]:
        async with db.connection() as conn:
            rows = await repository.rooms.rooms_page(conn, after, limit, now_local())
            node_rows = await repository.nodes.livekit_nodes(conn)
        now, local = datetime.now(UTC), now_local()
        states = []
        for row in rows:
            node = domain.choose_node(node_rows, row["nodeLivekitId"], nodes.default, local)
            fields = domain.room_event_fields(row["room"], row, now, node.key == nodes.default.key)
            states.append(RoomState(**fields, socketLive=bool(row["_socketLive"])))
        return states, _next(rows, limit, "_rowId")

    async def room_users(after: int, limit: int) -> tuple[list[Any], int | None]:
        rows = await repository.participants.room_users_page(db, after, limit)
        users = [
            RoomUserSaved(
                room=r["room"],
                identity=r["identity"],
                userName=r["userName"],
                userType=r["userType"],
                color=r["color"],
                userAgent=r["userAgent"],
            )  # fmt: skip
            for r in rows
        ]
        return users, _next(rows, limit, "_rowId")

    async def cases(after: int, limit: int) -> tuple[list[Any], int | None]:
        rows = await repository.cases.cases_page(db, after, limit)
        changed = [
            CaseChanged(
                caseId=r["caseId"],
                service=r["service"],
                room=r["room"],
                status=r["status"],
                organization=r["organization"],
                hn=r["hn"],
                patientMobile=r["patientMobile"],
                caseRowId=r["id"],
            )  # fmt: skip
            for r in rows
        ]
        return changed, _next(rows, limit, "id")

    readers = {ConferenceSnapshot.ROOMS: rooms, ConferenceSnapshot.ROOM_USERS: room_users,
               ConferenceSnapshot.CASES: cases}  # fmt: skip
    await rebuild.serve_snapshot(runtime.bus, RPC_CONFERENCE_SNAPSHOT, readers)


# ---- consumer: conference's read models ------------------------------------------------------------------------
async def _save_link_rooms(conn: Connection, links: list[LinkState]) -> None:
    await repository.pictures.save_link_rooms(conn, [(link.linkID, link.room) for link in links])


async def _save_files(conn: Connection, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        await repository.pictures.save_file(conn, row)


async def rebuild_room_links(runtime: Runtime) -> int:
    """room_link_view from link's links (as apply_link_created). A link without linkID or room is not taken (no file
    names it, it is in no room); one too wide for the view is reported (rebuild.not_rebuilt), never dropped
    silently."""
    assert runtime.bus is not None and runtime.db is not None
    count = 0
    async for _version, links in rebuild.pages(runtime.bus, RPC_LINK_SNAPSHOT, LinkSnapshot.LINKS, LinkState):
        rows = []
        for link in links:
            if not link.linkID or not link.room:
                continue
            too_wide = rebuild.too_wide({"linkID": link.linkID, "room": link.room}, consumers.LINK_WIDTHS)
            if too_wide is None:
                rows.append(link)
            else:
                rebuild.not_rebuilt(f"link {link.linkRowId} ({link.linkID})", too_wide)
        await rebuild.write(runtime.db, _save_link_rooms, rows)
        count += len(rows)
    return count


async def rebuild_room_files(runtime: Runtime) -> int:
    """room_file_view from recording's files (as apply_file_stored): every file (its linkId whatever its length);
    one too wide for the view is reported (rebuild.not_rebuilt)."""
    assert runtime.bus is not None and runtime.db is not None
    count = 0
    pages = rebuild.pages(runtime.bus, RPC_RECORDING_SNAPSHOT, RecordingSnapshot.FILES, FileStored)
    async for _version, files in pages:
        rows = []
        for f in files:
            too_wide = rebuild.too_wide({"filename": f.filename, "url": f.url}, consumers.FILE_WIDTHS)
            if too_wide is not None:
                rebuild.not_rebuilt(f"file {f.fileId}", too_wide)
                continue
            rows.append({
                "fileId": f.fileId, "linkId": f.linkId, "filename": f.filename, "url": f.url, "width": f.width,
                "height": f.height, "createdAt": parse_local(f.createdAt),
            })  # fmt: skip
        await rebuild.write(runtime.db, _save_files, rows)
        count += len(rows)
    return count


async def serve(runtime: Runtime, nodes: LiveKitNodes) -> None:
    """Serve the snapshot (owner) and ``rpc.conference.rebuild`` (consumer)."""
    assert runtime.bus is not None
    await serve_owner_snapshot(runtime, nodes)
    steps = {
        "room_link_view": lambda: rebuild_room_links(runtime),
        "room_file_view": lambda: rebuild_room_files(runtime),
    }
    await rebuild.serve_rebuild(runtime.bus, steps)

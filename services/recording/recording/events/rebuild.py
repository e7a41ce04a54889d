"""Rebuilding read models (servicekit.rebuild), recording's part.

* Owner: RPC_RECORDING_SNAPSHOT pages of egresses (EgressChanged from record_media rows, for link's
  room_record_view) and files (FileStored from ``files``, for conference's GET /room/picture read model).
* Consumer (``rpc.recording.rebuild``): ``room_setting`` from conference's rooms, written as the room consumer
  writes it (domain.setting_from_event, repository.upsert_room_setting), stamped with the time taken before the
  page was asked for, so a room event applied meanwhile (newer ``version``) is kept; after a complete pass the
  settings of rooms conference no longer has are pruned (servicekit.rebuild.Prune).

room_egress, track_state and encode_job are recording's own working state, not copies of anyone's rows: the
start-up reconcile with LiveKit keeps room_egress true; they are not rebuilt here.
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.conference import RPC_CONFERENCE_SNAPSHOT, ConferenceSnapshot, RoomState
from contracts.recording import RPC_RECORDING_SNAPSHOT, EgressChanged, FileStored, RecordingSnapshot
from recording import domain, repository
from servicekit import rebuild
from servicekit.db import Connection
from servicekit.web import Runtime

_DATE = "%Y-%m-%d %H:%M:%S"
MAX_ROOM = 50


def _text(at: Any) -> str | None:
    return at.strftime(_DATE) if at is not None else None


def _next(rows: list[dict[str, Any]], limit: int) -> int | None:
    return int(rows[-1]["id"]) if len(rows) == limit else None


async def serve_owner_snapshot(runtime: Runtime) -> None:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db

    async def egresses(after: int, limit: int) -> tuple[list[Any], int | None]:
        rows = await repository.egress_media_page(db, after, limit)
        changed = [
            EgressChanged(
                room=r["room"] or "",
                recordId=r["egressId"],
                status=domain.egress_status_of_media(r["status"], r["endRecord"] is not None),
                dtmStartRecord=_text(r["startRecord"]),
                dtmStopRecord=_text(r["endRecord"]),
                egressInfo=domain.egress_info_of_media(
                    r["egressId"], r["room"] or "", r["fileName"], r["recordType"], r["service"]
                ),
            )  # fmt: skip
            for r in rows
        ]
        return changed, _next(rows, limit)

    async def files(after: int, limit: int) -> tuple[list[Any], int | None]:
        rows = await repository.files_page(db, after, limit)
        stored = [
            FileStored(
                fileId=r["id"],
                linkId=r["linkId"] or "",
                filename=r["filename"],
                url=r["url"],
                width=r["width"],
                height=r["height"],
                createdAt=_text(r["createdAt"]) or "",
            )  # fmt: skip
            for r in rows
        ]
        return stored, _next(rows, limit)

    readers = {RecordingSnapshot.EGRESSES: egresses, RecordingSnapshot.FILES: files}
    await rebuild.serve_snapshot(runtime.bus, RPC_RECORDING_SNAPSHOT, readers)


async def _save_settings(conn: Connection, settings: list[tuple[str, dict[str, Any]]], version: int) -> None:
    await repository.upsert_room_settings(conn, settings, version)


def _settings(rooms: list[RoomState]) -> list[tuple[str, dict[str, Any]]]:
    """The rooms' settings as the room consumer reads an event (a room without one is not taken)."""
    settings = [(room.room, domain.setting_from_event(msgspec.to_builtins(room))) for room in rooms]
    return [(name, setting) for name, setting in settings if setting is not None]


async def rebuild_room_settings(runtime: Runtime) -> int:
    assert runtime.bus is not None and runtime.db is not None
    return await rebuild.rebuild_from(
        runtime.bus,
        runtime.db,
        RPC_CONFERENCE_SNAPSHOT,
        ConferenceSnapshot.ROOMS,
        RoomState,
        _save_settings,
        keep=_settings,
        # conference's room names are as wide: not expected, never truncated nor dropped silently
        fits=lambda room: rebuild.too_wide({"room": room.room}, {"room": MAX_ROOM}),
        describe=lambda room: room.room,
        prune=rebuild.Prune("room_setting", ("room",)),
    )


async def serve(runtime: Runtime) -> None:
    """Serve the snapshot (owner) and ``rpc.recording.rebuild`` (consumer)."""
    assert runtime.bus is not None
    await serve_owner_snapshot(runtime)
    await rebuild.serve_rebuild(runtime.bus, {"room_setting": lambda: rebuild_room_settings(runtime)})

"""Storing uploads: a stored file and its row go together, and every row is published in its inserting
transaction (``recording.file.stored`` for `files`, ``recording.media.uploaded`` for an uploaded video, which is
also handed to the encode queue).

The upload is written to a temporary name first, then, inside the transaction that inserts its row, hard-linked
to its final name (never replacing a file); a failure removes what was placed and the transaction rolls back, and
the temporary names are always removed. Conference's GET /room/picture reads only ``recording.file.stored``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from contracts import recording as ev
from recording import domain, repository
from recording.events import encode
from recording.repository.media import STATIC, MediaDir, copy_to, image_info, place, remove, remove_empty_dir
from servicekit.bus import add_event
from servicekit.clock import now_local
from servicekit.web import Runtime


async def store_files(
    runtime: Runtime, media: MediaDir, link_id: str, checked: list[tuple[IO[bytes], str, int, str]]
) -> list[dict[str, Any]]:
    """Store checked uploads (stream, mimetype, size, safe name) as `files` rows; returns the rows written.
    Raises domain.ContentMismatch when an image cannot be read."""
    assert runtime.db is not None
    temps: list[Path] = []
    placed: list[Path] = []
    folders: list[Path] = []
    prepared = []
    try:
        # Temporary copies and thumbnails first (validating images on the way): nothing is visible yet.
        for stream, mime, size, name in checked:
            kind = domain.file_type(mime)
            temp = media.temp_path()
            temps.append(temp)
            await asyncio.to_thread(copy_to, stream, temp)
            width = height = None
            thumb_temp: Path | None = None
            if kind == "image":
                thumb_temp = media.temp_path()
                temps.append(thumb_temp)
                try:
                    width, height, made = await asyncio.to_thread(image_info, stream, mime, thumb_temp)
                except ValueError as exc:
                    raise domain.ContentMismatch(mime) from exc
                thumb_temp = thumb_temp if made else None
            prepared.append((kind, temp, thumb_temp, mime, size, name, width, height))
        rows = []
        created_at = now_local()
        async with runtime.db.transaction() as conn:
            for kind, temp, thumb_temp, mime, size, name, width, height in prepared:
                folder_kind = "images" if kind == "image" else "files"
                folder, folder_path = media.new_folder(folder_kind)
                folders.append(folder_path)
                final = place(temp, folder_path / name)
                placed.append(final)
                stored = final.name
                url = f"/{folder_kind}/{folder}/{quote(stored)}"
                thumbnail = None
                if thumb_temp is not None:
                    thumb_dir = media.root / STATIC["/thumbnails"] / folder
                    folders.append(thumb_dir)
                    thumb_final = place(thumb_temp, thumb_dir / stored)
                    placed.append(thumb_final)
                    thumbnail = f"/thumbnails/{folder}/{quote(thumb_final.name)}"
                row = {
                    "linkId": link_id,
                    "elementId": folder,
                    "filename": stored,
                    "url": url,
                    "thumbnail": thumbnail,
                    "fileType": kind,
                    "size": size,
                    "mimetype": mime,
                    "width": width,
                    "height": height,
                    "createdAt": created_at,
                }
                file_id = await repository.insert_file(conn, row)
                # Conference's GET /room/picture read model is fed by this event only (it never reads `files`).
                await add_event(
                    conn,
                    ev.RECORDING_FILE_STORED,
                    ev.FileStored(
                        fileId=file_id,
                        linkId=link_id,
                        filename=stored,
                        url=url,
                        width=width,
                        height=height,
                        createdAt=created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    ),
                )
                rows.append(row)
        return rows
    except BaseException:
        remove(*placed)
        for folder_path in reversed(folders):
            remove_empty_dir(folder_path)
        raise
    finally:
        remove(*temps)


async def store_video(
    runtime: Runtime,
    media: MediaDir,
    stream: IO[bytes],
    name: str,
    size: int,
    duration: int,
    agent: str,
    record_type: str,
    uploader: str,
) -> dict[str, Any]:
    """Store an uploaded video under video-record/ as a record_media row and queue its encoding; returns the row
    written, with its ``id``."""
    assert runtime.db is not None
    temp = media.temp_path()
    final: Path | None = None
    now = now_local()
    room = f"webrtc-record-{int(now.timestamp() * 1000)}"
    try:
        await asyncio.to_thread(copy_to, stream, temp)
        async with runtime.db.transaction() as conn:
            final = place(temp, media.root / STATIC["/record"] / name)
            row = {
                "egressId": agent or "-",
                "room": room,
                "fileName": final.name,
                "encode": 0,
                "recordType": record_type,
                "fileSize": size,
                "duration": duration,
                "filePath": "/record",
                "uploader": uploader or "-",
                "startRecord": now,
            }
            record_id = await repository.insert_record_media(conn, row)
            await add_event(
                conn,
                ev.RECORDING_MEDIA_UPLOADED,
                ev.MediaUploaded(recordId=record_id, fileName=final.name, filePath="/record", recordType=record_type),
            )
            await repository.add_encode_job(conn, record_id, now)
    except BaseException:
        remove(final)
        raise
    finally:
        remove(temp)
    await encode.enqueue(runtime, record_id)
    return {**row, "id": record_id}

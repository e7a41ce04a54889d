"""Uploads (POST /upload/file, POST /upload/video, GET /upload/list) and the static media paths.

A stored file and its row go together: the upload is written to a temporary name first, then, inside the
transaction that inserts its row, hard-linked to its final name (never replacing a file); a failure removes what
was placed and the transaction rolls back, and the temporary names are always removed. Every `files` row is
published as ``recording.file.stored`` (FileStored) in its inserting transaction: conference's GET /room/picture
reads only that.
"""

from __future__ import annotations

import asyncio
import io
import logging
import mimetypes
import re
import shutil
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.response import File
from PIL import Image, UnidentifiedImageError

from contracts import recording as ev
from recording import domain, encode, repository
from recording.media import STATIC, MediaDir, place, remove, remove_empty_dir
from servicekit.bus import add_event
from servicekit.clock import js_iso, now_local
from servicekit.web import ApiError, Runtime, fail

log = logging.getLogger("recording.uploads")

MAX_FILES = 20
THUMBNAIL_SIZE = (320, 320)
HEAD_BYTES = 64
DURATION_SCAN = 8 * 1024 * 1024
Image.MAX_IMAGE_PIXELS = 80_000_000  # decompression bombs are refused


def _size(upload: UploadFile) -> int:
    stream: BinaryIO = upload.file  # type: ignore[assignment]
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def _head(upload: UploadFile, count: int = HEAD_BYTES) -> bytes:
    stream: BinaryIO = upload.file  # type: ignore[assignment]
    stream.seek(0)
    head = stream.read(count)
    stream.seek(0)
    return head


def _mime(upload: UploadFile) -> str:
    return (upload.content_type or "application/octet-stream").split(";")[0].strip().lower()


def _too_large(field: str) -> ApiError:
    # The original's multer error, answered with HTTP 200 as its error handler did.
    data = {"name": "MulterError", "message": "File too large", "code": "LIMIT_FILE_SIZE", "field": field}
    return ApiError("File too large", 200, {"status": "FAIL", "message": "File too large", "data": data})


def _copy_to(upload: UploadFile, target: Path) -> None:
    stream: BinaryIO = upload.file  # type: ignore[assignment]
    stream.seek(0)
    with target.open("xb") as out:
        shutil.copyfileobj(stream, out, 1024 * 1024)


def _image_info(upload: UploadFile, mime: str, thumb_target: Path) -> tuple[int | None, int | None, bool]:
    """Width, height, thumbnail written; raises ValueError when the bytes are not a readable image."""
    if mime == "image/svg+xml":
        return None, None, False
    stream: BinaryIO = upload.file  # type: ignore[assignment]
    stream.seek(0)
    try:
        with Image.open(stream) as image:
            width, height = image.size
            image.load()
            thumb = image.copy()
            fmt = image.format or "PNG"
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(str(exc)) from exc
    finally:
        stream.seek(0)
    try:
        thumb.thumbnail(THUMBNAIL_SIZE)
        if fmt == "JPEG" and thumb.mode not in ("RGB", "L"):
            thumb = thumb.convert("RGB")
        with thumb_target.open("xb") as out:
            thumb.save(out, format=fmt)
        return width, height, True
    except Exception:  # a format Pillow reads but cannot write: no thumbnail
        log.warning("thumbnail failed", exc_info=True)
        remove(thumb_target)
        return width, height, False


def _duration(upload: UploadFile, mime: str, size: int) -> int:
    if mime not in domain.ISO_MEDIA_TYPES:
        return 0
    stream: BinaryIO = upload.file  # type: ignore[assignment]
    stream.seek(0)
    found = domain.mp4_duration(stream.read(DURATION_SCAN))
    if not found and size > DURATION_SCAN:
        stream.seek(max(0, size - DURATION_SCAN))
        found = domain.mp4_duration(stream.read(DURATION_SCAN))
    stream.seek(0)
    return found


def _form_uploads(form: Any, *fields: str) -> list[tuple[str, UploadFile]]:
    found: list[tuple[str, UploadFile]] = []
    for field in fields:
        for value in form.getall(field, []):
            if isinstance(value, UploadFile):
                found.append((field, value))
    return found


def _text_field(form: Any, name: str, max_length: int) -> str:
    value = form.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise fail(f"Invalid parameter: {name} must be a string")
    if len(value) > max_length:
        raise fail(f"Invalid parameter: {name} is longer than {max_length}")
    return value


def _leading_int(raw: str | None) -> int | None:
    match = re.match(r"\s*([+-]?\d+)", raw or "")
    return int(match.group(1)) if match else None


def _row_out(row: dict[str, Any], api_url: str) -> dict[str, Any]:
    out = {k: (js_iso(v) if hasattr(v, "year") else v) for k, v in row.items()}
    out["url"] = f"{api_url}{row['filePath'] or ''}/{quote(row['hls'] or row['fileName'] or '')}"
    return out


def build_controllers(*, file_size_limit: int, video_size_limit: int) -> list[Any]:
    file_body_limit = file_size_limit * MAX_FILES + 1024 * 1024
    video_body_limit = video_size_limit + 1024 * 1024

    class UploadController(Controller):
        path = "/upload"
        tags = ["upload"]

        @post("/file", status_code=200, request_max_body_size=file_body_limit, summary="Upload chat files")
        async def upload_file(self, request: Request, runtime: Runtime) -> dict[str, Any]:
            link_id = request.query_params.get("linkID") or ""
            if len(link_id) > 100:
                raise fail("Invalid parameter: linkID is longer than 100")
            form = await request.form()
            uploads = _form_uploads(form, "myFiles", "myFiles[]")
            if not uploads:
                raise fail("No files provided")
            if len(uploads) > MAX_FILES:
                raise fail(f"Too many files (at most {MAX_FILES})")
            media: MediaDir = runtime.extras["media"]
            api_url: str = runtime.extras["api_url"]
            checked = []
            for field, upload in uploads:
                size = _size(upload)
                if size > file_size_limit:
                    raise _too_large(field)
                mime = _mime(upload)
                if len(mime) > 100:
                    raise fail("Invalid parameter: content type is longer than 100")
                if not domain.content_matches(mime, _head(upload)):
                    raise fail(f"File content does not match its type: {mime}")
                checked.append((upload, mime, size, domain.safe_filename(upload.filename)))
            return {"status": "OK", "data": await _store_files(runtime, media, api_url, link_id, checked)}

        @post("/video", status_code=200, request_max_body_size=video_body_limit, summary="Upload a recorded video")
        async def upload_video(self, request: Request, runtime: Runtime) -> dict[str, Any]:
            form = await request.form()
            uploads = _form_uploads(form, "myVideo")
            if not uploads:
                raise fail("No video file provided")
            if len(uploads) > 1:
                raise fail("Only one video per request")
            agent = _text_field(form, "agentUsername", 50)
            record_type = _text_field(form, "recordType", 50)
            uploader = _text_field(form, "uploader", 100)
            field, upload = uploads[0]
            size = _size(upload)
            if size > video_size_limit:
                raise _too_large(field)
            mime = _mime(upload)
            if mime not in domain.VIDEO_TYPES:
                raise fail(f"Unsupported video type: {mime}")
            if not domain.content_matches(mime, _head(upload)):
                raise fail(f"File content does not match its type: {mime}")
            media: MediaDir = runtime.extras["media"]
            return await _store_video(
                runtime, media, runtime.extras["api_url"], upload, mime, size, agent, record_type, uploader
            )

        @get("/list", summary="Uploaded and recorded videos, paged")
        async def video_list(self, request: Request, runtime: Runtime) -> dict[str, Any]:
            assert runtime.db is not None
            page = max(1, _leading_int(request.query_params.get("page")) or 1)
            limit = min(100, max(1, _leading_int(request.query_params.get("limit")) or 10))
            record_type = request.query_params.get("recordType") or ""
            if len(record_type) > 50:
                raise fail("Invalid parameter: recordType is longer than 50")
            if page > 1_000_000:
                raise fail("Invalid parameter: page is too large")
            rows = await repository.video_page(runtime.db, record_type, limit, (page - 1) * limit)
            total = await repository.video_count(runtime.db, record_type)
            pages = -(-total // limit)
            return {
                "status": "OK",
                "data": [_row_out(r, runtime.extras["api_url"]) for r in rows],
                "pagination": {
                    "totalItems": total,
                    "totalPages": pages,
                    "currentPage": page,
                    "itemsPerPage": limit,
                    "hasNextPage": page < pages,
                    "hasPreviousPage": page > 1,
                },
            }

    return [UploadController, *static_handlers()]


async def _store_files(
    runtime: Runtime, media: MediaDir, api_url: str, link_id: str, checked: list[tuple[UploadFile, str, int, str]]
) -> list[dict[str, Any]]:
    assert runtime.db is not None
    temps: list[Path] = []
    placed: list[Path] = []
    folders: list[Path] = []
    prepared = []
    try:
        # Temporary copies and thumbnails first (validating images on the way): nothing is visible yet.
        for upload, mime, size, name in checked:
            kind = domain.file_type(mime)
            temp = media.temp_path()
            temps.append(temp)
            await asyncio.to_thread(_copy_to, upload, temp)
            width = height = None
            thumb_temp: Path | None = None
            if kind == "image":
                thumb_temp = media.temp_path()
                temps.append(thumb_temp)
                try:
                    width, height, made = await asyncio.to_thread(_image_info, upload, mime, thumb_temp)
                except ValueError as exc:
                    raise fail(f"File content does not match its type: {mime}") from exc
                thumb_temp = thumb_temp if made else None
            prepared.append((kind, temp, thumb_temp, mime, size, name, width, height))
        out = []
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
                out.append(
                    {
                        "id": int(folder),
                        "filename": stored,
                        "url": f"{api_url}{url}",
                        "thumbnail": f"{api_url}{thumbnail}" if thumbnail else None,
                        "fileType": kind,
                        "size": size,
                        "mimetype": mime,
                        "resolution": {"width": width, "height": height},
                    }
                )
        return out
    except BaseException:
        remove(*placed)
        for folder_path in reversed(folders):
            remove_empty_dir(folder_path)
        raise
    finally:
        remove(*temps)


async def _store_video(
    runtime: Runtime,
    media: MediaDir,
    api_url: str,
    upload: UploadFile,
    mime: str,
    size: int,
    agent: str,
    record_type: str,
    uploader: str,
) -> dict[str, Any]:
    assert runtime.db is not None
    name = domain.safe_filename(upload.filename, default="video")
    duration = await asyncio.to_thread(_duration, upload, mime, size)
    temp = media.temp_path()
    final: Path | None = None
    now = now_local()
    room = f"webrtc-record-{int(now.timestamp() * 1000)}"
    try:
        await asyncio.to_thread(_copy_to, upload, temp)
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
    file_out = {
        "fieldname": "myVideo",
        "originalname": upload.filename,
        "mimetype": mime,
        "destination": "./video-record",
        "filename": final.name,
        "size": size,
        "duration": duration,
        "url": f"{api_url}/record/{quote(final.name)}",
        "dtmCreated": now.strftime("%Y-%m-%d %H:%M:%S"),
        "uploader": uploader or "-",
        "room": room,
    }
    return {"status": "OK", "file": file_out, "insert": {"affectedRows": 1, "insertId": record_id}}


# ---- static media ----------------------------------------------------------------------------------------
_STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Uploaded content never runs as a page of our origin (an uploaded HTML or SVG opened directly).
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"
    ),
}


def static_handlers() -> list[Any]:
    handlers = []
    for prefix in STATIC:

        def make(prefix: str) -> Any:
            @get(
                f"{prefix}/{{path:path}}",
                name=f"static{prefix.replace('/', '_')}",
                summary=f"Media files under {prefix}",
                tags=["media"],
            )
            async def serve(path: str, runtime: Runtime) -> Response:
                media: MediaDir = runtime.extras["media"]
                target = media.resolve(prefix, path)
                if target is None:
                    raise fail("Not Found", 404)
                media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                return File(
                    path=target,
                    media_type=media_type,
                    content_disposition_type="inline",
                    filename=target.name,
                    headers=_STATIC_HEADERS,
                )

            return serve

        handlers.append(make(prefix))
    return handlers

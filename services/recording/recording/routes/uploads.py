"""Uploads (POST /upload/file, POST /upload/video, GET /upload/list): the requests checked here, the files and
their rows stored together (and published) by recording.events.uploads.
"""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any, BinaryIO
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile

from recording import domain, repository
from recording.events.uploads import store_files, store_video
from recording.repository.media import MediaDir
from servicekit.web import ApiError, Runtime, fail

MAX_FILES = 20
HEAD_BYTES = 64
DURATION_SCAN = 8 * 1024 * 1024


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
    out = domain.json_row(row)
    # The original's CONCAT(API_URL, filePath, '/', name) was NULL without a filePath (egress recordings, served by
    # /record/* instead) or a name: null, not a URL that nothing serves.
    name = row["hls"] if row["hls"] is not None else row["fileName"]
    served = row["filePath"] is not None and name is not None
    out["url"] = f"{api_url}{row['filePath']}/{quote(name)}" if served else None
    return out


def _file_out(row: dict[str, Any], api_url: str) -> dict[str, Any]:
    """A stored `files` row as POST /upload/file answers it."""
    thumbnail = row["thumbnail"]
    return {
        "id": int(row["elementId"]),
        "filename": row["filename"],
        "url": f"{api_url}{row['url']}",
        "thumbnail": f"{api_url}{thumbnail}" if thumbnail else None,
        "fileType": row["fileType"],
        "size": row["size"],
        "mimetype": row["mimetype"],
        "resolution": {"width": row["width"], "height": row["height"]},
    }


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
                stream: BinaryIO = upload.file  # type: ignore[assignment]
                checked.append((stream, mime, size, domain.safe_filename(upload.filename)))
            try:
                rows = await store_files(runtime, media, link_id, checked)
            except domain.ContentMismatch as exc:
                raise fail(str(exc)) from exc
            return {"status": "OK", "data": [_file_out(row, api_url) for row in rows]}

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
            api_url: str = runtime.extras["api_url"]
            name = domain.safe_filename(upload.filename, default="video")
            duration = await asyncio.to_thread(_duration, upload, mime, size)
            stream: BinaryIO = upload.file  # type: ignore[assignment]
            row = await store_video(runtime, media, stream, name, size, duration, agent, record_type, uploader)
            file_out = {
                "fieldname": "myVideo",
                "originalname": upload.filename,
                "mimetype": mime,
                "destination": "./video-record",
                "filename": row["fileName"],
                "size": size,
                "duration": duration,
                "url": f"{api_url}/record/{quote(row['fileName'])}",
                "dtmCreated": row["startRecord"].strftime("%Y-%m-%d %H:%M:%S"),
                "uploader": row["uploader"],
                "room": row["room"],
            }
            return {"status": "OK", "file": file_out, "insert": {"affectedRows": 1, "insertId": row["id"]}}

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

    return [UploadController]

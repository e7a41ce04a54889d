"""Uploads and static media through the edge: stored names stay inside the media directory, content must match
the declared type, limits hold, and a stored file always has its row (and a row its file)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import struct
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image


def _png(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def _mp4(seconds: int = 12) -> bytes:
    ftyp = struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00" + b"isomiso2"
    mvhd_body = b"\x00\x00\x00\x00" + b"\x00" * 8 + struct.pack(">II", 1000, seconds * 1000) + b"\x00" * 80
    mvhd = struct.pack(">I", 8 + len(mvhd_body)) + b"mvhd" + mvhd_body
    moov = struct.pack(">I", 8 + len(mvhd)) + b"moov" + mvhd
    return ftyp + moov + b"\x00" * 2048


def _media(suite: Any) -> Path:
    return Path(suite.env["RECORD_PATH"])


def _all_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


async def _count(suite: Any, table: str) -> int:
    rows = await suite.query("recording", f"SELECT COUNT(*) AS n FROM {table}")  # noqa: S608 (fixed names)
    return int(rows[0]["n"])


async def test_upload_files_stores_rows_files_and_thumbnails(suite: Any, client: httpx.AsyncClient) -> None:
    png = _png()
    pdf = b"%PDF-1.4\n% test\n" + b"0" * 500
    link_id = "L" + uuid.uuid4().hex[:8]
    response = await client.post(
        "/upload/file",
        params={"linkID": link_id},
        files=[
            ("myFiles", ("ภาพ photo.png", png, "image/png")),
            ("myFiles[]", ("report.pdf", pdf, "application/pdf")),
            ("myFiles", ("data.json", b'{"a":1}', "application/json")),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "OK"
    by_name = {f["filename"]: f for f in body["data"]}
    assert set(by_name) == {"ภาพ photo.png", "report.pdf", "data.txt"}
    image = by_name["ภาพ photo.png"]
    assert image["fileType"] == "image" and image["resolution"] == {"width": 640, "height": 480}
    assert image["size"] == len(png) and image["mimetype"] == "image/png"
    assert "/images/" in image["url"] and "/thumbnails/" in image["thumbnail"]
    assert by_name["report.pdf"]["fileType"] == "pdf" and by_name["report.pdf"]["thumbnail"] is None
    assert by_name["data.txt"]["fileType"] == "file"

    rows = await suite.query("recording", "SELECT * FROM files WHERE linkId = %s ORDER BY id", (link_id,))
    assert len(rows) == 3
    for row in rows:
        served = await client.get(row["url"])
        assert served.status_code == 200, row["url"]
        assert served.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in served.headers["content-security-policy"]
    image_row = next(r for r in rows if r["fileType"] == "image")
    assert image_row["width"] == 640 and image_row["height"] == 480
    assert (await client.get(image_row["url"])).content == png
    thumb = await client.get(image_row["thumbnail"])
    assert thumb.status_code == 200
    with Image.open(io.BytesIO(thumb.content)) as small:
        assert max(small.size) <= 320
    pdf_row = next(r for r in rows if r["fileType"] == "pdf")
    assert (await client.get(pdf_row["url"])).content == pdf
    assert pdf_row["url"].startswith("/files/")


async def test_client_paths_stay_inside_the_media_dir(suite: Any, client: httpx.AsyncClient) -> None:
    root = _media(suite)
    outside = root.parent / "passwd"
    link_id = "T" + uuid.uuid4().hex[:8]
    response = await client.post(
        "/upload/file",
        params={"linkID": link_id},
        files=[
            ("myFiles", ("../../etc/passwd", b"root:x:0:0", "text/plain")),
            ("myFiles", ("..\\..\\win.ini", b"[x]", "text/plain")),
            ("myFiles", ("..", b"dots", "text/plain")),
        ],
    )
    assert response.status_code == 200, response.text
    names = sorted(f["filename"] for f in response.json()["data"])
    assert names == ["file", "passwd", "win.ini"]
    assert not outside.exists()
    rows = await suite.query("recording", "SELECT url FROM files WHERE linkId = %s", (link_id,))
    for row in rows:
        stored = (root / "uploads" / row["url"].lstrip("/")).resolve()
        assert stored.is_relative_to(root.resolve()) and stored.is_file()
    # same name twice never overwrites: each upload gets its own folder
    again = await client.post("/upload/file", files=[("myFiles", ("../../etc/passwd", b"second", "text/plain"))])
    first_url = next(r["url"] for r in rows if r["url"].endswith("/passwd"))
    assert (await client.get(first_url)).content == b"root:x:0:0"
    assert again.json()["data"][0]["url"] != first_url


@pytest.mark.parametrize(
    "path",
    [
        "/files/../../etc/passwd",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/images/..%2f..%2fetc%2fpasswd",
        "/files/.incoming/x",
        "/record/7/missing.mp4",
        "/logo/",
        "/thumbnails/nope.png",
        "/videos/" + "%C3%A9" * 150,  # one segment of 300 bytes: longer than a file name can be (was a 500)
        "/files/" + "/".join(["a" * 200] * 25),  # a path longer than the system's limit
    ],
)
async def test_static_paths_refuse_escapes_and_missing_files(suite: Any, client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code in (400, 404), (path, response.status_code)
    assert b"root:" not in response.content


async def test_static_serves_logo_and_records(suite: Any, client: httpx.AsyncClient) -> None:
    root = _media(suite)
    (root / "logo").mkdir(parents=True, exist_ok=True)
    (root / "logo" / "tenant.png").write_bytes(_png(10, 10))
    response = await client.get("/logo/tenant.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-served-by"] == "recording"


async def test_no_files_and_bad_input(suite: Any, client: httpx.AsyncClient) -> None:
    before_rows, before_files = await _count(suite, "files"), _all_files(_media(suite))
    empty = await client.post("/upload/file", data={"myFiles": "not a file"})
    assert empty.status_code == 400 and empty.json() == {"status": "FAIL", "message": "No files provided"}
    json_body = await client.post("/upload/file", json={"myFiles": []})
    assert json_body.status_code == 400 and json_body.json()["status"] == "FAIL"
    long_link = await client.post(
        "/upload/file", params={"linkID": "x" * 101}, files=[("myFiles", ("a.txt", b"a", "text/plain"))]
    )
    assert long_link.status_code == 400
    fake_png = await client.post("/upload/file", files=[("myFiles", ("a.png", b"<script>x</script>", "image/png"))])
    assert fake_png.status_code == 400 and "does not match" in fake_png.json()["message"]
    # a header that looks like PNG but is not a decodable image
    broken = await client.post(
        "/upload/file", files=[("myFiles", ("b.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png"))]
    )
    assert broken.status_code == 400
    fake_pdf = await client.post("/upload/file", files=[("myFiles", ("r.pdf", b"MZ\x90\x00", "application/pdf"))])
    assert fake_pdf.status_code == 400
    long_mime = await client.post("/upload/file", files=[("myFiles", ("a.bin", b"a", "application/" + "x" * 120))])
    assert long_mime.status_code == 400
    injection = "a'); DROP TABLE files; --"
    ok = await client.post(
        "/upload/file", params={"linkID": injection}, files=[("myFiles", ("a.txt", b"a", "text/plain"))]
    )
    assert ok.status_code == 200
    rows = await suite.query("recording", "SELECT linkId FROM files WHERE linkId = %s", (injection,))
    assert len(rows) == 1
    assert await _count(suite, "files") == before_rows + 1
    assert len(_all_files(_media(suite)) - before_files) == 1


async def test_file_size_limit(suite: Any, client: httpx.AsyncClient) -> None:
    limit = int(suite.env["FILE_SIZE_LIMIT"])
    before_rows, before_files = await _count(suite, "files"), _all_files(_media(suite))
    response = await client.post(
        "/upload/file",
        files=[
            ("myFiles", ("ok.txt", b"small", "text/plain")),
            ("myFiles", ("big.bin", b"\x00" * (limit + 1), "application/octet-stream")),
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "FAIL" and body["data"]["code"] == "LIMIT_FILE_SIZE"
    assert await _count(suite, "files") == before_rows
    assert _all_files(_media(suite)) == before_files
    at_limit = await client.post("/upload/file", files=[("myFiles", ("edge.bin", b"\x01" * limit, "application/zip"))])
    assert at_limit.status_code == 200 and at_limit.json()["status"] == "OK"
    # the route's own body limit (20 files at the limit, plus 1 MiB) holds: a bigger body is refused unread
    rows_now = await _count(suite, "files")
    async with httpx.AsyncClient(base_url=suite.url("recording"), timeout=60) as direct:
        body = b"\x02" * (20 * limit + 2 * 1024 * 1024)
        try:
            too_big = await direct.post("/upload/file", files=[("myFiles", ("huge.bin", body, "application/zip"))])
            assert too_big.status_code == 413 and too_big.json()["status"] == "FAIL"
        except httpx.TransportError:
            pass  # answered 413 and closed while the client was still sending: refused as well
    assert await _count(suite, "files") == rows_now


async def test_database_failure_leaves_no_file(suite: Any, client: httpx.AsyncClient) -> None:
    root = _media(suite)
    before = _all_files(root)
    await suite.execute("recording", "RENAME TABLE files TO files_away")
    try:
        response = await client.post(
            "/upload/file",
            files=[("myFiles", ("p.png", _png(20, 20), "image/png")), ("myFiles", ("t.txt", b"t", "text/plain"))],
        )
        assert response.status_code == 500
    finally:
        await suite.execute("recording", "RENAME TABLE files_away TO files")
    assert _all_files(root) == before
    incoming = root / "uploads" / ".incoming"
    assert not incoming.exists() or os.listdir(incoming) == []


async def test_upload_video_and_list(suite: Any, client: httpx.AsyncClient) -> None:
    record_type = "rt-" + uuid.uuid4().hex[:8]
    video = _mp4(12)
    response = await client.post(
        "/upload/video",
        data={"agentUsername": "agent7", "recordType": record_type, "uploader": "nurse"},
        files={"myVideo": ("../clip.mp4", video, "video/mp4")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "OK" and body["insert"]["affectedRows"] == 1
    file = body["file"]
    assert file["filename"] == "clip.mp4" or file["filename"].endswith("_clip.mp4")
    assert file["duration"] == 12 and file["size"] == len(video) and file["room"].startswith("webrtc-record-")
    [row] = await suite.query("recording", "SELECT * FROM record_media WHERE id = %s", (body["insert"]["insertId"],))
    assert row["egressId"] == "agent7" and row["recordType"] == record_type and row["uploader"] == "nurse"
    assert row["duration"] == 12 and row["encode"] == 0 and row["filePath"] == "/record"
    served = await client.get(f"/record/{row['fileName']}")
    assert served.status_code == 200 and served.content == video
    events = await suite.query(
        "recording", "SELECT payload FROM outbox WHERE subject = 'recording.media.uploaded' ORDER BY id DESC LIMIT 5"
    )
    assert any(json.loads(e["payload"])["data"]["recordId"] == row["id"] for e in events)
    # one encode job: the encode API is asked once for this row
    for _ in range(100):
        jobs = await suite.query("recording", "SELECT status FROM encode_job WHERE recordId = %s", (row["id"],))
        if jobs and jobs[0]["status"] != "queued":
            break
        await asyncio.sleep(0.1)
    assert jobs == [{"status": "sent"}]
    assert suite.encode_api.requests_for(row["id"]) == [{"recordId": row["id"], "hls": True}]

    # a second one, then the list
    second = await client.post(
        "/upload/video", data={"recordType": record_type}, files={"myVideo": ("clip.mp4", _mp4(3), "video/mp4")}
    )
    assert second.status_code == 200
    assert second.json()["file"]["filename"] != file["filename"]  # never overwritten
    page = await client.get("/upload/list", params={"recordType": record_type, "limit": "1", "page": "1"})
    data = page.json()
    assert data["status"] == "OK" and len(data["data"]) == 1
    assert data["pagination"] == {
        "totalItems": 2,
        "totalPages": 2,
        "currentPage": 1,
        "itemsPerPage": 1,
        "hasNextPage": True,
        "hasPreviousPage": False,
    }
    assert data["data"][0]["url"].endswith("/record/" + data["data"][0]["fileName"])
    assert data["data"][0]["startRecord"].endswith("Z")
    garbage = await client.get("/upload/list", params={"recordType": record_type, "limit": "abc", "page": "-4"})
    assert garbage.json()["pagination"]["itemsPerPage"] == 10 and garbage.json()["pagination"]["currentPage"] == 1
    huge = await client.get("/upload/list", params={"recordType": record_type, "limit": "5000"})
    assert huge.json()["pagination"]["itemsPerPage"] == 100
    injection = await client.get("/upload/list", params={"recordType": "' OR '1'='1"})
    assert injection.json()["data"] == [] and injection.json()["pagination"]["totalItems"] == 0


async def test_upload_video_bad_input(suite: Any, client: httpx.AsyncClient) -> None:
    before = await _count(suite, "record_media")
    missing = await client.post("/upload/video", data={"recordType": "x"})
    assert missing.status_code == 400 and missing.json()["message"] == "No video file provided"
    wrong_type = await client.post("/upload/video", files={"myVideo": ("a.exe", b"MZ", "application/x-msdownload")})
    assert wrong_type.status_code == 400
    fake_mp4 = await client.post(
        "/upload/video", files={"myVideo": ("a.mp4", b"hello world, not a video", "video/mp4")}
    )
    assert fake_mp4.status_code == 400
    long_field = await client.post(
        "/upload/video", data={"agentUsername": "a" * 51}, files={"myVideo": ("a.mp4", _mp4(), "video/mp4")}
    )
    assert long_field.status_code == 400
    assert await _count(suite, "record_media") == before

"""Files uploaded through a link reach conference's GET /room/picture: recording publishes recording.file.stored
for every `files` row in the inserting transaction, conference keeps its read model from it and link's
link.link.created (linkID -> room). End to end through the edge; run with SUITE_SERVICES=recording,conference,link.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
from PIL import Image

from servicekit.clock import js_iso, now_local
from tests.support import until

SERVICE = 999  # the tenant link seeds


def _room() -> str:
    # letters only: link drops digits from room names
    return "Pic " + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:12])


def _image(fmt: str, width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 200)).save(out, format=fmt)
    return out.getvalue()


async def _create_link(suite: Any, client: httpx.AsyncClient, room: str) -> str:
    reply = await client.post(
        "/link/create",
        json={"room": room, "mobile": "0812345678", "userName": "Uploader", "service": SERVICE},
        headers={"Authorization": f"Bearer {suite.agent_token()}"},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["room"] == room, body
    return str(body["linkID"])


async def _upload(client: httpx.AsyncClient, link_id: str | None, files: list[Any]) -> list[dict[str, Any]]:
    params = {"linkID": link_id} if link_id is not None else {}
    reply = await client.post("/upload/file", params=params, files=files)
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "OK"
    return list(reply.json()["data"])


async def _pictures(client: httpx.AsyncClient, room: str) -> list[dict[str, Any]]:
    reply = await client.get("/room/picture", params={"room": room})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "OK"
    return list(body["data"])


async def _stored_events(suite: Any, needle: str) -> list[dict[str, Any]]:
    rows = await suite.query(
        "recording",
        "SELECT payload FROM outbox WHERE subject = 'recording.file.stored' AND payload LIKE %s ORDER BY id",
        (f"%{needle}%",),
    )
    return [json.loads(r["payload"])["data"] for r in rows]


async def test_uploaded_files_of_a_link_show_in_its_rooms_pictures(suite: Any, client: httpx.AsyncClient) -> None:
    room, other_room = _room(), _room()
    link_id = await _create_link(suite, client, room)
    other_link = await _create_link(suite, client, other_room)
    png, jpeg = _image("PNG", 800, 600), _image("JPEG", 321, 123)
    pdf = b"%PDF-1.4\n% picture test\n" + b"0" * 200

    uploaded = await _upload(
        client,
        link_id,
        [
            ("myFiles", ("scene photo.png", png, "image/png")),
            ("myFiles[]", ("report.pdf", pdf, "application/pdf")),
        ],
    )
    uploaded += await _upload(client, link_id, [("myFiles", ("wound.jpg", jpeg, "image/jpeg"))])
    elsewhere = await _upload(client, other_link, [("myFiles", ("other.png", _image("PNG", 10, 20), "image/png"))])
    assert [f["filename"] for f in uploaded] == ["scene photo.png", "report.pdf", "wound.jpg"]

    # one event per `files` row, carrying the row as stored
    rows = await suite.query("recording", "SELECT * FROM files WHERE linkId = %s ORDER BY id", (link_id,))
    assert [r["filename"] for r in rows] == ["scene photo.png", "report.pdf", "wound.jpg"]
    events = await _stored_events(suite, link_id)
    assert events == [
        {
            "fileId": r["id"],
            "linkId": link_id,
            "filename": r["filename"],
            "url": r["url"],
            "width": r["width"],
            "height": r["height"],
            "createdAt": r["createdAt"].strftime("%Y-%m-%d %H:%M:%S"),
        }
        for r in rows
    ]
    assert [(e["width"], e["height"]) for e in events] == [(800, 600), (None, None), (321, 123)]
    # createdAt is local wall-clock time (APP_TIMEZONE, Asia/Bangkok by default), as conference parses it
    assert abs(rows[0]["createdAt"] - now_local()) < timedelta(minutes=2)

    # conference answers the room's pictures from those events, URLs as the upload answered them
    data = await until(lambda: _room_with(client, room, 3))
    assert data == [
        {
            "filename": f["filename"],
            "url": f["url"],
            "width": f["resolution"]["width"],
            "height": f["resolution"]["height"],
            "createdAt": js_iso(r["createdAt"]),
        }
        for f, r in zip(uploaded, rows, strict=True)
    ]
    for item in data:
        assert item["createdAt"].endswith("Z")
        served = await client.get(httpx.URL(item["url"]).path)
        assert served.status_code == 200, item["url"]

    other = await until(lambda: _room_with(client, other_room, 1))
    assert [(p["filename"], p["url"], p["width"], p["height"]) for p in other] == [
        ("other.png", elsewhere[0]["url"], 10, 20)
    ]
    assert await _pictures(client, _room()) == []


async def _room_with(client: httpx.AsyncClient, room: str, count: int) -> list[dict[str, Any]]:
    data = await _pictures(client, room)
    assert len(data) <= count, data
    return data if len(data) == count else []


async def test_upload_without_a_link_is_published_but_in_no_room(suite: Any, client: httpx.AsyncClient) -> None:
    marker = f"nolink-{uuid.uuid4().hex[:10]}.txt"
    uploaded = await _upload(client, None, [("myFiles", (marker, b"plain", "text/plain"))])
    rows = await suite.query("recording", "SELECT id, linkId, url FROM files WHERE filename = %s", (marker,))
    assert len(rows) == 1 and rows[0]["linkId"] == ""
    events = await _stored_events(suite, marker)
    assert len(events) == 1
    assert events[0]["fileId"] == rows[0]["id"] and events[0]["linkId"] == ""
    assert events[0]["url"] == rows[0]["url"] and uploaded[0]["url"].endswith(rows[0]["url"])
    assert events[0]["width"] is None and events[0]["height"] is None


async def test_refused_upload_publishes_nothing(suite: Any, client: httpx.AsyncClient) -> None:
    room = _room()
    link_id = await _create_link(suite, client, room)
    # a valid file beside one whose bytes are not the declared image: the whole request is refused
    reply = await client.post(
        "/upload/file",
        params={"linkID": link_id},
        files=[
            ("myFiles", ("fine.txt", b"fine", "text/plain")),
            ("myFiles", ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png")),
        ],
    )
    assert reply.status_code == 400 and reply.json()["status"] == "FAIL"
    assert await suite.query("recording", "SELECT id FROM files WHERE linkId = %s", (link_id,)) == []
    assert await _stored_events(suite, link_id) == []
    # a later good upload for the same link is the only picture the room gets
    good = await _upload(client, link_id, [("myFiles", ("after.png", _image("PNG", 4, 3), "image/png"))])
    data = await until(lambda: _room_with(client, room, 1))
    assert [(p["filename"], p["url"], p["width"], p["height"]) for p in data] == [("after.png", good[0]["url"], 4, 3)]

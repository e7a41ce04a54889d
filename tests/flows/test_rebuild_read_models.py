"""Rebuilding read models from their owners (servicekit.rebuild, deploy/rebuild.py): after a migration's copy (rows
written straight into the owners' tables, no events) or at any time, ``rpc.<service>.rebuild`` leaves every read
model as if the history had flowed through the suite.

The data is made through the edge (links, positions, a picked position, participants, a case, a recording through
the fake LiveKit's webhooks, an upload, a car task, track webhooks), the read-model rows of this test's rooms are
saved, deleted (and realtime's registry entries removed), rebuilt, and compared with what the events had made.
Columns left out of the comparison, and why:

* ``version`` (every versioned read model): the event's time before, the snapshot page's after;
* ``id`` of car_room_link, stats_link, stats_case, stats_participant, stats_track: AUTO_INCREMENT numbers, new
  ones after a delete; their ORDER (what "order first seen" means to the readers) is compared instead;
* ``dtmUpdated`` of car_room_link, car_room, room_setting: the time of the write;
* room_record_view's ``startRecord``, ``endRecord``, ``dtmUpdated``, ``status``: the events carry the webhooks'
  arrival times and LiveKit's status, the snapshot record_media's own times (the original's, which its history
  showed) and the status record_media keeps.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image
from redis.asyncio import Redis

from contracts.conference import RPC_PRESENCE_CONNECT
from deploy.rebuild import RebuildFailed, rebuild
from tests.fakes import livekit_webhooks as lkw
from tests.fakes.livekit import FakeLiveKit
from tests.support import rpc, until

SERVICE = 999  # the tenant link seeds
NAMESPACES_KEY = "realtime:namespaces"  # realtime.repository's registry set


def _tag() -> str:
    return "".join(chr(ord("a") + b % 26) for b in uuid.uuid4().bytes[:10])


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


# ---- the read models of a set of rooms ------------------------------------------------------------------------------
# (service, table, key column for the rooms, key columns to sort by, columns left out, auto-increment order column)
TABLES: list[tuple[str, str, str, tuple[str, ...], frozenset[str], str | None]] = [
    ("link", "room_view", "room", ("room",), frozenset({"version"}), None),
    ("link", "room_user_view", "room", ("room", "identity"), frozenset({"version"}), None),
    ("link", "room_case_view", "room", ("service", "caseId"), frozenset({"version"}), None),
    ("link", "room_record_view", "room", ("egressId",),
     frozenset({"version", "startRecord", "endRecord", "dtmUpdated", "status"}), None),
    ("telemetry", "car_room_link", "room", ("linkID",), frozenset({"version", "id", "dtmUpdated"}), "id"),
    ("telemetry", "car_room", "room", ("room",), frozenset({"version", "dtmUpdated"}), None),
    ("telemetry", "stats_link", "room", ("linkID",), frozenset({"version", "id"}), "id"),
    ("telemetry", "stats_case", "room", ("service", "caseId"), frozenset({"version", "id"}), "id"),
    ("telemetry", "stats_participant", "room", ("room", "identity"), frozenset({"version", "id"}), "id"),
    ("telemetry", "stats_track", "roomName", ("eventId",), frozenset({"id"}), "id"),
    ("conference", "room_link_view", "room", ("linkID",), frozenset(), None),
    ("recording", "room_setting", "room", ("room",), frozenset({"version", "dtmUpdated"}), None),
]  # fmt: skip


def _plain(value: Any) -> Any:
    return value if isinstance(value, (int, str, type(None))) else str(value)


async def _table(suite: Any, table: tuple[Any, ...], rooms: list[str]) -> dict[str, Any]:
    service, name, column, keys, left_out, order = table
    marks = ", ".join(["%s"] * len(rooms))
    rows = await suite.query(service, f"SELECT * FROM {name} WHERE {column} IN ({marks})", rooms)  # noqa: S608
    kept = sorted(
        ({k: _plain(v) for k, v in row.items() if k not in left_out} for row in rows),
        key=lambda r: [str(r[k]) for k in keys],
    )
    ordered = [[str(r[k]) for k in keys] for r in sorted(rows, key=lambda r: r[order])] if order else None
    return {"rows": kept, "order": ordered}


async def _files(suite: Any, links: list[str]) -> list[dict[str, Any]]:
    marks = ", ".join(["%s"] * len(links))
    sql = f"SELECT * FROM room_file_view WHERE linkId IN ({marks}) ORDER BY fileId"  # noqa: S608
    return [{k: _plain(v) for k, v in r.items()} for r in await suite.query("conference", sql, links)]


async def _registry(suite: Any, names: set[str]) -> set[str]:
    redis = Redis.from_url(suite.redis_url, decode_responses=True)
    try:
        return {name for name in await redis.smembers(NAMESPACES_KEY) if name in names}
    finally:
        await redis.aclose()


async def _state(suite: Any, rooms: list[str], links: list[str]) -> dict[str, Any]:
    names = {f"/{r}" for r in rooms} | {f"/data/{link}" for link in links}
    return {
        **{f"{t[0]}.{t[1]}": await _table(suite, t, rooms) for t in TABLES},
        "conference.room_file_view": await _files(suite, links),
        "realtime.registry": sorted(await _registry(suite, names)),
    }


async def _wipe(suite: Any, rooms: list[str], links: list[str]) -> None:
    """Delete the read-model rows of ``rooms`` (and their registry names), as a new database would lack them."""
    for service, name, column, *_ in TABLES:
        marks = ", ".join(["%s"] * len(rooms))
        await suite.execute(service, f"DELETE FROM {name} WHERE {column} IN ({marks})", rooms)  # noqa: S608
    marks = ", ".join(["%s"] * len(links))
    await suite.execute("conference", f"DELETE FROM room_file_view WHERE linkId IN ({marks})", links)  # noqa: S608
    redis = Redis.from_url(suite.redis_url, decode_responses=True)
    try:
        await redis.srem(NAMESPACES_KEY, *[f"/{r}" for r in rooms], *[f"/data/{link}" for link in links])
    finally:
        await redis.aclose()


def _diff(before: Any, after: Any) -> Any:
    """The differing columns of rows in the same place (for a readable failure)."""
    if not isinstance(before, dict):
        return before, after
    if len(before["rows"]) != len(after["rows"]):
        return before["rows"], after["rows"]
    return [
        {k: (b.get(k), a.get(k)) for k in b.keys() | a.keys() if b.get(k) != a.get(k)}
        for b, a in zip(before["rows"], after["rows"], strict=True)
        if a != b
    ] or ("order", before["order"], after["order"])


def _answer_diff(before: Any, after: Any) -> Any:
    if isinstance(before, dict) and isinstance(after, dict):
        return {k: _answer_diff(before.get(k), after.get(k)) for k in before.keys() | after.keys()
                if before.get(k) != after.get(k)}  # fmt: skip
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [_answer_diff(b, a) for b, a in zip(before, after, strict=True) if a != b]
    return before, after


# ---- the data, through the edge -----------------------------------------------------------------------------------
class Made:
    def __init__(self) -> None:
        self.tag = _tag()
        self.rooms = [f"Rb{self.tag}a", f"Rb{self.tag}b"]
        self.links: list[str] = []
        self.identities = [f"pa-{self.tag}", f"agent-{self.tag}"]
        self.task = ""


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 20, 20)).save(out, format="PNG")
    return out.getvalue()


async def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("status") not in ("FAIL", "NOT FOUND"), body
    return body


async def _make(suite: Any, client: httpx.AsyncClient, nc: Any, lk: FakeLiveKit) -> Made:
    made = Made()
    room, other = made.rooms
    crm = "crm" + made.tag
    for target, link_type in ((room, "video"), (room, "location"), (other, "video")):
        body = {"room": target, "mobile": "0812345678", "linkType": link_type, "service": SERVICE, "sms": 0,
                "crmSender": crm}  # fmt: skip
        made.links.append((await _ok(await client.post("/link/create", json=body, headers=_auth(suite))))["linkID"])
    located = {"linkID": made.links[0], "latitude": 13.7563, "longitude": 100.5018, "accuracy": 12}
    await _ok(await client.post("/link/update/latlng", json=located))
    picked = {"linkID": made.links[0], "room": room, "userType": "user",
              "pickLocation": {"latitude": 13.75, "longitude": 100.52}}  # fmt: skip
    await client.post("/link/multilatlng/send", json=picked)
    for identity, user_type in zip(made.identities, ("user", "agent"), strict=True):
        reply = await rpc(
            nc, RPC_PRESENCE_CONNECT,
            {"room": room, "identity": identity, "socketId": uuid.uuid4().hex, "hasMetadata": True,
             "userName": "0812345678" if user_type == "user" else "Agent", "userType": user_type},
        )  # fmt: skip
        assert reply["ok"], reply
    case = {"userName": "Dr " + made.tag, "room": room, "mobile": "0800000000", "linkType": "video",
            "service": SERVICE, "organization": "Org" + made.tag}  # fmt: skip
    await _ok(await client.post("/case/create", json=case, headers=_auth(suite)))
    # a recording: started and stopped; the fake LiveKit sends egress_started / egress_ended to /webhook
    started = await client.get("/record/request", params={"room": room}, headers=_auth(suite))
    assert started.json()["status"] == "OK", started.text
    stopped = await client.get("/record/request", params={"room": room}, headers=_auth(suite))
    assert stopped.json()["status"] == "OK", stopped.text
    upload = await client.post(
        "/upload/file", params={"linkID": made.links[0]}, files=[("myFiles", ("a.png", _png(), "image/png"))]
    )
    await _ok(upload)
    task = await client.post("/car/task", json={"room": room, "mobile": "0899999999"}, headers=_auth(suite))
    made.task = (await _ok(task))["data"]["uid"] if "data" in task.json() else ""
    # the patient opens the link (its user agent and OS reach telemetry as LINK_FIELDS_CHANGED)
    assert (await client.get("/link/getdetail", params={"linkId": made.links[0]})).status_code == 200
    key, secret = suite.env["LIVEKIT_API_KEY"], suite.env["LIVEKIT_API_SECRET"]
    for identity, source in ((made.identities[0], "CAMERA"), (made.identities[0], "MICROPHONE")):
        track = {"sid": "TR_" + uuid.uuid4().hex[:10], "type": "VIDEO", "source": source, "name": source.lower()}
        hook = lkw.event("track_published", room=room, participant=lkw.participant(identity), track=track)
        assert (await lkw.post(client, hook, key, secret)).status_code == 200
    return made


async def _settled(suite: Any, made: Made) -> dict[str, Any]:
    """The read models once every event of the data has been applied."""
    # the three links and each new room's Guest and Viewer share links: the copies of link's links hold them all
    marks = ", ".join(["%s"] * len(made.rooms))
    links = await suite.query("link", f"SELECT share FROM link_connect WHERE room IN ({marks})", made.rooms)  # noqa: S608
    assert sorted(r["share"] for r in links) == [0, 0, 0, 1, 1, 1, 1], links
    counts = {"link.room_view": 2, "link.room_user_view": 2, "link.room_case_view": 1, "link.room_record_view": 1,
              "telemetry.car_room_link": 7, "telemetry.car_room": 2, "telemetry.stats_link": 7,
              "telemetry.stats_case": 1, "telemetry.stats_participant": 2, "telemetry.stats_track": 2,
              "conference.room_link_view": 7, "recording.room_setting": 2}  # fmt: skip

    async def complete() -> dict[str, Any] | None:
        state = await _state(suite, made.rooms, made.links)
        have = {name: len(state[name]["rows"]) for name in counts}
        ended = [r for r in state["link.room_record_view"]["rows"] if r["filename"]]
        picked = [r for r in state["telemetry.car_room_link"]["rows"] if r["patientLatitude"] is not None]
        opened = [r for r in state["telemetry.stats_link"]["rows"] if r["os"] is not None]  # getdetail's fields
        # the recorded room's view has applied conference's record stop too (a consumer of its own)
        stopped = [r for r in state["link.room_view"]["rows"]
                   if r["room"] == made.rooms[0] and '"dtmStopRecord":null' not in str(r["detail"])]  # fmt: skip
        if have == counts and ended and picked and opened and stopped and state["conference.room_file_view"]:
            return state
        return None

    return await until(complete, timeout=40)


async def _answers(suite: Any, client: httpx.AsyncClient, made: Made) -> dict[str, Any]:
    """What the edge answers from the read models."""
    room = made.rooms[0]
    detail = (await client.get("/link/getdetail", params={"linkId": made.links[0]})).json()
    history = (await client.get("/link/history", params={"roomName": room, "page": 1})).json()
    for item in history["data"]:
        item.pop("activeLog")  # link's own usage rows, one more for every getdetail here
        for video in item.get("recordVideos") or []:  # room_record_view's times and status: see the module's doc
            for key in ("startRecord", "endRecord", "dtmUpdated", "status"):
                video.pop(key, None)
    pictures = (await client.get("/room/picture", params={"room": room})).json()
    agent = {"Authorization": f"Bearer {suite.agent_token()}"}
    summary = (await client.get("/stats/summary", params={"crmSender": "crm" + made.tag}, headers=agent)).json()
    task = (await client.get("/car/task", params={"id": made.task})).json() if made.task else None
    assert detail["status"] == "OK", detail
    # a new participant per request: its identity, name, colour and token are made anew each time;
    # recordDuration is counted to the time of the request
    detail_data = {
        k: v for k, v in detail["data"].items() if k not in ("identity", "userName", "color", "token", "recordDuration")
    }
    return {"detail": detail_data, "history": history,
            "pictures": pictures, "summary": summary, "task": task}  # fmt: skip


async def _connect(nc: Any, room: str, identity: str, user_name: str, user_type: str = "user") -> dict[str, Any]:
    """A room_user row through conference's presence API (as realtime's sockets write it)."""
    body = {"room": room, "identity": identity, "socketId": uuid.uuid4().hex, "hasMetadata": True,
            "userName": user_name, "userType": user_type}  # fmt: skip
    return await rpc(nc, RPC_PRESENCE_CONNECT, body)


# ---- the tests -----------------------------------------------------------------------------------------------------
async def test_rebuild_restores_every_read_model_and_a_second_run_changes_nothing(
    suite: Any, client: httpx.AsyncClient, nc: Any, lk: FakeLiveKit
) -> None:
    made = await _make(suite, client, nc, lk)
    before = await _settled(suite, made)
    answers = await _answers(suite, client, made)

    await _wipe(suite, made.rooms, made.links)
    wiped = await _state(suite, made.rooms, made.links)
    assert all(not v["rows"] for k, v in wiped.items() if isinstance(v, dict)), wiped
    assert not wiped["conference.room_file_view"] and not wiped["realtime.registry"]

    summaries = await rebuild(["all"], suite.nats_url)
    assert [s.service for s in summaries] == ["recording", "conference", "link", "telemetry", "realtime"]
    rebuilt = {(s.service, m.readModel): m.rows for s in summaries for m in s.readModels}
    assert rebuilt[("link", "room_view")] >= 2 and rebuilt[("realtime", "namespace_registry")] >= 2
    after = await _state(suite, made.rooms, made.links)
    for name in before:
        assert after[name] == before[name], (name, _diff(before[name], after[name]))
    answered = await _answers(suite, client, made)
    for name in answers:
        assert answered[name] == answers[name], (name, _answer_diff(answers[name], answered[name]))

    again = await rebuild(["all"], suite.nats_url)
    assert [s.service for s in again] == [s.service for s in summaries]
    assert await _state(suite, made.rooms, made.links) == before


async def test_rows_copied_into_the_owners_tables_reach_every_read_model(suite: Any, client: httpx.AsyncClient) -> None:
    """What deploy/migrate does: rows written straight into the owners' tables, ids kept, no event published."""
    tag = _tag()
    room, link_id, identity, egress = f"Mig{tag}", f"mig{tag}", f"pm-{tag}", f"EG_{tag}"
    await suite.execute(
        "conference",
        "INSERT INTO room_conference (status, roomType, room, service, recordId, autoRecord, recordType,"
        " encodingOptionsPreset, dtmCreated, dtmUpdated, dtmExpired)"
        " VALUES ('open', 'conference', %s, %s, '', 1, 'RoomCompositeAudio', 'H264_720P_30', NOW(), NOW(),"
        " NOW() + INTERVAL 1 DAY)",
        (room, SERVICE),
    )
    [room_row] = await suite.query("conference", "SELECT id FROM room_conference WHERE room = %s", (room,))
    await suite.execute(
        "conference",
        "INSERT INTO room_user (room, identity, color, userName, userType, dtmcreated, dtmupdated)"
        " VALUES (%s, %s, '#123456', '0812345678', 'user', NOW(), NOW())",
        (room, identity),
    )
    await suite.execute(
        "conference",
        "INSERT INTO case_data (caseId, service, roomId, status, hn, patientMobile, organization, dtmCreated)"
        " VALUES (%s, %s, %s, 'On Case', 'HN1', '0800000001', %s, NOW())",
        (700_000 + int(uuid.uuid4().hex[:5], 16), SERVICE, room_row["id"], "Org" + tag),
    )
    await suite.execute(
        "link",
        "INSERT INTO link_connect (linkID, room, userType, linkType, mobile, userName, service, crmSender, latitude,"
        " longitude, patientLatitude, patientLongitude, os, dtmCreated, dtmExpired)"
        " VALUES (%s, %s, 'user', 'video', '0812345678', '0812345678', %s, %s, 13.7, 100.5, 13.6, 100.4, 'Android',"
        " NOW(), NOW() + INTERVAL 1 DAY)",
        (link_id, room, SERVICE, "crm" + tag),
    )
    await suite.execute(
        "recording",
        "INSERT INTO record_media (egressId, room, fileName, recordType, status, startRecord, endRecord, dtmUpdated)"
        " VALUES (%s, %s, 'old.mp4', 'RoomCompositeAudio', 'completed', NOW() - INTERVAL 1 HOUR, NOW(), NOW())",
        (egress, room),
    )
    await suite.execute(
        "recording",
        "INSERT INTO files (linkId, filename, url, size, width, height, createdAt)"
        " VALUES (%s, 'old.png', %s, 10, 4, 3, NOW())",
        (link_id, f"/images/{tag}/old.png"),
    )
    hook = lkw.event("track_published", room=room, participant=lkw.participant(identity),
                     track={"sid": "TR_" + tag, "type": "VIDEO", "source": "CAMERA", "name": "camera"})  # fmt: skip
    await suite.execute("telemetry", "INSERT INTO data_log (data, dtmCreated) VALUES (%s, NOW())", (json.dumps(hook),))

    await rebuild(["all"], suite.nats_url)

    async def one(service: str, sql: str) -> dict[str, Any]:
        rows = await suite.query(service, sql, (room,))
        assert len(rows) == 1, (service, sql, rows)
        return rows[0]

    view = await one("link", "SELECT * FROM room_view WHERE room = %s")
    assert view["status"] == "open" and view["complete"] == 1 and json.loads(view["detail"])["autoRecord"] == 1
    assert (await one("link", "SELECT * FROM room_user_view WHERE room = %s"))["color"] == "#123456"
    assert (await one("link", "SELECT * FROM room_case_view WHERE room = %s"))["hn"] == "HN1"
    record = await one("link", "SELECT * FROM room_record_view WHERE room = %s")
    assert (record["egressId"], record["filename"], record["recordType"]) == (
        egress,
        f"livekit-record/{SERVICE}/old.mp4",
        "RoomCompositeAudio",
    )
    car = await one("telemetry", "SELECT * FROM car_room_link WHERE room = %s")
    assert (car["linkID"], float(car["latitude"]), float(car["patientLatitude"])) == (link_id, 13.7, 13.6)
    assert (await one("telemetry", "SELECT * FROM car_room WHERE room = %s"))["service"] == SERVICE
    stats = await one("telemetry", "SELECT * FROM stats_link WHERE room = %s")
    assert (stats["os"], stats["crmSender"], float(stats["longitude"])) == ("Android", "crm" + tag, 100.5)
    assert (await one("telemetry", "SELECT * FROM stats_case WHERE room = %s"))["organization"] == "Org" + tag
    assert (await one("telemetry", "SELECT * FROM stats_participant WHERE room = %s"))["identity"] == identity
    assert (await one("telemetry", "SELECT * FROM stats_track WHERE roomName = %s"))["source"] == "CAMERA"
    assert (await one("conference", "SELECT * FROM room_link_view WHERE room = %s"))["linkID"] == link_id
    setting = await one("recording", "SELECT * FROM room_setting WHERE room = %s")
    assert (setting["autoRecord"], setting["recordType"], setting["service"]) == (1, "RoomCompositeAudio", SERVICE)
    assert await _registry(suite, {f"/{room}", f"/data/{link_id}"}) == {f"/{room}", f"/data/{link_id}"}

    # the edge answers from them: getdetail in one hop (room_view), the room's pictures, the statistics
    detail = (await client.get("/link/getdetail", params={"linkId": link_id})).json()
    assert detail["status"] == "OK" and json.dumps(detail).count(room) >= 1, detail
    pictures = (await client.get("/room/picture", params={"room": room})).json()
    assert [p["filename"] for p in pictures["data"]] == ["old.png"], pictures
    summary = await client.get("/stats/summary", params={"crmSender": "crm" + tag}, headers=_auth(suite))
    assert [r["organization"] for r in summary.json()["data"]] == ["Org" + tag], summary.text


async def test_an_event_newer_than_the_snapshot_is_kept(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    """A live event applied while a rebuild runs (its row's version newer than the page's) is not overwritten, in a
    view with a version of its own (link) and in one given one for rebuilds (telemetry); the rest is rebuilt."""
    tag = _tag()
    room = f"Live{tag}"
    body = {"room": room, "mobile": "0812345678", "service": SERVICE, "sms": 0}
    await _ok(await client.post("/link/create", json=body, headers=_auth(suite)))
    identity = f"pl-{tag}"
    assert (await _connect(nc, room, identity, "Old"))["ok"]

    async def seen() -> bool:
        link = await suite.query("link", "SELECT 1 FROM room_user_view WHERE room = %s", (room,))
        stats = await suite.query("telemetry", "SELECT 1 FROM stats_participant WHERE room = %s", (room,))
        return bool(link) and bool(stats)

    await until(seen)
    newer = int(time.time() * 1000) + 3_600_000  # as an event stamped after the rebuild's pages were read
    await suite.execute(
        "link", "UPDATE room_user_view SET userName = 'Live', version = %s WHERE room = %s", (newer, room)
    )
    await suite.execute(
        "telemetry", "UPDATE stats_participant SET userName = 'Live', version = %s WHERE room = %s", (newer, room)
    )
    await suite.execute("link", "DELETE FROM room_view WHERE room = %s", (room,))

    await rebuild(["link", "telemetry"], suite.nats_url)

    kept = [{"userName": "Live"}]
    assert await suite.query("link", "SELECT userName FROM room_user_view WHERE room = %s", (room,)) == kept
    assert await suite.query("telemetry", "SELECT userName FROM stats_participant WHERE room = %s", (room,)) == kept
    assert await suite.query("link", "SELECT room FROM room_view WHERE room = %s", (room,)) == [{"room": room}]


async def test_live_events_during_a_rebuild_are_applied(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    """Changes made while link rebuilds (each published as an event) all end in the read model."""
    tag = _tag()
    room = f"Run{tag}"
    body = {"room": room, "mobile": "0812345678", "service": SERVICE, "sms": 0}
    await _ok(await client.post("/link/create", json=body, headers=_auth(suite)))
    identities = [f"r{i}-{tag}" for i in range(8)]

    async def join_all() -> None:
        for identity in identities:
            assert (await _connect(nc, room, identity, identity))["ok"]
            await asyncio.sleep(0.05)

    await asyncio.gather(rebuild(["link"], suite.nats_url), join_all())

    async def all_there() -> bool:
        rows = await suite.query("link", "SELECT identity FROM room_user_view WHERE room = %s", (room,))
        return {r["identity"] for r in rows} == set(identities)

    await until(all_there)


async def test_participants_are_rebuilt_from_livekit(
    suite: Any, client: httpx.AsyncClient, livekit: FakeLiveKit
) -> None:
    """Who is in a room now is LiveKit's: link's participant view is made to match LiveKit's list (through
    conference), a participant LiveKit does not list any more has left, and getdetail lists the live ones."""
    tag = _tag()
    room = f"Lk{tag}"
    body = {"room": room, "mobile": "0812345678", "service": SERVICE, "sms": 0}
    link_id = (await _ok(await client.post("/link/create", json=body, headers=_auth(suite))))["linkID"]
    livekit.add_participant(room, f"here-{tag}", name="Here")
    stale = json.dumps({"identity": f"gone-{tag}", "joinedAt": 1})  # as a lost participant_left would leave it
    await suite.execute(
        "link",
        "INSERT INTO room_participant_view (room, identity, participant, joinedAt, version) VALUES (%s, %s, %s, 1, 1)",
        (room, f"gone-{tag}", stale),
    )

    [summary] = await rebuild(["link"], suite.nats_url, read_models=["room_participant_view"])
    assert summary.readModels[0].rows >= 1

    rows = await suite.query(
        "link", "SELECT identity, participant FROM room_participant_view WHERE room = %s ORDER BY identity", (room,)
    )
    assert [(r["identity"], r["participant"] is not None) for r in rows] == [
        (f"gone-{tag}", False),
        (f"here-{tag}", True),
    ]
    detail = (await client.get("/link/getdetail", params={"linkId": link_id})).json()
    assert [p["identity"] for p in detail["data"]["listParticipants"]] == [f"here-{tag}"], detail


async def test_unknown_service_or_read_model_is_refused(suite: Any) -> None:
    with pytest.raises(ValueError):
        await rebuild(["nosuch"], suite.nats_url)
    with pytest.raises(RebuildFailed, match="nosuch"):
        await rebuild(["link"], suite.nats_url, read_models=["nosuch"])

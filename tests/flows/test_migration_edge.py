"""Issue 14 end to end: an installation of the original moves onto the suite and its users see the same data
through the edge.

A legacy source (tests/legacy.py: the original's `conference` schema, production-like generated rows with the
edge cases) is built in a database of its own, named with the suite's database prefix; ``python -m
deploy.migrate`` copies it into the services' databases and ``python -m deploy.rebuild all`` has every service
rebuild its read models from the owners; then every area is asked through the edge and compared with what the
original answered from the source database (tests/legacy_answers.py: its SQL and post-processing, in Python).

The suite here is a fresh one started by the harness's ``private_suite`` with the harness suite's settings and
fakes: a migration moves an installation onto an empty suite, and the copy keeps the original's ids, which
would collide with rows other test modules wrote into the session's suite.

Where the suite answers differently from the original on purpose (README "Differences from the original") or
where the original's code contradicted its own intent (legacy_answers.ORIGINAL_DEFECTS), the test says so at
that line and checks the suite's answer against the intent; every other field must be equal.
"""

from __future__ import annotations

import ast
import asyncio
import csv
import hashlib
import json
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local import LocalSuite, discover_services
from deploy.rebuild import SERVICES as REBUILD_SERVICES
from deploy.rebuild import RebuildFailed, not_rebuilt, rebuild
from tests import legacy_answers as original
from tests.instances import private_suite
from tests.legacy import SMALL, SOURCE_TIME_ZONE, Dsn, Filled, build, clone_without, drop_source
from tests.support import query

ROOT = Path(__file__).resolve().parents[2]
API_URL = "https://api.example"


@dataclass
class Migrated:
    local: LocalSuite
    source: Dsn
    carried: Dsn
    filled: Filled
    copy: tuple[int, str]  # deploy.migrate's exit status and output
    report: list[dict[str, str]]
    verify: tuple[int, str]
    rebuild_failures: dict[str, str]
    not_rebuilt: list[str]  # rows a read model could not hold, as deploy.rebuild names them
    secret: str
    key: str


async def _run(*argv: str, timeout: float = 600) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    return int(process.returncode or 0), out.decode(errors="replace")


async def _rebuild_all(nats_url: str) -> tuple[dict[str, str], list[str]]:
    """deploy.rebuild's ``rebuild`` of every service, as after a migration's copy (again, if the migration did it:
    a rebuild is repeatable); when a service's rebuild fails, its read models one by one, so one failing step does
    not leave the others unbuilt. Returns what failed (service or service.step) and the rows the read models could
    not hold (deploy.rebuild.not_rebuilt's lines)."""
    failures: dict[str, str] = {}
    left: list[str] = []
    for service in REBUILD_SERVICES:
        steps: list[str] = []
        try:
            left += not_rebuilt(await rebuild([service], nats_url, timeout=300))
            continue
        except RebuildFailed as error:
            failures[service] = str(error)
        try:
            await rebuild([service], nats_url, read_models=["?"], timeout=60)
        except RebuildFailed as error:  # the answer names the service's steps
            known = re.search(r"known: (\[.*?\])", str(error))
            steps = ast.literal_eval(known.group(1)) if known else []
        for step in steps:
            try:
                left += not_rebuilt(await rebuild([service], nats_url, read_models=[step], timeout=300))
            except RebuildFailed as error:
                failures[f"{service}.{step}"] = str(error)
    return failures, left


@pytest.fixture(scope="module")
async def migrated(suite: Any) -> AsyncIterator[Migrated]:
    # No sweeps: the copy is compared with the source as it was (a slot boundary in the run would close rooms).
    extra_env = {**suite.local.extra_env, "API_URL": API_URL, "SCHEDULED_JOBS": "false"}
    with private_suite(discover_services(), extra_env, label="migration") as local:
        source = Dsn.parse(f"mysql://root@127.0.0.1:3306/{local.db_prefix}legacy")
        carried = Dsn.parse(f"mysql://root@127.0.0.1:3306/{local.db_prefix}legacy_carried")
        try:
            filled = await build(source, SMALL, seed=11)
            report = local.run_dir / "migration-report.csv"
            # the generator wrote the source as a server at +07:00 would (the original's, in Bangkok): its TIMESTAMPs
            # are read in that zone
            zone = ("--source-time-zone", SOURCE_TIME_ZONE)
            copy = await _run("-m", "deploy.migrate", "--source", str(source), "--db-prefix", local.db_prefix,
                              "--nats-url", local.nats_url, "--report", str(report), *zone)  # fmt: skip
            assert report.exists(), copy[1]
            failures, left = await _rebuild_all(local.nats_url)
            verify = await _run("-m", "deploy.migrate", "--source", str(source), "--db-prefix", local.db_prefix,
                                "--verify", *zone)  # fmt: skip
            with report.open(encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            dropped: dict[str, list[str]] = {}
            for row in rows:
                if row["outcome"] == "not carried":
                    dropped.setdefault(row["table"], []).append(row["key"])
            await clone_without(source, carried.database, dropped)
            yield Migrated(local, source, carried, filled, copy, rows, verify, failures, left,
                           suite.env["LIVEKIT_API_SECRET"], suite.env["LIVEKIT_API_KEY"])  # fmt: skip
        finally:
            await drop_source(source)
            await drop_source(carried)


@pytest.fixture
async def edge(migrated: Migrated) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=migrated.local.edge, timeout=30) as http:
        yield http


@pytest.fixture
async def source(migrated: Migrated) -> AsyncIterator[Any]:
    """The source as the migration carried it (rows it reported not carried left out): the original's answers over
    these are what the suite must give. Rows left out are checked on their own (duplicated link IDs)."""
    conn = await migrated.carried.connect()
    yield conn
    conn.close()


@pytest.fixture
async def whole_source(migrated: Migrated) -> AsyncIterator[Any]:
    conn = await migrated.source.connect()
    yield conn
    conn.close()


_now = original.bangkok_now
same = original.same
_get = original.edge_get


# ---- the copy and the rebuild --------------------------------------------------------------------------------------
async def test_the_migration_command_succeeds(migrated: Migrated) -> None:
    code, out = migrated.copy
    assert code == 0, out


async def test_the_copy_verifies_and_reports_what_it_did_not_carry(migrated: Migrated) -> None:
    code, out = migrated.verify
    assert code == 0, out
    cases, report = migrated.filled.cases, migrated.report
    # of two rows with one linkID, or two IDs equal but for letter case, the lowest id is carried, the other reported
    duplicates = [r for r in report if r["table"] == "link_connect" and r["reason"] == "duplicate linkID"]
    assert len(duplicates) == 2 and all(r["outcome"] == "not carried" for r in duplicates), report
    assert any(cases["duplicate_link"] in r["detail"] for r in duplicates), duplicates
    assert any(cases["case_twin_links"][1] in r["detail"] for r in duplicates), duplicates
    # the orphan (its room_user row is gone) is carried and named
    assert [r["outcome"] for r in report if "orphan" in r["reason"] and "room_user" in r["detail"]] == ["carried"]
    # everything else went over: nothing refused, rows otherwise equal (verify's checksums)
    assert [r for r in report if r["outcome"] == "not carried" and r["reason"] != "duplicate linkID"] == []


async def test_every_read_model_rebuilds_from_the_copy(migrated: Migrated) -> None:
    assert migrated.rebuild_failures == {}
    # every row of the owners fits its read models (a 64-character room name in telemetry's stats_participant, a
    # files.linkId over 100 characters in conference's room_file_view, a link without linkID in stats_link and
    # car_room_link): nothing was left out (it would be reported, and deploy.migrate would have exited 4)
    assert migrated.not_rebuilt == []


async def _target(migrated: Migrated, service: str, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    target = Dsn.parse(f"mysql://root@127.0.0.1:3306/{migrated.local.db_name(service)}")
    conn = await target.connect()
    try:
        return await original.query_rows(conn, sql, args)
    finally:
        conn.close()


async def test_the_read_models_hold_the_rows_too_wide_for_them_before(migrated: Migrated) -> None:
    long_room = migrated.filled.cases["long_room_user"]
    kept = await _target(migrated, "telemetry", "SELECT room FROM stats_participant WHERE room = %s", (long_room,))
    assert kept == [{"room": long_room}], kept
    files = await _target(migrated, "conference", "SELECT linkId FROM room_file_view WHERE CHAR_LENGTH(linkId) > 100")
    assert files == [{"linkId": "x" * 120}], files
    nameless = await _target(migrated, "telemetry", "SELECT linkRowId FROM stats_link WHERE linkID IS NULL")
    cars = await _target(migrated, "telemetry", "SELECT linkRowId FROM car_room_link WHERE linkID IS NULL")
    assert len(nameless) == 1 and cars == nameless, (nameless, cars)


def _zero_texts(value: Any) -> list[str]:
    text = json.dumps(value)
    return ["0000-00-00"] if "0000-00-00" in text else []


# ---- GET /link/history ------------------------------------------------------------------------------------------
HISTORY_ROOMS = ("live_room", "car_room", "record_room", "open_but_expired_room")


async def _history_pages(edge: httpx.AsyncClient, source: Any, room: str) -> list[tuple[dict[str, Any], Any]]:
    pages, page = [], 1
    while True:
        want = await original.link_history(source, room, page)
        reply = await _get(edge, "/link/history", roomName=room, page=page)
        assert reply.status_code == 200, reply.text
        pages.append((want, reply.json()))
        if len(want["data"]) < 5:
            return pages
        page += 1


async def test_link_history_pages_equal_the_originals(migrated: Migrated, edge: httpx.AsyncClient, source: Any) -> None:
    for room in dict.fromkeys(migrated.filled.cases[c] for c in HISTORY_ROOMS):
        for page, (want, got) in enumerate(await _history_pages(edge, source, room), start=1):
            for row in got.get("data", []):  # a deliberate difference: checked on its own below
                assert isinstance(row.pop("recordVideos"), list)
            for row in want["data"]:
                row.pop("recordVideos")
            same(want, got, (room, page))


async def test_link_history_record_videos_are_the_rooms_recordings(
    migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    # deliberate difference (README "Differences from the original"): the original's lookup was commented out and
    # recordVideos was always []; the suite lists the room's recordings (record_media), the same on every row, each
    # file named as LiveKit's egress reports it (livekit-record/<the room's tenant>/<fileName>)
    recorded = 0
    for room in dict.fromkeys(migrated.filled.cases[c] for c in HISTORY_ROOMS):
        rows = await original.query_rows(
            source, "SELECT m.egressId, m.room, m.fileName, m.recordType, m.startRecord, m.endRecord, r.service"
            " FROM record_media m LEFT JOIN room_conference r ON r.room = m.room"
            " WHERE m.room = %s AND m.egressId IS NOT NULL ORDER BY m.startRecord, m.egressId", (room,),
        )  # fmt: skip
        want = [{"egressId": r["egressId"], "room": r["room"], "recordType": r["recordType"],
                 "filename": f"livekit-record/{r['service']}/{r['fileName']}",
                 "startRecord": original.js(r["startRecord"]), "endRecord": original.js(r["endRecord"])}
                for r in rows]  # fmt: skip
        recorded += bool(want)
        for page, (_want, got) in enumerate(await _history_pages(edge, source, room), start=1):
            for row in got["data"]:
                videos = [{k: v for k, v in video.items() if k != "dtmUpdated"} for video in row["recordVideos"]]
                same(want, videos, (room, page, row["linkID"]))
    assert recorded, "no history room with recordings was compared"


# ---- GET /status (a room's usage log) ------------------------------------------------------------------------------
async def test_status_usage_log_equals_the_originals(migrated: Migrated, edge: httpx.AsyncClient, source: Any) -> None:
    rooms = [migrated.filled.cases[c] for c in HISTORY_ROOMS]
    (survey,) = (await original.query_rows(source, "SELECT room FROM usage_status_log WHERE status = 'smsSurvey'"
                                                   " ORDER BY id LIMIT 1"))  # fmt: skip
    for room in dict.fromkeys([*rooms, survey["room"], "NoSuchRoom"]):
        want = await original.status_log(source, room)
        reply = await _get(edge, "/status", room=room)
        assert reply.status_code == 200, reply.text
        same(want, reply.json(), room)


# ---- GET /chat/history ------------------------------------------------------------------------------------------
async def test_chat_history_equals_the_originals(migrated: Migrated, edge: httpx.AsyncClient, source: Any) -> None:
    rooms = [
        r["room"] for r in await original.query_rows(source, "SELECT DISTINCT room FROM chat_message ORDER BY room")
    ]
    assert migrated.filled.cases["chat_room"] in rooms
    for room in rooms:
        want = await original.chat_history(source, room)
        reply = await _get(edge, "/chat/history", room=room)
        assert reply.status_code == 200, reply.text
        same(want, reply.json(), room)
    thai = await _get(edge, "/chat/history", room=migrated.filled.cases["chat_room"])
    assert any("😷" in (m["text"] or "") and "หายใจ" in m["text"] for m in thai.json())


# ---- GET /record/file, GET /upload/list -------------------------------------------------------------------------
async def test_record_file_equals_the_originals(migrated: Migrated, edge: httpx.AsyncClient, source: Any) -> None:
    cases = migrated.filled.cases
    for room in dict.fromkeys((cases["record_room"], cases["car_room"], cases["live_room"])):
        status, want = await original.record_file(source, room, API_URL)
        reply = await _get(edge, "/record/file", room=room)
        assert reply.status_code == status, reply.text
        if status == 200:
            # the original's url ended in /undefined (ORIGINAL_DEFECTS["record_file_url"]): the suite names the file
            service = await original.room_case_service(source, room)
            for row in want["data"]:
                row["url"] = f"{API_URL}/record/{service}/{row['fileName']}"
        same(want, reply.json(), room)


UPLOAD_TYPES = ("RoomCompositeVideoAudio", "RoomCompositeAudio", "TrackComposite", "screen", "camera")


async def _upload_pages(edge: httpx.AsyncClient, source: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    pages = []
    for record_type in UPLOAD_TYPES:
        page = 1
        while True:
            want = await original.upload_list(source, API_URL, record_type, page, 10)
            reply = await _get(edge, "/upload/list", recordType=record_type, page=page, limit=10)
            assert reply.status_code == 200, reply.text
            pages.append((want, reply.json()))
            if not want["pagination"]["hasNextPage"]:
                break
            page += 1
    return pages


async def test_upload_list_equals_the_originals(migrated: Migrated, edge: httpx.AsyncClient, source: Any) -> None:
    for want, got in await _upload_pages(edge, source):
        same(want, got, want["pagination"])


async def test_upload_list_url_without_file_path_is_null_as_the_originals(
    migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    for want, got in await _upload_pages(edge, source):
        assert [r["url"] for r in got["data"]] == [r["url"] for r in want["data"]]


async def test_record_file_of_a_room_without_a_case_answers_its_recordings(
    migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    # deliberate difference (README "Differences from the original"): the original took the tenant from the room's
    # case and answered 404 for a room without one; the suite takes it from the room and answers its recordings
    room = migrated.filled.cases["record_room_without_case"]
    status, want = await original.record_file(source, room, API_URL)
    assert (status, want) == (404, {"status": "FAIL", "message": "Room not found"})
    (tenant,) = await original.query_rows(source, "SELECT service FROM room_conference WHERE room = %s", (room,))
    rows = await original.query_rows(source, "SELECT * FROM record_media WHERE room = %s ORDER BY id", (room,))
    assert rows and tenant["service"] is not None, (rows, tenant)
    expected = {"status": "OK", "data": [
        {**original.js_row(r), "url": f"{API_URL}/record/{tenant['service']}/{r['fileName']}"} for r in rows
    ]}  # fmt: skip
    reply = await _get(edge, "/record/file", room=room)
    assert reply.status_code == 200, reply.text
    same(expected, reply.json(), room)


# ---- GET /room/picture ------------------------------------------------------------------------------------------
async def _pictures(migrated: Migrated, edge: httpx.AsyncClient, source: Any) -> tuple[dict[str, Any], Any]:
    room = migrated.filled.cases["picture_room"]
    # the original's query failed on its own schema (ORIGINAL_DEFECTS["room_picture"]); the suite answers its intent
    assert (await original.room_picture(source, room, API_URL))[0] == 404
    status, want = await original.room_picture(source, room, API_URL, intended=True)
    assert status == 200 and want["data"]
    reply = await _get(edge, "/room/picture", room=room)
    assert reply.status_code == 200, reply.text
    got = reply.json()
    order = lambda f: (f["url"], f["filename"])  # noqa: E731 - the original's query had no ORDER BY
    return {**want, "data": sorted(want["data"], key=order)}, {**got, "data": sorted(got.get("data", []), key=order)}


async def test_room_picture_lists_the_files_uploaded_through_the_rooms_links(
    migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    want, got = await _pictures(migrated, edge, source)
    # createdAt is a TIMESTAMP: equal only because the copy read the source in its server's zone (--source-time-zone)
    same(want, got, migrated.filled.cases["picture_room"])


# ---- GET /car/list ------------------------------------------------------------------------------------------------
async def _car_lists(migrated: Migrated, edge: httpx.AsyncClient, source: Any) -> list[tuple[Any, Any]]:
    rooms = [r["room"] for r in await original.query_rows(source, "SELECT DISTINCT room FROM car_track ORDER BY room")]
    out = []
    for room in [*rooms, migrated.filled.cases["live_room"]]:
        status, want = await original.car_list(source, room)
        reply = await _get(edge, "/car/list", room=room)
        assert reply.status_code == status, (room, reply.text)
        out.append((want, reply.json()))
    return out


async def test_car_list_equals_the_originals(migrated: Migrated, edge: httpx.AsyncClient, source: Any) -> None:
    for want, got in await _car_lists(migrated, edge, source):
        same(want, got, want.get("data", [{}])[0].get("room"))


async def test_zero_dates_are_answered_as_null_like_the_original(
    migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    cases = migrated.filled.cases
    records = (await _get(edge, "/record/file", room=cases["record_room"])).json()
    cars = [got for _want, got in await _car_lists(migrated, edge, source)]
    history = [got for _want, got in await _history_pages(edge, source, cases["live_room"])]
    assert _zero_texts(records) + _zero_texts(cars) + _zero_texts(history) == []


# ---- GET /stats/* -------------------------------------------------------------------------------------------------
SUMMARY_QUERIES: list[dict[str, str]] = [
    {},
    {"limit": "500"},
    {"limit": "7", "page": "2"},
    {"sortBy": "mobile", "sortOrder": "asc", "limit": "500"},
    {"linkType": "video", "limit": "500"},
    {"userType": "user", "service": "1", "limit": "500"},
    {"organization": "รพ.", "limit": "500"},
    {"dateTimeStart": "2025-01-01", "dateTimeEnd": "2025-12-31", "limit": "500"},
    {"search": "agent", "limit": "500"},
]


@pytest.mark.parametrize("query", SUMMARY_QUERIES, ids=lambda q: "&".join(f"{k}={v}" for k, v in q.items()) or "-")
async def test_stats_summary_equals_the_originals(
    query: dict[str, str], migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    await original.compare_summary(edge, source, query)


DEVICE_SPANS = [(None, None), ("2024-06-01 00:00:00", "2025-06-30 23:59:59"), ("2024-06-01", None)]


@pytest.mark.parametrize("route", ["/stats/device", "/stats/type"])
@pytest.mark.parametrize("span", DEVICE_SPANS)
async def test_stats_device_and_type_equal_the_originals(
    route: str, span: tuple[str | None, str | None], migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    await original.compare_counts(route, span, edge, source)


GEN_QUERIES = [{}, {"os": "iOS"}, {"os": "other"}, {"dtmStart": "2025-01-01", "dtmEnd": "2025-12-31"}]


@pytest.mark.parametrize("route", ["/stats/gen", "/stats/generate"])
@pytest.mark.parametrize("query", GEN_QUERIES)
async def test_stats_generate_equals_the_originals(
    route: str, query: dict[str, str], migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    want = await original.stats_generate(source, query.get("os"), query.get("dtmStart"), query.get("dtmEnd"))
    reply = await _get(edge, route, **query)
    assert reply.status_code == 200, reply.text
    same(want, reply.json(), query)


async def test_stats_count_and_list_the_link_without_a_link_id(
    migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    # the original counted and listed a link whose linkID is NULL (the copy carries it, telemetry keeps it by its
    # row id): it is among the figures compared above; here, that the data holds one and the suite lists it
    rows = await original.query_rows(
        source, "SELECT id FROM link_connect WHERE linkID IS NULL AND mobile != '' ORDER BY id"
    )  # fmt: skip
    assert rows, "no link without linkID in the source"
    generated = (await _get(edge, "/stats/gen")).json()
    assert [item for item in generated[0] if item["linkID"] is None], "no link without linkID in /stats/gen"


@pytest.mark.parametrize("route", ["/stats/user", "/stats/case", "/user/log"])
async def test_stats_user_equals_the_originals(
    route: str, migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    mobiles = [r["userName"] for r in await original.query_rows(
        source, "SELECT DISTINCT userName FROM room_user WHERE userType = 'user' AND userName != %s"
        " ORDER BY userName LIMIT 12", (migrated.filled.cases["long_room_mobile"],),  # its own test below
    )] + ["0000000000"]  # fmt: skip
    with_logs = 0
    for mobile in mobiles:
        want = await original.stats_user(source, mobile)
        reply = await _get(edge, route, mobile=mobile)
        assert reply.status_code == 200, reply.text
        got = reply.json()
        if "track_logs" in want and "track_logs" in got:
            # data is the raw webhook text; the suite may store it re-serialised: compare it parsed
            for row in (*want["track_logs"], *got["track_logs"]):
                row["data"] = json.loads(row["data"])
            with_logs += bool(want["track_logs"])
        same(want, got, mobile)
    assert with_logs, "no mobile with track logs was compared"


async def test_stats_user_of_a_participant_in_a_long_room_name(
    migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    mobile = migrated.filled.cases["long_room_mobile"]
    want = await original.stats_user(source, mobile)
    assert want["track_logs"] and {row["roomName"] for row in want["track_logs"]} == {"Overflow" * 8}
    got = (await _get(edge, "/stats/user", mobile=mobile)).json()
    for row in (*want["track_logs"], *got.get("track_logs", [])):
        row["data"] = json.loads(row["data"])
    same(want, got, mobile)


# ---- GET /link/getdetail (last: it writes usage rows and the link's user agent, as the original did) ---------------
async def _compare_detail(migrated: Migrated, edge: httpx.AsyncClient, conn: Any, link_id: str) -> dict[str, Any]:
    return await original.compare_detail(edge, conn, link_id, migrated.key, migrated.secret)


async def test_getdetail_of_an_old_link_gives_the_originals_room_users_positions_and_a_fresh_token(
    migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    cases = migrated.filled.cases
    got = await _compare_detail(migrated, edge, source, cases["live_link"])
    assert got["data"]["room"] == cases["live_room"]
    assert len(got["data"]["positionUser"]) >= 2  # the patients, newest row per name, and the Guest with a position
    # asked with the identity of a user the room knows: that identity and its colour in the token
    rows = await original.query_rows(
        source,
        "SELECT identity, userName, color FROM room_user WHERE room = %s AND userType = 'user' ORDER BY id LIMIT 1",
        (cases["live_room"],),
    )
    assert rows, cases["live_room"]
    reply = await _get(edge, "/link/getdetail", linkId=cases["live_link"], identity=rows[0]["identity"])
    data = reply.json()["data"]
    assert data["identity"] == rows[0]["identity"] and data["color"] == rows[0]["color"], data


@pytest.mark.parametrize(
    "case", ["second_position_link", "zero_date_link", "orphan_room_user_link", "expired_link", "one_time_used",
             "room_missing_link", "null_room_link"],
)  # fmt: skip
async def test_getdetail_of_edge_case_links_answers_as_the_original(
    case: str, migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    await _compare_detail(migrated, edge, source, migrated.filled.cases[case])


async def test_getdetail_of_a_link_without_user_name_generates_one_like_the_original(
    migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    await _compare_detail(migrated, edge, source, migrated.filled.cases["null_username_link"])


async def test_getdetail_of_a_password_link_gives_no_token(
    migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    await _compare_detail(migrated, edge, source, migrated.filled.cases["password_link"][0])


async def test_getdetail_of_an_unused_one_time_link_answers_once(
    migrated: Migrated, edge: httpx.AsyncClient, source: Any
) -> None:
    link_id = migrated.filled.cases["one_time_unused"]
    await _compare_detail(migrated, edge, source, link_id)
    # deliberate difference (README): the suite marks a one-time link used on first use; the original never did
    again = (await _get(edge, "/link/getdetail", linkId=link_id)).json()
    assert again == {"status": "FAIL", "message": "linkID expired"}, again


async def test_getdetail_of_duplicated_link_ids(migrated: Migrated, edge: httpx.AsyncClient, whole_source: Any) -> None:
    cases = migrated.filled.cases
    # the original found two rows and answered "invalid linkID" (ORIGINAL_DEFECTS["duplicate_link"]); the suite's
    # link IDs are unique (README): the copy kept the lowest id, which getdetail answers like any link
    for link_id in (cases["duplicate_link"], *cases["case_twin_links"]):
        assert await original.link_detail(whole_source, link_id, _now()) == {
            "status": "FAIL", "message": "invalid linkID"
        }  # fmt: skip
    kept = await original.query_rows(
        whole_source, "SELECT mobile FROM link_connect WHERE BINARY linkID = %s ORDER BY id LIMIT 1",
        (cases["duplicate_link"],),
    )  # fmt: skip
    got = (await _get(edge, "/link/getdetail", linkId=cases["duplicate_link"])).json()
    assert got["status"] == "OK" and got["data"]["mobile"] == kept[0]["mobile"], got
    low, high = cases["case_twin_links"]
    for link_id in (low, high):  # one row carried; utf8mb4_unicode_ci finds it by either spelling
        got = (await _get(edge, "/link/getdetail", linkId=link_id)).json()
        assert got["status"] == "OK" and got["data"]["linkID"] == low, got


async def test_a_migrated_md5_password_works_and_is_rehashed_on_its_first_success(
    migrated: Migrated, edge: httpx.AsyncClient
) -> None:
    """Passwords are carried as the original stored them (MD5), none re-hashed in bulk; the first right password
    through the edge is accepted and re-hashes that one link's (the rest stay MD5 until theirs)."""
    link_id, secret = migrated.filled.cases["password_link"]
    link_db = migrated.local.db_name("link")

    async def stored() -> str:
        rows = await query(link_db, "SELECT password FROM link_connect WHERE BINARY linkID = %s", (link_id,))
        return str(rows[0]["password"])

    carried = await stored()
    assert carried == hashlib.md5(secret.encode()).hexdigest()  # noqa: S324 - the original's stored hash
    wrong = await edge.post("/auth/verifyuser", json={"linkID": link_id, "password": secret + "x"})
    assert wrong.json() == {"status": "FAIL", "message": "invalid id or password"}
    assert await stored() == carried
    right = await edge.post("/auth/verifyuser", json={"linkID": link_id, "password": secret})
    assert right.json()["status"] == "OK", right.text
    assert (await stored()).startswith("$argon2")
    still_md5 = await query(link_db, "SELECT COUNT(*) AS n FROM link_connect WHERE password REGEXP '^[0-9a-f]{32}$'")
    assert still_md5[0]["n"] > 0  # every other link keeps its MD5 until its own first check

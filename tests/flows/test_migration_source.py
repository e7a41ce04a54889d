"""The legacy source the migration flow starts from (tests/legacy.py): the original's schema builds on this
MariaDB with only the documented adaptations, the generator is deterministic and plants every edge case the
migration must carry or report, and the original's answers (tests/legacy_answers.py) come out of it as the
original computed them. Needs MariaDB only (no suite); a few seconds.

``LEGACY_PRODUCTION=1`` also fills the production scale (~112k links) and checks it takes well under a minute.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from tests.legacy import ADAPTATIONS, COLUMNS, PRODUCTION, SMALL, Dsn, Filled, build, drop_source
from tests.legacy_answers import link_detail, room_picture, stats_generate, stats_user

ROOT_DSN = "mysql://root@127.0.0.1:3306/"


def _dsn(label: str) -> Dsn:
    return Dsn.parse(f"{ROOT_DSN}t{uuid.uuid4().hex[:8]}_{label}")  # the harness's prefix form: no clash in parallel


@pytest.fixture(scope="module")
async def source() -> AsyncIterator[tuple[Dsn, Filled]]:
    dsn = _dsn("legacy")
    filled = await build(dsn, SMALL, seed=7)
    yield dsn, filled
    await drop_source(dsn)


async def _query(dsn: Dsn, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = await dsn.connect()
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall())
    finally:
        conn.close()


async def _one(dsn: Dsn, sql: str, args: tuple[Any, ...] = ()) -> Any:
    return (await _query(dsn, sql, args))[0][0]


async def test_the_original_schema_builds_with_only_the_collation_adapted(source: tuple[Dsn, Filled]) -> None:
    dsn, _ = source
    columns = await _query(
        dsn,
        "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, COLLATION_NAME, COLUMN_DEFAULT FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION",
        (dsn.database,),
    )
    by_table: dict[str, list[str]] = {}
    for table, column, *_ in columns:
        by_table.setdefault(table, []).append(column)
    assert {t: tuple(c) for t, c in by_table.items()} == {t: tuple(c) for t, c in COLUMNS.items()}
    kinds = {(t, c): (ty, coll, default) for t, c, ty, coll, default in columns}
    # the one adaptation: MySQL 8's utf8mb4_0900_ai_ci (files, usage_status_log) -> MariaDB's uca1400_nopad_ai_ci
    assert [a[0] for a in ADAPTATIONS] == ["utf8mb4_0900_ai_ci"]
    assert kinds[("files", "linkId")][1] == kinds[("usage_status_log", "linkID")][1] == "utf8mb4_uca1400_nopad_ai_ci"
    assert kinds[("link_connect", "linkID")][1] == "utf8mb4_unicode_ci"
    # what MariaDB took as the dump wrote it: expression defaults, unsigned decimals, NOT NULL without default
    assert kinds[("notification", "dtmCreated")][2] == kinds[("car_track", "dtmCreated")][2] == "current_timestamp()"
    assert kinds[("link_connect", "patientLatitude")][0] == "decimal(12,9) unsigned"
    assert kinds[("room_user", "dtmupdated")][2] is None
    keys = await _query(
        dsn,
        "SELECT TABLE_NAME, REFERENCED_TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s"
        " AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY TABLE_NAME",
        (dsn.database,),
    )
    assert keys == [("link_connect", "room_user"), ("room_conference", "node_livekit")]


async def test_the_generator_is_deterministic(source: tuple[Dsn, Filled]) -> None:
    dsn, filled = source
    again = _dsn("legacy2")
    try:
        second = await build(again, SMALL, seed=7)
        assert second.counts == filled.counts and second.cases == filled.cases
        tables = ", ".join(f"`{t}`" for t in COLUMNS)
        sums = [row[1] for row in await _query(again, f"CHECKSUM TABLE {tables}")]
        assert sums == [row[1] for row in await _query(dsn, f"CHECKSUM TABLE {tables}")]
        assert all(sums)
    finally:
        await drop_source(again)


async def test_rows_look_like_production_in_proportion(source: tuple[Dsn, Filled]) -> None:
    dsn, filled = source
    counts = filled.counts
    assert 3.4 <= counts["link_connect"] / counts["room_conference"] <= 4.4  # 112k links for 29k rooms
    kinds = dict(await _query(dsn, "SELECT linkType, COUNT(*) FROM link_connect GROUP BY linkType"))
    assert {"video", "location", "conference", "hls", "agentCar", "userTracking"} <= set(kinds)
    assert await _one(dsn, "SELECT COUNT(*) FROM link_connect WHERE share = 1") == 2 * counts["room_conference"]
    assert await _one(dsn, "SELECT COUNT(*) FROM link_connect WHERE isAdmin = '1'") > 0
    # every usage row of a link names an existing link; rooms' users, cases and webhooks point at real rooms
    assert await _one(
        dsn, "SELECT COUNT(*) FROM usage_status_log u WHERE linkID != '' AND NOT EXISTS"
        " (SELECT 1 FROM link_connect l WHERE l.linkID = u.linkID COLLATE utf8mb4_unicode_ci)"
    ) == 0  # fmt: skip
    assert await _one(dsn, "SELECT COUNT(*) FROM case_data c LEFT JOIN room_conference r ON r.id = c.roomId"
                           " WHERE r.id IS NULL") == 0  # fmt: skip
    published = await _one(dsn, "SELECT COUNT(*) FROM data_log WHERE JSON_VALUE(data, '$.event') = 'track_published'")
    assert published > 0
    assert await _one(dsn, "SELECT COUNT(*) FROM data_log WHERE JSON_VALUE(data, '$.event') = 'track_published'"
                           " AND JSON_VALUE(data, '$.participant.identity') IN (SELECT identity FROM room_user)"
                           ) == published  # fmt: skip
    assert await _one(dsn, "SELECT COUNT(*) FROM room_conference WHERE status = 'close' AND dtmExpired < NOW()") > 0
    assert await _one(dsn, "SELECT COUNT(*) FROM files f JOIN link_connect l"
                           " ON l.linkID = f.linkId COLLATE utf8mb4_unicode_ci") > 0  # fmt: skip


async def test_the_edge_cases_are_planted(source: tuple[Dsn, Filled]) -> None:
    dsn, filled = source
    cases = filled.cases
    zero = "CAST(%s AS CHAR) = '0000-00-00 00:00:00'"
    for table, column in (("link_connect", "dtmExpired"), ("link_connect", "dtmDisconnect"),
                          ("room_conference", "agentSeen"), ("room_user", "dtmupdated"),
                          ("record_media", "endRecord"), ("car_track", "dtmStarted")):  # fmt: skip
        assert await _one(dsn, f"SELECT COUNT(*) FROM `{table}` WHERE {zero % f'`{column}`'}") >= 1, (table, column)  # noqa: S608
    assert await _one(dsn, "SELECT COUNT(*) FROM chat_message WHERE text LIKE %s AND text LIKE %s", ("%หายใจ%", "%😷%"))
    assert await _one(dsn, "SELECT COUNT(*) FROM chat_message WHERE files IS NULL") >= 0
    assert await _one(dsn, "SELECT COUNT(*) FROM link_connect WHERE linkID IS NULL") == 1
    assert await _one(dsn, "SELECT COUNT(*) FROM link_connect WHERE room IS NULL") >= 1
    assert await _one(dsn, "SELECT oneTimeLink FROM link_connect WHERE linkID = %s", (cases["one_time_unused"],)) == 1
    assert await _one(dsn, "SELECT oneTimeLink FROM link_connect WHERE linkID = %s", (cases["one_time_used"],)) == 2
    link_id, secret = cases["password_link"]
    stored = await _query(dsn, "SELECT requirePassword, password FROM link_connect WHERE linkID = %s", (link_id,))
    assert stored == [(1, hashlib.md5(secret.encode()).hexdigest())]
    assert (
        await _one(dsn, "SELECT COUNT(*) FROM link_connect WHERE BINARY linkID = %s", (cases["duplicate_link"],)) == 2
    )
    low, high = cases["case_twin_links"]
    assert low != high and low.lower() == high.lower()
    assert await _one(dsn, "SELECT COUNT(*) FROM link_connect WHERE linkID = %s", (low,)) == 2  # unicode_ci: equal
    assert await _one(dsn, "SELECT COUNT(*) FROM link_connect l LEFT JOIN room_user u ON u.id = l.roomUserId"
                           " WHERE l.roomUserId IS NOT NULL AND u.id IS NULL") >= 1  # fmt: skip
    assert await _one(dsn, "SELECT COUNT(*) FROM link_connect l LEFT JOIN room_conference r ON r.room = l.room"
                           " WHERE l.linkID = %s AND r.id IS NULL", (cases["room_missing_link"],)) == 1  # fmt: skip
    # wider than the suite's read models: stats_participant.userType varchar(10), room columns varchar(50),
    # room_file_view.linkId varchar(100) NOT NULL
    assert await _one(dsn, "SELECT MAX(CHAR_LENGTH(userType)) FROM room_user") > 10
    assert await _one(dsn, "SELECT MAX(CHAR_LENGTH(room)) FROM room_user") > 50
    assert await _one(dsn, "SELECT MAX(CHAR_LENGTH(linkId)) FROM files") > 100
    assert await _one(dsn, "SELECT COUNT(*) FROM files WHERE linkId IS NULL") == 1
    assert await _one(dsn, "SELECT COUNT(*) FROM data_log WHERE data IS NULL") >= 0
    assert await _one(dsn, "SELECT COUNT(*) FROM room_conference WHERE room = %s AND status = 'open'"
                           " AND dtmExpired < NOW()", (cases["open_but_expired_room"],)) == 1  # fmt: skip


async def test_the_originals_answers_from_the_source(source: tuple[Dsn, Filled]) -> None:
    dsn, filled = source
    cases, now = filled.cases, datetime.now()
    conn = await dsn.connect()
    try:
        live = await link_detail(conn, cases["live_link"], now)
        assert live["status"] == "OK" and live["data"]["room"] == cases["live_room"], live
        assert live["data"]["expected_token"]["room"] == cases["live_room"]
        assert live["data"]["positionUser"], live  # the room's patients with positions (nulls as 0)
        assert await link_detail(conn, cases["duplicate_link"], now) == {"status": "FAIL", "message": "invalid linkID"}
        assert (await link_detail(conn, cases["case_twin_links"][1], now))["message"] == "invalid linkID"
        assert await link_detail(conn, cases["one_time_used"], now) == {"status": "FAIL", "message": "linkID expired"}
        assert (await link_detail(conn, cases["expired_link"], now))["data"]["status"] == "linkExpired"
        zero = await link_detail(conn, cases["zero_date_link"], now)
        assert zero["status"] == "OK" and zero["data"]["dtmExpired"] is None
        assert "expected_token" not in (await link_detail(conn, cases["password_link"][0], now))["data"]
        assert (await link_detail(conn, cases["room_missing_link"], now))["message"] == "invalid room"
        # the original's own /room/picture query mixes collations: MariaDB refuses it as MySQL 8 did
        room = cases["picture_room"]
        assert await room_picture(conn, room, "http://api") == (
            404, {"status": "FAIL", "message": "No pictures found for this room"}
        )  # fmt: skip
        status, body = await room_picture(conn, room, "http://api", intended=True)
        assert status == 200 and body["data"] and body["data"][0]["url"].startswith("http://api/")
        report = (await stats_generate(conn))[0]
        assert any(item["video"] or item["audio"] for item in report) or not report
        (mobile,) = (await _query(dsn, "SELECT userName FROM room_user WHERE userType = 'user' ORDER BY id LIMIT 1"))[0]
        assert "track_logs" in await stats_user(conn, mobile)
    finally:
        conn.close()


@pytest.mark.skipif(not os.environ.get("LEGACY_PRODUCTION"), reason="LEGACY_PRODUCTION=1 fills ~112k links")
async def test_the_production_scale_fills_well_under_a_minute() -> None:
    dsn = _dsn("legacyprod")
    try:
        started = time.monotonic()
        filled = await build(dsn, PRODUCTION, seed=1)
        elapsed = time.monotonic() - started
        assert 100_000 <= filled.counts["link_connect"] <= 125_000
        assert 27_000 <= filled.counts["room_conference"] <= 31_000
        assert 27_000 <= filled.counts["data_log"] <= 27_010  # plus the planted edge-case webhooks
        assert 90_000 <= filled.counts["usage_status_log"] <= 125_000
        assert elapsed < 45, elapsed
    finally:
        await drop_source(dsn)

"""A rebuild writes a page of rows as multi-row statements (Connection.execute_rows); each read model must end
exactly as with the consumers' single-row statements applied row by row: a page mixing new rows, rows a newer event
wrote (kept, only their missing columns filled) and rows an older write left (overwritten), on two databases
migrated alike, one written row by row and one page at a time."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from servicekit.db import Connection, Database, migrate
from servicekit.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
PAGE, OLDER, NEWER = 1_000_000, 1_000, 9_000_000  # versions: the page's, a row older, a row newer than the page
NOW = datetime(2024, 5, 6, 7, 8, 9)  # noqa: DTZ001 - local time, as now_local()


@asynccontextmanager
async def migrated(suite: Any, service: str) -> AsyncIterator[Database]:
    name = f"{suite.db_name('kit')}_{uuid.uuid4().hex[:6]}"
    db = await Database.connect(CommonSettings(service_name="kittest", mysql_database=name))
    try:
        await migrate(db, ROOT / "services" / service / service / "migrations")
        yield db
    finally:
        await db.execute(f"DROP DATABASE `{name}`")  # noqa: S608 - generated test name
        await db.close()


async def both_ways(
    suite: Any,
    service: str,
    seed: list[tuple[str, tuple[Any, ...]]],
    row_by_row: Callable[[Connection], Awaitable[None]],
    page: Callable[[Connection], Awaitable[None]],
    select: str,
) -> list[dict[str, Any]]:
    """``seed`` then ``row_by_row`` on one database, ``seed`` then ``page`` on another; the rows ``select`` reads
    must be the same (but for AUTO_INCREMENT ids; ``select`` orders by them where a table has them). Returns them."""
    results = []
    for write in (row_by_row, page):
        async with migrated(suite, service) as db:
            async with db.transaction() as conn:
                for sql, args in seed:
                    await conn.execute(sql, args)
                await write(conn)
            # AUTO_INCREMENT ids: the same order, but a single-row upsert that updates uses up an id, so the gaps
            # differ (the ids only order rows: "first seen")
            results.append([{k: v for k, v in row.items() if k != "id"} for row in await db.fetch_all(select)])
    assert results[0] == results[1]
    return results[0]


async def test_stats_link_and_car_room_link_pages_end_as_row_by_row(suite: Any) -> None:
    from telemetry.repository import statistics, tasks

    links = [  # a row newer than the page (userName missing), one older, one new; columns differ per run
        ("L1", {"room": "page", "mobile": "0811", "userName": "Page", "latitude": 13.5}),
        ("L2", {"room": "page", "mobile": "0812", "userName": "Page", "latitude": 13.5}),
        ("L3", {"room": "page", "mobile": "0813", "userName": "Page", "latitude": 13.5}),
        ("L4", {"room": "page", "mobile": "0814"}),
        ("L5", {"room": "page", "mobile": "0815", "userName": "Page", "latitude": 13.5}),
    ]
    seed = [
        (
            "INSERT INTO stats_link (linkID, room, mobile, userName, version) VALUES ('L1', 'live', '0999', NULL, %s),"
            " ('L2', 'old', '', 'Old', %s), ('L4', 'live', '0777', NULL, %s)",
            (NEWER, OLDER, NEWER),
        )
    ]

    async def row_by_row(conn: Connection) -> None:
        for link_id, values in links:
            await statistics.upsert_link(conn, link_id, values, PAGE)

    rows = await both_ways(
        suite, "telemetry", seed, row_by_row, lambda conn: statistics.upsert_links(conn, links, PAGE),
        "SELECT * FROM stats_link ORDER BY id",
    )  # fmt: skip
    by_id = {row["linkID"]: row for row in rows}
    assert [row["linkID"] for row in rows] == ["L1", "L2", "L4", "L3", "L5"]
    assert (by_id["L1"]["room"], by_id["L1"]["mobile"], by_id["L1"]["userName"]) == ("live", "0999", "Page")
    assert (by_id["L2"]["room"], by_id["L2"]["mobile"], by_id["L2"]["version"]) == ("page", "0812", PAGE)
    assert (by_id["L1"]["version"], by_id["L4"]["room"], by_id["L4"]["mobile"]) == (NEWER, "live", "0777")

    car_seed = [
        (
            "INSERT INTO car_room_link (linkID, room, userType, userName, mobile, latitude, version) VALUES"
            " ('C1', 'live', 'user', 'Live', '0999', NULL, %s), ('C2', 'old', 'user', 'Old', '0888', 1.5, %s)",
            (NEWER, OLDER),
        )
    ]
    created = [
        {"linkID": c, "room": "page", "userType": "user", "service": 2, "userName": "Page", "mobile": "0811"}
        for c in ("C1", "C2", "C3", "C4")
    ]
    positions = [(c, "page", "user", 13.5, 100.5) for c in ("C1", "C2", "C3")]
    picks = [(c, "page", "user", 14.5, 101.5) for c in ("C1", "C4")]

    async def car_row_by_row(conn: Connection) -> None:
        for link in created:
            await tasks.save_link(conn, link, NOW, PAGE)
            for point in positions:
                if point[0] == link["linkID"]:
                    await tasks.set_link_position(conn, *point, NOW, PAGE)
            for point in picks:
                if point[0] == link["linkID"]:
                    await tasks.set_link_pick(conn, *point, NOW, PAGE)

    cars = await both_ways(
        suite, "telemetry", car_seed, car_row_by_row,
        # a page's points carry link's row id too (None here: these links are keyed by linkID)
        lambda conn: tasks.save_links(
            conn, created, [(c, None, *rest) for c, *rest in positions], [(c, None, *rest) for c, *rest in picks],
            NOW, PAGE,
        ),
        "SELECT * FROM car_room_link ORDER BY id",
    )  # fmt: skip
    assert [c["linkID"] for c in cars] == ["C1", "C2", "C3", "C4"]
    assert (cars[0]["room"], cars[0]["latitude"] is not None, cars[0]["version"]) == ("live", True, NEWER)
    assert (cars[1]["room"], float(cars[1]["latitude"]), cars[1]["version"]) == ("page", 13.5, PAGE)


async def test_car_room_pages_end_as_row_by_row(suite: Any) -> None:
    from telemetry.repository import tasks

    rooms = [("R1", 1), ("R2", 2), ("R3", 3)]
    seed = [("INSERT INTO car_room (room, service, version) VALUES ('R1', 9, %s), ('R2', 9, %s)", (NEWER, OLDER))]

    async def row_by_row(conn: Connection) -> None:
        for room, service in rooms:
            await tasks.save_room_service(conn, room, service, NOW, PAGE)

    rows = await both_ways(
        suite, "telemetry", seed, row_by_row, lambda conn: tasks.save_room_services(conn, rooms, NOW, PAGE),
        "SELECT room, service, version FROM car_room ORDER BY room",
    )  # fmt: skip
    assert [(r["room"], r["service"]) for r in rows] == [("R1", 9), ("R2", 2), ("R3", 3)]


async def test_room_setting_pages_end_as_row_by_row(suite: Any) -> None:
    from recording import repository

    settings = [
        (room, {"autoRecord": 1, "recordType": "page", "encodingOptionsPreset": "p", "service": None, "status": "open"})
        for room in ("R1", "R2", "R3")
    ]
    seed = [
        (
            "INSERT INTO room_setting (room, autoRecord, recordType, encodingOptionsPreset, service, status, version)"
            " VALUES ('R1', 0, 'live', 'l', 7, 'live', %s), ('R2', 0, 'old', 'o', 8, 'old', %s)",
            (NEWER, OLDER),
        )
    ]

    async def row_by_row(conn: Connection) -> None:
        for room, setting in settings:
            await repository.upsert_room_setting(conn, room, setting, PAGE)

    rows = await both_ways(
        suite, "recording", seed, row_by_row, lambda conn: repository.upsert_room_settings(conn, settings, PAGE),
        "SELECT room, autoRecord, recordType, encodingOptionsPreset, service, status, version FROM room_setting"
        " ORDER BY room",
    )  # fmt: skip
    assert [(r["recordType"], r["service"], r["version"]) for r in rows] == [
        ("live", 7, NEWER), ("page", 8, PAGE), ("page", None, PAGE)
    ]  # fmt: skip


async def test_room_view_and_room_link_view_pages_end_as_row_by_row(suite: Any) -> None:
    from link.repository import readmodels

    rooms = [({"room": r, "id": i, "status": "open", "roomType": "t"}, r, 1, True) for i, r in enumerate("ABC")]
    seed = [
        (
            "INSERT INTO room_view (room, id, status, roomType, detail, complete, version) VALUES"
            " ('A', 90, 'live', 'x', '{}', 1, %s), ('B', 91, 'old', 'x', '{}', 0, %s)",
            (NEWER, OLDER),
        )
    ]

    async def row_by_row(conn: Connection) -> None:
        for detail, room, node, default in rooms:
            await readmodels.store_room(
                conn, detail, room=room, node_id=node, uses_default_key=default, complete=False, version=PAGE
            )

    rows = await both_ways(
        suite, "link", seed, row_by_row,
        lambda conn: readmodels.store_rooms(conn, rooms, complete=False, version=PAGE),
        "SELECT * FROM room_view ORDER BY room",
    )  # fmt: skip
    assert [(r["status"], r["complete"], r["version"]) for r in rows] == [
        ("live", 1, NEWER), ("open", 0, PAGE), ("open", 0, PAGE)
    ]  # fmt: skip

    from conference.repository import pictures

    pairs = [("k1", "A"), ("k2", "B")]

    async def links_row_by_row(conn: Connection) -> None:
        for link_id, room in pairs:
            await pictures.save_link_room(conn, link_id, room)

    seen = await both_ways(
        suite, "conference", [("INSERT INTO room_link_view (linkID, room) VALUES ('k1', 'Z')", ())], links_row_by_row,
        lambda conn: pictures.save_link_rooms(conn, pairs), "SELECT linkID, room FROM room_link_view ORDER BY linkID",
    )  # fmt: skip
    assert seen == [{"linkID": "k1", "room": "A"}, {"linkID": "k2", "room": "B"}]

"""`just migrate`'s guarantees on a generated legacy source (tests/legacy.py, the original's schema): every row
carried or reported, the source never written, a rerun changes nothing, ``kill -9`` mid-table then a rerun
gives the same result, ``--catch-up`` carries inserts, updates and deletes made since, ``--verify`` fails on a
corrupted target row. Needs MariaDB only: the targets are databases of their own (no suite, no rebuild)."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import subprocess
import sys
import uuid
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.local import free_port
from deploy.migrate import Options, default_targets, run
from deploy.migrate.db import Dsn, connect_source, uncached_statistics
from deploy.migrate.engine import Refused
from deploy.migrate.plan import SERVICES, TABLES
from tests.legacy import SMALL, build, drop_source
from tests.legacy import Dsn as LegacyDsn

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Setup:
    source: Dsn
    prefix: str
    filled: Any

    def options(self, **extra: Any) -> Options:
        return Options(source=self.source, targets=default_targets(self.prefix, {}), out=io.StringIO(), **extra)

    def argv(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "deploy.migrate", "--source", str(self.source), "--db-prefix", self.prefix,
                "--no-rebuild", *extra]  # fmt: skip


async def query(dsn: Dsn, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = await LegacyDsn.parse(f"mysql://root@127.0.0.1:3306/{dsn.database}").connect()
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall())
    finally:
        conn.close()


async def drop_targets(prefix: str) -> None:
    for dsn in default_targets(prefix, {}).values():
        await drop_source(LegacyDsn.parse(f"mysql://root@127.0.0.1:3306/{dsn.database}"))


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    label = uuid.uuid4().hex[:8]
    source = Dsn.parse(f"mysql://root@127.0.0.1:3306/t{label}_legacy")
    filled = await build(str(source), SMALL, seed=11)
    prefix = f"t{label}_m_"
    yield Setup(source, prefix, filled)
    await drop_source(str(source))
    await drop_targets(prefix)


async def source_fingerprint(source: Dsn) -> dict[str, Any]:
    """CHECKSUM TABLE of every source table: any write to the source would change one."""
    names = ", ".join(f"`{plan.name}`" for plan in TABLES)
    return {row[0]: row[1] for row in await query(source, f"CHECKSUM TABLE {names}")}


async def cli(argv: list[str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, stdout=PIPE, stderr=PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 300)
    return process.returncode or 0, out.decode(), err.decode()


def report_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


async def test_copy_carries_every_row_verifies_and_a_rerun_changes_nothing(setup: Setup, tmp_path: Path) -> None:
    before = await source_fingerprint(setup.source)
    report = tmp_path / "report.csv"
    outcome = await run(setup.options(report=report))
    assert await source_fingerprint(setup.source) == before  # the source was only read

    scanned = {r.table: r.scanned for r in outcome.results}
    assert scanned == {table: count for table, count in setup.filled.counts.items() if table in scanned}
    assert all(r.source_rows == r.scanned for r in outcome.results)

    # every row not carried is in the report, with why; here the planted second row of an existing linkID
    rows = report_rows(report)
    not_carried = [r for r in rows if r["outcome"] == "not carried"]
    assert not_carried and {r["reason"] for r in not_carried} == {"duplicate linkID"}
    assert sum(len(r.not_carried) for r in outcome.results) == len(not_carried)
    assert any(r["reason"] == "carried, orphan" for r in rows)  # carried and noted, not dropped

    checks = await run(setup.options(verify_only=True))
    assert [c.table for c in checks.checks if not c.ok] == []
    assert sum(c.target_rows for c in checks.checks) == sum(setup.filled.counts[p.name] for p in TABLES) - len(
        not_carried
    )

    # Thai text, emoji and zero dates arrive byte for byte
    link = default_targets(setup.prefix, {})["link"]
    text = "SELECT id, userName FROM link_connect WHERE userName LIKE '%%🚑%%' OR userName REGEXP '[ก-๙]' ORDER BY id"
    source_text = await query(setup.source, text)
    assert source_text and await query(link, text) == source_text
    zero = "SELECT COUNT(*) FROM link_connect WHERE CAST(dtmDisconnect AS CHAR) = '0000-00-00 00:00:00'"
    assert (await query(setup.source, zero))[0][0] > 0
    assert (await query(link, zero)) == (await query(setup.source, zero))

    again = await run(setup.options())
    assert sum(r.written + r.deleted for r in again.results) == 0
    assert {r.state for r in again.results} == {"done earlier"}


async def test_kill_9_mid_table_then_rerun_gives_the_same_result(setup: Setup) -> None:
    link = default_targets(setup.prefix, {})["link"]
    argv = setup.argv("--batch-size", "7", "--table", "usage_status_log")
    process = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, stdout=DEVNULL, stderr=DEVNULL)
    try:
        for _ in range(600):  # until the copy is inside the table: some chunks committed, not all
            await asyncio.sleep(0.02)
            try:
                state = await query(link, "SELECT lastKey, complete FROM migration_checkpoint "
                                          "WHERE tableName = 'usage_status_log'")  # fmt: skip
            except Exception:  # noqa: BLE001 - the target database or table is not there yet
                continue
            if state and state[0][0] is not None and state[0][1] == 0:
                break
        else:
            pytest.fail("the copy never got inside usage_status_log")
        process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(process.wait(), 10)
    finally:
        if process.returncode is None:
            process.kill()
    copied = (await query(link, "SELECT COUNT(*) FROM usage_status_log"))[0][0]
    assert 0 < copied < setup.filled.counts["usage_status_log"]  # killed mid-table, indeed

    code, out, err = await cli(argv)
    assert code == 0, err
    assert "resumed" in out
    code, out, err = await cli(setup.argv("--verify", "--table", "usage_status_log"))
    assert code == 0, out + err
    assert (await query(link, "SELECT COUNT(*), COUNT(DISTINCT id) FROM usage_status_log"))[0] == (
        setup.filled.counts["usage_status_log"],
    ) * 2


async def test_catch_up_carries_changes_since_and_verify_fails_on_a_corrupted_row(setup: Setup) -> None:
    await run(setup.options())
    targets = default_targets(setup.prefix, {})
    conn = await LegacyDsn.parse(f"mysql://root@127.0.0.1:3306/{setup.source.database}").connect()
    try:
        async with conn.cursor() as cur:  # the old gateway goes on serving: rows added, changed, deleted
            await cur.execute("SELECT MIN(id), MAX(id) FROM link_connect")
            first, last = await cur.fetchone()
            await cur.execute("UPDATE link_connect SET enabled = 0, userName = 'แก้ไขแล้ว ✅' WHERE id = %s", (first,))
            await cur.execute("INSERT INTO link_connect (id, linkID, mobile, room, dtmCreated) VALUES "
                              "(%s, 'CatchUpNew1', '0899999999', 'CatchUpRoom', NOW())", (last + 1,))  # fmt: skip
            await cur.execute("SELECT MAX(notificationId) FROM notification")
            (gone,) = await cur.fetchone()
            await cur.execute("DELETE FROM notification WHERE notificationId = %s", (gone,))
            await cur.execute("UPDATE case_data SET status = 'closed' ORDER BY id LIMIT 3")
    finally:
        conn.close()

    outcome = await run(setup.options(catch_up=True))
    by_table = {r.table: r for r in outcome.results}
    assert by_table["link_connect"].written == 2
    assert by_table["notification"].deleted == 1
    assert 1 <= by_table["case_data"].written <= 3
    assert sum(r.written + r.deleted for t, r in by_table.items() if t not in {"link_connect", "notification",
                                                                                "case_data"}) == 0  # fmt: skip
    assert await query(targets["link"], "SELECT enabled, userName FROM link_connect WHERE id = %s", (first,)) == [
        (0, "แก้ไขแล้ว ✅")
    ]
    assert await query(targets["conference"], "SELECT COUNT(*) FROM notification WHERE notificationId = %s",
                       (gone,)) == [(0,)]  # fmt: skip
    assert all(c.ok for c in (await run(setup.options(verify_only=True))).checks)

    # one corrupted target row: --verify names it and exits 1
    await query(targets["telemetry"], "UPDATE car_track SET mobile = '0000000000' ORDER BY id LIMIT 1")
    code, out, _ = await cli(setup.argv("--verify"))
    assert code == 1, out
    assert [line for line in out.splitlines() if "DIFFERENT" in line][0].startswith("| car_track |")


async def test_a_value_the_target_refuses_is_reported_and_the_rest_carried(setup: Setup, tmp_path: Path) -> None:
    # A source whose column was widened by hand (schema drift): the suite's narrower column refuses the value.
    conn = await LegacyDsn.parse(f"mysql://root@127.0.0.1:3306/{setup.source.database}").connect()
    try:
        async with conn.cursor() as cur:
            await cur.execute("ALTER TABLE car_track MODIFY `uid` varchar(40) DEFAULT NULL")
            await cur.execute("SELECT MIN(id) FROM car_track")
            (key,) = await cur.fetchone()
            await cur.execute("UPDATE car_track SET uid = %s WHERE id = %s", ("x" * 30, key))
    finally:
        conn.close()
    report = tmp_path / "report.csv"
    outcome = await run(setup.options(report=report, tables=("car_track",)))
    (result,) = outcome.results
    assert [(n.key, n.reason) for n in result.not_carried] == [(str(key), "refused by the target")]
    assert "Data too long" in result.not_carried[0].detail
    assert result.written == setup.filled.counts["car_track"] - 1
    assert [r["key"] for r in report_rows(report) if r["outcome"] == "not carried"] == [str(key)]
    checks = await run(setup.options(verify_only=True, tables=("car_track",)))
    assert not checks.verified  # a refused row is a difference until someone decides about it


async def test_a_copy_whose_read_models_cannot_be_rebuilt_says_so(setup: Setup) -> None:
    argv = [a for a in setup.argv("--table", "color_scheme") if a != "--no-rebuild"]
    code, out, err = await cli([*argv, "--nats-url", f"nats://127.0.0.1:{free_port()}"])  # nobody listens there
    assert code == 3, out + err
    assert "| color_scheme |" in out and "NOT rebuilt" in err and "just rebuild-read-models all" in err


def test_help_explains_the_command() -> None:
    out = subprocess.run([sys.executable, "-m", "deploy.migrate", "--help"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "120"}, timeout=60)  # fmt: skip
    assert out.returncode == 0
    for word in ("--source", "--catch-up", "--verify", "--report", "READ ONLY", "kill -9", "--final", "--force",
                 "5 refused", *SERVICES):  # fmt: skip
        assert word in out.stdout


def test_a_copy_whose_read_models_cannot_hold_a_row_names_it_and_exits_4(monkeypatch, capsys) -> None:
    # the services' replies as servicekit.rebuild builds them (tests/platform/test_servicekit_rebuild.py makes one
    # for real); here what the migration command does with them
    from deploy.migrate import __main__ as command
    from servicekit.rebuild import RebuildSummary, RebuiltModel

    def summaries(left: int) -> list[RebuildSummary]:
        rows = [f"room_users R{n}/x: room has 120 characters (column: 100)" for n in range(min(left, 2))]
        model = RebuiltModel(readModel="stats_participant", rows=5, seconds=0.5, notRebuilt=left, notRebuiltRows=rows)
        return [RebuildSummary(service="telemetry", readModels=[model])]

    for left, status in ((0, 0), (3, 4)):

        async def rebuild(services: list[str], nats_url: str, left: int = left) -> list[RebuildSummary]:
            assert services == ["all"] and nats_url == "nats://suite:4222"
            return summaries(left)

        monkeypatch.setattr(command, "rebuild", rebuild)
        assert command.rebuild_read_models("nats://suite:4222") == status
        err = capsys.readouterr().err
        assert ("NOT REBUILT: 3 rows" in err) is bool(left)
        if left:
            assert "not rebuilt: telemetry.stats_participant: room_users R1/x: room has 120 characters" in err
            assert "not rebuilt: telemetry.stats_participant: 1 more (see its log)" in err


# ---- the guards: a copy or catch-up never silently deletes or overwrites what the suite stored ------------------
async def _checkpoints(target: Dsn) -> dict[str, Any]:
    return dict(await query(target, "SELECT tableName, dtmFinal FROM migration_checkpoint"))


async def test_after_the_final_catch_up_a_catch_up_is_refused_unless_forced(setup: Setup) -> None:
    targets = default_targets(setup.prefix, {})
    await run(setup.options())
    final = await run(setup.options(final=True))
    assert {r.state for r in final.results} == {"copied"}  # a new pass over every table
    marks = {t: v for service in SERVICES for t, v in (await _checkpoints(targets[service])).items()}
    assert set(marks) == {p.name for p in TABLES} and None not in marks.values(), marks
    # the old gateway is stopped, yet a change reaches the source (a forgotten writer): a refused run carries nothing
    await query(setup.source, "UPDATE car_track SET userName = 'after cutover' ORDER BY id LIMIT 1")

    with pytest.raises(Refused) as refused:
        await run(setup.options(catch_up=True))
    assert {r.table for r in refused.value.refusals} == {p.name for p in TABLES}
    assert all("final catch-up" in r.reason for r in refused.value.refusals)
    code, _, err = await cli(setup.argv("--catch-up"))
    assert code == 5 and "REFUSED, nothing written" in err and "telemetry.car_track: the final catch-up" in err, err
    assert await query(targets["telemetry"], "SELECT COUNT(*) FROM car_track WHERE userName = 'after cutover'") == [
        (0,)
    ]
    # the final catch-up itself may be repeated (a crashed one is resumed so) while the suite has written nothing
    again = await run(setup.options(final=True))
    assert sum(r.written for r in again.results) == 1

    # --force goes on (and clears the marker: the next catch-up is an ordinary one)
    code, out, err = await cli(setup.argv("--catch-up", "--force"))
    assert code == 0 and "--force: telemetry.car_track: the final catch-up" in err, out + err
    assert set((await _checkpoints(targets["telemetry"])).values()) == {None}
    assert sum(r.written + r.deleted for r in (await run(setup.options(catch_up=True))).results) == 0


async def test_a_catch_up_that_would_overwrite_the_suites_writes_is_refused_unless_forced(setup: Setup) -> None:
    targets = default_targets(setup.prefix, {})
    await run(setup.options())
    # the suite serves (nobody ran --final): a new link past the copied ids, a changed case, a deleted chat line
    (last,) = (await query(targets["link"], "SELECT MAX(id) FROM link_connect"))[0]
    await query(targets["link"], "INSERT INTO link_connect (id, linkID, mobile, room, dtmCreated) VALUES "
                                 "(%s, 'SuiteNew1', '0811111111', 'SuiteRoom', NOW())", (last + 1,))  # fmt: skip
    await query(targets["conference"], "UPDATE case_data SET status = 'suite' ORDER BY id LIMIT 1")
    await query(targets["conference"], "DELETE FROM chat_message ORDER BY id DESC LIMIT 1")
    await query(setup.source, "UPDATE car_track SET userName = 'old gateway' ORDER BY id LIMIT 1")

    with pytest.raises(Refused) as refused:
        await run(setup.options(catch_up=True))
    reasons = {r.table: r.reason for r in refused.value.refusals}
    assert set(reasons) == {"link_connect", "case_data", "chat_message"}, reasons
    assert reasons["link_connect"].startswith("written since the migration left it (1 row(s) more")
    assert reasons["case_data"].startswith("written since the migration left it (rows changed")
    assert reasons["chat_message"].startswith("written since the migration left it (1 row(s) fewer")
    with pytest.raises(Refused):  # the final catch-up is no exception
        await run(setup.options(final=True))
    code, _, err = await cli(setup.argv("--catch-up", "--table", "link_connect"))
    assert code == 5 and "link.link_connect: written since" in err, err
    # nothing was written, not even to the tables the suite left alone
    assert await query(targets["link"], "SELECT linkID FROM link_connect WHERE id = %s", (last + 1,)) == [
        ("SuiteNew1",)
    ]
    assert await query(targets["telemetry"], "SELECT COUNT(*) FROM car_track WHERE userName = 'old gateway'") == [(0,)]
    # --force gives the suite's rows up for the source's, and carries the rest as usual; guarded again afterwards
    forced = await run(setup.options(catch_up=True, force=True))
    by_table = {r.table: r for r in forced.results}
    assert by_table["link_connect"].deleted == 1 and by_table["case_data"].written == 1
    assert by_table["chat_message"].written == 1 and by_table["car_track"].written == 1
    assert all(c.ok for c in (await run(setup.options(verify_only=True))).checks)
    assert sum(r.written + r.deleted for r in (await run(setup.options(catch_up=True))).results) == 0


async def test_the_auto_increment_counter_is_carried_past_the_highest_row(setup: Setup) -> None:
    # the newest notifications were deleted in the original: its counter is past the highest row left, and the suite
    # must not hand those ids out again (an SMS already named them)
    await query(setup.source, "DELETE FROM notification ORDER BY notificationId DESC LIMIT 2")
    counter = "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
    ((expected,),) = await query(setup.source, counter, (setup.source.database, "notification"))
    ((highest,),) = await query(setup.source, "SELECT MAX(notificationId) FROM notification")
    assert int(expected) == int(highest) + 3
    await run(setup.options(tables=("notification",)))
    target = default_targets(setup.prefix, {})["conference"]
    assert await query(target, counter, (target.database, "notification")) == [(expected,)]


class _Session:
    """A source connection as deploy.migrate.db uses one (cursor().execute/fetchall), answering SHOW VARIABLES as a
    MySQL 8 server does: the server this machine lacks."""

    def __init__(self, variables: dict[str, str]) -> None:
        self.variables = variables
        self.statements: list[str] = []
        self.rows: list[tuple[Any, ...]] = []

    def cursor(self) -> _Session:
        return self

    async def __aenter__(self) -> _Session:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def execute(self, sql: str, args: Any = ()) -> int:
        self.statements.append(sql)
        name = args[0] if args else None
        known = sql.startswith("SHOW VARIABLES") and name in self.variables
        self.rows = [(name, self.variables[name])] if known else []
        return len(self.rows)

    async def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


async def test_the_source_session_reads_uncached_table_statistics_where_the_server_caches_them(setup: Setup) -> None:
    mysql8 = _Session({"information_schema_stats_expiry": "86400"})
    assert await uncached_statistics(mysql8)
    assert mysql8.statements[-1] == "SET SESSION information_schema_stats_expiry = 0"
    # MariaDB has no such cache nor variable: nothing is set, and the session opens as before
    conn = await connect_source(setup.source)
    try:
        assert not await uncached_statistics(conn)
    finally:
        conn.close()

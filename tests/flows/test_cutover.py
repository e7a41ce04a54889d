"""Issue 14's "done when": the cutover of a generated installation is the README's sequence of commands, run here
end to end, and it loses and duplicates nothing.

The runbook (README "Moving an installation onto the suite", "Runbook") as its commands run, against a private
suite started with ``SCHEDULED_JOBS=false`` (its step 1) and a legacy source (tests/legacy.py) that an "old
gateway" (tests/legacy.OldGateway: the SQL of the original's routes) keeps writing: the first copy and a
catch-up while it serves, more requests, then it stops; the final catch-up (``--final``), ``--verify``,
``just rebuild-read-models all``. Then the suite answers through the edge as the original would from the final
source (tests/legacy_answers.py), rows of the window included, nothing twice; each command printed its timings;
and once the suite has served a write, a catch-up is refused and the suite's row stays.
"""

from __future__ import annotations

import asyncio
import csv
import re
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx

from deploy.local import discover_services
from tests import legacy_answers as original
from tests.instances import private_suite
from tests.legacy import SMALL, SOURCE_TIME_ZONE, Dsn, OldGateway, build, clone_without, drop_source

ROOT = Path(__file__).resolve().parents[2]
API_URL = "https://api.example"
# The runbook's commands this test runs (README, whitespace aside), `...` standing for the source's DSN.
RUNBOOK = (
    "just migrate --source mysql://reader:PASS@old-db:3306/conference --report migrate-report.csv",
    "just migrate --source ... --catch-up",
    "just migrate --source ... --catch-up --final",
    "just migrate --source ... --verify",
    "just rebuild-read-models all",
)
TIMINGS = re.compile(r"^[\d,]+ rows in [\d.]+ s \([\d,]+ rows/s\)$", re.M)  # the copy's summary line
REBUILT = re.compile(r"^read models rebuilt in [\d.]+ s$", re.M)


async def _run(*argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 300)
    return int(process.returncode or 0), out.decode(errors="replace")


async def _while_serving(gateway: OldGateway, command: Awaitable[tuple[int, str]]) -> tuple[int, str, int]:
    """``command`` while the old gateway keeps answering requests; returns its status, output and how many requests
    were served meanwhile."""
    task = asyncio.ensure_future(command)
    served = 0
    while not task.done():
        await gateway.step()
        served += 1
        await asyncio.sleep(0.02)
    code, out = await task
    return code, out, served


def _not_carried(report: Path) -> dict[str, list[str]]:
    dropped: dict[str, list[str]] = {}
    with report.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["outcome"] == "not carried":
                dropped.setdefault(row["table"], []).append(row["key"])
    return dropped


def test_the_runbook_documents_the_commands_tested_here() -> None:
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    runbook = text[text.index("### Runbook") : text.index("### Timings")]
    assert [command for command in RUNBOOK if command not in runbook] == []
    assert "SCHEDULED_JOBS=true" in runbook and "--force" in runbook


async def test_the_cutover_loses_and_duplicates_nothing_and_the_suites_writes_are_kept(suite: Any) -> None:
    extra_env = {**suite.local.extra_env, "API_URL": API_URL, "SCHEDULED_JOBS": "false"}  # runbook step 1
    with private_suite(discover_services(), extra_env, label="cutover") as local:
        source = Dsn.parse(f"mysql://root@127.0.0.1:3306/{local.db_prefix}legacy")
        carried = Dsn.parse(f"mysql://root@127.0.0.1:3306/{local.db_prefix}legacy_carried")
        report = local.run_dir / "migrate-report.csv"

        def migrate(*extra: str) -> Awaitable[tuple[int, str]]:
            return _run("-m", "deploy.migrate", "--source", str(source), "--db-prefix", local.db_prefix,
                        "--nats-url", local.nats_url, "--source-time-zone", SOURCE_TIME_ZONE, *extra)  # fmt: skip

        gateway_conn = None
        try:
            await build(source, SMALL, seed=23)
            gateway_conn = await source.connect()
            gateway = OldGateway(gateway_conn, seed=23)
            # 1. the first copy and 2. a catch-up, while the old gateway serves; more requests after it
            copy = await _while_serving(gateway, migrate("--report", str(report)))
            catch_up = await _while_serving(gateway, migrate("--catch-up"))
            for _ in range(8):
                await gateway.step()
            window_link, window_room = await gateway.create_link()  # the last request before it stops
            # 3. cutover: (3.1 the old gateway stopped) the final catch-up, verify, the read models
            final = await migrate("--catch-up", "--final", "--report", str(report))
            verify = await migrate("--verify")
            rebuilt = await _run("-m", "deploy.rebuild", "all", "--nats-url", local.nats_url)

            for name, (code, out, *_served) in {"copy": copy, "catch-up": catch_up, "final": final}.items():
                assert code == 0, (name, out)
                assert TIMINGS.search(out) and REBUILT.search(out), (name, out)  # the command printed its timings
                assert "| seconds | rows/s |" in out, (name, out)
            assert copy[2] > 0 and catch_up[2] > 0, (copy[2], catch_up[2])  # requests were served during both
            assert verify[0] == 0 and "no difference" in verify[1], verify[1]
            assert re.search(r"verified in [\d.]+ s", verify[1]), verify[1]
            assert rebuilt[0] == 0, rebuilt[1]

            await clone_without(source, carried.database, _not_carried(report))
            conn = await carried.connect()
            try:
                await _nothing_twice(local, conn, gateway)  # first: getdetail below writes usage rows
                await _served_as_the_original(local.edge, conn, suite, gateway, window_link, window_room)
            finally:
                conn.close()

            # the suite serves: a link made through it; a catch-up now would delete it (the source lacks it)
            async with httpx.AsyncClient(base_url=local.edge, timeout=30) as edge:
                body = {"room": "AfterCutover", "mobile": "0812345678", "service": 1}
                created = await edge.post("/link/create", json=body,
                                          headers={"Authorization": f"Bearer {suite.agent_token()}"})  # fmt: skip
                assert created.status_code == 200, created.text
                link_id = created.json()["linkID"]
                code, out = await migrate("--catch-up")
                assert code == 5 and "REFUSED, nothing written" in out, out
                assert "link.link_connect: the final catch-up" in out and "link.link_connect: written since" in out
                detail = (await original.edge_get(edge, "/link/getdetail", linkId=link_id)).json()
                assert detail["status"] == "OK" and detail["data"]["room"] == "AfterCutover", detail
        finally:
            if gateway_conn is not None:
                gateway_conn.close()
            await drop_source(source)
            await drop_source(carried)


async def _served_as_the_original(
    edge_url: str, conn: Any, suite: Any, gateway: OldGateway, window_link: str, window_room: str
) -> None:
    """Rows the old gateway wrote during the catch-up window are served as the original would serve them."""
    async with httpx.AsyncClient(base_url=edge_url, timeout=30) as edge:
        for query in ({}, {"limit": "500"}):
            await original.compare_summary(edge, conn, query)
        for route in ("/stats/device", "/stats/type"):
            await original.compare_counts(route, (None, None), edge, conn)
        want = await original.link_history(conn, window_room)
        got = (await original.edge_get(edge, "/link/history", roomName=window_room)).json()
        assert [row.pop("recordVideos") for row in got["data"]] == [[]], got  # a new room: nothing recorded yet
        for row in want["data"]:
            row.pop("recordVideos")
        original.same(want, got, window_room)
        # getdetail last: it writes (a usage row, the link's user agent), as the original's did
        served = [window_link, *(link for link, _ in gateway.created[:2])]
        for link_id in dict.fromkeys(served):
            await original.compare_detail(edge, conn, link_id, suite.env["LIVEKIT_API_KEY"],
                                          suite.env["LIVEKIT_API_SECRET"])  # fmt: skip


async def _nothing_twice(local: Any, conn: Any, gateway: OldGateway) -> None:
    """Each link of the window once in the suite, the rows the source deleted gone, and the busiest tables' counts
    the source's (--verify compared every table's, checksums too)."""
    link_ids = [link for link, _ in gateway.created]
    marks = ", ".join(["%s"] * len(link_ids))
    sql = f"SELECT linkID, COUNT(*) AS n FROM link_connect WHERE linkID IN ({marks}) GROUP BY linkID"  # noqa: S608
    counts = {r["linkID"]: r["n"] for r in await _target_rows(local, "link", sql, tuple(link_ids))}
    assert counts == dict.fromkeys(link_ids, 1), counts
    if gateway.deleted:
        marks = ", ".join(["%s"] * len(gateway.deleted))
        gone = f"SELECT notificationId FROM notification WHERE notificationId IN ({marks})"  # noqa: S608
        assert await _target_rows(local, "conference", gone, tuple(gateway.deleted)) == []
    for service, table in (("link", "link_connect"), ("link", "usage_status_log"), ("conference", "chat_message"),
                           ("conference", "room_conference"), ("conference", "notification")):  # fmt: skip
        count = f"SELECT COUNT(*) AS n FROM `{table}`"  # noqa: S608
        want, got = await original.query_rows(conn, count), await _target_rows(local, service, count)
        assert got == want, (table, got, want)


async def _target_rows(local: Any, service: str, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    conn = await Dsn.parse(f"mysql://root@127.0.0.1:3306/{local.db_name(service)}").connect()
    try:
        return await original.query_rows(conn, sql, args)
    finally:
        conn.close()

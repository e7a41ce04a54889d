"""The short form of ``just chaos`` (tests/chaos/run.py): a private suite (its own mariadbd, NATS and Redis) under a
few seconds of mixed load (positions, link creation, signed webhooks through the edge, 20 Socket.IO clients on the
positions' link namespace, 2 in the room namespace, one of them sending chat lines) while NATS is killed with -9 and
restarted, then MariaDB is frozen (SIGSTOP) for 6 s, longer than MYSQL_TIMEOUT. Every acknowledged write
is stored, every event it caused was published and consumed by telemetry, nothing twice, no request hung past its
timeout (the services answer 503 when MariaDB does not answer, never 500), /ready said 503 while NATS or MariaDB was
down, and every client got every position emit and chat line, none twice. Auth is not started: nothing here asks
it (its kill is the full run's). Then the checker is shown to catch a loss: one acknowledged position's row deleted,
the same check counts it lost; one stored twice, it counts a duplicate; a client's record with a position and a chat
line received twice counts two duplicate emits, which fail the run."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import LocalSuite
from tests.chaos.run import SERVICES, Clients, Row, chaos_suite, failures, latitude_seq, query, run_faults, table


@pytest.fixture(scope="module")
def private() -> Iterator[tuple[LocalSuite, list]]:
    run_dir = Path(tempfile.mkdtemp(prefix="ems-chaos-short-"))
    try:
        with chaos_suite(run_dir, services=[s for s in SERVICES if s != "auth"]) as started:
            yield started
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


async def test_nats_link_and_mariadb_faults_under_load_lose_nothing_and_apply_nothing_twice(private: tuple) -> None:
    local, brokers = private
    faults = ["nats-kill", "mariadb-stop"]  # kill -9 of link and telemetry: test_group_commit_kill.py
    rows, chaos = await run_faults(local, brokers, faults, rate=40, load_s=2, recovery=45, clients=20, db_stall=6)
    print(table(rows))
    assert [r.fault for r in rows] == faults
    for row in rows:
        assert row.ok > 50, row  # enough acknowledged writes to mean anything
        assert row.missed == 0, row  # no client lost its connection: every emit arrived
        assert row.duplicate_emits == 0, row
    assert failures(rows) == []

    # The checker can fail: an acknowledged position's usage row removed is a lost write.
    victim = next(s for s in chaos.sent if s.fault == "nats-kill" and s.kind == "position" and s.ok)
    latitude = f"{13 + int(victim.key) / 1_000_000:.6f}"
    await query(
        local.db_name("link"),
        "DELETE FROM usage_status_log WHERE linkID = %s AND ROUND(latitude, 6) = %s",
        (chaos.link_id, latitude),
    )
    again = Row("nats-kill")
    await chaos.check("nats-kill", again, timeout=2)
    assert again.lost >= 1, again

    # ... and a position stored twice is a duplicate effect.
    db = local.db_name("link")
    columns = [r["COLUMN_NAME"] for r in await query(
        db, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = "
        "'usage_status_log' AND COLUMN_NAME <> 'id' ORDER BY ORDINAL_POSITION", (db,))]  # fmt: skip
    names = ", ".join(f"`{c}`" for c in columns)
    twice = next(s for s in chaos.sent if s.fault == "mariadb-stop" and s.kind == "position" and s.ok)
    await query(db, f"INSERT INTO usage_status_log ({names}) SELECT {names} FROM usage_status_log "  # noqa: S608
                "WHERE linkID = %s AND ROUND(latitude, 6) = %s LIMIT 1",
                (chaos.link_id, f"{13 + int(twice.key) / 1_000_000:.6f}"))  # fmt: skip
    doubled = Row("mariadb-stop")
    await chaos.check("mariadb-stop", doubled, timeout=2)
    assert doubled.duplicates >= 1, doubled

    # ... and an emit a client got twice is a duplicate emit, which fails the run (Redis stayed up).
    assert chaos.clients is not None
    listener = next(r for r in chaos.clients.records if not r["room"])
    talker = next(r for r in chaos.clients.records if r["room"])
    seq = next(int(s.key) for s in chaos.sent if s.fault == "nats-kill" and s.kind == "position" and s.ok)
    latitude = next(v for v in listener["positions"] if v and latitude_seq(v) == seq)
    line = next(s.key for s in chaos.sent if s.fault == "nats-kill" and s.kind == "chat" and s.ok)
    repeated = Clients(local.edge, chaos.link_id, 1)
    repeated.records = [{**listener, "positions": [*listener["positions"], latitude]},
                        {**talker, "chats": [*talker["chats"], line]}]  # fmt: skip
    twice = dataclasses.replace(rows[0])
    repeated.count_missed(twice, chaos.sent)
    assert (twice.duplicate_emits, twice.duplicate_emits_allowed, twice.missed) == (2, 0, 0), twice
    assert failures([twice]) == ["nats-kill: 2 emits a client got twice (not allowed)"]

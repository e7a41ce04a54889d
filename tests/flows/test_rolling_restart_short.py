"""The short form of ``just rolling-restart`` (tests/chaos/rolling.py): a private suite with two instances of link,
telemetry and recording behind the edge, under light mixed load (positions, link creation, signed webhooks, reads
of telemetry); link and telemetry rolled one instance at a time (SIGTERM, drain, start, /ready). Not one request
failed, every acknowledged write is stored, its events published and consumed once. Then the same checks are
shown to fail: recording restarted whole (both instances stopped, then started) fails the requests sent meanwhile,
and the table counts them."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import LocalSuite
from tests.chaos.rolling import failures, roll_all, rolling_suite, table

RUNNING = ["conference", "link", "telemetry", "recording"]


@pytest.fixture(scope="module")
def private() -> Iterator[tuple[LocalSuite, list]]:
    run_dir = Path(tempfile.mkdtemp(prefix="ems-rolling-short-"))
    try:
        with rolling_suite(run_dir, ["link", "telemetry", "recording"], running=RUNNING) as started:
            yield started
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


async def test_rolled_services_fail_no_request_and_lose_nothing(private: tuple) -> None:
    local, brokers = private
    rolls, _ = await roll_all(local, brokers, ["link", "telemetry", "recording"], rate=30, sockets_n=0, settle=1.0,
                              check_timeout=45, recreate=frozenset({"recording"}))  # fmt: skip
    print(table(rolls))
    link, telemetry, recreated = rolls
    for roll in (link, telemetry):
        assert roll.instances == 2 and roll.row is not None, roll
        assert roll.row.ok > 60, roll  # enough acknowledged requests during the roll to mean anything
        assert roll.row.requests == roll.row.ok, roll.row.refused
        assert (roll.row.lost, roll.row.duplicates, roll.row.hung, roll.killed) == (0, 0, 0, 0), roll
    assert [line for line in failures(rolls, 0) if not line.startswith("recording (recreated)")] == []

    # The checks can fail: with no instance of recording left for a while, its webhooks are refused (the edge's
    # 503) and counted, still with nothing acknowledged lost or applied twice.
    assert recreated.row is not None and recreated.row.requests > recreated.row.ok, recreated
    assert "webhook 503" in recreated.row.refused, recreated.row.refused
    assert (recreated.row.lost, recreated.row.duplicates) == (0, 0), recreated
    assert any(line.startswith("recording (recreated): ") for line in failures(rolls, 0))

"""The short form of ``just rolling-restart`` (tests/chaos/rolling.py): a private suite with two instances of link
and recording behind the edge, under light mixed load (positions, link creation, signed webhooks, reads of
telemetry); link rolled one instance at a time (SIGTERM, drain, start, /ready). Not one request failed, every
acknowledged write is stored, its events published and consumed once. Then the same checks are shown to fail:
recording restarted whole (both instances stopped, then started) fails the requests sent meanwhile, and the table
counts them. And a stopping instance drains: after SIGTERM it still answers for a moment, /ready 503 and every
answer closing its connection, then exits on its own."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.local import LocalSuite
from tests.chaos.rolling import failures, roll_all, rolling_suite, table

RUNNING = ["conference", "link", "telemetry", "recording"]


@pytest.fixture(scope="module")
def private() -> Iterator[tuple[LocalSuite, list]]:
    run_dir = Path(tempfile.mkdtemp(prefix="ems-rolling-short-"))
    try:
        with rolling_suite(run_dir, ["link", "recording"], running=RUNNING) as started:
            yield started
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


async def test_rolled_services_fail_no_request_and_lose_nothing(private: tuple) -> None:
    local, brokers = private
    rolls, _ = await roll_all(local, brokers, ["link", "recording"], rate=30, sockets_n=0, settle=0.5,
                              check_timeout=45, recreate=frozenset({"recording"}))  # fmt: skip
    print(table(rolls))
    link, recreated = rolls
    assert link.instances == 2 and link.row is not None, link
    assert link.row.ok > 60, link  # enough acknowledged requests during the roll to mean anything
    assert link.row.requests == link.row.ok, link.row.refused
    assert (link.row.lost, link.row.duplicates, link.row.hung, link.killed) == (0, 0, 0, 0), link
    assert [line for line in failures(rolls, 0) if not line.startswith("recording (recreated)")] == []

    # The checks can fail: with no instance of recording left for a while, its webhooks are refused (the edge's
    # 503) and counted, still with nothing acknowledged lost or applied twice.
    assert recreated.row is not None and recreated.row.requests > recreated.row.ok, recreated
    assert "webhook 503" in recreated.row.refused, recreated.row.refused
    assert (recreated.row.lost, recreated.row.duplicates) == (0, 0), recreated
    assert any(line.startswith("recording (recreated): ") for line in failures(rolls, 0))


async def test_a_stopping_instance_answers_not_ready_and_closes_connections_then_exits(private: tuple) -> None:
    local, _ = private
    process = local.processes["link-2"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{local.second_ports['link']}", timeout=5) as client:
        assert (await client.get("/ready")).status_code == 200
        process.send_signal(signal.SIGTERM)
        draining: httpx.Response | None = None
        deadline = time.monotonic() + 5
        while draining is None and time.monotonic() < deadline:
            try:
                answer = await client.get("/ready")
            except httpx.TransportError:
                break  # stopped listening: the drain was missed
            if answer.status_code == 503:
                draining = answer
            await asyncio.sleep(0.05)
        assert draining is not None, "no 503 from /ready between SIGTERM and the end of the drain"
        assert draining.json()["draining"] is True
        assert draining.headers["connection"] == "close"
    await asyncio.to_thread(process.wait, 20)  # exits on its own once drained (left stopped: the module's last test)

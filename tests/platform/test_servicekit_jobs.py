"""servicekit.jobs.RetriedJob without a service: outcome of a call, retry or give up, back-off, the row's
bookkeeping. HTTP goes through httpx.MockTransport; the job table is an in-memory row behind a small fake of the
three Database calls the job makes."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from arq import Retry

from servicekit.jobs import FAILED, SENT, SKIPPED, NotConfigured, Outcome, RetriedJob, call, classify

Reply = Callable[[httpx.Request], httpx.Response]


class FakeDb:
    """One row of a job table; the job's statements are named, not SQL."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch_one(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        self.statements.append((sql, params))
        return dict(self.row) if params == (self.row["id"],) else None

    async def execute(self, sql: str, params: tuple[Any, ...]) -> int:
        self.statements.append((sql, params))
        value, _now, key, pending = params
        if key != self.row["id"] or self.row["status"] != pending:
            return 0
        self.row["attempts" if sql == "claim" else "error"] = value
        return 1


class FakeJob(RetriedJob):
    load_sql, claim_sql, retry_sql, stale_sql = "load", "claim", "retry", "stale"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queue="arq:test", job_name="test_job", max_jobs=1, **kwargs)
        object.__setattr__(self, "finished", [])

    def request(self, client: httpx.AsyncClient, settings: Any, key: str, row: dict[str, Any]) -> httpx.Request:
        if not settings.url:
            raise NotConfigured("URL is not set")
        return client.build_request("POST", settings.url, json={"key": key, "text": row["text"]})

    async def finish(self, db: Any, key: str, row: dict[str, Any], attempts: int, outcome: Outcome) -> None:
        self.finished.append((key, attempts, outcome))
        db.row.update(status=SENT if outcome.ok else FAILED, attempts=attempts, error=outcome.error)


def _script(*steps: int | type[httpx.TransportError]) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    """A client whose calls answer ``steps`` in turn: a status code, or a transport error raised."""
    seen: list[httpx.Request] = []
    left = list(steps)

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = left.pop(0)
        if isinstance(step, int):
            return httpx.Response(step)
        raise step("scripted", request=request)

    return httpx.AsyncClient(transport=httpx.MockTransport(reply)), seen


def _ctx(client: httpx.AsyncClient, db: FakeDb, url: str = "http://api.test/send") -> dict[str, Any]:
    return {"runtime": SimpleNamespace(db=db, settings=SimpleNamespace(url=url)), "http": client}


def _row(**fields: Any) -> dict[str, Any]:
    return {"id": "k1", "status": "queued", "attempts": 0, "error": "", "text": "hello", **fields}


@pytest.mark.parametrize(
    ("status", "ok", "retry", "error"),
    [
        (200, True, False, ""),
        (204, True, False, ""),
        (302, False, False, "HTTP 302"),
        (400, False, False, "HTTP 400"),
        (404, False, False, "HTTP 404"),
        (429, False, True, "HTTP 429"),
        (500, False, True, "HTTP 500"),
        (503, False, True, "HTTP 503"),
    ],
)
def test_classify(status: int, ok: bool, retry: bool, error: str) -> None:
    assert classify(httpx.Response(status)) == Outcome(ok=ok, retry=retry, error=error)


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
async def test_a_network_error_is_retried(error: type[httpx.TransportError]) -> None:
    client, seen = _script(error)
    async with client:
        outcome = await call(client, client.build_request("POST", "http://api.test/x"))
    assert outcome == Outcome(ok=False, retry=True, error=error.__name__) and len(seen) == 1


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [FakeJob().backoff(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert [FakeJob(backoff_base=1, backoff_cap=5).backoff(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


async def test_retried_on_5xx_and_network_errors_then_sent() -> None:
    job, db = FakeJob(), FakeDb(_row())
    client, seen = _script(503, httpx.ConnectError, 200)
    async with client:
        ctx = _ctx(client, db)
        for attempt, defer in ((1, 0.5), (2, 1.0)):
            with pytest.raises(Retry) as retry:
                await job.run(ctx, "k1")
            assert retry.value.defer_score == defer * 1000
            assert (db.row["status"], db.row["attempts"]) == ("queued", attempt) and job.finished == []
        assert db.row["error"] == "ConnectError"
        assert await job.run(ctx, "k1") == SENT
    assert job.finished == [("k1", 3, Outcome(ok=True))]
    assert (db.row["status"], db.row["attempts"], db.row["error"]) == ("sent", 3, "")
    assert [(r.method, str(r.url), r.content) for r in seen] == [
        ("POST", "http://api.test/send", b'{"key":"k1","text":"hello"}')
    ] * 3
    # the attempt is counted before the call; the error noted only when retried
    assert [sql for sql, _ in db.statements] == ["load", "claim", "retry", "load", "claim", "retry", "load", "claim"]
    assert db.statements[2][1][0] == "HTTP 503"


async def test_4xx_gives_up_at_once() -> None:
    job, db = FakeJob(), FakeDb(_row())
    client, seen = _script(400)
    async with client:
        assert await job.run(_ctx(client, db), "k1") == FAILED
    assert job.finished == [("k1", 1, Outcome(ok=False, retry=False, error="HTTP 400"))]
    assert len(seen) == 1 and "retry" not in [sql for sql, _ in db.statements]


async def test_gives_up_when_the_attempts_are_used_up() -> None:
    job, db = FakeJob(max_attempts=3), FakeDb(_row())
    client, seen = _script(500, 429, httpx.ReadTimeout)
    async with client:
        ctx = _ctx(client, db)
        for _ in range(2):
            with pytest.raises(Retry):
                await job.run(ctx, "k1")
        assert await job.run(ctx, "k1") == FAILED
    assert job.finished == [("k1", 3, Outcome(ok=False, retry=True, error="ReadTimeout"))]
    assert len(seen) == 3 and db.row["status"] == "failed"


async def test_a_row_not_pending_or_gone_is_skipped_without_a_call() -> None:
    job = FakeJob()
    client, seen = _script()
    async with client:
        for db, key in ((FakeDb(_row(status="removed")), "k1"), (FakeDb(_row()), "other")):
            assert await job.run(_ctx(client, db), key) == SKIPPED
            assert [sql for sql, _ in db.statements] == ["load"]
    assert seen == [] and job.finished == []


async def test_no_target_fails_without_counting_an_attempt() -> None:
    job, db = FakeJob(), FakeDb(_row(attempts=2))
    client, seen = _script()
    async with client:
        assert await job.run(_ctx(client, db, url=""), "k1") == FAILED
    assert job.finished == [("k1", 2, Outcome(ok=False, error="URL is not set"))]
    assert seen == [] and [sql for sql, _ in db.statements] == ["load"]

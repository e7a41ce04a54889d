"""SMS pipeline of link: sms_message rows, the arq job, retries, the fake gateway (tests/fakes/sms_gateway.py)."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx

from tests.fakes.sms_gateway import start_link_replica


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


def _gateway(suite: Any) -> str:
    return suite.env["SMS_API_URL"].split("/api/")[0]


def _mobile() -> str:
    return "08" + "".join(random.choice("0123456789") for _ in range(8))  # noqa: S311 - test data


async def _gateway_log(client: httpx.AsyncClient, suite: Any, dst: str) -> tuple[list[dict], list[dict]]:
    log = (await client.get(f"{_gateway(suite)}/_log")).json()
    return [a for a in log["attempts"] if a["dst"] == dst], [d for d in log["delivered"] if d["dst"] == dst]


async def _inject(client: httpx.AsyncClient, suite: Any, dst: str, fail: int, mode: str, status: int = 500) -> None:
    reply = await client.post(
        f"{_gateway(suite)}/_control", json={"dst": dst, "fail": fail, "mode": mode, "status": status}
    )
    assert reply.status_code == 200


async def _create(client: httpx.AsyncClient, base: str, token: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post(f"{base}/link/create", json=body, headers=token)


async def _sms_rows(suite: Any, mobile: str) -> list[dict[str, Any]]:
    return await suite.query("link", "SELECT * FROM sms_message WHERE mobile = %s", (mobile,))


async def _wait_status(suite: Any, mobile: str, statuses: set[str], timeout: float = 20.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await _sms_rows(suite, mobile)
        if rows and rows[0]["status"] in statuses:
            return rows[0]
        assert asyncio.get_running_loop().time() < deadline, f"sms for {mobile} stuck: {rows}"
        await asyncio.sleep(0.2)


async def _events(suite: Any, subject: str, key: str) -> list[dict[str, Any]]:
    rows = await suite.query(
        "link", "SELECT payload FROM outbox WHERE subject = %s AND payload LIKE %s", (subject, f"%{key}%")
    )
    return [json.loads(row["payload"])["data"] for row in rows]


async def test_link_sms_sent_once_with_tenant_text_and_api_key(suite: Any, sender: str) -> None:
    mobile = _mobile()
    async with httpx.AsyncClient(timeout=15) as client:
        reply = await _create(client, sender, _auth(suite), room="SmsPlainRoom", mobile=mobile, service=999)
        assert reply.status_code == 200
        link = reply.json()
        row = await _wait_status(suite, mobile, {"sent"})
        await asyncio.sleep(1.0)  # nothing more may arrive
        attempts, delivered = await _gateway_log(client, suite, mobile)
    assert suite.env["SMS_API_KEY"] not in reply.text
    assert len(attempts) == 1 and len(delivered) == 1
    sent = delivered[0]
    assert sent["src"] == "iDEMS"
    assert sent["message"] == f"สนทนาวิดีโอ\n{link['url']}"
    assert sent["api_key"] == suite.env["SMS_API_KEY"]
    assert sent["content_type"] == "application/x-www-form-urlencoded"
    assert sent["idempotency_key"] == row["id"]
    assert (row["linkID"], row["room"], row["attempts"], row["last_error"]) == (link["linkID"], "SmsPlainRoom", 1, "")
    assert row["dtmSent"] is not None
    events = await _events(suite, "link.sms.sent", row["id"])
    assert len(events) == 1 and events[0]["mobile"] == mobile and events[0]["linkID"] == link["linkID"]


async def test_sms_delivered_exactly_once_despite_5xx(suite: Any, sender: str) -> None:
    mobile = _mobile()
    async with httpx.AsyncClient(timeout=15) as client:
        await _inject(client, suite, mobile, 2, "status", 503)
        reply = await _create(client, sender, _auth(suite), room="SmsRetryRoom", mobile=mobile)
        assert reply.status_code == 200
        row = await _wait_status(suite, mobile, {"sent", "failed"})
        await asyncio.sleep(1.0)
        attempts, delivered = await _gateway_log(client, suite, mobile)
    assert row["status"] == "sent" and row["attempts"] == 3
    assert len(attempts) == 3 and len(delivered) == 1
    assert len({a["idempotency_key"] for a in attempts}) == 1
    assert len(await _events(suite, "link.sms.sent", row["id"])) == 1


async def test_sms_delivered_once_after_dropped_connection_and_lost_answer(suite: Any, sender: str) -> None:
    dropped, lost = _mobile(), _mobile()
    async with httpx.AsyncClient(timeout=15) as client:
        await _inject(client, suite, dropped, 2, "drop")
        await _inject(client, suite, lost, 1, "lost")
        for mobile in (dropped, lost):
            reply = await _create(client, sender, _auth(suite), room="SmsDropRoom", mobile=mobile)
            assert reply.status_code == 200
        first = await _wait_status(suite, dropped, {"sent", "failed"})
        second = await _wait_status(suite, lost, {"sent", "failed"})
        await asyncio.sleep(1.0)
        dropped_attempts, dropped_delivered = await _gateway_log(client, suite, dropped)
        lost_attempts, lost_delivered = await _gateway_log(client, suite, lost)
    assert (first["status"], first["attempts"], len(dropped_attempts), len(dropped_delivered)) == ("sent", 3, 3, 1)
    # The answer of the first (accepted) attempt was lost: retried with the same Idempotency-Key, delivered once.
    assert (second["status"], second["attempts"], len(lost_attempts), len(lost_delivered)) == ("sent", 2, 2, 1)


async def test_sms_4xx_is_not_retried_and_fails_with_event(suite: Any, sender: str) -> None:
    mobile = _mobile()
    async with httpx.AsyncClient(timeout=15) as client:
        await _inject(client, suite, mobile, 5, "status", 400)
        reply = await _create(client, sender, _auth(suite), room="SmsBadRoom", mobile=mobile, linkType="location")
        assert reply.status_code == 200
        row = await _wait_status(suite, mobile, {"sent", "failed"})
        await asyncio.sleep(1.5)
        attempts, delivered = await _gateway_log(client, suite, mobile)
    assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 1, "HTTP 400")
    assert len(attempts) == 1 and delivered == []
    assert attempts[0]["message"].startswith("เรียกพิกัดปัจจุบัน\n") and "/location/" in attempts[0]["message"]
    events = await _events(suite, "link.sms.failed", row["id"])
    assert len(events) == 1 and events[0]["error"] == "HTTP 400" and events[0]["attempts"] == 1
    assert await _events(suite, "link.sms.sent", row["id"]) == []


async def test_sms_5xx_gives_up_after_bounded_attempts(suite: Any, sender: str) -> None:
    mobile = _mobile()
    async with httpx.AsyncClient(timeout=15) as client:
        await _inject(client, suite, mobile, 50, "status", 500)
        await _create(client, sender, _auth(suite), room="SmsDownRoom", mobile=mobile)
        row = await _wait_status(suite, mobile, {"sent", "failed"}, timeout=30)
        await asyncio.sleep(1.0)
        attempts, delivered = await _gateway_log(client, suite, mobile)
    assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 5, "HTTP 500")
    assert len(attempts) == 5 and delivered == []
    assert len(await _events(suite, "link.sms.failed", row["id"])) == 1


async def test_no_sms_when_sms_is_0_or_mobile_empty_or_link_type_without_text(suite: Any, sender: str) -> None:
    mobile = _mobile()
    async with httpx.AsyncClient(timeout=15) as client:
        for body in ({"sms": 0, "mobile": mobile}, {"mobile": ""}, {"mobile": mobile, "linkType": "conference"}):
            reply = await _create(client, sender, _auth(suite), room="SmsNoneRoom", **body)
            assert reply.status_code == 200
        await asyncio.sleep(0.8)
        attempts, _ = await _gateway_log(client, suite, mobile)
    assert await _sms_rows(suite, mobile) == [] and attempts == []


async def test_malformed_mobile_fails_without_calling_gateway(suite: Any, sender: str) -> None:
    mobile = "08-1234'; --"
    async with httpx.AsyncClient(timeout=15) as client:
        reply = await _create(client, sender, _auth(suite), room="SmsMalformedRoom", mobile=mobile)
        assert reply.status_code == 200
        await asyncio.sleep(0.8)
        attempts, _ = await _gateway_log(client, suite, mobile)
    rows = await _sms_rows(suite, mobile)
    assert [(r["status"], r["attempts"], r["last_error"]) for r in rows] == [("failed", 0, "invalid mobile")]
    assert attempts == []
    assert len(await _events(suite, "link.sms.failed", rows[0]["id"])) == 1


async def test_api_key_never_in_logs(suite: Any, sender: str) -> None:
    mobile = _mobile()
    async with httpx.AsyncClient(timeout=15) as client:
        await _inject(client, suite, mobile, 1, "status", 500)
        await _create(client, sender, _auth(suite), room="SmsLogRoom", mobile=mobile)
        await _wait_status(suite, mobile, {"sent"})
    log_text = "".join((suite.local.run_dir / f"{n}.log").read_text(errors="replace") for n in ("link", "link-sms"))
    assert "sms attempt failed" in log_text  # the log is the right file and has the retry
    assert suite.env["SMS_API_KEY"] not in log_text
    rows = await suite.query(
        "link", "SELECT COUNT(*) AS n FROM outbox WHERE payload LIKE %s", (f"%{suite.env['SMS_API_KEY']}%",)
    )
    assert rows[0]["n"] == 0


async def test_sms_disabled_records_without_sending(suite: Any) -> None:
    """The suite's link service runs with SMS_ENABLE=false: the row is `disabled`, nothing reaches the gateway."""
    mobile = _mobile()
    async with httpx.AsyncClient(timeout=15) as client:
        reply = await _create(client, suite.edge, _auth(suite), room="SmsOffRoom", mobile=mobile)
        assert reply.status_code == 200, reply.text
        await asyncio.sleep(1.0)
        attempts, _ = await _gateway_log(client, suite, mobile)
    rows = await _sms_rows(suite, mobile)
    assert [(r["status"], r["attempts"]) for r in rows] == [("disabled", 0)]
    assert rows[0]["linkID"] == reply.json()["linkID"]
    assert rows[0]["text"] == f"สนทนาวิดีโอ\n{reply.json()['url']}"
    assert attempts == []
    assert await _events(suite, "link.sms.sent", rows[0]["id"]) == []


async def test_stale_queued_row_is_enqueued_again_on_start(suite: Any, sender: str) -> None:
    """A row committed but never enqueued (crash in between) is picked up by a starting replica's sweep."""
    mobile = _mobile()
    key = "stale" + mobile + "0" * (27 - len(mobile))
    await suite.execute(
        "link",
        "INSERT INTO sms_message (id, mobile, sender, text, kind, status, dtmCreated, dtmUpdated) "
        "VALUES (%s, %s, 'iDEMS', 'left behind', 'custom', 'queued', NOW() - INTERVAL 10 MINUTE, NOW())",
        (key, mobile),
    )
    base, process = await asyncio.to_thread(start_link_replica, suite, "link-sms-sweep", SMS_ENABLE="true")
    try:
        row = await _wait_status(suite, mobile, {"sent", "failed"})
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 20)
    async with httpx.AsyncClient(timeout=10) as client:
        _, delivered = await _gateway_log(client, suite, mobile)
    assert base.startswith("http://127.0.0.1:")
    assert (row["id"], row["status"], row["attempts"]) == (key, "sent", 1)
    assert [d["message"] for d in delivered] == ["left behind"]

"""GET /link/getdetail's usage rows are group-committed (link.repository.usage): under concurrency every answered
request has its own GetLinkDetail row, committed by the time it is answered; bad input writes nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx


def _room() -> str:
    return "Batch " + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:8])


async def test_concurrent_getdetails_each_write_their_row(suite: Any, client: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {suite.agent_token()}"}
    room = _room()
    links = []
    for i in range(3):
        reply = await client.post("/link/create", json={"room": room, "mobile": f"081000000{i}", "sms": 0},
                                  headers=headers)  # fmt: skip
        links.append(reply.json()["linkID"])
    await client.get("/link/getdetail", params={"linkId": links[0], "identity": "warm"})  # room into the read model

    async def one(i: int) -> str:
        identity = f"batch-{i}"
        reply = await client.get("/link/getdetail", params={"linkId": links[i % 3], "identity": identity},
                                 headers={"User-Agent": "bench"})  # fmt: skip
        assert reply.json()["status"] == "OK"
        # committed before the answer: visible at once
        rows = await suite.query("link", "SELECT id FROM usage_status_log WHERE identity = %s"
                                 " AND status = 'GetLinkDetail'", (identity,))  # fmt: skip
        assert len(rows) == 1
        return identity

    done = await asyncio.gather(*(one(i) for i in range(60)))
    rows = await suite.query(
        "link", "SELECT identity, linkID FROM usage_status_log WHERE status = 'GetLinkDetail'"
        " AND identity LIKE 'batch-%%' AND room = %s", (room,),
    )  # fmt: skip
    assert sorted(r["identity"] for r in rows) == sorted(done)
    assert all(r["linkID"] == links[int(r["identity"].split("-")[1]) % 3] for r in rows)


async def test_overlong_identity_is_refused(suite: Any, client: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {suite.agent_token()}"}
    reply = await client.post("/link/create", json={"room": _room(), "mobile": "0810000009", "sms": 0}, headers=headers)
    link_id = reply.json()["linkID"]
    long = await client.get("/link/getdetail", params={"linkId": link_id, "identity": "x" * 101})
    assert long.status_code == 400 and long.json()["status"] == "FAIL"
    rows = await suite.query("link", "SELECT id FROM usage_status_log WHERE linkID = %s AND status = 'GetLinkDetail'",
                             (link_id,))  # fmt: skip
    assert rows == []

"""Events link publishes through its outbox with each write (issue 5): link.link.used for a one-time link's first
use, link.link.fields_changed (telemetry's copy of link_connect columns) for the user agent, errors, domain index
and one-time use; nothing for a refused second use."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx

IPHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def _room() -> str:
    return "Ev " + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:8])


async def _events(suite: Any, subject: str, link_id: str) -> list[dict[str, Any]]:
    rows = await suite.query("link", "SELECT payload FROM outbox WHERE subject = %s AND payload LIKE %s ORDER BY id",
                             (subject, f"%{link_id}%"))  # fmt: skip
    return [json.loads(r["payload"])["data"] for r in rows]


async def _create(suite: Any, client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {suite.agent_token()}"}
    reply = await client.post("/link/create", json={"room": _room(), "mobile": "0815550000", "sms": 0, **body},
                              headers=headers)  # fmt: skip
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_one_time_link_used_once(suite: Any, client: httpx.AsyncClient) -> None:
    link_id = (await _create(suite, client, oneTimeLink=1))["linkID"]
    replies = await asyncio.gather(
        *(
            client.get("/link/getdetail", params={"linkId": link_id}, headers={"User-Agent": IPHONE_UA})
            for _ in range(4)
        )
    )
    statuses = sorted(r.json()["status"] for r in replies)
    assert statuses == ["FAIL", "FAIL", "FAIL", "OK"]
    assert all(r.json()["message"] == "linkID expired" for r in replies if r.json()["status"] == "FAIL")
    used = await _events(suite, "link.link.used", link_id)
    assert len(used) == 1 and used[0]["linkID"] == link_id
    changed = [e["fields"] for e in await _events(suite, "link.link.fields_changed", link_id)]
    assert changed.count({"oneTimeLink": 2}) == 1
    assert {"userAgent": IPHONE_UA, "os": "iOS"} in changed


async def test_fields_changed_for_errors_and_domain_index(suite: Any, client: httpx.AsyncClient) -> None:
    link_id = (await _create(suite, client))["linkID"]
    logged = await client.post("/log", json={"linkID": link_id, "status": "ErrorLocation", "log": "denied"})
    assert logged.json() == {"status": "OK"}
    domain = await client.get("/link/get/domain", params={"linkID": link_id, "type": "video"})
    assert domain.status_code == 200
    changed = [e["fields"] for e in await _events(suite, "link.link.fields_changed", link_id)]
    assert {"errorLocation": "denied"} in changed
    assert any(set(f) == {"domainIndex"} for f in changed)
    # a domain asked for an unknown link writes and publishes nothing
    await client.get("/link/get/domain", params={"linkID": "NoSuch", "type": "video", "service": "999"})
    assert await _events(suite, "link.link.fields_changed", "NoSuch") == []

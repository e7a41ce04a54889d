"""Password brute force on links (link's rpc.link.link.verify_password, behind auth's /auth/verifyuser): at most
5 checks per link in a 15-minute window, then the link is locked even for the right password; a success clears
the count; parallel guesses are counted too; other links are not affected."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from redis.asyncio import Redis

from tests.support import rpc

VERIFY = "rpc.link.link.verify_password"


def _room() -> str:
    return "Lock " + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:8])


async def _link_with_password(suite: Any, client: httpx.AsyncClient, password: str) -> str:
    headers = {"Authorization": f"Bearer {suite.agent_token()}"}
    body = {"room": _room(), "mobile": "0812345678", "password": password, "sms": 0}
    reply = await client.post("/link/create", json=body, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json()["linkID"]


async def test_lockout_after_five_failures(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    link_id = await _link_with_password(suite, client, "right-pw")
    other = await _link_with_password(suite, client, "other-pw")
    for _ in range(5):
        wrong = await rpc(nc, VERIFY, {"linkID": link_id, "password": "guess"})
        assert wrong["ok"] is False and wrong["code"] == "not_found" and "locked" not in wrong["error"]
    locked = await rpc(nc, VERIFY, {"linkID": link_id, "password": "right-pw"})
    assert locked["ok"] is False and locked["code"] == "not_found" and "locked" in locked["error"]
    # another link is not affected
    assert (await rpc(nc, VERIFY, {"linkID": other, "password": "other-pw"}))["ok"] is True
    # the lock lasts until the window (15 minutes from the first attempt) ends
    redis = Redis.from_url(suite.redis_url)
    try:
        ttl = await redis.ttl(f"link:password-attempts:{link_id}")
    finally:
        await redis.aclose()
    assert 0 < ttl <= 900


async def test_success_clears_the_count(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    link_id = await _link_with_password(suite, client, "right-pw")
    for _round in range(3):
        for _ in range(4):
            assert (await rpc(nc, VERIFY, {"linkID": link_id, "password": "guess"}))["ok"] is False
        assert (await rpc(nc, VERIFY, {"linkID": link_id, "password": "right-pw"}))["ok"] is True


async def test_parallel_guesses_are_counted(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    link_id = await _link_with_password(suite, client, "right-pw")
    replies = await asyncio.gather(*(rpc(nc, VERIFY, {"linkID": link_id, "password": f"g{i}"}) for i in range(12)))
    refused_as_locked = [r for r in replies if "locked" in r.get("error", "")]
    assert all(r["ok"] is False for r in replies) and len(refused_as_locked) == 7  # only 5 were checked
    assert (await rpc(nc, VERIFY, {"linkID": link_id, "password": "right-pw"}))["ok"] is False


async def test_lockout_through_verifyuser(suite: Any, client: httpx.AsyncClient) -> None:
    link_id = await _link_with_password(suite, client, "right-pw")
    for _ in range(5):
        wrong = await client.post("/auth/verifyuser", json={"linkID": link_id, "password": "guess"})
        assert wrong.json() == {"status": "FAIL", "message": "invalid id or password"}
    locked = await client.post("/auth/verifyuser", json={"linkID": link_id, "password": "right-pw"})
    assert locked.status_code == 200 and locked.json() == {"status": "FAIL", "message": "invalid id or password"}


async def test_link_without_password_is_never_locked(suite: Any, client: httpx.AsyncClient, nc: Any) -> None:
    headers = {"Authorization": f"Bearer {suite.agent_token()}"}
    reply = await client.post("/link/create", json={"room": _room(), "sms": 0}, headers=headers)
    link_id = reply.json()["linkID"]
    for _ in range(8):
        assert (await rpc(nc, VERIFY, {"linkID": link_id, "password": "anything"}))["ok"] is True

"""POST /link/create and the password check link answers for auth (RPC_LINK_VERIFY_PASSWORD)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jwt
import msgspec
import nats
import pytest

CHARSET = "abcdefghijklmopqrstuvwxyzABCDEFGHIJKLMOPQRSTUVWXYZ"


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


async def _count(suite: Any, table: str) -> int:
    rows = await suite.query("link", f"SELECT COUNT(*) AS n FROM {table}")  # noqa: S608 - fixed table names
    return int(rows[0]["n"])


async def _counts(suite: Any) -> tuple[int, int, int]:
    return (await _count(suite, "link_connect"), await _count(suite, "usage_status_log"), await _count(suite, "outbox"))


async def _create(suite: Any, client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(f"{suite.edge}/link/create", json=body, headers=_auth(suite))
    assert response.status_code == 200, response.text
    return response.json()


async def _link(suite: Any, link_id: str) -> dict[str, Any]:
    rows = await suite.query("link", "SELECT * FROM link_connect WHERE linkID = %s", (link_id,))
    assert len(rows) == 1
    return rows[0]


async def test_create_without_token_answers_original_fail(suite: Any) -> None:
    before = await _counts(suite)
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{suite.edge}/link/create", json={"room": "NoAuthRoom", "mobile": "0811111111"})
    assert response.status_code == 200
    assert response.json() == {"status": "FAIL", "message": "Invalid token"}
    assert await _counts(suite) == before


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("garbage", "jwt malformed"),
        (
            jwt.encode({"iss": "devkey", "exp": 9999999999}, "wrong-secret-wrong-secret-wrong!", "HS256"),
            "invalid signature",
        ),
        (jwt.encode({"iss": "devkey", "exp": 1000}, "secret", "HS256"), "jwt expired"),
    ],
)
async def test_create_with_bad_token_is_rejected(suite: Any, token: str, message: str) -> None:
    before = await _counts(suite)
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{suite.edge}/link/create", json={"room": "BadTokenRoom"}, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "FAIL"
    assert body["data"]["message"] == message
    assert await _counts(suite) == before


async def test_create_new_room_link(suite: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        reply = await _create(
            suite, client, room="Alpha Room 42", mobile="0812345678", userName="Somchai", password="s3cret", service=999
        )
    link_id = reply["linkID"]
    assert len(link_id) == 6 and all(c in CHARSET for c in link_id)
    assert reply["room"] == "Alpha Room "  # digits removed, as the original did
    assert reply["url"] == f"https://localhost:3000/video/{link_id}"
    assert reply["linkType"] == "video"
    assert reply["userName"] == "Somchai"
    assert "password" not in reply
    # room detail from conference, merged in
    assert isinstance(reply["id"], int)
    assert reply["status"] == "open"
    assert reply["roomType"] == "conference"
    expires = datetime.strptime(reply["dtmExpired"], "%Y-%m-%d %H:%M:%S")
    now_bangkok = datetime.now(ZoneInfo("Asia/Bangkok")).replace(tzinfo=None)
    assert abs(expires - now_bangkok - timedelta(days=1)) < timedelta(minutes=5)

    row = await _link(suite, link_id)
    assert row["room"] == "Alpha Room "
    assert row["mobile"] == "0812345678"
    assert row["requirePassword"] == 1
    assert row["password"].startswith("$argon2")
    assert row["service"] == 999
    assert row["share"] == 0
    shares = await suite.query(
        "link",
        "SELECT userName, userType, share, linkType FROM link_connect WHERE room = %s AND share = 1",
        ("Alpha Room ",),
    )
    assert sorted((r["userName"], r["userType"], r["linkType"]) for r in shares) == [
        ("Guest", "user", "video"),
        ("Viewer", "viewer", "video"),
    ]
    usage = await suite.query(
        "link", "SELECT status, room, mobile, data FROM usage_status_log WHERE linkID = %s", (link_id,)
    )
    assert [u["status"] for u in usage] == ["CreateLink"]
    assert "s3cret" not in usage[0]["data"]
    events = await suite.query("link", "SELECT subject, payload FROM outbox WHERE payload LIKE %s", (f"%{link_id}%",))
    assert [e["subject"] for e in events] == ["link.link.created"]
    assert msgspec.json.decode(events[0]["payload"])["data"]["roomCreated"] is True


async def test_create_form_body_for_existing_room_adds_no_share_links(suite: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        first = await _create(suite, client, room="Form Room", mobile="0800000001")
        response = await client.post(
            f"{suite.edge}/link/create",
            data={
                "room": "Form Room",
                "mobile": "0800000002",
                "linkType": "location",
                "isAdmin": "1",
                "oneTimeLink": "1",
            },
            headers=_auth(suite),
        )
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["url"] == f"https://localhost:3000/location/{second['linkID']}"
    assert second["isAdmin"] == "1"
    assert second["id"] == first["id"]
    shares = await suite.query(
        "link", "SELECT COUNT(*) AS n FROM link_connect WHERE room = %s AND share = 1", ("Form Room",)
    )
    assert shares[0]["n"] == 2
    row = await _link(suite, second["linkID"])
    assert (row["linkType"], row["isAdmin"], row["oneTimeLink"], row["requirePassword"], row["password"]) == (
        "location",
        "1",
        1,
        0,
        "",
    )
    assert row["userName"] == "0800000002"  # userName defaults to the mobile


async def test_create_defaults_random_room_and_non_numeric_service(suite: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        reply = await _create(suite, client, service="abc", room="1234!!")
    assert len(reply["room"]) == 6 and all(c in CHARSET for c in reply["room"])
    row = await _link(suite, reply["linkID"])
    assert row["service"] == 999
    assert row["userName"] == ""


@pytest.mark.parametrize(
    "body",
    [
        {"room": "TypesRoom", "autoRecord": "abc"},
        {"room": "TypesRoom", "oneTimeLink": 5},
        {"room": "TypesRoom", "mobile": "0" * 30},
        {"room": "TypesRoom", "room_extra": 1, "chatEnabled": [1]},
        {"room": ["TypesRoom"]},
        {"room": "TypesRoom", "dtmExpired": "not a date"},
        {"room": "TypesRoom", "linkType": "../../etc"},
        {"room": "TypesRoom", "requireJoinPermission": 99999999999},
    ],
)
async def test_create_rejects_bad_types_and_writes_nothing(suite: Any, body: dict[str, Any]) -> None:
    before = await _counts(suite)
    async with httpx.AsyncClient(timeout=15) as client:
        response = await client.post(f"{suite.edge}/link/create", json=body, headers=_auth(suite))
    assert response.status_code == 400, response.text
    assert response.json()["status"] == "FAIL"
    assert await _counts(suite) == before


async def test_create_rejects_unknown_service_and_non_object_body(suite: Any) -> None:
    before = await _counts(suite)
    async with httpx.AsyncClient(timeout=15) as client:
        unknown = await client.post(f"{suite.edge}/link/create", json={"service": 12345}, headers=_auth(suite))
        listed = await client.post(f"{suite.edge}/link/create", json=[1, 2], headers=_auth(suite))
        broken = await client.post(
            f"{suite.edge}/link/create",
            content=b"{not json",
            headers={**_auth(suite), "content-type": "application/json"},
        )
    assert unknown.status_code == 400 and unknown.json() == {"status": "FAIL", "message": "Invalid service"}
    assert listed.status_code == 400 and listed.json()["status"] == "FAIL"
    assert broken.status_code == 400 and broken.json()["status"] == "FAIL"
    assert await _counts(suite) == before


async def test_create_sql_injection_strings_are_stored_literally(suite: Any) -> None:
    mobile = "1' OR '1'='1"
    crm = "x'); DROP TABLE link_connect; --"
    async with httpx.AsyncClient(timeout=15) as client:
        reply = await _create(
            suite, client, room="Inj'; DROP TABLE services; --", mobile=mobile, crmSender=crm, userName="a\"b'c"
        )
    assert reply["room"] == "Inj DROP TABLE services "
    row = await _link(suite, reply["linkID"])
    assert (row["mobile"], row["crmSender"], row["userName"]) == (mobile, crm, "a\"b'c")
    assert await _count(suite, "services") >= 1
    tenants = await suite.query("link", "SELECT name FROM services WHERE id = 999")
    assert tenants == [{"name": "Default"}]


async def test_create_oversized_body_is_413_and_writes_nothing(suite: Any) -> None:
    before = await _counts(suite)
    # Over the service's own limit (1 MiB), sent to the service itself, and through the edge (same limit there).
    big = {"room": "BigRoom", "crmSender": "x" * (2 * 1024 * 1024)}
    huge = {"room": "BigRoom", "crmSender": "x" * (1536 * 1024)}
    async with httpx.AsyncClient(timeout=30) as client:
        direct = await client.post(f"{suite.url('link')}/link/create", json=big, headers=_auth(suite))
        edge = await client.post(f"{suite.edge}/link/create", json=huge, headers=_auth(suite))
    for response in (direct, edge):
        assert response.status_code == 413
        assert response.json()["status"] == "FAIL"
    assert await _counts(suite) == before


async def test_created_link_ids_are_unique(suite: Any) -> None:
    rows = await suite.query(
        "link", "SELECT linkID, COUNT(*) AS n FROM link_connect GROUP BY linkID HAVING COUNT(*) > 1"
    )
    assert rows == []
    keys = await suite.query("link", "SHOW INDEX FROM link_connect WHERE Column_name = 'linkID' AND Non_unique = 0")
    assert keys, "linkID must carry a unique key"


# ---- RPC_LINK_VERIFY_PASSWORD ----------------------------------------------------------------------------
async def _verify(suite: Any, link_id: str, password: str) -> dict[str, Any]:
    nc = await nats.connect(suite.nats_url)
    try:
        msg = await nc.request(
            "rpc.link.link.verify_password", msgspec.json.encode({"linkID": link_id, "password": password}), timeout=5
        )
    finally:
        await nc.close()
    return msgspec.json.decode(msg.data)


async def test_verify_password_argon2_link(suite: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        reply = await _create(suite, client, room="Pw Room", mobile="0811112222", password="open sesame", isAdmin=1)
    ok = await _verify(suite, reply["linkID"], "open sesame")
    assert ok["ok"] is True
    assert ok["data"]["room"] == "Pw Room"
    assert ok["data"]["isAdmin"] == "1"
    assert "password" not in ok["data"]
    wrong = await _verify(suite, reply["linkID"], "open sesame!")
    assert wrong["ok"] is False and wrong["code"] == "not_found"
    unknown = await _verify(suite, "zzzzzz", "whatever")
    assert unknown["ok"] is False and unknown["code"] == "not_found"


async def test_verify_password_legacy_md5_is_rehashed_once(suite: Any) -> None:
    md5 = hashlib.md5(b"legacy-pass").hexdigest()  # noqa: S324 - rows as the original stored them
    await suite.execute(
        "link",
        "INSERT INTO link_connect (linkID, room, mobile, userName, userType, linkType, requirePassword, password, "
        "isAdmin, dtmCreated, dtmExpired) VALUES (%s, %s, '', 'Old', 'user', 'video', 1, %s, '0', NOW(), "
        "NOW() + INTERVAL 1 DAY)",
        ("LegMd5", "Legacy Room", md5),
    )
    wrong = await _verify(suite, "LegMd5", "not-it")
    assert wrong["ok"] is False
    assert (await _link(suite, "LegMd5"))["password"] == md5  # untouched by a failed check
    ok = await _verify(suite, "LegMd5", "legacy-pass")
    assert ok["ok"] is True and ok["data"]["userName"] == "Old"
    stored = (await _link(suite, "LegMd5"))["password"]
    assert stored.startswith("$argon2")
    again = await _verify(suite, "LegMd5", "legacy-pass")
    assert again["ok"] is True
    assert (await _link(suite, "LegMd5"))["password"] == stored  # re-hashed once, not on every check
    assert (await _verify(suite, "LegMd5", md5))["ok"] is False  # the old hash itself is no password


async def test_verify_password_not_required_always_passes(suite: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        reply = await _create(suite, client, room="Open Room", mobile="0811113333")
    result = await _verify(suite, reply["linkID"], "anything")
    assert result["ok"] is True and result["data"]["room"] == "Open Room"


async def test_auth_verifyuser_through_link(suite: Any) -> None:
    if "auth" not in suite.services:
        pytest.skip("auth not started")
    async with httpx.AsyncClient(timeout=15) as client:
        reply = await _create(suite, client, room="Auth Room", mobile="0811114444", password="pa55")
        good = await client.post(
            f"{suite.edge}/auth/verifyuser", json={"linkID": reply["linkID"], "password": "pa55", "userName": "Nurse"}
        )
        bad = await client.post(f"{suite.edge}/auth/verifyuser", json={"linkID": reply["linkID"], "password": "nope"})
    assert good.status_code == 200
    data = good.json()["data"]
    claims = jwt.decode(data["token"], suite.env["LIVEKIT_API_SECRET"], algorithms=["HS256"])
    assert claims["video"]["room"] == "Auth Room"
    assert bad.json() == {"status": "FAIL", "message": "invalid id or password"}

"""POST /link/idems (the IDEMS/CRM case link) through the edge: shape, links written, events for realtime's
/data/<linkID> namespace, the data-socket token, bad input, and nothing written when the case cannot be opened.

When conference does not serve rpc.conference.case.open (suite without it), the test plays conference's side of
that contract on NATS (reply {"caseId"}) for the success case. The failure case runs a link replica on a NATS server
of its own, where nothing answers conference's subjects."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from deploy.local import free_port
from tests.fakes.sms_gateway import start_link_replica

CASE_OPEN = "rpc.conference.case.open"


def _auth(suite: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {suite.agent_token()}"}


async def _tenant_one(suite: Any) -> None:
    await suite.execute(
        "link",
        "INSERT IGNORE INTO services (id, name, prefixTextVideoSMS, prefixTextLocationSMS, domainsVideo,"
        " domainsLocation, smsSenderName) VALUES (1, 'IDEMS', 'video', 'location', 'https://v.example,https://w.example',"
        " 'https://loc.example', 'IDEMS')",
    )


async def _links_of_agent(suite: Any, agent: str) -> list[dict[str, Any]]:
    return await suite.query(
        "link", "SELECT linkID, room, mobile, userType, isAdmin, userName, service FROM link_connect"
        " WHERE crmSender = %s ORDER BY id", (agent,),
    )  # fmt: skip


async def _conference_serves_case_open(nc: Any) -> bool:
    from nats.errors import NoRespondersError

    try:
        await nc.request(CASE_OPEN, b"{}", timeout=2)
    except NoRespondersError:
        return False
    return True


@pytest.fixture
async def case_opener(nc: Any) -> Any:
    """Conference's side of rpc.conference.case.open, when conference does not serve it yet."""
    opened: list[dict[str, Any]] = []
    if await _conference_serves_case_open(nc):
        yield opened
        return

    async def answer(msg: Any) -> None:
        request = json.loads(msg.data)
        opened.append(request)
        await msg.respond(json.dumps({"ok": True, "data": {"caseId": 7000 + len(opened)}}).encode())

    sub = await nc.subscribe(CASE_OPEN, cb=answer)
    try:
        yield opened
    finally:
        await sub.unsubscribe()


async def test_idems_video_link(suite: Any, client: httpx.AsyncClient, case_opener: list[dict[str, Any]]) -> None:
    await _tenant_one(suite)
    agent = "agent-" + uuid.uuid4().hex[:8]
    body = {"ippbxId": "11", "mobile": "0812345678", "agent": "9", "agentName": agent, "linkType": "video",
            "branch": "B7", "sms": 1}  # fmt: skip
    reply = await client.post("/link/idems", json=body, headers=_auth(suite))
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["status"] == "OK"
    data = answer["data"]
    assert set(data) == {"caseId", "cis", "roomId", "linkUserId", "linkAdminId", "linkType", "recordType", "room",
                         "mobile", "userURL", "agentURL", "dataWebsocketURL", "accessToken"}  # fmt: skip
    assert data["cis"] is False and data["linkType"] == "video" and data["recordType"] == "RoomCompositeVideoAudio"
    assert data["mobile"] == "0812345678" and isinstance(data["caseId"], int)
    assert data["userURL"] == f"https://v.example/video/{data['linkUserId']}"
    assert data["agentURL"] == f"https://v.example/video/{data['linkAdminId']}"
    token = data["accessToken"]
    assert data["dataWebsocketURL"] == f"ws://localhost:5500/data/{data['linkUserId']}?token={token}" or data[
        "dataWebsocketURL"
    ].endswith(f"/data/{data['linkUserId']}?token={token}")
    claims = jwt.decode(token, suite.env["LIVEKIT_API_SECRET"], algorithms=["HS256"])
    assert claims["video"] == {"roomJoin": False} and claims["exp"] - claims["nbf"] == 86400
    assert claims["iss"] == suite.env["LIVEKIT_API_KEY"]

    links = await _links_of_agent(suite, agent)
    by_type = {row["userType"]: row for row in links}
    assert set(by_type) == {"user", "admin"}
    assert by_type["user"]["linkID"] == data["linkUserId"] and by_type["user"]["mobile"] == "0812345678"
    assert by_type["admin"]["linkID"] == data["linkAdminId"] and by_type["admin"]["isAdmin"] == "1"
    assert by_type["admin"]["userName"] == agent and all(row["service"] == 1 for row in links)
    assert all(row["room"] == data["room"] for row in links)
    shares = await suite.query("link", "SELECT userName FROM link_connect WHERE room = %s AND share = 1",
                               (data["room"],))  # fmt: skip
    assert sorted(r["userName"] for r in shares) == ["Guest", "Viewer"]

    # The case was asked of conference with the room's id and the branch.
    if case_opener:
        asked = case_opener[-1]
        assert asked["room"] == data["room"] and asked["roomId"] == data["roomId"] and asked["organization"] == "B7"
        assert asked["service"] == 1 and asked["caseType"] == "video" and asked["mobileCreated"] == "0812345678"

    # link.link.created for the user link: realtime registers /data/<linkUserId> from it.
    events = await suite.query("link", "SELECT payload FROM outbox WHERE subject = 'link.link.created'"
                               " AND payload LIKE %s", (f"%{data['linkUserId']}%",))  # fmt: skip
    assert len(events) == 1 and json.loads(events[0]["payload"])["data"]["room"] == data["room"]

    # The patient's link opens.
    detail = await client.get("/link/getdetail", params={"linkId": data["linkUserId"]})
    assert detail.json()["status"] == "OK" and detail.json()["data"]["room"] == data["room"]


async def test_idems_location_has_no_agent_url(suite: Any, client: httpx.AsyncClient, case_opener: Any) -> None:
    await _tenant_one(suite)
    body = {"mobile": "0812345679", "agentName": "a-" + uuid.uuid4().hex[:6], "linkType": "location", "branch": 3}
    reply = await client.post("/link/idems", json=body, headers=_auth(suite))
    data = reply.json()["data"]
    assert "agentURL" not in data and data["userURL"] == f"https://loc.example/location/{data['linkUserId']}"


async def test_idems_bad_input(suite: Any, client: httpx.AsyncClient) -> None:
    await _tenant_one(suite)
    agent = "bad-" + uuid.uuid4().hex[:6]
    no_token = await client.post("/link/idems", json={"linkType": "video", "branch": "1"})
    assert no_token.json()["status"] == "FAIL"
    cases = [
        ({"linkType": "video"}, 200, "Invalid branch"),
        ({"linkType": "hls", "branch": "1"}, 200, "Invalid linkType"),
        ({"branch": "1"}, 200, "Invalid linkType"),
        ({"linkType": "video", "branch": "1", "mobile": "08' OR 1=1 --"}, 400, "Invalid mobile"),
        ({"linkType": "video", "branch": "1", "mobile": "0" * 21}, 400, None),
        ({"linkType": "video", "branch": "1", "agentName": "x" * 101}, 400, None),
    ]
    for body, status, message in cases:
        reply = await client.post("/link/idems", json={**body, "agentName": body.get("agentName", agent)},
                                  headers=_auth(suite))  # fmt: skip
        assert reply.status_code == status, (body, reply.text)
        assert reply.json()["status"] == "FAIL"
        if message:
            assert reply.json()["message"] == message
    assert await _links_of_agent(suite, agent) == []


def _start_nats(run_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [shutil.which("nats-server") or "/usr/sbin/nats-server", "-a", "127.0.0.1", "-p", str(port), "-js",
            "-sd", str(run_dir / "nats-alone")]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 - fixed argv
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, f"nats://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                process.terminate()
                raise


@pytest.fixture(scope="module")
async def link_alone(suite: Any) -> AsyncIterator[tuple[str, str]]:
    """A link replica on a NATS server of its own, where nothing serves conference's subjects: its requests to
    conference really find no responder. It has its own database and Redis db too, so its outbox relay, SMS
    worker and scheduler never take the suite's rows or jobs. Yields (base URL, database name)."""
    database = f"{suite.db_name('link')}_alone"
    await suite.execute("link", f"CREATE DATABASE IF NOT EXISTS `{database}`")
    nats_server, nats_url = _start_nats(suite.local.run_dir)
    redis_url = suite.redis_url.rsplit("/", 1)[0] + "/9"
    replica = None
    try:
        base, replica = start_link_replica(
            suite, "link-alone", NATS_URL=nats_url, MYSQL_DATABASE=database, REDIS_URL=redis_url
        )
        yield base, database
    finally:
        if replica is not None:
            replica.terminate()
            replica.wait(20)
        nats_server.terminate()
        nats_server.wait(10)
        await suite.execute("link", f"DROP DATABASE IF EXISTS `{database}`")


async def test_idems_nothing_written_without_a_case(suite: Any, link_alone: tuple[str, str]) -> None:
    base, database = link_alone
    tenant = (
        f"INSERT IGNORE INTO `{database}`.services (id, name, prefixTextVideoSMS, prefixTextLocationSMS,"  # noqa: S608
        " domainsVideo, domainsLocation, smsSenderName) VALUES (1, 'IDEMS', 'video', 'location', 'https://v.example',"
        " 'https://loc.example', 'IDEMS')"
    )  # the test's own database name in the text
    await suite.execute("link", tenant)
    body = {"mobile": "0812345670", "agentName": "nocase-agent", "linkType": "video", "branch": "1", "sms": 1}
    async with httpx.AsyncClient(base_url=base, timeout=15) as client:
        reply = await client.post("/link/idems", json=body, headers=_auth(suite))
    assert reply.status_code == 503, reply.text
    assert reply.json() == {"status": "FAIL", "message": "conference service unavailable"}
    for table in ("link_connect", "sms_message", "usage_status_log", "outbox"):
        rows = await suite.query("link", f"SELECT COUNT(*) AS n FROM `{database}`.`{table}`")  # noqa: S608 - names
        assert rows == [{"n": 0}], table

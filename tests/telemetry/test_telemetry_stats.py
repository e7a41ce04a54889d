"""/stats/* (and /user/log, /link/list) answered from telemetry's statistics read model, checked against the
original's SQL.

A data set is loaded through the services' own APIs (links, positions and picked locations through link, cases
and participants through conference, track_published webhooks through recording). Once telemetry's read model
holds it, the ORIGINAL's statistics queries run over the owning services' tables, joined in a scratch schema of
views that emulates the original's single database, and every figure /stats/* answers must equal theirs.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncmy
import httpx
import pytest
from asyncmy.cursors import DictCursor
from nats.js.api import DeliverPolicy

from contracts.conference import RPC_PRESENCE_CONNECT
from contracts.link import LINK_FIELDS_CHANGED, LinkFieldsChanged
from contracts.recording import RECORDING_WEBHOOK_RECEIVED, WebhookReceived
from servicekit.bus import new_event
from servicekit.clock import js_iso
from tests.fakes import livekit_webhooks as lkw
from tests.support import rpc

SERVICE = 999  # the tenant link seeds
BANGKOK = ZoneInfo("Asia/Bangkok")
INJECTION = "1' OR '1'='1'; DROP TABLE stats_link; --"

pytestmark = pytest.mark.usefixtures("suite")


def _needs(suite: Any, *services: str) -> None:
    missing = [s for s in services if s not in suite.services]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


def _letters(n: int) -> str:
    return "".join(random.choices(string.ascii_letters, k=n))


def _mobile() -> str:
    return "08" + "".join(random.choices(string.digits, k=8))


def _now_local() -> datetime:
    return datetime.now(BANGKOK).replace(tzinfo=None, microsecond=0)


def _plain(value: Any) -> Any:
    """A value as the original's mysql2 driver handed it to res.json."""
    if isinstance(value, datetime):
        return js_iso(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


# ---- the original's single database, emulated ----------------------------------------------------------------
@pytest.fixture
async def original(suite: Any) -> AsyncIterator[Any]:
    """A connection to a scratch schema whose views are the original's tables, read from the owning services."""
    _needs(suite, "link", "conference", "telemetry")
    scratch = "stats_original_" + uuid.uuid4().hex[:10]
    tables = {
        "link_connect": "link",
        "room_conference": "conference",
        "case_data": "conference",
        "room_user": "conference",
        "data_log": "telemetry",
    }
    conn = await asyncmy.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"CREATE DATABASE `{scratch}`")
            for table, service in tables.items():
                await cur.execute(
                    f"CREATE VIEW `{scratch}`.`{table}` AS SELECT * FROM `{suite.db_name(service)}`.`{table}`"  # noqa: S608
                )
            await cur.execute(f"USE `{scratch}`")
        yield conn
    finally:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{scratch}`")
        conn.close()


async def _sql(conn: Any, sql: str, args: Any = ()) -> list[dict[str, Any]]:
    async with conn.cursor(DictCursor) as cur:
        await cur.execute(sql, args)
        return [{k: _plain(v) for k, v in row.items()} for row in await cur.fetchall()]


# The original's statistics SQL (stats.service.js), with its interpolated values turned into parameters.
ORIGINAL_SUMMARY_FROM = (
    " FROM link_connect LEFT JOIN room_conference ON room_conference.room = link_connect.room"
    " LEFT JOIN case_data ON case_data.roomId = room_conference.id"
    " WHERE mobile != '' AND case_data.caseId IS NOT NULL"
)
ORIGINAL_SUMMARY_COLUMNS = (
    "link_connect.id, case_data.caseId, case_data.organization, link_connect.recordId, link_connect.mobile,"
    " link_connect.domainIndex, link_connect.share, link_connect.enabled, link_connect.userName, link_connect.room,"
    " link_connect.userType, link_connect.crmSender, link_connect.accuracy, link_connect.latitude,"
    " link_connect.longitude, link_connect.patientLatitude, link_connect.patientLongitude, link_connect.service,"
    " link_connect.errorVideo, link_connect.errorLocation, link_connect.os, link_connect.userAgent,"
    " link_connect.oneTimeLink, link_connect.dtmCreated, link_connect.dtmExpired, link_connect.linkType"
)


def _original_filters(params: dict[str, str]) -> tuple[str, list[Any]]:
    clauses, args = "", []
    start, end = params.get("dateTimeStart"), params.get("dateTimeEnd")
    if start and end:
        clauses += " AND link_connect.dtmCreated BETWEEN %s AND %s"
        args += [start, end]
    for name, column in (("linkType", "link_connect.linkType"), ("userType", "link_connect.userType"),
                         ("service", "case_data.service")):  # fmt: skip
        if params.get(name):
            clauses += f" AND {column} = %s"
            args.append(params[name])
    if params.get("search"):
        clauses += " AND (link_connect.mobile LIKE %s OR link_connect.crmSender LIKE %s"
        clauses += " OR link_connect.linkType LIKE %s)"
        args += [f"%{params['search']}%"] * 3
    for name, column in (("organization", "case_data.organization"), ("mobile", "link_connect.mobile"),
                         ("crmSender", "link_connect.crmSender")):  # fmt: skip
        if params.get(name):
            clauses += f" AND {column} LIKE %s"
            args.append(f"%{params[name]}%")
    return clauses, args


async def _original_summary(conn: Any, params: dict[str, str], limit: int, offset: int) -> tuple[int, list[dict]]:
    clauses, args = _original_filters(params)
    count = await _sql(conn, f"SELECT COUNT(*) AS count{ORIGINAL_SUMMARY_FROM}{clauses}", args)
    rows = await _sql(
        conn,
        f"SELECT {ORIGINAL_SUMMARY_COLUMNS}{ORIGINAL_SUMMARY_FROM}{clauses}"
        f" ORDER BY link_connect.dtmCreated DESC LIMIT %s OFFSET %s",
        [*args, limit, offset],
    )
    return int(count[0]["count"]), rows


async def _original_generate(conn: Any, day: str) -> dict[str, dict[str, Any]]:
    """The original's /stats/gen loop (its intended result: track data parsed), keyed by linkID."""
    links = await _sql(
        conn,
        "SELECT * FROM link_connect WHERE mobile != '' AND (dtmCreated >= %s AND dtmCreated <= %s)"
        " ORDER BY link_connect.id DESC LIMIT 999999",
        (f"{day} 00:00:00", f"{day} 23:59:59"),
    )
    out = {}
    for link in links:
        item = {"linkID": link["linkID"], "os": link["os"], "type": link["linkType"], "identity": "",
                "dtmCreated": link["dtmCreated"], "location": 0, "video": 0, "audio": 0}  # fmt: skip
        users = await _sql(
            conn, "SELECT identity FROM room_user WHERE room_user.room = %s AND userType = 'user' ORDER BY id DESC",
            (link["room"],),
        )  # fmt: skip
        for user in users:
            tracks = await _original_tracks(conn, user["identity"])
            item["identity"] = user["identity"]
            item["video"] = int(any(json.loads(t["data"])["track"]["source"] == "CAMERA" for t in tracks))
            item["audio"] = int(any(json.loads(t["data"])["track"]["source"] == "MICROPHONE" for t in tracks))
        if link["latitude"] is not None and link["longitude"] is not None:
            item["location"] += 1
        out[link["linkID"]] = item
    return out


async def _original_tracks(conn: Any, identity: str) -> list[dict[str, Any]]:
    rows = await _sql(
        conn,
        "SELECT JSON_EXTRACT(data, '$.event') AS EVENT,"
        " JSON_EXTRACT(JSON_EXTRACT(data, '$.participant'), '$.identity') AS identity,"
        " JSON_EXTRACT(JSON_EXTRACT(data, '$.room'), '$.name') AS roomName, data"
        " FROM data_log WHERE JSON_UNQUOTE(JSON_EXTRACT(JSON_EXTRACT(data, '$.participant'), '$.identity')) = %s"
        " AND JSON_UNQUOTE(JSON_EXTRACT(data, '$.event')) = 'track_published' ORDER BY id",
        (identity,),
    )
    for row in rows:  # mysql2 parsed MySQL's JSON results; MariaDB returns their JSON text
        for key in ("EVENT", "identity", "roomName"):
            row[key] = json.loads(row[key]) if row[key] is not None else None
    return rows


async def _original_user(conn: Any, mobile: str) -> dict[str, Any]:
    found = await _sql(
        conn,
        "SELECT identity FROM room_user WHERE room_user.userName = %s AND userType = 'user' ORDER BY id DESC LIMIT 1",
        (mobile,),
    )
    if not found:
        return {"message": "invalid user"}
    return {"track_logs": await _original_tracks(conn, found[0]["identity"])}


# ---- loading the data set through the services ---------------------------------------------------------------
class DataSet:
    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.crm = "stats" + self.tag
        self.org = "Org" + self.tag
        self.rooms = {name: "St" + _letters(12) for name in ("a", "b", "c")}
        self.mobiles = {name: _mobile() for name in ("a1", "a2", "b1", "c1")}
        self.links: dict[str, str] = {}
        self.identities: dict[str, str] = {}


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 200, (path, response.text)
    return response.json()


async def _webhook(suite: Any, nc: Any, client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    """A LiveKit webhook: through recording when it runs, else as recording would publish it."""
    if "recording" in suite.services:
        key, secret = suite.env["LIVEKIT_API_KEY"], suite.env["LIVEKIT_API_SECRET"]
        assert (await lkw.post(client, body, key, secret)).status_code == 200
        return
    raw = json.dumps(body)
    hook = WebhookReceived(eventId=body["id"], event=body["event"], room=body["room"]["name"], data=raw)
    event = new_event(RECORDING_WEBHOOK_RECEIVED, hook)
    payload = json.dumps({"id": event.id, "subject": event.subject, "version": 1, "occurred_at": event.occurred_at,
                          "data": event.data}).encode()  # fmt: skip
    await nc.jetstream().publish(RECORDING_WEBHOOK_RECEIVED, payload, headers={"Nats-Msg-Id": event.id})


def _track(room: str, identity: str, source: str) -> dict[str, Any]:
    kind = "VIDEO" if source == "CAMERA" else "AUDIO"
    track = {"sid": "TR_" + uuid.uuid4().hex[:10], "type": kind, "source": source, "name": source.lower()}
    return lkw.event("track_published", room=room, participant=lkw.participant(identity), track=track)


async def _load(suite: Any, nc: Any, client: httpx.AsyncClient) -> DataSet:
    data = DataSet()
    plan = [("a1", "a", "video"), ("a2", "a", "location"), ("b1", "b", "video"), ("c1", "c", "video")]
    for name, room_key, link_type in plan:
        reply = await _post(
            client,
            "/link/create",
            {"room": data.rooms[room_key], "mobile": data.mobiles[name], "linkType": link_type, "service": SERVICE,
             "crmSender": data.crm, "sms": 0},
        )  # fmt: skip
        data.links[name] = reply["linkID"]
    # Cases: room a one, room b two (the original's join lists b's link once per case), room c none.
    for room_key, organization in (("a", data.org + "A"), ("b", data.org + "B"), ("b", data.org + "B2")):
        body = {"userName": "Dr " + data.tag, "room": data.rooms[room_key], "mobile": "0800000000",
                "linkType": "video", "service": SERVICE, "organization": organization}  # fmt: skip
        assert (await _post(client, "/case/create", body))["status"] == "OK"
    # The patient of a1 shares a position and picks one on the map; b1 shares a position only.
    located = {"linkID": data.links["a1"], "latitude": 13.7563, "longitude": 100.5018, "accuracy": 12}
    assert (await _post(client, "/link/update/latlng", located))["status"] == "OK"
    located = {"linkID": data.links["b1"], "latitude": 18.79, "longitude": 98.98, "accuracy": 7.5}
    assert (await _post(client, "/link/update/latlng", located))["status"] == "OK"
    picked = {"linkID": data.links["a1"], "room": data.rooms["a"], "userType": "user",
              "pickLocation": {"latitude": 13.75, "longitude": 100.52}}  # fmt: skip
    await _post(client, "/link/multilatlng/send", picked)
    # Participants (room_user, through conference's presence API): room a's patient joins twice under two
    # identities (the oldest is the one /stats/gen reports, the newest the one /stats/user reads); an agent.
    participants = [("pa1", "a", "a1", "user"), ("agent", "a", None, "agent"), ("pa2", "a", "a1", "user"),
                    ("pb1", "b", "b1", "user")]  # fmt: skip
    for key, room_key, mobile_key, user_type in participants:
        identity = f"{key}-{data.tag}"
        data.identities[key] = identity
        user_name = data.mobiles[mobile_key] if mobile_key else "Agent " + data.tag
        reply = await rpc(
            nc,
            RPC_PRESENCE_CONNECT,
            {"room": data.rooms[room_key], "identity": identity, "socketId": uuid.uuid4().hex, "hasMetadata": True,
             "userName": user_name, "userType": user_type},
        )  # fmt: skip
        assert reply["ok"], reply
    # Tracks: pa1 publishes camera + microphone, pa2 only a microphone, pb1 only a camera.
    for key, room_key, source in (("pa1", "a", "CAMERA"), ("pa1", "a", "MICROPHONE"), ("pa2", "a", "MICROPHONE"),
                                  ("pb1", "b", "CAMERA")):  # fmt: skip
        await _webhook(suite, nc, client, _track(data.rooms[room_key], data.identities[key], source))
    return data


async def _count(suite: Any, sql: str, args: Any) -> int:
    return int((await suite.query("telemetry", sql, args))[0]["n"])


async def _wait_read_model(suite: Any, data: DataSet, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    rooms = list(data.rooms.values())
    marks = ", ".join(["%s"] * len(rooms))
    while True:
        links = await _count(
            suite,
            "SELECT COUNT(*) AS n FROM stats_link WHERE crmSender = %s AND latitude IS NOT NULL"
            " AND (patientLatitude IS NOT NULL OR linkID != %s)",
            (data.crm, data.links["a1"]),
        )
        cases, users, tracks = [
            await _count(suite, f"SELECT COUNT(*) AS n FROM {table} WHERE {column} IN ({marks})", rooms)  # noqa: S608
            for table, column in (("stats_case", "room"), ("stats_participant", "room"), ("stats_track", "roomName"))
        ]
        data_log = await _count(
            suite, "SELECT COUNT(*) AS n FROM data_log WHERE data LIKE %s", (f"%track_published%{data.tag}%",)
        )
        counts = (links, cases, users, tracks, data_log)
        if counts[:2] == (2, 3) and counts[2] >= 4 and counts[3:] == (4, 4):
            return
        if loop.time() > deadline:
            raise AssertionError(f"read model incomplete: links, cases, users, tracks, data_log = {counts}")
        await asyncio.sleep(0.25)


@pytest.fixture
async def agent(suite: Any) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {suite.agent_token()}"}
    async with httpx.AsyncClient(base_url=suite.edge, timeout=20, headers=headers) as http:
        yield http


# ---- the comparison ------------------------------------------------------------------------------------------
def _without_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # `id` is link_connect.id in the original; link's LinkCreated does not carry it yet (see the report).
    return sorted(json.dumps({k: v for k, v in r.items() if k != "id"}, sort_keys=True) for r in rows)


async def test_every_stats_figure_matches_the_original_sql(suite: Any, nc: Any, agent: Any, original: Any) -> None:
    _needs(suite, "link", "conference", "telemetry")
    started = _now_local()
    data = await _load(suite, nc, agent)
    await _wait_read_model(suite, data)
    finished = _now_local() + timedelta(seconds=1)

    # /stats/summary and /link/list: several filter sets, each isolating this data set.
    window = {"dateTimeStart": str(started), "dateTimeEnd": str(finished)}
    filter_sets = [
        {"crmSender": data.crm},
        {"crmSender": data.crm, **window},
        {"search": data.crm, "linkType": "video"},
        {"organization": data.org + "B"},
        {"organization": data.org, "service": str(SERVICE), "userType": "user"},
        {"mobile": data.mobiles["a2"]},
        {"crmSender": data.crm, "linkType": "location"},
        {"crmSender": data.crm, "dateTimeStart": "2000-01-01", "dateTimeEnd": "2000-01-02"},
    ]
    for params in filter_sets:
        for path in ("/stats/summary", "/link/list"):
            answer = await agent.get(path, params=params)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            count, rows = await _original_summary(original, params, 100, 0)
            assert body["count"] == count, params
            assert count > 0 or params.get("dateTimeStart") == "2000-01-01", params  # a real comparison
            assert (body["currentPage"], body["limit"], body["totalPages"]) == (1, 100, -(-count // 100))
            assert _without_id(body["data"]) == _without_id(rows), params
            created = [r["dtmCreated"] for r in body["data"]]
            assert created == sorted(created, reverse=True)
    everything = await agent.get("/stats/summary", params={"crmSender": data.crm})
    assert everything.json()["count"] == 4  # a1 and a2 (room a, one case) + b1 twice (room b, two cases)
    # paging: one row per page
    pages = [(await agent.get("/stats/summary", params={"crmSender": data.crm, "limit": "1", "page": str(p)})).json()
             for p in (1, 2, 3, 4, 5)]  # fmt: skip
    assert [len(p["data"]) for p in pages] == [1, 1, 1, 1, 0] and pages[0]["totalPages"] == 4
    assert _without_id([p["data"][0] for p in pages[:4]]) == _without_id(everything.json()["data"])

    # /stats/device and /stats/type: the test's time window.
    window = {"dateTimeStart": str(started), "dateTimeEnd": str(finished)}
    device = (await agent.get("/stats/device", params=window)).json()
    expected = await _sql(
        original,
        "SELECT os, COUNT(*) AS COUNT FROM link_connect WHERE mobile != ''"
        " AND link_connect.dtmCreated BETWEEN %s AND %s GROUP BY os",
        (window["dateTimeStart"], window["dateTimeEnd"]),
    )
    assert sorted(device, key=repr) == sorted(expected, key=repr)
    assert sum(d["COUNT"] for d in device) >= 4
    types = (await agent.get("/stats/type", params=window)).json()
    expected = await _sql(
        original,
        "SELECT linkType, COUNT(*) AS count FROM link_connect WHERE mobile != ''"
        " AND link_connect.dtmCreated BETWEEN %s AND %s GROUP BY linkType",
        (window["dateTimeStart"], window["dateTimeEnd"]),
    )
    assert sorted(types, key=repr) == sorted(expected, key=repr)
    assert {t["linkType"] for t in types} >= {"video", "location"}

    # /stats/gen and /stats/generate: this data set's links, per link.
    day = started.strftime("%Y-%m-%d")
    mine = set(data.links.values())
    reference = {k: v for k, v in (await _original_generate(original, day)).items() if k in mine}
    assert reference[data.links["a1"]] | {"dtmCreated": None} == {
        "linkID": data.links["a1"], "os": None, "type": "video", "identity": data.identities["pa1"],
        "dtmCreated": None, "location": 1, "video": 1, "audio": 1,
    }  # fmt: skip
    for path in ("/stats/gen", "/stats/generate"):
        answer = (await agent.get(path, params={"dtmStart": day, "dtmEnd": day})).json()
        assert isinstance(answer, list) and len(answer) == 1
        got = {item["linkID"]: item for item in answer[0] if item["linkID"] in mine}
        assert got == reference, path
    unknown_os = (await agent.get("/stats/gen", params={"os": "other", "dtmStart": day, "dtmEnd": day})).json()
    assert mine <= {item["linkID"] for item in unknown_os[0]}
    assert not mine & {i["linkID"] for i in (await agent.get("/stats/gen", params={"os": "iOS"})).json()[0]}

    # /stats/user, /stats/case, /user/log
    for mobile in (data.mobiles["a1"], data.mobiles["b1"], data.mobiles["c1"]):
        expected_user = await _original_user(original, mobile)
        for path in ("/stats/user", "/stats/case", "/user/log"):
            assert (await agent.get(path, params={"mobile": mobile})).json() == expected_user, (path, mobile)
    a1 = (await agent.get("/user/log", params={"mobile": data.mobiles["a1"]})).json()
    assert [t["identity"] for t in a1["track_logs"]] == [data.identities["pa2"]]  # the newest identity of a1
    assert json.loads(a1["track_logs"][0]["data"])["track"]["source"] == "MICROPHONE"
    assert (await agent.get("/stats/user", params={"mobile": data.mobiles["c1"]})).json() == {"message": "invalid user"}


async def test_link_fields_changed_reaches_device_and_summary(suite: Any, nc: Any, agent: Any) -> None:
    """Columns link writes after creation (os/userAgent on getdetail, error texts on POST /log) arrive as
    LINK_FIELDS_CHANGED; the read model applies the known columns only, once per event."""
    _needs(suite, "link", "conference", "telemetry")
    data = DataSet()
    room = data.rooms["a"]
    reply = await _post(agent, "/link/create", {"room": room, "mobile": data.mobiles["a1"], "service": SERVICE,
                                                "crmSender": data.crm, "sms": 0})  # fmt: skip
    link_id = reply["linkID"]
    await _post(agent, "/case/create", {"room": room, "service": SERVICE, "organization": data.org})
    fields = {"os": "Android", "userAgent": "Mozilla/5.0 (Linux; Android 14)", "errorVideo": "NotAllowedError",
              "password": "must not be stored", "id": 1}  # fmt: skip
    event = new_event(LINK_FIELDS_CHANGED, LinkFieldsChanged(linkID=link_id, fields=fields))
    raw = json.dumps({"id": event.id, "subject": event.subject, "version": 1, "occurred_at": event.occurred_at,
                      "data": event.data}).encode()  # fmt: skip
    js = nc.jetstream()
    await js.publish(LINK_FIELDS_CHANGED, raw, headers={"Nats-Msg-Id": event.id})
    await js.publish(LINK_FIELDS_CHANGED, raw, headers={"Nats-Msg-Id": uuid.uuid4().hex})  # a redelivery
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        body = (await agent.get("/stats/summary", params={"crmSender": data.crm})).json()
        if body["count"] == 1 and body["data"][0]["os"] == "Android":
            break
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.25)
    row = body["data"][0]
    assert (row["os"], row["userAgent"], row["errorVideo"], row["errorLocation"]) == (
        "Android",
        fields["userAgent"],
        "NotAllowedError",
        None,
    )
    assert row["organization"] == data.org and row["crmSender"] == data.crm and row["mobile"] == data.mobiles["a1"]
    handled = await suite.query(
        "telemetry", "SELECT COUNT(*) AS n FROM handled_event WHERE consumer = %s AND event_id = %s",
        ("telemetry-stats-link", event.id),
    )  # fmt: skip
    assert handled[0]["n"] == 1
    gen = (await agent.get("/stats/gen", params={"os": "Android"})).json()[0]
    assert link_id in {item["linkID"] for item in gen}


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/stats/summary", {"dateTimeStart": "2024-13-45", "dateTimeEnd": "2024-01-01"}),
        ("/stats/summary", {"dateTimeStart": INJECTION, "dateTimeEnd": "2024-01-01"}),
        ("/link/list", {"dateTimeStart": "yesterday", "dateTimeEnd": "today"}),
        ("/stats/summary", {"crmSender": "x" * 101}),
        ("/stats/summary", {"service": INJECTION}),
        ("/stats/device", {"dateTimeStart": INJECTION}),
        ("/stats/device", {"dateTimeStart": "2024-01-01", "dateTimeEnd": "garbage"}),
        ("/stats/type", {"dateTimeStart": "01/02/2024", "dateTimeEnd": "2024-01-01"}),
        ("/stats/gen", {"dtmStart": "2024-01-01", "dtmEnd": INJECTION}),
        ("/stats/generate", {"dtmStart": "2024-01-01 10:00:00", "dtmEnd": "2024-01-02"}),
        ("/stats/gen", {"os": "x" * 101}),
        ("/user/log", {"mobile": "9" * 101}),
    ],
)
async def test_bad_input_is_a_4xx_envelope(suite: Any, agent: Any, path: str, params: dict[str, str]) -> None:
    _needs(suite, "telemetry")
    answer = await agent.get(path, params=params)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["status"] == "FAIL" and answer.json()["message"]


async def test_injection_strings_in_filters_are_plain_text(suite: Any, agent: Any) -> None:
    _needs(suite, "telemetry")
    for params in ({"search": INJECTION}, {"organization": INJECTION}, {"sortBy": INJECTION, "sortOrder": INJECTION},
                   {"mobile": "%"}, {"crmSender": "%_\\"}):  # fmt: skip
        body = (await agent.get("/stats/summary", params=params)).json()
        if set(params) == {"sortBy", "sortOrder"}:
            assert body["count"] >= 0 and body["limit"] == 100  # unknown sort -> dtmCreated DESC
        else:
            assert (body["count"], body["data"]) == (0, []), params
    assert (await agent.get("/stats/gen", params={"os": INJECTION})).json() == [[]]
    assert (await agent.get("/stats/user", params={"mobile": INJECTION})).json() == {"message": "invalid user"}
    tables = await suite.query("telemetry", "SELECT COUNT(*) AS n FROM stats_link")
    assert tables[0]["n"] >= 0  # the table is still there


async def test_summary_defaults_and_limits(suite: Any, agent: Any) -> None:
    _needs(suite, "telemetry")
    cases = [({}, 100, 1), ({"limit": "0", "page": "-3"}, 100, 1), ({"limit": "abc"}, 100, 1),
             ({"limit": "900", "page": "2"}, 500, 2), ({"limit": "7x", "page": "3"}, 7, 3)]  # fmt: skip
    for params, limit, page in cases:
        body = (await agent.get("/stats/summary", params=params)).json()
        assert (body["limit"], body["currentPage"]) == (limit, page), params
        assert set(body) == {"count", "currentPage", "totalPages", "limit", "data"}


async def test_consumers_replay_the_streams_from_their_start(suite: Any, nc: Any) -> None:
    """The read model can be rebuilt from JetStream: its durable consumers deliver from the first event."""
    _needs(suite, "telemetry")
    js = nc.jetstream()
    consumers = [("EVENTS_LINK", "telemetry-stats-link"), ("EVENTS_CONFERENCE", "telemetry-stats-conference"),
                 ("EVENTS_RECORDING", "telemetry-stats-tracks")]  # fmt: skip
    for stream, durable in consumers:
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            try:
                info = await js.consumer_info(stream, durable)
                break
            except Exception:
                assert asyncio.get_running_loop().time() < deadline, f"{durable} not created"
                await asyncio.sleep(0.2)
        assert info.config.deliver_policy == DeliverPolicy.ALL, durable

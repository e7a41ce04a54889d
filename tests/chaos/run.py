"""Faults under load: a steady mixed load through the edge of a private suite while faults are injected in turn,
then, after each, checked: nothing acknowledged lost, nothing applied twice, no emit missed but what the contract
allows.

    uv run python -m tests.chaos [--faults nats-kill,mariadb-stop,...] [--rate 50] [--clients 200] [--recovery 90]

It starts its own suite and sends only to it: auth, conference, link, telemetry, recording and realtime behind an
nginx edge on free ports of 127.0.0.1, a second instance of each behind the same upstream unless ``--single``, and a
private NATS, Redis and MariaDB (``mariadbd`` on a fresh datadir in the run folder, so it can be frozen and killed;
the machine's server is never touched). Load, ``--rate`` requests/s in all: patients' positions (POST
/link/update/latlng, each with a unique latitude so it can be traced), link creation (POST /link/create with an
agent token), signed LiveKit webhooks (POST /webhook, unique event ids, ``track_published`` so telemetry consumes
each) and, a twentieth of it when auth runs, agent token renewals (GET /auth/create); and ``--clients`` official
socket.io-clients (one Node process, tests/js/chaos-clients.mjs) on the positions' link namespace
``/data/<linkID>`` through the edge, reconnecting on their own, each recording the ``position`` emits it gets, plus
a tenth as many patients' clients in the link's room namespace ``/<room>`` (opened in conference first), the first
of them sending chat lines (``chat-message``, every 20th load step; chat has no HTTP route: realtime stores it
through conference over NATS), each recording the ``chat-message`` emits.

Faults (each: load before, the fault, recovery, load after, then checks; "recovery s" runs from the restart of
what was stopped until every service's /ready says 200 and every outbox row left unpublished at that moment, the
"outbox backlog at lift", is published):
``nats-kill`` (kill -9 the private NATS, down 4 s, restarted on its port and store dir), ``redis-kill`` (the same
for Redis), ``mariadb-stop`` (mariadbd frozen with SIGSTOP for 10 s, then SIGCONT: connections stay open and
nothing answers), ``mariadb-kill`` (kill -9 mariadbd, restarted on its datadir: InnoDB crash recovery),
``auth-kill``/``conference-kill``/``link-kill``/``telemetry-kill``/``recording-kill``/``realtime-kill`` (kill -9
one instance while the other serves; for realtime the one holding the clients, which reconnect to the other),
``nats-outage`` (NATS down 12 s while writes pile up in the outboxes, then back: the outboxes drain).

Checks per fault, over the writes sent during it: every 2xx position has its usage row and exactly one published
LINK_LOCATION_UPDATED, handled once by telemetry (handled_event); every 2xx link has its link_connect row and its
LINK_CREATED published once and handled by telemetry; every 2xx webhook has its receipt and exactly one published
RECORDING_WEBHOOK_RECEIVED, handled by telemetry; every chat line acknowledged (its sender got realtime's broadcast,
sent only once conference stored it) is in chat_message, none twice; no request ran past its 10 s timeout; no
answer was a 500 (a dependency's outage answers 503); /ready
answered 503 on some service while a broker or MariaDB was down; no process died but the one killed. Missed emits:
per client, the acknowledged positions (room clients: chat lines) whose emit it never got. Realtime replays no emit
after a reconnect, and while Redis is away its pub/sub loses the emits of the other instance (README "High
availability"), so a miss is allowed within MARGIN of a client's own reconnect or from a Redis kill until REDIS_TAIL
after Redis is back; any other miss ("other") fails the run. Duplicate emits: per client, the positions (room
clients: chat lines) it got more than once; allowed only for those sent in the same Redis window (a handled-event
mark lost with Redis) or within MARGIN of a realtime kill (an instance killed between its emit and its mark: the
redelivery is emitted again). Prints a markdown table; exit 1 on a lost write, a duplicate, a hung request, a 500,
an "other" missed emit or a duplicate emit outside those windows.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncmy
import httpx
import jwt
import nats
from asyncmy.cursors import DictCursor

from contracts.conference import RPC_ROOM_ENSURE
from contracts.link import LINK_CREATED, LINK_LOCATION_UPDATED
from contracts.recording import RECORDING_WEBHOOK_RECEIVED
from deploy.local import DEFAULT_ENV, NO_DATABASE, LocalSuite, free_port, start_private_brokers, wait_http
from tests.bench.run import agent_token
from tests.fakes import livekit_webhooks as lkw
from tests.instances import kill_service, restart_service

SERVICES = ["auth", "conference", "link", "telemetry", "recording", "realtime"]
KILLED = ["auth", "conference", "link", "telemetry", "recording", "realtime"]
FAULTS = ["nats-kill", "redis-kill", "mariadb-stop", "mariadb-kill", *(f"{s}-kill" for s in KILLED), "nats-outage"]
CLIENTS_JS = Path(__file__).resolve().parents[1] / "js" / "chaos-clients.mjs"
MARGIN = 3.0  # s around a client's reconnect within which an emit it missed is put down to the reconnect
# s after Redis is back during which an emit may still be lost: the events realtime could not handle while Redis
# was away are redelivered (1 s apart, in order) and emitted once it is back, and an instance's pub/sub
# subscription comes back within a second (RESUBSCRIBE_S): an emit published before that misses its sockets.
REDIS_TAIL = 6.0
BROKER_FAULTS = {"nats-kill": 0, "nats-outage": 0, "redis-kill": 1, "mariadb-kill": 2}  # index in the brokers list
LINK_CONSUMER, TRACK_CONSUMER = "telemetry-stats-link", "telemetry-stats-tracks"
BASE_LATITUDE = Decimal("13.000000000")
STEP = Decimal("0.000001")  # position n: latitude BASE + n * STEP
TIMEOUT = 10.0  # per request: a request past it counts as hung
DB_STALL = 10.0  # mariadb-stop: seconds the server is frozen


@dataclass
class Sent:
    fault: str
    kind: str  # position | link | webhook | chat | read-<service>
    key: str  # latitude seq | linkID | eventId | chat text | "" for reads
    ok: bool = False
    hung: bool = False
    status: int = 0  # 0: no answer (refused, reset, timed out)
    at: float = 0.0  # wall clock when sent


@dataclass
class Row:
    fault: str
    requests: int = 0
    ok: int = 0
    lost: int = 0
    duplicates: int = 0
    hung: int = 0
    recovery_s: float = 0.0
    not_ready_seen: str = "n/a"
    checked: str = ""
    backlog: int = 0  # outbox rows not yet published when the fault was lifted
    refused: str = ""  # the answers that were not 2xx, by kind and status
    server_errors: int = 0  # answers 500: a dependency's outage must say 503 (retry), never "the request broke"
    recovered: bool = True  # every /ready 200 and the outbox backlog published within the recovery wait
    died: list[str] = field(default_factory=list)  # processes that exited besides the one killed (and restarted)
    detail: list[str] = field(default_factory=list)
    started_at: float = 0.0  # wall clock: the fault's load began
    ended_at: float = 0.0  # ... and its load after recovery ended
    missed: int | None = None  # position emits the Socket.IO clients did not get (None: no clients)
    missed_connected: int = 0  # ... of them, emits a client missed away from any reconnect of its own
    missed_redis: int = 0  # ... of them, emits missed while Redis was down (realtime's pub/sub: lost, README)
    # Emits (positions, chat lines) a client got more than once, and of them those the contract allows: sent while
    # Redis was down (a handled-event mark lost with Redis) or as a realtime instance was killed (between its emit
    # and its mark): the redelivered event is emitted again (README "High availability").
    duplicate_emits: int | None = None
    duplicate_emits_allowed: int = 0
    fault_from: float = 0.0  # wall clock: the fault was injected
    fault_to: float = 0.0  # ... and lifted (what was killed started again)
    reconnected: int = 0  # clients that lost their connection during the fault (and came back)


# The MariaDB the suite's databases are on: chaos_suite's private server while it runs (query() follows it).
mysql_port = 3306


async def query(database: str, sql: str, args: Any = (), port: int | None = None) -> list[dict[str, Any]]:
    conn = await asyncmy.connect(host="127.0.0.1", port=port or mysql_port, user="root", password="", db=database,
                                 autocommit=True, connect_timeout=5)  # fmt: skip
    try:
        async with conn.cursor(DictCursor) as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall())
    finally:
        conn.close()


def participant_token(room: str, identity: str) -> str:
    """A patient's token for room namespace ``/<room>``, as conference mints them (metadata JSON, bound to the room)."""
    now = int(time.time())
    metadata = json.dumps({"userName": f"Guest-{identity}", "userType": "user", "color": "#123456"})
    claims = {"iss": DEFAULT_ENV["LIVEKIT_API_KEY"], "sub": identity, "name": identity, "metadata": metadata,
              "video": {"room": room, "roomJoin": True}, "nbf": now - 5, "exp": now + 3600}  # fmt: skip
    return jwt.encode(claims, DEFAULT_ENV["LIVEKIT_API_SECRET"], "HS256")


def latitude_seq(latitude: Any) -> int:
    return round((Decimal(str(latitude)) - BASE_LATITUDE) / STEP)


class Chaos:
    def __init__(
        self, local: LocalSuite, brokers: list[subprocess.Popen[bytes]], rate: float, db_stall: float = DB_STALL
    ) -> None:
        self.local, self.brokers, self.rate, self.db_stall = local, brokers, rate, db_stall
        self.sent: list[Sent] = []
        self.fault = "warm-up"
        self.stopping = False
        self.seq = 0
        self.run = uuid.uuid4().hex[:8]
        self.link_id = self.room = ""
        self.clients: Clients | None = None  # with room clients, chat lines are part of the load
        # Whether the load asks auth too (GET /auth/create): only when auth runs (rolling.py's reads ask it there).
        self.auth_reads = False

    # --- load -------------------------------------------------------------------------------------------------
    async def request(self, client: httpx.AsyncClient, record: Sent, method: str, path: str, **kwargs: Any) -> None:
        """Send one request of the load through the edge, recorded in ``sent`` with its outcome."""
        record.at = time.time()
        self.sent.append(record)
        try:
            reply = await client.request(method, path, timeout=TIMEOUT, **kwargs)
            record.status = reply.status_code
            record.ok = 200 <= reply.status_code < 300
            if record.kind == "link" and record.ok:
                record.key = reply.json()["linkID"]
        except httpx.TimeoutException:
            record.hung = True
        except httpx.HTTPError:
            pass  # refused or reset while a service was down: not acknowledged

    async def load(self, client: httpx.AsyncClient) -> None:
        headers = {"Authorization": f"Bearer {agent_token()}"}
        key, secret = DEFAULT_ENV["LIVEKIT_API_KEY"], DEFAULT_ENV["LIVEKIT_API_SECRET"]
        pending: set[asyncio.Task[None]] = set()
        n = 0
        while not self.stopping:
            n += 1
            kind = "position" if n % 10 < 6 else ("webhook" if n % 10 < 9 else "link")
            if n % 20 == 0 and self.auth_reads:  # a twentieth of the load (in place of a position): auth's token
                kind = "read-auth"
            if n % 20 == 19 and self.clients and self.clients.in_room:
                text = f"chat {self.run} {n}"
                self.sent.append(Sent(self.fault, "chat", text, at=time.time()))
                self.clients.chat(text)
                await asyncio.sleep(1 / self.rate)
                continue
            if kind == "position":
                self.seq += 1
                body = {"linkID": self.link_id, "room": self.room, "userType": "user",
                        "latitude": float(BASE_LATITUDE + self.seq * STEP), "longitude": 100.5}  # fmt: skip
                record = Sent(self.fault, kind, str(self.seq))
                coro = self.request(client, record, "POST", "/link/update/latlng", json=body)
            elif kind == "webhook":
                event_id = f"EV_{self.run}_{n}"
                event = lkw.event("track_published", room=f"chaos-{self.run}", event_id=event_id,
                                  participant=lkw.participant(f"user{n % 50}"))  # fmt: skip
                raw = lkw.encode(event)
                auth = {"Authorization": lkw.sign(raw, key, secret, ttl=900),
                        "Content-Type": "application/webhook+json"}  # fmt: skip
                coro = self.request(client, Sent(self.fault, kind, event_id), "POST", "/webhook", content=raw,
                                    headers=auth)  # fmt: skip
            elif kind == "read-auth":
                coro = self.request(client, Sent(self.fault, kind, ""), "GET", "/auth/create", headers=headers)
            else:
                body = {"room": f"chaos{self.run}{n % 7}", "mobile": f"08{n % 10**8:08d}", "sms": 0}
                coro = self.request(client, Sent(self.fault, kind, ""), "POST", "/link/create", json=body,
                                    headers=headers)  # fmt: skip
            task = asyncio.create_task(coro)
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(1 / self.rate)
        if pending:
            await asyncio.gather(*pending)

    # --- faults -----------------------------------------------------------------------------------------------
    def _kill_broker(self, index: int) -> None:
        broker = self.brokers[index]
        broker.kill()
        broker.wait(10)

    def _restart_broker(self, index: int) -> None:
        old = self.brokers[index]
        self.brokers[index] = subprocess.Popen(old.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603

    async def _watch_ready(self, seconds: float) -> str:
        """Poll every /ready for ``seconds``; the services seen answering 503 (NONE: not one)."""
        seen: set[str] = set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            seen |= {s for s, status in (await self.ready()).items() if status == 503}
            await asyncio.sleep(0.5)
        return ",".join(sorted(seen)) or "NONE"

    async def ready(self) -> dict[str, int]:
        async with httpx.AsyncClient(timeout=3) as client:

            async def one(name: str, url: str) -> tuple[str, int]:
                try:
                    return name, (await client.get(f"{url}/ready")).status_code
                except httpx.HTTPError:
                    return name, 0

            urls = {s: self.local.url(s) for s in self.local.service_ports}
            urls |= {f"{s}-2": f"http://127.0.0.1:{p}" for s, p in self.local.second_ports.items()}
            return dict(await asyncio.gather(*(one(name, url) for name, url in urls.items())))

    async def inject(self, fault: str, row: Row) -> float:
        """Run ``fault``; returns when its lifting began (the restart of what was killed). Records whether /ready
        said 503 while a broker was down."""
        if fault == "mariadb-stop":  # the server frozen (SIGSTOP): connections open, nothing answered
            self.brokers[2].send_signal(signal.SIGSTOP)
            row.fault_from = time.time()
            try:
                row.not_ready_seen = await self._watch_ready(self.db_stall)
            finally:
                lifted, row.fault_to = time.monotonic(), time.time()
                self.brokers[2].send_signal(signal.SIGCONT)
            return lifted
        if fault in BROKER_FAULTS:
            index = BROKER_FAULTS[fault]
            await asyncio.to_thread(self._kill_broker, index)
            row.fault_from = time.time()
            row.not_ready_seen = await self._watch_ready(12.0 if fault == "nats-outage" else 4.0)
            lifted, row.fault_to = time.monotonic(), time.time()
            await asyncio.to_thread(self._restart_broker, index)
            if fault == "mariadb-kill":  # crash recovery first: the checks below need the server (recovery counts it)
                await asyncio.to_thread(wait_port, mysql_port, 120.0, self.brokers[index])
            return lifted
        service = fault.removesuffix("-kill")
        second = service in self.local.second_ports and self._holds_more_sockets(service)
        name = f"{service}-2" if second else service
        await asyncio.to_thread(kill_service, self.local, name)
        row.fault_from = time.time()
        await asyncio.sleep(2)
        lifted = time.monotonic()
        row.fault_to = time.time()
        if second:
            self.local.start_service(service, second=True)
            url = f"http://127.0.0.1:{self.local.second_ports[service]}/ready"
            await asyncio.to_thread(wait_http, url, 60.0, self.local.processes[name])
        else:
            await asyncio.to_thread(restart_service, self.local, service)
        return lifted

    def _holds_more_sockets(self, service: str) -> bool:
        """Whether the second instance holds more established connections than the first: the edge hashes
        realtime's clients by address, so all of this machine's sit on one instance; the one killed is that one."""

        def established(port: int) -> int:
            out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],  # noqa: S607
                                 capture_output=True, text=True, check=False).stdout  # fmt: skip
            return len(out.splitlines())

        return established(self.local.second_ports[service]) > established(self.local.service_ports[service])

    async def pending(self, upto: dict[str, int] | None = None) -> tuple[int, dict[str, int]]:
        """Outbox rows not yet published (with ids up to ``upto`` per database, when given), and each database's
        highest outbox id."""
        total, tops = 0, {}
        for service in [s for s in self.local.service_ports if s not in NO_DATABASE]:
            db = self.local.db_name(service)
            limit = (upto or {}).get(db, 2**63)
            rows = await query(db, "SELECT COALESCE(MAX(id), 0) AS top, COALESCE(SUM(published_at IS NULL AND id <= "
                               "%s), 0) AS waiting FROM outbox", (limit,))  # fmt: skip
            total += int(rows[0]["waiting"])
            tops[db] = int(rows[0]["top"])
        return total, tops

    # --- checks -----------------------------------------------------------------------------------------------
    @staticmethod
    def _tally(row: Row, mine: list[Sent]) -> None:
        row.requests, row.ok, row.hung = len(mine), sum(s.ok for s in mine), sum(s.hung for s in mine)
        refused = collections.Counter(f"{s.kind} {s.status or 'no answer'}" for s in mine if not s.ok)
        row.refused = ", ".join(f"{k}: {n}" for k, n in sorted(refused.items())) or "none"
        row.server_errors = sum(s.status == 500 for s in mine)

    async def check_chats(self, row: Row) -> None:
        """Once the chat lines' acknowledgements are known (Clients.acknowledge_chats): every acknowledged line of
        the fault is in conference's chat_message, and no line sent is there twice; its 2xx recounted with them."""
        mine = [s for s in self.sent if s.fault == row.fault]
        self._tally(row, mine)
        sent = {s.key for s in mine if s.kind == "chat"}
        acked = {s.key for s in mine if s.kind == "chat" and s.ok}
        stored = {r["text"]: int(r["n"]) for r in await query(
            self.local.db_name("conference"), "SELECT text, COUNT(*) AS n FROM chat_message WHERE room = %s "
            "GROUP BY text", (self.room,))}  # fmt: skip
        lost = len([t for t in acked if t not in stored])
        twice = len([t for t in sent if stored.get(t, 0) > 1])
        row.lost, row.duplicates = row.lost + lost, row.duplicates + twice
        row.detail += [f"{k}: {v}" for k, v in {"chat not stored": lost, "chat stored twice": twice}.items() if v]
        row.checked += f", {len(acked)} chat lines"

    async def check(self, fault: str, row: Row, timeout: float) -> None:
        mine = [s for s in self.sent if s.fault == fault]
        self._tally(row, mine)
        positions = {int(s.key) for s in mine if s.kind == "position" and s.ok}
        links = {s.key for s in mine if s.kind == "link" and s.ok}
        webhooks = {s.key for s in mine if s.kind == "webhook" and s.ok}
        link_db, rec_db, tel_db = (self.local.db_name(s) for s in ("link", "recording", "telemetry"))
        lost: dict[str, int] = {}
        dups: dict[str, int] = {}

        async def probe() -> bool:
            usage = await query(link_db, "SELECT latitude FROM usage_status_log WHERE linkID = %s AND status = "
                                "'UpdateLatLngLinkDetail'", (self.link_id,))  # fmt: skip
            stored = collections.Counter(latitude_seq(r["latitude"]) for r in usage)
            outbox = await query(link_db, "SELECT event_id, subject, payload, published_at FROM outbox "
                                 "WHERE subject IN (%s, %s)", (LINK_LOCATION_UPDATED, LINK_CREATED))  # fmt: skip
            published: collections.Counter[int] = collections.Counter()
            created: collections.Counter[str] = collections.Counter()
            position_events: dict[int, str] = {}
            created_events: dict[str, str] = {}
            unpublished = 0
            for r in outbox:
                data = json.loads(r["payload"])["data"]
                unpublished += r["published_at"] is None
                if r["subject"] == LINK_LOCATION_UPDATED:
                    s = latitude_seq(data["position"]["latitude"])
                    published[s] += 1
                    position_events[s] = r["event_id"]
                else:
                    created[data["linkID"]] += 1
                    created_events[data["linkID"]] = r["event_id"]
            connected = {r["linkID"] for r in await query(
                link_db, "SELECT linkID FROM link_connect WHERE linkID IN %s", (tuple(links) or ("",),))}  # fmt: skip
            receipts = {r["eventId"] for r in await query(
                rec_db, "SELECT eventId FROM webhook_receipt WHERE eventId IN %s",
                (tuple(webhooks) or ("",),))}  # fmt: skip
            rec_outbox = await query(rec_db, "SELECT event_id, payload, published_at FROM outbox WHERE subject = %s",
                                     (RECORDING_WEBHOOK_RECEIVED,))  # fmt: skip
            rec_published: collections.Counter[str] = collections.Counter()
            webhook_events: dict[str, str] = {}
            for r in rec_outbox:
                event_id = json.loads(r["payload"])["data"]["eventId"]
                rec_published[event_id] += 1
                webhook_events[event_id] = r["event_id"]
                unpublished += r["published_at"] is None
            handled = {(r["consumer"], r["event_id"]) for r in await query(
                tel_db, "SELECT consumer, event_id FROM handled_event WHERE consumer IN (%s, %s)",
                (LINK_CONSUMER, TRACK_CONSUMER))}  # fmt: skip
            lost.clear()
            dups.clear()
            lost["position not stored"] = len(positions - set(stored))
            lost["position not published"] = len([p for p in positions if published[p] == 0])
            lost["position not consumed"] = len(
                [p for p in positions if (LINK_CONSUMER, position_events.get(p, "")) not in handled]
            )
            lost["link not stored"] = len(links - connected)
            lost["link not consumed"] = len(
                [k for k in links if (LINK_CONSUMER, created_events.get(k, "")) not in handled]
            )
            lost["webhook not stored"] = len(webhooks - receipts)
            lost["webhook not consumed"] = len(
                [w for w in webhooks if (TRACK_CONSUMER, webhook_events.get(w, "")) not in handled]
            )
            mine_seqs = {int(s.key) for s in mine if s.kind == "position"}
            dups["position stored twice"] = len([p for p in mine_seqs if stored[p] > 1])
            dups["position published twice"] = len([p for p in mine_seqs if published[p] > 1])
            dups["link published twice"] = len([k for k in links if created[k] > 1])
            dups["webhook published twice"] = len([w for w in webhooks if rec_published[w] > 1])
            return not any(lost.values()) and unpublished == 0

        deadline = time.monotonic() + timeout
        while not await probe() and time.monotonic() < deadline:  # noqa: ASYNC110 - polls the databases
            await asyncio.sleep(1)
        row.lost, row.duplicates = sum(lost.values()), sum(dups.values())
        row.detail = [f"{k}: {v}" for k, v in {**lost, **dups}.items() if v]
        reads = sum(s.ok for s in mine if s.kind.startswith("read-"))  # nothing stored to check: answered 2xx
        row.checked = f"{len(positions)} positions, {len(links)} links, {len(webhooks)} webhooks, {reads} reads"


def wait_port(port: int, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline or (process is not None and process.poll() is not None):
                raise
            time.sleep(0.05)


def start_private_mariadb(run_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A MariaDB server of this run only (a fresh datadir under ``run_dir``, root without password on 127.0.0.1 and
    a free port): the machine's server is shared with other runs, so it is never stopped; this one can be."""
    datadir, port = run_dir / "mariadb", free_port()
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={datadir}", "--skip-test-db",  # noqa: S607
                    "--auth-root-authentication-method=normal", *user],
                   check=True, capture_output=True)  # fmt: skip
    argv = ["mariadbd", "--no-defaults", f"--datadir={datadir}", f"--port={port}", f"--socket={run_dir}/mysql.sock",
            "--bind-address=127.0.0.1", "--skip-log-bin", "--max-connections=500", f"--pid-file={run_dir}/mysql.pid",
            f"--log-error={run_dir}/mariadb.log", *user]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    wait_port(port, 60, process)
    return process, port


class Clients:
    """``count`` official socket.io-clients (tests/js/chaos-clients.mjs, one Node process) on the load's link
    namespace ``/data/<linkID>`` through the edge, reconnecting on their own, each recording the ``position`` emits
    it gets and when it lost and regained its connection; and ``in_room`` patients' clients in ``/<room>`` recording
    the ``chat-message`` emits, the first of them sending the load's chat lines."""

    def __init__(self, edge: str, link_id: str, count: int, room: str = "", in_room: int = 0) -> None:
        self.edge, self.link_id, self.count, self.room, self.in_room = edge, link_id, count, room, in_room
        self.proc: asyncio.subprocess.Process | None = None
        self.records: list[dict[str, Any]] = []

    async def start(self, timeout: float = 60.0) -> None:
        tokens = ",".join(participant_token(self.room, f"chaos{n}") for n in range(self.in_room))
        room = ["--room", f"/{self.room}", "--room-tokens", tokens] if self.in_room else []
        self.proc = await asyncio.create_subprocess_exec(
            shutil.which("node") or "node", str(CLIENTS_JS), "--url", self.edge, "--namespace",
            f"/data/{self.link_id}", "--token", agent_token(), "--clients", str(self.count), *room,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            limit=2**26,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if json.loads(line or b"{}").get("type") != "ready":
            raise RuntimeError(f"chaos clients did not connect: {line!r}")

    def chat(self, text: str) -> None:
        """The first room client sends chat line ``text`` (``chat-message``, as the patient's page does)."""
        assert self.proc is not None and self.proc.stdin is not None
        payload = {"identity": "chaos0", "chat_identity": "c-chaos0", "userName": "Guest-0", "userType": "user",
                   "text": text, "color": "#FF5733", "replyToMessageId": 0}  # fmt: skip
        self.proc.stdin.write(json.dumps({"chat": payload}).encode() + b"\n")

    def acknowledge_chats(self, sent: list[Sent]) -> None:
        """A chat line counts as acknowledged when its sender got it back: realtime broadcasts it to the room only
        once conference stored it."""
        senders = [r for r in self.records if r.get("room")]
        echoed = set(senders[0]["chats"]) if senders else set()
        for record in sent:
            if record.kind == "chat":
                record.ok = record.key in echoed
                record.status = 200 if record.ok else 0

    async def stop(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b'{"stop": true}\n')
        await self.proc.stdin.drain()
        async for line in self.proc.stdout:
            record = json.loads(line)
            if record.get("type") == "client":
                self.records.append(record)
        await self.proc.wait()

    def count_missed(self, row: Row, sent: list[Sent]) -> None:
        """Per client, the acknowledged positions of ``row.fault`` whose ``position`` emit it did not get. Realtime
        promises no replay of ``position`` emits on reconnect (a reconnected client catches up from the next
        ``history`` push), so a miss is allowed only near a reconnect of that client: within MARGIN of the time
        between its disconnect and its connect again; any other is ``missed_connected``, which must be 0.

        And per client, the positions and chat lines of ``row.fault`` (acknowledged or not) it got more than once,
        ``duplicate_emits``: realtime marks each event handled (in Redis) so a redelivery is not emitted again; only
        a Redis failover may lose the mark (README "High availability"), and an instance killed between an emit and
        its mark leaves it unmarked, so a repeat of a position or line sent while Redis was down, or within MARGIN of
        a realtime kill, counts in ``duplicate_emits_allowed`` too; any other fails the run."""
        mine = [x for x in sent if x.fault == row.fault]
        sent_positions = {int(x.key): x.at for x in mine if x.kind == "position"}
        sent_chats = {x.key: x.at for x in mine if x.kind == "chat"}
        positions = {int(x.key): x.at for x in mine if x.kind == "position" and x.ok}
        chats = {x.key: x.at for x in mine if x.kind == "chat" and x.ok}
        row.missed, row.missed_connected, row.missed_redis, row.reconnected = 0, 0, 0, 0
        row.duplicate_emits, row.duplicate_emits_allowed = 0, 0
        redis_down = (row.fault_from - MARGIN, row.fault_to + REDIS_TAIL) if row.fault == "redis-kill" else (0.0, 0.0)
        # A realtime instance killed after an emit and before its handled mark: the redelivery is emitted again.
        repeats = redis_down if row.fault != "realtime-kill" else (row.fault_from - MARGIN, row.fault_from + MARGIN)
        for record in self.records:
            room = bool(record.get("room"))
            acked: dict[Any, float] = chats if room else positions
            mine_sent: dict[Any, float] = sent_chats if room else sent_positions
            received = collections.Counter(
                [v for v in record["chats"] if v] if room else [latitude_seq(v) for v in record["positions"] if v]
            )
            for key, copies in received.items():
                if copies > 1 and key in mine_sent:
                    row.duplicate_emits += 1
                    row.duplicate_emits_allowed += repeats[0] <= mine_sent[key] <= repeats[1]
            got = set(received)
            gaps = [(d / 1000, (next((c for c in record["connects"] if c >= d), d + 1e12)) / 1000)
                    for d in record["disconnects"]]  # fmt: skip
            gaps = [(d, c) for d, c in gaps if d <= row.ended_at + MARGIN and c >= row.started_at - MARGIN]
            row.reconnected += bool(gaps)
            for seq, at in acked.items():
                if seq in got:
                    continue
                row.missed += 1
                if any(d - MARGIN <= at <= c + MARGIN for d, c in gaps):
                    continue
                if redis_down[0] <= at <= redis_down[1]:
                    row.missed_redis += 1
                else:
                    row.missed_connected += 1


async def open_room(nats_url: str, room: str) -> None:
    """Open ``room`` in conference as the agent console's start of a call does (RPC_ROOM_ENSURE), so its namespace
    ``/<room>`` takes the room clients."""
    nc = await nats.connect(nats_url)
    try:
        reply = await nc.request(RPC_ROOM_ENSURE, json.dumps({"room": room, "service": 999}).encode(), timeout=10)
    finally:
        await nc.close()
    if not json.loads(reply.data).get("ok"):
        raise RuntimeError(f"room {room} not opened: {reply.data!r}")


@contextlib.contextmanager
def chaos_suite(
    run_dir: Path,
    pairs: bool = False,
    private_db: bool = True,
    services: list[str] = SERVICES,
    second: list[str] | None = None,
    db_prefix: str = "chaos",
) -> Iterator[tuple[LocalSuite, list[subprocess.Popen[bytes]]]]:
    """A private suite of ``services`` behind the edge; a second instance of each of ``second`` (``pairs``: of each
    killed service) serves behind the same edge upstream. The brokers are [NATS, Redis] and, with ``private_db``
    (the default), the suite's own mariadbd third, so the MariaDB faults can be run; without it the databases are
    ``<db_prefix>_`` ones on the machine's server, dropped afterwards."""
    global mysql_port
    brokers, nats_url, redis_url = start_private_brokers(run_dir)
    extra_env: dict[str, str] = {}
    if private_db:
        mariadb, port = start_private_mariadb(run_dir)
        brokers.append(mariadb)
        extra_env["MYSQL_PORT"] = str(port)
        mysql_port = port
    doubled = second if second is not None else ([s for s in KILLED if s in services] if pairs else [])
    local = LocalSuite(
        edge_port=free_port(),
        service_ports={s: free_port() for s in services},
        db_prefix=f"{db_prefix}_{uuid.uuid4().hex[:8]}_",
        nats_url=nats_url,
        redis_url=redis_url,
        run_dir=run_dir,
        second_ports={s: free_port() for s in doubled},
        extra_env=extra_env,
    )
    try:
        local.start(services, timeout=180)  # a dozen processes starting (and migrating) at once on a busy machine
        yield local, brokers
    finally:
        local.stop()
        for broker in brokers:
            broker.kill()
            broker.wait(10)
        mysql_port = 3306
        if not private_db:
            drop = "".join(f"DROP DATABASE IF EXISTS `{local.db_name(s)}`;" for s in services if s not in NO_DATABASE)
            subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-e", drop], check=False, capture_output=True)  # noqa: S607


async def run_faults(local: LocalSuite, brokers: list[subprocess.Popen[bytes]], faults: list[str], rate: float,
                     load_s: float, recovery: float, clients: int = 0, db_stall: float = DB_STALL,
                     in_room: int | None = None) -> tuple[list[Row], Chaos]:  # fmt: skip
    """Load through the edge for the whole run; each fault in turn after ``load_s`` of load, then its checks. With
    ``clients``, that many Socket.IO clients on the load's link namespace count the emits they missed."""
    if any(f.startswith("mariadb-") for f in faults) and len(brokers) < 3:
        raise ValueError("the MariaDB faults need the suite's private server (chaos_suite(private_db=True))")
    absent = [f for f in faults if f.removesuffix("-kill") in KILLED and f.removesuffix("-kill") not in local.processes]
    if absent:
        raise ValueError(f"faults of services the suite does not run: {absent}")
    chaos = Chaos(local, brokers, rate, db_stall)
    chaos.auth_reads = "auth" in local.service_ports
    in_room = max(2, clients // 10) if in_room is None else in_room  # room clients beside the link's, for chat
    rows: list[Row] = []
    async with httpx.AsyncClient(base_url=local.edge, limits=httpx.Limits(max_connections=64)) as client:
        headers = {"Authorization": f"Bearer {agent_token()}"}
        chaos.room = f"chaosroom{chaos.run}"
        created = await client.post("/link/create", json={"room": chaos.room, "mobile": "0812345678", "sms": 0},
                                    headers=headers, timeout=30)  # fmt: skip
        created.raise_for_status()
        chaos.link_id = created.json()["linkID"]
        sockets = Clients(local.edge, chaos.link_id, clients, chaos.room, in_room) if clients else None
        if sockets and in_room:
            await open_room(local.nats_url, chaos.room)
        if sockets:
            await sockets.start()
            chaos.clients = sockets
        load = asyncio.create_task(chaos.load(client))
        try:
            for fault in faults:
                row = Row(fault, started_at=time.time())
                chaos.fault = fault
                await asyncio.sleep(load_s)
                lifted = await chaos.inject(fault, row)
                row.backlog, tops = await chaos.pending()
                while set((await chaos.ready()).values()) != {200} or (await chaos.pending(tops))[0]:
                    if time.monotonic() - lifted > recovery:
                        row.recovered = False
                        break
                    await asyncio.sleep(0.2)
                row.recovery_s = time.monotonic() - lifted
                row.died = [name for name, p in local.processes.items() if p.poll() is not None]
                row.died += [f"broker {p.args[0]}" for p in chaos.brokers if p.poll() is not None]
                await asyncio.sleep(load_s)  # load after recovery, still counted under this fault
                chaos.fault = f"after {fault}"
                row.ended_at = time.time()
                rows.append(row)
        finally:
            chaos.stopping = True
            await load
        for row in rows:
            await chaos.check(row.fault, row, recovery)
        if sockets:
            await asyncio.sleep(3)  # the last emits on their way (every event is consumed by now: checked)
            await sockets.stop()
            sockets.acknowledge_chats(chaos.sent)
            for row in rows:
                await chaos.check_chats(row)
                sockets.count_missed(row, chaos.sent)
    return rows, chaos


def table(rows: list[Row]) -> str:
    lines = [
        "| fault | requests | 2xx | lost writes | duplicate effects | missed emits | duplicate emits | hung "
        "| /ready 503 seen on | clients reconnected | outbox backlog at lift | recovery s |",
        "|---|---:|---:|---:|---:|---|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        missed = "n/a" if r.missed is None else f"{r.missed} (Redis down {r.missed_redis}, other {r.missed_connected})"
        twice = "n/a" if r.duplicate_emits is None else f"{r.duplicate_emits} (allowed {r.duplicate_emits_allowed})"
        clients = "-" if r.missed is None else str(r.reconnected)
        lines.append(f"| {r.fault} | {r.requests} | {r.ok} | {r.lost} | {r.duplicates} | {missed} | {twice} "
                     f"| {r.hung} | {r.not_ready_seen} | {clients} | {r.backlog} | {r.recovery_s:.1f} |")  # fmt: skip
    return "\n".join(lines)


def failures(rows: list[Row]) -> list[str]:
    bad = [f"{r.fault}: {'; '.join([*r.detail, *([f'{r.hung} hung past {TIMEOUT:.0f} s'] if r.hung else [])])}"
           for r in rows if r.lost or r.duplicates or r.hung]  # fmt: skip
    bad += [f"{r.fault}: /ready never said 503 while the broker was down" for r in rows if r.not_ready_seen == "NONE"]
    bad += [f"{r.fault}: {r.server_errors} answers 500 (an outage answers 503)" for r in rows if r.server_errors]
    bad += [f"{r.fault}: exited and not restarted: {r.died}" for r in rows if r.died]
    bad += [f"{r.fault}: {r.missed_connected} emits missed by clients away from any reconnect of theirs"
            for r in rows if r.missed_connected]  # fmt: skip
    bad += [f"{r.fault}: {r.duplicate_emits - r.duplicate_emits_allowed} emits a client got twice (not allowed)"
            for r in rows if r.duplicate_emits and r.duplicate_emits > r.duplicate_emits_allowed]  # fmt: skip
    bad += [f"{r.fault}: not ready (or outboxes not drained) after the recovery wait" for r in rows if not r.recovered]
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, in order; any of {FAULTS}")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second, all kinds together")
    parser.add_argument("--load", type=float, default=8.0, help="seconds of load before and after each fault")
    parser.add_argument(
        "--single",
        action="store_true",
        help="one instance per service (default: every service runs twice behind the edge, one killed while the "
        "other serves)",
    )
    parser.add_argument("--recovery", type=float, default=90.0, help="seconds to wait for ready and for the checks")
    parser.add_argument(
        "--clients",
        type=int,
        default=200,
        help="Socket.IO clients on the load's link namespace (0: none, missed emits n/a)",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)  # the dev LiveKit secret
    faults = [f for f in args.faults.split(",") if f]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {sorted(unknown)}")
    run_dir = Path(tempfile.mkdtemp(prefix="ems-chaos-"))
    started = time.monotonic()
    try:
        with chaos_suite(run_dir, pairs=not args.single) as (local, brokers):
            rows, _ = asyncio.run(run_faults(local, brokers, faults, args.rate, args.load, args.recovery,
                                             args.clients))  # fmt: skip
    finally:
        if os.environ.get("KEEP_CHAOS_LOGS"):
            print(f"logs kept in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    shape = "one instance per service" if args.single else f"two instances of {', '.join(KILLED)}"
    took = time.monotonic() - started
    print(f"\n{len(faults)} faults, {shape}, {args.rate:.0f} req/s through the edge, {took:.0f} s\n")
    print(table(rows))
    bad = failures(rows)
    for row in rows:
        print(f"{row.fault}: checked {row.checked} acknowledged; not 2xx: {row.refused}")
    for line in bad:
        print(f"FAIL {line}")
    return 1 if bad else 0

"""A legacy source for the migration tests and benchmark: the original gateway's `conference` database, built from
the schema of its init.sql (tests/legacy_schema.sql, written in this repository's own form) in a database of its
own, and filled with generated rows that look like production. One of the topic modules of test helpers listed in
support.py; the original's answers computed from such a database are in legacy_answers.py.

- ``create_source(dsn)``: (re)creates the database of ``dsn`` and its tables, after the ADAPTATIONS MariaDB needs.
- ``fill(conn_or_dsn, scale, seed)``: deterministic rows (same scale and seed, same rows); returns a ``Filled`` with
  the row count per table and the names of the edge cases it planted (``Filled.cases``).
- ``OldGateway(conn)``: the original still serving such a source, one request's writes at a time (the cutover's
  catch-up window).

Sizes: ``scale=1.0`` is the production installation the issue describes (about 112k links, 29k rooms, 27k
data_log rows, 100k usage-log rows; the smaller tables as the original's AUTO_INCREMENT counters show them);
``SMALL`` is the tests' scale, ``10.0`` the benchmark's upper one. Every table has a floor, so the smallest scale
still holds every kind of row.

    uv run python -m tests.legacy --dsn mysql://root@127.0.0.1:3306/legacy_conference --scale 1 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from zoneinfo import ZoneInfo

import asyncmy

SCHEMA_FILE = Path(__file__).with_name("legacy_schema.sql")
SMALL = 0.002  # the tests' scale: ~58 rooms, ~230 links (floors keep every kind of row)
PRODUCTION = 1.0

# What MariaDB 10.11 refuses in the original's schema, and what stands in for it. Checked on this machine's
# MariaDB 10.11: the dump's expression defaults (`DEFAULT (now())`, also on a TIMESTAMP with ON UPDATE) and its
# versioned comments (`/*!80016 DEFAULT ENCRYPTION='N' */` on CREATE DATABASE) are accepted unchanged, so they
# stay. Only the collation is unknown:
ADAPTATIONS: tuple[tuple[str, str, str], ...] = (
    (
        "utf8mb4_0900_ai_ci",
        "utf8mb4_uca1400_nopad_ai_ci",
        "MySQL 8's default collation (tables files and usage_status_log) does not exist in MariaDB 10.11 "
        "(ERROR 1273 Unknown collation). utf8mb4_uca1400_nopad_ai_ci has its properties (a Unicode Collation "
        "Algorithm collation, accent- and case-insensitive, NO PAD: 'a' != 'a '), and, like the original, it "
        "differs from utf8mb4_unicode_ci, so the original's files-to-link_connect join still mixes two collations.",
    ),
)

# The original's sample CUSTOM_CHARSET: Latin letters without N/n (link IDs, room names, task uids).
CHARSET = "abcdefghijklmopqrstuvwxyzABCDEFGHIJKLMOPQRSTUVWXYZ"
ZERO_DATE = "0000-00-00 00:00:00"
SOURCE_TIME_ZONE = "+07:00"  # the zone the rows are written in: the original's server ran in Asia/Bangkok
NEVER = datetime(2099, 12, 31, 23, 59, 59)  # expiry of the links and rooms still live at the snapshot
BASE = datetime(2024, 1, 3, 8, 0, 0)  # first room of the history (local time, Asia/Bangkok)
SPAN_DAYS = 690  # the history covers about two years
PALETTE = ["#3B3486", "#7743DB", "#6D9886", "#393E46", "#DC5F00", "#FF6B6B", "#4ECDC4", "#45B7D1", "#96CEB4",
           "#FFEAA7", "#DDA0DD", "#98D8C8", "#F7DC6F", "#BB8FCE", "#85C1E9", "#F8C471", "#82E0AA", "#F1948A",
           "#85C1E9", "#D7BDE2", "#AED6F1", "#A9DFBF", "#F9E79F", "#FADBD8", "#D5DBDB", "#2C3E50", "#E74C3C",
           "#3498DB", "#2ECC71", "#F39C12", "#9B59B6", "#1ABC9C", "#34495E", "#E67E22", "#95A5A6", "#FF5733",
           "#33FF57", "#3357FF", "#FF33F5", "#F5FF33", "#8E44AD", "#27AE60", "#2980B9", "#E74C3C", "#F39C12",
           "#16A085", "#2C3E50", "#C0392B", "#8E44AD", "#2980B9"]  # fmt: skip

FIRST_NAMES = ["สมชาย", "สมหญิง", "วิชัย", "กัญญา", "ประเสริฐ", "สุภาพร", "อนุชา", "ธนพร", "ณัฐวุฒิ", "พิมพ์ชนก",
               "ศิริพร", "จักรพันธ์", "อรอุมา", "ปิยะ", "กิตติศักดิ์", "วรรณา", "ชัยวัฒน์", "นภัสสร"]  # fmt: skip
LAST_NAMES = ["ใจดี", "รักษาดี", "ศรีสุข", "วงศ์ไทย", "บุญมา", "แก้วมณี", "ทองคำ", "สายสุวรรณ", "พึ่งบุญ", "มีสุข"]
ORGANIZATIONS = ["ศูนย์เอราวัณ", "รพ.รามาธิบดี", "รพ.ศิริราช", "มูลนิธิร่วมกตัญญู", "สพฉ. 1669", "รพ.ราชวิถี", None]
CHAT_LINES = ["สวัสดีค่ะ ได้ยินไหมคะ", "ผู้ป่วยหายใจได้ไหมครับ", "กำลังส่งรถพยาบาลไปค่ะ 🚑", "ขอบคุณครับ 🙏",
              "ช่วยเปิดกล้องหน่อยค่ะ", "รถถึงแล้วครับ ✅", "ตอนนี้ผู้ป่วยรู้สึกตัวดีค่ะ", "OK 👍",
              "ชีพจร 88 ความดัน 130/85", "รอสักครู่นะคะ ⏳", "ส่งรูปบาดแผลให้ดูหน่อยครับ 📷"]  # fmt: skip
USER_AGENTS = [
    ("iOS", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Line/14.3.1"),
    ("Android", "Mozilla/5.0 (Linux; Android 13; SM-A536E) AppleWebKit/537.36 Chrome/122.0.6261.105 Mobile Safari"),
    ("Android", "Mozilla/5.0 (Linux; Android 12; CPH2365) AppleWebKit/537.36 Chrome/120.0.6099.230 Mobile Safari"),
    ("Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/123.0.0.0 Safari/537.36"),
    ("Mac OS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.3 Safari/605.1.15"),
    ("Linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/121.0.0.0 Safari/537.36"),
    ("undefined", "okhttp/4.9.2"),
]  # fmt: skip
LINK_TYPES = ["video", "video", "video", "video", "location", "location", "conference", "hls", "agentCar",
              "userTracking"]  # fmt: skip
TENANTS: list[tuple[Any, ...]] = [
    # id, name, webTitle, prefixHLS, prefixVideo, prefixLocation, domainsVideo, domainsLocation, sender, logo,
    # titleColor, latitude, longitude
    (1, "ศูนย์เอราวัณ กรุงเทพมหานคร", "Erawan EMS", "วิดีโอบันทึก", "สนทนาวิดีโอกับเจ้าหน้าที่",
     "ขอพิกัดปัจจุบันของท่าน", "https://vdo.erawan.example,https://vdo2.erawan.example", "https://loc.erawan.example",
     "ERAWAN", "erawan.png", "#0B4F6C", Decimal("13.756331000"), Decimal("100.501765000")),
    (2, "รพ.รามาธิบดี", "Rama EMS", None, "สนทนาวิดีโอ", "เรียกพิกัดปัจจุบัน", "https://rama.example",
     "https://rama.example", "RAMA1669", "rama.png", "#094060", Decimal("13.766710000"), Decimal("100.526470000")),
    (3, "มูลนิธิร่วมกตัญญู", "Ruamkatanyu", None, "วิดีโอคอล 📞", "ส่งพิกัด", "https://rk.example", "", "RUAM",
     None, None, None, None),
    (4, "สพฉ. 1669 ภาคเหนือ", "NIEM North", "HLS", "สนทนาวิดีโอ", "พิกัด", "https://north.example", None, "NIEM",
     "niem.png", "#1E90FF", Decimal("18.788343000"), Decimal("98.985300000")),
    (999, "Default", "", None, "สนทนาวิดีโอ", "เรียกพิกัดปัจจุบัน", "https://localhost:3000", "https://localhost:3000",
     "iDEMS1669", "service1.png", "#094060", None, None),  # edited locally: differs from the suite's seed
]  # fmt: skip
NODES = [
    (1, "bkk-1", "wss://lk1.example", "ws://10.0.0.11:7880", "APIbkk1", "secret-bkk-1", "lk node Bangkok 1"),
    (2, "bkk-2", "wss://lk2.example", "ws://10.0.0.12:7880", "APIbkk2", "secret-bkk-2", "lk node Bangkok 2"),
    (3, "cnx-1", "wss://lk3.example", None, None, None, "เชียงใหม่ (retired)"),
]


@dataclass(frozen=True)
class Dsn:
    user: str
    password: str
    host: str
    port: int
    database: str

    @classmethod
    def parse(cls, text: str) -> Dsn:
        url = urlparse(text)
        if url.scheme != "mysql":
            raise ValueError(f"not a mysql:// DSN: {text}")
        return cls(unquote(url.username or "root"), unquote(url.password or ""), url.hostname or "127.0.0.1",
                   url.port or 3306, url.path.lstrip("/"))  # fmt: skip

    def __str__(self) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"mysql://{auth}@{self.host}:{self.port}/{self.database}"

    async def connect(self, database: str | None = None) -> Any:
        return await asyncmy.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                     db=self.database if database is None else database or None, autocommit=True,
                                     charset="utf8mb4")  # fmt: skip


def adapt(schema: str, server_version: str) -> str:
    """The schema as this server accepts it: MariaDB gets the ADAPTATIONS, MySQL 8+ the original text."""
    if "mariadb" not in server_version.lower():
        return schema
    for original, stand_in, _why in ADAPTATIONS:
        schema = schema.replace(original, stand_in)
    return schema


def schema_statements(server_version: str) -> list[str]:
    text = "\n".join(line for line in SCHEMA_FILE.read_text(encoding="utf-8").splitlines() if not line.startswith("--"))
    return [s.strip() for s in adapt(text, server_version).split(";") if s.strip()]


async def create_source(dsn: str | Dsn) -> Dsn:
    """(Re)create the database named by ``dsn`` with the original's tables, empty."""
    target = dsn if isinstance(dsn, Dsn) else Dsn.parse(dsn)
    if not re.fullmatch(r"[A-Za-z0-9_]+", target.database):
        raise ValueError(f"database name {target.database!r}")
    conn = await target.connect(database="")
    try:
        async with conn.cursor() as cur:
            await cur.execute("SET SESSION sql_notes = 0")  # no note for dropping a database that is not there
            await cur.execute("SELECT VERSION()")
            (version,) = await cur.fetchone()
            await cur.execute(f"DROP DATABASE IF EXISTS `{target.database}`")
            # the dump's own CREATE DATABASE clauses, the versioned one included (MariaDB accepts and ignores it)
            await cur.execute(
                f"CREATE DATABASE `{target.database}` DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                " /*!80016 DEFAULT ENCRYPTION='N' */"
            )
            await cur.execute(f"USE `{target.database}`")
            await cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            for statement in schema_statements(version):
                await cur.execute(statement)
    finally:
        conn.close()
    return target


async def drop_source(dsn: str | Dsn) -> None:
    target = dsn if isinstance(dsn, Dsn) else Dsn.parse(dsn)
    conn = await target.connect(database="")
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{target.database}`")
    finally:
        conn.close()


# ---- the generator ------------------------------------------------------------------------------------------
@dataclass
class Filled:
    """What ``fill`` wrote: rows per table and the edge cases planted (name -> the key a test looks them up by)."""

    counts: dict[str, int] = field(default_factory=dict)
    cases: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class _Room:
    id: int
    name: str
    service: int
    created: datetime
    expired: datetime
    status: str
    room_type: str
    active: bool = False  # has room users, chat, webhooks
    users: list[tuple[int, str, str, str]] = field(default_factory=list)  # room_user id, identity, name, userType
    user_links: list[int] = field(default_factory=list)  # link_connect ids of its non-share links


def _counts(scale: float) -> dict[str, int]:
    def n(production: int, floor: int) -> int:
        return max(floor, round(production * scale))

    return {
        "rooms": n(29_000, 40),
        "active_rooms": n(620, 18),
        "cases": n(380, 20),
        "chat": n(230, 40),
        "data_log": n(27_000, 60),
        "records": n(540, 20),
        "uploads": n(60, 4),
        "files": n(140, 15),
        "car_track": n(17, 12),
        "radio_devices": n(60, 6),
        "radio_locations": n(60, 6),
        "notifications": n(20, 5),
    }


class _Gen:
    def __init__(self, scale: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.size = _counts(scale)
        self.tables: dict[str, list[tuple[Any, ...]]] = {}
        self.cases: dict[str, Any] = {}
        self.link_ids: set[str] = set()
        self.room_names: set[str] = set()
        self.rooms: list[_Room] = []
        self.links: list[dict[str, Any]] = []
        self.room_users: list[tuple[Any, ...]] = []

    # -- small helpers
    def word(self, length: int = 6) -> str:
        return "".join(self.rng.choice(CHARSET) for _ in range(length))

    def new_link_id(self) -> str:
        while True:
            value = self.word()
            if value not in self.link_ids:  # exact duplicates only where planted; case twins occur as in production
                self.link_ids.add(value)
                return value

    def new_room_name(self) -> str:
        while True:  # room names stay unique case-insensitively (rooms are looked up by name everywhere)
            value = self.word()
            if value.lower() not in self.room_names:
                self.room_names.add(value.lower())
                return value

    def mobile(self) -> str:
        return "0" + self.rng.choice("689") + "".join(self.rng.choice("0123456789") for _ in range(8))

    def thai_name(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def identity(self) -> str:
        return "".join(self.rng.choice("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ$")
                       for _ in range(10))  # fmt: skip

    def coord(self) -> tuple[Decimal, Decimal]:
        lat = Decimal(self.rng.uniform(13.55, 14.05)).quantize(Decimal("0.000000001"))
        lng = Decimal(self.rng.uniform(100.30, 100.95)).quantize(Decimal("0.000000001"))
        return lat, lng

    # -- tables
    def build(self) -> None:
        self.services()
        self.nodes()
        self.table("color_scheme", [(i + 1, c) for i, c in enumerate(PALETTE)])
        self.rooms_and_links()
        self.room_users_and_orphans()
        self.usage_log()
        self.case_data()
        self.chat()
        self.data_log()
        self.records()
        self.files()
        self.car_track()
        self.radio()
        self.notifications()
        self.edge_cases()

    def table(self, name: str, rows: list[tuple[Any, ...]]) -> None:
        self.tables.setdefault(name, []).extend(rows)

    def services(self) -> None:
        self.table("services", list(TENANTS))

    def nodes(self) -> None:
        self.table("node_livekit", [(*n[:6], BASE + timedelta(days=600), n[6]) for n in NODES])

    def rooms_and_links(self) -> None:
        rng, n = self.rng, self.size["rooms"]
        step = SPAN_DAYS * 86400 / n
        active = set(rng.sample(range(n - 1), self.size["active_rooms"] - 1)) | {n - 1}  # the newest is live
        live_from = int(n * 0.97)  # the newest 3% are still open at the snapshot
        link_id = 0
        for i in range(n):
            created = BASE + timedelta(seconds=int(i * step + rng.uniform(0, step / 2)))
            service = rng.choice([1, 1, 1, 2, 2, 3, 4, 999])
            location_only = rng.random() < 0.12 and i < n - 1
            room_type = "location" if location_only else "conference"
            if i >= live_from:
                status, expired = "open", NEVER
            else:
                status, expired = ("close", created + timedelta(days=1))
            if location_only and status == "open":
                status = "close"  # the original creates location rooms closed
            room = _Room(i + 1, self.new_room_name(), service, created, expired, status, room_type, i in active)
            self.rooms.append(room)
            ua = rng.choice(USER_AGENTS)[1]
            record_id = ""
            self.table("room_conference", [(
                room.id, rng.choice([None] * 6 + [1, 2]) if i < n - 1 else None, status, room_type, room.name,
                service, 0, record_id,
                rng.choice([0, 0, 1]), "RoomCompositeVideoAudio", "H264_720P_30", 1, 0, None, ua, "",
                created, created + timedelta(minutes=rng.randint(1, 90)),
                None if status == "open" else created + timedelta(hours=rng.randint(1, 20)), expired,
                created + timedelta(seconds=30) if room.active else None,
                created + timedelta(minutes=40) if room.active and status == "close" else None, None, None, None,
            )])  # fmt: skip
            at = created
            # the two share links every new room gets, then the agent's and the patient's links
            for user_name, user_type in (("Guest", "user"), ("Viewer", "viewer")):
                link_id += 1
                self.add_link(link_id, room, at, share=1, user_name=user_name, user_type=user_type, link_type="video")
            kinds: list[str] = []
            if rng.random() < 0.55:
                kinds.append("admin")
            kinds += ["user"] * rng.choice([0, 1, 1, 1, 1, 1, 1, 1, 2, 2])
            if rng.random() < 0.2:
                kinds.append("location")
            for kind in kinds:
                link_id += 1
                at = at + timedelta(seconds=rng.randint(2, 240))
                room.user_links.append(link_id)
                if kind == "admin":
                    self.add_link(link_id, room, at, share=0, user_name=self.thai_name(), user_type="admin",
                                  link_type="video", is_admin="1")  # fmt: skip
                else:
                    link_type = "location" if kind == "location" or location_only else rng.choice(LINK_TYPES)
                    self.add_link(link_id, room, at, share=0, user_name=None, user_type="user", link_type=link_type)

    def add_link(self, link_id: int, room: _Room, at: datetime, *, share: int, user_name: str | None,
                 user_type: str, link_type: str, is_admin: str = "0") -> None:  # fmt: skip
        rng = self.rng
        mobile = "" if share else self.mobile() if user_type == "user" else rng.choice(["", "", self.mobile()])
        if user_name is None:
            user_name = mobile
        visited = not share and rng.random() < 0.6
        os_name, ua = rng.choice(USER_AGENTS) if visited else (None, "")
        lat = lng = accuracy = None
        if visited and link_type in ("location", "agentCar", "userTracking") or (visited and rng.random() < 0.25):
            lat, lng = self.coord()
            accuracy = str(rng.choice([5, 12, 20, 35.5, 1200]))
        pick_lat = pick_lng = patient_updated = None
        if lat is not None and rng.random() < 0.3:
            pick_lat, pick_lng = self.coord()
            patient_updated = at + timedelta(minutes=3)
        error_video = rng.choice([None] * 12 + ["", "NotAllowedError: Permission denied", "NotReadableError"])
        error_location = rng.choice([None] * 12 + ["", "User denied Geolocation", "Timeout expired"])
        one_time = 0
        password, require_password = hashlib.md5(b"").hexdigest(), 0  # the original hashed "" when none
        if not share and user_type == "user" and rng.random() < 0.06:
            one_time = rng.choice([1, 2])
        if not share and rng.random() < 0.04:
            plain = f"{rng.randint(0, 999999):06d}"
            password, require_password = hashlib.md5(plain.encode()).hexdigest(), 1
        expired = room.expired if room.status == "open" else at + timedelta(days=1)
        link = {
            "id": link_id, "roomUserId": None, "sms": 1, "recordId": 0, "mobile": mobile, "linkID": self.new_link_id(),
            "domainIndex": 0, "share": share, "enabled": 1, "userName": user_name, "room": room.name,
            "userType": user_type, "linkType": link_type,
            "crmSender": "" if share else rng.choice(["", "agent01", "agent02", "พยาบาลวิภา", "dispatcher7"]),
            "accuracy": accuracy, "latitude": lat, "longitude": lng, "patientLatitude": pick_lat,
            "patientLongitude": pick_lng, "patientUpdated": patient_updated, "service": room.service,
            "errorVideo": error_video if visited else None, "errorLocation": error_location if visited else None,
            "os": os_name, "userAgent": ua, "requireJoinPermission": 1 if is_admin == "0" and rng.random() < 0.1 else 0,
            "requireUserName": 0, "requirePassword": require_password, "oneTimeLink": one_time, "password": password,
            "isAdmin": is_admin,
            "dtmConnection": at + timedelta(minutes=1) if visited else None,
            "dtmDisconnect": at + timedelta(minutes=25) if visited and rng.random() < 0.5 else None,
            "dtmCreated": at, "dtmExpired": expired, "sync_at": None,
            "_visited": visited,
        }  # fmt: skip
        self.links.append(link)

    def room_users_and_orphans(self) -> None:
        rng, next_id = self.rng, 1
        for room in self.rooms:
            if not room.active:
                continue
            links = [self.links[i - 1] for i in room.user_links]
            people = [(lk["userName"] or self.thai_name(), "admin" if lk["isAdmin"] == "1" else "user") for lk in links]
            if not any(t == "admin" for _, t in people):
                people.insert(0, (self.thai_name(), "admin"))
            if not any(t == "user" for _, t in people):
                people.append((self.mobile(), "user"))
            if rng.random() < 0.3:
                people.append((f"Viewer-{rng.randint(0, 99)}", "viewer"))
            for k, (name, user_type) in enumerate(people):
                identity = self.identity()
                if user_type == "viewer":
                    identity = "viewer_" + identity
                at = room.created + timedelta(minutes=1 + k)
                lat, lng = self.coord() if user_type == "user" and rng.random() < 0.4 else (None, None)
                ua = rng.choice(USER_AGENTS)[1]
                self.room_users.append((
                    next_id, room.name, identity, rng.choice(PALETTE), name, user_type,
                    rng.choice(["join", "leave", "disconnect"]), "", 1, None, 1, 1,
                    None if lat is None else str(lat), None if lng is None else str(lng),
                    None if lat is None else "12", ua, at, at + timedelta(minutes=20),
                ))  # fmt: skip
                room.users.append((next_id, identity, name, user_type))
                for link in links:  # the room user a link became (the original kept roomUserId rarely)
                    if link["userName"] == name and link["roomUserId"] is None and rng.random() < 0.5:
                        link["roomUserId"] = next_id
                next_id += 1
        self.tables["room_user"] = self.room_users  # the same list: edge_cases adds to it

    def usage_log(self) -> None:
        rng, rows = self.rng, []
        for link in self.links:
            if link["share"]:
                continue
            at = link["dtmCreated"]
            common = (link["linkID"], link["room"], link["mobile"], link["linkType"])
            created = {k: (str(v) if isinstance(v, Decimal) else v.strftime("%Y-%m-%d %H:%M:%S")
                           if isinstance(v, datetime) else v)
                       for k, v in link.items() if k in ("linkID", "isAdmin", "requireJoinPermission", "userName",
                                                          "dtmExpired")}  # fmt: skip
            created["url"] = f"https://vdo.example/video/{link['linkID']}"
            created["linkType"] = link["linkType"]
            created["password"] = ""
            rows.append((*common, None, None, "", "", link["userType"], "CreateLink", "", json.dumps(created), at))
            if not link["_visited"]:
                continue
            identity = self.identity()
            seen = at + timedelta(seconds=rng.randint(20, 600))
            detail = json.dumps({"linkID": link["linkID"], "room": link["room"], "mobile": link["mobile"]})
            user_type = "admin" if link["isAdmin"] == "1" else "user"
            rows.append((*common, None, None, identity, "", user_type, "GetLinkDetail", link["userAgent"], detail,
                         seen))  # fmt: skip
            if rng.random() < 0.1:
                rows.append((*common, None, None, identity, link["userName"], "user", "Connection", link["userAgent"],
                             '""', seen + timedelta(seconds=5)))  # fmt: skip
                rows.append((*common, None, None, identity, link["userName"], "user", "Disconnect", link["userAgent"],
                             '""', seen + timedelta(minutes=9)))  # fmt: skip
            if link["latitude"] is not None and rng.random() < 0.6:
                rows.append((link["linkID"], link["room"], "", "", link["latitude"], link["longitude"], "", "",
                             "user", "UpdateLatLngLinkDetail", "", '""', seen + timedelta(seconds=40)))  # fmt: skip
            if link["patientLatitude"] is not None:
                data = {"linkID": link["linkID"], "service": 2, "userType": "user", "room": link["room"],
                        "latitude": float(link["latitude"]), "longitude": float(link["longitude"]),
                        "currentLocation": {"latitude": float(link["latitude"]),
                                            "longitude": float(link["longitude"]), "accuracy": 12},
                        "pickLocation": {"latitude": float(link["patientLatitude"]),
                                         "longitude": float(link["patientLongitude"])},
                        "timestamp": int(seen.timestamp() * 1000)}  # fmt: skip
                rows.append((link["linkID"], link["room"], "", "", link["latitude"], link["longitude"], "", "",
                             "user", "MultiLatLng", "", json.dumps(data), seen + timedelta(seconds=70)))  # fmt: skip
        # the agent console's own rows: smsSurvey and records (no linkID)
        for room in self.rng.sample(self.rooms, max(5, len(self.rooms) // 40)):
            rows.append(
                (
                    "",
                    room.name,
                    self.mobile(),
                    "",
                    None,
                    None,
                    "",
                    "",
                    "",
                    "smsSurvey",
                    "",
                    json.dumps("แบบสอบถามความพึงพอใจ https://survey.example/s/1"),
                    room.created + timedelta(hours=1),
                )
            )
        self.table("usage_status_log", [(i + 1, *r) for i, r in enumerate(rows)])

    def case_data(self) -> None:
        rng, rows = self.rng, []
        with_case = [r for r in self.rooms if r.active] + rng.sample(
            self.rooms, min(len(self.rooms), self.size["cases"])
        )
        next_case: dict[int, int] = {}
        for room in with_case[: self.size["cases"]]:
            next_case[room.service] = next_case.get(room.service, 1000) + 1
            rows.append((len(rows) + 1, next_case[room.service], room.service, room.id,
                         f"OP-{room.created:%y%m}-{rng.randint(1, 9999):04d}", rng.choice(["open", "close", "close",
                         "waiting"]), rng.choice([None, f"HN{rng.randint(10000, 99999)}"]), self.mobile(),
                         self.mobile(), rng.choice(["เจ็บป่วยฉุกเฉิน", "อุบัติเหตุ", "ส่งต่อ"]), self.thai_name(),
                         room.created, rng.choice(ORGANIZATIONS)))  # fmt: skip
        self.table("case_data", rows)

    def chat(self) -> None:
        rng, rows = self.rng, []
        talking = [r for r in self.rooms if r.active and r.users]
        talking = rng.sample(talking, min(len(talking), max(3, self.size["chat"] // 5)))
        per_room = max(1, self.size["chat"] // max(1, len(talking)))
        for room in talking:
            at = room.created + timedelta(minutes=2)
            last: tuple[int, str, str] | None = None
            for _ in range(rng.randint(1, per_room * 2)):
                _uid, identity, name, user_type = rng.choice(room.users)
                at = at + timedelta(seconds=rng.randint(3, 90))
                files: str | None = ""
                if rng.random() < 0.15:
                    files = json.dumps([{"url": f"https://api.example/images/{int(at.timestamp() * 1000)}/wound.jpg",
                                         "name": "wound.jpg", "type": "image/jpeg"}])  # fmt: skip
                elif rng.random() < 0.05:
                    files = None
                reply = last if last and rng.random() < 0.2 else None
                rows.append((len(rows) + 1, room.name, identity, identity, name, rng.choice(CHAT_LINES),
                             rng.choice(PALETTE), files, reply[0] if reply else 0,
                             reply[1] if reply else "null", reply[2] if reply else "null", at, user_type))  # fmt: skip
                last = (len(rows), name, rows[-1][5])
        self.table("chat_message", rows)

    def data_log(self) -> None:
        rng, rows, target = self.rng, [], self.size["data_log"]
        rooms = [r for r in self.rooms if r.users]
        while len(rows) < target:
            room = rng.choice(rooms)
            start = room.created + timedelta(seconds=20)
            rows.append(self.webhook("room_started", room, None, None, start))
            for _uid, identity, name, user_type in room.users:
                if user_type == "viewer":
                    continue
                at = start + timedelta(seconds=rng.randint(5, 60))
                rows.append(self.webhook("participant_joined", room, (identity, name, user_type), None, at))
                for source in ("CAMERA", "MICROPHONE"):
                    if rng.random() < 0.85:
                        rows.append(self.webhook("track_published", room, (identity, name, user_type), source,
                                                 at + timedelta(seconds=2)))  # fmt: skip
                rows.append(self.webhook("participant_left", room, (identity, name, user_type), None,
                                         at + timedelta(minutes=12)))  # fmt: skip
            rows.append(self.webhook("room_finished", room, None, None, start + timedelta(minutes=40)))
            if rng.random() < 0.05:  # PUT /user/handle/track's rows: the original stored NULL data
                rows.append((None, start + timedelta(minutes=3)))
        self.table("data_log", [(i + 1, d, at) for i, (d, at) in enumerate(rows[:target])])

    def webhook(self, event: str, room: _Room, who: tuple[str, str, str] | None, source: str | None,
                at: datetime) -> tuple[str, datetime]:  # fmt: skip
        epoch = int(at.timestamp())
        body: dict[str, Any] = {
            "event": event,
            "room": {
                "sid": f"RM_{room.name}{room.id}",
                "name": room.name,
                "emptyTimeout": 600,
                "maxParticipants": 100,
                "creationTime": str(epoch - 30),
            },
        }
        if who:
            identity, name, user_type = who
            body["participant"] = {"sid": f"PA_{identity[:8]}", "identity": identity, "state": "ACTIVE",
                                   "joinedAt": str(epoch - 2), "name": name,
                                   "metadata": json.dumps({"userName": name, "userType": user_type},
                                                          ensure_ascii=False)}  # fmt: skip
        if source:
            body["track"] = {
                "sid": f"TR_{self.word(10)}",
                "type": "VIDEO" if source == "CAMERA" else "AUDIO",
                "source": source,
                "mimeType": "video/VP8" if source == "CAMERA" else "audio/opus",
            }
        body["id"] = f"EV_{self.word(12)}"
        body["createdAt"] = str(epoch)
        return json.dumps(body, ensure_ascii=False), at

    def records(self) -> None:
        rng, rows = self.rng, []
        recorded = [r for r in self.rooms if r.active] or self.rooms
        for k in range(self.size["records"]):
            room = recorded[k % len(recorded)]
            start = room.created + timedelta(minutes=3 + k % 7)
            ms = int(start.timestamp() * 1000)
            record_type = rng.choice(["RoomCompositeVideoAudio"] * 5 + ["RoomCompositeAudio", "TrackComposite"])
            ext = "ogg" if record_type == "RoomCompositeAudio" else "mp4"
            name = (f"{ms}_TrackComposite_{room.users[0][1] if room.users else 'x'}.mp4"
                    if record_type == "TrackComposite" else f"{ms}_RoomComposite_{room.name}.{ext}")  # fmt: skip
            rows.append((len(rows) + 1, f"EG_{self.word(12)}", room.name, name, None, None, None, record_type,
                         "completed", None, None, None, rng.choice([None, 1, 1, 3]), None, start,
                         start + timedelta(minutes=rng.randint(1, 30)), start + timedelta(minutes=31)))  # fmt: skip
        for _ in range(self.size["uploads"]):  # POST /upload/video rows
            at = BASE + timedelta(days=rng.randint(1, SPAN_DAYS))
            ms = int(at.timestamp() * 1000)
            rows.append((len(rows) + 1, rng.choice(["agent01", "-"]), f"webrtc-record-{ms}", f"video-{ms}.webm",
                         "/video-record", rng.randint(200_000, 90_000_000), rng.randint(5, 900),
                         rng.choice(["screen", "camera"]), "completed", None, None,
                         rng.choice([None, f"hls/{ms}/index.m3u8"]), rng.choice([0, 1, 2, 3]),
                         rng.choice(["agent01", "พยาบาลวิภา"]), at, None, at))  # fmt: skip
        self.table("record_media", rows)

    def files(self) -> None:
        rng, rows = self.rng, []
        candidates = [self.links[i - 1] for r in self.rooms if r.active for i in r.user_links]
        candidates = [lk for lk in candidates if lk["userType"] == "user"] or self.links
        for k in range(self.size["files"]):
            link = candidates[k % len(candidates)]
            at = link["dtmCreated"] + timedelta(minutes=4, seconds=k)
            ms = int(at.timestamp() * 1000)
            image = rng.random() < 0.8
            name = rng.choice(["IMG_2041.jpg", "แผล.png", "x-ray.jpeg", "บัตรประชาชน.jpg"]) if image else "ใบส่งตัว.pdf"
            folder = "images" if image else "files"
            rows.append((len(rows) + 1, link["linkID"], str(rng.randint(1, 9)), name, f"/{folder}/{ms}/{name}",
                         f"/thumbnails/{name}" if image else "/thumbnails/undefined",
                         "image" if image else "pdf", rng.randint(20_000, 4_000_000),
                         "image/jpeg" if image else "application/pdf", rng.choice([1280, 1920, 720]) if image else None,
                         rng.choice([720, 1080, 1280]) if image else None, at, at))  # fmt: skip
        self.table("files", rows)

    def car_track(self) -> None:
        rng, rows = self.rng, []
        rooms = [r for r in self.rooms if r.active] or self.rooms
        for k in range(self.size["car_track"]):
            room = rooms[k % max(1, len(rooms) // 2)]  # some rooms get several tasks
            at = room.created + timedelta(minutes=5 + k)
            status = rng.choice(["open", "start", "arrive", "complete", "cancel"])
            lat, lng = self.coord()
            rows.append((len(rows) + 1, self.word(), status, self.mobile(), rng.choice([None, "กข 1234", "1669-07"]),
                         room.name, lat, lng, Decimal(rng.choice(["5.000000", "12.500000", "30.123456"])),
                         rng.randint(0, 90), rng.randint(0, 359), round(rng.uniform(0, 40), 1),
                         round(rng.uniform(1, 10), 1), at + timedelta(minutes=15), at,
                         at + timedelta(minutes=1) if status != "open" else None,
                         at + timedelta(minutes=12) if status in ("arrive", "complete") else None,
                         at + timedelta(minutes=3) if status == "cancel" else None,
                         at + timedelta(minutes=50) if status == "complete" else None))  # fmt: skip
        self.table("car_track", rows)

    def radio(self) -> None:
        rng = self.rng
        devices, locations = [], []
        for k in range(self.size["radio_locations"]):
            lat, lng = self.coord()
            at = BASE + timedelta(days=k)
            locations.append((k + 1000, k + 1, f"สถานีวิทยุ {rng.choice(['บางนา', 'ลาดพร้าว', 'ดินแดง', 'สาทร'])} {k}",
                              lat, lng, "ถนนพระราม 4 แขวงปทุมวัน กรุงเทพฯ 10330", None, "active", at, at))  # fmt: skip
        for k in range(self.size["radio_devices"]):
            at = BASE + timedelta(days=k)
            devices.append((k + 1, f"DEV{k:05d}", f"วิทยุรถกู้ชีพ {k}", rng.choice(["mobile", "portable", "base"]),
                            rng.choice(["active", "active", "inactive"]), (k % len(locations)) + 1,
                            f"{rng.randint(136, 174)}.{rng.randint(0, 999):03d}", f"R{k:04d}", f"EMS-{k}",
                            f"SN{rng.randint(10**7, 10**8)}", str(rng.randint(1, 16)), at, at))  # fmt: skip
        self.table("radio_devices", devices)
        self.table("radio_locations", locations)

    def notifications(self) -> None:
        rng, rows = self.rng, []
        for k in range(self.size["notifications"]):
            at = BASE + timedelta(days=SPAN_DAYS - k)
            read = rng.choice([0, 1])
            rows.append((k + 1, self.thai_name(), self.mobile(), "ขอความช่วยเหลือด่วน 🚨 ผู้ป่วยหมดสติ",
                         rng.randint(1001, 1300), read, rng.choice(["case", "chat", "sos"]), f"/case/{1001 + k}",
                         at + timedelta(minutes=5) if read else None, at))  # fmt: skip
        self.table("notification", rows)

    # -- rows today's validation would refuse, planted at every scale
    def edge_cases(self) -> None:
        rng = self.rng
        live = [r for r in self.rooms if r.status == "open" and r.active and r.users]
        live = live or [r for r in self.rooms if r.status == "open"]
        cases = self.cases
        links_by_room: dict[str, list[dict[str, Any]]] = {}
        for link in self.links:
            links_by_room.setdefault(link["room"], []).append(link)

        def plain(room: _Room) -> list[dict[str, Any]]:
            return [lk for lk in links_by_room[room.name] if not lk["share"] and lk["userType"] == "user"]

        # a live room with a normal patient link (getdetail's happy path) and its agent's link
        room = live[0]
        if not plain(room):
            at = room.created + timedelta(minutes=1)
            self.add_link(len(self.links) + 1, room, at, share=0, user_name=None, user_type="user", link_type="video")
            links_by_room[room.name].append(self.links[-1])
        patient = plain(room)[0]
        patient.update(oneTimeLink=0, requirePassword=0, password=hashlib.md5(b"").hexdigest(), enabled=1,
                       requireJoinPermission=0)  # fmt: skip
        cases["live_link"] = patient["linkID"]
        cases["live_room"] = room.name
        # positions: two position rows for one userName (only the newest counts) and a share link with a position
        lat, lng = self.coord()
        twin = dict(patient, id=len(self.links) + 1, linkID=self.new_link_id(), latitude=lat, longitude=lng,
                    accuracy="8", dtmCreated=patient["dtmCreated"] + timedelta(seconds=30))  # fmt: skip
        self.links.append(twin)
        guest = next(lk for lk in links_by_room[room.name] if lk["share"] and lk["userName"] == "Guest")
        guest.update(latitude=Decimal("13.745100000"), longitude=Decimal("100.534200000"), accuracy="15")
        cases["second_position_link"] = twin["linkID"]
        # one-time links: unused (1) and used (2); a password link (MD5 of a known password)
        one = dict(patient, id=len(self.links) + 1, linkID=self.new_link_id(), oneTimeLink=1, mobile=self.mobile(),
                   dtmCreated=patient["dtmCreated"] + timedelta(seconds=40))  # fmt: skip
        one["userName"] = one["mobile"]
        used = dict(one, id=one["id"] + 1, linkID=self.new_link_id(), oneTimeLink=2,
                    dtmCreated=one["dtmCreated"] + timedelta(seconds=10))  # fmt: skip
        secret = f"{rng.randint(0, 999999):06d}"
        locked = dict(one, id=one["id"] + 2, linkID=self.new_link_id(), oneTimeLink=0, requirePassword=1,
                      password=hashlib.md5(secret.encode()).hexdigest(),
                      dtmCreated=one["dtmCreated"] + timedelta(seconds=20))  # fmt: skip
        self.links += [one, used, locked]
        cases.update(one_time_unused=one["linkID"], one_time_used=used["linkID"],
                     password_link=(locked["linkID"], secret))  # fmt: skip
        # an expired link (of a closed room) and an expired room still marked open (the sweep had not run)
        closed = next(r for r in self.rooms if r.status == "close" and plain(r))
        cases["expired_link"] = plain(closed)[0]["linkID"]
        stale = next(r for r in reversed(self.rooms) if r.status == "close" and r.room_type == "conference")
        stale.status = "open"
        self.tables["room_conference"][stale.id - 1] = _replace(self.tables["room_conference"][stale.id - 1], 2, "open")
        cases["open_but_expired_room"] = stale.name
        # zero dates: a live link whose expiry and disconnect are zero, a room's agentSeen, a room user's update
        zero = dict(patient, id=len(self.links) + 1, linkID=self.new_link_id(), mobile=self.mobile(),
                    dtmExpired=ZERO_DATE, dtmDisconnect=ZERO_DATE, patientUpdated=ZERO_DATE,
                    dtmCreated=patient["dtmCreated"] + timedelta(seconds=80))  # fmt: skip
        zero["userName"] = zero["mobile"]
        self.links.append(zero)
        cases["zero_date_link"] = zero["linkID"]
        self.tables["room_conference"][room.id - 1] = _replace(self.tables["room_conference"][room.id - 1], 13,
                                                               ZERO_DATE)  # fmt: skip
        if self.room_users:
            self.room_users[0] = _replace(self.room_users[0], 17, ZERO_DATE)
        # NULLs where the schema allows them: a link with no userName, no linkID, no room; a room user with no name
        nameless = dict(patient, id=len(self.links) + 1, linkID=self.new_link_id(), userName=None, mobile="",
                        dtmCreated=patient["dtmCreated"] + timedelta(seconds=90))  # fmt: skip
        no_id = dict(patient, id=nameless["id"] + 1, linkID=None, dtmCreated=nameless["dtmCreated"])
        no_room = dict(patient, id=nameless["id"] + 2, linkID=self.new_link_id(), room=None, mobile=self.mobile())
        self.links += [nameless, no_id, no_room]
        cases.update(null_username_link=nameless["linkID"], null_room_link=no_room["linkID"])
        cases["null_linkid_rows"] = 1
        # a link whose room never existed (orphan by room) and one whose room_user row is gone (orphan by FK)
        ghost = dict(patient, id=len(self.links) + 1, linkID=self.new_link_id(), room="GhostRoomXY")
        orphan = dict(patient, id=ghost["id"] + 1, linkID=self.new_link_id(), roomUserId=9_999_999,
                      mobile=self.mobile())  # fmt: skip
        self.links += [ghost, orphan]
        cases.update(room_missing_link=ghost["linkID"], orphan_room_user_link=orphan["linkID"])
        # duplicate linkID (the original never checked), and a pair that differs only in letter case (the
        # original's utf8mb4_unicode_ci compares them equal, so its lookups found two rows for either)
        dup_of = dict(patient, id=len(self.links) + 1, linkID=self.new_link_id(), mobile=self.mobile(),
                      dtmCreated=patient["dtmCreated"] + timedelta(minutes=3))  # fmt: skip
        dup = dict(dup_of, id=dup_of["id"] + 1, mobile=self.mobile(), dtmCreated=dup_of["dtmCreated"])
        first = dict(patient, id=dup["id"] + 1, linkID=self.new_link_id()[:5] + "q", mobile=self.mobile())
        cased = dict(first, id=first["id"] + 1, linkID=first["linkID"].upper(), mobile=self.mobile())
        self.links += [dup_of, dup, first, cased]
        cases.update(duplicate_link=dup_of["linkID"], case_twin_links=(first["linkID"], cased["linkID"]))
        # oversized for the suite's narrower read-model columns: a room user's userType over 10 characters and a
        # room name over 50 (room_user.room is varchar(100)); a files.linkId over 100 characters and a NULL one
        # (room_user.room is varchar(100)); the patient's newest participant row is the one in the long room, with
        # track logs of its own, so /stats/user of that mobile shows whether the row was kept
        patients = [u for u in self.room_users if u[5] == "user"]
        if patients:
            base_user = patients[-1]
            self.room_users.append(_replace(_replace(base_user, 0, len(self.room_users) + 1), 5, "ambulance-crew"))
            long_room = "Overflow" * 8  # 64 letters
            identity = self.identity()
            row = _replace(_replace(_replace(base_user, 0, len(self.room_users) + 1), 1, long_room), 2, identity)
            self.room_users.append(row)
            at = base_user[16] + timedelta(days=1)
            place = _Room(0, long_room, 1, at, at, "close", "conference")
            logs = self.tables["data_log"]
            for source in ("CAMERA", "MICROPHONE"):
                data, when = self.webhook("track_published", place, (identity, base_user[4], "user"), source, at)
                logs.append((len(logs) + 1, data, when))
            cases.update(long_user_type=base_user[2], long_room_user=long_room, long_room_mobile=base_user[4])
        files = self.tables["files"]
        files.append(_replace(_replace(files[0], 0, len(files) + 1), 1, "x" * 120))
        files.append(_replace(_replace(files[0], 0, len(files) + 1), 1, None))
        # zero dates in a recording's end and a car task's start
        self.tables["record_media"][0] = _replace(self.tables["record_media"][0], 15, ZERO_DATE)
        self.tables["car_track"][0] = _replace(self.tables["car_track"][0], 15, ZERO_DATE)
        # a webhook row that is not JSON-parsable is NOT planted: MySQL's JSON_EXTRACT fails the whole statement
        # on one (the original's /stats/* would have stopped answering), so production cannot hold one.
        # Thai and emoji: a chat of the live room with both, and a user name with an emoji
        chat = self.tables.setdefault("chat_message", [])
        at = room.created + timedelta(hours=2)
        who = room.users[0] if room.users else (0, "agentX", "เจ้าหน้าที่", "admin")
        chat.append((len(chat) + 1, room.name, who[1], who[1], "สมศรี 🚑 ใจดี", "ผู้ป่วยหายใจลำบาก 😷 กรุณารีบมาค่ะ 🙏",
                     "#E74C3C", "", 0, "null", "null", at, who[3]))  # fmt: skip
        cases["chat_room"] = room.name
        # every room of the live room's family gets its recording and a car task
        cases["car_room"] = self.tables["car_track"][0][5]
        cases["record_room"] = self.tables["record_media"][0][2]
        # a recording of a room that has no case (the original took a room's tenant from its case)
        with_case = {row[3] for row in self.tables["case_data"]}
        bare = next(r for r in reversed(self.rooms) if r.id not in with_case and r.status == "close")
        media = self.tables["record_media"]
        media.append(_replace(_replace(_replace(media[1], 0, len(media) + 1), 2, bare.name), 3,
                              f"{int(bare.created.timestamp() * 1000)}_RoomComposite_{bare.name}.mp4"))  # fmt: skip
        cases["record_room_without_case"] = bare.name
        cases["picture_room"] = next(lk["room"] for lk in self.links if lk["linkID"] == files[0][1])

    def link_rows(self) -> list[tuple[Any, ...]]:
        return [tuple(v for k, v in link.items() if not k.startswith("_")) for link in self.links]


def _replace(row: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return (*row[:index], value, *row[index + 1 :])


COLUMNS: dict[str, Sequence[str]] = {
    "services": ("id", "name", "webTitle", "prefixHLSRecordVideoSMS", "prefixTextVideoSMS", "prefixTextLocationSMS",
                 "domainsVideo", "domainsLocation", "smsSenderName", "logo", "titleColor", "latitude", "longitude"),
    "node_livekit": ("id", "nodeName", "livekitHost", "livekitLocal", "livekitApiKey", "livekitApiSecret",
                     "lastHealthCheck", "description"),
    "color_scheme": ("id", "color_hex"),
    "room_conference": ("id", "nodeLivekitId", "status", "roomType", "room", "service", "recordStatus", "recordId",
                        "autoRecord", "recordType", "encodingOptionsPreset", "chatEnabled", "messageUnread",
                        "agentSeen", "userAgent", "webSocketURL", "dtmCreated", "dtmUpdated", "dtmClosed",
                        "dtmExpired", "dtmRoomStarted", "dtmRoomFinished", "dtmStartRecord", "dtmStopRecord",
                        "sync_at"),
    "link_connect": ("id", "roomUserId", "sms", "recordId", "mobile", "linkID", "domainIndex", "share", "enabled",
                     "userName", "room", "userType", "linkType", "crmSender", "accuracy", "latitude", "longitude",
                     "patientLatitude", "patientLongitude", "patientUpdated", "service", "errorVideo",
                     "errorLocation", "os", "userAgent", "requireJoinPermission", "requireUserName",
                     "requirePassword", "oneTimeLink", "password", "isAdmin", "dtmConnection", "dtmDisconnect",
                     "dtmCreated", "dtmExpired", "sync_at"),
    "room_user": ("id", "room", "identity", "color", "userName", "userType", "status", "socketId", "conference",
                  "cameraMicrophoneStatus", "camera", "microphone", "latitude", "longitude", "accuracy", "userAgent",
                  "dtmcreated", "dtmupdated"),
    "usage_status_log": ("id", "linkID", "room", "mobile", "linkType", "latitude", "longitude", "identity",
                         "userName", "userType", "status", "userAgent", "data", "dtmCreated"),
    "case_data": ("id", "caseId", "service", "roomId", "operationNumber", "status", "hn", "patientMobile",
                  "mobileCreated", "caseType", "userName", "dtmCreated", "organization"),
    "chat_message": ("id", "room", "identity", "chat_identity", "userName", "text", "color", "files",
                     "replyToMessageId", "replyToUserName", "replyToText", "dtmCreated", "userType"),
    "data_log": ("id", "data", "dtmCreated"),
    "record_media": ("id", "egressId", "room", "fileName", "filePath", "fileSize", "duration", "recordType", "status",
                     "dtmCreated", "dtmCompleted", "hls", "encode", "uploader", "startRecord", "endRecord",
                     "dtmUpdated"),
    "files": ("id", "linkId", "elementId", "filename", "url", "thumbnail", "fileType", "size", "mimetype", "width",
              "height", "createdAt", "updatedAt"),
    "car_track": ("id", "uid", "status", "mobile", "userName", "room", "latitude", "longitude", "accuracy", "speed",
                  "heading", "altitude", "altitudeAccuracy", "dtmUpdated", "dtmCreated", "dtmStarted", "dtmArrived",
                  "dtmCanceled", "dtmCompleted"),
    "radio_devices": ("id", "deviceId", "deviceName", "deviceType", "status", "locationId", "frequency", "radioNo",
                      "radioName", "serialNo", "channel", "dtmCreated", "dtmUpdated"),
    "radio_locations": ("logId", "id", "locationName", "latitude", "longitude", "address", "description", "status",
                        "dtmCreated", "dtmUpdated"),
    "notification": ("notificationId", "userName", "mobile", "message", "caseId", "read", "notificationType",
                     "relatedUrl", "dtmRead", "dtmCreated"),
}  # fmt: skip


async def _insert(cur: Any, table: str, rows: Iterable[tuple[Any, ...]], batch: int = 5000) -> int:
    columns = COLUMNS[table]
    names = ", ".join(f"`{c}`" for c in columns)
    marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
    rows = list(rows)
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        flat = [_sql_value(v) for row in chunk for v in row]
        await cur.execute(f"INSERT INTO `{table}` ({names}) VALUES " + ", ".join([marks] * len(chunk)), flat)  # noqa: S608 (fixed table and column names)
    return len(rows)


def _sql_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal):
        return str(value)
    return value


async def _write(conn: Any, tables: list[str], rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, int]:
    counts = {}
    async with conn.cursor() as cur:
        # as a restore of the original's dump runs: zero dates and ids as given, no FK order needed
        await cur.execute("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO', FOREIGN_KEY_CHECKS = 0, UNIQUE_CHECKS = 0")
        await cur.execute("SET SESSION time_zone = %s", (SOURCE_TIME_ZONE,))  # TIMESTAMPs as its server wrote them
        await cur.execute("START TRANSACTION")
        for table in tables:
            counts[table] = await _insert(cur, table, rows.get(table, []))
        await cur.execute("COMMIT")
        await cur.execute("SET SESSION FOREIGN_KEY_CHECKS = 1, UNIQUE_CHECKS = 1")
    return counts


async def fill(conn_or_dsn: Any, scale: float = SMALL, seed: int = 1, *, zero_dates: bool = True) -> Filled:
    """Write the generated rows into an empty legacy source (``create_source``); deterministic for (scale, seed).
    ``zero_dates=False`` puts a real date where the zero dates would be (to tell their effects from others')."""
    started = time.monotonic()
    gen = _Gen(scale, seed)
    gen.build()
    gen.tables["link_connect"] = gen.link_rows()
    if not zero_dates:
        for name, rows in gen.tables.items():
            gen.tables[name] = [tuple(BASE if v == ZERO_DATE else v for v in row) for row in rows]
    filled = Filled(cases=dict(gen.cases))
    if isinstance(conn_or_dsn, (str, Dsn)):
        # three connections, so the server writes the two big tables and the rest at the same time
        dsn = Dsn.parse(conn_or_dsn) if isinstance(conn_or_dsn, str) else conn_or_dsn
        big = ["link_connect", "usage_status_log"]
        groups = [[big[0]], [big[1]], [t for t in COLUMNS if t not in big]]
        conns = [await dsn.connect() for _ in groups]
        try:
            parts = await asyncio.gather(
                *(_write(c, group, gen.tables) for c, group in zip(conns, groups, strict=True))
            )
        finally:
            for conn in conns:
                conn.close()
    else:
        parts = [await _write(conn_or_dsn, list(COLUMNS), gen.tables)]
    written = {table: n for part in parts for table, n in part.items()}
    filled.counts = {table: written[table] for table in COLUMNS}
    filled.seconds = time.monotonic() - started
    return filled


async def build(dsn: str | Dsn, scale: float = SMALL, seed: int = 1, *, zero_dates: bool = True) -> Filled:
    """``create_source`` then ``fill``."""
    target = await create_source(dsn)
    return await fill(target, scale, seed, zero_dates=zero_dates)


async def clone_without(source: Dsn, name: str, drop: dict[str, list[str]]) -> Dsn:
    """A copy of ``source`` in database ``name`` without the rows ``drop`` names (table -> key values): the source
    as a migration carried it, for the original's answers over what the suite holds."""
    target = Dsn(source.user, source.password, source.host, source.port, name)
    await create_source(target)
    conn = await target.connect()
    try:
        async with conn.cursor() as cur:
            await cur.execute("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO', FOREIGN_KEY_CHECKS = 0")
            for table in COLUMNS:
                await cur.execute(f"INSERT INTO `{table}` SELECT * FROM `{source.database}`.`{table}`")  # noqa: S608
                keys = drop.get(table, [])
                if keys:
                    key = "notificationId" if table == "notification" else "id"
                    marks = ", ".join(["%s"] * len(keys))
                    await cur.execute(f"DELETE FROM `{table}` WHERE `{key}` IN ({marks})", keys)  # noqa: S608
    finally:
        conn.close()
    return target


class OldGateway:
    """The original gateway still serving a legacy source: the rows its routes wrote (../shared/spec/link-auth.md,
    http-conference.md), as the cutover's catch-up window sees them. Each call is one request's writes, in local
    Bangkok time as the original wrote them; ``created`` names the links and rooms made, ``deleted`` the
    notification ids removed. ``step`` makes one request of a realistic mix."""

    def __init__(self, conn: Any, seed: int = 5) -> None:
        self.conn = conn
        self.rng = random.Random(seed)
        self.created: list[tuple[str, str]] = []  # (linkID, room) of each link made
        self.deleted: list[int] = []
        self.requests = 0

    @staticmethod
    def now() -> datetime:
        return datetime.now(ZoneInfo("Asia/Bangkok")).replace(tzinfo=None, microsecond=0)

    def _word(self) -> str:
        return "".join(self.rng.choice(CHARSET) for _ in range(6))

    async def _run(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        async with self.conn.cursor() as cur:
            await cur.execute(sql, args)
            return cur.lastrowid

    async def _usage(self, link_id: str, room: str, status: str, data: Any, **extra: Any) -> None:
        row = {"linkID": link_id, "room": room, "mobile": "", "identity": "", "userName": "", "userType": "user",
               "userAgent": "", **extra, "status": status, "data": json.dumps(data, ensure_ascii=False),
               "dtmCreated": self.now()}  # fmt: skip
        names, marks = ", ".join(f"`{k}`" for k in row), ", ".join(["%s"] * len(row))
        await self._run(f"INSERT INTO usage_status_log ({names}) VALUES ({marks})", tuple(row.values()))  # noqa: S608

    async def create_link(self, service: int = 1) -> tuple[str, str]:
        """POST /link/create for a new room: the room, its Guest and Viewer share links, the patient's link and a
        CreateLink usage row."""
        now, room = self.now(), self._word()
        expired = now + timedelta(days=1)
        await self._run(
            "INSERT INTO room_conference (status, roomType, room, service, recordId, autoRecord, recordType, "
            "encodingOptionsPreset, chatEnabled, webSocketURL, userAgent, dtmCreated, dtmUpdated, dtmExpired) "
            "VALUES ('open', 'conference', %s, %s, '', 0, 'RoomCompositeVideoAudio', 'H264_720P_30', 1, '', %s, %s, "
            "%s, %s)",
            (room, service, USER_AGENTS[3][1], now, now, expired),
        )
        empty = hashlib.md5(b"").hexdigest()
        link_sql = (
            "INSERT INTO link_connect (sms, recordId, mobile, linkID, share, enabled, userName, room, userType, "
            "linkType, crmSender, service, requireJoinPermission, requireUserName, requirePassword, oneTimeLink, "
            "password, isAdmin, dtmCreated, dtmExpired) "
            "VALUES (1, 0, %s, %s, %s, 1, %s, %s, %s, 'video', %s, %s, 0, 0, 0, 0, %s, '0', %s, %s)"
        )
        for name, user_type in (("Guest", "user"), ("Viewer", "viewer")):
            await self._run(link_sql, ("", self._word(), 1, name, room, user_type, "", service, empty, now, expired))
        mobile = "08" + "".join(self.rng.choice("0123456789") for _ in range(8))
        link_id = self._word()
        await self._run(link_sql, (mobile, link_id, 0, mobile, room, "user", "agent01", service, empty, now, expired))
        created = {"linkID": link_id, "isAdmin": "0", "requireJoinPermission": 0, "userName": mobile,
                   "dtmExpired": expired.strftime("%Y-%m-%d %H:%M:%S"), "url": f"https://vdo.example/video/{link_id}",
                   "linkType": "video", "password": ""}  # fmt: skip
        await self._usage(link_id, room, "CreateLink", created, mobile=mobile, linkType="video")
        self.created.append((link_id, room))
        return link_id, room

    async def get_detail(self, link_id: str, room: str) -> None:
        """GET /link/getdetail's writes: the link's user agent and os, a GetLinkDetail usage row."""
        os_name, agent = self.rng.choice(USER_AGENTS)
        await self._run("UPDATE link_connect SET userAgent = %s, os = %s WHERE linkID = %s", (agent, os_name, link_id))
        identity = "".join(self.rng.choice(CHARSET) for _ in range(10))
        detail = {"linkID": link_id, "room": room}
        await self._usage(link_id, room, "GetLinkDetail", detail, identity=identity, userAgent=agent)

    async def update_latlng(self, link_id: str, room: str) -> None:
        """POST /link/update/latlng: the link's position and an UpdateLatLngLinkDetail usage row."""
        lat = Decimal(self.rng.uniform(13.55, 14.05)).quantize(Decimal("0.000000001"))
        lng = Decimal(self.rng.uniform(100.30, 100.95)).quantize(Decimal("0.000000001"))
        await self._run("UPDATE link_connect SET latitude = %s, longitude = %s, accuracy = '12' WHERE linkID = %s",
                        (str(lat), str(lng), link_id))  # fmt: skip
        await self._usage(link_id, room, "UpdateLatLngLinkDetail", "", latitude=str(lat), longitude=str(lng))

    async def chat(self, room: str) -> None:
        """A chat line of the room's agent (socket `chat`)."""
        identity = "agent" + self._word()
        await self._run(
            "INSERT INTO chat_message (room, identity, chat_identity, userName, text, color, files, replyToMessageId, "
            "replyToUserName, replyToText, dtmCreated, userType) VALUES (%s, %s, %s, %s, %s, %s, '', 0, 'null', "
            "'null', %s, 'admin')",
            (room, identity, identity, "เจ้าหน้าที่ศูนย์", self.rng.choice(CHAT_LINES), self.rng.choice(PALETTE), self.now()),
        )  # fmt: skip

    async def read_or_delete_notification(self) -> None:
        """PUT /notification/read of the newest unread one, or DELETE of the oldest left."""
        async with self.conn.cursor() as cur:
            await cur.execute("SELECT notificationId, `read` FROM notification ORDER BY notificationId LIMIT 1")
            row = await cur.fetchone()
            if row is None:
                return
            if row[1]:
                await cur.execute("DELETE FROM notification WHERE notificationId = %s", (row[0],))
                self.deleted.append(int(row[0]))
            else:
                await cur.execute("UPDATE notification SET `read` = 1, dtmRead = %s WHERE notificationId = %s",
                                  (self.now(), row[0]))  # fmt: skip

    async def step(self) -> None:
        """One request: mostly reads of links made since (getdetail, positions), new links, chat, notifications."""
        self.requests += 1
        choice = self.rng.random()
        if not self.created or choice < 0.3:
            await self.create_link(self.rng.choice([1, 2, 4]))
        elif choice < 0.6:
            await self.get_detail(*self.rng.choice(self.created))
        elif choice < 0.75:
            await self.update_latlng(*self.rng.choice(self.created))
        elif choice < 0.9:
            await self.chat(self.rng.choice(self.created)[1])
        else:
            await self.read_or_delete_notification()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a legacy `conference` source database with generated rows")
    parser.add_argument("--dsn", required=True, help="mysql://user:pass@host:port/database (dropped and recreated)")
    parser.add_argument("--scale", type=float, default=SMALL, help="1 = production size; default %(default)s")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    filled = asyncio.run(build(args.dsn, args.scale, args.seed))
    print(json.dumps({"seconds": round(filled.seconds, 1), "counts": filled.counts, "cases": filled.cases},
                     ensure_ascii=False, default=str, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

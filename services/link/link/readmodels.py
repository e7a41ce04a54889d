"""Read models of GET /link/getdetail: conference's rooms and room users, LiveKit's participants and the colour
palette, kept in link's own database and fed by events, so the route answers in one hop (no request to
conference) once a room is known.

* ``room_view``: conference's RoomChanged events carrying ``detail`` (conference.room.*). ``complete`` = the
  row began with the room's ``created`` event (so every later room_user change of it reached ``room_user_view``).
* ``room_user_view``: PARTICIPANT_SAVED (room_user inserts/updates) — colour and name reused in tokens.
* ``room_participant_view``: RECORDING_PARTICIPANT_JOINED / LEFT (LiveKit webhooks, via recording).
* ``palette_view`` / :class:`Palette`: rpc.conference.palette at start-up, then every 5 minutes; the last known
  list is used while conference does not answer.

Consumers are durable and idempotent (``handled_once`` in the applying transaction); an event older than the
row (``version`` = event time, epoch ms) does not overwrite it.

Fallback (slow path, in routes/links.py): a room missing from ``room_view`` (older than the events, or its
event not applied yet), a room whose LiveKit node has its own API key (link signs only with the shared
LIVEKIT_API_KEY/SECRET), or no palette known yet: the request goes to conference (RPC_PARTICIPANT_TOKEN with
withRoom) and the room it returns is stored here, so only the first request of such a room is slow. Whether
the room uses the shared key is learnt by verifying the token conference returned with the shared secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import msgspec

from link import repository
from servicekit import tokens
from servicekit.bus import RpcError, apply_once, event_payload
from servicekit.db import Connection, Database
from servicekit.events import (
    PARTICIPANT_SAVED,
    RECORDING_PARTICIPANT_JOINED,
    RECORDING_PARTICIPANT_LEFT,
    ROOM_CREATED,
    RPC_CONFERENCE_PALETTE,
    Event,
    PaletteQuery,
    ParticipantPresence,
    RoomChanged,
    RoomUserSaved,
)
from servicekit.web import Runtime

log = logging.getLogger(__name__)

CONFERENCE_CONSUMER = "link-readmodels-conference"
RECORDING_CONSUMER = "link-readmodels-recording"
PALETTE_REFRESH_SECONDS = 300.0
PALETTE_RETRY_SECONDS = 1.0
PALETTE_RPC_TIMEOUT = 2.0

_LINK_COLUMNS = [c.strip() for c in repository.LINK_DETAIL_COLUMNS.split(",")]
_LINK_SELECT = ", ".join(f"l.`{c}`" for c in _LINK_COLUMNS)
_LOOKUP = (
    f"SELECT {_LINK_SELECT}"  # noqa: S608 - constant column names
    ", l.userAgent AS _linkAgent, l.os AS _linkOs, r.detail AS _detail, r.usesDefaultKey AS _defaultKey,"
    " r.complete AS _complete, u.identity AS _knownIdentity, u.color AS _knownColor, u.userName AS _knownName,"
    " u.userAgent AS _knownAgent"
    " FROM link_connect l LEFT JOIN room_view r ON r.room = l.room"
    " LEFT JOIN room_user_view u ON u.room = l.room AND u.identity = %s"
    " WHERE l.linkID = %s"
)
_EXTRA = (
    "_linkAgent",
    "_linkOs",
    "_detail",
    "_defaultKey",
    "_complete",
    "_knownIdentity",
    "_knownColor",
    "_knownName",
    "_knownAgent",
)
_json = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


def event_ms(event: Event) -> int:
    try:
        return int(datetime.fromisoformat(event.occurred_at).timestamp() * 1000)
    except ValueError:
        return int(time.time() * 1000)


# ---- the getdetail lookup --------------------------------------------------------------------------------
@dataclass
class KnownUser:
    color: str | None
    user_name: str | None
    user_agent: str | None


@dataclass
class Lookup:
    link: dict[str, Any]  # the link row (LINK_DETAIL_COLUMNS, in order)
    link_agent: str | None
    link_os: str | None
    detail: dict[str, Any] | None  # the room's detail from room_view (None: not in the read model)
    uses_default_key: bool
    complete: bool
    user: KnownUser | None  # (room, identity) in room_user_view


async def lookup(conn: Connection, link_id: str, identity: str) -> Lookup | None:
    """The link, its room's read model and the identity's room user, in one query."""
    row = await conn.fetch_one(_LOOKUP, (identity, link_id))
    if row is None:
        return None
    extra = {key: row.pop(key) for key in _EXTRA}
    raw_detail = extra["_detail"]
    return Lookup(
        link=row,
        link_agent=extra["_linkAgent"],
        link_os=extra["_linkOs"],
        detail=_json.decode(raw_detail) if raw_detail else None,
        uses_default_key=bool(extra["_defaultKey"]),
        complete=bool(extra["_complete"]),
        user=(
            KnownUser(extra["_knownColor"], extra["_knownName"], extra["_knownAgent"])
            if extra["_knownIdentity"] is not None
            else None
        ),
    )


def room_reply(detail: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The stored detail as conference's getRoomDetail answers it (recordDuration computed now)."""
    reply = dict(detail)
    started = detail.get("dtmStartRecord")
    if started:
        try:
            at = datetime.fromisoformat(started.replace("Z", "+00:00"))
        except (ValueError, AttributeError):
            return reply
        current = now or datetime.now(UTC)
        reply["recordDuration"] = abs(int((at - current).total_seconds() * 1000))
    return reply


async def participants(conn: Connection | Database, room: str) -> list[dict[str, Any]]:
    rows = await conn.fetch_all(
        "SELECT participant FROM room_participant_view WHERE room = %s AND participant IS NOT NULL"
        " ORDER BY joinedAt, identity",
        (room,),
    )
    return [_json.decode(r["participant"]) for r in rows]


def mint(
    *,
    api_key: str,
    api_secret: str,
    room: str,
    identity: str | None,
    user_name: str | None,
    user_type: str,
    link_type: str | None,
    mobile: str | None,
    link_id: str | None,
    room_join: bool,
    known: KnownUser | None,
    color: str | None,
) -> dict[str, Any]:
    """What conference's participant token answers for getdetail (useKnownUser): identity, userName, token,
    conference, color — a known user's colour and name reused, else a palette colour and ``User-<n>``."""
    if identity and identity != "null":
        if known is not None:
            color = known.color or color
            if user_name is None:
                user_name = known.user_name
        if user_name is None:
            user_name = tokens.generated_user_name()
    new_identity = tokens.participant_identity(identity, user_type)
    user_name = tokens.participant_user_name(user_name)
    metadata = tokens.participant_metadata(
        user_name=user_name, user_type=user_type, color=color, link_type=link_type, mobile=mobile, link_id=link_id
    )
    token = tokens.participant_token(
        api_key,
        api_secret,
        identity=new_identity,
        user_name=user_name,
        metadata=metadata,
        room=room,
        room_join=room_join,
    )
    reply: dict[str, Any] = {"identity": new_identity}
    if user_name is not None:
        reply["userName"] = user_name
    reply.update({"token": token, "conference": 1, "color": color})
    return reply


def signed_with(token: Any, api_key: str, api_secret: str) -> bool:
    """True when ``token`` was signed with the shared key (so link may sign the room's tokens itself)."""
    if not isinstance(token, str) or not token:
        return False
    try:
        claims = jwt.decode(token, api_secret, algorithms=["HS256"], options={"verify_exp": False})
    except jwt.InvalidTokenError:
        return False
    return claims.get("iss") == api_key


# ---- writing the views -----------------------------------------------------------------------------------
_UPSERT_ROOM = (
    "INSERT INTO room_view (room, id, status, roomType, detail, nodeLivekitId, usesDefaultKey, complete, version)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
    " id = IF(VALUES(version) >= version, VALUES(id), id),"
    " status = IF(VALUES(version) >= version, VALUES(status), status),"
    " roomType = IF(VALUES(version) >= version, VALUES(roomType), roomType),"
    " detail = IF(VALUES(version) >= version, VALUES(detail), detail),"
    " nodeLivekitId = IF(VALUES(version) >= version, VALUES(nodeLivekitId), nodeLivekitId),"
    " usesDefaultKey = IF(VALUES(version) >= version, VALUES(usesDefaultKey), usesDefaultKey),"
    " complete = GREATEST(complete, VALUES(complete)),"
    " version = GREATEST(version, VALUES(version))"
)


async def store_room(
    conn: Connection | Database,
    detail: dict[str, Any],
    *,
    room: str,
    node_id: int | None,
    uses_default_key: bool,
    complete: bool,
    version: int,
) -> None:
    stored = {k: v for k, v in detail.items() if k != "recordDuration"}
    name = str(stored.get("room") or room)[:50]
    await conn.execute(
        _UPSERT_ROOM,
        (
            name,
            stored.get("id"),
            stored.get("status"),
            stored.get("roomType"),
            _encode.encode(stored).decode(),
            node_id,
            1 if uses_default_key else 0,
            1 if complete else 0,
            version,
        ),
    )


_UPSERT_USER = (
    "INSERT INTO room_user_view (room, identity, color, userName, userType, userAgent, version)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
    " color = IF(VALUES(version) >= version, VALUES(color), color),"
    " userName = IF(VALUES(version) >= version, VALUES(userName), userName),"
    " userType = IF(VALUES(version) >= version, VALUES(userType), userType),"
    " userAgent = IF(VALUES(version) >= version, VALUES(userAgent), userAgent),"
    " version = GREATEST(version, VALUES(version))"
)

_UPSERT_PARTICIPANT = (
    "INSERT INTO room_participant_view (room, identity, participant, joinedAt, version)"
    " VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
    " participant = IF(VALUES(version) >= version, VALUES(participant), participant),"
    " joinedAt = IF(VALUES(version) >= version, VALUES(joinedAt), joinedAt),"
    " version = GREATEST(version, VALUES(version))"
)


async def apply_conference_event(db: Database, event: Event) -> bool:
    """Apply one conference event to the views; True when it was applied (False: duplicate or not ours)."""
    if event.subject.startswith("conference.room."):
        changed = event_payload(event, RoomChanged)
        if changed is None or not changed.detail:
            return False  # malformed, or a publisher without details: the fallback fills the view

        async def apply_room(conn: Connection) -> bool:
            await store_room(
                conn,
                changed.detail,
                room=changed.room,
                node_id=changed.nodeLivekitId,
                uses_default_key=bool(changed.usesDefaultKey),
                complete=event.subject == ROOM_CREATED,
                version=event_ms(event),
            )
            return True

        return bool(await apply_once(db, CONFERENCE_CONSUMER, event, apply_room))
    if event.subject == PARTICIPANT_SAVED:
        user = event_payload(event, RoomUserSaved)
        if user is None or len(user.room) > 100 or len(user.identity) > 50:
            return False

        async def apply_user(conn: Connection) -> bool:
            await conn.execute(
                _UPSERT_USER,
                (user.room, user.identity, user.color, user.userName, user.userType, user.userAgent, event_ms(event)),
            )
            return True

        return bool(await apply_once(db, CONFERENCE_CONSUMER, event, apply_user))
    return False


async def apply_recording_event(db: Database, event: Event) -> bool:
    """Apply one participant joined/left event to room_participant_view."""
    if event.subject not in (RECORDING_PARTICIPANT_JOINED, RECORDING_PARTICIPANT_LEFT):
        return False
    presence = event_payload(event, ParticipantPresence)
    if presence is None:
        return False
    if not presence.room or not presence.identity or len(presence.room) > 50 or len(presence.identity) > 255:
        return False
    version = presence.timestamp or event_ms(event)
    joined = event.subject == RECORDING_PARTICIPANT_JOINED
    participant = _encode.encode(presence.participant).decode() if joined else None
    joined_at = presence.participant.get("joinedAt") if joined else 0
    try:
        joined_at = int(joined_at or 0)
    except (TypeError, ValueError):
        joined_at = 0

    async def apply_presence(conn: Connection) -> bool:
        await conn.execute(_UPSERT_PARTICIPANT, (presence.room, presence.identity, participant, joined_at, version))
        return True

    return bool(await apply_once(db, RECORDING_CONSUMER, event, apply_presence))


# ---- the palette -----------------------------------------------------------------------------------------
class Palette:
    """Conference's colour list, held in memory (and in palette_view for restarts)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.colors: list[str] = []
        self.known = False  # a list was learnt (from conference, or stored by an earlier run)

    def pick(self) -> str | None:
        return secrets.choice(self.colors) if self.colors else None

    async def load_stored(self) -> None:
        assert self.runtime.db is not None
        rows = await self.runtime.db.fetch_all("SELECT color FROM palette_view ORDER BY position")
        if rows:
            self.colors = [r["color"] for r in rows]
            self.known = True

    async def refresh(self) -> bool:
        """Ask conference; True on success. On failure the last known list stays."""
        assert self.runtime.bus is not None and self.runtime.db is not None
        try:
            reply = await self.runtime.bus.request(RPC_CONFERENCE_PALETTE, PaletteQuery(), timeout=PALETTE_RPC_TIMEOUT)
            colors = msgspec.convert(reply, list[str])
        except (RpcError, msgspec.ValidationError) as exc:
            log.info("palette not refreshed", extra={"error": str(exc)})
            return False
        colors = [c for c in colors if c and len(c) <= 50]
        if colors != self.colors or not self.known:
            async with self.runtime.db.transaction() as conn:
                await conn.execute("DELETE FROM palette_view")
                for position, color in enumerate(colors):
                    await conn.execute("INSERT INTO palette_view (position, color) VALUES (%s, %s)", (position, color))
        self.colors = colors
        self.known = True
        return True

    async def run(self) -> None:
        """Refresh every 5 minutes; every second until the first success."""
        while True:
            try:
                ok = await self.refresh()
            except Exception:
                log.exception("palette refresh failed")
                ok = False
            await asyncio.sleep(PALETTE_REFRESH_SECONDS if ok else PALETTE_RETRY_SECONDS)


# ---- wiring ----------------------------------------------------------------------------------------------
async def start(runtime: Runtime) -> Palette:
    assert runtime.bus is not None and runtime.db is not None
    db = runtime.db
    palette = Palette(runtime)
    with contextlib.suppress(Exception):
        await palette.load_stored()
    runtime.background.append(asyncio.create_task(palette.run()))

    async def on_conference(event: Event) -> None:
        await apply_conference_event(db, event)

    async def on_recording(event: Event) -> None:
        await apply_recording_event(db, event)

    runtime.bus.consume("conference", CONFERENCE_CONSUMER, on_conference)
    runtime.bus.consume("recording", RECORDING_CONSUMER, on_recording, filter_subject="recording.participant.>")
    return palette

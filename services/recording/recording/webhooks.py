"""POST /webhook: LiveKit's webhooks, verified, each event id applied once, effects published as events."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import random
from typing import Any

import jwt
from asyncmy.errors import OperationalError
from google.protobuf.json_format import MessageToDict, Parse, ParseError
from litestar import Controller, Request, Response, post
from livekit.api import TokenVerifier
from livekit.protocol.webhook import WebhookEvent

from recording import domain, repository
from servicekit import events as ev
from servicekit.bus import add_event
from servicekit.clock import now_local
from servicekit.web import Runtime, fail

log = logging.getLogger("recording.webhooks")


class WebhookRejected(Exception):
    pass


def _token(header: str | None) -> str:
    token = (header or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    return token


def verify(body: bytes, authorization: str | None, api_key: str, api_secret: str) -> None:
    """LiveKit's webhook check: a JWT signed with the API secret, issued by the API key, not expired, whose
    ``sha256`` claim is the base64 SHA-256 of the body. Raises WebhookRejected with the reason."""
    token = _token(authorization)
    if not token:
        raise WebhookRejected("missing authorization")
    try:
        claims = TokenVerifier(api_key, api_secret).verify(token)
    except jwt.ExpiredSignatureError as exc:
        raise WebhookRejected("expired webhook token") from exc
    except Exception as exc:  # every other decode/signature/issuer failure
        raise WebhookRejected("invalid webhook token") from exc
    if not claims.sha256:
        raise WebhookRejected("webhook token without sha256")
    try:
        expected = base64.b64decode(claims.sha256, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookRejected("invalid webhook token") from exc
    if not hmac.compare_digest(hashlib.sha256(body).digest(), expected):
        raise WebhookRejected("webhook body does not match its signature")


def _json(message: Any) -> dict[str, Any]:
    return MessageToDict(message, always_print_fields_with_no_presence=True)


def _local(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


RETRYABLE = {1205, 1213}  # lock wait timeout, deadlock: InnoDB rolled the transaction back, run it again
ATTEMPTS = 5


async def apply(runtime: Runtime, event: WebhookEvent, raw: str) -> bool:
    """Apply one verified event; False when its id was applied before (a redelivery). The transaction is
    retried when InnoDB picks it as a deadlock victim (concurrent outbox inserts and the relay's scan)."""
    for attempt in range(ATTEMPTS):
        try:
            return await _apply_once(runtime, event, raw)
        except OperationalError as exc:
            if exc.args[0] not in RETRYABLE or attempt == ATTEMPTS - 1:
                raise
            log.info("webhook transaction retried", extra={"event_id": event.id, "code": exc.args[0]})
            await asyncio.sleep(0.01 * (attempt + 1) + random.random() * 0.02)  # noqa: S311 (jitter)
    return False


async def _apply_once(runtime: Runtime, event: WebhookEvent, raw: str) -> bool:
    assert runtime.db is not None
    data = _json(event)
    name = event.event
    room = domain.event_room(data)
    event_id = event.id if 0 < len(event.id) <= 64 else "sha-" + hashlib.sha256(raw.encode()).hexdigest()[:40]
    timestamp = int(event.created_at) * 1000
    now = now_local()
    async with runtime.db.transaction() as conn:
        if not await repository.record_receipt(conn, event_id, name, room, int(event.created_at)):
            return False
        await add_event(
            conn,
            ev.RECORDING_WEBHOOK_RECEIVED,
            ev.WebhookReceived(eventId=event_id, event=name, room=room, data=raw, createdAt=int(event.created_at)),
        )
        participant = data.get("participant") or {}
        identity = str(participant.get("identity") or "")
        if name in ("participant_joined", "participant_left") and room and identity:
            subject = ev.RECORDING_PARTICIPANT_JOINED if name == "participant_joined" else ev.RECORDING_PARTICIPANT_LEFT
            presence = ev.ParticipantPresence(
                room=room, identity=identity, participant=participant, timestamp=timestamp
            )
            await add_event(conn, subject, presence)
        elif name in ("room_started", "room_finished") and room:
            subject = ev.RECORDING_ROOM_STARTED if name == "room_started" else ev.RECORDING_ROOM_FINISHED
            await add_event(
                conn, subject, ev.LiveKitRoomEvent(room=room, roomInfo=data.get("room") or {}, timestamp=timestamp)
            )
        elif name in domain.EGRESS_EVENTS:
            info = data.get("egressInfo") or {}
            egress_id = str(info.get("egressId") or "")
            if egress_id:
                status = str(info.get("status") or "")
                changed = ev.EgressChanged(
                    room=room, recordId=egress_id, status=status, egressInfo=info, timestamp=timestamp
                )
                if name == "egress_started":
                    changed.dtmStartRecord = _local(now)
                    subject = ev.RECORDING_EGRESS_STARTED
                elif name == "egress_ended":
                    changed.dtmStopRecord = _local(now)
                    subject = ev.RECORDING_EGRESS_ENDED
                    await repository.mark_egress_ended(conn, egress_id, status.removeprefix("EGRESS_").lower(), now)
                else:
                    subject = ev.RECORDING_EGRESS_UPDATED
                await add_event(conn, subject, changed)
    return True


class WebhookController(Controller):
    path = "/webhook"
    tags = ["webhook"]

    @post("", status_code=200, summary="LiveKit webhook (signed; each event id applied once)")
    async def receive(self, request: Request, runtime: Runtime) -> Response:
        body = await request.body()
        settings = runtime.settings
        try:
            verify(body, request.headers.get("authorization"), settings.livekit_api_key, settings.livekit_api_secret)
        except WebhookRejected as exc:
            log.warning("webhook rejected", extra={"reason": str(exc)})
            raise fail(str(exc), 401) from exc
        try:
            raw = body.decode("utf-8")
            event = Parse(raw, WebhookEvent(), ignore_unknown_fields=True)
        except (UnicodeDecodeError, ParseError) as exc:
            raise fail("invalid webhook body") from exc
        if not event.event:
            raise fail("invalid webhook body: no event")
        applied = await apply(runtime, event, raw)
        if not applied:
            log.info("webhook replay ignored", extra={"event_id": event.id})
        return Response(b"", status_code=200, media_type="text/plain")

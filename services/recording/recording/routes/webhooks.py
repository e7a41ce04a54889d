"""POST /webhook: LiveKit's webhooks, verified, each event id applied once, effects published as events
(recording.events.webhooks applies them).

Each LiveKit node signs with its own API key: the token's issuer says which, and its secret comes from conference
(recording.events.livekit_nodes; the env default key needs no lookup). An unknown key is refused (401); when
conference cannot answer, the default key still works and other keys get 503 (LiveKit retries). Nothing is written
for either."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging

import jwt
from google.protobuf.json_format import Parse, ParseError
from litestar import Controller, Request, Response, post
from livekit.api import TokenVerifier
from livekit.protocol.webhook import WebhookEvent
from prometheus_client import Counter

from recording.events.livekit_nodes import LiveKitNodes, NodesUnavailable, UnknownKey
from recording.events.webhooks import apply, follow_up
from servicekit.web import Runtime, fail

log = logging.getLogger("recording.webhooks")

# Verdicts: applied, duplicate (an event id applied before), refused_signature (401), deferred (503: the node's
# secret is unknown for now), invalid_body. The event type is "unknown" until the signature holds, "other" when
# LiveKit sends a type not listed here (labels stay bounded whatever the body says).
WEBHOOKS = Counter("ems_webhooks_total", "LiveKit webhooks received, by event type and verdict", ["event", "verdict"])
EVENT_TYPES = frozenset({
    "room_started", "room_finished", "participant_joined", "participant_left", "participant_connection_aborted",
    "track_published", "track_unpublished", "egress_started", "egress_updated", "egress_ended",
    "ingress_started", "ingress_ended",
})  # fmt: skip


class WebhookRejected(Exception):
    pass


def _token(header: str | None) -> str:
    token = (header or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    return token


def token_issuer(authorization: str | None) -> str:
    """The API key a webhook token claims to be signed with (its ``iss``), read before the signature is checked
    so the right secret can be found. Raises WebhookRejected for a missing or undecodable token."""
    token = _token(authorization)
    if not token:
        raise WebhookRejected("missing authorization")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise WebhookRejected("invalid webhook token") from exc
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise WebhookRejected("invalid webhook token")
    return issuer


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


class WebhookController(Controller):
    path = "/webhook"
    tags = ["webhook"]

    @post("", status_code=200, summary="LiveKit webhook (signed; each event id applied once)")
    async def receive(self, request: Request, runtime: Runtime) -> Response:
        body = await request.body()
        authorization = request.headers.get("authorization")
        nodes: LiveKitNodes = runtime.extras["livekit_nodes"]
        try:
            api_key = token_issuer(authorization)
            api_secret = await nodes.secret_for_key(api_key)
            verify(body, authorization, api_key, api_secret)
        except UnknownKey as exc:
            log.warning("webhook rejected", extra={"reason": "unknown API key"})
            WEBHOOKS.labels("unknown", "refused_signature").inc()
            raise fail("unknown webhook API key", 401) from exc
        except NodesUnavailable as exc:
            log.warning("webhook deferred: its node's secret is unknown for now")
            WEBHOOKS.labels("unknown", "deferred").inc()
            raise fail("webhook key cannot be checked now, retry later", 503) from exc
        except WebhookRejected as exc:
            log.warning("webhook rejected", extra={"reason": str(exc)})
            WEBHOOKS.labels("unknown", "refused_signature").inc()
            raise fail(str(exc), 401) from exc
        try:
            raw = body.decode("utf-8")
            event = Parse(raw, WebhookEvent(), ignore_unknown_fields=True)
        except (UnicodeDecodeError, ParseError) as exc:
            WEBHOOKS.labels("unknown", "invalid_body").inc()
            raise fail("invalid webhook body") from exc
        if not event.event:
            WEBHOOKS.labels("unknown", "invalid_body").inc()
            raise fail("invalid webhook body: no event")
        follow = await apply(runtime, event, raw)
        event_type = event.event if event.event in EVENT_TYPES else "other"
        if follow is None:
            log.info("webhook replay ignored", extra={"event_id": event.id})
            WEBHOOKS.labels(event_type, "duplicate").inc()
        else:
            WEBHOOKS.labels(event_type, "applied").inc()
            await follow_up(runtime, follow)
        return Response(b"", status_code=200, media_type="text/plain")

"""LiveKit's webhook sender, faked: JSON events shaped like LiveKit's WebhookEvent (camelCase protobuf JSON) and
the ``Authorization`` token LiveKit signs them with (HS256 with the API secret, issuer = API key, ``sha256`` =
base64 SHA-256 of the body, short expiry)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import httpx
import jwt

CONTENT_TYPE = "application/webhook+json"


def sign(
    body: bytes, api_key: str, api_secret: str, *, ttl: int = 300, sha256: str | None = None, **claims: Any
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": api_key,
        "nbf": now,
        "exp": now + ttl,
        "sha256": sha256 if sha256 is not None else base64.b64encode(hashlib.sha256(body).digest()).decode(),
        "video": {},
        **claims,
    }
    return jwt.encode(payload, api_secret, algorithm="HS256")


def event(name: str, *, room: str | None = None, event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"event": name, "id": event_id or f"EV_{uuid.uuid4().hex[:12]}"}
    body["createdAt"] = str(int(time.time()))
    if room is not None:
        body["room"] = {"sid": f"RM_{room[:8]}", "name": room, "emptyTimeout": 300, "creationTime": body["createdAt"]}
    body.update(fields)
    return body


def participant(identity: str, *, metadata: str = "", name: str = "") -> dict[str, Any]:
    return {
        "sid": f"PA_{uuid.uuid4().hex[:10]}",
        "identity": identity,
        "state": "ACTIVE",
        "metadata": metadata,
        "joinedAt": str(int(time.time())),
        "name": name or identity,
        "version": 2,
        "permission": {"canSubscribe": True, "canPublish": True, "canPublishData": True},
    }


def egress_info(egress_id: str, room: str, status: str = "EGRESS_ACTIVE") -> dict[str, Any]:
    return {
        "egressId": egress_id,
        "roomId": f"RM_{room[:8]}",
        "roomName": room,
        "status": status,
        "startedAt": str(time.time_ns()),
        "roomComposite": {
            "roomName": room,
            "layout": "grid",
            "fileOutputs": [{"filepath": f"livekit-record/{room}.mp4"}],
        },
    }


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


async def post(
    client: httpx.AsyncClient, body: dict[str, Any] | bytes, api_key: str, api_secret: str, **sign_options: Any
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else encode(body)
    token = sign(raw, api_key, api_secret, **sign_options)
    return await client.post("/webhook", content=raw, headers={"Authorization": token, "Content-Type": CONTENT_TYPE})

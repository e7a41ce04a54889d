"""Token rules of /auth/*, free of I/O."""

from __future__ import annotations

import secrets
import string
import time
from datetime import timedelta

import jwt

IDENTITY_ALPHABET = string.digits + string.ascii_lowercase + string.ascii_uppercase + "$"
AGENT_TOKEN_NAME = "Example"  # the name the original put in every agent console token


def random_identity(length: int = 10) -> str:
    return "".join(secrets.choice(IDENTITY_ALPHABET) for _ in range(length))


def agent_console_token(api_key: str, api_secret: str, ttl: timedelta, now: float | None = None) -> str:
    """The agent console's bearer token: a LiveKit access token whose only grant is ``roomJoin: false``
    (exactly the original's claims; livekit-api would add publish/subscribe grants by default)."""
    issued = int(now if now is not None else time.time())
    claims = {
        "name": AGENT_TOKEN_NAME,
        "video": {"roomJoin": False},
        "sub": random_identity(),
        "iss": api_key,
        "nbf": issued,
        "exp": issued + int(ttl.total_seconds()),
    }
    return jwt.encode(claims, api_secret, algorithm="HS256")

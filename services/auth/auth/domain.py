"""Token rules of /auth/*, free of I/O."""

from __future__ import annotations

import secrets
import string
from datetime import timedelta

from livekit import api

IDENTITY_ALPHABET = string.digits + string.ascii_lowercase + string.ascii_uppercase + "$"
AGENT_TOKEN_NAME = "Example"  # the name the original put in every agent console token


def random_identity(length: int = 10) -> str:
    return "".join(secrets.choice(IDENTITY_ALPHABET) for _ in range(length))


def agent_console_token(api_key: str, api_secret: str, ttl: timedelta) -> str:
    """The agent console's bearer token: a LiveKit token that may not join rooms."""
    return (
        api.AccessToken(api_key, api_secret)
        .with_identity(random_identity())
        .with_name(AGENT_TOKEN_NAME)
        .with_grants(api.VideoGrants(room_join=False))
        .with_ttl(ttl)
        .to_jwt()
    )

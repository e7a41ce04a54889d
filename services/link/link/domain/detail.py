"""GET /link/getdetail's one-hop answer as link computes it, free of I/O: the room's reply from its stored
detail, the participant token link signs itself with the shared LiveKit key (a known user's colour and name
reused), and whether a token conference signed used that key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from servicekit import tokens


@dataclass
class KnownUser:
    color: str | None
    user_name: str | None
    user_agent: str | None


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
    conference, color — a known user's colour and name reused, else a palette colour; a link without userName
    and no known user's name gets ``User-<n>``, as the original generated (asked with an identity or not)."""
    if identity and identity != "null" and known is not None:
        color = known.color or color
        if user_name is None:
            user_name = known.user_name
    if user_name is None:  # the link has no userName and no known user names one: the original generated one
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

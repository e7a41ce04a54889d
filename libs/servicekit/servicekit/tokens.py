"""LiveKit access tokens (HS256, ``iss`` = LIVEKIT_API_KEY) as the original's bearer tokens.

Verification answers like the original's ``middlewareVerifyToken`` (HTTP 200 with ``status: FAIL``), but it
rejects every failure (the original let expired and badly signed tokens through, then crashed).
"""

from __future__ import annotations

import base64
import hmac
import secrets
import string
import time
from typing import Any

import jwt
import msgspec

MISSING_TOKEN_BODY = {"status": "FAIL", "message": "Invalid token"}


class TokenRejected(Exception):
    """No valid credential: answered with ``body`` and ``status_code`` (HTTP 200 for the original's token
    failures, which its clients read from the body)."""

    def __init__(self, body: dict[str, Any], status_code: int = 200) -> None:
        super().__init__(str(body))
        self.body = body
        self.status_code = status_code


FORBIDDEN_BODY = {"status": "FAIL", "message": "Forbidden"}


def not_an_agent() -> TokenRejected:
    """A valid token bound to one room (a patient's or guest's) where only an agent token will do: 403."""
    return TokenRejected(FORBIDDEN_BODY, 403)


def is_agent_token(claims: dict[str, Any]) -> bool:
    """An agent token (the agent console's, ``GET /auth/create``): valid and not bound to a room (no
    ``video.room`` grant). Participant tokens of a room (``GET /link/getdetail`` mints them for anybody holding
    a link) are not."""
    video = claims.get("video")
    return not (isinstance(video, dict) and video.get("room"))


def _failure(name: str, message: str) -> TokenRejected:
    # Names and messages of the jsonwebtoken library the original used; frontends may show them.
    return TokenRejected({"status": "FAIL", "data": {"name": name, "message": message}})


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization`` header; like the original, a raw token without prefix works too."""
    if not header:
        return None
    token = header[7:] if header[:7].lower() == "bearer " else header
    return token.strip() or None


def verify_token(token: str | None, secret: str, leeway: float = 5.0) -> dict[str, Any]:
    """Claims of a valid token, else :class:`TokenRejected` carrying the original's failure body."""
    if not token:
        raise TokenRejected(MISSING_TOKEN_BODY)
    try:
        return jwt.decode(
            token, secret, algorithms=["HS256"], leeway=leeway, options={"verify_aud": False, "require": ["exp"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise _failure("TokenExpiredError", "jwt expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise _failure("NotBeforeError", "jwt not active") from exc
    except jwt.InvalidSignatureError as exc:
        raise _failure("JsonWebTokenError", "invalid signature") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise _failure("JsonWebTokenError", "jwt must expire") from exc
    except jwt.InvalidTokenError as exc:
        raise _failure("JsonWebTokenError", "jwt malformed") from exc


# ---- minting participant tokens ----------------------------------------------------------------------------
PARTICIPANT_TOKEN_TTL_SECONDS = 6 * 3600  # the LiveKit SDK default the original relied on
IDENTITY_ALPHABET = string.digits + string.ascii_lowercase + string.ascii_uppercase + "$"


def participant_token(
    api_key: str,
    api_secret: str,
    *,
    identity: str,
    user_name: str | None,
    metadata: str,
    room: str,
    room_join: bool,
    ttl_seconds: int = PARTICIPANT_TOKEN_TTL_SECONDS,
    now: int | None = None,
) -> str:
    """A LiveKit participant access token with exactly the claims the original's SDK wrote for it: ``name``
    and ``metadata`` (left out when empty), ``video`` = {roomList, roomJoin, room, canPublish, canSubscribe,
    canPublishData}, ``sub``, ``iss`` = API key, ``nbf`` and ``exp`` = nbf + 6 h. HS256 (see :func:`sign_hs256`;
    livekit-api's builder costs several times more per token)."""
    if room_join and (not identity or not room):
        raise ValueError("identity and room must be set when joining a room")
    claims: dict[str, Any] = {}
    if user_name:
        claims["name"] = user_name
    if metadata:
        claims["metadata"] = metadata
    video: dict[str, Any] = {"roomList": True, "roomJoin": room_join}
    if room:
        video["room"] = room
    video["canPublish"] = True
    video["canSubscribe"] = True
    video["canPublishData"] = True
    claims["video"] = video
    issued = int(time.time()) if now is None else now
    claims["sub"] = identity
    claims["iss"] = api_key
    claims["nbf"] = issued
    claims["exp"] = issued + ttl_seconds
    return sign_hs256(claims, api_secret)


_encode_json = msgspec.json.Encoder()
_HS256_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def sign_hs256(claims: dict[str, Any], secret: str) -> str:
    """A compact HS256 JWT (RFC 7519) of ``claims``: the header pyjwt writes, compact JSON, HMAC-SHA256.

    Minting is on the page-load path (a token per GET /link/getdetail); this is a sixth of pyjwt.encode's cost,
    which validates its inputs and runs json.dumps twice. Verification stays with pyjwt (:func:`verify_token`)."""
    signing_input = _HS256_HEADER + b"." + _b64url(_encode_json.encode(claims))
    signature = hmac.digest(secret.encode(), signing_input, "sha256")
    return (signing_input + b"." + _b64url(signature)).decode("ascii")


def participant_metadata(
    *,
    user_name: str | None,
    user_type: str,
    color: str | None,
    link_type: str | None,
    mobile: str | None,
    link_id: str | None,
) -> str:
    """A participant's JSON metadata as the original's JSON.stringify wrote it (its key order, compact,
    missing values dropped)."""
    items = {
        "userName": user_name,
        "userType": user_type,
        "color": color,
        "linkType": link_type,
        "mobile": mobile,
        "linkID": link_id,
    }
    # msgspec writes what json.dumps(ensure_ascii=False, separators=(",", ":")) writes, several times faster.
    return _encode_json.encode({k: v for k, v in items.items() if v is not None}).decode()


def random_identity(length: int = 10) -> str:
    return "".join(secrets.choice(IDENTITY_ALPHABET) for _ in range(length))


def participant_identity(identity: str | None, user_type: str | None) -> str:
    """The given identity, or a new one when missing, empty or the string ``"null"`` (``viewer_`` for
    viewers)."""
    if not identity or identity == "null":
        new = random_identity()
        return f"viewer_{new}" if user_type == "viewer" else new
    return identity


def participant_user_name(user_name: str | None) -> str | None:
    """``""`` becomes ``Guest-<0..99>``; a missing name stays missing (the token then has no name)."""
    if user_name == "":
        return f"Guest-{secrets.randbelow(100)}"
    return user_name


def generated_user_name() -> str:
    return f"User-{secrets.randbelow(100)}"

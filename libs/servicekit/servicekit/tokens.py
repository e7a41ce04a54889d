"""LiveKit access tokens (HS256, ``iss`` = LIVEKIT_API_KEY) as the original's bearer tokens.

Verification answers like the original's ``middlewareVerifyToken`` (HTTP 200 with ``status: FAIL``), but it
rejects every failure (the original let expired and badly signed tokens through, then crashed).
"""

from __future__ import annotations

from typing import Any

import jwt

MISSING_TOKEN_BODY = {"status": "FAIL", "message": "Invalid token"}


class TokenRejected(Exception):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.body = body


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

"""Link passwords, free of I/O: argon2 hashes (the original's MD5 rows read and replaced), brute-force limits."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# ---- passwords -------------------------------------------------------------------------------------------
_hasher = PasswordHasher()
_MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def is_legacy_md5(stored: str | None) -> bool:
    return bool(stored and _MD5_HEX.match(stored))


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    rehash: bool = False  # store a fresh argon2 hash (legacy MD5 row, or argon2 parameters changed)


def check_password(stored: str | None, given: str) -> PasswordCheck:
    if not stored:
        return PasswordCheck(False)
    if is_legacy_md5(stored):
        digest = hashlib.md5(given.encode("utf-8")).hexdigest()  # noqa: S324 - reading the original's rows
        return PasswordCheck(hmac.compare_digest(digest, stored.lower()), rehash=True)
    try:
        _hasher.verify(stored, given)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return PasswordCheck(False)
    return PasswordCheck(True, rehash=_hasher.check_needs_rehash(stored))


# ---- password brute force ----------------------------------------------------------------------------------
# Every password check of a link reserves an attempt first (so parallel guesses count too); a success clears
# them. Past MAX_PASSWORD_ATTEMPTS in PASSWORD_WINDOW_SECONDS the link is locked until the window ends, even for
# the right password.
MAX_PASSWORD_ATTEMPTS = 5
PASSWORD_WINDOW_SECONDS = 15 * 60
LOCKED_MESSAGE = "too many failed attempts: link locked, try again later"


def password_attempts_key(link_id: str) -> str:
    return f"link:password-attempts:{link_id}"


def password_locked(attempts: int) -> bool:
    """``attempts`` counts this one: the first MAX_PASSWORD_ATTEMPTS of a window are checked, the rest refused."""
    return attempts > MAX_PASSWORD_ATTEMPTS

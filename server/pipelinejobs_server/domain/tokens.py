"""Job tokens and API keys: random secrets stored only as hashes and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

TOKEN_BYTES = 24  # 192 random bits, URL-safe: tokens travel in callback query strings
ID_DIGITS = 16  # a token's id: this many hex digits (64 bits) of its SHA-256
MIN_KEY_LENGTH = 22  # API keys: 22 base64url characters carry 132 bits, the least we accept (>= 128)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_secret(secret: str) -> str:
    # Tokens and keys carry >= 128 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def token_id(digest: str) -> str:
    """A token's id, from its stored digest: names it (to revoke it) without being usable as it.

    Derived, not stored: tokens issued before ids existed have one too, and anyone who holds a token
    can compute its id (``sha256(token)[:16]``). 64 bits keep the ids of one job's few dozen tokens apart.
    """
    return digest[:ID_DIGITS]


def is_token_id(value: str) -> bool:
    return len(value) == ID_DIGITS and all(c in "0123456789abcdef" for c in value)


class StoredToken(NamedTuple):
    digest: str
    expires_at: datetime

    @property
    def id(self) -> str:
        return token_id(self.digest)


class TokenCheck(NamedTuple):
    matched: StoredToken | None
    expired: bool


def check_token(presented: str, stored: Iterable[StoredToken], now: datetime) -> TokenCheck:
    """Find the stored token matching ``presented`` and say whether it has expired."""
    candidates = list(stored)
    found = matches_any(presented, [candidate.digest for candidate in candidates])
    matched = next((candidate for candidate in candidates if candidate.digest == found), None)
    return TokenCheck(matched, matched is not None and matched.expires_at <= now)


def matches_any(presented: str, digests: Iterable[str]) -> str | None:
    """The digest among ``digests`` that ``presented`` hashes to, compared in constant time."""
    digest = hash_secret(presented)
    found: str | None = None
    for candidate in digests:
        if hmac.compare_digest(candidate, digest) and found is None:
            found = candidate
    return found

"""Job tokens on the client side: the non-secret id that names a token without revealing it."""

from __future__ import annotations

import hashlib

ID_DIGITS = 16


def token_id(token: str) -> str:
    """The id of a job token, as ``CreateJob`` returns it (``token_id``) and ``RevokeTokens`` takes it.

    The first 16 hex digits of the token's SHA-256: what the service computes from the hash it stores,
    so the holder of any token, however old, can name it to an operator without handing it over.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:ID_DIGITS]

"""Callback bodies turned into an event's ``data``, and fingerprinted for idempotency keys.

Bodies are read under the shim's size limit (web/body.py); what the server accepts as ``data`` is
limited again, and usually tighter, by the server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from typing import Any

from google.protobuf import struct_pb2

from .failures import MalformedBody


def _no_constants(name: str) -> float:
    # NaN and Infinity are not JSON (Python accepts them by default); such a body is text, not JSON.
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: valid JSON syntax, but no JSON consumer can carry it
        raise ValueError(f"{text} is out of range")
    return value


_NOT_JSON = object()


def parse_json(raw: bytes) -> Any:
    """The body's JSON value, or ``_NOT_JSON``; a body nested past Python's recursion limit is refused."""
    try:
        return json.loads(raw, parse_constant=_no_constants, parse_float=_finite)
    except RecursionError:
        raise MalformedBody("the body is nested too deeply", field="body") from None
    except (ValueError, UnicodeDecodeError):
        return _NOT_JSON


# protobuf's decoder stops at 100 nested messages and each JSON level costs two (Struct, Value), so
# deeper data could be sent but never decoded by the server. The server's own limit is usually lower.
MAX_DEPTH = 48


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def checked(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` if a protobuf Struct can carry it, else a precise refusal (never a crash later)."""
    if _depth(data) > MAX_DEPTH:
        raise MalformedBody(f"the body is nested more than {MAX_DEPTH} levels deep", field="body")
    try:
        struct_pb2.Struct().update(data)
    except (ValueError, OverflowError, TypeError, UnicodeError, RecursionError):
        raise MalformedBody(
            "the body holds values event data cannot carry (an integer beyond 64-bit float range, "
            "or a lone UTF-16 surrogate)",
            field="body",
        ) from None
    return data


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    """A body that must be a JSON object (an event message, a Tapis notification)."""
    if not raw.strip():
        raise MalformedBody(f"the body is empty; {what} is a JSON object", field="body")
    value = parse_json(raw)
    if value is _NOT_JSON:
        raise MalformedBody(f"the body is not JSON; {what} is a JSON object", field="body")
    if not isinstance(value, dict):
        raise MalformedBody(f"the body is JSON but not an object; {what} is a JSON object", field="body")
    return checked(value)


def callback_data(raw: bytes, status: str) -> dict[str, Any]:
    """An executor callback's body as the event's data (docs/callbacks.md, "What becomes data").

    A JSON object (Agave's job JSON, which carries its own ``status``) is the data as it is. Anything
    else is wrapped, with the status, so the history still says which status the entry came from:
    empty -> ``{"status": S}``; other JSON -> ``{"status": S, "body": value}``; not JSON (or not
    UTF-8) -> ``{"status": S, "body": text}``, undecodable bytes replaced by U+FFFD.
    """
    if not raw.strip():
        return {"status": status}
    value = parse_json(raw)
    if isinstance(value, dict):
        return checked(value)
    if value is _NOT_JSON:
        value = raw.decode("utf-8", errors="replace")
    return checked({"status": status, "body": value})


# Shorter than any token the server issues (32 characters): masking it would mangle the data, and the
# server refuses such a token anyway, so nothing is stored.
MIN_MASKED = 16


def without(data: dict[str, Any], secret: str, mask: str) -> dict[str, Any]:
    """``data`` with every occurrence of ``secret`` in its strings (keys too) replaced by ``mask``.

    A callback body may quote the job's token: Agave's job JSON repeats the job's notification URL,
    ``…?token=…``. The body becomes history data, which every client key can read, so the shim, which
    knows the token, takes it out before relaying.
    """
    if len(secret) < MIN_MASKED:
        return data

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(secret, mask)
        if isinstance(value, dict):
            return {clean(key): clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    cleaned: dict[str, Any] = clean(data)
    return cleaned


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def callback_key(secret: bytes, endpoint: str, job_uuid: str, status: str, raw: bytes) -> str:
    """The idempotency key of one callback: the same delivery, retried, carries the same key.

    Derived from what the executor sent (endpoint, job, status, exact body bytes), never from the token
    or the nonce, so a retry after a token refresh still replays. An HMAC with the shim's secret
    (settings.py), not a plain hash: anyone may read the inputs, and a token holder who could compute
    the key of a callback still to come could claim it first with another event, and the executor's
    real callback would then be refused for good. Every replica holds the same secret, so a retry that
    reaches another replica still replays. Readable prefix for operators; at most 199 printable
    characters (the server allows 200).
    """
    fingerprint = b"\0".join([endpoint.encode(), job_uuid.encode(), status.encode(), digest(raw).encode()])
    return f"{endpoint}:{status}:{hmac.new(secret, fingerprint, hashlib.sha256).hexdigest()}"

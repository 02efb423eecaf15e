"""Opaque keyset page tokens: base64url of a small JSON document, bound to the listing they came from."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from pipelinejobs_server.domain.canonical import canonical_json
from pipelinejobs_server.domain.errors import InvalidArgument
from pipelinejobs_server.settings import Limits

MAX_TOKEN_LENGTH = 1024  # our tokens are a few dozen bytes; anything longer is not one of ours


def encode(listing: str, position: dict[str, Any]) -> str:
    raw = canonical_json({"l": listing, "p": position}).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode(listing: str, token: str) -> dict[str, Any] | None:
    """The position in ``token``; None for the first page. Tokens of another listing are refused."""
    if not token:
        return None
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidArgument("page_token is not a token this service issued", field="page_token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidArgument("page_token is not a token this service issued", field="page_token") from None
    if (
        not isinstance(document, dict)
        or document.get("l") != listing
        or not isinstance(document.get("p"), dict)
    ):
        raise InvalidArgument("page_token belongs to another listing", field="page_token")
    position: dict[str, Any] = document["p"]
    return position


def page_size(requested: int, limits: Limits) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative", field="page_size")
    return min(requested or limits.default_page_size, limits.max_page_size)


def encode_moment(listing: str, moment: datetime, uuid: str) -> str:
    return encode(listing, {"t": moment.isoformat(), "id": uuid})


def decode_moment(listing: str, token: str) -> tuple[datetime, str] | None:
    """A keyset position of (timestamp, uuid); None for the first page."""
    position = decode(listing, token)
    if position is None:
        return None
    try:
        return datetime.fromisoformat(position["t"]), str(position["id"])
    except (KeyError, TypeError, ValueError):
        raise InvalidArgument("page_token is malformed", field="page_token") from None

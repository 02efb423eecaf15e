"""Checks on request fields that do not need the database. Each failure names the field."""

from __future__ import annotations

import re
from collections.abc import Sized
from typing import Any

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.canonical import canonical_json, depth
from pipelinejobs_server.domain.errors import DataTooLarge, InvalidArgument, UnknownEvent
from pipelinejobs_server.domain.identity import checked_uuid
from pipelinejobs_server.domain.records import DROPPED_REASON

# Used with fullmatch: "$" alone would also accept a trailing newline.
_SESSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PRINTABLE = re.compile(r"[\x21-\x7e]{1,200}")
_REASON = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
MAX_TEXT = 1024
# Values per link kind, at creation as in a ListJobs filter: every link is a key of a multikey index.
MAX_LINK_VALUES = 100


uuid_field = checked_uuid


def event_name(value: str) -> str:
    if not fsm.is_event(value):
        raise UnknownEvent(
            f"unknown event {value[:64]!r}; known events: {', '.join(fsm.EVENTS)}", field="event"
        )
    return value


def json_object(value: dict[str, Any], name: str, *, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """Check size and nesting of a JSON object; the size is that of its canonical encoding."""
    nesting = depth(value)
    if nesting > max_depth:
        raise InvalidArgument(f"{name} is nested {nesting} levels deep; the limit is {max_depth}", field=name)
    try:
        size = len(canonical_json(value).encode("utf-8"))
    except (TypeError, ValueError) as error:
        raise InvalidArgument(f"{name} is not a JSON object: {error}", field=name) from None
    if size > max_bytes:
        raise DataTooLarge(
            f"{name} is {size} bytes; the limit is {max_bytes}", field=name, limit=str(max_bytes)
        )
    return value


def link_count(values: Sized, kind: str) -> None:
    if len(values) > MAX_LINK_VALUES:
        raise InvalidArgument(f"at most {MAX_LINK_VALUES} values per link kind", field=f"links.{kind}")


def session_name(value: str) -> str:
    if value and not _SESSION.fullmatch(value):
        raise InvalidArgument(
            "session must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            field="session",
        )
    return value


def idempotency_key(value: str) -> str:
    if value and not _PRINTABLE.fullmatch(value):
        raise InvalidArgument(
            "idempotency_key must be 1-200 printable ASCII characters without spaces", field="idempotency_key"
        )
    return value


def reason_code(value: str) -> str:
    if not _REASON.fullmatch(value):
        raise InvalidArgument("reason must be 1-64 upper-case letters, digits or '_'", field="reason")
    if value == DROPPED_REASON:
        # Else a token holder could plant a row that reads as the log's own count of dropped rejections.
        raise InvalidArgument(
            f"reason {DROPPED_REASON} is reserved for the rejected-events log", field="reason"
        )
    return value


def text(value: str, name: str, *, required: bool = False, max_length: int = MAX_TEXT) -> str:
    if required and not value.strip():
        raise InvalidArgument(f"{name} is required", field=name)
    if len(value) > max_length:
        raise InvalidArgument(f"{name} is longer than {max_length} characters", field=name)
    return value

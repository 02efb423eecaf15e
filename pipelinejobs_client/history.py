"""A job's history in the seed's JSON shape: ``[{"RUN": {"date": "…", "data": {…}}}, …]``.

``date`` is the entry's UTC time in ISO 8601 with milliseconds and a ``Z`` (the form docs/history.md
hashes). ``data`` is ``None`` for an event sent without a payload, as the seed prints it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import timestamp_pb2

from pipelinejobs_client.api.v1 import job_pb2

from .names import event_name
from .payload import to_dict

SeedEntry = dict[str, dict[str, Any]]

_MAX_EXACT = 2**53


def plain(value: Any) -> Any:
    """JSON from a ``Struct`` with integral numbers as ``int`` again.

    ``Struct`` carries every number as a double, so ``{"n": 1}`` comes back as ``{"n": 1.0}``; the
    service's canonical JSON treats the two as equal, and users expect what they sent.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_EXACT:
        return int(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def plain_object(value: dict[str, Any]) -> dict[str, Any]:
    """``plain`` for a JSON object."""
    return {key: plain(item) for key, item in value.items()}


def seed_date(moment: timestamp_pb2.Timestamp) -> str:
    """``2018-09-18T01:50:15.284Z``: UTC, milliseconds truncated."""
    when = moment.ToDatetime()  # naive UTC
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def seed_entry(event: job_pb2.HistoryEvent) -> SeedEntry:
    """One history entry as ``{"UPDATE": {"date": …, "data": …}}``."""
    data = plain_object(to_dict(event.data))
    name = event_name(event.name).upper()
    return {name: {"date": seed_date(event.timestamp), "data": data or None}}


def seed_history(events: Iterable[job_pb2.HistoryEvent]) -> list[SeedEntry]:
    """A whole history in the seed's shape; wrap it as ``{"history": …}`` for the seed's document."""
    return [seed_entry(event) for event in events]

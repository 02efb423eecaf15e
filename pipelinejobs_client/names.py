"""Enum values and their short names: states ``RUNNING``, events ``run``, sources ``grpc``.

The proto enums carry a prefix (``JOB_STATE_``, ``JOB_EVENT_``, ``EVENT_SOURCE_``), as buf's STANDARD
lint wants; everything people read or type uses the name without it. The client, its CLI and views, the
dashboard and the server's API layer all convert here, so each prefix is written once.
"""

from __future__ import annotations

from typing import Final

from pipelinejobs_client.api.v1 import job_pb2

from .errors import UnknownEvent

EventLike = str | int

_STATE: Final = "JOB_STATE_"
_EVENT: Final = "JOB_EVENT_"
_SOURCE: Final = "EVENT_SOURCE_"


def event_name(value: int) -> str:
    """The seed's lower-case name of an event enum value (``"run"``)."""
    return job_pb2.JobEvent.Name(job_pb2.JobEvent.ValueType(value)).removeprefix(_EVENT).lower()


def state_name(value: int) -> str:
    """The upper-case name of a state enum value (``"RUNNING"``); ``""`` when unspecified."""
    if value == job_pb2.JOB_STATE_UNSPECIFIED:
        return ""
    return job_pb2.JobState.Name(job_pb2.JobState.ValueType(value)).removeprefix(_STATE)


def source_name(value: int) -> str:
    """The lower-case name of an event source enum value (``"grpc"``, ``"callback"``, ``"admin"``)."""
    return job_pb2.EventSource.Name(job_pb2.EventSource.ValueType(value)).removeprefix(_SOURCE).lower()


def event_value(event: EventLike) -> job_pb2.JobEvent.ValueType:
    """An event enum from ``"run"``, ``"RUN"``, ``"JOB_EVENT_RUN"`` or the enum value itself.

    Raises ``UnknownEvent`` for a name that is no event, before anything is sent.
    """
    if isinstance(event, int):
        return job_pb2.JobEvent.ValueType(event)
    name = event.strip().upper()
    if not name.startswith(_EVENT):
        name = _EVENT + name
    try:
        return job_pb2.JobEvent.Value(name)
    except ValueError:
        raise UnknownEvent(
            f"unknown event {event!r}", reason="UNKNOWN_EVENT", metadata={"event": str(event)}
        ) from None


def state_value(state: str | int) -> job_pb2.JobState.ValueType:
    """A state enum from ``"RUNNING"``, ``"running"``, ``"JOB_STATE_RUNNING"`` or the value itself.

    Raises ``ValueError`` for a name that is no state.
    """
    if isinstance(state, int):
        return job_pb2.JobState.ValueType(state)
    name = state.strip().upper()
    return job_pb2.JobState.Value(name if name.startswith(_STATE) else _STATE + name)


def source_value(source: str | int | None) -> job_pb2.EventSource.ValueType:
    """A source enum from ``"grpc"``, ``"GRPC"`` or the value itself; unspecified for ``None`` or ``""``.

    Raises ``ValueError`` for a name that is no source.
    """
    if source is None or source == "":
        return job_pb2.EVENT_SOURCE_UNSPECIFIED
    if isinstance(source, int):
        return job_pb2.EventSource.ValueType(source)
    return job_pb2.EventSource.Value(_SOURCE + source.upper())

"""Building requests from plain Python values, and reading names back out of messages.

Shared by the blocking and the asyncio client so both accept exactly the same arguments.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.protobuf import json_format, struct_pb2

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2, pipeline_pb2, pipeline_service_pb2

from .errors import UnknownEvent

EventLike = str | int
Component = str | tuple[str, str]


def struct(data: Mapping[str, Any] | None) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    if data:
        message.update(dict(data))
    return message


def to_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    value = json_format.MessageToDict(message)
    return value if isinstance(value, dict) else {}


def event_value(event: EventLike) -> job_pb2.JobEvent.ValueType:
    """An event enum from ``"run"``, ``"RUN"``, ``"JOB_EVENT_RUN"`` or the enum value itself."""
    if isinstance(event, int):
        return job_pb2.JobEvent.ValueType(event)
    name = event.strip().upper()
    if not name.startswith("JOB_EVENT_"):
        name = "JOB_EVENT_" + name
    try:
        return job_pb2.JobEvent.Value(name)
    except ValueError:
        raise UnknownEvent(
            f"unknown event {event!r}", reason="UNKNOWN_EVENT", metadata={"event": str(event)}
        ) from None


def event_name(value: int) -> str:
    """The seed's lower-case name of an event enum value (``"run"``)."""
    return job_pb2.JobEvent.Name(job_pb2.JobEvent.ValueType(value)).removeprefix("JOB_EVENT_").lower()


def state_name(value: int) -> str:
    """The upper-case name of a state enum value (``"RUNNING"``); ``""`` when unspecified."""
    if value == job_pb2.JOB_STATE_UNSPECIFIED:
        return ""
    return job_pb2.JobState.Name(job_pb2.JobState.ValueType(value)).removeprefix("JOB_STATE_")


def source_value(source: str | int | None) -> job_pb2.EventSource.ValueType:
    if source is None or source == "":
        return job_pb2.EVENT_SOURCE_UNSPECIFIED
    if isinstance(source, int):
        return job_pb2.EventSource.ValueType(source)
    return job_pb2.EventSource.Value("EVENT_SOURCE_" + source.upper())


def _links(values: str | Iterable[str]) -> list[str]:
    return [values] if isinstance(values, str) else list(values)


def _component(component: Component) -> pipeline_pb2.PipelineComponent:
    if isinstance(component, tuple):
        identifier, version = component
    else:
        identifier, _, version = component.partition("@")
    return pipeline_pb2.PipelineComponent(id=identifier, version=version)


def register_pipeline(
    name: str, components: Sequence[Component], options: Mapping[str, Any] | None, description: str
) -> pipeline_service_pb2.RegisterPipelineRequest:
    return pipeline_service_pb2.RegisterPipelineRequest(
        name=name,
        description=description,
        components=[_component(component) for component in components],
        options=struct(options),
    )


def create_job(
    pipeline_uuid: str,
    *,
    lab: str | Iterable[str],
    experiment: str | Iterable[str],
    sample: str | Iterable[str],
    data: Mapping[str, Any] | None,
    session: str,
    agent: str,
    task: str,
) -> job_service_pb2.CreateJobRequest:
    return job_service_pb2.CreateJobRequest(
        pipeline_uuid=pipeline_uuid,
        links=job_pb2.JobLinks(lab=_links(lab), experiment=_links(experiment), sample=_links(sample)),
        data=struct(data),
        session=session,
        agent=agent,
        task=task,
    )


def send_event(
    job_uuid: str,
    event: EventLike,
    *,
    token: str,
    data: Mapping[str, Any] | None,
    idempotency_key: str | None,
    source: str | int | None,
) -> job_service_pb2.SendEventRequest:
    # Every event carries a key, so retrying after a lost reply can never apply it twice.
    return job_service_pb2.SendEventRequest(
        uuid=job_uuid,
        event=event_value(event),
        data=struct(data),
        token=token,
        idempotency_key=idempotency_key or uuid.uuid4().hex,
        source=source_value(source),
    )


def reject_event(
    job_uuid: str,
    event: str,
    *,
    reason: str,
    message: str,
    token: str,
    data: Mapping[str, Any] | None,
    source: str | int | None,
) -> job_service_pb2.RejectEventRequest:
    return job_service_pb2.RejectEventRequest(
        uuid=job_uuid,
        event=event,
        reason=reason,
        message=message,
        token=token,
        data=struct(data),
        source=source_value(source),
    )

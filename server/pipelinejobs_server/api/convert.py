"""Between protobuf messages and domain records. Enum names map to the FSM's names here, only here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from pipelinejobs_client import names
from pipelinejobs_client.api.v1 import job_pb2, pipeline_pb2
from pipelinejobs_server.domain.errors import InvalidArgument, UnknownEvent
from pipelinejobs_server.domain.records import JobRecord, PipelineRecord, RecordedEntry, RejectedEvent


def struct_to_dict(message: struct_pb2.Struct, field: str) -> dict[str, Any]:
    try:
        value = json_format.MessageToDict(message)
    except (ValueError, TypeError) as error:  # e.g. a NaN number_value, which JSON cannot carry
        raise InvalidArgument(f"{field} is not valid JSON: {error}", field=field) from None
    return value if isinstance(value, dict) else {}


def dict_to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment)
    return message


def state_to_proto(state: str) -> job_pb2.JobState.ValueType:
    return names.state_value(state) if state else job_pb2.JOB_STATE_UNSPECIFIED


def state_from_proto(value: int, field: str = "state") -> str:
    """The FSM's name for a state enum ("" for unspecified, mirroring state_to_proto).

    ``field`` is the request field the value came from, named in the error as every other check does.
    """
    if value == job_pb2.JOB_STATE_UNSPECIFIED:
        return ""
    if value not in job_pb2.JobState.values():
        raise InvalidArgument(f"{field}: {value} is not one of the JobState values", field=field)
    return names.state_name(value)


def event_to_proto(event: str) -> job_pb2.JobEvent.ValueType:
    return names.event_value(event) if event else job_pb2.JOB_EVENT_UNSPECIFIED


def event_from_proto(value: int) -> str:
    """The FSM's lower-case name for an event enum; unknown or unspecified values are refused."""
    if value == job_pb2.JOB_EVENT_UNSPECIFIED or value not in job_pb2.JobEvent.values():
        raise UnknownEvent(f"event must be one of the JobEvent values, got {value}", field="event")
    return names.event_name(value)


def source_to_proto(source: str) -> job_pb2.EventSource.ValueType:
    return names.source_value(source)


def source_from_proto(value: int) -> str:
    """The source's name; "" when unspecified, so the service can choose (grpc, or admin for admin keys)."""
    if value == job_pb2.EVENT_SOURCE_UNSPECIFIED:
        return ""
    if value not in job_pb2.EventSource.values():
        raise InvalidArgument(f"source must be one of the EventSource values, got {value}", field="source")
    return names.source_name(value)


def pipeline_to_proto(record: PipelineRecord) -> pipeline_pb2.Pipeline:
    return pipeline_pb2.Pipeline(
        uuid=record.uuid,
        name=record.name,
        description=record.description,
        components=[
            pipeline_pb2.PipelineComponent(id=cid, version=version) for cid, version in record.components
        ],
        options=dict_to_struct(record.options),
        create_time=timestamp(record.created_at),
    )


def job_to_proto(record: JobRecord) -> job_pb2.Job:
    return job_pb2.Job(
        uuid=record.uuid,
        pipeline_uuid=record.pipeline_uuid,
        state=state_to_proto(record.state),
        seq=record.seq,
        links=job_pb2.JobLinks(
            lab=record.links.get("lab", []),
            experiment=record.links.get("experiment", []),
            sample=record.links.get("sample", []),
        ),
        data=dict_to_struct(record.data),
        archive_path=record.archive_path,
        session=record.session,
        agent=record.agent,
        task=record.task,
        last_event=event_to_proto(record.last_event),
        head_hash=record.head_hash,
        create_time=timestamp(record.created_at),
        update_time=timestamp(record.updated_at),
    )


def history_to_proto(recorded: RecordedEntry) -> job_pb2.HistoryEvent:
    entry = recorded.entry
    return job_pb2.HistoryEvent(
        seq=entry.seq,
        uuid=entry.uuid,
        job_uuid=entry.job_uuid,
        name=event_to_proto(entry.name),
        from_state=state_to_proto(entry.from_state),
        to_state=state_to_proto(entry.to_state),
        timestamp=timestamp(entry.timestamp),
        data=dict_to_struct(entry.data),
        source=source_to_proto(entry.source),
        idempotency_key=entry.idempotency_key,
        prev_hash=entry.prev_hash,
        hash=recorded.hash,
    )


def rejected_to_proto(record: RejectedEvent) -> job_pb2.RejectedEvent:
    return job_pb2.RejectedEvent(
        uuid=record.uuid,
        job_uuid=record.job_uuid,
        event=record.event,
        state=state_to_proto(record.state),
        reason=record.reason,
        message=record.message,
        data=dict_to_struct(record.data),
        source=source_to_proto(record.source),
        timestamp=timestamp(record.timestamp),
    )

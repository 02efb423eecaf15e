"""Messages as plain JSON values: the shapes ``--json`` prints and the tables are drawn from.

Keys are the proto field names; enums are their short names (states ``RUNNING``, events ``run``, sources
``grpc``), times are ISO 8601 in UTC with milliseconds and a ``Z``. These shapes are the client's JSON
contract: the CLI prints them for scripts (docs/cli.md) and the dashboard renders them, so they are spelled
out here rather than left to ``MessageToDict``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from pipelinejobs_client.api.v1 import feed_pb2, job_pb2, job_service_pb2, pipeline_pb2
from pipelinejobs_client.history import plain_object, seed_date, seed_history
from pipelinejobs_client.names import event_name, source_name, state_name
from pipelinejobs_client.payload import to_dict


def iso(moment: timestamp_pb2.Timestamp) -> str:
    """``2018-09-18T01:50:15.284Z``: the form the history's hash covers (docs/history.md)."""
    return seed_date(moment)


def data(message: struct_pb2.Struct) -> dict[str, Any]:
    """A ``Struct`` as a dict, integral numbers as integers again (``Struct`` holds only doubles)."""
    return plain_object(to_dict(message))


def _event(value: int) -> str:
    return event_name(value) if value else ""


def _state(value: int) -> str | None:
    return state_name(value) or None


def pipeline(message: pipeline_pb2.Pipeline) -> dict[str, Any]:
    """A pipeline: uuid, name, description, components, options, create_time."""
    return {
        "uuid": message.uuid,
        "name": message.name,
        "description": message.description,
        "components": [{"id": part.id, "version": part.version} for part in message.components],
        "options": data(message.options),
        "create_time": iso(message.create_time) if message.HasField("create_time") else None,
    }


def component_label(part: dict[str, str]) -> str:
    """``id@version``, or ``id`` alone when the id pins the version itself."""
    return f"{part['id']}@{part['version']}" if part["version"] else part["id"]


def job(message: job_pb2.Job) -> dict[str, Any]:
    """A job: identity, state and seq, links, data, archive path and times; never a token."""
    return {
        "uuid": message.uuid,
        "pipeline_uuid": message.pipeline_uuid,
        "state": _state(message.state),
        "seq": message.seq,
        "last_event": _event(message.last_event),
        "links": {
            "lab": list(message.links.lab),
            "experiment": list(message.links.experiment),
            "sample": list(message.links.sample),
        },
        "data": data(message.data),
        "archive_path": message.archive_path,
        "session": message.session,
        "agent": message.agent,
        "task": message.task,
        "head_hash": message.head_hash,
        "create_time": iso(message.create_time) if message.HasField("create_time") else None,
        "update_time": iso(message.update_time) if message.HasField("update_time") else None,
    }


def created_job(reply: job_service_pb2.CreateJobResponse) -> dict[str, Any]:
    """The one view that holds the job token: the service shows it only in this reply.

    ``token_withheld``: the job was created with another API key, so no token came (``token`` "",
    ``token_id``, ``token_expire_time`` and ``callback_url`` empty).
    """
    expires = reply.token_expire_time
    return {
        "created": reply.created,
        "job": job(reply.job),
        "token": reply.token,
        "token_id": reply.token_id,
        "token_withheld": reply.token_withheld,
        "token_expire_time": iso(expires) if reply.HasField("token_expire_time") else None,
        "callback_url": reply.callback_url,
    }


def history_event(message: job_pb2.HistoryEvent) -> dict[str, Any]:
    """One history entry with its hash-chain fields."""
    return {
        "seq": message.seq,
        "uuid": message.uuid,
        "job_uuid": message.job_uuid,
        "event": _event(message.name),
        "from_state": _state(message.from_state),
        "to_state": _state(message.to_state),
        "timestamp": iso(message.timestamp),
        "data": data(message.data),
        "source": source_name(message.source),
        "idempotency_key": message.idempotency_key,
        "prev_hash": message.prev_hash,
        "hash": message.hash,
    }


def seed(events: Iterable[job_pb2.HistoryEvent]) -> dict[str, Any]:
    """The seed's export document, ``{"history": [{"RUN": {"date": ..., "data": ...}}, ...]}``.

    The entries come from the client library, so the CLI and ``PipelineJob.history`` never differ.
    """
    return {"history": seed_history(events)}


def rejected_event(message: job_pb2.RejectedEvent) -> dict[str, Any]:
    """One event the service received for a job but did not apply, with the reason."""
    return {
        "uuid": message.uuid,
        "job_uuid": message.job_uuid,
        "event": message.event,
        "state": _state(message.state),
        "reason": message.reason,
        "message": message.message,
        "data": data(message.data),
        "source": source_name(message.source),
        "timestamp": iso(message.timestamp),
    }


def verdict(uuid: str, reply: job_service_pb2.VerifyHistoryResponse) -> dict[str, Any]:
    """``VerifyHistory``'s answer, with the job it is about."""
    return {
        "uuid": uuid,
        "valid": reply.valid,
        "checked": reply.checked,
        "first_bad_seq": reply.first_bad_seq,
        "reason": reply.reason,
    }


def feed_entry(message: feed_pb2.FeedEntry) -> dict[str, Any]:
    """One entry of the event feed (docs/events.md), with its cursor."""
    cancelled = message.kind == feed_pb2.FEED_ENTRY_KIND_CANCELLED
    return {
        "cursor": message.cursor,
        "kind": "cancelled" if cancelled else "event",
        "job_uuid": message.job_uuid,
        "pipeline_uuid": message.pipeline_uuid,
        "links": {
            "lab": list(message.links.lab),
            "experiment": list(message.links.experiment),
            "sample": list(message.links.sample),
        },
        "seq": message.seq,
        "event": "cancelled" if cancelled else _event(message.event),
        "from_state": _state(message.from_state),
        "to_state": _state(message.to_state),
        "timestamp": iso(message.timestamp),
        "data": data(message.data),
        "source": source_name(message.source) if message.source else None,
        "hash": message.hash,
        "uuid": message.uuid,
        "feed_time": iso(message.feed_time),
    }

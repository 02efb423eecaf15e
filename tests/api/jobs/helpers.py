"""What the JobService tests share: the error they expect, what must not move when a request is refused,
the reads they check with, and a second server with other settings. The ``pipeline`` fixture is in
conftest.py; ``db`` (the server's database, for changes made behind its back) in tests/conftest.py."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import grpc
import pytest

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from tests.servers import ServerThread, test_settings
from tests.support import CLIENT, Stubs, create_job, error_info, history, send, state_name, stubs

Document = dict[str, Any]
Metadata = tuple[tuple[str, str], ...]

UNKNOWN_JOB = "0badc0de-0000-5000-8000-00000000abcd"


@contextmanager
def other_server(uri: str, database: str, **changes: Any) -> Iterator[Stubs]:
    """A second server with changed settings, and stubs talking to it."""
    thread = ServerThread(test_settings(uri, database, **changes)).start()
    try:
        with stubs(thread.address) as s:
            yield s
    finally:
        thread.stop()


def refused(call: Callable[[], object], code: grpc.StatusCode, reason: str) -> dict[str, str]:
    """Run ``call``, expect it to fail with ``code`` and ErrorInfo ``reason``; return the metadata."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    assert error.code() == code, f"{error.code()}: {error.details()}"
    info = error_info(error)
    assert info.reason == reason, f"{info.reason}: {error.details()}"
    assert info.domain == "pipelinejobs.v1"
    return dict(info.metadata)


def get_job(api: Stubs, job_uuid: str) -> job_pb2.Job:
    reply = api.jobs.GetJob(job_service_pb2.GetJobRequest(uuid=job_uuid), metadata=CLIENT)
    job: job_pb2.Job = reply.job
    return job


def snapshot(api: Stubs, job_uuid: str) -> tuple[int, str, list[str]]:
    """What must not move when a request is refused: seq, state and the history's entry uuids."""
    job = get_job(api, job_uuid)
    return job.seq, state_name(job.state), [event.uuid for event in history(api, job_uuid)]


def event_label(value: int) -> str:
    return job_pb2.JobEvent.Name(job_pb2.JobEvent.ValueType(value)).removeprefix("JOB_EVENT_").lower()


def rejected(api: Stubs, job_uuid: str, metadata: Metadata = CLIENT) -> list[job_pb2.RejectedEvent]:
    reply = api.jobs.ListRejectedEvents(
        job_service_pb2.ListRejectedEventsRequest(job_uuid=job_uuid), metadata=metadata
    )
    return list(reply.events)


def verify(api: Stubs, job_uuid: str) -> job_service_pb2.VerifyHistoryResponse:
    reply: job_service_pb2.VerifyHistoryResponse = api.jobs.VerifyHistory(
        job_service_pb2.VerifyHistoryRequest(uuid=job_uuid), metadata=CLIENT
    )
    return reply


def nested(levels: int) -> dict[str, Any]:
    """A JSON object nested ``levels`` deep ({} is one level)."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def when(value: Any) -> datetime:
    assert isinstance(value, datetime)
    return value


def events_job(api: Stubs, pipeline: str) -> tuple[str, str]:
    """A job with five history entries; returns (uuid, token)."""
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    send(api, uuid, "run", token=job.token, data={"key1": "value1"})
    send(api, uuid, "update", token=job.token, data={"roadrunner": "meep-meep!"})
    send(api, uuid, "update", token=job.token, data={"n": 2})
    send(api, uuid, "finish", token=job.token)
    return uuid, job.token

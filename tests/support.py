"""Test helpers: the test keys, gRPC stubs, calls that set up jobs and read them back, error details,
and waiting for a condition. The servers themselves are in servers.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from pipelinejobs_client.api.v1 import (
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    pipeline_pb2,
    pipeline_service_pb2,
    pipeline_service_pb2_grpc,
)
from pipelinejobs_server.domain.history import utc_now_ms

# The repository: docs, README and deployment files are read from it.
ROOT = Path(__file__).resolve().parent.parent

ADMIN_KEY = "test-admin-key-0123456789abcdef"
CLIENT_KEY = "test-client-key-0123456789abcdef"
CALLBACK_KEY_SECRET = "test-callback-key-secret-0123456789abcdef"


@dataclass
class Stubs:
    channel: grpc.Channel
    jobs: job_service_pb2_grpc.JobServiceStub
    pipelines: pipeline_service_pb2_grpc.PipelineServiceStub


@contextmanager
def stubs(address: str) -> Iterator[Stubs]:
    with grpc.insecure_channel(address) as channel:
        yield Stubs(
            channel,
            job_service_pb2_grpc.JobServiceStub(channel),
            pipeline_service_pb2_grpc.PipelineServiceStub(channel),
        )


def auth(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


CLIENT = auth(CLIENT_KEY)
ADMIN = auth(ADMIN_KEY)


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    """The google.rpc.ErrorInfo a server error carries."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"no rich status on {error}"
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError(f"no ErrorInfo in {status}")


def register_pipeline(s: Stubs, name: str = "fcs-etl", version: str = "0.4.0") -> str:
    reply = s.pipelines.RegisterPipeline(
        pipeline_service_pb2.RegisterPipelineRequest(
            name=name, components=[pipeline_pb2.PipelineComponent(id=name, version=version)]
        ),
        metadata=CLIENT,
    )
    return reply.pipeline.uuid


def create_job(
    s: Stubs, pipeline: str, data: dict[str, Any] | None = None, **links: list[str]
) -> job_service_pb2.CreateJobResponse:
    request = job_service_pb2.CreateJobRequest(
        pipeline_uuid=pipeline,
        links=job_pb2.JobLinks(
            lab=links.get("lab", ["UW_BIOFAB"]),
            experiment=links.get("experiment", ["Yeast-Gates"]),
            sample=links.get("sample", ["sample.uw_biofab.133737/A2"]),
        ),
    )
    if data:
        request.data.update(data)
    reply: job_service_pb2.CreateJobResponse = s.jobs.CreateJob(request, metadata=CLIENT)
    return reply


def event_enum(name: str) -> job_pb2.JobEvent.ValueType:
    return job_pb2.JobEvent.Value("JOB_EVENT_" + name.upper())


def state_name(value: int) -> str:
    return job_pb2.JobState.Name(job_pb2.JobState.ValueType(value)).removeprefix("JOB_STATE_")


def send(
    s: Stubs,
    job_uuid: str,
    event: str,
    *,
    token: str = "",
    data: dict[str, Any] | None = None,
    key: str = "",
    metadata: tuple[tuple[str, str], ...] = (),
    timeout: float = 30,
) -> job_service_pb2.SendEventResponse:
    request = job_service_pb2.SendEventRequest(
        uuid=job_uuid, event=event_enum(event), token=token, idempotency_key=key
    )
    if data:
        request.data.update(data)
    reply: job_service_pb2.SendEventResponse = s.jobs.SendEvent(request, metadata=metadata, timeout=timeout)
    return reply


def history(s: Stubs, job_uuid: str) -> list[job_pb2.HistoryEvent]:
    events: list[job_pb2.HistoryEvent] = []
    token = ""
    while True:
        reply = s.jobs.ListJobEvents(
            job_service_pb2.ListJobEventsRequest(uuid=job_uuid, page_size=1000, page_token=token),
            metadata=CLIENT,
        )
        events.extend(reply.events)
        token = reply.next_page_token
        if not token:
            return events


def eventually(condition: Callable[[], bool], timeout_s: float = 30, what: str = "the condition") -> None:
    """Wait until ``condition()`` holds; fail the test if it does not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class MovableClock:
    """A ``Clock`` for the server that tests move forward instead of waiting (domain/clock.py)."""

    def __init__(self) -> None:
        self._offset = timedelta()

    def now(self) -> datetime:
        return utc_now_ms() + self._offset

    def advance(self, by: timedelta) -> None:
        self._offset += by

"""A thin, timed view of the gRPC API: the calls the benchmarks make, over the generated stubs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from pipelinejobs_client.api.v1 import (
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    pipeline_pb2,
    pipeline_service_pb2,
    pipeline_service_pb2_grpc,
)

from .parallel import check_stop

TIMEOUT_S = 60.0


@dataclass(frozen=True)
class JobHandle:
    uuid: str
    token: str


class Api:
    """Stubs over one channel, authenticated with one client key. Not shared between threads."""

    def __init__(self, channel: grpc.Channel, client_key: str) -> None:
        self.channel = channel
        self.jobs = job_service_pb2_grpc.JobServiceStub(channel)
        self.pipelines = pipeline_service_pb2_grpc.PipelineServiceStub(channel)
        self.metadata = (("authorization", f"Bearer {client_key}"),)

    def register_pipeline(self, name: str) -> str:
        reply = self.pipelines.RegisterPipeline(
            pipeline_service_pb2.RegisterPipelineRequest(
                name=name, components=[pipeline_pb2.PipelineComponent(id=name, version="1.0.0")]
            ),
            metadata=self.metadata,
            timeout=TIMEOUT_S,
        )
        return reply.pipeline.uuid

    def create_job(self, pipeline: str, data: dict[str, Any]) -> JobHandle:
        """A new job: ``data`` must differ from every other job's, or CreateJob returns the existing one."""
        reply = self.jobs.CreateJob(create_request(pipeline, data), metadata=self.metadata, timeout=TIMEOUT_S)
        if not reply.created:
            raise RuntimeError(f"CreateJob returned an existing job for {data}")
        return JobHandle(reply.job.uuid, reply.token)

    def send(self, job: JobHandle, event: job_pb2.JobEvent.ValueType, data: dict[str, Any]) -> int:
        """Send one event with an idempotency key, as the client library does; the new ``seq``."""
        request = send_request(job, event, data)
        reply = self.jobs.SendEvent(request, metadata=self.metadata, timeout=TIMEOUT_S)
        return reply.event.seq

    def list_jobs(self, request: job_service_pb2.ListJobsRequest) -> job_service_pb2.ListJobsResponse:
        return self.jobs.ListJobs(request, metadata=self.metadata, timeout=TIMEOUT_S)

    def verify(self, job: JobHandle, timeout_s: float = TIMEOUT_S) -> job_service_pb2.VerifyHistoryResponse:
        return self.jobs.VerifyHistory(
            job_service_pb2.VerifyHistoryRequest(uuid=job.uuid), metadata=self.metadata, timeout=timeout_s
        )

    def update(self, job: JobHandle, n: int) -> int:
        return self.send(job, job_pb2.JOB_EVENT_UPDATE, {"progress": n, "note": "bench update"})

    def get_seq(self, job: JobHandle) -> int:
        reply = self.jobs.GetJob(
            job_service_pb2.GetJobRequest(uuid=job.uuid), metadata=self.metadata, timeout=TIMEOUT_S
        )
        return reply.job.seq

    def cancel(self, job: JobHandle) -> None:
        self.jobs.CancelJob(
            job_service_pb2.CancelJobRequest(uuid=job.uuid, token=job.token),
            metadata=self.metadata,
            timeout=TIMEOUT_S,
        )

    def start(self, job: JobHandle, updates_to_seq: int) -> None:
        """Move a new job to RUNNING, then send updates until its history has ``updates_to_seq`` events."""
        seq = self.send(job, job_pb2.JOB_EVENT_RUN, {"bench": True})
        while seq < updates_to_seq:
            check_stop()
            seq = self.update(job, seq)

    # -- timed --------------------------------------------------------------------------------------

    def timed_update(self, job: JobHandle, n: int) -> tuple[float, int]:
        """Seconds one SendEvent('update') took, and the seq it got."""
        started = time.perf_counter()
        seq = self.update(job, n)
        return time.perf_counter() - started, seq

    def timed_get(self, job: JobHandle) -> tuple[float, int]:
        started = time.perf_counter()
        seq = self.get_seq(job)
        return time.perf_counter() - started, seq

    def timed_create(self, pipeline: str, data: dict[str, Any]) -> tuple[float, JobHandle]:
        started = time.perf_counter()
        job = self.create_job(pipeline, data)
        return time.perf_counter() - started, job


def create_request(pipeline: str, data: dict[str, Any]) -> job_service_pb2.CreateJobRequest:
    request = job_service_pb2.CreateJobRequest(
        pipeline_uuid=pipeline,
        links=job_pb2.JobLinks(lab=["bench-lab"], experiment=["bench-experiment"], sample=["bench-1"]),
    )
    request.data.update(data)
    return request


def send_request(
    job: JobHandle, event: job_pb2.JobEvent.ValueType, data: dict[str, Any]
) -> job_service_pb2.SendEventRequest:
    request = job_service_pb2.SendEventRequest(
        uuid=job.uuid, event=event, token=job.token, idempotency_key=uuid.uuid4().hex
    )
    request.data.update(data)
    return request


def timed(call: Callable[[], object]) -> float:
    """Seconds one call took."""
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


@contextmanager
def connect(address: str, client_key: str) -> Iterator[Api]:
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT_S)
        yield Api(channel, client_key)

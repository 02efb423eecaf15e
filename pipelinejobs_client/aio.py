"""``AsyncJobsClient``: the asyncio twin of ``JobsClient``, with the same methods as coroutines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import grpc

from pipelinejobs_client.api.v1 import (
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    pipeline_pb2,
    pipeline_service_pb2,
    pipeline_service_pb2_grpc,
)

from . import requests
from .channels import CHANNEL_OPTIONS, call_metadata, channel_credentials
from .client import DEFAULT_TIMEOUT_S
from .errors import JobNotFound, from_rpc_error
from .names import EventLike
from .retry import RetryPolicy, method_of, safe_to_repeat

Response = TypeVar("Response")


class AsyncJobsClient:
    """See ``JobsClient``; use ``async with`` or ``await close()``."""

    def __init__(
        self,
        target: str,
        *,
        api_key: str | None = None,
        tls: bool | grpc.ChannelCredentials = False,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._metadata = call_metadata(api_key)
        self._retry = retry or RetryPolicy()
        credentials = channel_credentials(tls)
        self._channel = (
            grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
            if credentials is not None
            else grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        )
        self._jobs = job_service_pb2_grpc.JobServiceStub(self._channel)
        self._pipelines = pipeline_service_pb2_grpc.PipelineServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close(grace=None)

    async def __aenter__(self) -> AsyncJobsClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def _call(self, method: Callable[..., Any], request: Any, *, done_if_gone: Any = None) -> Any:
        attempts = self._retry.attempts if safe_to_repeat(method_of(request)) else 1
        for attempt in range(attempts):
            try:
                return await method(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as rpc_error:
                error = from_rpc_error(rpc_error)
            if attempt and done_if_gone is not None and isinstance(error, JobNotFound):
                return done_if_gone
            if attempt + 1 < attempts and self._retry.retryable(error):
                await asyncio.sleep(self._retry.backoff(attempt))
                continue
            raise error
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def register_pipeline(
        self,
        name: str,
        components: Sequence[requests.Component],
        *,
        options: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> pipeline_service_pb2.RegisterPipelineResponse:
        request = requests.register_pipeline(name, components, options, description)
        reply: pipeline_service_pb2.RegisterPipelineResponse = await self._call(
            self._pipelines.RegisterPipeline, request
        )
        return reply

    async def get_pipeline(self, uuid: str) -> pipeline_pb2.Pipeline:
        request = pipeline_service_pb2.GetPipelineRequest(uuid=uuid)
        reply: pipeline_service_pb2.GetPipelineResponse = await self._call(
            self._pipelines.GetPipeline, request
        )
        return reply.pipeline

    async def list_pipelines(
        self, *, page_size: int = 0, page_token: str = ""
    ) -> pipeline_service_pb2.ListPipelinesResponse:
        request = pipeline_service_pb2.ListPipelinesRequest(page_size=page_size, page_token=page_token)
        reply: pipeline_service_pb2.ListPipelinesResponse = await self._call(
            self._pipelines.ListPipelines, request
        )
        return reply

    async def iter_pipelines(self, *, page_size: int = 0) -> AsyncIterator[pipeline_pb2.Pipeline]:
        token = ""
        while True:
            page = await self.list_pipelines(page_size=page_size, page_token=token)
            for pipeline in page.pipelines:
                yield pipeline
            token = page.next_page_token
            if not token:
                return

    async def create_job(
        self,
        pipeline_uuid: str,
        *,
        lab: str | Iterable[str] = (),
        experiment: str | Iterable[str] = (),
        sample: str | Iterable[str] = (),
        data: Mapping[str, Any] | None = None,
        session: str = "",
        agent: str = "",
        task: str = "",
    ) -> job_service_pb2.CreateJobResponse:
        request = requests.create_job(
            pipeline_uuid,
            lab=lab,
            experiment=experiment,
            sample=sample,
            data=data,
            session=session,
            agent=agent,
            task=task,
        )
        reply: job_service_pb2.CreateJobResponse = await self._call(self._jobs.CreateJob, request)
        return reply

    async def get_job(self, uuid: str) -> job_pb2.Job:
        reply: job_service_pb2.GetJobResponse = await self._call(
            self._jobs.GetJob, job_service_pb2.GetJobRequest(uuid=uuid)
        )
        return reply.job

    async def list_jobs(
        self,
        *,
        pipeline_uuid: str = "",
        states: Iterable[str | int] = (),
        lab: str | Iterable[str] = (),
        experiment: str | Iterable[str] = (),
        sample: str | Iterable[str] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        order_by: str = "created",
        page_size: int = 0,
        page_token: str = "",
    ) -> job_service_pb2.ListJobsResponse:
        request = requests.list_jobs(
            pipeline_uuid=pipeline_uuid,
            states=states,
            lab=lab,
            experiment=experiment,
            sample=sample,
            created_after=created_after,
            created_before=created_before,
            updated_after=updated_after,
            updated_before=updated_before,
            order_by=order_by,
            page_size=page_size,
            page_token=page_token,
        )
        reply: job_service_pb2.ListJobsResponse = await self._call(self._jobs.ListJobs, request)
        return reply

    async def watch_job(
        self,
        uuid: str,
        *,
        after_seq: int = 0,
        until_states: Iterable[str | int] = (),
        timeout: float | None = None,  # noqa: ASYNC109 - the stream's gRPC deadline
    ) -> AsyncIterator[job_pb2.HistoryEvent]:
        request = requests.watch_job(uuid, after_seq=after_seq, until_states=until_states)
        try:
            async for reply in self._jobs.WatchJob(request, timeout=timeout, metadata=self._metadata):
                yield reply.event
        except grpc.RpcError as rpc_error:
            raise from_rpc_error(rpc_error) from None

    async def send_event(
        self,
        uuid: str,
        event: EventLike,
        *,
        token: str = "",
        data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        source: str | int | None = None,
    ) -> job_service_pb2.SendEventResponse:
        request = requests.send_event(
            uuid, event, token=token, data=data, idempotency_key=idempotency_key, source=source
        )
        reply: job_service_pb2.SendEventResponse = await self._call(self._jobs.SendEvent, request)
        return reply

    async def cancel_job(self, uuid: str, *, token: str = "") -> None:
        request = job_service_pb2.CancelJobRequest(uuid=uuid, token=token)
        await self._call(self._jobs.CancelJob, request, done_if_gone=job_service_pb2.CancelJobResponse())

    async def list_job_events(
        self, uuid: str, *, page_size: int = 0, page_token: str = ""
    ) -> job_service_pb2.ListJobEventsResponse:
        request = job_service_pb2.ListJobEventsRequest(uuid=uuid, page_size=page_size, page_token=page_token)
        reply: job_service_pb2.ListJobEventsResponse = await self._call(self._jobs.ListJobEvents, request)
        return reply

    async def iter_job_events(self, uuid: str, *, page_size: int = 0) -> AsyncIterator[job_pb2.HistoryEvent]:
        token = ""
        while True:
            page = await self.list_job_events(uuid, page_size=page_size, page_token=token)
            for event in page.events:
                yield event
            token = page.next_page_token
            if not token:
                return

    async def reject_event(
        self,
        uuid: str,
        event: str,
        *,
        reason: str,
        message: str = "",
        token: str = "",
        data: Mapping[str, Any] | None = None,
        source: str | int | None = None,
    ) -> job_pb2.RejectedEvent:
        request = requests.reject_event(
            uuid, event, reason=reason, message=message, token=token, data=data, source=source
        )
        reply: job_service_pb2.RejectEventResponse = await self._call(self._jobs.RejectEvent, request)
        return reply.event

    async def list_rejected_events(
        self, job_uuid: str = "", *, page_size: int = 0, page_token: str = ""
    ) -> job_service_pb2.ListRejectedEventsResponse:
        request = job_service_pb2.ListRejectedEventsRequest(
            job_uuid=job_uuid, page_size=page_size, page_token=page_token
        )
        reply: job_service_pb2.ListRejectedEventsResponse = await self._call(
            self._jobs.ListRejectedEvents, request
        )
        return reply

    async def verify_history(self, uuid: str) -> job_service_pb2.VerifyHistoryResponse:
        request = job_service_pb2.VerifyHistoryRequest(uuid=uuid)
        reply: job_service_pb2.VerifyHistoryResponse = await self._call(self._jobs.VerifyHistory, request)
        return reply

    async def get_state_machine(self) -> job_service_pb2.GetStateMachineResponse:
        request = job_service_pb2.GetStateMachineRequest()
        reply: job_service_pb2.GetStateMachineResponse = await self._call(self._jobs.GetStateMachine, request)
        return reply

    async def export_provenance(self, uuid: str) -> str:
        request = job_service_pb2.ExportProvenanceRequest(uuid=uuid)
        reply: job_service_pb2.ExportProvenanceResponse = await self._call(
            self._jobs.ExportProvenance, request
        )
        return reply.document

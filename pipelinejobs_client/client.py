"""``JobsClient``: the blocking client, one typed method per RPC of the service.

Every call goes through ``_call``, which adds credentials and a deadline, retries what is safe to retry
(see retry.py) and turns gRPC errors into the typed exceptions of errors.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from .errors import JobNotFound, PipelineJobsError, from_rpc_error
from .names import EventLike
from .retry import RetryPolicy, method_of, safe_to_repeat

Response = TypeVar("Response")
DEFAULT_TIMEOUT_S = 10.0


class JobsClient:
    """A connection to a PipelineJobs server.

    ``target`` is ``host:port``. ``api_key`` is sent as ``authorization: Bearer <key>``. ``tls`` is False
    (plaintext, for loopback and trusted networks), True (system roots) or ``grpc.ChannelCredentials``.
    ``timeout`` is each call's deadline in seconds. Use it as a context manager, or call ``close()``.
    """

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
            grpc.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
            if credentials is not None
            else grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        )
        self._jobs = job_service_pb2_grpc.JobServiceStub(self._channel)
        self._pipelines = pipeline_service_pb2_grpc.PipelineServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> JobsClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _call(
        self, method: Callable[..., Response], request: Any, *, done_if_gone: Response | None = None
    ) -> Response:
        """One RPC with deadline, credentials, retries and typed errors.

        ``done_if_gone``: for deletions, the answer to give when a retry finds the job already gone
        (the attempt whose reply was lost had succeeded).
        """
        attempts = self._retry.attempts if safe_to_repeat(method_of(request)) else 1
        for attempt in range(attempts):
            try:
                return method(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as rpc_error:
                error = from_rpc_error(rpc_error)
            if attempt and done_if_gone is not None and isinstance(error, JobNotFound):
                return done_if_gone
            if attempt + 1 < attempts and self._retry.retryable(error):
                time.sleep(self._retry.backoff(attempt))
                continue
            raise error
        raise AssertionError("unreachable: the last attempt returns or raises")

    # -- pipelines --------------------------------------------------------------------------------------

    def register_pipeline(
        self,
        name: str,
        components: Sequence[requests.Component],
        *,
        options: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> pipeline_service_pb2.RegisterPipelineResponse:
        """Register a pipeline (``components`` as ``"id@version"`` or ``(id, version)``); idempotent."""
        request = requests.register_pipeline(name, components, options, description)
        return self._call(self._pipelines.RegisterPipeline, request)

    def get_pipeline(self, uuid: str) -> pipeline_pb2.Pipeline:
        reply = self._call(self._pipelines.GetPipeline, pipeline_service_pb2.GetPipelineRequest(uuid=uuid))
        return reply.pipeline

    def list_pipelines(
        self, *, page_size: int = 0, page_token: str = ""
    ) -> pipeline_service_pb2.ListPipelinesResponse:
        request = pipeline_service_pb2.ListPipelinesRequest(page_size=page_size, page_token=page_token)
        return self._call(self._pipelines.ListPipelines, request)

    def iter_pipelines(self, *, page_size: int = 0) -> Iterator[pipeline_pb2.Pipeline]:
        token = ""
        while True:
            page = self.list_pipelines(page_size=page_size, page_token=token)
            yield from page.pipelines
            token = page.next_page_token
            if not token:
                return

    # -- jobs -------------------------------------------------------------------------------------------

    def create_job(
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
        """Create a job, or get the existing one with the same identity and a fresh token."""
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
        return self._call(self._jobs.CreateJob, request)

    def get_job(self, uuid: str) -> job_pb2.Job:
        return self._call(self._jobs.GetJob, job_service_pb2.GetJobRequest(uuid=uuid)).job

    def list_jobs(
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
        """One page of jobs matching every filter given (links: any of the values of each kind)."""
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
        return self._call(self._jobs.ListJobs, request)

    def iter_jobs(self, **filters: Any) -> Iterator[job_pb2.Job]:
        """Every job matching ``filters`` (the keyword arguments of ``list_jobs``), page after page."""
        token = ""
        while True:
            page = self.list_jobs(**filters, page_token=token)
            yield from page.jobs
            token = page.next_page_token
            if not token:
                return

    def watch_job(
        self,
        uuid: str,
        *,
        after_seq: int = 0,
        until_states: Iterable[str | int] = (),
        timeout: float | None = None,
    ) -> Iterator[job_pb2.HistoryEvent]:
        """The history after ``after_seq``, then each new entry; ends once the job is in ``until_states``.

        Reconnect with the last ``seq`` received to continue without loss or repeats. ``timeout`` bounds
        the whole stream (None: no deadline).
        """
        request = requests.watch_job(uuid, after_seq=after_seq, until_states=until_states)
        try:
            for reply in self._jobs.WatchJob(request, timeout=timeout, metadata=self._metadata):
                yield reply.event
        except grpc.RpcError as rpc_error:
            raise from_rpc_error(rpc_error) from None

    def send_event(
        self,
        uuid: str,
        event: EventLike,
        *,
        token: str = "",
        data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        source: str | int | None = None,
    ) -> job_service_pb2.SendEventResponse:
        """Apply an event (``"run"``, ``"update"``, … or a ``JobEvent``); a key is generated if none given."""
        request = requests.send_event(
            uuid, event, token=token, data=data, idempotency_key=idempotency_key, source=source
        )
        return self._call(self._jobs.SendEvent, request)

    def cancel_job(self, uuid: str, *, token: str = "") -> None:
        """Delete a job that has never been RUNNING, with its history."""
        request = job_service_pb2.CancelJobRequest(uuid=uuid, token=token)
        self._call(self._jobs.CancelJob, request, done_if_gone=job_service_pb2.CancelJobResponse())

    def list_job_events(
        self, uuid: str, *, page_size: int = 0, page_token: str = ""
    ) -> job_service_pb2.ListJobEventsResponse:
        request = job_service_pb2.ListJobEventsRequest(uuid=uuid, page_size=page_size, page_token=page_token)
        return self._call(self._jobs.ListJobEvents, request)

    def iter_job_events(self, uuid: str, *, page_size: int = 0) -> Iterator[job_pb2.HistoryEvent]:
        token = ""
        while True:
            page = self.list_job_events(uuid, page_size=page_size, page_token=token)
            yield from page.events
            token = page.next_page_token
            if not token:
                return

    def reject_event(
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
        """Keep something that could not be applied (e.g. an unmapped status) in the job's rejected log."""
        request = requests.reject_event(
            uuid, event, reason=reason, message=message, token=token, data=data, source=source
        )
        return self._call(self._jobs.RejectEvent, request).event

    def list_rejected_events(
        self, job_uuid: str = "", *, page_size: int = 0, page_token: str = ""
    ) -> job_service_pb2.ListRejectedEventsResponse:
        request = job_service_pb2.ListRejectedEventsRequest(
            job_uuid=job_uuid, page_size=page_size, page_token=page_token
        )
        return self._call(self._jobs.ListRejectedEvents, request)

    def verify_history(self, uuid: str) -> job_service_pb2.VerifyHistoryResponse:
        return self._call(self._jobs.VerifyHistory, job_service_pb2.VerifyHistoryRequest(uuid=uuid))

    def get_state_machine(self) -> job_service_pb2.GetStateMachineResponse:
        return self._call(self._jobs.GetStateMachine, job_service_pb2.GetStateMachineRequest())

    def export_provenance(self, uuid: str) -> str:
        """The job's provenance as a W3C PROV-JSON document (text): job, pipeline, agent, links, events."""
        request = job_service_pb2.ExportProvenanceRequest(uuid=uuid)
        return self._call(self._jobs.ExportProvenance, request).document


__all__ = ["JobsClient", "PipelineJobsError"]

"""JobService over gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pipelinejobs_client.api.v1 import job_pb2
from pipelinejobs_client.api.v1 import job_service_pb2 as pb
from pipelinejobs_client.api.v1 import job_service_pb2_grpc as pb_grpc
from pipelinejobs_client.names import event_name
from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.errors import InvalidArgument, InvalidTransition, PipelineJobsError
from pipelinejobs_server.service import paging
from pipelinejobs_server.service.credentials import Credentials, Principal
from pipelinejobs_server.service.events import Event, EventService
from pipelinejobs_server.service.jobs import JobService, NewJob
from pipelinejobs_server.service.listing import JobListing
from pipelinejobs_server.service.provenance import MEDIA_TYPE, ProvenanceService
from pipelinejobs_server.service.watching import JobWatcher
from pipelinejobs_server.settings import Limits

from .calls import Context, rpc, rpc_stream
from .convert import (
    event_from_proto,
    event_to_proto,
    history_to_proto,
    job_to_proto,
    rejected_to_proto,
    source_from_proto,
    state_from_proto,
    state_to_proto,
    struct_to_dict,
    timestamp,
)
from .metrics import ServerMetrics
from .queries import job_filter, job_order

_PERMISSIONS = {
    fsm.Permission.SERVICE: job_pb2.PERMISSION_SERVICE,
    fsm.Permission.JOB_TOKEN: job_pb2.PERMISSION_JOB_TOKEN,
    fsm.Permission.ADMIN: job_pb2.PERMISSION_ADMIN,
}


def state_machine() -> pb.GetStateMachineResponse:
    """The machine as a message, read off domain/fsm.py (built once: it never changes)."""
    return pb.GetStateMachineResponse(
        states=[state_to_proto(state) for state in fsm.STATES],
        events=[event_to_proto(event) for event in fsm.EVENTS],
        transitions=[
            job_pb2.Transition(
                event=event_to_proto(event),
                source=state_to_proto(source),
                destination=state_to_proto(destination),
                permission=_PERMISSIONS[fsm.permission(event)],
            )
            for event, source, destination in fsm.transitions()
        ],
        initial_state=state_to_proto(fsm.INITIAL_STATE),
    )


class JobServicer(pb_grpc.JobServiceServicer):
    def __init__(
        self,
        credentials: Credentials,
        service: JobService,
        events: EventService,
        listing: JobListing,
        watcher: JobWatcher,
        limits: Limits,
        metrics: ServerMetrics,
        provenance: ProvenanceService,
    ) -> None:
        self.credentials = credentials
        self.metrics = metrics
        self._service = service
        self._events = events
        self._listing = listing
        self._watcher = watcher
        self._limits = limits
        self._provenance = provenance
        self._machine = state_machine()

    @rpc
    async def CreateJob(
        self, request: pb.CreateJobRequest, context: Context, principal: Principal | None
    ) -> pb.CreateJobResponse:
        result = await self._service.create_job(
            principal,
            NewJob(
                pipeline_uuid=request.pipeline_uuid,
                links={
                    "lab": list(request.links.lab),
                    "experiment": list(request.links.experiment),
                    "sample": list(request.links.sample),
                },
                data=struct_to_dict(request.data, "data"),
                session=request.session,
                agent=request.agent,
                task=request.task,
            ),
        )
        return pb.CreateJobResponse(
            job=job_to_proto(result.job),
            token=result.token,
            token_expire_time=timestamp(result.token_expires_at),
            callback_url=result.callback_url,
            created=result.created,
        )

    @rpc
    async def GetJob(
        self, request: pb.GetJobRequest, context: Context, principal: Principal | None
    ) -> pb.GetJobResponse:
        return pb.GetJobResponse(job=job_to_proto(await self._service.get_job(principal, request.uuid)))

    @rpc
    async def ListJobs(
        self, request: pb.ListJobsRequest, context: Context, principal: Principal | None
    ) -> pb.ListJobsResponse:
        jobs, token = await self._listing.page(
            principal, job_filter(request), job_order(request.order_by), request.page_token, request.page_size
        )
        return pb.ListJobsResponse(jobs=[job_to_proto(job) for job in jobs], next_page_token=token)

    @rpc_stream
    async def WatchJob(
        self, request: pb.WatchJobRequest, context: Context, principal: Principal | None
    ) -> AsyncIterator[pb.WatchJobResponse]:
        until = tuple(state_from_proto(value, "until_states") for value in request.until_states)
        async for recorded in self._watcher.watch(principal, request.uuid, request.after_seq, until):
            yield pb.WatchJobResponse(event=history_to_proto(recorded))

    @rpc
    async def SendEvent(
        self, request: pb.SendEventRequest, context: Context, principal: Principal | None
    ) -> pb.SendEventResponse:
        name = event_name(request.event) if request.event in job_pb2.JobEvent.values() else "unknown"
        try:
            applied = await self._events.send(
                principal,
                Event(
                    job_uuid=request.uuid,
                    name=event_from_proto(request.event),
                    data=struct_to_dict(request.data, "data"),
                    token=request.token,
                    idempotency_key=request.idempotency_key,
                    source=source_from_proto(request.source),
                ),
            )
        except InvalidTransition:
            self.metrics.observe_event(name, "refused")
            raise
        except PipelineJobsError:
            self.metrics.observe_event(name, "error")
            raise
        self.metrics.observe_event(name, "replayed" if applied.replayed else "applied")
        return pb.SendEventResponse(
            job=job_to_proto(applied.job), event=history_to_proto(applied.event), replayed=applied.replayed
        )

    @rpc
    async def CancelJob(
        self, request: pb.CancelJobRequest, context: Context, principal: Principal | None
    ) -> pb.CancelJobResponse:
        await self._service.cancel_job(principal, request.uuid, request.token)
        return pb.CancelJobResponse()

    @rpc
    async def ListJobEvents(
        self, request: pb.ListJobEventsRequest, context: Context, principal: Principal | None
    ) -> pb.ListJobEventsResponse:
        limit = paging.page_size(request.page_size, self._limits)
        listing = f"events:{request.uuid}"
        position = paging.decode(listing, request.page_token) or {"seq": 0}
        after_seq = position.get("seq")
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise InvalidArgument("page_token is malformed", field="page_token")
        events = await self._service.list_events(principal, request.uuid, after_seq, limit)
        token = paging.encode(listing, {"seq": events[-1].entry.seq}) if len(events) == limit else ""
        return pb.ListJobEventsResponse(events=[history_to_proto(e) for e in events], next_page_token=token)

    @rpc
    async def RejectEvent(
        self, request: pb.RejectEventRequest, context: Context, principal: Principal | None
    ) -> pb.RejectEventResponse:
        record = await self._events.reject(
            principal,
            Event(
                job_uuid=request.uuid,
                name=request.event,
                data=struct_to_dict(request.data, "data"),
                token=request.token,
                source=source_from_proto(request.source),
            ),
            reason=request.reason,
            message=request.message,
        )
        return pb.RejectEventResponse(event=rejected_to_proto(record))

    @rpc
    async def ListRejectedEvents(
        self, request: pb.ListRejectedEventsRequest, context: Context, principal: Principal | None
    ) -> pb.ListRejectedEventsResponse:
        limit = paging.page_size(request.page_size, self._limits)
        listing = f"rejected:{request.job_uuid}"
        after = paging.decode_moment(listing, request.page_token)
        records = await self._service.list_rejected(principal, request.job_uuid, after, limit)
        token = (
            paging.encode_moment(listing, records[-1].timestamp, records[-1].uuid)
            if len(records) == limit
            else ""
        )
        return pb.ListRejectedEventsResponse(
            events=[rejected_to_proto(r) for r in records], next_page_token=token
        )

    @rpc
    async def VerifyHistory(
        self, request: pb.VerifyHistoryRequest, context: Context, principal: Principal | None
    ) -> pb.VerifyHistoryResponse:
        check = await self._service.verify(principal, request.uuid)
        return pb.VerifyHistoryResponse(
            valid=check.valid, checked=check.checked, first_bad_seq=check.first_bad_seq, reason=check.reason
        )

    # The machine is public: any caller (or a tool in another language) may read it without a key.
    @rpc
    async def GetStateMachine(
        self, request: pb.GetStateMachineRequest, context: Context, principal: Principal | None
    ) -> pb.GetStateMachineResponse:
        return self._machine

    @rpc
    async def ExportProvenance(
        self, request: pb.ExportProvenanceRequest, context: Context, principal: Principal | None
    ) -> pb.ExportProvenanceResponse:
        text = await self._provenance.export(principal, request.uuid)
        return pb.ExportProvenanceResponse(document=text, media_type=MEDIA_TYPE)

"""The gRPC JobService: each method converts its request, calls the service layer and converts the answer.

Everything around the call (request ids, the caller's principal, metrics, error statuses) is done by
the interceptors (api/interceptors/); deciding is done by the service layer."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pipelinejobs_client.api.v1 import feed_pb2, job_pb2
from pipelinejobs_client.api.v1 import job_service_pb2 as pb
from pipelinejobs_client.api.v1 import job_service_pb2_grpc as pb_grpc
from pipelinejobs_client.names import event_name
from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.errors import InvalidTransition, PipelineJobsError
from pipelinejobs_server.service.bundle import Services
from pipelinejobs_server.service.events import Event
from pipelinejobs_server.service.jobs import NewJob
from pipelinejobs_server.service.provenance import MEDIA_TYPE

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
from .feed import bookmark_to_proto, end_time, entry_to_proto, feed_filter, full_view
from .interceptors import principal
from .interceptors.around import Context
from .listing import job_filter, job_order
from .metrics import ServerMetrics
from .replies import fitted

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
    def __init__(self, services: Services, metrics: ServerMetrics, reply_limit: int) -> None:
        self._jobs = services.jobs
        self._events = services.events
        self._listing = services.listing
        self._counting = services.counting
        self._watcher = services.watcher
        self._provenance = services.provenance
        self._feed = services.feed
        self._metrics = metrics  # events by outcome; calls are counted by the interceptors
        self._machine = state_machine()
        self._reply_limit = reply_limit  # the server's max_send_message_length: list replies fit in it

    async def CreateJob(self, request: pb.CreateJobRequest, context: Context) -> pb.CreateJobResponse:
        result = await self._jobs.create_job(
            principal(),
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
        issued = result.token
        if issued is None:
            return pb.CreateJobResponse(job=job_to_proto(result.job), token_withheld=True)
        return pb.CreateJobResponse(
            job=job_to_proto(result.job),
            token=issued.secret,
            token_id=issued.id,
            token_expire_time=timestamp(issued.expires_at),
            callback_url=issued.callback_url,
            created=result.created,
        )

    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.GetJobResponse:
        return pb.GetJobResponse(job=job_to_proto(await self._jobs.get_job(principal(), request.uuid)))

    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsResponse:
        page = await self._listing.page(
            principal(),
            job_filter(request),
            job_order(request.order_by),
            request.page_token,
            request.page_size,
        )
        jobs, token = fitted(page, job_to_proto, self._reply_limit)
        return pb.ListJobsResponse(jobs=jobs, next_page_token=token)

    async def CountJobs(self, request: pb.CountJobsRequest, context: Context) -> pb.CountJobsResponse:
        counted = await self._counting.count(principal(), request.pipeline_uuid)
        return pb.CountJobsResponse(
            counts=[pb.StateCount(state=state_to_proto(state), count=n) for state, n in counted.states],
            total=counted.total,
            exact=counted.exact,
        )

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: Context
    ) -> AsyncIterator[pb.WatchJobResponse]:
        until = tuple(
            dict.fromkeys(state_from_proto(value, "until_states") for value in request.until_states)
        )
        async for recorded in self._watcher.watch(principal(), request.uuid, request.after_seq, until):
            yield pb.WatchJobResponse(event=history_to_proto(recorded))

    async def SendEvent(self, request: pb.SendEventRequest, context: Context) -> pb.SendEventResponse:
        name = event_name(request.event) if request.event in job_pb2.JobEvent.values() else "unknown"
        try:
            applied = await self._events.send(
                principal(),
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
            self._metrics.observe_event(name, "refused")
            raise
        except PipelineJobsError:
            self._metrics.observe_event(name, "error")
            raise
        self._metrics.observe_event(name, "replayed" if applied.replayed else "applied")
        return pb.SendEventResponse(
            job=job_to_proto(applied.job), event=history_to_proto(applied.event), replayed=applied.replayed
        )

    async def CancelJob(self, request: pb.CancelJobRequest, context: Context) -> pb.CancelJobResponse:
        await self._jobs.cancel_job(principal(), request.uuid, request.token)
        return pb.CancelJobResponse()

    async def ListJobEvents(
        self, request: pb.ListJobEventsRequest, context: Context
    ) -> pb.ListJobEventsResponse:
        page = await self._jobs.list_entries(principal(), request.uuid, request.page_token, request.page_size)
        events, token = fitted(page, history_to_proto, self._reply_limit)
        return pb.ListJobEventsResponse(events=events, next_page_token=token)

    async def RejectEvent(self, request: pb.RejectEventRequest, context: Context) -> pb.RejectEventResponse:
        record = await self._events.reject(
            principal(),
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

    async def ListRejectedEvents(
        self, request: pb.ListRejectedEventsRequest, context: Context
    ) -> pb.ListRejectedEventsResponse:
        page = await self._jobs.list_rejected(
            principal(), request.job_uuid, request.page_token, request.page_size
        )
        events, token = fitted(page, rejected_to_proto, self._reply_limit)
        return pb.ListRejectedEventsResponse(events=events, next_page_token=token)

    async def VerifyHistory(
        self, request: pb.VerifyHistoryRequest, context: Context
    ) -> pb.VerifyHistoryResponse:
        check = await self._jobs.verify(principal(), request.uuid)
        return pb.VerifyHistoryResponse(
            valid=check.valid, checked=check.checked, first_bad_seq=check.first_bad_seq, reason=check.reason
        )

    async def RevokeTokens(
        self, request: pb.RevokeTokensRequest, context: Context
    ) -> pb.RevokeTokensResponse:
        revoked = await self._jobs.revoke_tokens(
            principal(), request.uuid, request.token_id, request.all_tokens
        )
        return pb.RevokeTokensResponse(revoked=revoked)

    # The machine is public: any caller (or a tool in another language) may read it without a key.
    async def GetStateMachine(
        self, request: pb.GetStateMachineRequest, context: Context
    ) -> pb.GetStateMachineResponse:
        return self._machine

    async def ExportProvenance(
        self, request: pb.ExportProvenanceRequest, context: Context
    ) -> pb.ExportProvenanceResponse:
        text = await self._provenance.export(principal(), request.uuid)
        return pb.ExportProvenanceResponse(document=text, media_type=MEDIA_TYPE)

    async def ListEvents(
        self, request: feed_pb2.ListEventsRequest, context: Context
    ) -> feed_pb2.ListEventsResponse:
        full = full_view(request.view)
        listed = await self._feed.list_events(
            principal(), feed_filter(request.filter), request.after_cursor, request.page_size, full=full
        )
        reply = feed_pb2.ListEventsResponse(next_cursor=listed.next_cursor, caught_up=listed.caught_up)
        size = reply.ByteSize()
        for entry, cursor in listed.entries:
            message = entry_to_proto(entry, cursor, full=full)
            size += message.ByteSize() + 8  # the field's tag and length
            if size > self._reply_limit - 1024 and reply.entries:
                # Cut by the message size (ADR 012): the next call resumes after the last entry sent.
                reply.next_cursor, reply.caught_up = reply.entries[-1].cursor, False
                break
            reply.entries.append(message)
        return reply

    async def WatchEvents(
        self, request: feed_pb2.WatchEventsRequest, context: Context
    ) -> AsyncIterator[feed_pb2.WatchEventsResponse]:
        full = full_view(request.view)
        items = self._feed.watch_events(
            principal(),
            feed_filter(request.filter),
            after_cursor=request.after_cursor,
            from_now=request.from_now,
            full=full,
            end_cursor=request.end_cursor,
            end_time=end_time(request.end_time, "end_time") if request.HasField("end_time") else None,
        )
        async for item in items:
            if isinstance(item, tuple):
                yield feed_pb2.WatchEventsResponse(entry=entry_to_proto(*item, full=full))
            else:
                yield feed_pb2.WatchEventsResponse(bookmark=bookmark_to_proto(item))

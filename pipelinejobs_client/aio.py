"""The client: one typed method per RPC of the service, in two flavours with the same methods.

``AsyncJobsClient`` (aio.py) is the one written by hand. The blocking ``JobsClient`` (client.py) is
generated from it by ``make client`` (scripts/gen_client.py): unasync removes ``async`` and ``await``,
and the flavour's primitives come from _sync_primitives.py instead of _async_primitives.py. Edit aio.py,
then run ``make client``; ``make check`` fails while client.py is stale.

Every unary call goes through ``_call``: credentials, a deadline, retries of what retry.py declares safe
to repeat, and gRPC errors turned into the typed exceptions of errors.py. The stream (``watch_job``)
goes through ``_stream``, with the same credentials and error mapping, and resumes after the last entry
received when the server ends it or the connection drops; the paged listings go through ``_pages``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from time import monotonic
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import grpc
from google.protobuf.message import Message

from pipelinejobs_client.api.v1 import (
    feed_pb2,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    pipeline_pb2,
    pipeline_service_pb2,
    pipeline_service_pb2_grpc,
)

from . import requests
from ._async_primitives import Result, StreamCall, UnaryCall, close_channel, open_channel, sleep
from .channels import DEFAULT_TIMEOUT_S, Tls, call_metadata, channel_credentials, channel_options
from .errors import (
    DeadlineExceeded,
    JobNotFound,
    PipelineJobsError,
    ServiceUnavailable,
    WatchResume,
    from_rpc_error,
)
from .names import EventLike
from .retry import RetryPolicy, method_of, safe_to_repeat

Request = TypeVar("Request", bound=Message)
Response = TypeVar("Response")
Item = TypeVar("Item")

# A watch the server ended (WATCH_RESUME) after being open this long was served, not refused: resuming
# it does not count against the retry policy's attempts, however often it happens. A stopping server
# ends the watches that reach it within milliseconds; those count.
SERVED_S = 0.25


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


Page = TypeVar("Page", bound=_Page)


async def _pages(
    fetch: Callable[[str], Result[Page]], items: Callable[[Page], Iterable[Item]]
) -> AsyncIterator[Item]:
    """Every item of every page; ``fetch(token)`` gets the page at ``token`` (the first for "")."""
    token = ""
    while True:
        page = await fetch(token)
        for item in items(page):
            yield item
        token = page.next_page_token
        if not token:
            return


class AsyncJobsClient:
    """A connection to a PipelineJobs server.

    ``target`` is ``host:port``. ``api_key`` is sent as ``authorization: Bearer <key>``. ``tls`` is False
    (plaintext, for loopback and trusted networks), True (system roots), a ``ClientTls`` (a CA file, a
    client certificate and key, the name to check; tls.py) or ``grpc.ChannelCredentials``.
    ``timeout`` is each call's deadline in seconds, and ``retry`` the policy for the calls that are safe
    to repeat. Use the client as a context manager, or call ``close()``.

    Every method raises a ``PipelineJobsError`` subclass (errors.py) when the service refuses or cannot
    be reached; ``ServiceUnavailable`` comes only after the retries.
    """

    def __init__(
        self,
        target: str,
        *,
        api_key: str | None = None,
        tls: Tls = False,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._metadata = call_metadata(api_key)
        self._retry = retry or RetryPolicy()
        self._channel = open_channel(target, channel_credentials(tls), channel_options(tls))
        self._jobs = job_service_pb2_grpc.JobServiceStub(self._channel)
        self._pipelines = pipeline_service_pb2_grpc.PipelineServiceStub(self._channel)

    async def close(self) -> None:
        """Close the channel; calls still in flight are cancelled."""
        await close_channel(self._channel)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def _call(
        self, rpc: UnaryCall[Request, Response], request: Request, *, done_if_gone: Response | None = None
    ) -> Response:
        """One unary RPC with deadline, credentials, retries and typed errors.

        ``done_if_gone``: for deletions, the answer to give when a retry finds the job already gone
        (the attempt whose reply was lost had succeeded).
        """
        attempts = self._retry.attempts if safe_to_repeat(method_of(request)) else 1
        for attempt in range(attempts):
            try:
                return await rpc(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as rpc_error:
                error = from_rpc_error(rpc_error)
            if attempt and done_if_gone is not None and isinstance(error, JobNotFound):
                return done_if_gone
            if attempt + 1 < attempts and self._retry.retryable(error):
                await sleep(self._retry.backoff(attempt))
                continue
            raise error
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _stream(
        self, rpc: StreamCall[Request, Response], request: Request, *, deadline: float | None
    ) -> AsyncIterator[Response]:
        """One server-streaming RPC with credentials and typed errors; ``deadline`` bounds the whole stream.

        Never repeated as it is (retry.py): the replies already yielded would come again. ``watch_job``
        resumes instead, with a request that starts after the last reply.
        """
        try:
            async for reply in rpc(request, timeout=deadline, metadata=self._metadata):
                yield reply
        except grpc.RpcError as rpc_error:
            raise from_rpc_error(rpc_error) from None

    # -- pipelines --------------------------------------------------------------------------------------

    async def register_pipeline(
        self,
        name: str,
        components: Sequence[requests.Component],
        *,
        options: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> pipeline_service_pb2.RegisterPipelineResponse:
        """Register a pipeline (``components`` as ``"id@version"`` or ``(id, version)``); idempotent.

        Returns the pipeline, and whether this call created it.
        """
        request = requests.register_pipeline(name, components, options, description)
        return await self._call(self._pipelines.RegisterPipeline, request)

    async def get_pipeline(self, uuid: str) -> pipeline_pb2.Pipeline:
        """The pipeline with this uuid; raises ``PipelineNotFound``."""
        request = pipeline_service_pb2.GetPipelineRequest(uuid=uuid)
        reply = await self._call(self._pipelines.GetPipeline, request)
        return reply.pipeline

    async def list_pipelines(
        self, *, page_size: int = 0, page_token: str = ""
    ) -> pipeline_service_pb2.ListPipelinesResponse:
        """One page of pipelines and the token of the next ("" after the last); see ``iter_pipelines``."""
        request = pipeline_service_pb2.ListPipelinesRequest(page_size=page_size, page_token=page_token)
        return await self._call(self._pipelines.ListPipelines, request)

    async def iter_pipelines(self, *, page_size: int = 0) -> AsyncIterator[pipeline_pb2.Pipeline]:
        """Every pipeline, fetched ``page_size`` at a time (0: the server's default)."""
        pages = _pages(
            lambda token: self.list_pipelines(page_size=page_size, page_token=token),
            lambda page: page.pipelines,
        )
        async for pipeline in pages:
            yield pipeline

    # -- jobs -------------------------------------------------------------------------------------------

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
        """Create a job, or get the existing one with the same identity and a fresh token.

        Returns the job, its token (shown only here), the token's id and whether this call created it.
        For a job another API key created, the reply has no token and ``token_withheld`` is True: only
        the creating key and admin keys get tokens. Raises ``PipelineNotFound``, ``DataTooLarge`` and
        ``TooManyTokens`` (the job holds the maximum of live tokens).
        """
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
        return await self._call(self._jobs.CreateJob, request)

    async def get_job(self, uuid: str) -> job_pb2.Job:
        """The job with this uuid (never its token); raises ``JobNotFound``."""
        reply = await self._call(self._jobs.GetJob, job_service_pb2.GetJobRequest(uuid=uuid))
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
        """One page of jobs matching every filter given (links: any of the values of each kind).

        ``order_by``: "created" / "updated" (newest first) or "+created" / "+updated" (oldest first); any
        other raises ``ValueError`` before anything is sent. Returns the jobs and the next page's token.
        """
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
        return await self._call(self._jobs.ListJobs, request)

    async def count_jobs(self, pipeline_uuid: str = "") -> job_service_pb2.CountJobsResponse:
        """Jobs per state (every state, zeros included), of all pipelines or of one, and whether the
        counts are exact (false while the server is counting a database it found without counters)."""
        request = job_service_pb2.CountJobsRequest(pipeline_uuid=pipeline_uuid)
        return await self._call(self._jobs.CountJobs, request)

    async def iter_jobs(self, **filters: Any) -> AsyncIterator[job_pb2.Job]:
        """Every job matching ``filters`` (the keyword arguments of ``list_jobs``), page after page."""
        pages = _pages(lambda token: self.list_jobs(**filters, page_token=token), lambda page: page.jobs)
        async for job in pages:
            yield job

    async def watch_job(
        self,
        uuid: str,
        *,
        after_seq: int = 0,
        until_states: Iterable[str | int] = (),
        timeout: float | None = None,  # noqa: ASYNC109 - the whole watch's gRPC deadline
        resume: bool = True,
    ) -> AsyncIterator[job_pb2.HistoryEvent]:
        """The history after ``after_seq``, then each new entry; ends once the job is in ``until_states``.

        The server ends a watch now and then (its maximum duration, or when it stops) with
        ``WatchResume``, and connections drop. With ``resume`` the watch goes on after the last ``seq``
        received, without loss or repeats: at once after a served watch, else with the retry policy's
        backoff, and ``ServiceUnavailable`` comes after its attempts in a row that got nothing. Without
        it, those errors are raised; reconnect with the last ``seq`` received. ``timeout`` bounds the
        whole watch, resumes included (None: no deadline), which then raises ``DeadlineExceeded``.
        """
        request = requests.watch_job(uuid, after_seq=after_seq, until_states=until_states)

        async def replies(left: float | None) -> AsyncIterator[job_pb2.HistoryEvent]:
            async for reply in self._stream(self._jobs.WatchJob, request, deadline=left):
                request.after_seq = reply.event.seq  # a resumed watch goes on after it
                yield reply.event

        async for event in self._resumed(replies, timeout=timeout, resume=resume):
            yield event

    async def _resumed(
        self,
        watch: Callable[[float | None], AsyncIterator[Item]],
        *,
        timeout: float | None,  # noqa: ASYNC109 - the whole watch's gRPC deadline
        resume: bool,
    ) -> AsyncIterator[Item]:
        """A watch's items, opened again after ``WatchResume`` or a dropped connection (``watch_job``
        says how): ``watch(left)`` opens the stream with ``left`` seconds of the deadline, from where the
        items it yielded last left its request."""
        deadline = None if timeout is None else monotonic() + timeout
        failures = 0
        while True:
            left = None if deadline is None else deadline - monotonic()
            if left is not None and left <= 0:
                raise DeadlineExceeded("the watch's deadline passed", code=grpc.StatusCode.DEADLINE_EXCEEDED)
            opened, received = monotonic(), False
            try:
                async for item in watch(left):
                    received = True
                    yield item
                return
            except ServiceUnavailable as error:
                if not resume:
                    raise
                served = isinstance(error, WatchResume) and monotonic() - opened >= SERVED_S
                failures = 0 if received or served else failures + 1
                if failures >= self._retry.attempts:
                    raise
            pause = self._retry.backoff(max(failures - 1, 0))
            await sleep(pause if deadline is None else max(min(pause, deadline - monotonic()), 0))

    # -- the event feed -------------------------------------------------------------------------------

    async def list_events(
        self, *, after_cursor: str = "", page_size: int = 0, full: bool = False, **filters: Any
    ) -> feed_pb2.ListEventsResponse:
        """One page of the feed of every job's events after ``after_cursor`` (the oldest kept for "").

        ``filters`` are the keyword arguments of ``requests.feed_filter`` (``pipelines``, ``events``,
        ``to_states``, ``jobs``, ``sources``, ``lab``, ``experiment``, ``sample``, ``include_cancelled``);
        ``full`` adds each event's data. The reply's ``next_cursor`` is where to go on; ``caught_up``
        says there is nothing more now. Raises ``CursorExpired`` / ``CursorUnknown`` for a bad cursor.
        """
        request = feed_pb2.ListEventsRequest(
            filter=requests.feed_filter(**filters),
            after_cursor=after_cursor,
            page_size=page_size,
            view=requests.feed_view(full),
        )
        return await self._call(self._jobs.ListEvents, request)

    async def iter_events(
        self, *, after_cursor: str = "", page_size: int = 0, full: bool = False, **filters: Any
    ) -> AsyncIterator[feed_pb2.FeedEntry]:
        """Every entry after ``after_cursor`` up to the newest, page after page (each has its cursor)."""
        while True:
            page = await self.list_events(
                after_cursor=after_cursor, page_size=page_size, full=full, **filters
            )
            for entry in page.entries:
                yield entry
            after_cursor = page.next_cursor
            if page.caught_up:
                return

    async def watch_events(
        self,
        *,
        after_cursor: str = "",
        from_now: bool = False,
        full: bool = False,
        end_cursor: str = "",
        end_time: datetime | None = None,
        bookmarks: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109 - the whole watch's gRPC deadline
        resume: bool = True,
        **filters: Any,
    ) -> AsyncIterator[feed_pb2.FeedEntry | feed_pb2.FeedBookmark]:
        """The feed after ``after_cursor`` (or ``from_now``), then each new entry, for as long as it runs.

        Ends at ``end_cursor`` or ``end_time`` when given. With ``bookmarks`` it also yields the server's
        bookmarks (``FeedBookmark``: the newest cursor considered, every few seconds). With ``resume`` it
        goes on by itself from the last cursor it received (an entry's or a bookmark's) when the server
        ends the watch or the connection drops, as ``watch_job`` does: nothing skipped or repeated.
        Keep the last ``cursor`` you processed to resume after a restart of your own program.
        """
        request = requests.watch_events(
            after_cursor=after_cursor,
            from_now=from_now,
            full=full,
            end_cursor=end_cursor,
            end_time=end_time,
            filters=filters,
        )

        async def replies(left: float | None) -> AsyncIterator[feed_pb2.FeedEntry | feed_pb2.FeedBookmark]:
            async for reply in self._stream(self._jobs.WatchEvents, request, deadline=left):
                item = reply.entry if reply.WhichOneof("item") == "entry" else reply.bookmark
                # A resumed watch goes on after it.
                request.after_cursor, request.from_now = item.cursor, False
                yield item

        async for item in self._resumed(replies, timeout=timeout, resume=resume):
            if isinstance(item, feed_pb2.FeedEntry) or bookmarks:
                yield item

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
        """Apply an event (``"run"``, ``"update"``, … or a ``JobEvent``); a key is generated if none given.

        Returns the job after the event, the entry recorded, and whether it was a replay of the same key.
        Raises ``UnknownEvent`` before sending, ``InvalidTransition`` when the state machine refuses,
        ``IdempotencyConflict`` when the key was used for something else.
        """
        request = requests.send_event(
            uuid, event, token=token, data=data, idempotency_key=idempotency_key, source=source
        )
        return await self._call(self._jobs.SendEvent, request)

    async def cancel_job(self, uuid: str, *, token: str = "") -> None:
        """Delete a job that has never been RUNNING, with its history; raises ``CancelNotAllowed``."""
        request = job_service_pb2.CancelJobRequest(uuid=uuid, token=token)
        await self._call(self._jobs.CancelJob, request, done_if_gone=job_service_pb2.CancelJobResponse())

    async def list_job_events(
        self, uuid: str, *, page_size: int = 0, page_token: str = ""
    ) -> job_service_pb2.ListJobEventsResponse:
        """One page of the job's history in ``seq`` order, and the next page's token."""
        request = job_service_pb2.ListJobEventsRequest(uuid=uuid, page_size=page_size, page_token=page_token)
        return await self._call(self._jobs.ListJobEvents, request)

    async def iter_job_events(self, uuid: str, *, page_size: int = 0) -> AsyncIterator[job_pb2.HistoryEvent]:
        """The job's whole history in ``seq`` order, fetched ``page_size`` entries at a time."""
        pages = _pages(
            lambda token: self.list_job_events(uuid, page_size=page_size, page_token=token),
            lambda page: page.events,
        )
        async for event in pages:
            yield event

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
        """Keep something that could not be applied (e.g. an unmapped status) in the job's rejected log.

        Returns the record kept.
        """
        request = requests.reject_event(
            uuid, event, reason=reason, message=message, token=token, data=data, source=source
        )
        reply = await self._call(self._jobs.RejectEvent, request)
        return reply.event

    async def list_rejected_events(
        self, job_uuid: str = "", *, page_size: int = 0, page_token: str = ""
    ) -> job_service_pb2.ListRejectedEventsResponse:
        """One page of the events received but not applied (of one job, or of all with an admin key)."""
        request = job_service_pb2.ListRejectedEventsRequest(
            job_uuid=job_uuid, page_size=page_size, page_token=page_token
        )
        return await self._call(self._jobs.ListRejectedEvents, request)

    async def iter_rejected_events(
        self, job_uuid: str = "", *, page_size: int = 0
    ) -> AsyncIterator[job_pb2.RejectedEvent]:
        """Every event received but not applied (of one job, or of all with an admin key), page after page."""
        pages = _pages(
            lambda token: self.list_rejected_events(job_uuid, page_size=page_size, page_token=token),
            lambda page: page.events,
        )
        async for event in pages:
            yield event

    async def verify_history(self, uuid: str) -> job_service_pb2.VerifyHistoryResponse:
        """Recompute the job's hash chain: whether it is valid, how many entries, the first bad ``seq``."""
        return await self._call(self._jobs.VerifyHistory, job_service_pb2.VerifyHistoryRequest(uuid=uuid))

    async def revoke_tokens(self, uuid: str, *, token_id: str = "", all_tokens: bool = False) -> int:
        """Revoke one token of a job by its id (``CreateJobResponse.token_id``, or ``token_id(token)``)
        or, with ``all_tokens=True``, every token of the job; needs an admin key. Returns how many were
        removed (0 when the id matches none: a repeat changes nothing)."""
        request = job_service_pb2.RevokeTokensRequest(uuid=uuid, token_id=token_id, all_tokens=all_tokens)
        reply = await self._call(self._jobs.RevokeTokens, request)
        return reply.revoked

    async def get_state_machine(self) -> job_service_pb2.GetStateMachineResponse:
        """The state machine: its states, events, and every allowed transition."""
        return await self._call(self._jobs.GetStateMachine, job_service_pb2.GetStateMachineRequest())

    async def export_provenance(self, uuid: str) -> str:
        """The job's provenance as a W3C PROV-JSON document (text): job, pipeline, agent, links, events."""
        request = job_service_pb2.ExportProvenanceRequest(uuid=uuid)
        reply = await self._call(self._jobs.ExportProvenance, request)
        return reply.document


__all__ = ["DEFAULT_TIMEOUT_S", "AsyncJobsClient", "PipelineJobsError"]

"""Creating jobs and applying events to them: the only code path that changes a job.

The event path (``send_event``) reads the record, asks the state machine, appends the entry to the log
under the unique (job_uuid, seq) index and then advances the record with a compare-and-set. Losing a race
for a seq means another writer got there first: roll the record forward and decide again, from the new
state. Nothing is held in this process between requests; any number of replicas may run side by side.
"""

from __future__ import annotations

import asyncio
import random
import uuid as uuid_module
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.canonical import canonical_json
from pipelinejobs_server.domain.errors import (
    AdminRequired,
    CancelNotAllowed,
    ConcurrentModification,
    IdempotencyConflict,
    InvalidArgument,
    InvalidToken,
    InvalidTransition,
    JobNotFound,
    PipelineNotFound,
    TokenExpired,
    TokenRequired,
)
from pipelinejobs_server.domain.history import ChainCheck, Entry, utc_now_ms, verify_chain_async
from pipelinejobs_server.domain.identity import job_uuid, normalize_links
from pipelinejobs_server.domain.naming import archive_path, session_name
from pipelinejobs_server.domain.records import JobRecord, RecordedEvent, RejectedRecord
from pipelinejobs_server.domain.tokens import StoredToken, check_token, hash_secret, new_token
from pipelinejobs_server.settings import Settings
from pipelinejobs_server.storage.jobs import AppendOutcome, JobStore
from pipelinejobs_server.storage.pipelines import PipelineStore
from pipelinejobs_server.storage.rejected import RejectedStore

from . import validation
from .credentials import Principal, Role, require

MAX_ATTEMPTS = 64
SOURCES = ("grpc", "callback", "admin")


@dataclass(frozen=True)
class NewJob:
    pipeline_uuid: str
    links: Mapping[str, Sequence[str]]
    data: dict[str, Any]
    session: str = ""
    agent: str = ""
    task: str = ""


@dataclass(frozen=True)
class CreatedJob:
    job: JobRecord
    token: str
    token_expires_at: datetime
    callback_url: str
    created: bool


@dataclass(frozen=True)
class Event:
    job_uuid: str
    name: str
    data: dict[str, Any] = field(default_factory=dict)
    token: str = ""
    idempotency_key: str = ""
    source: str = ""  # "" lets the service choose: "admin" for an admin key without a token, else "grpc"


@dataclass(frozen=True)
class Applied:
    job: JobRecord
    event: RecordedEvent
    replayed: bool


def _jitter(attempt: int) -> float:
    # Spread competing writers apart so that a hot job converges instead of livelocking.
    return random.uniform(0, min(0.002 * 2**attempt, 0.05))  # noqa: S311 - not security related


def _contiguous(seq: int, events: list[RecordedEvent]) -> list[RecordedEvent]:
    """The run of ``events`` that continues a record at ``seq`` without a gap."""
    run: list[RecordedEvent] = []
    for event in events:
        if event.entry.seq != seq + len(run) + 1:
            break
        run.append(event)
    return run


class JobService:
    def __init__(
        self, settings: Settings, jobs: JobStore, pipelines: PipelineStore, rejected: RejectedStore
    ) -> None:
        self._settings = settings
        self._limits = settings.limits
        self._jobs = jobs
        self._pipelines = pipelines
        self._rejected = rejected

    # -- creation -----------------------------------------------------------------------------------

    async def create_job(self, principal: Principal | None, request: NewJob) -> CreatedJob:
        require(principal, Role.CLIENT)
        validation.uuid_field(request.pipeline_uuid, "pipeline_uuid")
        try:
            links = normalize_links(request.links)
        except ValueError as error:
            raise InvalidArgument(str(error), field="links") from None
        if not any(links.values()):
            raise InvalidArgument("links needs at least one lab, experiment or sample", field="links")
        for kind, values in links.items():
            for value in values:
                validation.text(value, f"links.{kind}", max_length=256)
        data = validation.json_object(
            request.data,
            "data",
            max_bytes=self._limits.max_job_data_bytes,
            max_depth=self._limits.max_data_depth,
        )
        validation.session_name(request.session)
        validation.text(request.agent, "agent", max_length=256)
        validation.text(request.task, "task", max_length=256)
        if await self._pipelines.get(request.pipeline_uuid) is None:
            raise PipelineNotFound(request.pipeline_uuid)

        identity = job_uuid(request.pipeline_uuid, links, data)
        token = new_token()
        now = utc_now_ms()
        stored_token = StoredToken(hash_secret(token), now + self._settings.token_ttl)

        job = await self._jobs.get(identity)
        if job is not None and job.cancelled:
            await self._finish_cancel(job)  # a cancel that stopped half-way; the job is gone
            job = None
        created = False
        if job is None:
            session = request.session or session_name()
            fresh = JobRecord(
                uuid=identity,
                pipeline_uuid=request.pipeline_uuid,
                state=fsm.INITIAL_STATE,
                seq=0,
                links=links,
                data=data,
                archive_path=archive_path(
                    self._settings.archive_template,
                    pipeline_uuid=request.pipeline_uuid,
                    job_uuid=identity,
                    links=links,
                    session=session,
                    created=now,
                ),
                session=session,
                agent=request.agent,
                task=request.task,
                last_event="",
                head_hash="",
                created_at=now,
                updated_at=now,
                tokens=(stored_token,),
            )
            created = await self._jobs.insert(fresh)
            job = fresh if created else await self._jobs.get(identity)
        if job is None or job.cancelled:
            raise ConcurrentModification("the job is being cancelled; retry", uuid=identity)
        if not created and not await self._jobs.add_token(
            identity, stored_token, keep=self._limits.max_tokens_per_job, now=now
        ):
            raise ConcurrentModification("the job is being cancelled; retry", uuid=identity)
        job = await self._settle(job)
        return CreatedJob(job, token, stored_token.expires_at, self.callback_url(identity, token), created)

    def callback_url(self, identity: str, token: str) -> str:
        # ${STATUS} stays literal: the executor substitutes it, so it must not be percent-encoded.
        query = urlencode({"uuid": identity, "token": token})
        return f"{self._settings.public_url}/v1/callbacks/agave?{query}&status=${{STATUS}}"

    # -- reading ------------------------------------------------------------------------------------

    async def get_job(self, principal: Principal | None, identity: str) -> JobRecord:
        require(principal, Role.CLIENT)
        return await self._settle(await self._load(validation.uuid_field(identity, "uuid")))

    async def _load(self, identity: str) -> JobRecord:
        job = await self._jobs.get(identity)
        if job is None or job.cancelled:
            raise JobNotFound(identity)
        return job

    async def _settle(self, job: JobRecord) -> JobRecord:
        """Bring a record level with its log: finish creation, roll forward what a crash left behind."""
        for _ in range(MAX_ATTEMPTS):
            if job.seq == 0:
                job = await self._append_creation(job)
                continue
            behind = _contiguous(
                job.seq, await self._jobs.events_after(job.uuid, job.seq, self._limits.max_page_size)
            )
            if not behind:
                return job
            await self._jobs.advance(job, behind)
            job = await self._load(job.uuid)
        raise ConcurrentModification("the job kept changing while it was being read", uuid=job.uuid)

    async def _append_creation(self, job: JobRecord) -> JobRecord:
        entry = Entry(
            job_uuid=job.uuid,
            seq=1,
            uuid=str(uuid_module.uuid4()),
            name=fsm.CREATE_EVENT,
            from_state="",
            to_state=fsm.INITIAL_STATE,
            timestamp=job.created_at,
            data={},
            source="grpc",
            idempotency_key="",
            prev_hash="",
        )
        recorded = RecordedEvent(entry, entry.digest())
        if await self._jobs.append(entry, recorded.hash) is AppendOutcome.APPENDED:
            await self._jobs.advance(job, [recorded])
        else:  # a concurrent creator wrote seq 1: roll forward to it
            await self._jobs.advance(job, await self._jobs.events_after(job.uuid, 0, 1))
        return await self._load(job.uuid)

    # -- events -------------------------------------------------------------------------------------

    async def send_event(self, principal: Principal | None, event: Event) -> Applied:
        validation.uuid_field(event.job_uuid, "uuid")
        validation.event_name(event.name)
        validation.idempotency_key(event.idempotency_key)
        validation.json_object(
            event.data,
            "data",
            max_bytes=self._limits.max_event_data_bytes,
            max_depth=self._limits.max_data_depth,
        )
        is_admin = principal is not None and principal.is_admin
        source = event.source or ("admin" if is_admin and not event.token else "grpc")
        if source not in SOURCES:
            raise InvalidArgument(f"unknown source {source!r}", field="source")
        if source == "admin" and not is_admin:
            raise AdminRequired("only an admin credential may send events as source 'admin'")
        event = replace(event, source=source)

        for attempt in range(MAX_ATTEMPTS):
            job = await self._load(event.job_uuid)
            if job.seq == 0:
                await self._settle(job)
                continue
            token = self._authorize(principal, job, event)
            decision = fsm.decide(job.state, event.name)
            if not decision:
                # The record may be behind its log (a writer died, or is between its append and its
                # compare-and-set): decide again on the settled record before refusing.
                settled = await self._settle(job)
                if settled.seq != job.seq:
                    continue
                return await self._refuse(job, event, decision)
            entry = Entry(
                job_uuid=job.uuid,
                seq=job.seq + 1,
                uuid=str(uuid_module.uuid4()),
                name=event.name,
                from_state=job.state,
                to_state=decision.to_state,
                timestamp=utc_now_ms(),
                data=event.data,
                source=source,
                idempotency_key=event.idempotency_key,
                prev_hash=job.head_hash,
            )
            recorded = RecordedEvent(entry, entry.digest())
            outcome = await self._jobs.append(entry, recorded.hash)
            if outcome is AppendOutcome.KEY_TAKEN:
                return await self._replay(job, event)
            if outcome is AppendOutcome.SEQ_TAKEN:
                # Someone else holds this seq (alive, or crashed before advancing): catch up, decide again.
                await self._settle(job)
                await asyncio.sleep(_jitter(attempt))
                continue
            if token is not None:
                token = token._replace(expires_at=entry.timestamp + self._settings.token_ttl)
            if not await self._jobs.advance(job, [recorded], token=token):
                await self._after_lost_advance(job, recorded)
            return Applied(self._applied(job, recorded), recorded, replayed=False)
        raise ConcurrentModification(
            f"too many concurrent writers on job {event.job_uuid}; retry", uuid=event.job_uuid
        )

    def _authorize(self, principal: Principal | None, job: JobRecord, event: Event) -> StoredToken | None:
        """Check the job token (or admin key) for this event; return the token used, to extend it."""
        admin_only = fsm.permission(event.name) is fsm.Permission.ADMIN
        if principal is not None and principal.is_admin:
            return None
        if not event.token:
            raise TokenRequired("this event needs the job's token (or an admin API key)", uuid=job.uuid)
        check = check_token(event.token, job.tokens, utc_now_ms())
        if check.matched is None:
            raise InvalidToken("the job token is not valid for this job", uuid=job.uuid)
        if check.expired:
            raise TokenExpired("the job token has expired; CreateJob issues a fresh one", uuid=job.uuid)
        if admin_only:
            raise AdminRequired(f"event '{event.name}' needs an admin credential", event=event.name)
        return check.matched

    async def _refuse(self, job: JobRecord, event: Event, decision: fsm.Decision) -> Applied:
        # A retry of an event that was applied (and moved the job on) must replay, not be refused.
        if event.idempotency_key:
            earlier = await self._jobs.event_by_key(job.uuid, event.idempotency_key)
            if earlier is not None:
                return await self._replay(job, event, earlier)
        await self._rejected.record(
            RejectedRecord(
                uuid=str(uuid_module.uuid4()),
                job_uuid=job.uuid,
                event=event.name,
                state=job.state,
                reason=InvalidTransition.reason,
                message=decision.reason,
                data=event.data,
                source=event.source,
                timestamp=utc_now_ms(),
            )
        )
        raise InvalidTransition(decision.reason, state=job.state, event=event.name)

    async def _replay(self, job: JobRecord, event: Event, earlier: RecordedEvent | None = None) -> Applied:
        earlier = earlier or await self._jobs.event_by_key(job.uuid, event.idempotency_key)
        if earlier is None:  # the key's event was deleted with a cancelled job
            raise JobNotFound(job.uuid)
        same = earlier.entry.name == event.name and canonical_json(earlier.entry.data) == canonical_json(
            event.data
        )
        if not same:
            raise IdempotencyConflict(
                "this idempotency key was already used for a different event or payload",
                uuid=job.uuid,
                idempotency_key=event.idempotency_key,
                seq=str(earlier.entry.seq),
            )
        return Applied(await self._settle(await self._load(job.uuid)), earlier, replayed=True)

    async def _after_lost_advance(self, job: JobRecord, recorded: RecordedEvent) -> None:
        """Our entry is in the log but the compare-and-set did not match: find out why."""
        current = await self._jobs.get(job.uuid)
        if current is None or current.cancelled:
            # CancelJob won the race: the entry must not outlive the job. Nothing was acknowledged.
            await self._jobs.delete_event(recorded.entry.uuid)
            raise JobNotFound(job.uuid)
        if current.seq < recorded.entry.seq:
            # Only the token part failed (the token was rotated out meanwhile); advance without it.
            await self._settle(current)
        # Otherwise a reader already rolled the record forward over our entry: it is applied.

    @staticmethod
    def _applied(job: JobRecord, recorded: RecordedEvent) -> JobRecord:
        entry = recorded.entry
        return replace(
            job,
            seq=entry.seq,
            state=entry.to_state,
            last_event=entry.name,
            head_hash=recorded.hash,
            updated_at=entry.timestamp,
            ever_running=job.ever_running or entry.to_state == "RUNNING",
        )

    # -- cancel ---------------------------------------------------------------------------------------

    async def cancel_job(self, principal: Principal | None, identity: str, token: str) -> None:
        validation.uuid_field(identity, "uuid")
        for _ in range(MAX_ATTEMPTS):
            job = await self._settle(await self._load(identity))
            self._authorize(principal, job, Event(identity, "update", token=token))
            if job.ever_running:
                raise CancelNotAllowed(
                    f"job {identity} has been RUNNING and cannot be cancelled; send 'fail' or 'retire'",
                    uuid=identity,
                    state=job.state,
                )
            if await self._jobs.mark_cancelled(job):
                await self._finish_cancel(job)
                return
        raise ConcurrentModification(f"job {identity} kept changing during cancel; retry", uuid=identity)

    async def _finish_cancel(self, job: JobRecord) -> None:
        await self._rejected.purge(job.uuid)
        await self._jobs.purge(job.uuid)

    # -- history --------------------------------------------------------------------------------------

    async def list_events(
        self, principal: Principal | None, identity: str, after_seq: int, limit: int
    ) -> list[RecordedEvent]:
        require(principal, Role.CLIENT)
        job = await self._settle(await self._load(validation.uuid_field(identity, "uuid")))
        return await self._jobs.events_after(job.uuid, after_seq, limit)

    async def verify(self, principal: Principal | None, identity: str) -> ChainCheck:
        """Recompute the hash chain and check that the record agrees with its last entry."""
        require(principal, Role.CLIENT)
        job = await self._settle(await self._load(validation.uuid_field(identity, "uuid")))
        last: RecordedEvent | None = None

        async def pairs() -> AsyncIterator[tuple[Entry, str]]:
            nonlocal last
            async for recorded in self._jobs.iter_events(job.uuid):
                last = recorded
                yield recorded.entry, recorded.hash

        check = await verify_chain_async(pairs())
        if not check.valid:
            return check
        if (
            last is None
            or last.entry.seq != job.seq
            or last.hash != job.head_hash
            or last.entry.to_state != job.state
        ):
            return ChainCheck(
                False, check.checked, job.seq, "the job record does not match its last history entry"
            )
        return check

    async def list_rejected(
        self, principal: Principal | None, identity: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[RejectedRecord]:
        if identity:
            require(principal, Role.CLIENT)
            validation.uuid_field(identity, "job_uuid")
        else:
            require(principal, Role.ADMIN)
        return await self._rejected.page(identity or None, after, limit)

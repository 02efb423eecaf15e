"""Creating, reading, cancelling and verifying jobs. Events are applied by events.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.clock import Clock
from pipelinejobs_server.domain.errors import (
    CancelNotAllowed,
    ConcurrentModification,
    InvalidArgument,
    JobNotFound,
    PipelineNotFound,
    TooManyTokens,
)
from pipelinejobs_server.domain.history import ChainCheck, Entry, verify_chain_async
from pipelinejobs_server.domain.identity import job_uuid, normalize_links
from pipelinejobs_server.domain.naming import archive_path, session_name
from pipelinejobs_server.domain.records import JobRecord, RecordedEntry, RejectedEvent
from pipelinejobs_server.domain.tokens import StoredToken, hash_secret, is_token_id, new_token
from pipelinejobs_server.settings import Settings
from pipelinejobs_server.storage.jobs import JobStore, TokenOutcome
from pipelinejobs_server.storage.pipelines import PipelineStore
from pipelinejobs_server.storage.rejected import RejectedStore

from . import paging, validation
from .credentials import Principal, Role, require
from .events import authorize, load_for_token
from .feed_relay import FeedRelay
from .settling import MAX_ATTEMPTS, RecordSettler


@dataclass(frozen=True)
class NewJob:
    pipeline_uuid: str
    links: Mapping[str, Sequence[str]]
    data: dict[str, Any]
    session: str = ""
    agent: str = ""
    task: str = ""


@dataclass(frozen=True)
class IssuedToken:
    secret: str  # shown to the caller once, never stored
    id: str  # non-secret: names the token for RevokeTokens
    expires_at: datetime
    callback_url: str  # carries the secret


@dataclass(frozen=True)
class CreatedJob:
    """The job, and the token issued with it: None when withheld (``may_mint``)."""

    job: JobRecord
    token: IssuedToken | None
    created: bool


def may_mint(principal: Principal, job: JobRecord) -> bool:
    """Whether a repeated CreateJob hands ``principal`` a fresh token for ``job``.

    Only the key that created the job, and admin keys: everyone with a client key can read a job's
    identity fields, so a token for anyone who repeats them would make every job's token any client's.
    A job created before creators were recorded (``creator`` empty) counts as created by nobody.
    """
    return principal.is_admin or (bool(job.creator) and job.creator == principal.key_id)


class Jobs:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        settler: RecordSettler,
        pipelines: PipelineStore,
        rejected: RejectedStore,
        clock: Clock,
        feed: FeedRelay | None = None,
    ) -> None:
        self._settings = settings
        self._feed = feed
        self._limits = settings.limits
        self._store = store
        self._settler = settler
        self._pipelines = pipelines
        self._rejected = rejected
        self._clock = clock

    # -- creation -----------------------------------------------------------------------------------

    async def create_job(self, principal: Principal | None, request: NewJob) -> CreatedJob:
        caller = require(principal, Role.CLIENT)
        links, data = self._checked(request)
        if await self._pipelines.get(request.pipeline_uuid) is None:
            raise PipelineNotFound(request.pipeline_uuid)
        identity = job_uuid(request.pipeline_uuid, links, data)
        token = new_token()
        now = self._clock.now()
        stored_token = StoredToken(hash_secret(token), now + self._settings.token_ttl)

        job = await self._store.get(identity)
        if job is not None and job.cancelled:
            await self._finish_cancel(job)  # a cancel that stopped half-way; the job is gone
            job = None
        created = False
        if job is None:
            fresh = self._fresh_record(identity, request, links, data, stored_token, now, caller)
            created = await self._store.insert(fresh)
            job = fresh if created else await self._store.get(identity)  # lost a race with another creator
        if job is None or job.cancelled:
            raise ConcurrentModification("the job is being cancelled; retry", uuid=identity)
        if not created:
            if not may_mint(caller, job):
                job = await self._settler.settle(job)
                return CreatedJob(job, None, created=False)
            await self._add_token(identity, stored_token, now)
        job = await self._settler.settle(job)
        issued = IssuedToken(
            token, stored_token.id, stored_token.expires_at, self.callback_url(identity, token)
        )
        return CreatedJob(job, issued, created)

    async def _add_token(self, identity: str, token: StoredToken, now: datetime) -> None:
        limit = self._limits.max_tokens_per_job
        outcome = await self._store.add_token(identity, token, limit=limit, now=now)
        if outcome is TokenOutcome.GONE:
            raise ConcurrentModification("the job is being cancelled; retry", uuid=identity)
        if outcome is TokenOutcome.FULL:
            raise TooManyTokens(
                f"job {identity} already holds {limit} live tokens, and live tokens are never pushed out: "
                "use one of them, wait until some expire (unused for the token lifetime), "
                "or have an admin revoke them (RevokeTokens)",
                uuid=identity,
                max_tokens=str(limit),
            )

    def _checked(self, request: NewJob) -> tuple[dict[str, list[str]], dict[str, Any]]:
        """The request's normalized links and data, after every field has been checked."""
        validation.uuid_field(request.pipeline_uuid, "pipeline_uuid")
        for kind, values in request.links.items():
            validation.link_count(values, kind)  # before sorting them: the count alone is cheap
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
        return links, data

    def _fresh_record(
        self,
        identity: str,
        request: NewJob,
        links: dict[str, list[str]],
        data: dict[str, Any],
        token: StoredToken,
        now: datetime,
        creator: Principal,
    ) -> JobRecord:
        """A new job at seq 0; the settler appends its ``create`` entry (seq 1) right after the insert."""
        session = request.session or session_name()
        path = archive_path(
            self._settings.archive_template,
            pipeline_uuid=request.pipeline_uuid,
            job_uuid=identity,
            links=links,
            session=session,
            created=now,
        )
        return JobRecord(
            uuid=identity,
            pipeline_uuid=request.pipeline_uuid,
            state=fsm.INITIAL_STATE,
            seq=0,
            links=links,
            data=data,
            archive_path=path,
            session=session,
            agent=request.agent,
            task=request.task,
            last_event="",
            head_hash="",
            created_at=now,
            updated_at=now,
            tokens=(token,),
            creator=creator.key_id,
        )

    def callback_url(self, identity: str, token: str) -> str:
        # ${STATUS} stays literal: the executor substitutes it, so it must not be percent-encoded.
        query = urlencode({"uuid": identity, "token": token})
        return f"{self._settings.public_url}/v1/callbacks/agave?{query}&status=${{STATUS}}"

    # -- reading ------------------------------------------------------------------------------------

    async def get_job(self, principal: Principal | None, identity: str) -> JobRecord:
        require(principal, Role.CLIENT)
        return await self._settler.settled(validation.uuid_field(identity, "uuid"))

    # -- cancel ---------------------------------------------------------------------------------------

    async def cancel_job(self, principal: Principal | None, identity: str, token: str) -> None:
        validation.uuid_field(identity, "uuid")
        for _ in range(MAX_ATTEMPTS):
            job = await load_for_token(self._settler, principal, identity, token, settle=True)
            authorize(principal, job, "update", token, self._clock.now())
            if job.ever_running:
                raise CancelNotAllowed(
                    f"job {identity} has been RUNNING and cannot be cancelled; send 'fail' or 'retire'",
                    uuid=identity,
                    state=job.state,
                )
            if await self._store.mark_cancelled(job):
                await self._finish_cancel(job)
                return
        raise ConcurrentModification(f"job {identity} kept changing during cancel; retry", uuid=identity)

    # -- tokens -------------------------------------------------------------------------------------

    async def revoke_tokens(
        self, principal: Principal | None, identity: str, token_id: str, all_tokens: bool
    ) -> int:
        """Remove one token of a job (by id) or all of them; how many were removed. Admin keys only."""
        validation.uuid_field(identity, "uuid")
        if bool(token_id) == all_tokens:
            raise InvalidArgument("give exactly one of token_id and all_tokens", field="token_id")
        if token_id and not is_token_id(token_id):
            raise InvalidArgument(
                "token_id must be 16 lower-case hex digits (CreateJobResponse.token_id)", field="token_id"
            )
        require(principal, Role.ADMIN)
        job = await self._settler.load(identity)
        digests = [t.digest for t in job.tokens if all_tokens or t.id == token_id]
        if digests and not await self._store.remove_tokens(identity, digests):
            raise JobNotFound(identity)  # cancelled meanwhile: its tokens are gone with it
        return len(digests)

    async def _finish_cancel(self, job: JobRecord) -> None:
        # First: while its record stands, a job whose cancel stopped before this is still counted.
        await self._store.counters.cancelled(job)
        if self._feed is not None:
            # Before the history goes: what the job did stays in the feed, and one entry says it ended.
            await self._feed.record_cancel(job)
        await self._rejected.purge(job.uuid)
        await self._store.purge(job.uuid)

    # -- history --------------------------------------------------------------------------------------

    async def list_entries(
        self, principal: Principal | None, identity: str, page_token: str, page_size: int
    ) -> paging.Page[RecordedEntry]:
        """One page of a job's history in seq order."""
        limit = paging.page_size(page_size, self._limits)
        listing = f"events:{identity}"
        after_seq = paging.decode_seq(listing, page_token)
        require(principal, Role.CLIENT)
        job = await self._settler.settled(validation.uuid_field(identity, "uuid"))
        entries = await self._store.entries_after(job.uuid, after_seq, limit)
        return paging.page(entries, limit, lambda last: paging.encode_seq(listing, last.entry.seq))

    async def verify(self, principal: Principal | None, identity: str) -> ChainCheck:
        """Recompute the hash chain and check that the record agrees with its last entry."""
        require(principal, Role.CLIENT)
        job = await self._settler.settled(validation.uuid_field(identity, "uuid"))
        last: RecordedEntry | None = None

        async def pairs() -> AsyncIterator[tuple[Entry, str]]:
            nonlocal last
            async for recorded in self._store.iter_entries(job.uuid):
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
        self, principal: Principal | None, identity: str, page_token: str, page_size: int
    ) -> paging.Page[RejectedEvent]:
        """One page of the rejected events of one job (client keys) or of all jobs (admin keys)."""
        limit = paging.page_size(page_size, self._limits)
        listing = f"rejected:{identity}"
        after = paging.decode_moment(listing, page_token)
        if identity:
            require(principal, Role.CLIENT)
            validation.uuid_field(identity, "job_uuid")
        else:
            require(principal, Role.ADMIN)
        records = await self._rejected.page(identity or None, after, limit)
        return paging.page(
            records, limit, lambda last: paging.encode_moment(listing, last.timestamp, last.uuid)
        )

"""Applying events to jobs: the only code path that changes a job's state.

An event reads its record, asks the state machine, appends the entry to the history under the unique
(job_uuid, seq) index and then advances the record with a compare-and-set (ADR 003). Losing a race for a
seq means another writer got there first: settle the record and decide again, from the new state.

Concurrent ``send`` calls in one process are written together (group commit, DESIGN §6a, ADR 013): the
events that arrived while the previous batch was being written are decided in arrival order against
their records, read in one query, several events of one job chained seq after seq in memory; the entries
go in one ``insert_many`` and the records advance in one ``bulk_write``. Whatever the batch cannot
settle by itself (a refusal, which must be checked against a settled record; a job being created or not
found; an idempotency key already used in the batch; a lost race) is handed to the one-event path
(``_send_one``) after the batch's write, which decides it from the settled record as before. Nothing is
held between batches; any number of replicas may run side by side.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid as uuid_module
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.canonical import canonical_json
from pipelinejobs_server.domain.clock import Clock
from pipelinejobs_server.domain.errors import (
    AdminRequired,
    ConcurrentModification,
    IdempotencyConflict,
    InvalidArgument,
    InvalidToken,
    InvalidTransition,
    JobNotFound,
    PipelineJobsError,
    TokenExpired,
    TokenRequired,
)
from pipelinejobs_server.domain.records import JobRecord, RecordedEntry, RejectedEvent
from pipelinejobs_server.domain.tokens import StoredToken, check_token
from pipelinejobs_server.domain.truncation import truncated
from pipelinejobs_server.settings import Settings
from pipelinejobs_server.storage.jobs import Advance, AppendOutcome, JobStore
from pipelinejobs_server.storage.rejected import RejectedStore

from . import validation
from .batching import GroupCommit, Pending
from .credentials import Principal
from .settling import MAX_ATTEMPTS, RecordSettler

SOURCES = ("grpc", "callback", "admin")

log = logging.getLogger("pipelinejobs.auth")


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
    event: RecordedEntry
    replayed: bool


@dataclass(frozen=True)
class _Request:
    principal: Principal | None
    event: Event


_Waiting = Pending[_Request, Applied]


@dataclass
class _Chain:
    """One job's events in a batch: the record as read, then each event with the record after it."""

    job: JobRecord | None
    links: list[tuple[_Waiting, RecordedEntry, JobRecord]] = field(default_factory=list)
    token: StoredToken | None = None  # the one token the chain's events were sent with, if any
    # Events refused on the record after the first ``n`` links: final once those are written.
    refusals: list[tuple[int, _Waiting, fsm.Decision]] = field(default_factory=list)
    # Closed: this job's later events in the batch go to the one-event path (``later``), in order.
    closed: bool = False
    later: list[_Waiting] = field(default_factory=list)
    written: int = 0  # how many links the database took
    failed: bool = False  # the written links failed after all (the job was cancelled meanwhile)

    @property
    def head(self) -> JobRecord:
        if self.links:
            return self.links[-1][2]
        assert self.job is not None  # only called for a job that exists
        return self.job

    def close(self, waiting: _Waiting) -> None:
        self.closed = True
        self.later.append(waiting)


def _jitter(attempt: int) -> float:
    # Spread competing writers apart so that a hot job converges instead of livelocking.
    return random.uniform(0, min(0.002 * 2**attempt, 0.05))  # noqa: S311 - not security related


def _token_required(identity: str) -> TokenRequired:
    return TokenRequired("this event needs the job's token (or an admin API key)", uuid=identity)


async def load_for_token(
    settler: RecordSettler, principal: Principal | None, identity: str, token: str, *, settle: bool = False
) -> JobRecord:
    """The job a token-authorized call (SendEvent, CancelJob, RejectEvent) is about.

    A caller with no API key learns nothing about whether a job exists: without a token it hears
    TOKEN_REQUIRED and with one INVALID_TOKEN, exactly as for a job that exists (job uuids are uuid5
    of guessable inputs, so NOT_FOUND would tell an outsider which guesses are real jobs). A caller
    with an API key may read every job anyway, so it gets the precise JOB_NOT_FOUND.
    """
    if principal is None and not token:
        raise _token_required(identity)
    try:
        return await (settler.settled(identity) if settle else settler.load(identity))
    except JobNotFound:
        if principal is None:
            # The caller hears INVALID_TOKEN; the operator reading the log hears the truth.
            log.info("job %s not found; answered INVALID_TOKEN to a caller without an API key", identity)
            raise InvalidToken.for_job(identity) from None
        raise


def authorize(
    principal: Principal | None, job: JobRecord, event_name: str, token: str, now: datetime
) -> StoredToken | None:
    """Check the job token (or admin key) for an event; return the token used, so it can be extended."""
    if principal is not None and principal.is_admin:
        return None
    if not token:
        raise _token_required(job.uuid)
    check = check_token(token, job.tokens, now)
    if check.matched is None:
        raise InvalidToken.for_job(job.uuid)
    if check.expired:
        raise TokenExpired("the job token has expired; CreateJob issues a fresh one", uuid=job.uuid)
    if fsm.permission(event_name) is fsm.Permission.ADMIN:
        raise AdminRequired(f"event '{event_name}' needs an admin credential", event=event_name)
    return check.matched


class Events:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        settler: RecordSettler,
        rejected: RejectedStore,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._limits = settings.limits
        self._store = store
        self._settler = settler
        self._rejected = rejected
        self._clock = clock
        self._group: GroupCommit[_Request, Applied] = GroupCommit(
            self._write_batch,
            max_batch=self._limits.max_event_batch,
            max_queued=self._limits.max_queued_events,
            in_flight=self._limits.event_batches_in_flight,
            gather_s=self._limits.event_batch_gather_ms / 1000,
        )
        self._handed_over: set[asyncio.Task[None]] = set()

    @property
    def batches(self) -> GroupCommit[_Request, Applied]:
        return self._group

    def _checked(self, principal: Principal | None, event: Event) -> Event:
        """The event with its fields validated and its source decided."""
        validation.uuid_field(event.job_uuid, "uuid")
        validation.event_name(event.name)
        validation.idempotency_key(event.idempotency_key)
        return self._checked_payload(principal, event)

    def _checked_payload(self, principal: Principal | None, event: Event) -> Event:
        """The event with its data checked against the limits and its source decided."""
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
        return replace(event, source=source)

    async def reject(
        self, principal: Principal | None, event: Event, *, reason: str, message: str
    ) -> RejectedEvent:
        """Keep an event the caller could not deliver (an unmapped executor status) in the rejected log."""
        validation.uuid_field(event.job_uuid, "uuid")
        validation.text(event.name, "event", required=True, max_length=128)
        validation.reason_code(reason)
        validation.text(message, "message", max_length=1024)
        event = self._checked_payload(principal, event)
        job = await load_for_token(self._settler, principal, event.job_uuid, event.token)
        authorize(principal, job, "update", event.token, self._clock.now())
        record = self._rejection(job, event, reason, message or reason)
        await self._rejected.record(record)
        return record

    def _rejection(self, job: JobRecord, event: Event, reason: str, message: str) -> RejectedEvent:
        return RejectedEvent(
            uuid=str(uuid_module.uuid4()),
            job_uuid=job.uuid,
            event=event.name,
            state=job.state,
            reason=reason,
            message=message,
            # Refused, so not applied: the log keeps the payload only up to a size (ADR 011).
            data=truncated(event.data, self._limits.max_rejected_data_bytes),
            source=event.source,
            timestamp=self._clock.now(),
        )

    async def send(self, principal: Principal | None, event: Event) -> Applied:
        # Validation fails this caller alone, before its event joins a batch.
        event = self._checked(principal, event)
        return await self._group.submit(_Request(principal, event), key=event.job_uuid)

    async def _write_batch(self, batch: Sequence[_Waiting]) -> None:
        records = await self._store.get_many(list(dict.fromkeys(w.item.event.job_uuid for w in batch)))
        chains: dict[str, _Chain] = {}
        keys: set[tuple[str, str]] = set()
        replays: list[_Waiting] = []  # a key applied earlier in this batch: replayed once that is written
        for waiting in batch:
            self._decide(waiting, records, chains, keys, replays)
        arrival = {id(waiting): position for position, waiting in enumerate(batch)}
        chained = [chain for chain in chains.values() if chain.links]
        flat = sorted(
            (link for chain in chained for link in chain.links), key=lambda link: arrival[id(link[0])]
        )  # a job's entries stay in seq order
        appended = await self._store.append_chains([(entry.entry, entry.hash) for _, entry, _ in flat])
        outcomes = {id(link[0]): outcome for link, outcome in zip(flat, appended, strict=True)}
        for chain in chained:
            while (
                chain.written < len(chain.links)
                and outcomes[id(chain.links[chain.written][0])] is AppendOutcome.APPENDED
            ):
                chain.written += 1
        advancing = [chain for chain in chained if chain.written]
        moved = await self._store.advance_many([self._advance(chain) for chain in advancing])
        for chain, ok in zip(advancing, moved, strict=True):
            await self._settle_chain(chain, ok)
        for chain in chains.values():
            self._finish_chain(chain, arrival)
        for waiting in replays:
            self._hand_over([waiting])

    def _decide(
        self,
        waiting: _Waiting,
        records: dict[str, JobRecord],
        chains: dict[str, _Chain],
        keys: set[tuple[str, str]],
        replays: list[_Waiting],
    ) -> None:
        """Decide one event against its job's record as this batch has left it so far.

        What the batch cannot decide by itself closes the job's chain: that event and the job's later
        ones in the batch go to the one-event path after the write, in arrival order.
        """
        principal, event = waiting.item.principal, waiting.item.event
        record = records.get(event.job_uuid)
        chain = chains.setdefault(event.job_uuid, _Chain(record))
        if chain.closed or record is None or record.cancelled or record.seq == 0:
            # Not found (answered as the one-event path answers it), or still being created.
            chain.close(waiting)
            return
        job = chain.head
        now = self._clock.now()
        try:
            token = authorize(principal, job, event.name, event.token, now)
        except PipelineJobsError as error:
            waiting.fail(error)
            return
        key = (job.uuid, event.idempotency_key)
        if event.idempotency_key and key in keys:
            replays.append(waiting)
            return
        decision = fsm.decide(job.state, event.name)
        if not decision:
            if chain.links:  # refused on what this batch's earlier events leave: final once they are written
                chain.refusals.append((len(chain.links), waiting, decision))
            else:  # the stored record may be behind its history: refuse only on the settled one (ADR 003)
                chain.close(waiting)
            return
        if token is not None and chain.token is not None and token.digest != chain.token.digest:
            chain.close(waiting)  # one compare-and-set extends one token
            return
        entry = job.next_entry(
            event.name,
            decision.to_state,
            uuid=str(uuid_module.uuid4()),
            timestamp=now,
            data=event.data,
            source=event.source,
            idempotency_key=event.idempotency_key,
        )
        recorded = RecordedEntry.of(entry)
        chain.links.append((waiting, recorded, job.advanced([recorded])))
        chain.token = token or chain.token
        if event.idempotency_key:
            keys.add(key)

    def _advance(self, chain: _Chain) -> Advance:
        assert chain.job is not None  # a chain with entries has a record
        entries = [entry for _, entry, _ in chain.links[: chain.written]]
        token = chain.token
        if token is not None:
            token = token._replace(expires_at=entries[-1].entry.timestamp + self._settings.token_ttl)
        return Advance(chain.job, entries, token)

    async def _settle_chain(self, chain: _Chain, advanced: bool) -> None:
        """Answer the callers whose entries were written, once their record stands past them."""
        assert chain.job is not None  # a chain with entries has a record
        links = chain.links[: chain.written]
        try:
            if not advanced:
                await self._after_lost_advance(chain.job, [entry for _, entry, _ in links])
        except PipelineJobsError as error:
            for waiting, _, _ in links:
                waiting.fail(error)
            chain.failed = True
            return
        for waiting, entry, after in links:
            waiting.answer(Applied(after, entry, replayed=False))

    def _finish_chain(self, chain: _Chain, arrival: dict[int, int]) -> None:
        """Hand what the batch did not answer to the one-event path: refusals on written entries are
        given on the record those entries left; the rest is decided again, in arrival order."""
        again = [waiting for waiting, _, _ in chain.links[chain.written :]] + chain.later
        for position, waiting, decision in chain.refusals:
            if position <= chain.written and not chain.failed:
                self._hand_over_refusal(waiting, chain.links[position - 1][2], decision)
            else:
                again.append(waiting)
        if again:
            self._hand_over(sorted(again, key=lambda waiting: arrival[id(waiting)]))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._handed_over.add(task)
        task.add_done_callback(self._handed_over.discard)

    def _hand_over(self, sequence: Sequence[_Waiting]) -> None:
        """Run one job's events on the one-event path, one after the other, beside the next batches."""
        self._group.stats.handed_over += len(sequence)

        async def run() -> None:
            for waiting in sequence:
                try:
                    waiting.answer(await self._send_one(waiting.item.principal, waiting.item.event))
                except Exception as error:  # the caller turns it into its status
                    waiting.fail(error)

        self._spawn(run())

    def _hand_over_refusal(self, waiting: _Waiting, job: JobRecord, decision: fsm.Decision) -> None:
        async def run() -> None:
            try:
                waiting.answer(await self._refuse(job, waiting.item.event, decision))
            except Exception as error:  # InvalidTransition, or a replay's conflict
                waiting.fail(error)

        self._spawn(run())

    async def _send_one(self, principal: Principal | None, event: Event) -> Applied:
        for attempt in range(MAX_ATTEMPTS):
            job = await load_for_token(self._settler, principal, event.job_uuid, event.token)
            if job.seq == 0:
                await self._settler.settle(job)
                continue
            now = self._clock.now()
            token = authorize(principal, job, event.name, event.token, now)
            decision = fsm.decide(job.state, event.name)
            if not decision:
                # The record may be behind its history (a writer died, or is between its append and its
                # compare-and-set): decide again on the settled record before refusing.
                settled = await self._settler.settle(job)
                if settled.seq != job.seq:
                    continue
                return await self._refuse(job, event, decision)
            entry = job.next_entry(
                event.name,
                decision.to_state,
                uuid=str(uuid_module.uuid4()),
                timestamp=now,
                data=event.data,
                source=event.source,
                idempotency_key=event.idempotency_key,
            )
            recorded = RecordedEntry.of(entry)
            outcome = await self._store.append(entry, recorded.hash)
            if outcome is AppendOutcome.KEY_TAKEN:
                return await self._replay(job, event)
            if outcome is AppendOutcome.SEQ_TAKEN:
                # Someone else holds this seq (alive, or crashed before advancing): catch up, decide again.
                await self._settler.settle(job)
                await asyncio.sleep(_jitter(attempt))
                continue
            if token is not None:
                token = token._replace(expires_at=entry.timestamp + self._settings.token_ttl)
            if not await self._store.advance(job, [recorded], token=token):
                await self._after_lost_advance(job, [recorded])
            return Applied(job.advanced([recorded]), recorded, replayed=False)
        raise ConcurrentModification(
            f"too many concurrent writers on job {event.job_uuid}; retry", uuid=event.job_uuid
        )

    async def _refuse(self, job: JobRecord, event: Event, decision: fsm.Decision) -> Applied:
        # A retry of an event that was applied (and moved the job on) must replay, not be refused.
        if event.idempotency_key:
            earlier = await self._store.entry_by_key(job.uuid, event.idempotency_key)
            if earlier is not None:
                return await self._replay(job, event, earlier)
        await self._rejected.record(self._rejection(job, event, InvalidTransition.reason, decision.reason))
        raise InvalidTransition(decision.reason, state=job.state, event=event.name)

    async def _replay(self, job: JobRecord, event: Event, earlier: RecordedEntry | None = None) -> Applied:
        earlier = earlier or await self._store.entry_by_key(job.uuid, event.idempotency_key)
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
        # A late duplicate changes nothing, but it is kept: operators see what arrived twice.
        await self._rejected.record(
            self._rejection(
                job, event, "DUPLICATE", f"idempotency key already applied at seq {earlier.entry.seq}"
            )
        )
        return Applied(await self._settler.settled(job.uuid), earlier, replayed=True)

    async def _after_lost_advance(self, job: JobRecord, entries: Sequence[RecordedEntry]) -> None:
        """Our entries are in the history but the compare-and-set did not match: find out why."""
        current = await self._store.get(job.uuid)
        if current is None or current.cancelled:
            # CancelJob won the race: the entries must not outlive the job. Nothing was acknowledged.
            for recorded in entries:
                await self._store.delete_entry(recorded.entry.uuid)
            raise JobNotFound(job.uuid)
        if current.seq < entries[-1].entry.seq:
            # Only the token part failed (the token was rotated out meanwhile); advance without it.
            await self._settler.settle(current)
        # Otherwise a reader already rolled the record forward over our entry: it is applied.

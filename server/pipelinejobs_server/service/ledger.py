"""A job record and its log, brought level: the one place that reads records for the service.

The log (``job_events``) is written first and the record advanced after it, so a record may be behind its
log: by a writer that died between its two writes, or one that is between them right now. ``settle``
rolls the record forward over the contiguous entries it is missing, from any replica, at any time; the
compare-and-set in storage makes concurrent settlers harmless.
"""

from __future__ import annotations

import uuid as uuid_module

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.errors import ConcurrentModification, JobNotFound
from pipelinejobs_server.domain.history import Entry
from pipelinejobs_server.domain.records import JobRecord, RecordedEvent
from pipelinejobs_server.storage.jobs import AppendOutcome, JobStore

MAX_ATTEMPTS = 64
BATCH = 1000


def contiguous(seq: int, events: list[RecordedEvent]) -> list[RecordedEvent]:
    """The run of ``events`` that continues a record at ``seq`` without a gap."""
    run: list[RecordedEvent] = []
    for event in events:
        if event.entry.seq != seq + len(run) + 1:
            break
        run.append(event)
    return run


class Ledger:
    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs

    async def load(self, identity: str) -> JobRecord:
        """The record as stored; a missing or cancelled job is not found."""
        job = await self.jobs.get(identity)
        if job is None or job.cancelled:
            raise JobNotFound(identity)
        return job

    async def settled(self, identity: str) -> JobRecord:
        return await self.settle(await self.load(identity))

    async def settle(self, job: JobRecord) -> JobRecord:
        """Bring a record level with its log: finish creation, roll forward what a crash left behind."""
        for _ in range(MAX_ATTEMPTS):
            if job.seq == 0:
                job = await self._append_creation(job)
                continue
            behind = contiguous(job.seq, await self.jobs.events_after(job.uuid, job.seq, BATCH))
            if not behind:
                return job
            await self.jobs.advance(job, behind)
            job = await self.load(job.uuid)
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
        if await self.jobs.append(entry, recorded.hash) is AppendOutcome.APPENDED:
            await self.jobs.advance(job, [recorded])
        else:  # a concurrent creator wrote seq 1: roll forward to it
            await self.jobs.advance(job, await self.jobs.events_after(job.uuid, 0, 1))
        return await self.load(job.uuid)

"""A job record brought level with its history: the one place that reads records for the service.

The history (``job_events``) is written first and the record advanced after it (ADR 003), so a record
may be behind its history: by a writer that died between its two writes, or one that is between them
right now. ``settle`` rolls the record forward over the contiguous entries it is missing, from any
replica, at any time; the compare-and-set in storage makes concurrent settlers harmless.
"""

from __future__ import annotations

import uuid as uuid_module

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.errors import ConcurrentModification, JobNotFound
from pipelinejobs_server.domain.records import JobRecord, RecordedEntry
from pipelinejobs_server.storage.jobs import AppendOutcome, JobStore

MAX_ATTEMPTS = 64
BATCH = 1000


def contiguous(seq: int, entries: list[RecordedEntry]) -> list[RecordedEntry]:
    """The run of ``entries`` that continues a record at ``seq`` without a gap."""
    run: list[RecordedEntry] = []
    for recorded in entries:
        if recorded.entry.seq != seq + len(run) + 1:
            break
        run.append(recorded)
    return run


class RecordSettler:
    def __init__(self, store: JobStore) -> None:
        self._store = store

    async def load(self, identity: str) -> JobRecord:
        """The record as stored; a missing or cancelled job is not found."""
        job = await self._store.get(identity)
        if job is None or job.cancelled:
            raise JobNotFound(identity)
        return job

    async def settled(self, identity: str) -> JobRecord:
        return await self.settle(await self.load(identity))

    async def settle(self, job: JobRecord) -> JobRecord:
        """Bring a record level with its history: finish creation, roll forward what a crash left behind."""
        for _ in range(MAX_ATTEMPTS):
            if job.seq == 0:
                job = await self._append_creation(job)
                continue
            behind = contiguous(job.seq, await self._store.entries_after(job.uuid, job.seq, BATCH))
            if not behind:
                return job
            await self._store.advance(job, behind)
            job = await self.load(job.uuid)
        raise ConcurrentModification("the job kept changing while it was being read", uuid=job.uuid)

    async def _append_creation(self, job: JobRecord) -> JobRecord:
        entry = job.next_entry(
            fsm.CREATE_EVENT,
            fsm.INITIAL_STATE,
            uuid=str(uuid_module.uuid4()),
            timestamp=job.created_at,
            data={},
            source="grpc",
        )
        recorded = RecordedEntry.of(entry)
        if await self._store.append(entry, recorded.hash) is AppendOutcome.APPENDED:
            await self._store.advance(job, [recorded])
        else:  # a concurrent creator wrote seq 1: roll forward to it
            await self._store.advance(job, await self._store.entries_after(job.uuid, 0, 1))
        return await self.load(job.uuid)

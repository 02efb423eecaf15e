"""The relay: copies accepted history entries into the feed, in an order every reader can trust (ADR 015).

Writers do not touch the feed. The relay finds the entries it has not fed (service/feed_finding.py: on the
history's change stream, or by the writers' marks on a database without one), feeds the ones that were
**accepted** — their job record was advanced over them (``seq`` at least theirs), which is what an
acknowledged event is (ADR 003) — at the next positions. One replica relays at a time, by a lease in the
database; the others wait their turn. The lease only saves work: correctness comes from the feed's
unique indexes (storage/feed.py), so a relay whose lease ran out while it was paused can do no harm, and
CancelJob feeds through the same code.

Order: positions are taken in the relay's order, so an entry committed late (a writer that took longer
between its insert and its commit than another) simply gets a later position; a reader at position P
never finds an entry before P later. A job's entries are fed in seq order: the finder hands out each
job's entries from its next one on, and the relay feeds them up to the first that is not accepted yet.

An entry whose record was not advanced over it is either in flight (its writer is between its two
writes), left behind by a writer that died (rolled forward here after ``STUCK_S``, as any reader would),
or refused after the fact (its writer lost a race with CancelJob and deletes it): never fed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import uuid as uuid_module
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta

from pipelinejobs_server.domain.clock import Clock
from pipelinejobs_server.domain.errors import ConcurrentModification, NotFound, PipelineJobsError
from pipelinejobs_server.domain.feed import CANCELLED, EVENT, FeedEntry
from pipelinejobs_server.domain.records import JobRecord, RecordedEntry
from pipelinejobs_server.domain.tokens import StoredToken
from pipelinejobs_server.stopping import pause
from pipelinejobs_server.storage.database import Database, Document
from pipelinejobs_server.storage.documents import event_from_document
from pipelinejobs_server.storage.feed import PENDING, FeedStore, JobFacts, PositionTaken
from pipelinejobs_server.storage.history_stream import HistoryLost
from pipelinejobs_server.storage.jobs import Advance, JobStore

from .feed_finding import BATCH, Finder, MarkedEntries, StreamedEntries
from .settling import RecordSettler

log = logging.getLogger("pipelinejobs.feed")

STUCK_S = 2.0  # an entry its record has not covered for this long: its writer died; roll it forward
LEASE_S = 6.0  # a relay that stops renewing is replaced this long after its last renewal, at most
RENEW_S = 2.0  # how often the holder renews, and how often the others try to take over
PRUNE_S = 60.0  # how often the holder deletes what passed the retention
COALESCE_S = 0.01  # after a wake-up, wait this long for more: fewer, larger rounds
COALESCE_BUSY_S = 0.04  # ... and this long after a round of BUSY_ROUND entries or more
BUSY_ROUND = 4
# A relay whose rounds keep failing waits longer after each, up to this: every try against a database
# that does not answer (one building an index on the embedded database blocks every other request) left
# a request and its connection behind, and at one try per poll they filled its 1,000 connections.
FAILING_PAUSE_MAX_S = 5.0
REMEMBERED_JOBS = 10_000  # jobs whose records this relay knows without reading them
CANCELLED_NAMESPACE = uuid_module.UUID("5b0c6c1e-77c4-4d2e-9a57-2f3e0d0b6a15")


def fed_entry(document: Document, facts: JobFacts, now: datetime) -> FeedEntry:
    """A history document as the feed holds it, before its position is taken (also bench/feed_floor.py)."""
    recorded = event_from_document(document)
    entry = recorded.entry
    return FeedEntry(
        position=0,
        kind=EVENT,
        uuid=entry.uuid,
        job_uuid=entry.job_uuid,
        pipeline_uuid=facts.pipeline_uuid,
        links=facts.links,
        seq=entry.seq,
        name=entry.name,
        from_state=entry.from_state,
        to_state=entry.to_state,
        timestamp=entry.timestamp,
        data=entry.data,
        source=entry.source,
        hash=recorded.hash,
        fed_at=now,
    )


def failing_pause(poll_s: float, failures: int) -> float:
    """The pause after ``failures`` failed rounds in a row: the poll, doubled after each, at most
    ``FAILING_PAUSE_MAX_S``."""
    return min(poll_s * float(2 ** min(failures - 1, 30)), FAILING_PAUSE_MAX_S)


def cancelled_entry(job: JobRecord, now: datetime) -> FeedEntry:
    """The one entry a cancelled job leaves: its uuid is derived from the job's last entry, so feeding it
    again (a cancel that stopped half-way and is finished later) finds it fed already."""
    return FeedEntry(
        position=0,
        kind=CANCELLED,
        uuid=str(uuid_module.uuid5(CANCELLED_NAMESPACE, f"{job.uuid}:{job.seq}:{job.head_hash}")),
        job_uuid=job.uuid,
        pipeline_uuid=job.pipeline_uuid,
        links=job.links,
        seq=job.seq,
        name="",
        from_state=job.state,
        to_state="",
        timestamp=now,
        data={},
        source="",
        hash="",
        fed_at=now,
    )


def _facts(job: JobRecord) -> JobFacts:
    return JobFacts(job.seq, job.state, job.cancelled, job.pipeline_uuid, job.links)


class FeedRelay:
    def __init__(
        self,
        store: FeedStore,
        settler: RecordSettler,
        clock: Clock,
        *,
        retention: timedelta,
        poll_s: float,
        on_fed: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._settler = settler
        self._clock = clock
        self._retention = retention
        self._poll_s = poll_s
        self._on_fed = on_fed
        self._holder = secrets.token_hex(8)
        self._stopping = asyncio.Event()
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.holding = False
        self._failures = 0  # rounds failed in a row
        # Until a round went through cleanly: the head may be behind what was taken, and entries marked
        # pending may be fed already (a feeder died, or lost its answers, between its writes).
        self._suspect = True
        self._head: int | None = None
        self._finder: Finder | None = None  # chosen at the first round, from what the database offers
        # What this process's writers (and this relay's reads) learned of job records: a job's pipeline
        # and links never change, and its seq only grows, so a record known to cover an entry still does.
        self._known: OrderedDict[str, JobFacts] = OrderedDict()

    def poke(self) -> None:
        """A record was advanced in this process: relay now rather than at the next poll."""
        self._woken.set()

    def advanced(self, job: JobRecord, entries: Sequence[RecordedEntry]) -> None:
        """This process's writer moved ``job``'s record (as it read it) over ``entries``: they are
        accepted, which the relay then knows without reading the record. Relay now."""
        last = entries[-1].entry
        self._remember(job.uuid, JobFacts(last.seq, last.to_state, False, job.pipeline_uuid, job.links))
        self._woken.set()

    def _remember(self, job_uuid: str, facts: JobFacts) -> None:
        known = self._known.get(job_uuid)
        if known is None or known.seq < facts.seq:
            self._known[job_uuid] = facts
        self._known.move_to_end(job_uuid)
        while len(self._known) > REMEMBERED_JOBS:
            self._known.popitem(last=False)

    async def _records_of(self, by_job: dict[str, list[Document]]) -> dict[str, JobFacts]:
        """The records of these jobs, as far as the entries waiting need them: read only for the jobs
        not known to cover all of theirs (one of another replica's writers, or one in flight)."""
        facts: dict[str, JobFacts] = {}
        for job_uuid, entries in by_job.items():
            known = self._known.get(job_uuid)
            if known is not None and known.seq >= max(int(document["seq"]) for document in entries):
                facts[job_uuid] = known
        unknown = [job_uuid for job_uuid in by_job if job_uuid not in facts]
        if unknown:
            read = await self._store.job_facts(unknown)
            for job_uuid, job in read.items():
                self._remember(job_uuid, job)
            facts.update(read)
        return facts

    # -- one round ------------------------------------------------------------------------------------

    async def relay_once(self) -> int:
        """Feed what is ready now; how many entries were fed (0 also when another feeder got in first)."""
        # A round that failed after its insert (its answer lost) left the head behind: readers read only
        # up to the head, so it is caught up first, whether or not there is anything new to feed.
        if self._suspect:
            self._head = await self._store.repair_head()
        finder = await self._found_by()
        if not finder.opened:
            self._suspect = True  # what follows the stored point may have been fed after it was stored
            await finder.open()
        documents = await finder.waiting()
        if not documents:
            self._suspect = False  # the head is repaired and nothing waiting can have been fed already
            return 0
        by_job: dict[str, list[Document]] = defaultdict(list)
        for document in documents:
            by_job[document["job_uuid"]].append(document)
        facts = await self._records_of(by_job)
        now = self._clock.now()
        ready: list[FeedEntry] = []
        orphans: list[str] = []
        stuck: list[str] = []
        for job_uuid, entries in by_job.items():
            entries.sort(key=lambda document: int(document["seq"]))
            job = facts.get(job_uuid)
            if job is None:  # the record is gone: a cancelled job's leftovers, never accepted
                orphans.extend(document["_id"] for document in entries)
                continue
            expected = entries[0]["seq"]
            for document in entries:
                if document["seq"] != expected:
                    break  # a gap in what this read saw: the rest waits for the next round
                if document["seq"] > job.seq:
                    age = (now - event_from_document(document).entry.timestamp).total_seconds()
                    if not job.cancelled and age > STUCK_S:
                        stuck.append(job_uuid)
                    break
                ready.append(fed_entry(document, job, now))
                expected += 1
        marked = {document["_id"] for document in documents if PENDING in document}
        finder.forget((), orphans)
        await self._store.mark_fed([uuid for uuid in orphans if uuid in marked])
        fed = await self._feed(finder, ready, marked)
        for job_uuid in stuck:
            with contextlib.suppress(NotFound):
                await self._settler.settled(job_uuid)  # its entries are fed in the next round
        return fed

    async def _found_by(self) -> Finder:
        if self._finder is None:
            streams = await self._store.follows_stream()
            self._finder = StreamedEntries(self._store) if streams else MarkedEntries(self._store)
        return self._finder

    async def _feed(self, finder: Finder, entries: list[FeedEntry], marked: Collection[str]) -> int:
        if not entries:
            return 0
        new = entries
        if self._suspect:
            already = await self._store.fed([entry.uuid for entry in entries])
            new = [entry for entry in entries if entry.uuid not in already]
        resume = finder.resume_point({entry.uuid for entry in entries})
        if new:
            try:
                self._suspect = True  # until the insert's answer is in
                # Not suspect: the head is the one this relay took last. Had another feeder taken
                # positions since, the insert fails on the unique position and the next round repairs.
                placed = await self._store.append(
                    new, known_head=self._head, trusted=not self._suspect, resume=resume
                )
            except PositionTaken:
                return 0  # someone else fed meanwhile (or these were fed): the next round sorts it out
            self._head = placed[-1].position
            if resume is not None:
                finder.stored(resume)
        finder.forget(entries, ())
        await self._store.mark_fed([entry.uuid for entry in entries if entry.uuid in marked])
        self._suspect = False
        self._on_fed()
        return len(new)

    async def _close_finder(self) -> None:
        if self._finder is not None:
            await self._finder.close()
        self._suspect = True

    async def _failed(self, message: str, level: int, *, exc_info: bool = False) -> None:
        """A round failed: start again from what the database holds, after a pause that grows while the
        rounds keep failing. Said once, not at every try; the rest go to the debug log."""
        await self._close_finder()
        self._failures += 1
        log.log(level if self._failures == 1 else logging.DEBUG, message, exc_info=exc_info)
        await pause(self._stopping, failing_pause(self._poll_s, self._failures))

    async def record_cancel(self, job: JobRecord) -> None:
        """Before a cancelled job's history is deleted: feed its accepted entries that are not fed yet,
        then its ``cancelled`` entry. ``job`` is the record as the cancel marked it."""
        for attempt in range(64):
            history = await self._store.entries_of(job.uuid)
            facts, now = _facts(job), self._clock.now()
            entries = [fed_entry(document, facts, now) for document in history if document["seq"] <= job.seq]
            entries.append(cancelled_entry(job, now))
            already = await self._store.fed([entry.uuid for entry in entries])
            new = [entry for entry in entries if entry.uuid not in already]
            try:
                if new:
                    await self._store.append(new)
            except PositionTaken:
                await asyncio.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.05)))  # noqa: S311
                continue
            await self._store.mark_fed([document["_id"] for document in history if PENDING in document])
            self._on_fed()
            return
        raise ConcurrentModification("the feed kept changing while the cancel was recorded", uuid=job.uuid)

    # -- the loop -------------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="feed-relay")

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def stop(self) -> None:
        """Stop after the current round (the server's stop waits on ``task`` with its own deadline)."""
        self._stopping.set()
        self._woken.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        renew_at = prune_at = loop.time()
        while not self._stopping.is_set():
            fed = 0
            try:
                if loop.time() >= renew_at:
                    now = datetime.now(UTC)  # the lease is in real time, whatever clock the service reads
                    self.holding = await self._store.hold_lease(
                        self._holder, now, now + timedelta(seconds=LEASE_S)
                    )
                    renew_at = loop.time() + RENEW_S
                    if self.holding and self._finder is not None:
                        await self._finder.save_point()
                    elif not self.holding:
                        await self._close_finder()  # another replica relays now
                if self.holding:
                    fed = await self.relay_once()
                    if loop.time() >= prune_at:
                        await self._store.prune(self._clock.now() - self._retention)
                        prune_at = loop.time() + PRUNE_S
            except PipelineJobsError as error:
                await self._failed(f"feed relay: {error.message}; trying again", logging.WARNING)
                continue
            except HistoryLost as error:
                await self._close_finder()
                log.error("feed relay: the history's stream cannot resume (%s)", error)
            except Exception:
                await self._failed("feed relay failed; trying again", logging.ERROR, exc_info=True)
                continue
            if self._failures:
                log.info("feed relay: working again after %d failed rounds", self._failures)
                self._failures = 0
            if fed >= BATCH:
                continue  # a backlog: no pause until it is fed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self._poll_s if self.holding else RENEW_S)
            if self._woken.is_set() and not self._stopping.is_set():
                # The writers acknowledged at about the same time, together: longer while busy (the last
                # round carried several), when larger rounds save the database most.
                await asyncio.sleep(COALESCE_BUSY_S if fed >= BUSY_ROUND else COALESCE_S)
            self._woken.clear()
        await self._close_finder()
        if self.holding:
            with contextlib.suppress(PipelineJobsError):
                await self._store.release_lease(self._holder)  # the next replica takes over at once


class WakingJobStore(JobStore):
    """The job store for this process's writers: each record it advances wakes the relay, so that an
    event is fed within one round of its acknowledgement rather than within a poll."""

    def __init__(self, database: Database, relay: FeedRelay) -> None:
        super().__init__(database)
        self._relay = relay

    async def advance(
        self, job: JobRecord, entries: Sequence[RecordedEntry], *, token: StoredToken | None = None
    ) -> bool:
        advanced = await super().advance(job, entries, token=token)
        if advanced:
            self._relay.advanced(job, entries)
        return advanced

    async def advance_many(self, advances: Sequence[Advance]) -> list[bool]:
        """Group commit's batches (service/events.py) wake it too: most events are written so."""
        moved = await super().advance_many(advances)
        for advance, advanced in zip(advances, moved, strict=True):
            if advanced:
                self._relay.advanced(advance.job, advance.entries)
        return moved

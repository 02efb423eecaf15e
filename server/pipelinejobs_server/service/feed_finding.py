"""How the feed's relay finds the history entries it has not fed yet: one way for each kind of database
(ADR 015, amendment 4). Either hands the relay the entries waiting, each job's from its next one on; the
relay decides which were accepted, feeds them (service/feed_relay.py) and says what it fed.

``StreamedEntries`` (a replica set, the embedded default, or a sharded cluster): the relay follows the
history's change stream. Writers leave the entries as they are: the mark that had to be cleared after
each entry was fed was most of what the feed cost the write path (docs/performance.md §14.6). The
stream's resume point is stored with the feed's head, so the next relay (here or on another replica)
resumes where this one left off. If the database no longer holds the stream after that point (its log
rolled over while no relay ran), the relay starts the stream from now and looks, job by job, for the
entries written since the point that the feed lacks: slow, and logged, but nothing is lost.

``MarkedEntries`` (a standalone server, which has no change streams): writers mark each entry
``feed_pending``; the relay reads the marked entries by a partial index and clears the marks it fed.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pipelinejobs_server.domain.feed import FeedEntry
from pipelinejobs_server.storage.database import Document
from pipelinejobs_server.storage.feed import PENDING, FeedStore
from pipelinejobs_server.storage.history_stream import HistoryLost, Point

log = logging.getLogger("pipelinejobs.feed")

BATCH = 500  # entries (or changes of the history) read per round: at most one insert into the feed
ADOPTED = 100_000  # at most this many marked entries (written without a stream) taken over at once
REMEMBERED_JOBS = 10_000  # jobs whose last fed seq the marks' finder keeps in mind
# How far before a lost resume point's time a recovery looks: the records' and entries' times are the
# servers' clocks, the point's the database's.
CLOCK_MARGIN = timedelta(hours=1)


class Finder(Protocol):
    @property
    def opened(self) -> bool: ...

    async def open(self) -> None:
        """Start finding from where the last relay, this one or another replica's, left off."""

    async def waiting(self) -> list[Document]:
        """The entries not fed yet that the relay may feed now, each job's from its next one on."""

    def resume_point(self, fed: Collection[str]) -> Point | None:
        """Where the next relay resumes once ``fed`` (entry uuids) are fed; None: nothing to store."""

    def forget(self, fed: Sequence[FeedEntry], dropped: Collection[str]) -> None:
        """``fed`` are in the feed now, ``dropped`` (entry uuids) never will be."""

    def stored(self, point: Point) -> None:
        """``point`` was stored with the head, in the write that fed the round."""

    async def save_point(self) -> None:
        """Store the resume point if it moved with nothing fed: a restart then reads less again."""

    async def close(self) -> None: ...


class MarkedEntries:
    def __init__(self, store: FeedStore) -> None:
        self._store = store
        self._last_fed: OrderedDict[str, int] = OrderedDict()  # job -> the last seq this relay fed

    @property
    def opened(self) -> bool:
        return True

    async def open(self) -> None:
        return None

    async def waiting(self) -> list[Document]:
        documents = await self._store.pending(BATCH)
        first: dict[str, int] = {}
        for document in documents:
            first.setdefault(document["job_uuid"], int(document["seq"]))
        # A read of the marked entries is not a snapshot: a job's first one read is next only if the one
        # before it was fed. Known from this relay's own rounds for the jobs it fed lately; asked of the
        # database for the rest.
        unsure = [
            (job, seq - 1) for job, seq in first.items() if seq > 1 and self._last_fed.get(job) != seq - 1
        ]
        blocked = await self._store.still_pending(unsure)
        return [document for document in documents if document["job_uuid"] not in blocked]

    def resume_point(self, fed: Collection[str]) -> Point | None:
        return None  # the marks are the place: nothing else to store

    def forget(self, fed: Sequence[FeedEntry], dropped: Collection[str]) -> None:
        for entry in fed:
            self._last_fed[entry.job_uuid] = entry.seq
            self._last_fed.move_to_end(entry.job_uuid)
        while len(self._last_fed) > REMEMBERED_JOBS:
            self._last_fed.popitem(last=False)

    def stored(self, point: Point) -> None:
        return None

    async def save_point(self) -> None:
        return None

    async def close(self) -> None:
        return None


class StreamedEntries:
    def __init__(self, store: FeedStore) -> None:
        self._store = store
        self._stream = store.history_stream()
        # What the stream brought that is not fed yet, in the stream's order, each with the point just
        # before it; and the resume point stored last.
        self._waiting: dict[str, tuple[Document, Point]] = {}
        self._saved: Point | None = None
        self._started: Point | None = None  # where the stream began at the last open
        self._more_marked = False  # the last read of marked entries took as many as it may

    @property
    def opened(self) -> bool:
        return self._stream.opened

    async def open(self) -> None:
        self._waiting.clear()
        stored = await self._store.resume_point()
        self._saved = stored
        try:
            await self._stream.open(stored.token if stored is not None else None)
        except HistoryLost as error:
            await self._stream.open(None)
            await self._recover(stored, error)
        self._started = self._stream.point
        await self._adopt()

    async def _adopt(self) -> None:
        """Entries marked by a server that had no stream (an older version, or the database was a
        standalone one then) wait too, in front of what the stream brings: one read of an index that
        holds only them, and another once those are fed if it took as many as it may."""
        assert self._started is not None, "adopted when the stream opens"
        marked = await self._store.pending(ADOPTED)
        self._more_marked = len(marked) >= ADOPTED
        for document in marked:
            self._waiting.setdefault(document["_id"], (document, self._started))

    async def _recover(self, lost: Point | None, error: HistoryLost) -> None:
        """The stream starts from now: find what was written after ``lost`` and not fed, job by job."""
        since = lost.at - CLOCK_MARGIN if lost is not None else datetime.min.replace(tzinfo=UTC)
        log.error(
            "feed relay: the database no longer holds the history's stream after the stored point (%s); "
            "looking for what the feed lacks in the jobs updated since %s",
            error,
            since.isoformat(),
        )
        # While any entry found so would wait, the point to resume from stays the lost one: a relay that
        # stops before feeding them all is followed by one that recovers again, not by one that resumes
        # after entries it never saw (the stream started after them).
        before = lost if lost is not None else self._stream.point
        jobs = await self._store.jobs_updated_since(since)
        found = 0
        for job_uuid, seq in jobs:
            for document in await self._store.unfed_entries(job_uuid, seq, since):
                self._waiting.setdefault(document["_id"], (document, before))
                found += 1
        log.warning("feed relay: recovery looked at %d jobs and found %d entries to feed", len(jobs), found)

    async def waiting(self) -> list[Document]:
        if self._more_marked and not any(PENDING in document for document, _ in self._waiting.values()):
            await self._adopt()
        for change in await self._stream.read(BATCH):
            if change.document is None:
                self._waiting.pop(change.uuid, None)  # refused after the fact, or a cancel's purge
            else:
                self._waiting.setdefault(change.uuid, (change.document, change.before))
        # The stream hands a job's entries out in seq order (an entry is written only after the one
        # before it), from a point before which everything was fed: each job's first one waiting is next.
        by_job: dict[str, list[Document]] = defaultdict(list)
        for document, _ in self._waiting.values():
            by_job[document["job_uuid"]].append(document)
        return [document for entries in by_job.values() for document in entries]

    def resume_point(self, fed: Collection[str]) -> Point:
        """The point before the oldest entry still waiting once ``fed`` are fed: the next relay resumes
        there and misses nothing (the dict keeps the stream's order)."""
        for uuid, (_, before) in self._waiting.items():
            if uuid not in fed:
                return before
        return self._stream.point

    def forget(self, fed: Sequence[FeedEntry], dropped: Collection[str]) -> None:
        for entry in fed:
            self._waiting.pop(entry.uuid, None)
        for uuid in dropped:
            self._waiting.pop(uuid, None)

    def stored(self, point: Point) -> None:
        self._saved = point

    async def save_point(self) -> None:
        if not self._stream.opened:
            return
        point = self.resume_point(())
        if point.token is not None and point.token != (self._saved.token if self._saved else None):
            await self._store.save_resume_point(point)
            self._saved = point

    async def close(self) -> None:
        await self._stream.close()
        self._waiting.clear()

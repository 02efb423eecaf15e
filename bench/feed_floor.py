"""The least a feed copied out of the history can cost the write path, with no service at all.

``FedFloor`` is group commit's batched floor (bench/floor.py) on a database shaped as the service's,
the feed's indexes included (``FeedStore.ensure``). Its ``Copy`` says which of the relay's three writes
(service/feed_relay.py, storage/feed.py) it also does after every ``ROUND_EVENTS`` events, and none of
the relay's reads: the entries inserted into ``feed`` at the next positions, the head moved, their
``feed_pending`` marks cleared. With all three (``FEED_COPY``) it bounds what any relay that copies each
entry and clears its mark can reach: a relay reads too (the pending entries, their jobs), so it can only
do worse. The parts (``PARTS``) split that cost by write; ``marked=False`` writes the history documents
without the mark, as a relay that finds new entries some other way would have them, and ``stream`` finds
them so: each round's entries read from the history's change stream before they are copied.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from pymongo import WriteConcern
from pymongo.change_stream import ChangeStream

from pipelinejobs_server.domain.history import Entry
from pipelinejobs_server.service.feed_relay import fed_entry
from pipelinejobs_server.storage.database import Database
from pipelinejobs_server.storage.feed import FEED, FEED_META, PENDING, FeedStore, JobFacts, entry_to_document

from .floor import DURABLE, BatchedFloor, Document, FloorJob

# Events per relay round: what the service's relay carried per round at saturation on this machine
# (5-15, docs/performance.md section 9; two of this floor's batches of 8).
ROUND_EVENTS = 16
LINKS = {"lab": ["floor-lab"], "experiment": ["floor-experiment"]}
PIPELINE = "00000000-0000-4000-8000-00000000f10a"


async def _feed_indexes(uri: str, name: str) -> None:
    database = Database(uri, name, timeout_ms=60_000)
    try:
        await FeedStore(database).ensure()
    finally:
        await database.close()


@dataclass(frozen=True)
class Copy:
    """Which of the relay's writes a floor does per round, and whether its history carries the mark."""

    insert: bool = False  # the round's entries into ``feed``
    head: bool = False  # the head moved in ``feed_meta``
    clear: bool = False  # the entries' marks cleared in ``job_events``
    marked: bool = True  # history documents written with ``feed_pending``
    stream: bool = False  # the entries read from job_events' change stream first

    @property
    def tag(self) -> str:
        """A database of its own for every combination."""
        parts = [name for name in ("insert", "head", "clear", "stream") if getattr(self, name)]
        return "_feed" + "".join(f"_{part}" for part in parts) + ("" if self.marked else "_unmarked")

    @property
    def per_round(self) -> bool:
        """Whether the floor does anything every ``ROUND_EVENTS`` events."""
        return self.insert or self.head or self.clear or self.stream


NO_COPY = Copy()
FEED_COPY = Copy(insert=True, head=True, clear=True)
# The copy's parts, each beside NO_COPY (the round names bench/feed.py prints).
PARTS = {
    "floor, history without marks": Copy(marked=False),
    "floor + insert and head, no marks": Copy(insert=True, head=True, marked=False),
    "floor + marks cleared only": Copy(clear=True),
    "floor + stream read, insert and head": Copy(insert=True, head=True, marked=False, stream=True),
}


class FedFloor(BatchedFloor):
    def __init__(self, uri: str, threads: int, jobs_per_thread: int, copy: Copy) -> None:
        super().__init__(uri, threads, jobs_per_thread, tag=copy.tag)
        asyncio.run(_feed_indexes(uri, self.database.name))
        self.copy = copy
        self._feed = self.database.get_collection(FEED, write_concern=DURABLE)
        self._meta = self.database.get_collection(FEED_META, write_concern=DURABLE)
        # As the relay clears them: a lost mark only costs a later look, so no journal wait.
        self._marks = self.events.with_options(write_concern=WriteConcern(w=1))
        self._due: list[Document] = []
        self._head = 0
        self._stream: ChangeStream[Document] | None = None

    def round(self, per_thread: int) -> tuple[float, list[float]]:
        started = time.perf_counter()
        # Open for the round only: on SecantusDB an open change stream costs every write of the database
        # (docs/performance.md section 4.2), the other floors' and servers' rounds too.
        self._stream = self.events.watch() if self.copy.stream else None
        try:
            _, latencies = super().round(per_thread)
            self._copy()  # the round ends when the feed holds all of it, as the service's rounds do
        finally:
            if self._stream is not None:
                self._stream.close()
        return time.perf_counter() - started, latencies

    def _document(self, entry: Entry, digest: str) -> Document:
        document = super()._document(entry, digest)
        if self.copy.marked:
            document[PENDING] = True  # as writers mark them for a database without change streams
        return document

    def _batch(self, batch: list[FloorJob]) -> list[Document]:
        documents = super()._batch(batch)
        if self.copy.per_round:
            self._due += documents
            if len(self._due) >= ROUND_EVENTS:
                self._copy()
        return documents

    def _copy(self) -> None:
        due, self._due = self._due, []
        if not due:
            return
        if self._stream is not None:
            found = {self._stream.next()["documentKey"]["_id"] for _ in due}
            if found != {document["_id"] for document in due}:
                raise RuntimeError("the change stream did not return the round's entries")
        if self.copy.insert:
            fed = [self._fed_document(document, self._head + n) for n, document in enumerate(due, 1)]
            self._feed.insert_many(fed, ordered=True)
        self._head += len(due)
        if self.copy.head:
            self._meta.update_one({"_id": "head"}, {"$max": {"p": self._head}}, upsert=True)
        if self.copy.clear:
            self._marks.update_many({"_id": {"$in": [d["_id"] for d in due]}}, {"$unset": {PENDING: ""}})

    @staticmethod
    def _fed_document(document: Document, position: int) -> Document:
        facts = JobFacts(int(document["seq"]), "RUNNING", False, PIPELINE, LINKS)
        entry = fed_entry(document, facts, datetime.now(UTC))
        return entry_to_document(replace(entry, position=position))
